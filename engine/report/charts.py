"""Charts of a ranking and its analyses, as Altair (Vega-Lite) chart objects.

Each function takes result objects (:class:`engine.ScoreResult`, :class:`engine.UncertaintyResult`,
:class:`engine.SensitivityResult`, :class:`engine.BootstrapResult`) and returns an ``alt.Chart``
that displays inline in Jupyter, is embedded by :func:`engine.report.build` and is written as PNG
and SVG by :func:`engine.report.write_figures` (vl-convert, no browser).
"""

from __future__ import annotations

from typing import Any

import altair as alt
import polars as pl

from ..errors import DataError

__all__ = ["correlation_heatmap", "edition_slopes", "framework_tree", "indicator_distributions", "node_label",
           "profile_nodes", "rank_intervals", "rank_shift_histogram", "sobol_bars", "to_spec", "top_bar", "unit_frame",
           "unit_profile", "unit_sobol_bars"]

#: Fonts tried in turn; CJK faces first so that Chinese names render wherever one is installed.
FONT = ("'Noto Sans CJK SC', 'Noto Sans SC', 'Source Han Sans SC', 'PingFang SC', 'Microsoft YaHei', "
        "'WenQuanYi Micro Hei', 'DejaVu Sans', sans-serif")
ROW = 13  #: Pixels per unit in charts with one row per unit (readable labels at 11 px).


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
    labels = framework.node(node).labels
    return labels.get(lang) or labels.get("en") or node


def top_bar(result: Any, n: int = 30) -> alt.Chart:
    """The ``n`` best units' index scores, one bar each, coloured by tier."""
    frame = unit_frame(result).head(n)
    color = (alt.Color("tier:O", scale=alt.Scale(scheme="viridis"), title="tier") if "tier" in frame.columns
             else alt.value("#4c78a8"))
    chart = alt.Chart(_data(frame)).mark_bar().encode(
        x=alt.X("score:Q", title=node_label(result.framework, result.index_id)),
        y=alt.Y("name:N", sort=alt.EncodingSortField("rank"), title=None),
        color=color, tooltip=["rank:Q", "name:N", alt.Tooltip("score:Q", format=".2f"), "unit:N"],
    ).properties(width=520, height=ROW * len(frame) + 10, title=f"Top {len(frame)}")
    return _config(chart)


def rank_intervals(uncertainty: Any, result: Any | None = None, *, unit: str | None = None,
                   max_units: int = 1000) -> alt.Chart:
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
    shown = f"the best {max_units:,} of {frame.height:,} units; " if frame.height > max_units else ""
    frame = frame.head(max_units)
    selected = alt.param(name="picked", value=unit or "")
    y = alt.Y("label:N", sort=alt.EncodingSortField("nominal_rank"), title=None, axis=alt.Axis(labelLimit=160))
    base = alt.Chart(_data(frame)).encode(y=y)
    zoom = alt.selection_interval(bind="scales", encodings=["x"])
    highlight = alt.condition("datum.unit === picked", alt.value("#e45756"), alt.value("#4c78a8"))
    tooltip = ["name:N", "nominal_rank:Q", "median_rank:Q", "q05_rank:Q", "q95_rank:Q",
               alt.Tooltip("mean_rank:Q", format=".1f")]
    x = alt.X("q05_rank:Q", title="rank (1 = best)", axis=alt.Axis(orient="top"))
    whisker = base.mark_rule().encode(x=x, x2="q95_rank:Q", color=highlight, tooltip=tooltip).add_params(zoom, selected)
    median = base.mark_tick(thickness=2, size=ROW - 3).encode(x="median_rank:Q", color=highlight, tooltip=tooltip)
    nominal = base.mark_point(filled=True, size=25, color="black").encode(x="nominal_rank:Q", tooltip=tooltip)
    chart = alt.layer(whisker, median, nominal).properties(
        width=480, height=ROW * frame.height,
        title={"text": "Rank intervals: nominal (dot), median (tick), 5–95 % (line)",
               "subtitle": f"{shown}{uncertainty.manifest.get('replicates', 0):,} replicates; scroll, wheel to zoom"})
    return _config(chart)


def rank_shift_histogram(uncertainty: Any) -> alt.Chart:
    """Distribution of the mean rank shift R_S over the replicates (the share of replicates per bin)."""
    shift = getattr(uncertainty, "rank_shift", None)
    if shift is None:  # a result object: the table of its first target
        stats = uncertainty.statistics
        shift = stats.rank_shift[uncertainty.problem.target_ids[0]]
    frame = shift.select("rank_shift", "probability")
    chart = alt.Chart(_data(frame)).mark_bar().encode(
        x=alt.X("rank_shift:Q", bin=alt.Bin(maxbins=40), title="mean rank shift R_S (ranks)"),
        y=alt.Y("sum(probability):Q", title="share of replicates", axis=alt.Axis(format=".0%")),
        tooltip=[alt.Tooltip("sum(probability):Q", format=".1%", title="share")],
    ).properties(width=480, height=180, title="Distribution of the mean rank shift R_S")
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


def sobol_bars(sensitivity: Any) -> alt.Chart:
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
                                               title="Sensitivity: first and total order (95 % intervals)")
    return _config(chart)


def unit_sobol_bars(sensitivity: Any, unit: str | None = None) -> alt.Chart:
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
        title={"text": "What moves the selected unit's rank (unit selector below)",
               "subtitle": "no bars: the unit's rank did not move in the sample (the indices are undefined)"})
    return _config(chart)


