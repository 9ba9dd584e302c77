"""``engine.report.build``: one self-contained HTML file (every script, style and datum inline)."""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from .. import __version__
from ..errors import DataError
from ..io import atomic_write, check_output, settings_table
from . import charts

__all__ = ["Report", "build", "check_path", "load_folder", "write_figures"]


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

    def html(self) -> str:
        specs = {k: charts.to_spec(c) for k, c in self.charts.items()}
        nav = "".join(f'<a href="#{sid}">{html.escape(t)}</a>' for sid, t, _ in self.sections)
        body = "".join(f'<section id="{sid}"><h2>{html.escape(t)}</h2>{b}</section>' for sid, t, b in self.sections)
        payload = json.dumps({"specs": specs, **self.data}, ensure_ascii=False, default=str).replace("</", "<\\/")
        title = html.escape(self.title)
        return "".join([
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
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


def _table_html(frame: pl.DataFrame, digits: int = 2) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for row in frame.iter_rows():
        cells = "".join(f"<td>{v:.{digits}f}</td>" if isinstance(v, float) else f"<td>{html.escape(str(v))}</td>"
                        for v in row)
        rows.append(f"<tr>{cells}</tr>")
    return f'<table class="plain"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def build(framework: Any, data: Any = None, uncertainty: Any = None, sensitivity: Any = None, bootstrap: Any = None,
          audit: Any = None, *, previous: Any = None, top: int = 30, replicates: int = 10_000, seed: int = 2024,
          **load_kwargs: Any) -> Report:
    """Build the report of ``framework`` scored on ``data`` (default: its shipped data).

    ``uncertainty``, ``sensitivity``, ``bootstrap``: result objects (``engine.uncertainty(...)``
    etc.) or their output folders; each adds its section.  Without any of them a default Monte
    Carlo study runs (``replicates`` replicates, ±25 % noise on every weight, ``seed``).  An
    analysis of another framework or dataset is refused (:class:`DataError`) before any work.
    ``previous``: the previous edition (its data, or a :class:`ScoreResult` of the same framework)
    adds the Editions section."""
    from ..pipeline import ScoreResult, score

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
    audited = getattr(audit, "score", None)
    if audited is not None and audited.framework.digest != result.framework.digest:
        raise DataError(f"the audit is of framework {audited.framework.id!r}, not of {result.framework.id!r}",
                        fix="audit this framework, or report on the audited one")
    if all(v is None for v in loaded.values()):
        from ..analysis.uncertainty import uncertainty as run_uncertainty

        loaded["uncertainty"] = run_uncertainty(result.framework, result.dataset, replicates=replicates, seed=seed)
    fw, index = result.framework, result.index_id
    units = charts.unit_frame(result)
    dims = [c for c in fw.root.children if c in units.columns]
    chart_objs: dict[str, Any] = {}
    sections: list[tuple[str, str, str]] = []

    # Overview
    synthetic = result.recipe.get("data", {}).get("synthetic")
    warn = ('<p class="warn">These data are SYNTHETIC: calibrated for demonstration, not observed.</p>'
            if synthetic else "")
    info = {"framework": f"{fw.labels.get('en', fw.id)} / {fw.labels.get('zh', '')}", "framework id": fw.id,
            "units": units.height, "indicators": len(fw.indicators),
            "data": result.recipe.get("data", {}).get("source"), "engine": f"cityrank {__version__}"}
    chart_objs["framework"] = charts.framework_tree(result)
    imputed = result.imputed_cells().drop(result.dataset.unit).sum()
    coverage = pl.DataFrame({"indicator": [i.id for i in fw.indicators],
                             "label": [charts.node_label(fw, i.id) for i in fw.indicators],
                             "imputed cells": [int(imputed[i.id][0]) for i in fw.indicators]}).with_columns(
        coverage=(1 - pl.col("imputed cells") / max(units.height, 1)))
    sections.append(("overview", "Overview", warn + _table_html(pl.DataFrame(
        {"what": list(info), "value": [str(v) for v in info.values()]})) + _chart_div("framework")
        + _fold(f"Data coverage: {int(coverage['imputed cells'].sum())} imputed cells (missing in the data, filled "
                "by the impute stage)", coverage)
        + _details("Recipe: every setting of every stage, seeds and versions", result.recipe)))

    # Ranking
    chart_objs["top"] = charts.top_bar(result, top)
    tiers = ""
    if "tier" in units.columns:
        sizes = units.group_by("tier").agg(pl.len().alias("units"), pl.col("score").min().alias("lowest score"),
                                           pl.col("score").max().alias("highest score")).sort("tier")
        tiers = "<h3>Tiers</h3>" + _table_html(sizes)
    labels = {d: charts.node_label(fw, d) for d in dims}
    ranking = ('<input id="search" type="search" placeholder="search units…">'
               '<div class="tablewrap"><table id="ranking-table" class="sortable"></table></div>')
    sections.append(("ranking", "Ranking", ranking + tiers + _chart_div("top")))

    # Indicators
    chart_objs["distributions"] = charts.indicator_distributions(result)
    chart_objs["correlation"] = charts.correlation_heatmap(result)
    sections.append(("indicators", "Indicators", _chart_div("distributions") + _chart_div("correlation")))

    # Robustness
    mc = loaded["uncertainty"]
    if mc is not None:
        chart_objs["intervals"] = charts.rank_intervals(mc, result)
        chart_objs["rank_shift"] = charts.rank_shift_histogram(mc)
        shift = mc.manifest.get("rank_shift", {}).get(index) or {}
        summary = (f"<p>{mc.manifest.get('replicates', 0):,} replicates, seed {mc.manifest.get('seed')}; mean rank "
                   f"shift R_S {shift.get('mean', float('nan')):.2f} (5–95 %: {shift.get('q05', float('nan')):.2f}–"
                   f"{shift.get('q95', float('nan')):.2f}).</p>")
        cols = [c for c in ("unit", "nominal_rank", "median_rank", "q05_rank", "q95_rank", "p_top10", "p_same_tier",
                            "rank_range_90") if c in mc.units.columns]
        least = (mc.units.with_columns(pl.col("unit").cast(pl.String))
                 .sort(["rank_range_90", "rank_sd"], descending=True, nulls_last=True).head(10).select(cols)
                 .join(units.select("unit", "name"), on="unit", how="left", maintain_order="left")
                 .select("unit", "name", *cols[1:]))
        sections.append(("robustness", "Robustness", summary + _chart_div("intervals", scroll=True)
                         + "<h3>Least stable units</h3>" + _table_html(least) + _chart_div("rank_shift")
                         + _details("Monte Carlo run", mc.manifest)))

    # Sensitivity
    sens = loaded["sensitivity"]
    if sens is not None:
        chart_objs["sobol"] = charts.sobol_bars(sens)
        chart_objs["sobol_unit"] = charts.unit_sobol_bars(sens, str(units["unit"][0]))
        sections.append(("sensitivity", "Sensitivity", _chart_div("sobol") + _chart_div("sobol_unit")
                         + _details("Sobol run", sens.manifest)))

    # Sampling
    boot = loaded["bootstrap"]
    if boot is not None:
        chart_objs["bootstrap"] = charts.rank_intervals(boot, result)
        table = boot.units.with_columns(pl.col("unit").cast(pl.String)).join(
            units.select("unit", "name"), on="unit", how="left", maintain_order="left")
        table = table.select("unit", "name", *[c for c in table.columns if c not in ("unit", "name")])
        sets = ("; rank confidence sets (ci_lower–ci_upper) and variance shares by source are in the table below"
                if any(c.startswith("ci_") or "share" in c for c in table.columns) else "")
        sections.append(("sampling", "Sampling", f"<p>Bootstrap rank intervals ({boot.manifest.get('mode', '')} "
                         f"resampling, {boot.manifest.get('replicates', 0):,} replicates){sets}.</p>"
                         + _chart_div("bootstrap", scroll=True)
                         + _fold(f"Every unit's bootstrap statistics ({table.height} units)", table)
                         + _details("Bootstrap run", boot.manifest)))

    # Editions
    if previous is not None:
        chart_objs["editions"] = charts.edition_slopes(previous, result)
        sections.append(("editions", "Editions", _chart_div("editions", scroll=True)))

    # Audit
    if audit is not None:
        body = f"<pre>{html.escape(audit.verdict())}</pre>"
        if "importance_nodes" in audit.tables:
            chart_objs["weight_importance"] = charts.weight_importance(audit)
            body += _chart_div("weight_importance")
        sections.append(("audit", "Audit", body))

    # Unit profile
    chart_objs["profile"] = charts.unit_profile(result)
    options = "".join(f'<option value="{html.escape(u)}">{r}. {html.escape(n)}</option>'
                      for u, n, r in units.select("unit", "name", "rank").iter_rows())
    sections.append(("profile", "Unit profile", f'<p><label>Unit: <select id="unit-select">{options}</select>'
                     "</label> (also marked in red in the rank-interval charts)</p>"
                     '<p id="unit-summary"></p>' + _chart_div("profile")))

    columns = ["rank", "name", "score", *(["tier"] if "tier" in units.columns else []), *dims]
    stability = {"q05_rank": "rank 5 %", "q95_rank": "rank 95 %", "p_top10": "P(top 10)", "p_same_tier": "P(same tier)"}
    if mc is not None:  # the Monte Carlo rank interval, P(top 10) and tier stability of every unit
        extra = [c for c in stability if c in mc.units.columns]
        units = units.join(mc.units.select(pl.col("unit").cast(pl.String), *extra), on="unit", how="left",
                           maintain_order="left")
        columns += extra
    table = {"columns": columns, "rows": units.select(columns).rows(), "bars": ["score", *dims],
             "labels": {"rank": "rank", "name": "unit", "score": "score", "tier": "tier", **labels, **stability}}
    title = f"{fw.labels.get('en', fw.id)} — {fw.labels.get('zh', '')}".rstrip(" —")
    nodes = {r["node"]: r for r in charts.profile_nodes(result).iter_rows(named=True)}
    return Report(title, sections, chart_objs, {"table": table, "nodes": nodes})


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
.warn{background:#fff3cd;border:1px solid #e0c36a;padding:8px}
div.chart{margin:12px 0;display:block}
.scroll{max-height:640px;overflow:auto;border:1px solid #eee;width:max-content;max-width:100%}
.tablewrap{max-height:520px;overflow:auto;border:1px solid #eee}
table{border-collapse:collapse;font-size:13px}
td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;white-space:nowrap}
table.sortable th{cursor:pointer;position:sticky;top:0;background:#f0f3f7}
td .bar{display:inline-block;height:9px;background:#4c78a8;margin-right:6px;vertical-align:middle}
summary{cursor:pointer;margin:8px 0;font-weight:600}
#search{margin:8px 0;padding:4px 8px;width:260px}select{font-size:14px;padding:3px}
"""

_JS = r"""
const DATA = JSON.parse(document.getElementById('report-data').textContent);
const views = {};
const rendered = Promise.all(Array.from(document.querySelectorAll('[data-chart]')).map(el =>
  vegaEmbed(el, DATA.specs[el.dataset.chart], {actions: false, renderer: 'svg'})
    .then(r => { views[el.dataset.chart] = r.view; })));
window.reportReady = rendered.then(() => true, e => { console.error(e); return false; });
(function table() {
  const t = DATA.table, el = document.getElementById('ranking-table');
  if (!el) return;
  const max = {};
  t.bars.forEach(c => { const i = t.columns.indexOf(c); max[c] = Math.max(...t.rows.map(r => r[i] || 0)) || 1; });
  let rows = t.rows.slice(), key = 0, asc = true;
  const head = '<thead><tr>' + t.columns.map((c, i) => `<th data-i="${i}">${t.labels[c] || c}</th>`).join('') +
    '</tr></thead>';
  const esc = s => String(s).replace(/[&<>"]/g, ch => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[ch]));
  function cell(c, v) {
    if (v === null || v === undefined) return '<td></td>';
    if (t.bars.includes(c)) return `<td><span class="bar" style="width:${(60 * v / max[c]).toFixed(1)}px"></span>` +
      `${v.toFixed(1)}</td>`;
    const fixed = typeof v === 'number' && (c.startsWith('p_') || !Number.isInteger(v));
    return `<td>${fixed ? v.toFixed(2) : esc(v)}</td>`;
  }
  function draw() {
    const q = document.getElementById('search').value.trim().toLowerCase();
    const shown = rows.filter(r => !q || r.some(v => String(v).toLowerCase().includes(q)));
    el.innerHTML = head + '<tbody>' + shown.map(r => '<tr>' + r.map((v, i) => cell(t.columns[i], v)).join('') +
      '</tr>').join('') + '</tbody>';
    el.querySelectorAll('th').forEach(th => th.onclick = () => {
      const i = +th.dataset.i; asc = key === i ? !asc : true; key = i;
      rows.sort((a, b) => (a[i] === b[i] ? 0 : (a[i] === null ? 1 : b[i] === null ? -1 : (a[i] < b[i] ? -1 : 1))) *
        (asc ? 1 : -1));
      draw();
    });
  }
  document.getElementById('search').oninput = draw;
  draw();
})();
const select = document.getElementById('unit-select');
function rows(chart) {  // the chart's largest dataset (its rows; smaller ones are lookups)
  const spec = DATA.specs[chart];
  return spec ? Object.values(spec.datasets).reduce((a, b) => (a.length >= b.length ? a : b)) : [];
}
function summary() {
  const el = document.getElementById('unit-summary'), unit = select.value;
  if (!el) return;
  const mine = rows('profile').filter(r => r.unit === unit && DATA.nodes[r.node].kind === 'indicator' &&
    r.rank !== null).sort((a, b) => a.rank - b.rank);
  const fmt = list => list.map(r => `${DATA.nodes[r.node].label} (rank ${r.rank})`).join('; ');
  let text = mine.length ? `Strongest: ${fmt(mine.slice(0, 3))}. Weakest: ${fmt(mine.slice(-3).reverse())}.` : '';
  const mc = rows('intervals').find(r => r.unit === unit);
  if (mc) text += ` Rank ${mc.nominal_rank}; median ${mc.median_rank}, 5–95 %: ${mc.q05_rank}–${mc.q95_rank}.`;
  el.textContent = text;
}
if (select) {
  summary();
  select.onchange = () => {
    summary();
    window.unitUpdated = rendered.then(() => Promise.all(Object.values(views).map(v => {
      try { return v.signal('picked', select.value).runAsync(); } catch (e) { return null; }  // no parameter
    })));
  };
}
"""
