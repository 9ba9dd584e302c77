"""``engine.report.build``: one self-contained HTML file (every script, style and datum inline)."""

from __future__ import annotations

import html
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from .. import __version__
from ..errors import DataError, EngineWarning, MissingRankWarning
from ..io import atomic_write, check_output, settings_table
from . import charts

__all__ = ["ZH", "Report", "build", "check_path", "default_study_fits", "load_audit", "load_folder", "write_figures"]


@dataclass(frozen=True)
class Loaded:
    """An analysis read back from its output folder (the attributes the charts use)."""

    kind: str
    manifest: dict[str, Any]
    units: pl.DataFrame | None = None
    indices: pl.DataFrame | None = None
    unit_rank: pl.DataFrame | None = None
    rank_shift: pl.DataFrame | None = None
    path: str = ""


def _read(folder: Path, name: str) -> pl.DataFrame | None:
    for ext, reader in ((".parquet", pl.read_parquet), (".csv", pl.read_csv)):
        if (folder / f"{name}{ext}").is_file():
            return reader(folder / f"{name}{ext}")
    return None


def load_folder(folder: str | Path, kind: str) -> Loaded:
    """Read an analysis output folder (``manifest.json`` and its Parquet/CSV tables)."""
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise DataError(f"no manifest.json in the {kind} folder {str(folder)!r}", path=str(folder),
                        fix=f"give the folder written by `cityrank {kind} --out DIR` (a Parquet or CSV folder)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("kind", kind) != kind:
        raise DataError(f"{str(folder)!r} holds {manifest.get('kind')} results, not {kind} results", path=str(folder),
                        fix=f"pass it as --{manifest.get('kind')}")
    tables = {"units": "units", "indices": "indices", "unit_rank": "unit_rank_indices", "rank_shift": "rank_shift"}
    read = {k: _read(folder, v) for k, v in tables.items()}
    needed = "indices" if kind == "sensitivity" else "units"
    if read[needed] is None:
        raise DataError(f"the {kind} folder {str(folder)!r} has no {tables[needed]}.parquet or .csv",
                        path=str(folder), fix="write it again with --format parquet or csv (xlsx is not read)")
    return Loaded(kind, manifest, path=str(folder), **read)


def _check_same_run(analysis: Any, result: Any, kind: str) -> None:
    """Refuse an analysis of another framework or dataset (before anything is written)."""
    m = analysis.manifest
    where = getattr(analysis, "path", "") or None
    digest = m.get("framework", {}).get("digest")
    if digest is not None and digest != result.framework.digest:
        raise DataError(f"the {kind} results are of framework {m['framework'].get('id')!r} (digest {digest[:12]}), "
                        f"not of {result.framework.id!r} (digest {result.framework.digest[:12]})", path=where,
                        fix=f"run the {kind} analysis again with this framework, or report on its framework")
    data = m.get("data", {})
    units = getattr(analysis, "units", None)
    scored = set(result.table[result.dataset.unit].cast(pl.String))
    if data.get("n_units") is not None and data["n_units"] != len(scored):
        raise DataError(f"the {kind} results cover {data['n_units']} units of {data.get('source')!r}; the data "
                        f"scored here have {len(scored)}", path=where,
                        fix=f"give the data the {kind} analysis was run on (-d), or run it again on these data")
    if units is not None:
        missing = sorted(set(units["unit"].cast(pl.String)) - scored)
        if missing:
            raise DataError(f"the {kind} results name units absent from the scored data", units=missing[:10],
                            path=where, fix=f"give the data the {kind} analysis was run on (-d)")


def _bundle() -> str:
    """The Vega, Vega-Lite and vega-embed JavaScript as one script, cached per vl-convert version
    (building it takes seconds)."""
    import vl_convert as vlc

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cityrank"
    path = cache / f"vega-bundle-{vlc.__version__}.js"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    text = vlc.javascript_bundle()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    except (OSError, DataError):
        pass  # a read-only home: build it again next time
    return text


@dataclass
class Report:
    """A built report: its sections (title, HTML, chart specs) and the charts as Altair objects."""

    title: str
    sections: list[tuple[str, str, str]]  #: (id, title, HTML body)
    charts: dict[str, Any]  #: chart id -> Altair chart
    data: dict[str, Any] = field(default_factory=dict)  #: JSON data for the page's scripts
    lang: str = "en"  #: Language of the labels and the page's text ("en" or "zh").

    def html(self) -> str:
        specs = {k: charts.to_spec(c) for k, c in self.charts.items()}
        nav = "".join(f'<a href="#{sid}">{html.escape(t)}</a>' for sid, t, _ in self.sections)
        body = "".join(f'<section id="{sid}"><h2>{html.escape(t)}</h2>{b}</section>' for sid, t, b in self.sections)
        payload = json.dumps({"specs": specs, **self.data}, ensure_ascii=False, default=str).replace("</", "<\\/")
        title = html.escape(self.title)
        return "".join([
            f'<!DOCTYPE html>\n<html lang="{self.lang}"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{title}</title><style>{_CSS}</style></head>\n<body><header><h1>{title}</h1></header>",
            f"<nav>{nav}</nav>{body}\n",
            f'<script type="application/json" id="report-data">{payload}</script>\n',
            f"<script>{_bundle()}</script>\n<script>{_JS}</script>\n</body></html>\n"])

    def write(self, path: str | Path) -> Path:
        """Write the report as one HTML file, atomically."""
        path = check_path(path)
        text = self.html()
        return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    def _repr_html_(self) -> str:
        return f"<b>Report</b> {html.escape(self.title)}: " + ", ".join(t for _, t, _ in self.sections)


def check_path(path: str | Path) -> Path:
    """Refuse, before any work, a report path that is not a writable ``.html`` file."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise DataError(f"a report is one HTML file, not {path.suffix or 'a file without extension'!r}",
                        path=str(path), fix=f"give a name ending in .html, e.g. {path.with_suffix('.html').name}")
    if path.is_dir():
        raise DataError("the report path is a folder, a file is expected", path=str(path),
                        fix=f"give a file name, e.g. {path / 'report.html'}")
    check_output(path.parent, "folder")
    return path


def _fold(title: str, table: pl.DataFrame) -> str:
    """A folded, scrollable table."""
    return (f"<details><summary>{html.escape(title)}</summary>"
            f'<div class="tablewrap">{_table_html(table)}</div></details>')


def _details(title: str, document: dict) -> str:
    """A folded table of every setting of a recipe or manifest."""
    table = settings_table(document)
    return _fold(f"{title} ({table.height} settings)", table)


def _chart_div(chart_id: str, scroll: bool = False) -> str:
    cls = "chart scroll" if scroll else "chart"
    return f'<div class="{cls}" id="chart-{chart_id}" data-chart="{chart_id}"></div>'


def _cell(column: str, value: Any, digits: int) -> str:
    """A table cell: floats with ``digits`` decimals, ranks (columns named ``*rank*``) as whole
    numbers or with one decimal (a median of 213.5), nothing for a missing value."""
    if value is None:
        return "<td></td>"
    if isinstance(value, float):
        text = (f"{value:.1f}".removesuffix(".0") if "rank" in column else f"{value:.{digits}f}")
        return f"<td>{text}</td>"
    return f"<td>{html.escape(str(value))}</td>"


def _table_html(frame: pl.DataFrame, digits: int = 2, wrap: bool = False) -> str:
    """A plain HTML table; ``wrap``: long texts wrap (flag messages)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = ["<tr>" + "".join(_cell(c, v, digits) for c, v in zip(frame.columns, row)) + "</tr>"
            for row in frame.iter_rows()]
    cls = "plain wrap" if wrap else "plain"
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


#: Section and table text in Chinese (``labels="zh"``); English is the key.
ZH = {
    "Overview": "概览", "Ranking": "排名", "Indicators": "指标", "Robustness": "稳健性", "Sensitivity": "敏感性",
    "Sampling": "抽样", "Editions": "两期对比", "Audit": "审计", "Unit profile": "单元概况",
    "what": "项目", "value": "值", "framework": "指标体系", "framework id": "指标体系编号", "units": "单元数",
    "indicators": "指标数", "data": "数据", "engine": "引擎", "rank": "排名", "unit": "单元", "name": "名称",
    "score": "得分", "tier": "梯队", "lowest score": "最低分", "highest score": "最高分", "Tiers": "梯队",
    "median rank": "排名中位数", "rank 5 %": "排名 5 %", "rank 95 %": "排名 95 %", "P(top 10)": "P(前 10)",
    "P(same tier)": "P(同梯队)", "90 % rank range": "90 % 排名区间宽度",
    "Least stable units": "最不稳定的单元", "search units…": "搜索单元…",
    "Unit: ": "单元：", "Strongest": "最强", "Weakest": "最弱", "Rank": "排名", "median": "中位数",
    "median of all units": "全部单元中位数", "rows": "行", "of": "/", "find a unit…": "查找单元…",
    "units found": "个单元符合", "shown": "显示前", "Monte Carlo run": "蒙特卡洛运行", "Sobol run": "Sobol 运行",
    "Bootstrap run": "自助法运行", "Every unit's bootstrap statistics": "各单元的自助法统计",
    "Bootstrap rank intervals ({} resampling, {:,} replicates).": "自助法排名区间（{} 重抽样，{:,} 次重复）。",
    "{:,} units: charts with one row per unit show the best {:,} (said in each chart); the table shows 500 rows per "
    "page.": "共 {:,} 个单元：每单元一行的图只显示最好的 {:,} 个（各图中注明）；表格每页 500 行。",
    "{:,} replicates, seed {}": "{:,} 次重复，随机种子 {}",
    "; mean rank shift R_S {:.2f} (5–95 %: {:.2f}–{:.2f})": "；平均排名变动 R_S {:.2f}（5–95 %：{:.2f}–{:.2f}）",
    "Until a unit is selected:": "选择单元之前显示：",
    "the best-ranked unit whose rank moves": "排名有变动的最靠前单元",
    "Data coverage: {} imputed cells (missing in the data, filled by the impute stage)": "数据覆盖：{} 个插补单元格"
    "（数据中缺失，由插补步骤填充）",
    "Recipe: every setting of every stage, seeds and versions": "配方：各步骤的全部设置、随机种子与版本",
    "These data are SYNTHETIC: calibrated for demonstration, not observed.": "这些数据是合成数据：为演示而校准，"
    "并非观测值。",
}


#: Headers of the per-unit statistics in the page's tables.
_HEADERS = {"nominal_rank": "rank", "median_rank": "median rank", "q05_rank": "rank 5 %", "q95_rank": "rank 95 %",
            "p_top10": "P(top 10)", "p_same_tier": "P(same tier)", "rank_range_90": "90 % rank range"}


def _translator(lang: str):
    if lang not in charts.LANGUAGES:
        raise DataError(f"labels must be one of {', '.join(charts.LANGUAGES)}, not {lang!r}",
                        fix="use labels='en' (English) or labels='zh' (Chinese)")
    return (lambda text: ZH.get(text, text)) if lang == "zh" else (lambda text: text)


def _whole_ranks(frame: pl.DataFrame) -> pl.DataFrame:
    """Rank columns (``*rank*``) that hold whole numbers as integers (printed 87, not 87.00)."""
    return frame.with_columns(pl.col(c).cast(pl.Int64) for c, t in frame.schema.items()
                              if "rank" in c and t.is_float() and (frame[c].drop_nulls() % 1 == 0).all())


def default_study_fits(n_units: int, memory: int | None = None) -> tuple[bool, int, int | None]:
    """Whether the report's default Monte Carlo study fits: (fits, bytes it needs, budget).  The
    need is :func:`engine.analysis.memory.estimate_bytes` (units² rank histograms); the budget is
    ``memory`` bytes, by default half the memory available (None: unknown, assumed to fit)."""
    from ..analysis.memory import available_bytes, estimate_bytes, local_lanes

    need = estimate_bytes("uncertainty", n_units, 1, local_lanes("threads"))
    if memory is None:
        free = available_bytes()
        memory = None if free is None else free // 2
    return memory is None or need <= memory, need, memory


def _audit_body(audit: Any, chart_objs: dict, max_rows: int = 1000) -> str:
    """The Audit section: verdict, counts of warnings and notes per section, every flag, the
    audit's tables folded (those of at most ``max_rows`` rows), the weights-importance chart."""
    flags = audit.flags
    lines = audit.verdict(limit=0).splitlines()
    body = f"<p>{html.escape(lines[0])}</p>"
    if flags.height:
        counts = (flags.group_by("section", maintain_order=True)
                  .agg(warnings=(pl.col("level") == "warning").sum(), notes=(pl.col("level") == "note").sum()))
        body += _table_html(counts)
        ordered = flags.with_row_index("_o").sort(pl.col("level") != "warning", "_o").drop("_o")
        body += '<div class="tablewrap">' + _table_html(ordered, wrap=True) + "</div>"
    if "importance_nodes" in audit.tables:
        chart_objs["weight_importance"] = charts.weight_importance(audit)
        body += _chart_div("weight_importance")
    for name, table in audit.tables.items():
        if table.height <= max_rows:
            body += _fold(f"{name} ({table.height} rows)", table)
        else:
            body += f"<p>{html.escape(name)}: {table.height:,} rows (in the audit's folder, not in the report)</p>"
    return body


def build(framework: Any, data: Any = None, uncertainty: Any = None, sensitivity: Any = None, bootstrap: Any = None,
          audit: Any = None, *, previous: Any = None, top: int = 30, replicates: int = 10_000, seed: int = 2024,
          labels: str = "en", memory: int | None = None, max_units: int = 1000, **load_kwargs: Any) -> Report:
    """Build the report of ``framework`` scored on ``data`` (default: its shipped data).

    ``uncertainty``, ``sensitivity``, ``bootstrap``: result objects (``engine.uncertainty(...)``
    etc.) or their output folders; ``audit``: an :class:`engine.AuditResult` or its folder; each adds
    its section.  Without an analysis a default Monte Carlo study runs (``replicates`` replicates,
    ±25 % noise on every weight, ``seed``) when its memory (units² histograms) fits in ``memory``
    bytes (default half the memory available); otherwise it is skipped and the page says so.  An
    analysis of another framework or dataset is refused (:class:`DataError`) before any work.
    ``previous``: the previous edition (its data, or a :class:`ScoreResult` of the same framework)
    adds the Editions section.  ``labels``: ``"en"`` or ``"zh"``, the language of node labels and of
    the page's text.  ``max_units``: charts with one row per unit show the best ``max_units``."""
    from ..pipeline import ScoreResult, score

    tr = _translator(labels)
    result = framework if isinstance(framework, ScoreResult) else score(framework, data, **load_kwargs)
    loaded = {}
    for kind, value in (("uncertainty", uncertainty), ("sensitivity", sensitivity), ("bootstrap", bootstrap)):
        if isinstance(value, str | Path):
            value = load_folder(value, kind)
        if value is not None:
            _check_same_run(value, result, kind)
        loaded[kind] = value
    if previous is not None and not isinstance(previous, ScoreResult):
        previous = score(result.framework, previous, **load_kwargs)
    if previous is not None and previous.framework.digest != result.framework.digest:
        raise DataError(f"the previous edition is scored with framework {previous.framework.id!r}, not "
                        f"{result.framework.id!r}", fix="compare two editions of the same framework")
    if isinstance(audit, str | Path):
        audit = load_audit(audit)
    audited = (audit.recipe.get("score", {}).get("framework", {}).get("digest") if audit is not None else None)
    if audited is not None and audited != result.framework.digest:
        raise DataError(f"the audit is of framework {audit.recipe['score']['framework'].get('id')!r}, not of "
                        f"{result.framework.id!r}", fix="audit this framework, or report on the audited one")
    fw, index = result.framework, result.index_id
    units = charts.unit_frame(result)
    skipped = ""
    if all(v is None for v in loaded.values()):
        fits, need, budget = default_study_fits(units.height, memory)
        if fits:
            from ..analysis.uncertainty import uncertainty as run_uncertainty

            with warnings.catch_warnings():
                # the study scores the result's data again: what scoring found was said when the result was
                # scored (the report's own run, or the caller's); what the study finds is still said
                warnings.simplefilter("ignore", EngineWarning)
                warnings.simplefilter("default", MissingRankWarning)
                loaded["uncertainty"] = run_uncertainty(fw, result.dataset, replicates=replicates, seed=seed)
        else:
            skipped = (f'<p class="warn">No Monte Carlo study: the default study of {units.height:,} units would '
                       f"need about {need / 2**30:.1f} GiB (rank histograms of units × units), more than the "
                       f"{budget / 2**30:.1f} GiB the report allows itself (half the memory available). Run "
                       "<code>cityrank uncertainty --out DIR</code> (large-n mode) and pass <code>--uncertainty "
                       "DIR</code>.</p>")
    dims = [c for c in fw.root.children if c in units.columns]
    chart_objs: dict[str, Any] = {}
    sections: list[tuple[str, str, str]] = []
    many = ('<p class="note">' + tr("{:,} units: charts with one row per unit show the best {:,} (said in each "
                                    "chart); the table shows 500 rows per page.").format(units.height, max_units)
            + "</p>" if units.height > max_units else "")

    # Overview
    synthetic = result.recipe.get("data", {}).get("synthetic")
    warn = (f'<p class="warn">{tr("These data are SYNTHETIC: calibrated for demonstration, not observed.")}</p>'
            if synthetic else "")
    info = {"framework": f"{fw.labels.get('en', fw.id)} / {fw.labels.get('zh', '')}", "framework id": fw.id,
            "units": units.height, "indicators": len(fw.indicators),
            "data": source if (source := result.recipe.get("data", {}).get("source")) != "<DataFrame>" else
            "a table given from Python", "engine": f"cityrank {__version__}"}
    chart_objs["framework"] = charts.framework_tree(result, labels)
    imputed = result.imputed_cells().drop(result.dataset.unit).sum()
    coverage = pl.DataFrame({"indicator": [i.id for i in fw.indicators],
                             "label": [charts.node_label(fw, i.id, labels) for i in fw.indicators],
                             "imputed cells": [int(imputed[i.id][0]) for i in fw.indicators]}).with_columns(
        coverage=(1 - pl.col("imputed cells") / max(units.height, 1)))
    sections.append(("overview", tr("Overview"), warn + skipped + many + _table_html(pl.DataFrame(
        {tr("what"): [tr(k) for k in info], tr("value"): [str(v) for v in info.values()]})) + _chart_div("framework")
        + _fold(tr("Data coverage: {} imputed cells (missing in the data, filled by the impute stage)").format(
            int(coverage["imputed cells"].sum())), coverage)
        + _details(tr("Recipe: every setting of every stage, seeds and versions"), result.recipe)))

    # Ranking
    chart_objs["top"] = charts.top_bar(result, top, lang=labels)
    tiers = ""
    if "tier" in units.columns:
        sizes = units.group_by("tier").agg(pl.len().alias("units"), pl.col("score").min().alias("lowest score"),
                                           pl.col("score").max().alias("highest score")).sort("tier")
        tiers = f"<h3>{tr('Tiers')}</h3>" + _table_html(sizes.rename({c: tr(c) for c in sizes.columns}))
    names = {d: charts.node_label(fw, d, labels) for d in dims}
    ranking = (f'<input id="search" type="search" placeholder="{tr("search units…")}"> <span id="pager"></span>'
               '<div class="tablewrap"><table id="ranking-table" class="sortable"></table></div>')
    sections.append(("ranking", tr("Ranking"), ranking + tiers + _chart_div("top")))

    # Indicators
    chart_objs["distributions"] = charts.indicator_distributions(result, lang=labels)
    chart_objs["correlation"] = charts.correlation_heatmap(result, lang=labels)
    sections.append(("indicators", tr("Indicators"), _chart_div("distributions") + _chart_div("correlation")))

    # Robustness
    mc = loaded["uncertainty"]
    if mc is not None:
        chart_objs["intervals"] = charts.rank_intervals(mc, result, max_units=max_units, lang=labels)
        body = ""
        if any(c.startswith("p_top") for c in mc.units.columns):
            chart_objs["top_probabilities"] = charts.top_probabilities(mc, result, lang=labels)
            body += _chart_div("top_probabilities")
        if "p_same_tier" in mc.units.columns and mc.units["p_same_tier"].null_count() < mc.units.height:
            chart_objs["tier_stability"] = charts.tier_stability(mc, lang=labels)
            body += _chart_div("tier_stability")
        shift = mc.manifest.get("rank_shift", {}).get(index) or {}
        if getattr(mc, "rank_shift", None) is not None or hasattr(mc, "statistics"):
            chart_objs["rank_shift"] = charts.rank_shift_histogram(mc, lang=labels)
            body += _chart_div("rank_shift")
        summary = tr("{:,} replicates, seed {}").format(mc.manifest.get("replicates", 0), mc.manifest.get("seed"))
        if shift.get("mean") is not None:  # a run without the rank-shift summary says nothing of it
            summary += tr("; mean rank shift R_S {:.2f} (5–95 %: {:.2f}–{:.2f})").format(
                shift["mean"], shift.get("q05", float("nan")), shift.get("q95", float("nan")))
        summary = f"<p>{summary}.</p>"
        cols = [c for c in ("unit", "nominal_rank", "median_rank", "q05_rank", "q95_rank", "p_top10", "p_same_tier",
                            "rank_range_90") if c in mc.units.columns]
        least = _whole_ranks(mc.units.with_columns(pl.col("unit").cast(pl.String))
                             .sort(["rank_range_90", "rank_sd"], descending=True, nulls_last=True).head(10)
                             .select(cols).join(units.select("unit", "name"), on="unit", how="left",
                                                maintain_order="left").select("unit", "name", *cols[1:]))
        least = least.rename({c: tr(_HEADERS.get(c, c)) for c in least.columns})
        sections.append(("robustness", tr("Robustness"), summary + _chart_div("intervals", scroll=True) + body
                         + f"<h3>{tr('Least stable units')}</h3>" + _table_html(least)
                         + _details(tr("Monte Carlo run"), mc.manifest)))

    # Sensitivity
    sens = loaded["sensitivity"]
    if sens is not None:
        chart_objs["sobol"] = charts.sobol_bars(sens, lang=labels)
        moving = set(sens.unit_rank.filter(pl.col("first").is_not_null())["unit"].cast(pl.String))
        shown = next((r for r in units.select("unit", "name").iter_rows() if r[0] in moving), units.row(0)[:2])
        chart_objs["sobol_unit"] = charts.unit_sobol_bars(sens, shown[0], lang=labels)
        note = (f"<p>{tr('Until a unit is selected:')} {html.escape(shown[1])} "
                f"({tr('the best-ranked unit whose rank moves')})</p>")
        sections.append(("sensitivity", tr("Sensitivity"), _chart_div("sobol") + note + _chart_div("sobol_unit")
                         + _details(tr("Sobol run"), sens.manifest)))

    # Sampling
    boot = loaded["bootstrap"]
    if boot is not None:
        chart_objs["bootstrap"] = charts.rank_intervals(boot, result, max_units=max_units, lang=labels)
        body = _chart_div("bootstrap", scroll=True)
        if "cs_ci_lower" in boot.units.columns:
            chart_objs["confidence_sets"] = charts.confidence_sets(boot, result, max_units=max_units, lang=labels)
            body += _chart_div("confidence_sets", scroll=True)
        if boot.manifest.get("variance_shares"):
            chart_objs["variance_shares"] = charts.variance_shares(boot, lang=labels)
            body += _chart_div("variance_shares")
        table = _whole_ranks(boot.units.with_columns(pl.col("unit").cast(pl.String)).join(
            units.select("unit", "name"), on="unit", how="left", maintain_order="left"))
        table = table.select("unit", "name", *[c for c in table.columns if c not in ("unit", "name")])
        every = tr("Every unit's bootstrap statistics")
        body += (_fold(f"{every} ({table.height} units)", table) if table.height <= 5000
                 else f"<p>{every}: {table.height:,} units (in the run's folder).</p>")
        intro = tr("Bootstrap rank intervals ({} resampling, {:,} replicates).").format(
            boot.manifest.get("mode", ""), boot.manifest.get("replicates", 0))
        sections.append(("sampling", tr("Sampling"), f"<p>{intro}</p>" + body
                         + _details(tr("Bootstrap run"), boot.manifest)))

    # Editions
    if previous is not None:
        chart_objs["editions"] = charts.edition_slopes(previous, result, max_units=max_units, lang=labels)
        sections.append(("editions", tr("Editions"), _chart_div("editions", scroll=True)))

    # Audit
    if audit is not None:
        sections.append(("audit", tr("Audit"), _audit_body(audit, chart_objs)))

    # Unit profile
    first = str(units["unit"][0])
    chart_objs["profile"] = charts.unit_profile(result, first, lang=labels)
    chart_objs["peers"] = charts.unit_peers(result, first, lang=labels)
    find = (f' <input id="unit-find" type="search" placeholder="{tr("find a unit…")}"> <span id="unit-found"></span>'
            if units.height > max_units else "")  # the selector lists max_units units: the best, or those found
    sections.append(("profile", tr("Unit profile"), f'<p><label>{tr("Unit: ")}<select id="unit-select"></select>'
                     f"</label>{find}</p>" '<p id="unit-summary"></p>' + _chart_div("profile") + _chart_div("peers")))

    columns = ["rank", "name", "score", *(["tier"] if "tier" in units.columns else []), *dims]
    stability = {"median_rank": "median rank", "q05_rank": "rank 5 %", "q95_rank": "rank 95 %",
                 "p_top10": "P(top 10)", "p_same_tier": "P(same tier)"}
    if mc is not None:  # the Monte Carlo rank interval, P(top 10) and tier stability of every unit
        extra = [c for c in stability if c in mc.units.columns]
        units = units.join(_whole_ranks(mc.units.select(pl.col("unit").cast(pl.String), *extra)), on="unit",
                           how="left", maintain_order="left")
        columns += extra
    rounded = units.select(pl.col(c).round(3 if c.startswith("p_") else 2) if units.schema[c].is_float()
                           else pl.col(c) for c in columns)
    table = {"columns": columns, "rows": rounded.rows(), "bars": ["score", *dims],
             "labels": {c: tr(c) for c in ("rank", "score", "tier")} | {"name": tr("unit"), **names}
             | {k: tr(v) for k, v in stability.items()}}
    title = (f"{fw.labels.get('zh') or fw.labels.get('en', fw.id)}" if labels == "zh" else
             f"{fw.labels.get('en', fw.id)} — {fw.labels.get('zh', '')}".rstrip(" —"))
    meta = charts.profile_nodes(result, labels)
    table_nodes = result.table.select(pl.col(result.dataset.unit).cast(pl.String).alias("unit"),
                                      *meta["node"], *[f"{n}_rank" for n in meta["node"]])
    ordered = units.select("unit", "name", "rank").join(table_nodes, on="unit", how="left", maintain_order="left")
    profile = {"units": ordered["unit"].to_list(), "names": ordered["name"].to_list(),
               "ranks": ordered["rank"].to_list(),
               "scores": [ordered[n].cast(pl.Float64).round(1).to_list() for n in meta["node"]],
               "node_ranks": [ordered[f"{n}_rank"].to_list() for n in meta["node"]], "peers": 2, "options": max_units,
               "dims": [j for j, n in enumerate(meta["node"]) if n in dims]}
    text = {k: tr(k) for k in ("Strongest", "Weakest", "Rank", "rank", "median", "median of all units", "rows", "of",
                               "units found", "shown")}
    nodes = meta.to_dicts()  # a list: the order of P.scores (object keys like "1" would be reordered)
    return Report(title, sections, chart_objs, {"table": table, "nodes": nodes, "profile": profile, "text": text},
                  lang=labels)


def load_audit(folder: str | Path) -> Any:
    """Read an audit output folder (``cityrank audit --out DIR``: its tables, ``flags`` and manifest)."""
    from ..audit import AuditResult

    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise DataError(f"no manifest.json in the audit folder {str(folder)!r}", path=str(folder),
                        fix="give the folder written by `cityrank audit --out DIR` (Parquet or CSV)")
    tables = {}
    for path in sorted(folder.iterdir()):
        if path.suffix in (".parquet", ".csv"):
            tables[path.stem] = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)
    if "flags" not in tables:
        raise DataError(f"the audit folder {str(folder)!r} has no flags.parquet or .csv", path=str(folder),
                        fix="write the audit again with --format parquet or csv (xlsx is not read)")
    flags = tables.pop("flags")
    recipe = json.loads(manifest_path.read_text(encoding="utf-8"))
    return AuditResult(tables=tables, flags=flags, recipe=recipe)