def edition_slopes(previous: Any, result: Any) -> alt.Chart:
    """Slope chart of every unit's rank from the previous edition (left) to this one (right), coloured
    by the direction of the move; the unit selector's unit (``picked``) is drawn thick."""
    from ..groups import compare_editions

    unit = result.dataset.unit
    table = compare_editions(previous.table, result.table, unit, result.index_id).filter(pl.col("status") == "both")
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
        title={"text": "Editions: rank change of every unit", "subtitle": f"{table.height:,} units in both"})
    return _config(chart)


def correlation_heatmap(result: Any, *, threshold: float = 0.9) -> alt.Chart:
    """Pearson correlations between the index, the dimensions and the indicators (normalised
    scores); cells with |r| >= ``threshold`` (collinear) are outlined, negative ones are red."""
    fw = result.framework
    nodes = [result.index_id, *[c for c in fw.root.children], *[i.id for i in fw.indicators]]
    nodes = list(dict.fromkeys(n for n in nodes if n in result.table.columns))
    from ..audit.structure import pair_statistics  # one home for pairwise-complete correlations

    values = result.table.select(nodes).cast(pl.Float64).to_numpy()  # missing -> NaN
    corr = [[pair_statistics(values[:, i], values[:, j])["pearson"] for j in range(len(nodes))]
            for i in range(len(nodes))]
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
        title={"text": "Correlations (normalised scores)", "subtitle": f"outlined: |r| >= {threshold}"})
    return _config(chart)


def indicator_distributions(result: Any, *, max_outliers: int = 200) -> alt.Chart:
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
    layers = [base.mark_rule().encode(x=alt.X("lo:Q", title="normalised score"), x2="hi:Q", tooltip=tooltip),
              base.mark_bar(size=12, color="#4c78a8").encode(x="q1:Q", x2="q3:Q", tooltip=tooltip),
              base.mark_tick(color="white", size=12).encode(x="median:Q")]
    if points.height:
        layers.append(alt.Chart(_data(points)).mark_point(size=12, color="#4c78a8").encode(
            y=y, x="value:Q", tooltip=["name:N", "indicator:N", "value:Q"]))
    subtitle = f"outliers: beyond 1.5 IQR{f'; the {max_outliers} most extreme per indicator' if cut else ''}"
    chart = alt.layer(*layers).properties(width=480, height=alt.Step(20),
                                          title={"text": "Indicator distributions", "subtitle": subtitle})
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
        x=alt.X("weight:Q", title="global weight", axis=alt.Axis(format=".0%")),
        yOffset=alt.YOffset("kind:N", sort=["nominal", "effective"]),
        color=alt.Color("kind:N", sort=["nominal", "effective"], title=None),
        tooltip=["node:N", "kind:N", alt.Tooltip("weight:Q", format=".2%")],
    ).properties(width=360, height=alt.Step(9), title="Framework: nominal and effective global weights")
    return _config(chart)


def profile_nodes(result: Any) -> pl.DataFrame:
    """The nodes of a unit profile: the dimensions then the indicators, with label, kind, order and the
    median score of all units."""
    fw, table = result.framework, result.table
    nodes = [c for c in fw.root.children if c in table.columns] + [i.id for i in fw.indicators
                                                                     if i.id in table.columns]
    n_dims = sum(c in table.columns for c in fw.root.children)
    return pl.DataFrame({"node": nodes, "label": [node_label(fw, n) for n in nodes],
                         "kind": ["dimension" if k < n_dims else "indicator" for k in range(len(nodes))],
                         "order": list(range(len(nodes))), "median": [table[n].median() for n in nodes]})


def unit_profile(result: Any, unit: str | None = None) -> alt.Chart:
    """One unit's score per dimension and indicator (bars) against the median of all units (tick);
    in the report a selector sets the ``unit`` parameter (first unit by default)."""
    fw, table, ds = result.framework, result.table, result.dataset
    nodes = [c for c in fw.root.children if c in table.columns] + [i.id for i in fw.indicators
                                                                     if i.id in table.columns]
    ids = table[ds.unit].cast(pl.String)
    # one row per unit and node with only what varies (the node's label, kind and median come by
    # lookup): the file stays small for thousands of units
    frame = pl.concat([pl.DataFrame({"unit": ids, "node": node, "score": table[node].cast(pl.Float64).round(2),
                                     "rank": table[f"{node}_rank"].cast(pl.Int64)}) for node in nodes])
    meta = profile_nodes(result)
    first = unit if unit is not None else str(unit_frame(result)["unit"][0])
    selected = alt.param(name="picked", value=first)
    base = alt.Chart(_data(frame)).transform_filter("datum.unit === picked").transform_lookup(
        lookup="node", from_=alt.LookupData(data=_data(meta), key="node", fields=["label", "kind", "order", "median"])
    ).encode(
        y=alt.Y("label:N", sort=meta["label"].to_list(), title=None, axis=alt.Axis(labelLimit=260)))
    bars = base.mark_bar().encode(x=alt.X("score:Q", title="score (0–100)", scale=alt.Scale(domain=[0, 100])),
                                  color=alt.Color("kind:N", title=None),
                                  tooltip=["label:N", alt.Tooltip("score:Q", format=".1f"), "rank:Q",
                                           alt.Tooltip("median:Q", format=".1f")]).add_params(selected)
    ticks = base.mark_tick(color="black", thickness=2).encode(x="median:Q")
    ranks = base.mark_text(align="left", dx=4).encode(x=alt.value(400), text=alt.Text("rank:Q", format="d"))
    chart = alt.layer(bars, ticks, ranks).properties(
        width=420, height=alt.Step(16),
        title={"text": "Unit profile: score per node (bar), median of all units (tick), rank (right)"})
    return _config(chart)
