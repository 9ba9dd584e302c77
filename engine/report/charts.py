"""Charts of a ranking and its analyses, as Altair (Vega-Lite) chart objects.

Each function takes result objects (:class:`engine.ScoreResult`, :class:`engine.UncertaintyResult`,
:class:`engine.SensitivityResult`, :class:`engine.BootstrapResult`) and returns an ``alt.Chart``
that displays inline in Jupyter, is embedded by :func:`engine.report.build` and is written as PNG
and SVG by :func:`engine.report.write_figures` (vl-convert, no browser).
"""

from __future__ import annotations

from typing import Any

import altair as alt
import numpy as np
import polars as pl

from ..errors import DataError

__all__ = ["LANGUAGES", "confidence_sets", "correlation_heatmap", "edition_slopes", "framework_tree",
           "indicator_distributions", "node_label", "profile_nodes", "profile_rows", "rank_intervals",
           "rank_shift_histogram", "sobol_bars", "tier_stability", "to_spec", "top_bar", "top_probabilities",
           "unit_frame", "unit_peers", "unit_profile", "unit_sobol_bars", "variance_shares", "weight_importance"]

#: Fonts tried in turn; CJK faces first so that Chinese names render wherever one is installed.
FONT = ("'Noto Sans CJK SC', 'Noto Sans SC', 'Source Han Sans SC', 'PingFang SC', 'Microsoft YaHei', "
        "'WenQuanYi Micro Hei', 'DejaVu Sans', sans-serif")
ROW = 13  #: Pixels per unit in charts with one row per unit (readable labels at 11 px).
LANGUAGES = ("en", "zh")  #: Label languages: node labels and chart text in English or Chinese.


def _t(lang: str, en: str, zh: str) -> str:
    """The text in the chosen language."""
    return zh if lang == "zh" else en


def _legend(lang: str, zh: dict[str, str], **options: Any) -> alt.Legend:
    """A legend whose labels (data values, e.g. "dimension") are shown in Chinese when ``lang`` is zh."""
    if lang != "zh":
        return alt.Legend(**options)
    expr = " : ".join(f"datum.label === '{k}' ? '{v}'" for k, v in zh.items()) + " : datum.label"
    return alt.Legend(labelExpr=expr, **options)


def _data(frame: pl.DataFrame) -> pl.DataFrame:
    """A chart's data (one place to change how data are attached)."""
    return frame


def to_spec(chart: alt.TopLevelMixin) -> dict:
    """The Vega-Lite specification of ``chart``, data inline, without Altair's 5,000-row limit (a
    chart of every unit of a large index stays a chart of every unit).  To display such a chart in
    Jupyter, call ``alt.data_transformers.disable_max_rows()`` once."""
    with alt.data_transformers.disable_max_rows():
        return chart.to_dict(validate=False)


