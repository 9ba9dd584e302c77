"""Command line: ``cityrank demo | frameworks | datasets | validate | score``.

The CLI stays thin: arguments → :mod:`engine` API → a printed table or an output file.  Bad input
exits with status 2 and a one-paragraph message naming the offending node/column/units and the fix.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence

import polars as pl

from . import __version__
from .errors import EngineError, EngineWarning
from .resources import shipped_datasets, shipped_frameworks

__all__ = ["main"]


def _width(text: str) -> int:
    """Display width in a terminal (CJK characters take two columns)."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _format_top(result, n: int, node: str | None = None, tier: bool = False) -> str:
    node = node or result.index_id
    top = result.top(n, node)
    label = result.dataset.label
    tier_column = f"{result.framework.tiers['node']}_tier" if tier and result.framework.tiers else None
    tiers = dict(zip(result.table[result.dataset.unit].to_list(), result.table[tier_column].to_list())) \
        if tier_column in result.table.columns else {}
    lines = [f"{'rank':>4}  {_pad('unit', 10)} {_pad('name', 28)} {'score':>10}" + ("  tier" if tiers else "")]
    for row in top.iter_rows(named=True):
        name = str(row[label]) if label else ""
        value = row[node]
        shown = f"{value:>10.4f}" if value is not None else f"{'—':>10}"
        rank = row[f"{node}_rank"]
        unit = row[result.dataset.unit]
        line = f"{rank if rank is not None else '—':>4}  {_pad(str(unit), 10)} {_pad(name[:14], 28)} {shown}"
        if tiers:
            line += f"  {tiers.get(unit) or '—':>4}"
        lines.append(line)
    return "\n".join(lines)


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
    result = score(framework, args.data, **_load_kwargs(args))
    elapsed = time.perf_counter() - started
    if result.recipe["data"]["synthetic"]:
        print("NOTE: this dataset is SYNTHETIC (generated), not observed data.")
    if result.recipe["data"].get("encoding") not in (None, "utf-8", "utf-8-sig"):
        print(f"note: read {result.dataset.source} as {result.recipe['data']['encoding']} text (not UTF-8)")
    if args.out:
        path = result.write(args.out)
        print(f"wrote {result.table.height} units × {len(result.framework.node_ids)} nodes to {path}")
    print(f"{result.framework.labels['en']} — {result.table.height} units, scored in {elapsed:.2f} s")
    print(_format_top(result, args.top, args.node))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .analysis.run import uncertainty
    from .pipeline import score

    print(f"cityrank {__version__} demo (first run includes JIT compilation)\n")
    for name, note in (("china-city-innovation-2023", "REAL data: China City Statistical Yearbook 2024"),
                       ("ai-city-2024", "SYNTHETIC data calibrated to the 2024 AI city report")):
        started = time.perf_counter()
        result = score(name)
        tiers = result.recipe["stages"].get("tiers", {}).get("sizes", {})
        print(f"== {result.framework.labels['en']} / {result.framework.labels.get('zh', '')}")
        print(f"   {note}; {result.table.height} cities; scored in {time.perf_counter() - started:.2f} s; "
              f"tier sizes {dict(sorted(tiers.items()))}")
        print(_format_top(result, args.top, tier=True))
        print()
    print(f"== Weight sensitivity: {args.replicates:,} Monte Carlo replicates, ±25% noise on every weight "
          "(china-city-innovation-2023)")
    run = uncertainty("china-city-innovation-2023", replicates=args.replicates, seed=2024, progress=False)
    m = run.manifest
    print(f"   {m['replicates']:,} replicates in {m['wall_time_s']:.2f} s ({m['replicates_per_s']:,.0f}/s); "
          f"mean rank shift R_S = {m['rank_shift']['Index']['mean']:.2f} "
          f"(95th percentile {m['rank_shift']['Index']['q95']:.2f})")
    _print_unstable(run.least_stable(args.top), run.problem, "widest 90% rank interval")
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
    effective = fw.effective_weights(weights)
    print(f"{fw.labels['en']}: effective (global) weight of every indicator")
    print(f"{'indicator':<28} {'parent':<22} {'local':>8} {'global':>9}")
    for ind in fw.indicators:
        siblings = fw.node(ind.parent).children
        local = weights[ind.id] / sum(weights[c] for c in siblings)
        print(f"{ind.id:<28} {ind.parent:<22} {local:>8.4f} {effective[ind.id]:>9.5f}")
    print(f"{'sum':<28} {'':<22} {'':>8} {sum(effective.values()):>9.5f}")
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

    result = score(args.framework, args.data, **_load_kwargs(args))
    nodes = [result.index_id, *[c for c in result.framework.root.children if c in result.table.columns]]
    if args.by not in result.table.columns:
        table = result.dataset.table.select(result.dataset.unit, args.by) if args.by in result.dataset.table.columns \
            else None
        if table is None:
            from .errors import DataError

            raise DataError("group column not found in the data", column=args.by,
                            fix=f"choose a column of the data file, e.g. {', '.join(result.dataset.groups) or 'province'}")
        scored = result.table.join(table, on=result.dataset.unit, how="left")
    else:
        scored = result.table
    groups = aggregate_groups(scored, args.by, nodes, how=args.how)
    if args.out:
        from .io import write_table

        write_table(groups, args.out, metadata={"groups": {"by": args.by, "how": args.how}, **result.recipe})
        print(f"wrote {groups.height} groups to {args.out}")
    print(groups)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from .groups import compare_editions
    from .pipeline import score

    old = score(args.framework, args.old, **_load_kwargs(args))
    new = score(args.framework, args.new, **_load_kwargs(args))
    node = args.node or old.index_id
    table = compare_editions(old.table, new.table, old.dataset.unit, node)
    if args.out:
        from .io import write_table

        write_table(table, args.out, metadata={"old": old.recipe, "new": new.recipe})
        print(f"wrote {table.height} units to {args.out}")
    print(table.head(args.top))
    return 0


