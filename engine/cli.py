"""Command line of cityrank: score composite-indicator rankings and test how far they can be trusted.

The CLI stays thin: arguments → :mod:`engine` API → a printed table or an output file.  Bad input
exits with status 2 and a one-paragraph message naming the offending node/column/units and the fix.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from . import __version__
from .errors import EngineError, EngineWarning
from .io import check_output
from .resources import shipped_datasets, shipped_frameworks

__all__ = ["main"]


def _width(text: str) -> int:
    """Display width in a terminal (CJK characters take two columns, combining marks none)."""
    import unicodedata

    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _fit(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` display columns (an ellipsis marks the cut)."""
    if _width(text) <= width:
        return text
    out = ""
    for ch in text:
        if _width(out + ch) > width - 1:
            break
        out += ch
    return out + "…"


def _render(headers: Sequence[str], rows: Sequence[Sequence[object]], left: Sequence[int] = (0,),
            max_width: int = 28) -> str:
    """An aligned text table by display width: columns in ``left`` are left-aligned (text), the
    others right-aligned (numbers); cells are cut to ``max_width`` columns; None shows as —."""
    cells = [[_fit("—" if v is None else str(v), max_width) for v in row] for row in rows]
    widths = [max([_width(h)] + [_width(r[k]) for r in cells]) for k, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(_pad(v, w) if k in left else " " * (w - _width(v)) + v
                         for k, (v, w) in enumerate(zip(values, widths, strict=True))).rstrip()

    return "\n".join([line(list(headers)), *(line(r) for r in cells)])


def _labels(dataset) -> dict:
    """Unit id → display name (empty without a label column)."""
    if dataset is None or not dataset.label:
        return {}
    return dict(zip(dataset.table[dataset.unit].to_list(), dataset.table[dataset.label].to_list(), strict=True))


def _format_top(result, n: int, node: str | None = None) -> str:
    node = node or result.index_id
    top = result.top(n, node)
    label = result.dataset.label
    tiered = result.framework.tiers and result.framework.tiers["node"] == node
    tier_column = f"{node}_tier" if tiered else None
    tiers = {}
    if tier_column in result.table.columns:  # the shown units' tiers only (10^6 units: no million-entry dict)
        unit = result.dataset.unit
        shown = result.table.filter(pl.col(unit).is_in(top[unit].implode())).select(unit, tier_column)
        tiers = dict(zip(shown[unit].to_list(), shown[tier_column].to_list(), strict=True))
    headers = ["rank", "unit", *(["name"] if label else []), "score", *(["tier"] if tiers else [])]
    rows = []
    for row in top.iter_rows(named=True):
        unit, value = row[result.dataset.unit], row[node]
        rows.append([row[f"{node}_rank"], unit, *([row[label]] if label else []),
                     None if value is None else f"{value:.4f}", *([tiers.get(unit)] if tiers else [])])
    return _render(headers, rows, left=(1, 2) if label else (1,))


def _cmd_frameworks(args: argparse.Namespace) -> int:
    from .schema import load_framework

    for name in shipped_frameworks():
        fw = load_framework(name)
        zh = f" / {fw.labels['zh']}" if "zh" in fw.labels else ""
        print(f"{name}: {fw.labels['en']}{zh}")
        print(f"    {len(fw.indicators)} indicators, {len(fw.aggregates)} aggregates; default data: "
              f"{fw.data.get('dataset', '—')}{' (SYNTHETIC)' if fw.data.get('synthetic') else ''}")
        if fw.source:
            print(f"    source: {fw.source}")
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    for name, path in shipped_datasets().items():
        print(f"{name}: {path.name}")
    return 0


def _load_kwargs(args: argparse.Namespace) -> dict:
    kwargs = {}
    if getattr(args, "unit", None):
        kwargs["unit"] = args.unit
    if getattr(args, "groups", None):
        kwargs["groups"] = args.groups
    if getattr(args, "label", None):
        kwargs["label"] = args.label
    if getattr(args, "sheet", None):
        kwargs["sheet"] = args.sheet
    if getattr(args, "encoding", None):
        kwargs["encoding"] = args.encoding
    if getattr(args, "skip_rows", None) is not None:
        kwargs["skip_rows"] = args.skip_rows
    return kwargs


def _cmd_validate(args: argparse.Namespace) -> int:
    from . import validate

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fw = validate(args.framework, args.data, **_load_kwargs(args))
    for warning in caught:
        warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    what = f" and data {args.data!r}" if args.data else ""
    issues = f", with {len(caught)} warning(s) above" if caught else ""
    print(f"ok: framework {fw.id!r} ({len(fw.indicators)} indicators, {len(fw.aggregates)} aggregates){what} "
          f"valid{issues}")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from .pipeline import score

    started = time.perf_counter()
    framework = args.framework
    if args.tiers:
        from .schema import framework_from_dict, load_framework

        fw = load_framework(args.framework)
        framework = framework_from_dict({**dict(fw.document), "tiers": {"k": args.tiers}}, path=fw.path)
    if args.out:
        check_output(args.out, "file", inputs=[args.framework, args.data])
    result = score(framework, args.data, **_load_kwargs(args))
    if args.percentiles is not None:  # "" = among all units
        from dataclasses import replace

        extra = result.percentile_ranks(within=args.percentiles or None).drop(result.dataset.unit)
        result = replace(result, table=result.table.with_columns(extra))
    elapsed = time.perf_counter() - started
    if result.recipe["data"]["synthetic"]:
        print("NOTE: this dataset is SYNTHETIC (generated), not observed data.")
    if result.recipe["data"].get("encoding") not in (None, "utf-8", "utf-8-sig"):
        print(f"note: read {result.dataset.source} as {result.recipe['data']['encoding']} text (not UTF-8)")
    if args.out:
        path = result.write(args.out, labels=args.labels, bom=not args.no_bom)
        print(f"wrote {result.table.height} units × {len(result.framework.node_ids)} nodes to {path}")
    print(f"{result.framework.labels['en']} — {result.table.height} units, scored in {elapsed:.2f} s")
    print(_format_top(result, args.top, args.node))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .analysis.uncertainty import uncertainty
    from .pipeline import score
    from .report import build as build_report
    from .report import check_path

    check_path(args.report)
    print(f"cityrank {__version__} demo (first run includes JIT compilation)\n")
    for name, note in (("china-city-innovation-2023", "REAL data: China City Statistical Yearbook 2024"),
                       ("ai-city-2024", "SYNTHETIC data calibrated to the 2024 AI city report")):
        started = time.perf_counter()
        result = score(name)
        tiers = result.recipe["stages"].get("tiers", {}).get("sizes", {})
        print(f"== {result.framework.labels['en']} / {result.framework.labels.get('zh', '')}")
        print(f"   {note}; {result.table.height} cities; scored in {time.perf_counter() - started:.2f} s; "
              f"tier sizes {dict(sorted(tiers.items()))}")
        print(_format_top(result, args.top))
        print()
    print(f"== Weight sensitivity: {args.replicates:,} Monte Carlo replicates, ±25% noise on every weight "
          "(china-city-innovation-2023)")
    run = uncertainty("china-city-innovation-2023", replicates=args.replicates, seed=2024, progress=False)
    m = run.manifest
    print(f"   {m['replicates']:,} replicates in {m['wall_time_s']:.2f} s ({m['replicates_per_s']:,.0f}/s); "
          f"mean rank shift R_S = {m['rank_shift']['Index']['mean']:.2f} "
          f"(95th percentile {m['rank_shift']['Index']['q95']:.2f})")
    _print_unstable(run.least_stable(args.top), run.problem, "widest 90% rank interval")
    path = build_report(run.problem.result or "china-city-innovation-2023", uncertainty=run).write(args.report)
    print(f"\n== Report (one HTML file, works offline): {path.resolve()}")
    return 0


def _edition_only(args: argparse.Namespace) -> None:
    """Refuse --period and --normalisation without --edition (they say how one period of panel data is
    scored; without it they would be ignored, or handed to a single table's loading)."""
    given = [f"--{name}" for name in ("period", "normalisation") if getattr(args, name) is not None]
    if args.edition is None and given:
        from .errors import SchemaError

        raise SchemaError(f"option(s) {' and '.join(given)} apply only to one period of panel data (--edition)",
                          fix=f"add --edition PERIOD, or leave out {' and '.join(given)}")


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import build, check_path, write_figures

    _edition_only(args)
    out = check_path(args.out)
    framework, data, load = args.framework, args.data, _load_kwargs(args)
    if args.edition is not None:  # one period of a panel, scored with the panel's framework
        from .panel import load_edition, said_by_load_panel
        from .pipeline import score

        _, edition_framework, dataset = load_edition(args.framework, args.data, args.edition,
                                                     args.normalisation or "period", period=args.period, **load)
        with said_by_load_panel():
            framework, data, load = score(edition_framework, dataset), None, {}
    report = build(framework, data, uncertainty=args.uncertainty, sensitivity=args.sensitivity,
                   bootstrap=args.bootstrap, audit=args.audit, previous=args.previous, replicates=args.replicates,
                   seed=args.seed, labels=args.labels, **load)
    path = report.write(out)
    print(f"report: {path.resolve()} ({path.stat().st_size / 1e6:.1f} MB; sections: "
          f"{', '.join(t for _, t, _ in report.sections)})")
    if args.figures:
        files = write_figures(report, args.figures)
        print(f"figures: {len(files)} files (PNG and SVG) in {Path(args.figures).resolve()}")
    return 0


def _cmd_weights(args: argparse.Namespace) -> int:
    from .schema import DATA_DRIVEN_WEIGHTING, load_framework
    from .stages.weights import resolve_weights

    fw = load_framework(args.framework)
    if any(a.weighting.name in DATA_DRIVEN_WEIGHTING for a in fw.aggregates):
        from .pipeline import score

        result = score(fw, args.data, **_load_kwargs(args))
        weights, record = result.stages.weights, result.recipe["stages"].get("weighting", {})
    else:
        weights, record = resolve_weights(fw, None)
    effective, local = fw.effective_weights(weights), fw.local_weights(weights)
    print(f"{fw.labels['en']}: effective (global) weight of every indicator")
    rows = []
    for ind in fw.indicators:
        rows.append([ind.id, ind.parent, f"{local[ind.id]:.4f}", f"{effective[ind.id]:.5f}"])
    rows.append(["sum", "", "", f"{sum(effective.values()):.5f}"])
    print(_render(["indicator", "parent", "local", "global"], rows, left=(0, 1), max_width=40))
    for node, rec in record.items():
        if rec.get("method") == "ahp":
            flag = "  (CR >= 0.1: inconsistent)" if rec["cr"] >= 0.1 else ""
            print(f"AHP {node}: lambda_max={rec['lambda_max']:.5f} CI={rec['ci']:.5f} CR={rec['cr']:.4f} "
                  f"(RI {rec['random_index_table']} {rec['random_index']}){flag}")
        else:
            print(f"{rec['method']} weighting at {node}")
    return 0


def _cmd_groups(args: argparse.Namespace) -> int:
    from .groups import aggregate_groups
    from .pipeline import score

    if args.out:
        check_output(args.out, "file", inputs=[args.framework, args.data])
    result = score(args.framework, args.data, **_load_kwargs(args))
    nodes = [result.index_id, *[c for c in result.framework.root.children if c in result.table.columns]]
    if args.by not in result.table.columns:
        table = result.dataset.table.select(result.dataset.unit, args.by) if args.by in result.dataset.table.columns \
            else None
        if table is None:
            from .errors import DataError

            example = ", ".join(result.dataset.groups) or "province"
            raise DataError("group column not found in the data", column=args.by,
                            fix=f"choose a column of the data file, e.g. {example}")
        scored = result.table.join(table, on=result.dataset.unit, how="left")
    else:
        scored = result.table
    groups = aggregate_groups(scored, args.by, nodes, how=args.how)
    if args.out:
        from .io import write_table

        write_table(groups, args.out, metadata={"groups": {"by": args.by, "how": args.how}, **result.recipe})
        print(f"wrote {groups.height} groups to {args.out}")
    shown = groups if args.top is None else groups.head(args.top)
    print(f"{result.framework.labels['en']}: {groups.height} groups by {args.by} ({args.how} of unit scores)"
          + (f", top {shown.height}" if shown.height < groups.height else ""))
    headers = [args.by, "units", *(x for c in nodes for x in (c, "rank"))]
    rows = [[row[args.by], row["n_units"], *(x for c in nodes for x in (
            None if row[c] is None else f"{row[c]:.4f}", row[f"{c}_rank"]))] for row in shown.iter_rows(named=True)]
    print(_render(headers, rows))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from .groups import compare_editions
    from .pipeline import score

    if args.out:
        check_output(args.out, "file", inputs=[args.framework, args.old, args.new])
    old = score(args.framework, args.old, **_load_kwargs(args))
    new = score(args.framework, args.new, **_load_kwargs(args))
    node = args.node or old.index_id
    table = compare_editions(old.table, new.table, old.dataset.unit, node)
    if args.out:
        from .io import write_table

        write_table(table, args.out, metadata={"old": old.recipe, "new": new.recipe})
        print(f"wrote {table.height} units to {args.out}")
    labels = {**_labels(old.dataset), **_labels(new.dataset)}
    unit = old.dataset.unit
    print(f"{old.framework.labels['en']}: rank change of {node} from {args.old} to {args.new} "
          f"(top {min(args.top, table.height)} of {table.height} units by the new rank; + = moved up)")
    headers = ["unit", *(["name"] if labels else []), "old rank", "new rank", "change", "old score", "new score",
               "status"]

    def number(value, form: str):
        return None if value is None else format(value, form)

    rows = [[row[unit], *([labels.get(row[unit])] if labels else []), row["rank_old"], row["rank_new"],
             number(row["rank_change"], "+d"), number(row["score_old"], ".4f"), number(row["score_new"], ".4f"),
             row["status"]] for row in table.head(args.top).iter_rows(named=True)]
    print(_render(headers, rows, left=(0, 1, 7) if labels else (0, 6)))
    return 0


def _cmd_trajectories(args: argparse.Namespace) -> int:
    from .panel import score_panel

    if args.out:
        check_output(args.out, "tables", inputs=[args.framework, args.panel])
    result = score_panel(args.framework, args.panel, normalisation=args.normalisation, period=args.period,
                         unit=args.unit)
    periods, counts = result.periods, result.manifest["units_per_period"]
    print(f"{result.framework.labels['en']}: {len(periods)} periods, {result.manifest['data']['n_units']} units, "
          "normalisation " + ("fitted on the whole panel (scores compare over time)" if args.normalisation == "panel"
                              else "per period (scores compare within a period)"))
    print("units per period: " + ", ".join(f"{p} {counts[str(p)]}" for p in periods))
    by_text = {str(p): p for p in periods}
    a, b = (by_text.get(text, text) if text is not None else default
            for text, default in ((args.start, periods[-2]), (args.end, periods[-1])))
    change = result.change(a, b, args.node)
    node = args.node or result.index_id
    unit, label = result.panel.unit, result.panel.label
    print(f"rank change of {node} from {a} to {b} (top {min(args.top, change.height)} by the {b} rank; "
          f"+ = moved up; {len(result.panel.entered(a, b))} entered, {len(result.panel.left(a, b))} left)")
    rows = [[row[unit], *([row[label]] if label else []), row[f"rank_{a}"], row[f"rank_{b}"],
             None if row["rank_change"] is None else format(row["rank_change"], "+d"),
             None if row[f"score_{b}"] is None else format(row[f"score_{b}"], ".4f"), row["status"]]
            for row in change.head(args.top).iter_rows(named=True)]
    print(_render(["unit", *(["name"] if label else []), f"rank {a}", f"rank {b}", "change", f"score {b}",
                   "status"], rows, left=(0, 1, 6) if label else (0, 5)))
    if args.out:
        path = result.write(args.out, format=args.format)
        print(f"wrote units, trends, events and changes of {len(periods)} periods to {path}")
    return 0


#: A run estimated to take longer than this (seconds) or to store more checkpoints than this (bytes)
#: is started only after a "yes" on a terminal, or with --yes.
ASK_SECONDS, ASK_BYTES = 600.0, 1e9
#: Estimates above these are printed (smaller runs start silently).
SHOW_SECONDS, SHOW_BYTES = 60.0, 100e6


def _size(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} PB"  # pragma: no cover


def _confirm_large_run(args: argparse.Namespace, out: str | None):
    """The ``confirm`` callback of a run: print the estimate of a large run; above ASK_SECONDS or
    ASK_BYTES ask on a terminal, refuse (exit 2 with the estimate) elsewhere unless --yes."""
    from .progress import format_duration

    def confirm(estimate: dict) -> None:
        if estimate["stage"] == "start":
            seconds = estimate["seconds"]
            text = (f"{estimate['replicates']:,} replicates will take about {format_duration(seconds)} "
                    "(timed on a short calibration run)")
            show, big = seconds > SHOW_SECONDS, seconds > ASK_SECONDS
        else:
            size = estimate["checkpoint_bytes"]
            text = f"checkpoints will take about {_size(size)} on disk ({estimate['chunks']:,} chunk files in {out})"
            show, big = size > SHOW_BYTES, size > ASK_BYTES
        if show or big:
            print(f"cityrank: {text}", file=sys.stderr)
        if not big or args.yes:
            return
        stopped = "" if estimate["stage"] == "start" else \
            f"; the first chunk is stored: `{_resume_command(args, out)}` continues"
        if sys.stdin.isatty() and sys.stderr.isatty():
            sys.stderr.write("continue? [y/N] ")
            sys.stderr.flush()
            if sys.stdin.readline().strip().lower() in ("y", "yes"):
                return
            raise EngineError(f"run not started: {text}{stopped}" if not stopped else f"run stopped: {text}{stopped}",
                              fix="use fewer replicates (-n) or answer y")
        raise EngineError(f"large run not started without --yes: {text}" if not stopped
                          else f"large run stopped without --yes: {text}{stopped}",
                          fix="add --yes to run it (or -y), or use fewer replicates (-n)")

    return confirm


def _resume_command(args: argparse.Namespace, out: str | None) -> str:
    """The command line that resumes this run from ``out`` (the original arguments without -o/--out/
    --resume, with the run's seed when it was not given, and ``--resume out``)."""
    import json
    import shlex
    from pathlib import Path

    argv = list(args.argv)
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("-o", "--out", "--resume"):
            skip = True
            continue
        if arg.startswith(("--out=", "--resume=")) or (arg.startswith("-o") and not arg.startswith("--")):
            continue
        kept.append(arg)
    if args.seed is None:
        try:
            seed = json.loads((Path(out) / "run.json").read_text(encoding="utf-8"))["seed"]
            kept += ["--seed", str(seed)]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return "cityrank " + shlex.join([*kept, "--resume", str(out)])


def _cmd_uncertainty(args: argparse.Namespace) -> int:
    from .analysis.uncertainty import uncertainty

    out = args.resume or args.out
    backend = "dask" if (args.scheduler or args.workers) else args.backend
    result = uncertainty(args.framework, args.data, args.spec, replicates=args.replicates, seed=args.seed,
                         block_size=args.block_size, backend=backend, threads=args.threads,
                         scheduler=args.scheduler, workers=args.workers, worker_wait=args.worker_wait,
                         confirm=_confirm_large_run(args, out), out=out, resume=bool(args.resume),
                         overwrite=args.overwrite, keep_checkpoints=args.keep_checkpoints,
                         large_n_above=args.large_n_above, rank_bins=args.rank_bins,
                         out_format=args.format, progress=not args.quiet, **_load_kwargs(args))
    m = result.manifest
    if m["data"] and m["data"].get("synthetic"):
        print("NOTE: this dataset is SYNTHETIC (generated), not observed data.")
    print(f"{m['replicates']:,} replicates in {m['wall_time_s']:.2f} s ({m['replicates_per_s']:,.0f}/s, "
          f"backend {m['backend']}); mean rank shift R_S = {m['rank_shift'][result.problem.target_ids[0]]['mean']:.3f}")
    _print_unstable(result.least_stable(args.top), result.problem, "widest 90% rank interval")
    if out:
        print(_wrote_tables(out, args.format))
    return 0


def _cmd_change(args: argparse.Namespace) -> int:
    from .analysis.change import change
    from .panel import load_panel

    panel = load_panel(args.framework, args.panel, period=args.period, unit=args.unit)
    backend = "dask" if (args.scheduler or args.workers) else args.backend
    result = change(None, panel, start=args.start, end=args.end, spec=args.spec, n_replicates=args.replicates,
                    seed=args.seed, block_size=args.block_size, node=args.node, normalisation=args.normalisation,
                    mode=args.mode, records=args.records, record_id=args.record_id,
                    units=args.units, backend=backend, threads=args.threads, scheduler=args.scheduler,
                    workers=args.workers, worker_wait=args.worker_wait, confirm=_confirm_large_run(args, args.out),
                    out=args.out, out_format=args.format, progress=not args.quiet)
    m = result.manifest
    if m["records"]:
        r = m["records"]
        print(f"paired record bootstrap of {r['n_records']['from']:,} + {r['n_records']['to']:,} records; pairing "
              f"{r['pairing']}" + (f" ({r['persisting']:,} records in both periods)" if r["record_id"] else ""))
    print(f"{m['replicates']:,} paired replicates in {m['wall_time_s']:.2f} s ({m['replicates_per_s']:,.0f}/s, "
          f"backend {m['backend']}); rank change of {m['node']} from {m['periods']['from']} to {m['periods']['to']} "
          f"(normalisation per {m['normalisation']}, ranking {m['units_ranked']} units): "
          f"{m['units']['common']} units in both periods, "
          f"{len(m['units']['entered'])} entered, {len(m['units']['left'])} left")
    labels = {**_labels(result.pair.before.result.dataset), **_labels(result.pair.after.result.dataset)}
    robust = result.robust
    print(f"{robust.height} robust rank changes (5-95% interval excludes 0; + = moved up); "
          f"the {args.top} largest each way:")
    shown = pl.concat([robust.head(args.top), robust.filter(pl.col("median_change") < 0).tail(args.top)]).unique(
        "unit", keep="first", maintain_order=True)
    headers = ["unit", *(["name"] if labels else []), "from", "to", "change", "median", "5%", "95%", "P(up)", "P(down)"]
    rows = [[row["unit"], *([labels.get(row["unit"])] if labels else []), row["rank_from"], row["rank_to"],
             f"{row['change']:+d}", f"{row['median_change']:+.1f}", f"{row['q05_change']:+.1f}",
             f"{row['q95_change']:+.1f}", f"{row['p_improved']:.3f}", f"{row['p_worsened']:.3f}"]
            for row in shown.iter_rows(named=True)]
    print(_render(headers, rows, left=(0, 1) if labels else (0,)))
    for status in ("entered", "left"):
        if m["units"][status]:
            print(f"{status}: {', '.join(str(u) for u in m['units'][status][:10])}"
                  f"{' …' if len(m['units'][status]) > 10 else ''} (status column of the units table)")
    if args.out:
        print(_wrote_tables(args.out, args.format))
    return 0


def _format_indices(indices: pl.DataFrame, level: float = 0.95) -> str:
    """Sobol indices for reading (``level``: the intervals' confidence level): an estimate below 0
    (an index is ≥ 0; small negative estimates are sampling noise) shows as 0 with a * and its
    interval as estimated, and a footnote says so.  The tables keep the raw estimates."""
    clipped = False

    def shown(value: float) -> str:
        nonlocal clipped
        if value is None or value != value:
            return "—"
        if value < 0:
            clipped = True
            return "0.000*"
        return f"{value:.3f} "

    def interval(lo: float, hi: float) -> str:
        return "—" if lo is None or lo != lo else f"[{lo:.3f}, {hi:.3f}]"

    rows = [[row["group"], shown(row["first"]), interval(row["first_lo"], row["first_hi"]), shown(row["total"]),
             interval(row["total_lo"], row["total_hi"])]
            for row in indices.sort("total", descending=True).iter_rows(named=True)]
    head = f"{level * 100:g}% interval"
    text = _render(["group", "first", head, "total", head], rows, max_width=40)
    if clipped:
        raw = ", ".join(f"{row['group']} {name} {row[name]:.4f}" for row in indices.iter_rows(named=True)
                        for name in ("first", "total") if row[name] is not None and row[name] < 0)
        text += ("\n* estimated below 0 (raw: " + raw + "), shown as 0: a Sobol index is ≥ 0, and small "
                 "negative estimates are sampling noise around a value near 0 (the interval shows how near); "
                 "the tables keep the raw values. More base samples (-N) narrow it.")
    return text


def _cmd_audit(args: argparse.Namespace) -> int:
    import yaml

    from .audit import audit
    from .errors import SchemaError

    _edition_only(args)
    if args.out:
        check_output(args.out, "tables", inputs=[args.framework, args.data])
    options = {}
    for item in args.option or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SchemaError(f"--option {item!r} is not NAME=VALUE", node=None, fix="e.g. --option redundant=0.95")
        options[name.strip()] = yaml.safe_load(value)
    load = _load_kwargs(args) | ({"period": args.period} if args.period else {})
    result = audit(args.framework, args.data, sections=args.sections, options=options, edition=args.edition,
                   normalisation=args.normalisation, **load)
    if result.recipe["score"]["data"].get("synthetic"):
        print("NOTE: this dataset is SYNTHETIC (generated), not observed data.")
    print(result.verdict(limit=args.top))
    if args.out:
        result.write(args.out, format=args.format)
        print(_wrote_tables(args.out, args.format))
    return 0


def _cmd_sensitivity(args: argparse.Namespace) -> int:
    from .analysis.sensitivity import sensitivity, sensitivity_factors

    if args.list_factors:
        factors = sensitivity_factors(args.framework, args.data, args.spec, **_load_kwargs(args))
        print(_render(factors.columns, factors.rows(), left=(0, 1, 2, 4), max_width=60))
        return 0
    backend = "dask" if (args.scheduler or args.workers) else args.backend
    result = sensitivity(args.framework, args.data, args.spec, base_samples=args.base_samples, seed=args.seed,
                         n_boot=args.bootstrap, confidence=args.confidence, second_order=args.second_order,
                         threads=args.threads, backend=backend,
                         scheduler=args.scheduler,
                         workers=args.workers, worker_wait=args.worker_wait, out=args.out, out_format=args.format,
                         progress=not args.quiet,
                         **_load_kwargs(args))
    m = result.manifest
    print(f"{m['evaluations']:,} evaluations ({m['base_samples']:,} base samples × "
          f"{m['evaluations'] // m['base_samples']}) in "
          f"{m['wall_time_s']:.2f} s ({m['evaluations_per_s']:,.0f}/s)")
    level = m["bootstrap"]["confidence"] * 100
    print(f"Sobol indices of the mean absolute rank shift R_S ({level:g}% bootstrap intervals):")
    print(_format_indices(result.indices, m["bootstrap"]["confidence"]))
    if result.second is not None:
        print("second-order indices of R_S:")
        for row in result.second.sort("second", descending=True).iter_rows(named=True):
            print(f"  {row['group_a']} × {row['group_b']}: {row['second']:.3f}")
    if args.out:
        print(_wrote_tables(args.out, args.format))
    return 0


def _cmd_bootstrap(args: argparse.Namespace) -> int:
    from .analysis.bootstrap import bootstrap

    backend = "dask" if (args.scheduler or args.workers) else args.backend
    result = bootstrap(args.framework, args.data, args.spec, records=args.records, mode=args.mode,
                       replicates=args.replicates, seed=args.seed, block_size=args.block_size, backend=backend,
                       threads=args.threads, scheduler=args.scheduler, workers=args.workers,
                       worker_wait=args.worker_wait, confirm=_confirm_large_run(args, None), out=args.out,
                       out_format=args.format, progress=not args.quiet, large_n_above=args.large_n_above,
                       rank_bins=args.rank_bins, **_load_kwargs(args))
    m = result.manifest
    if m["data"] and m["data"].get("synthetic"):
        print("NOTE: this dataset is SYNTHETIC (generated), not observed data.")
    target = result.target_ids[0]
    what = {"records": f"record-level Poisson bootstrap of {m['records']['n_records']:,} records"
            if m["records"] else "", "units": f"unit bootstrap ({m['units_drawn']} units drawn per replicate)",
            "noise": f"measurement-error bootstrap ({len(m['noisy_indicators'])} indicators)"}[m["mode"]]
    print(f"{what}: {m['replicates']:,} replicates in {m['wall_time_s']:.2f} s ({m['replicates_per_s']:,.0f}/s, "
          f"backend {m['backend']}); mean rank shift R_S = {m['rank_shift'][target]['mean']:.3f}")
    if m["variance_shares"]:
        overall = m["variance_shares"][target]
        print(f"share of rank variance: perturbations {overall['share_perturbation']:.1%}, "
              f"resampling {overall['share_sampling']:.1%}, interaction {overall['share_interaction']:.1%}")
    table = result.least_stable(args.top)
    has_cs = "cs_ci_lower" in table.columns
    _print_unstable(table, result.problem.problem, "widest 90% bootstrap rank interval")
    if has_cs and "cs_in_top_k" in table.columns:
        units = result.units.filter(pl.col("cs_in_top_k").fill_null(False))["unit"].to_list()
        labels = _labels(result.problem.problem.result.dataset if result.problem.problem.result is not None else None)
        names = [f"{labels[u]} ({u})" if labels.get(u) not in (None, "", u) else str(u) for u in units]
        k = m["confidence"]["top_k"]
        print(f"{m['confidence']['level']:.0%} confidence set for the top {k}: {len(units)} units: "
              + ", ".join(names[:20]) + (" …" if len(units) > 20 else ""))
    if args.out:
        print(_wrote_tables(args.out, args.format))
    return 0


def _wrote_tables(out: str, fmt: str | None) -> str:
    """What an analysis wrote (see :func:`engine.io.write_tables`)."""
    if str(out).lower().endswith(".xlsx"):
        return f"wrote the tables to {out} (one sheet per table, and a manifest sheet)"
    if fmt == "xlsx":
        return f"wrote the tables to {out}/results.xlsx (one sheet per table) and manifest.json"
    return f"wrote the tables ({fmt or 'parquet'} files) and manifest.json to {out}"


def _print_unstable(table: pl.DataFrame, problem, title: str) -> None:
    """The least-stable units of ``table`` (a per-unit rank-statistics table, in order), with their
    display names when the dataset has a label column, and their rank confidence sets when the
    table has them."""
    labels = _labels(problem.result.dataset if problem.result is not None else None)
    has_cs = "cs_ci_lower" in table.columns
    print(f"least stable units ({title}):")
    headers = ["unit", *(["name"] if labels else []), "nominal", "median", "5%", "95%", "P(same tier)",
               *(["rank conf. set", "simultaneous"] if has_cs else [])]
    rows = []
    for row in table.iter_rows(named=True):
        cs = []
        if has_cs:
            cs = [None, None] if row["cs_ci_lower"] is None else [
                f"[{row['cs_ci_lower']}, {row['cs_ci_upper']}]",
                f"[{row['cs_simultaneous_lower']}, {row['cs_simultaneous_upper']}]"]
        rows.append([row["unit"], *([labels.get(row["unit"])] if labels else []), row["nominal_rank"],
                     f"{row['median_rank']:.1f}", f"{row['q05_rank']:.1f}", f"{row['q95_rank']:.1f}",
                     f"{row['p_same_tier']:.3f}", *cs])
    print(_render(headers, rows, left=(0, 1) if labels else (0,), max_width=16))


def _positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1 (``--threads 0`` or ``-2`` is refused with exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default when it has one (not for None/False), and keeps the help's line
    breaks out of the way."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


_COMMANDS_EPILOG = """\
run `cityrank COMMAND --help` for a command's options.  Bad input exits with status 2 and one
paragraph naming what is wrong and the fix; Ctrl-C exits with 130 (an uncertainty run with -o
prints the command that resumes it)."""


def edition_options(parser: argparse.ArgumentParser, help: str) -> None:
    """The options that pick one period of panel data (audit, report)."""
    parser.add_argument("--edition", metavar="PERIOD", help=help)
    parser.add_argument("--period", help="with --edition: the period column (default: the framework's data.period)")
    parser.add_argument("--normalisation", choices=["period", "panel"],
                        help="with --edition: normalise the period on its own (default), or with goalposts fitted "
                        "on the panel")


def _panel_options(parser: argparse.ArgumentParser) -> None:
    """The framework and panel-data options of the panel commands (trajectories, change)."""
    parser.add_argument("--framework", "-f", required=True, help="framework file (YAML/JSON) or shipped name")
    parser.add_argument("--panel", "-p", help="panel data: one table with a unit and a period column (file or "
                        "shipped dataset); default: the framework's")
    parser.add_argument("--period", help="period column, integer years or dates (default: the framework's "
                        "data.period)")
    parser.add_argument("--unit", help="unit id column (default: the framework's data.unit)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cityrank", description=__doc__.splitlines()[0], epilog=_COMMANDS_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"cityrank {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    add_parser = sub.add_parser

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                          formatter_class=_HelpFormatter)

    sub.add_parser = command  # every command: its help as description, defaults shown

    demo = sub.add_parser("demo", help="score the shipped city datasets and run a weight-sensitivity study")
    demo.add_argument("--top", type=_positive_int, default=10, help="how many units to print")
    demo.add_argument("--replicates", type=_positive_int, default=100_000, help="Monte Carlo replicates")
    demo.add_argument("--report", default="cityrank-demo-report.html", help="where the demo report is written")
    demo.set_defaults(run=_cmd_demo)

    sub.add_parser("frameworks", help="list the shipped frameworks").set_defaults(run=_cmd_frameworks)
    sub.add_parser("datasets", help="list the shipped datasets").set_defaults(run=_cmd_datasets)

    def data_options(p: argparse.ArgumentParser, required_data: bool = False) -> None:
        p.add_argument("--framework", "-f", required=True, help="framework file (YAML/JSON) or shipped name")
        p.add_argument("--data", "-d", required=required_data,
                       help="data file (CSV/Parquet/Arrow/Excel) or shipped dataset; default: the framework's")
        p.add_argument("--unit", help="unit id column (default: the framework's data.unit)")
        p.add_argument("--groups", nargs="*", help="group columns (default: the framework's data.groups)")
        p.add_argument("--label", help="display-name column")
        p.add_argument("--sheet", help="Excel sheet name (default: the first)")
        p.add_argument("--encoding", help="CSV text encoding (default: UTF-8, else GB18030/GBK, detected)")
        p.add_argument("--skip-rows", type=int, metavar="N",
                       help="title rows above the header to skip (default: the framework's data.skip_rows, else 0)")

    def backend_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--backend", choices=["threads", "serial", "dask"], default="threads",
                       help="where replicates run: Numba threads in this process, one thread, or a Dask cluster "
                       "(--scheduler/--workers imply dask); results are identical")
        p.add_argument("--threads", type=_positive_int,
                       help="Numba threads for the threads backend (default: all cores)")
        p.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:port)")
        p.add_argument("--workers", type=_positive_int,
                       help="start a local Dask cluster with this many worker processes")
        p.add_argument("--worker-wait", type=float, default=300.0, metavar="SECONDS",
                       help="with Dask: give up (exit 2) when no worker has been connected for this long")

    def replicate_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--replicates", "-n", type=_positive_int, help="number of replicates (overrides the spec)")
        p.add_argument("--seed", type=int, help="seed (overrides the spec; default: fresh entropy, recorded)")
        p.add_argument("--block-size", type=_positive_int,
                       help="replicates per work block (a multiple or divisor of 1024)")
        p.add_argument("--yes", "-y", action="store_true",
                       help="start a large run (estimated > 10 min or > 1 GB of checkpoints) without asking")

    def format_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--format", choices=["parquet", "csv", "xlsx"],
                       help="tables in the --out folder: parquet (default), csv (UTF-8 with BOM) or xlsx (one "
                       "workbook results.xlsx); an --out ending in .xlsx is one workbook")

    def report_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--top", type=_positive_int, default=10, help="least stable units to print")
        p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    validate = sub.add_parser("validate", help="check a framework (and data against it) without computing")
    data_options(validate)
    validate.set_defaults(run=_cmd_validate)

    score = sub.add_parser("score", help="score and rank every node; write .parquet/.csv/.xlsx/.arrow")
    data_options(score)
    score.add_argument("--out", "-o", help="output file; the format follows the extension")
    score.add_argument("--labels", choices=["en", "zh", "id"], default="en",
                       help="Excel headers: node labels in English or Chinese, or node ids (a 'columns' sheet "
                       "maps headers to ids)")
    score.add_argument("--no-bom", action="store_true",
                       help="CSV without the UTF-8 byte-order mark (written by default so Excel reads Chinese)")
    score.add_argument("--top", type=_positive_int, default=10, help="how many units to print")
    score.add_argument("--node", help="node whose ranking is printed (default: the index)")
    score.add_argument("--tiers", type=_positive_int, metavar="K",
                       help="classify the index into K tiers (Fisher-Jenks); printed in a tier column")
    score.add_argument("--percentiles", nargs="?", const="", metavar="GROUP",
                       help="add the index's percentile rank (rank - 1) / (N - 1), 0 = best, to the output: "
                       "among all units, or within each GROUP (a data group column, e.g. a local authority)")
    score.set_defaults(run=_cmd_score)

    weights = sub.add_parser("weights", help="print the effective (global) weight of every indicator")
    data_options(weights)
    weights.set_defaults(run=_cmd_weights)

    groups = sub.add_parser("groups", help="aggregate unit scores by a group column and rank the groups")
    data_options(groups)
    groups.add_argument("--by", required=True, help="group column (e.g. province)")
    groups.add_argument("--how", default="sum", choices=["sum", "mean", "median", "max", "min"],
                        help="how unit scores are combined per group")
    groups.add_argument("--out", "-o", help="output file (.parquet/.csv/.xlsx/.arrow)")
    groups.add_argument("--top", type=_positive_int, help="how many groups to print (default: all)")
    groups.set_defaults(run=_cmd_groups)

    compare = sub.add_parser("compare", help="rank change per unit between two editions (two data files)")
    compare.add_argument("--framework", "-f", required=True, help="framework file or shipped name")
    compare.add_argument("--old", required=True, help="data of the earlier edition")
    compare.add_argument("--new", required=True, help="data of the later edition")
    compare.add_argument("--unit", help="unit id column")
    compare.add_argument("--node", help="node to compare (default: the index)")
    compare.add_argument("--top", type=_positive_int, default=20, help="rows to print")
    compare.add_argument("--out", "-o", help="output file (.parquet/.csv/.xlsx/.arrow)")
    compare.set_defaults(run=_cmd_compare)

    traj = sub.add_parser("trajectories", help="score every period of panel data: ranks over time, changes, "
                          "trends (CAGR, slope), units entering and leaving")
    _panel_options(traj)
    traj.add_argument("--normalisation", choices=["period", "panel"], default="period",
                      help="normalise each period on its own, or with goalposts fitted on the whole panel so that "
                      "scores compare over time")
    traj.add_argument("--from", dest="start", metavar="PERIOD",
                      help="print the change from this period (default: the last but one)")
    traj.add_argument("--to", dest="end", metavar="PERIOD", help="print the change to this period (default: the last)")
    traj.add_argument("--node", help="node whose rank change is printed (default: the index)")
    traj.add_argument("--top", type=_positive_int, default=20, help="rows to print")
    traj.add_argument("--out", "-o", help="output folder (units, trends, events, changes, manifest), or a .xlsx file")
    format_option(traj)
    traj.set_defaults(run=_cmd_trajectories)

    unc = sub.add_parser("uncertainty", help="Monte Carlo rank distributions under weight/method perturbations")
    data_options(unc)
    unc.add_argument("--spec", "-s", help="uncertainty specification (YAML/JSON); default: ±25%% noise on every weight")
    replicate_options(unc)
    backend_options(unc)
    unc.add_argument("--out", "-o", help="output folder (tables, manifest, checkpoints), or a .xlsx file (one "
                     "workbook, no checkpoints)")
    format_option(unc)
    unc.add_argument("--resume", metavar="DIR", help="resume a killed run from the checkpoints in DIR")
    unc.add_argument("--overwrite", action="store_true",
                     help="start again in an --out folder that holds another run's checkpoints (deletes them)")
    unc.add_argument("--keep-checkpoints", action="store_true",
                     help="keep the checkpoint chunks after a successful run (removed by default)")
    unc.add_argument("--large-n-above", type=int, metavar="UNITS",
                     help="large-n mode above this many units: memory units × bins instead of units², the same "
                     "exact median/5%%/95%% ranks, decile bands; no checkpoints (default: 5000)")
    unc.add_argument("--rank-bins", type=int, metavar="BINS",
                     help="coarse rank bins of large-n mode (default: sqrt(3 x units))")
    report_options(unc)
    unc.set_defaults(run=_cmd_uncertainty)

    chg = sub.add_parser("change", help="is a rank change real? paired Monte Carlo (or, with --records, paired "
                         "record bootstrap) of every unit's rank change between two periods of a panel")
    _panel_options(chg)
    chg.add_argument("--from", dest="start", required=True, metavar="PERIOD", help="the earlier period, e.g. 2011")
    chg.add_argument("--to", dest="end", required=True, metavar="PERIOD", help="the later period, e.g. 2012")
    chg.add_argument("--node", help="node whose rank change is analysed (default: the index)")
    chg.add_argument("--normalisation", choices=["period", "panel"], default="period",
                     help="normalise each period on its own, or with parameters fitted on the whole panel")
    chg.add_argument("--units", choices=["all", "common"], default="all",
                     help="rank every unit of each period, or only the units present in both (entering and "
                     "leaving units then move no one's rank)")
    chg.add_argument("--spec", "-s", help="uncertainty specification (YAML/JSON); default: ±25%% noise on every "
                     "weight, each draw applied to both periods. With --records: a bootstrap specification (its "
                     "records section; default: the framework's shipped one)")
    chg.add_argument("--records", "-r", help="record-level table of both periods (file or shipped dataset): one row "
                     "per record with its unit and its period (column named as --period); each replicate resamples "
                     "the records of both periods (as cityrank bootstrap --mode records)")
    chg.add_argument("--record-id", metavar="COLUMN", help="with --records: the column that names a record in both "
                     "periods (e.g. a firm id); such a record gets the same bootstrap weight in both periods. "
                     "Without it, each period's records are drawn independently")
    chg.add_argument("--mode", "-m", choices=["montecarlo", "records"], help="source of variation (default: "
                     "records with --records, else montecarlo)")
    replicate_options(chg)
    backend_options(chg)
    chg.add_argument("--out", "-o", help="output folder (units and distribution tables, manifest), or a .xlsx file")
    format_option(chg)
    chg.add_argument("--top", type=_positive_int, default=10, help="robust risers and fallers to print")
    chg.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    chg.set_defaults(run=_cmd_change)

    boot = sub.add_parser("bootstrap", help="bootstrap rank stability: resample records or units, or add "
                          "measurement error; rank confidence sets")
    data_options(boot)
    boot.add_argument("--records", "-r", help="record-level table (file or shipped dataset) for --mode records")
    boot.add_argument("--mode", "-m", choices=["records", "units", "noise"], help="source of sampling variation "
                      "(overrides the spec)")
    boot.add_argument("--spec", "-s", help="bootstrap specification (YAML/JSON); default: the framework's shipped one")
    replicate_options(boot)
    backend_options(boot)
    boot.add_argument("--out", "-o", help="output folder (tables and manifest), or a .xlsx file (one workbook)")
    boot.add_argument("--large-n-above", type=int, metavar="UNITS",
                      help="large-n mode above this many units: memory units × bins instead of units², the same "
                      "exact median/5%%/95%% ranks, decile bands; no variance shares or confidence sets (default: "
                      "5000)")
    boot.add_argument("--rank-bins", type=int, metavar="BINS",
                      help="coarse rank bins of large-n mode (default: sqrt(3 x units))")
    format_option(boot)
    report_options(boot)
    boot.set_defaults(run=_cmd_bootstrap)

    sens = sub.add_parser("sensitivity", help="Sobol first/total-order indices: which choice moves the ranks")
    data_options(sens)
    sens.add_argument("--spec", "-s", help="uncertainty specification (factors and groups); default: weight noise")
    sens.add_argument("--base-samples", "-N", type=_positive_int, default=1024, help="base samples N (a power of two)")
    sens.add_argument("--seed", type=int, help="seed of the scrambled Sobol design")
    sens.add_argument("--bootstrap", type=_positive_int, default=200, help="bootstrap resamples for the intervals")
    sens.add_argument("--confidence", type=float, help="confidence level of the intervals, e.g. 0.9 (COINr); "
                      "default: the spec's, else 0.95")
    sens.add_argument("--list-factors", action="store_true",
                      help="print the factors (the names a spec's groups use) and their groups, run nothing")
    sens.add_argument("--second-order", action="store_true", help="also second-order indices of R_S (N (2g + 2) runs)")
    backend_options(sens)
    sens.add_argument("--out", "-o", help="output folder, or a .xlsx file (one workbook)")
    format_option(sens)
    sens.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    sens.set_defaults(run=_cmd_sensitivity)

    aud = sub.add_parser("audit", help="statistical audit (data, correlations, alpha, PCA, importance, weights, "
                         "what-if): a verdict with the flags")
    data_options(aud)
    from .audit import KNOWN as audit_sections  # the audit's own list of sections

    aud.add_argument("--sections", nargs="+", default=list(audit_sections), choices=audit_sections,
                     metavar="SECTION", help=f"parts to run, among {', '.join(audit_sections)} (default: all)")
    aud.add_argument("--option", action="append", metavar="NAME=VALUE",
                     help="a threshold or choice of a section, e.g. redundant=0.95 or structure_stage=treated "
                     "(repeatable; see docs/audit.md)")
    edition_options(aud, "audit this period of panel data (--data one table with a unit and a period column): "
                    "what loading the panel found leads the flags")
    aud.add_argument("--out", "-o", help="output folder (tables, flags, manifest), or a .xlsx file (one workbook)")
    format_option(aud)
    aud.add_argument("--top", type=_positive_int, default=20, help="flags to print")
    aud.set_defaults(run=_cmd_audit)

    rep = sub.add_parser("report", help="one self-contained HTML report (charts, tables; works offline); "
                         "runs a default Monte Carlo study when no analysis folder is given")
    data_options(rep)
    rep.add_argument("--uncertainty", metavar="DIR", help="folder written by `cityrank uncertainty --out`")
    rep.add_argument("--sensitivity", metavar="DIR", help="folder written by `cityrank sensitivity --out`")
    rep.add_argument("--bootstrap", metavar="DIR", help="folder written by `cityrank bootstrap --out`")
    rep.add_argument("--audit", metavar="DIR", help="folder written by `cityrank audit --out` (Parquet or CSV)")
    rep.add_argument("--labels", choices=["en", "zh"], default="en",
                     help="language of node labels and of the page's text (English or Chinese)")
    rep.add_argument("--previous", metavar="DATA",
                     help="data of the previous edition (same framework): adds a slope chart of rank changes")
    rep.add_argument("--figures", metavar="DIR", help="also write every chart as PNG and SVG in this folder")
    rep.add_argument("--replicates", "-n", type=_positive_int, default=10_000,
                     help="replicates of the default Monte Carlo study (when no analysis folder is given)")
    rep.add_argument("--seed", type=int, default=2024, help="seed of the default Monte Carlo study")
    edition_options(rep, "report on this period of panel data (--data one table with a unit and a period column), "
                    "scored as cityrank trajectories scores it")
    rep.add_argument("--out", "-o", required=True, help="the HTML file to write")
    rep.set_defaults(run=_cmd_report)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """The engine's warnings as one line each, ``cityrank: warning: …`` (others as Python shows them)."""
    if issubclass(category, EngineWarning):
        print(f"cityrank: warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cityrank`` console script."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    pl.Config.set_tbl_rows(30)
    try:
        with warnings.catch_warnings(), _compile_notice(args.command):
            warnings.showwarning = _show_warning
            warnings.simplefilter("default", EngineWarning)  # shown (one line each), whatever the filters outside
            return int(args.run(args) or 0)
    except EngineError as exc:
        print(f"cityrank: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cityrank: interrupted", file=sys.stderr)
        out = getattr(args, "resume", None) or getattr(args, "out", None)
        if args.command == "uncertainty" and out and (Path(out) / "run.json").is_file():  # a run was stored
            print(f"cityrank: to continue from the chunks stored in {out}: {_resume_command(args, out)}",
                  file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``cityrank … | head``): stop quietly, as Unix tools do
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        except (OSError, ValueError):
            pass
        return 141  # 128 + SIGPIPE
    # Foreseeable faults of the machine, not of cityrank: one paragraph, exit 2 (any other
    # exception is a bug and keeps its traceback).
    except MemoryError as exc:  # includes NumPy's _ArrayMemoryError ("Unable to allocate 74.5 GiB …")
        detail = f": {exc}" if str(exc) else ""
        print(f"cityrank: error: out of memory{detail}. Fix: use fewer units or replicates, or a machine with "
              "more memory.", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"cityrank: error: {exc.strerror or exc}{where}. Fix: check the path, its permissions and the free "
              "disk space.", file=sys.stderr)
        return 2


class _compile_notice:
    """While a computing command runs, say once on stderr when Numba compiles a kernel (a cold cache:
    the first run after installation or an upgrade); loading compiled kernels from the cache says
    nothing.  Uses Numba's ``numba:compile`` event, which fires on cache misses only."""

    QUIET = ("frameworks", "datasets", "validate")

    def __init__(self, command: str) -> None:
        self.active = command not in self.QUIET
        self.told = False

    def __enter__(self):
        if self.active:
            from numba.core import event

            notice = self

            class Listener(event.Listener):
                def on_start(self, ev) -> None:
                    if not notice.told:
                        notice.told = True
                        sys.stderr.write("cityrank: compiling kernels (first run only; later runs load them from "
                                         "the cache)…\n")
                        sys.stderr.flush()

                def on_end(self, ev) -> None:
                    pass

            self.listener = Listener()
            event.register("numba:compile", self.listener)
        return self

    def __exit__(self, *exc) -> None:
        if self.active:
            from numba.core import event

            event.unregister("numba:compile", self.listener)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