def _config(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    return chart.configure(font=FONT).configure_axis(labelFontSize=11, titleFontSize=12).configure_view(
        strokeWidth=0)


def unit_frame(result: Any) -> pl.DataFrame:
    """One row per unit, best first: ``unit`` (id as text), ``name`` (display name, else the id),
    ``rank``, ``score``, ``tier`` (when tiers were computed) and every dimension's score."""
    ds, index = result.dataset, result.index_id
    table = result.table
    dims = [c for c in result.framework.root.children if c in table.columns]
    name = pl.col(ds.label).cast(pl.String) if ds.label else pl.col(ds.unit).cast(pl.String)
    tier = f"{index}_tier"
    columns = [pl.col(ds.unit).cast(pl.String).alias("unit"), name.alias("name"),
               pl.col(f"{index}_rank").alias("rank"), pl.col(index).alias("score"),
               *([pl.col(tier).alias("tier")] if tier in table.columns else []), *[pl.col(d) for d in dims]]
    return table.select(columns).sort("rank", nulls_last=True)


def node_label(framework: Any, node: str, lang: str = "en") -> str:
    """The node's label in ``lang``, else its English label, else its id."""
    labels = framework.node(node).labels
    return labels.get(lang) or labels.get("en") or node


def top_bar(result: Any, n: int = 30, *, lang: str = "en") -> alt.Chart:
    """The ``n`` best units' index scores, one bar each, coloured by tier."""
    frame = unit_frame(result).head(n)
    color = (alt.Color("tier:O", scale=alt.Scale(scheme="viridis"), title=_t(lang, "tier", "梯队"))
             if "tier" in frame.columns else alt.value("#4c78a8"))
    chart = alt.Chart(_data(frame)).mark_bar().encode(
        x=alt.X("score:Q", title=node_label(result.framework, result.index_id, lang)),
        y=alt.Y("name:N", sort=alt.EncodingSortField("rank"), title=None),
        color=color, tooltip=["rank:Q", "name:N", alt.Tooltip("score:Q", format=".2f"), "unit:N"],
    ).properties(width=520, height=ROW * len(frame) + 10, title=_t(lang, f"Top {len(frame)}", f"前 {len(frame)} 名"))
    return _config(chart)


def rank_intervals(uncertainty: Any, result: Any | None = None, *, unit: str | None = None,
                   max_units: int = 1000, lang: str = "en") -> alt.Chart:
    """Nominal rank (dot) against median rank (tick) with the 5–95 % interval (whisker) of every
    unit, sorted by nominal rank; one row per unit (scroll the page) and the rank axis zooms with
    the mouse wheel.  ``unit``: highlight that unit (the ``picked`` parameter the report's selector
    sets).  More than ``max_units`` units: the best ``max_units`` (a row per unit stays readable),
    and the subtitle says so."""
    units = uncertainty.units.with_columns(pl.col("unit").cast(pl.String))
    names = unit_frame(result).select("unit", "name") if result is not None else None
    frame = units.select("unit", "nominal_rank", "median_rank", "q05_rank", "q95_rank", "mean_rank",
                         *(c for c in ("p_top1", "p_top10", "p_same_tier") if c in units.columns))
    frame = (frame.join(names, on="unit", how="left") if names is not None else frame.with_columns(
        name=pl.col("unit"))).with_columns(pl.col("name").fill_null(pl.col("unit"))).sort("nominal_rank")
    frame = frame.with_columns(label=pl.format("{}. {}", pl.col("nominal_rank"), pl.col("name")))
    shown = (_t(lang, f"the best {max_units:,} of {frame.height:,} units; ", f"{frame.height:,} 个单元中最好的 "
                f"{max_units:,} 个；") if frame.height > max_units else "")
    frame = frame.head(max_units)
    selected = alt.param(name="picked", value=unit or "")
    y = alt.Y("label:N", sort=alt.EncodingSortField("nominal_rank"), title=None, axis=alt.Axis(labelLimit=160))
    base = alt.Chart(_data(frame)).encode(y=y)
    zoom = alt.selection_interval(bind="scales", encodings=["x"])
    highlight = alt.condition("datum.unit === picked", alt.value("#e45756"), alt.value("#4c78a8"))
    tooltip = ["name:N", "nominal_rank:Q", "median_rank:Q", "q05_rank:Q", "q95_rank:Q",
               alt.Tooltip("mean_rank:Q", format=".1f")]
    x = alt.X("q05_rank:Q", title=_t(lang, "rank (1 = best)", "排名（1 = 最好）"), axis=alt.Axis(orient="top"))
    whisker = base.mark_rule().encode(x=x, x2="q95_rank:Q", color=highlight, tooltip=tooltip).add_params(zoom, selected)
    median = base.mark_tick(thickness=2, size=ROW - 3).encode(x="median_rank:Q", color=highlight, tooltip=tooltip)
    nominal = base.mark_point(filled=True, size=25, color="black").encode(x="nominal_rank:Q", tooltip=tooltip)
    n = uncertainty.manifest.get("replicates", 0)
    chart = alt.layer(whisker, median, nominal).properties(
        width=480, height=ROW * frame.height,
        title={"text": _t(lang, "Rank intervals: nominal (dot), median (tick), 5–95 % (line)",
                          "排名区间：名义排名（点）、中位数（短线）、5–95 %（线）"),
               "subtitle": shown + _t(lang, f"{n:,} replicates; scroll, wheel to zoom",
                                      f"{n:,} 次重复；滚动查看，滚轮缩放")})
    return _config(chart)


def rank_shift_histogram(uncertainty: Any, *, lang: str = "en") -> alt.Chart:
    """Distribution of the mean rank shift R_S over the replicates (the share of replicates per bin;
    a large-n run's own bins are placed at their lower edges)."""
    shift = getattr(uncertainty, "rank_shift", None)
    if shift is None:  # a result object: the table of its first target
        stats = uncertainty.statistics
        shift = stats.rank_shift[uncertainty.problem.target_ids[0]]
    # large-n mode counts R_S in bins (rank_shift_from: each bin's lower edge), exact mode every value
    value = "rank_shift" if "rank_shift" in shift.columns else "rank_shift_from"
    frame = shift.select(pl.col(value).alias("rank_shift"), "probability")
    chart = alt.Chart(_data(frame)).mark_bar().encode(
        x=alt.X("rank_shift:Q", bin=alt.Bin(maxbins=40), title=_t(lang, "mean rank shift R_S (ranks)",
                                                                   "平均排名变动 R_S（名次）")),
        y=alt.Y("sum(probability):Q", title=_t(lang, "share of replicates", "重复占比"), axis=alt.Axis(format=".0%")),
        tooltip=[alt.Tooltip("sum(probability):Q", format=".1%", title="share")],
    ).properties(width=480, height=180, title=_t(lang, "Distribution of the mean rank shift R_S",
                                                 "平均排名变动 R_S 的分布"))
    return _config(chart)


def weight_importance(audit: Any) -> alt.Chart:
    """Weights against importance (issue 18): for every node, its local weight (share among its
    siblings) against its share of its siblings' importance in the parent (correlation ratio η²,
    Becker et al. 2017); the diagonal is "importance as the weights promise".  Needs an audit with
    the ``importance`` section."""
    table = audit.tables.get("importance_nodes")
    if table is None:
        raise DataError("the audit has no importance table", fix="run the audit with the importance section")
    frame = table.filter(pl.col("share_parent").is_not_null()).select(
        "node", "parent", "level", "local", "share_parent", "importance", "importance_low", "importance_high",
        "pearson_r2")
    top = float(max(frame["local"].max() or 0.0, frame["share_parent"].max() or 0.0, 0.05)) * 1.05
    base = alt.Chart(_data(frame))
    points = base.mark_circle(size=60).encode(
        x=alt.X("local:Q", title="weight (share among siblings)", scale=alt.Scale(domain=[0, top])),
        y=alt.Y("share_parent:Q", title="importance (share of siblings' η² in the parent)",
                scale=alt.Scale(domain=[0, top])),
        color=alt.Color("level:O", title="level"),
        tooltip=["node:N", "parent:N", alt.Tooltip("local:Q", format=".3f"),
                 alt.Tooltip("share_parent:Q", format=".3f"), alt.Tooltip("importance:Q", format=".3f"),
                 alt.Tooltip("importance_low:Q", format=".3f"), alt.Tooltip("importance_high:Q", format=".3f"),
                 alt.Tooltip("pearson_r2:Q", format=".3f")])
    diagonal = alt.Chart(_data(pl.DataFrame({"a": [0.0, top]}))).mark_line(color="grey", strokeDash=[4, 4]).encode(
        x="a:Q", y="a:Q")
    chart = alt.layer(diagonal, points).properties(
        width=420, height=420, title={"text": "Weights and importance", "subtitle": "on the diagonal: importance "
                                      "as the weights promise; below it: less than promised"})
    return _config(chart)


def sobol_bars(sensitivity: Any, *, lang: str = "en") -> alt.Chart:
    """First- and total-order Sobol indices of the mean rank shift, with their bootstrap intervals."""
    rows = []
    for r in sensitivity.indices.iter_rows(named=True):
        rows.append({"group": r["group"], "order": "first", "value": r["first"], "lo": r["first_lo"],
                     "hi": r["first_hi"]})
        rows.append({"group": r["group"], "order": "total", "value": r["total"], "lo": r["total_lo"],
                     "hi": r["total_hi"]})
    frame = pl.DataFrame(rows)
    base = alt.Chart(_data(frame)).encode(y=alt.Y("group:N", title=None), yOffset="order:N")
    bars = base.mark_bar().encode(x=alt.X("value:Q", title="Sobol index of R_S"), color="order:N",
                                  tooltip=["group:N", "order:N", alt.Tooltip("value:Q", format=".3f"),
                                           alt.Tooltip("lo:Q", format=".3f"), alt.Tooltip("hi:Q", format=".3f")])
    rules = base.mark_rule(color="black").encode(x="lo:Q", x2="hi:Q")
    chart = alt.layer(bars, rules).properties(width=480, height=alt.Step(16),
                                               title=_t(lang, "Sensitivity: first and total order (95 % intervals)",
                                                        "敏感性：一阶与总效应指数（95 % 区间）"))
    return _config(chart)


def unit_sobol_bars(sensitivity: Any, unit: str | None = None, *, lang: str = "en") -> alt.Chart:
    """Which factor group drives one unit's rank: first and total order indices of its rank; in the
    report the unit selector sets the ``picked`` parameter."""
    frame = sensitivity.unit_rank.select(pl.col("unit").cast(pl.String), "group", "first", "total").unpivot(
        index=["unit", "group"], on=["first", "total"], variable_name="order", value_name="value")
    first = unit if unit is not None else str(frame["unit"][0])
    chart = alt.Chart(_data(frame)).transform_filter("datum.unit === picked").mark_bar().encode(
        y=alt.Y("group:N", title=None), yOffset="order:N", color="order:N",
        x=alt.X("value:Q", title="Sobol index of the unit's rank", scale=alt.Scale(domain=[0, 1])),
        tooltip=["group:N", "order:N", alt.Tooltip("value:Q", format=".3f")],
    ).add_params(alt.param(name="picked", value=first)).properties(
        width=480, height=alt.Step(16),
        title={"text": _t(lang, "What moves the selected unit's rank (unit selector below)",
                          "什么在影响所选单元的排名（单元选择见下文）"),
               "subtitle": _t(lang, "no bars: the unit's rank did not move in the sample (the indices are undefined)",
                              "无条形：该单元排名在样本中未变（指数无定义）")})
    return _config(chart)


def edition_slopes(previous: Any, result: Any, *, max_units: int = 1000, lang: str = "en") -> alt.Chart:
    """Slope chart of every unit's rank from the previous edition (left) to this one (right), coloured
    by the direction of the move; the unit selector's unit (``picked``) is drawn thick.  More than
    ``max_units`` units in both editions: the best ``max_units`` of this edition (said in the subtitle)."""
    from ..groups import compare_editions

    unit = result.dataset.unit
    table = compare_editions(previous.table, result.table, unit, result.index_id).filter(pl.col("status") == "both")
    shown = (_t(lang, f"the best {max_units:,} of {table.height:,} units in both", f"两期共有 {table.height:,} 个单元，"
                f"显示最好的 {max_units:,} 个") if table.height > max_units else
             _t(lang, f"{table.height:,} units in both", f"两期共有 {table.height:,} 个单元"))
    table = table.sort("rank_new").head(max_units)
    names = unit_frame(result).select("unit", "name")
    table = table.with_columns(pl.col(unit).cast(pl.String).alias("unit")).join(names, on="unit", how="left")
    frame = pl.concat([table.select("unit", "name", "rank_change", pl.lit("previous").alias("edition"),
                                    pl.col("rank_old").alias("rank")),
                       table.select("unit", "name", "rank_change", pl.lit("this").alias("edition"),
                                    pl.col("rank_new").alias("rank"))])
    frame = frame.with_columns(move=pl.when(pl.col("rank_change") > 0).then(pl.lit("up"))
                               .when(pl.col("rank_change") < 0).then(pl.lit("down")).otherwise(pl.lit("same")))
    base = alt.Chart(_data(frame))
    lines = base.mark_line(point=True, opacity=0.6).encode(
        x=alt.X("edition:N", sort=["previous", "this"], title=None, scale=alt.Scale(padding=20)),
        y=alt.Y("rank:Q", scale=alt.Scale(reverse=True), title="rank (1 = best)"),
        detail="unit:N",
        color=alt.Color("move:N", scale=alt.Scale(domain=["up", "same", "down"],
                                                  range=["#54a24b", "#bab0ac", "#e45756"]), title="rank"),
        strokeWidth=alt.condition("datum.unit === picked", alt.value(4), alt.value(1)),
        tooltip=["name:N", "rank:Q", "rank_change:Q"],
    ).add_params(alt.param(name="picked", value=""))
    labels = base.transform_filter("datum.edition === 'this'").mark_text(align="left", dx=6, fontSize=10).encode(
        x=alt.X("edition:N", sort=["previous", "this"]), y="rank:Q",
        text=alt.Text("label:N"), color=alt.Color("move:N", legend=None))
    chart = alt.layer(lines, labels).transform_calculate(
        label="datum.name + (datum.rank_change > 0 ? ' ▲' + datum.rank_change : datum.rank_change < 0 ? "
              "' ▼' + (-datum.rank_change) : '')").properties(
        width=300, height=ROW * table.height,
        title={"text": _t(lang, "Editions: rank change of every unit", "两期对比：每个单元的排名变化"),
               "subtitle": shown})
    return _config(chart)


def _pearson(values: np.ndarray) -> np.ndarray:
    """Pearson correlations of the columns of ``values`` (n_units, k), each pair over the units where
    both are present; NaN for fewer than 2 such units or a constant side.  The coefficient of
    engine.audit.structure.pair_statistics without its p-values and Spearman rho (SciPy's tests
    take seconds per pair at 30,000 units)."""
    k = values.shape[1]
    corr = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            both = ~(np.isnan(values[:, i]) | np.isnan(values[:, j]))
            x, y = values[both, i], values[both, j]
            ok = x.size >= 2 and np.ptp(x) > 0 and np.ptp(y) > 0
            corr[i, j] = corr[j, i] = np.corrcoef(x, y)[0, 1] if ok else np.nan
    return corr


def correlation_heatmap(result: Any, *, threshold: float = 0.9, lang: str = "en") -> alt.Chart:
    """Pearson correlations between the index, the dimensions and the indicators (normalised
    scores); cells with |r| >= ``threshold`` (collinear) are outlined, negative ones are red."""
    fw = result.framework
    nodes = [result.index_id, *[c for c in fw.root.children], *[i.id for i in fw.indicators]]
    nodes = list(dict.fromkeys(n for n in nodes if n in result.table.columns))
    corr = _pearson(result.table.select(nodes).cast(pl.Float64).to_numpy())  # missing -> NaN
    rows = [{"a": a, "b": b, "r": float(corr[i][j]), "i": i, "j": j}
            for i, a in enumerate(nodes) for j, b in enumerate(nodes)]
    frame = pl.DataFrame(rows)
    base = alt.Chart(_data(frame)).encode(x=alt.X("a:N", sort=nodes, title=None),
                                          y=alt.Y("b:N", sort=nodes, title=None))
    cells = base.mark_rect().encode(
        color=alt.Color("r:Q", scale=alt.Scale(scheme="redblue", domain=[-1, 1]), title="r"),
        stroke=alt.condition(f"abs(datum.r) >= {threshold} && datum.a !== datum.b", alt.value("black"),
                             alt.value(None)),
        tooltip=["a:N", "b:N", alt.Tooltip("r:Q", format=".2f")])
    text = base.mark_text(fontSize=8).encode(text=alt.Text("r:Q", format=".1f"))
    step = 22
    chart = alt.layer(cells, text).properties(
        width=step * len(nodes), height=step * len(nodes),
        title={"text": _t(lang, "Correlations (normalised scores)", "相关系数（标准化得分）"),
               "subtitle": _t(lang, f"outlined: |r| >= {threshold}", f"描边：|r| >= {threshold}")})
    return _config(chart)


def indicator_distributions(result: Any, *, max_outliers: int = 200, lang: str = "en") -> alt.Chart:
    """Distribution of every indicator's normalised score as a box plot computed here (quartiles,
    whiskers at the last values within 1.5 IQR); the flagged outliers beyond them are points (the
    ``max_outliers`` most extreme per indicator, said in the subtitle when there are more)."""
    ids = [i.id for i in result.framework.indicators if i.id in result.table.columns]
    ds = result.dataset
    names = result.table[ds.label or ds.unit].cast(pl.String)
    boxes, outliers, cut = [], [], False
    for k, ind in enumerate(ids):
        values = pl.DataFrame({"name": names, "value": result.table[ind].cast(pl.Float64)}).drop_nulls().filter(
            pl.col("value").is_not_nan())
        q1, med, q3 = (values["value"].quantile(q, interpolation="linear") for q in (0.25, 0.5, 0.75))
        inside = values.filter(pl.col("value").is_between(q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)))
        boxes.append({"indicator": ind, "order": k, "q1": q1, "median": med, "q3": q3, "n": values.height,
                      "lo": inside["value"].min(), "hi": inside["value"].max()})
        out = values.filter(~pl.col("value").is_between(q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)))
        cut |= out.height > max_outliers
        out = out.sort((pl.col("value") - med).abs(), descending=True).head(max_outliers)
        outliers.append(out.with_columns(indicator=pl.lit(ind), value=pl.col("value").round(2)))
    box, points = pl.DataFrame(boxes), pl.concat(outliers)
    y = alt.Y("indicator:N", sort=ids, title=None)
    base = alt.Chart(_data(box)).encode(y=y)
    tooltip = ["indicator:N", "n:Q"] + [alt.Tooltip(f"{c}:Q", format=".1f") for c in ("lo", "q1", "median", "q3", "hi")]
    layers = [base.mark_rule().encode(x=alt.X("lo:Q", title=_t(lang, "normalised score", "标准化得分")), x2="hi:Q",
                                      tooltip=tooltip),
              base.mark_bar(size=12, color="#4c78a8").encode(x="q1:Q", x2="q3:Q", tooltip=tooltip),
              base.mark_tick(color="white", size=12).encode(x="median:Q")]
    if points.height:
        layers.append(alt.Chart(_data(points)).mark_point(size=12, color="#4c78a8").encode(
            y=y, x="value:Q", tooltip=["name:N", "indicator:N", "value:Q"]))
    subtitle = _t(lang, f"outliers: beyond 1.5 IQR{f'; the {max_outliers} most extreme per indicator' if cut else ''}",
                  f"离群值：超出 1.5 倍四分位距{f'；每个指标最极端的 {max_outliers} 个' if cut else ''}")
    chart = alt.layer(*layers).properties(width=480, height=alt.Step(20),
                                          title={"text": _t(lang, "Indicator distributions", "指标分布"),
                                                 "subtitle": subtitle})
    return _config(chart)