def _cmd_uncertainty(args: argparse.Namespace) -> int:
    from .analysis.run import uncertainty

    out = args.resume or args.out
    backend = "dask" if (args.scheduler or args.workers) else args.backend
    result = uncertainty(args.framework, args.data, args.spec, replicates=args.replicates, seed=args.seed,
                         block_size=args.block_size, backend=backend, threads=args.threads,
                         scheduler=args.scheduler, workers=args.workers, out=out, resume=bool(args.resume),
                         progress=not args.quiet, **_load_kwargs(args))
    m = result.manifest
    if m["data"] and m["data"].get("synthetic"):
        print("NOTE: this dataset is SYNTHETIC (generated), not observed data.")
    print(f"{m['replicates']:,} replicates in {m['wall_time_s']:.2f} s ({m['replicates_per_s']:,.0f}/s, "
          f"backend {m['backend']}); mean rank shift R_S = {m['rank_shift'][result.problem.target_ids[0]]['mean']:.3f}")
    _print_unstable(result.least_stable(args.top), result.problem, "widest 90% rank interval")
    if out:
        print(f"wrote units.parquet, acceptability.parquet, rank_shift.parquet, manifest.json to {out}")
    return 0


def _cmd_sensitivity(args: argparse.Namespace) -> int:
    from .analysis.sensitivity import sensitivity

    backend = "dask" if (args.scheduler or args.workers) else args.backend
    result = sensitivity(args.framework, args.data, args.spec, base_samples=args.base_samples, seed=args.seed,
                         n_boot=args.bootstrap, second_order=args.second_order, threads=args.threads, backend=backend, scheduler=args.scheduler,
                         workers=args.workers, out=args.out, progress=not args.quiet, **_load_kwargs(args))
    m = result.manifest
    print(f"{m['evaluations']:,} evaluations ({m['base_samples']:,} base samples × "
          f"{m['evaluations'] // m['base_samples']}) in "
          f"{m['wall_time_s']:.2f} s ({m['evaluations_per_s']:,.0f}/s)")
    print(f"Sobol indices of the mean absolute rank shift R_S (95% bootstrap intervals):")
    print(f"{'group':<28} {'first':>8} {'':>17} {'total':>8}")
    for row in result.indices.sort("total", descending=True).iter_rows(named=True):
        print(f"{row['group']:<28} {row['first']:>8.3f} [{row['first_lo']:>6.3f}, {row['first_hi']:>6.3f}] "
              f"{row['total']:>8.3f} [{row['total_lo']:>6.3f}, {row['total_hi']:>6.3f}]")
    if result.second is not None:
        print("second-order indices of R_S:")
        for row in result.second.sort("second", descending=True).iter_rows(named=True):
            print(f"  {row['group_a']} × {row['group_b']}: {row['second']:.3f}")
    if args.out:
        print(f"wrote indices.parquet, unit_rank_indices.parquet, unit_score_indices.parquet, manifest.json to {args.out}")
    return 0