def write_figures(report_or_charts: Report | dict[str, Any], folder: str | Path, *, scale: float = 2.0) -> list[Path]:
    """Write every chart as ``<name>.png`` and ``<name>.svg`` in ``folder`` (vl-convert, no browser)."""
    import vl_convert as vlc

    items = report_or_charts.charts if isinstance(report_or_charts, Report) else report_or_charts
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, chart in items.items():
        spec = charts.to_spec(chart)
        svg = vlc.vegalite_to_svg(spec)
        png = vlc.vegalite_to_png(spec, scale=scale)
        written.append(atomic_write(folder / f"{name}.svg", lambda tmp, s=svg: tmp.write_text(s, encoding="utf-8")))
        written.append(atomic_write(folder / f"{name}.png", lambda tmp, p=png: tmp.write_bytes(p)))
    return written


_CSS = """
body{font-family:'Noto Sans CJK SC','Noto Sans SC','Source Han Sans SC','PingFang SC','Microsoft YaHei',
'WenQuanYi Micro Hei','DejaVu Sans',sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3a5f;color:#fff;padding:12px 24px}header h1{margin:0;font-size:22px}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:8px 24px;z-index:2}
nav a{margin-right:16px;color:#1f3a5f;text-decoration:none;font-weight:600}
section{background:#fff;margin:16px 24px;padding:8px 20px 20px;border:1px solid #e3e3e3;border-radius:6px}
.warn{background:#fff3cd;border:1px solid #e0c36a;padding:8px}.note{color:#555;font-style:italic}
div.chart{margin:12px 0;display:block}
.scroll{max-height:640px;overflow:auto;border:1px solid #eee;width:max-content;max-width:100%}
.tablewrap{max-height:520px;overflow:auto;border:1px solid #eee}
table{border-collapse:collapse;font-size:13px}
td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;white-space:nowrap}
table.sortable th{cursor:pointer;position:sticky;top:0;background:#f0f3f7}
td .bar{display:inline-block;height:9px;background:#4c78a8;margin-right:6px;vertical-align:middle}
table.wrap td:last-child{white-space:normal;min-width:420px}
summary{cursor:pointer;margin:8px 0;font-weight:600}
#search{margin:8px 0;padding:4px 8px;width:260px}select{font-size:14px;padding:3px}
"""