def framework_tree(result: Any, lang: str = "en") -> alt.Chart:
    """The framework as an indented tree: every node's nominal weight share (from the framework
    file) beside its effective global weight (as resolved, products of the shares down the tree)."""
    fw = result.framework
    local = fw.local_weights()  # the framework file's weights, before data-driven weighting
    depth, nominal = {fw.root.id: 0}, {fw.root.id: 1.0}
    rows = []
    for k, r in enumerate(result.effective_weights.iter_rows(named=True)):  # preorder: parents first
        depth[r["node"]] = depth[r["parent"]] + 1
        nominal[r["node"]] = nominal[r["parent"]] * local[r["node"]]
        label = "· " * (depth[r["node"]] - 1) + node_label(fw, r["node"], lang)
        rows.append({"order": k, "node": r["node"], "label": label, "level": depth[r["node"]],
                     "kind": "nominal", "weight": nominal[r["node"]]})
        rows.append({**rows[-1], "kind": "effective", "weight": r["global"]})
    frame = pl.DataFrame(rows)
    chart = alt.Chart(_data(frame)).mark_bar().encode(
        y=alt.Y("label:N", sort=alt.EncodingSortField("order"), title=None,
                axis=alt.Axis(labelAlign="left", labelPadding=250, labelLimit=250)),
        x=alt.X("weight:Q", title=_t(lang, "global weight", "全局权重"), axis=alt.Axis(format=".0%")),
        yOffset=alt.YOffset("kind:N", sort=["nominal", "effective"]),
        color=alt.Color("kind:N", sort=["nominal", "effective"], title=None,
                        legend=_legend(lang, {"nominal": "名义", "effective": "实际"})),
        tooltip=["node:N", "kind:N", alt.Tooltip("weight:Q", format=".2%")],
    ).properties(width=360, height=alt.Step(9), title=_t(lang, "Framework: nominal and effective global weights",
                                                         "指标体系：名义与实际全局权重"))
    return _config(chart)