def _cmd_bootstrap(args: argparse.Namespace) -> int:
    from .analysis.stability import bootstrap

    backend = "dask" if (args.scheduler or args.workers) else args.backend
    result = bootstrap(args.framework, args.data, args.spec, records=args.records, mode=args.mode,
                       replicates=args.replicates, seed=args.seed, block_size=args.block_size, backend=backend,
                       threads=args.threads, scheduler=args.scheduler, workers=args.workers, out=args.out,
                       progress=not args.quiet, **_load_kwargs(args))
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
        k = m["confidence"]["top_k"]
        print(f"{m['confidence']['level']:.0%} confidence set for the top {k}: {len(units)} units: "
              + ", ".join(map(str, units[:20])) + (" …" if len(units) > 20 else ""))
    if args.out:
        print(f"wrote units.parquet, acceptability.parquet, rank_shift.parquet, manifest.json to {args.out}")
    return 0


def _print_unstable(table: pl.DataFrame, problem, title: str) -> None:
    """The least-stable units of ``table`` (a per-unit rank-statistics table, in order), with their
    display names when the dataset has a label column, and their rank confidence sets when the
    table has them."""
    labels = {}
    dataset = problem.result.dataset if problem.result is not None else None
    if dataset is not None and dataset.label:
        labels = dict(zip(dataset.table[dataset.unit].to_list(), dataset.table[dataset.label].to_list()))
    has_cs = "cs_ci_lower" in table.columns
    print(f"least stable units ({title}):")
    header = f"{_pad('unit', 10)} {_pad('name', 14)} {'nominal':>7} {'median':>7} {'5%':>6} {'95%':>6} {'P(same tier)':>13}"
    print(header + (f" {'rank conf. set':>15} {'simultaneous':>13}" if has_cs else ""))
    for row in table.iter_rows(named=True):
        name = str(labels.get(row["unit"], ""))[:7]
        line = (f"{_pad(str(row['unit']), 10)} {_pad(name, 14)} {row['nominal_rank'] or 0:>7} "
                f"{row['median_rank']:>7.1f} {row['q05_rank']:>6.1f} {row['q95_rank']:>6.1f} {row['p_same_tier']:>13.3f}")
        if has_cs and row["cs_ci_lower"] is not None:
            line += (f" {'[' + str(row['cs_ci_lower']) + ', ' + str(row['cs_ci_upper']) + ']':>15}"
                     f" {'[' + str(row['cs_simultaneous_lower']) + ', ' + str(row['cs_simultaneous_upper']) + ']':>13}")
        print(line)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cityrank", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"cityrank {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="score the shipped city datasets and run a weight-sensitivity study")
    demo.add_argument("--top", type=int, default=10, help="how many units to print (default 10)")
    demo.add_argument("--replicates", type=int, default=100_000, help="Monte Carlo replicates (default 100,000)")
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
        p.add_argument("--backend", choices=["threads", "serial", "dask"], default="threads")
        p.add_argument("--threads", type=int, help="Numba threads for the threads backend")
        p.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:port)")
        p.add_argument("--workers", type=int, help="start a local Dask cluster with this many worker processes")

    def replicate_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--replicates", "-n", type=int, help="number of replicates (overrides the spec)")
        p.add_argument("--seed", type=int, help="seed (overrides the spec; default: fresh entropy, recorded)")
        p.add_argument("--block-size", type=int, help="replicates per work block (a multiple or divisor of 1024)")

    def report_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--top", type=int, default=10, help="least stable units to print")
        p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    validate = sub.add_parser("validate", help="check a framework (and data against it) without computing")
    data_options(validate)
    validate.set_defaults(run=_cmd_validate)

    score = sub.add_parser("score", help="score and rank every node; write .parquet/.csv/.xlsx/.arrow")
    data_options(score)
    score.add_argument("--out", "-o", help="output file; the format follows the extension")
    score.add_argument("--top", type=int, default=10, help="how many units to print (default 10)")
    score.add_argument("--node", help="node whose ranking is printed (default: the index)")
    score.add_argument("--tiers", type=int, metavar="K", help="classify the index into K tiers (Fisher-Jenks)")
    score.set_defaults(run=_cmd_score)

    weights = sub.add_parser("weights", help="print the effective (global) weight of every indicator")
    data_options(weights)
    weights.set_defaults(run=_cmd_weights)

    groups = sub.add_parser("groups", help="aggregate unit scores by a group column and rank the groups")
    data_options(groups)
    groups.add_argument("--by", required=True, help="group column (e.g. province)")
    groups.add_argument("--how", default="sum", choices=["sum", "mean", "median", "max", "min"])
    groups.add_argument("--out", "-o", help="output file (.parquet/.csv/.xlsx/.arrow)")
    groups.set_defaults(run=_cmd_groups)

    compare = sub.add_parser("compare", help="rank change per unit between two editions (two data files)")
    compare.add_argument("--framework", "-f", required=True, help="framework file or shipped name")
    compare.add_argument("--old", required=True, help="data of the earlier edition")
    compare.add_argument("--new", required=True, help="data of the later edition")
    compare.add_argument("--unit", help="unit id column")
    compare.add_argument("--node", help="node to compare (default: the index)")
    compare.add_argument("--top", type=int, default=20, help="rows to print")
    compare.add_argument("--out", "-o", help="output file (.parquet/.csv/.xlsx/.arrow)")
    compare.set_defaults(run=_cmd_compare)

    unc = sub.add_parser("uncertainty", help="Monte Carlo rank distributions under weight/method perturbations")
    data_options(unc)
    unc.add_argument("--spec", "-s", help="uncertainty specification (YAML/JSON); default: ±25%% noise on every weight")
    replicate_options(unc)
    backend_options(unc)
    unc.add_argument("--out", "-o", help="output folder (tables, manifest, checkpoints)")
    unc.add_argument("--resume", metavar="DIR", help="resume a killed run from the checkpoints in DIR")
    report_options(unc)
    unc.set_defaults(run=_cmd_uncertainty)

    boot = sub.add_parser("bootstrap", help="bootstrap rank stability: resample records or units, or add "
                          "measurement error; rank confidence sets")
    data_options(boot)
    boot.add_argument("--records", "-r", help="record-level table (file or shipped dataset) for --mode records")
    boot.add_argument("--mode", "-m", choices=["records", "units", "noise"], help="source of sampling variation "
                      "(overrides the spec)")
    boot.add_argument("--spec", "-s", help="bootstrap specification (YAML/JSON); default: the framework's shipped one")
    replicate_options(boot)
    backend_options(boot)
    boot.add_argument("--out", "-o", help="output folder (tables and manifest)")
    report_options(boot)
    boot.set_defaults(run=_cmd_bootstrap)

    sens = sub.add_parser("sensitivity", help="Sobol first/total-order indices: which choice moves the ranks")
    data_options(sens)
    sens.add_argument("--spec", "-s", help="uncertainty specification (factors and groups); default: weight noise")
    sens.add_argument("--base-samples", "-N", type=int, default=1024, help="base samples N (a power of two)")
    sens.add_argument("--seed", type=int, help="seed of the scrambled Sobol design")
    sens.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for the intervals")
    sens.add_argument("--second-order", action="store_true", help="also second-order indices of R_S (N (2g + 2) runs)")
    sens.add_argument("--backend", choices=["threads", "serial", "dask"], default="threads")
    sens.add_argument("--threads", type=int)
    sens.add_argument("--scheduler", help="address of a running Dask scheduler")
    sens.add_argument("--workers", type=int, help="start a local Dask cluster with this many worker processes")
    sens.add_argument("--out", "-o", help="output folder")
    sens.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    sens.set_defaults(run=_cmd_sensitivity)
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
    args = parser.parse_args(argv)
    pl.Config.set_tbl_rows(30)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(args.run(args) or 0)
    except EngineError as exc:
        print(f"cityrank: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cityrank: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