_JS = r"""
(() => {  // one scope: no name clashes with the Vega bundle's globals
const DATA = JSON.parse(document.getElementById('report-data').textContent);
const T = k => (DATA.text && DATA.text[k]) || k;
const esc = s => String(s).replace(/[&<>"]/g, ch => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[ch]));
const views = {};
window.report = {data: DATA, views};  // for scripts and tests: the embedded data and the Vega views
const rendered = Promise.all(Array.from(document.querySelectorAll('[data-chart]')).map(el =>
  vegaEmbed(el, DATA.specs[el.dataset.chart], {actions: false, renderer: 'svg'})
    .then(r => { views[el.dataset.chart] = r.view; })));
window.reportReady = rendered.then(() => { window.reportReadyMs = performance.now(); return true; },
  e => { console.error(e); return false; });  // reportReadyMs: from the start of loading to every chart drawn
(function table() {  // sortable, searchable, paged (PAGE rows drawn at a time: usable with 30,000 units)
  const t = DATA.table, el = document.getElementById('ranking-table'), pager = document.getElementById('pager');
  if (!el) return;
  const PAGE = 500, max = {};
  t.bars.forEach(c => { const i = t.columns.indexOf(c); let m = 0; t.rows.forEach(r => { if (r[i] > m) m = r[i]; });
    max[c] = m || 1; });
  let rows = t.rows, key = 0, asc = true, page = 0, shown = rows;
  const head = '<thead><tr>' + t.columns.map((c, i) => `<th data-i="${i}">${t.labels[c] || c}</th>`).join('') +
    '</tr></thead>';
  function cell(c, v) {
    if (v === null || v === undefined) return '<td></td>';
    if (t.bars.includes(c)) return `<td><span class="bar" style="width:${(60 * v / max[c]).toFixed(1)}px"></span>` +
      `${v.toFixed(1)}</td>`;
    const fixed = typeof v === 'number' && (c.startsWith('p_') || !Number.isInteger(v));
    return `<td>${fixed ? v.toFixed(2) : esc(v)}</td>`;
  }
  function filter() {
    const q = document.getElementById('search').value.trim().toLowerCase();
    shown = q ? rows.filter(r => r.some(v => String(v).toLowerCase().includes(q))) : rows;
    page = 0;
  }
  function draw() {
    const pages = Math.max(1, Math.ceil(shown.length / PAGE));
    page = Math.min(Math.max(page, 0), pages - 1);
    const part = shown.slice(page * PAGE, (page + 1) * PAGE);
    el.innerHTML = head + '<tbody>' + part.map(r => '<tr>' + r.map((v, i) => cell(t.columns[i], v)).join('') +
      '</tr>').join('') + '</tbody>';
    pager.innerHTML = shown.length > PAGE ? `<button id="prev">◀</button> ${T('rows')} ${page * PAGE + 1}–` +
      `${page * PAGE + part.length} ${T('of')} ${shown.length.toLocaleString()} <button id="next">▶</button>` : '';
    if (shown.length > PAGE) {
      document.getElementById('prev').onclick = () => { page -= 1; draw(); };
      document.getElementById('next').onclick = () => { page += 1; draw(); };
    }
    el.querySelectorAll('th').forEach(th => th.onclick = () => {
      const i = +th.dataset.i; asc = key === i ? !asc : true; key = i;
      rows = rows.slice().sort((a, b) => (a[i] === b[i] ? 0 : (a[i] === null ? 1 : b[i] === null ? -1 :
        (a[i] < b[i] ? -1 : 1))) * (asc ? 1 : -1));
      filter(); draw();
    });
  }
  document.getElementById('search').oninput = () => { filter(); draw(); };
  draw();
})();
const select = document.getElementById('unit-select');
const P = DATA.profile;
function profileRows(i) {  // as engine.report.charts.profile_rows
  return DATA.nodes.map((m, j) => Object.assign({}, m,
    {score: P.scores[j][i], rank: P.node_ranks[j][i]}));
}
function peerRows(i) {  // as engine.report.charts.unit_peers
  const n = P.units.length, start = Math.max(0, Math.min(i - P.peers, n - 2 * P.peers - 1));
  const end = Math.min(n, start + 2 * P.peers + 1), out = [];
  const dims = P.dims.map(j => [DATA.nodes[j], j]);
  for (let k = start; k < end; k++) dims.forEach(([m, j], d) => out.push({who: `${P.ranks[k]}. ${P.names[k]}`,
    role: k === i ? 'unit' : 'peer', order: k - start, dimension: m.label, dim_order: d, score: P.scores[j][k]}));
  dims.forEach(([m], d) => out.push({who: T('median of all units'), role: 'median', order: end - start,
    dimension: m.label, dim_order: d, score: Math.round(m.median * 10) / 10}));
  return out;
}
function summary(i) {
  const el = document.getElementById('unit-summary');
  const mine = profileRows(i).filter(r => r.kind === 'indicator' && r.rank !== null).sort((a, b) => a.rank - b.rank);
  const fmt = list => list.map(r => `${r.label} (${T('rank')} ${r.rank})`).join('; ');
  let text = mine.length ? `${T('Strongest')}: ${fmt(mine.slice(0, 3))}. ${T('Weakest')}: ` +
    `${fmt(mine.slice(-3).reverse())}.` : '';
  const t = DATA.table, row = t.rows[i];  // the table and the profile list the units in the same order
  const get = c => (row && t.columns.includes(c) ? row[t.columns.indexOf(c)] : null);
  text += ` ${T('Rank')} ${P.ranks[i]}`;
  if (get('q05_rank') !== null) text += `; ${T('median')} ${get('median_rank')}, 5–95 %: ${get('q05_rank')}–` +
    `${get('q95_rank')}`;
  el.textContent = text + '.';
}
function setData(chart, rows) {  // the chart's one dataset replaced by these rows
  const view = views[chart];
  return view ? view.data(Object.keys(DATA.specs[chart].datasets)[0], rows).runAsync() : null;
}
function fill(q) {  // the selector's options: the first P.options units (best first) matching q
  const found = [], query = q.trim().toLowerCase();
  for (let i = 0; i < P.units.length && found.length < P.options; i++) {
    if (!query || P.names[i].toLowerCase().includes(query) || P.units[i].toLowerCase().includes(query)) found.push(i);
  }
  select.innerHTML = found.map(i => `<option value="${esc(P.units[i])}">${P.ranks[i]}. ${esc(P.names[i])}</option>`)
    .join('');
  const note = document.getElementById('unit-found');
  if (note) note.textContent = query ? `${found.length}${found.length === P.options ? '+' : ''} ${T('units found')}` :
    `${T('shown')} ${found.length.toLocaleString()} / ${P.units.length.toLocaleString()}`;
  return found;
}
if (select) {
  fill('');
  summary(0);
  const find = document.getElementById('unit-find');
  if (find) find.oninput = () => { if (fill(find.value).length) select.onchange(); };
  select.onchange = () => {
    const i = P.units.indexOf(select.value);
    summary(i);
    window.unitUpdated = rendered.then(() => Promise.all([setData('profile', profileRows(i)),
      setData('peers', peerRows(i)), ...Object.values(views).map(v => {
        try { return v.signal('picked', select.value).runAsync(); } catch (e) { return null; }  // no parameter
      })]));
  };
}
})();
"""