def profile_nodes(result: Any, lang: str = "en") -> pl.DataFrame:
    """The nodes of a unit profile: the dimensions then the indicators, with label, kind, order and the
    median score of all units."""
    fw, table = result.framework, result.table
    indicators = [i.id for i in fw.indicators if i.id in table.columns]
    dims = [c for c in fw.root.children if c in table.columns and c not in indicators]  # a flat framework: none
    nodes = dims + indicators
    return pl.DataFrame({"node": nodes, "label": [node_label(fw, n, lang) for n in nodes],
                         "kind": ["dimension" if k < len(dims) else "indicator" for k in range(len(nodes))],
                         "order": list(range(len(nodes))), "median": [table[n].median() for n in nodes]})


def profile_rows(result: Any, unit: str, lang: str = "en") -> pl.DataFrame:
    """One unit's profile: per node (:func:`profile_nodes`) its ``score`` (rounded to 0.1) and ``rank``.
    The report's unit selector builds the same rows in the browser from the embedded scores."""
    ds = result.dataset
    row = result.table.filter(pl.col(ds.unit).cast(pl.String) == unit)
    if row.height != 1:
        raise DataError(f"no unit {unit!r} in the scored data", units=[unit], fix="give a unit id of the data")
    meta = profile_nodes(result, lang)
    return meta.with_columns(
        score=pl.Series([row[n].cast(pl.Float64).round(1)[0] for n in meta["node"]], dtype=pl.Float64),
        rank=pl.Series([row[f"{n}_rank"][0] for n in meta["node"]], dtype=pl.Int64))


def unit_profile(result: Any, unit: str | None = None, *, lang: str = "en") -> alt.Chart:
    """One unit's score per dimension and indicator (bars) against the median of all units (tick) and
    its rank per node (right); the first unit by default.  The chart carries only this unit's rows:
    the report's selector replaces them (a file of any number of units stays small)."""
    first = unit if unit is not None else str(unit_frame(result)["unit"][0])
    frame = profile_rows(result, first, lang)
    base = alt.Chart(_data(frame)).encode(
        y=alt.Y("label:N", sort=alt.EncodingSortField("order"), title=None, axis=alt.Axis(labelLimit=260)))
    bars = base.mark_bar().encode(
        x=alt.X("score:Q", title=_t(lang, "score (0–100)", "得分（0–100）"), scale=alt.Scale(domain=[0, 100])),
        color=alt.Color("kind:N", title=None, legend=_legend(lang, {"dimension": "维度", "indicator": "指标"},
                                                               orient="bottom")),  # the ranks are on the right
        tooltip=["label:N", alt.Tooltip("score:Q", format=".1f"), "rank:Q", alt.Tooltip("median:Q", format=".1f")])
    ticks = base.mark_tick(color="black", thickness=2).encode(x="median:Q")
    ranks = base.mark_text(align="left", dx=6).encode(x=alt.value(420), text=alt.Text("rank:Q", format="d"))
    chart = alt.layer(bars, ticks, ranks).properties(
        width=420, height=alt.Step(16),
        title={"text": _t(lang, "Unit profile: score per node (bar), median of all units (tick), rank (right)",
                          "单元概况：各节点得分（条）、全部单元中位数（短线）、排名（右）")})
    return _config(chart)


def unit_peers(result: Any, unit: str | None = None, *, peers: int = 2, lang: str = "en") -> alt.Chart:
    """One unit's score per dimension against its peers (the ``peers`` units ranked just above and
    below it; at the top or bottom of the ranking the 2 ``peers`` nearest) and the median of all
    units, as grouped bars.  The report's selector replaces the rows."""
    frame = unit_frame(result)
    dims = [c for c in result.framework.root.children if c in frame.columns]
    first = unit if unit is not None else str(frame["unit"][0])
    at = frame["unit"].to_list().index(first)
    near = frame.slice(max(0, min(at - peers, frame.height - 2 * peers - 1)), 2 * peers + 1)  # 2 p + 1 units
    median = _t(lang, "median of all units", "全部单元中位数")
    rows = [{"who": f"{r['rank']}. {r['name']}", "role": "unit" if r["unit"] == first else "peer", "order": k,
             "dimension": node_label(result.framework, d, lang), "dim_order": j, "score": round(float(r[d]), 1)
             if r[d] is not None else None}
            for k, r in enumerate(near.iter_rows(named=True)) for j, d in enumerate(dims)]
    rows += [{"who": median, "role": "median", "order": len(near), "dimension": node_label(result.framework, d, lang),
              "dim_order": j, "score": round(float(frame[d].median()), 1)} for j, d in enumerate(dims)]
    base = alt.Chart(_data(pl.DataFrame(rows))).encode(
        # a list, not a field sort: Vega-Lite drops field sorts of layers' union domains (then orders by score)
        y=alt.Y("dimension:N", sort=[node_label(result.framework, d, lang) for d in dims], title=None,
                axis=alt.Axis(labelLimit=220)),
        yOffset=alt.YOffset("who:N", sort=alt.EncodingSortField("order")),
        x=alt.X("score:Q", title=_t(lang, "score (0–100)", "得分（0–100）"), scale=alt.Scale(domain=[0, 100])),
        tooltip=["who:N", "dimension:N", alt.Tooltip("score:Q", format=".1f")])
    bars = base.mark_bar().encode(
        color=alt.Color("role:N", scale=alt.Scale(domain=["unit", "peer", "median"],
                                                  range=["#e45756", "#9ecae9", "#555555"]), title=None,
                        legend=_legend(lang, {"unit": "所选单元", "peer": "相邻单元", "median": "中位数"},
                                       orient="bottom")))
    names = base.mark_text(align="left", dx=3, fontSize=9, color="#555").encode(text="who:N")  # who each bar is
    chart = alt.layer(bars, names).properties(width=420, height=alt.Step(11), title={
        "text": _t(lang, "Dimensions: the unit (red), its neighbours in the ranking (blue), the median (grey)",
                   "各维度：所选单元（红）、排名相邻单元（蓝）、中位数（灰）"),
        "subtitle": _t(lang, f"neighbours: the {peers} units ranked just above and the {peers} just below",
                       f"相邻单元：排名紧邻其上、其下的各 {peers} 个单元")})
    return _config(chart)


def _named(frame: pl.DataFrame, result: Any | None) -> pl.DataFrame:
    """``frame`` with the units' display names (``name``) beside ``unit`` (as text)."""
    frame = frame.with_columns(pl.col("unit").cast(pl.String))
    if result is None:
        return frame.with_columns(name=pl.col("unit"))
    return frame.join(unit_frame(result).select("unit", "name"), on="unit", how="left").with_columns(
        pl.col("name").fill_null(pl.col("unit")))


def top_probabilities(uncertainty: Any, result: Any | None = None, *, n: int = 30, lang: str = "en") -> alt.Chart:
    """P(top k) for every k the run counted (``p_top1``, ``p_top3``, ``p_top10``, …) of the ``n`` units
    most often in the widest top (those ever in it), one group of bars per unit."""
    units = uncertainty.units
    ks = sorted(int(c[5:]) for c in units.columns if c.startswith("p_top") and c[5:].isdigit())
    if not ks:
        raise DataError("the run has no P(top k) columns (p_top1, p_top10, …)", fix="run it with top_k")
    widest = f"p_top{ks[-1]}"
    best = _named(units.select("unit", "nominal_rank", *[f"p_top{k}" for k in ks]), result).filter(
        pl.col(widest) > 0).sort([widest, "nominal_rank"], descending=[True, False]).head(n)
    best = best.with_columns(label=pl.format("{}. {}", pl.col("nominal_rank"), pl.col("name")))
    frame = best.unpivot(index=["unit", "label", "nominal_rank"], on=[f"p_top{k}" for k in ks], variable_name="k",
                         value_name="p").with_columns(k=pl.col("k").str.replace("p_top", _t(lang, "top ", "前 ")))
    order = [_t(lang, f"top {k}", f"前 {k}") for k in ks]
    chart = alt.Chart(_data(frame)).mark_bar().encode(
        y=alt.Y("label:N", sort=alt.EncodingSortField("nominal_rank"), title=None, axis=alt.Axis(labelLimit=160)),
        yOffset=alt.YOffset("k:N", sort=order),
        x=alt.X("p:Q", title=_t(lang, "probability", "概率"), scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format=".0%")),
        color=alt.Color("k:N", sort=order, scale=alt.Scale(scheme="blues", reverse=True), title=None),
        tooltip=["label:N", "k:N", alt.Tooltip("p:Q", format=".1%")],
    ).properties(width=420, height=alt.Step(5), title={
        "text": _t(lang, "P(top k): how often each unit is in the top k", "P(前 k)：各单元进入前 k 名的概率"),
        "subtitle": _t(lang, f"the {best.height} units most often in the top {ks[-1]}",
                       f"进入前 {ks[-1]} 名概率最高的 {best.height} 个单元")})
    return _config(chart)


def tier_stability(uncertainty: Any, *, bins: int = 10, lang: str = "en") -> alt.Chart:
    """Tier stability: for each nominal tier, how many of its units stay in it with probability p
    (``p_same_tier`` in ``bins`` classes; counted here, so the chart's size does not grow with the
    units), as a heat map of counts."""
    units = uncertainty.units
    if "p_same_tier" not in units.columns or units["p_same_tier"].null_count() == units.height:
        raise DataError("the run has no tier stability (p_same_tier)", fix="score with tiers (framework `tiers:`)")
    frame = (units.filter(pl.col("p_same_tier").is_not_null())
             .with_columns(lo=(pl.col("p_same_tier") * bins).floor().clip(0, bins - 1) / bins)
             .group_by(pl.col("nominal_tier").alias("tier"), "lo").agg(pl.len().alias("units"))
             .with_columns(hi=pl.col("lo") + 1 / bins, share=pl.col("units") / pl.col("units").sum().over("tier"))
             .sort("tier", "lo"))
    base = alt.Chart(_data(frame)).encode(
        x=alt.X("lo:Q", title=_t(lang, "P(same tier as nominal)", "P(与名义梯队相同)"), axis=alt.Axis(format=".0%"),
                scale=alt.Scale(domain=[0, 1])), x2="hi:Q",
        y=alt.Y("tier:O", title=_t(lang, "nominal tier", "名义梯队")))
    tooltip = ["tier:O", alt.Tooltip("lo:Q", format=".0%", title="from"), alt.Tooltip("hi:Q", format=".0%", title="to"),
               "units:Q", alt.Tooltip("share:Q", format=".0%")]
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color("share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]),
                        title=_t(lang, "share of the tier", "占该梯队比例"), legend=alt.Legend(format=".0%")),
        tooltip=tooltip)
    text = base.mark_text(fontSize=11).encode(
        x=alt.X("mid:Q"), text="units:Q",
        color=alt.condition("datum.share > 0.5", alt.value("white"), alt.value("black"))).transform_calculate(
        mid="(datum.lo + datum.hi) / 2")
    chart = alt.layer(cells, text).properties(width=480, height=alt.Step(28), title={
        "text": _t(lang, "Tier stability: units of each tier by how often they stay in it",
                   "梯队稳定性：各梯队单元按保持在本梯队的概率统计"),
        "subtitle": _t(lang, "number of units per cell; colour: share of the tier's units",
                       "格内为单元数；颜色为占该梯队单元的比例")})
    return _config(chart)


def confidence_sets(bootstrap: Any, result: Any | None = None, *, max_units: int = 1000, lang: str = "en"
                    ) -> alt.Chart:
    """Rank confidence sets of a bootstrap run (Mogstad et al.): the marginal set (thick) and the
    simultaneous set (thin) of every unit, with its rank (dot), sorted by rank; the best
    ``max_units`` units when there are more (said in the subtitle)."""
    units = bootstrap.units
    if "cs_ci_lower" not in units.columns:
        raise DataError("the bootstrap run has no rank confidence sets", fix="run it in mode records or noise")
    frame = _named(units.select("unit", "nominal_rank", "cs_ci_lower", "cs_ci_upper", "cs_simultaneous_lower",
                                "cs_simultaneous_upper").drop_nulls("cs_ci_lower"), result).sort("nominal_rank")
    shown = (_t(lang, f"the best {max_units:,} of {frame.height:,} units; ", f"{frame.height:,} 个单元中最好的 "
                f"{max_units:,} 个；") if frame.height > max_units else "")
    frame = frame.head(max_units).with_columns(label=pl.format("{}. {}", pl.col("nominal_rank"), pl.col("name")))
    level = (bootstrap.manifest.get("confidence") or {}).get("level", 0.9)
    base = alt.Chart(_data(frame)).encode(y=alt.Y("label:N", sort=alt.EncodingSortField("nominal_rank"), title=None,
                                                  axis=alt.Axis(labelLimit=160)))
    tooltip = ["name:N", "nominal_rank:Q", "cs_ci_lower:Q", "cs_ci_upper:Q", "cs_simultaneous_lower:Q",
               "cs_simultaneous_upper:Q"]
    chart = alt.layer(
        base.mark_rule(color="#9ecae9").encode(
            x=alt.X("cs_simultaneous_lower:Q", title=_t(lang, "rank (1 = best)", "排名（1 = 最好）"),
                    axis=alt.Axis(orient="top")), x2="cs_simultaneous_upper:Q", tooltip=tooltip),
        base.mark_rule(strokeWidth=4, color="#4c78a8").encode(x="cs_ci_lower:Q", x2="cs_ci_upper:Q", tooltip=tooltip),
        base.mark_point(filled=True, size=25, color="black").encode(x="nominal_rank:Q", tooltip=tooltip),
    ).properties(width=480, height=ROW * frame.height, title={
        "text": _t(lang, f"Rank confidence sets ({level:.0%}): marginal (thick), simultaneous (thin), rank (dot)",
                   f"排名置信集（{level:.0%}）：边际（粗）、联合（细）、排名（点）"),
        "subtitle": shown + _t(lang, "Mogstad, Romano, Shaikh & Wilhelm", "Mogstad、Romano、Shaikh 与 Wilhelm 方法")})
    return _config(chart)


def variance_shares(bootstrap: Any, *, lang: str = "en") -> alt.Chart:
    """Variance of the ranks by source in a combined study (perturbations and sampling): the share of
    each source's first-order effect, the interaction, and each source's total effect, per target."""
    overall = bootstrap.manifest.get("variance_shares") or {}
    if not overall:
        raise DataError("the bootstrap run has no variance shares", fix="run a combined study (a `perturb:` section "
                        "with decompose: true)")
    names = {"share_perturbation": _t(lang, "perturbation (first order)", "扰动（一阶）"),
             "share_sampling": _t(lang, "sampling (first order)", "抽样（一阶）"),
             "share_interaction": _t(lang, "interaction", "交互"),
             "total_perturbation": _t(lang, "perturbation (total)", "扰动（总）"),
             "total_sampling": _t(lang, "sampling (total)", "抽样（总）")}
    frame = pl.DataFrame([{"target": t, "source": names[k], "order": j, "share": float(v)}
                          for t, shares in overall.items() for j, k in enumerate(names) if k in shares
                          for v in [shares[k]]])
    chart = alt.Chart(_data(frame)).mark_bar().encode(
        y=alt.Y("source:N", sort=alt.EncodingSortField("order"), title=None),
        x=alt.X("share:Q", title=_t(lang, "share of the rank variance", "占排名方差的比例"),
                axis=alt.Axis(format=".0%")),
        color=alt.Color("target:N", title=None), yOffset="target:N",
        tooltip=["target:N", "source:N", alt.Tooltip("share:Q", format=".1%")],
    ).properties(width=420, height=alt.Step(18), title=_t(lang, "Variance of the ranks by source",
                                                          "排名方差的来源分解"))
    return _config(chart)
