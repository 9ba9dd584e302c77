"""Bootstrap benchmark: record-level (Poisson) bootstrap, the engine against a NumPy baseline, one run.

Problems (shipped, SYNTHETIC data): the 4,311-firm table ``ai_firms_synthetic`` →

* **provinces**: framework ``regional-ai-2023`` (31 provinces, 24 indicators of which 8 are
  recomputed from the firms in every replicate);
* **cities**: framework ``ai-firms-2023`` (61 cities, 8 firm-derived indicators).

Cases, each in its own process (so that its peak resident memory is its own):

* **engine** — ``engine.analysis.bootstrap.bootstrap(mode="records")`` with 1 and 2 threads, timed
  as a whole call (nominal run, record compilation, draws, kernel, statistics, confidence sets)
  after a warm-up call in the same process; JIT compile time is measured separately in a fresh
  process with an empty Numba cache;
* **numpy** — what a careful NumPy user writes: per batch of 1,024 replicates, Poisson(1) record
  weights from ``Generator.poisson``, per-unit weighted sums of the derivation columns by one BLAS
  matmul against a one-hot (records × units·columns) matrix, counts/sums/means, min-max
  normalisation along the unit axis, scores by matmul with the effective (global) indicator
  weights, ranks by argsort + inverse permutation (ties broken arbitrarily — it does less than the
  engine), and a rank histogram with ``np.add.at``.

    python benchmarks/bench_bootstrap.py                    # 10,000 replicates, provinces and cities
    python benchmarks/bench_bootstrap.py --replicates 2000  # quick

Writes ``benchmarks/results/bootstrap.json`` and ``benchmarks/results/bootstrap.md``.

``--large-n`` runs instead the bootstrap's large-n mode (issue 19.2) at 10⁵ SYNTHETIC units × 25
indicators (the generator of ``bench_rank.py``), ``mode: units``, 1 and 2 threads: the whole call
(both passes, scoring included; wall and CPU seconds, CPU ms per replicate and pass, peak memory)
after a warm-up call, and the kernel alone on 64 replicates (CPU ms per replicate: every
indicator's normalisation refitted on the resample, scores, ranks) and the draws of one RNG block:

    python benchmarks/bench_bootstrap.py --large-n                      # 256 replicates, 10^5 units
    python benchmarks/bench_bootstrap.py --large-n --units 30000 --replicates 1024

Writes ``benchmarks/results/bootstrap_largen.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _common import machine, peak_mb, run_script, write_results

HERE = Path(__file__).resolve().parent
PROBLEMS = {"provinces": "regional-ai-2023", "cities": "ai-firms-2023"}
BATCH = 1024


def case_numpy(problem: str, n: int) -> dict:
    import numpy as np
    import polars as pl
    import yaml

    import engine
    from engine.resources import shipped_datasets, shipped_specs

    framework = PROBLEMS[problem]
    started = time.perf_counter()
    result = engine.score(framework)
    fw = result.framework
    spec = yaml.safe_load(shipped_specs()[f"{framework}.bootstrap"].read_text(encoding="utf-8"))["records"]
    firms = pl.read_csv(shipped_datasets()["ai_firms_synthetic"])
    units = [str(u) for u in result.stages.inputs.units.to_list()]
    row = {u: i for i, u in enumerate(units)}
    unit_of = np.array([row[u] for u in firms[spec["unit"]].cast(pl.String).to_list()])
    n_units, n_rec = len(units), firms.height
    ids = [i.id for i in fw.indicators]
    derived, num_cols, den_cols = [], [], []
    for name, rule in spec["indicators"].items():
        keep = np.ones(n_rec)
        if "where" in rule:
            keep = firms[rule["where"]["column"]].is_in(rule["where"]["in"]).to_numpy().astype(float)
        value = keep if rule["stat"] == "count" else firms[rule["column"]].cast(pl.Float64).to_numpy() * keep
        derived.append(ids.index(name))
        num_cols.append(value)
        den_cols.append(keep if rule["stat"] == "mean" else None)
    columns = num_cols + [d for d in den_cols if d is not None]
    onehot = np.zeros((n_rec, n_units * len(columns)))
    for c, values in enumerate(columns):
        onehot[np.arange(n_rec), unit_of * len(columns) + c] = values
    base = result.stages.treated.copy()
    direction = np.array([i.direction for i in fw.indicators], float)
    global_w = fw.effective_weights(result.stages.weights)
    eff = np.array([global_w[i] for i in ids])
    lo = np.array([i.normalisation["range"][0] for i in fw.indicators])
    hi = np.array([i.normalisation["range"][1] for i in fw.indicators])
    rng = np.random.default_rng(7)
    hist = np.zeros((n_units, n_units), np.int64)
    setup = time.perf_counter() - started
    started = time.perf_counter()
    done = 0
    while done < n:
        b = min(BATCH, n - done)
        w = rng.poisson(1.0, (b, n_rec)).astype(np.float64)
        sums = (w @ onehot).reshape(b, n_units, len(columns))
        x = np.broadcast_to(base, (b, *base.shape)).copy()
        k_den = len(num_cols)
        for d, j in enumerate(derived):
            num = sums[:, :, d]
            if den_cols[d] is not None:
                den = sums[:, :, k_den]
                k_den += 1
                with np.errstate(invalid="ignore", divide="ignore"):
                    num = np.where(den > 0, num / den, np.nan)
            x[:, :, j] = num
        x *= direction
        low, high = np.nanmin(x, axis=1, keepdims=True), np.nanmax(x, axis=1, keepdims=True)
        z = (x - low) / (high - low) * (hi - lo) + lo
        scores = np.nan_to_num(z, nan=lo.min()) @ eff
        order = np.argsort(-scores, axis=1)
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.arange(n_units)[None, :].repeat(b, 0), axis=1)
        np.add.at(hist, (np.tile(np.arange(n_units), b), ranks.ravel()), 1)
        done += b
    seconds = time.perf_counter() - started
    return {"seconds": seconds + setup, "loop_s": seconds, "setup_s": setup, "peak_mb": peak_mb()}


def case_engine(problem: str, n: int, threads: int) -> dict:
    import numba

    from engine.analysis.bootstrap import bootstrap

    numba.set_num_threads(threads)
    framework = PROBLEMS[problem]
    bootstrap(framework, records="ai_firms_synthetic", mode="records", replicates=1024, seed=1, threads=threads)
    started = time.perf_counter()
    run = bootstrap(framework, records="ai_firms_synthetic", mode="records", replicates=n, seed=7, threads=threads)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mb": peak_mb(), "rank_shift": run.manifest["rank_shift"]}


def case_compile() -> dict:
    """JIT compile time of the pipeline kernels and the bootstrap kernel (empty Numba cache)."""
    started = time.perf_counter()
    import engine
    from engine.analysis.bootstrap import bootstrap

    imported = time.perf_counter()
    engine.score("regional-ai-2023")
    scored = time.perf_counter()
    bootstrap("regional-ai-2023", records="ai_firms_synthetic", mode="records", replicates=1024, seed=1)
    done = time.perf_counter()
    return {"import_s": imported - started, "pipeline_compile_s": scored - imported,
            "bootstrap_compile_s": done - scored, "peak_mb": peak_mb()}


def case_largen(n_units: int, n: int, threads: int) -> dict:
    """The large-n bootstrap (mode units) of ``n_units`` synthetic units: whole calls, then the kernel alone."""
    import numba
    import numpy as np
    from bench_rank import synthetic_table

    from engine.analysis.bootstrap import bootstrap
    from engine.analysis.design import ParameterMap, n_columns, replicate_uniforms
    from engine.analysis.montecarlo import accumulators
    from engine.analysis.problem import kernel_targets
    from engine.analysis.resampling import block_draws, kernel_inputs
    from engine.kernels import bootstrap as kernel
    from engine.kernels.montecarlo import Accumulators
    from engine.schema import framework_from_dict

    numba.set_num_threads(threads)
    framework, data = synthetic_table(n_units)
    framework = framework_from_dict(framework)
    options = {"spec": {"mode": "units"}, "seed": 1, "block_size": 1024, "threads": threads, "large_n_above": 0}
    bootstrap(framework, data, replicates=64, **options)  # compile / warm up
    cpu_small = time.process_time()
    bootstrap(framework, data, replicates=64, **options)  # the fixed costs: nominal run, problem, summaries
    cpu_small = time.process_time() - cpu_small
    wall, cpu = time.perf_counter(), time.process_time()
    run = bootstrap(framework, data, replicates=n, **options)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak_run = peak_mb()
    bp, m = run.problem, 64
    p = bp.problem
    cpu_draws = time.process_time()
    stream = block_draws(bp, 1, 0)
    draws = stream.take(m)
    for _ in range(1024 // m - 1):  # the rest of the RNG block, a sub-batch at a time as a lane draws it
        stream.take(m)
    cpu_draws = time.process_time() - cpu_draws
    factors = list(bp.factors)
    params = ParameterMap(factors, p)(replicate_uniforms(1, 0, m, n_columns(factors)))
    n_t = len(p.targets)
    hist, shift_hist, pair_count, pair_units = accumulators(p, False, (1,))

    def kernel_call(k: int) -> None:
        *inputs, _ = kernel_inputs(bp, params.slice(0, k), draws.take(np.arange(k)))
        kernel.bootstrap_blocks(*inputs, kernel_targets(p, pair_units), k, 1, Accumulators(
            hist, shift_hist, pair_count, np.zeros((1, n_t, n_units, 2)), np.zeros((k, n_t)),
            np.zeros((k, n_t, n_units), np.int64)), np.zeros((0, n_t, n_units)))

    kernel_call(2)
    cpu_kernel = time.process_time()
    kernel_call(m)
    cpu_kernel = time.process_time() - cpu_kernel
    return {"units": n_units, "replicates": n, "threads": threads, "seconds": wall, "cpu_seconds": cpu,
            "cpu_seconds_64": cpu_small, "cpu_ms_per_replicate_pass": 1e3 * (cpu - cpu_small) / (2 * (n - 64)),
            "kernel_cpu_ms_per_replicate": 1e3 * cpu_kernel / m, "draws_cpu_ms_per_replicate": 1e3 * cpu_draws / 1024,
            "peak_mb": peak_run, "large_n": run.manifest.get("large_n")}


def main_largen(n_units: int, n: int) -> None:
    rows = [_run_case(["largen", str(n_units), str(n), str(threads)]) for threads in (1, 2)]
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    lines = ["| units | replicates | threads | wall s | CPU s | CPU s (64 replicates) | CPU ms / replicate & pass | "
             "kernel CPU ms / replicate | draws CPU ms / replicate | peak MB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['units']:,} | {r['replicates']:,} | {r['threads']} | {r['seconds']:.1f} | "
                     f"{r['cpu_seconds']:.1f} | {r['cpu_seconds_64']:.1f} | {r['cpu_ms_per_replicate_pass']:.1f} | "
                     f"{r['kernel_cpu_ms_per_replicate']:.1f} | {r['draws_cpu_ms_per_replicate']:.1f} | "
                     f"{r['peak_mb']:.0f} |")
    lines += ["", "CPU ms / replicate & pass: (CPU of the run − CPU of a 64-replicate run) / (2 passes × the "
              "replicates between them), i.e. without the nominal run, the problem and the summaries; peak MB: "
              "of the run (before the kernel and draws probes).",
              f"Load average at the end (1, 5, 15 min): {' '.join(load)}."]
    write_results("bootstrap_largen", {"machine": machine(), "load": load, "rows": rows,
                                       "problem": "large-n bootstrap, mode units, 25 synthetic indicators"}, lines)


def _run_case(args: list[str], env: dict | None = None) -> dict:
    return run_script(__file__, ["--case", *args], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=None, help="default 10,000 (--large-n: 256)")
    parser.add_argument("--problems", nargs="*", default=list(PROBLEMS), choices=list(PROBLEMS))
    parser.add_argument("--large-n", action="store_true", help="the large-n bootstrap at --units units instead")
    parser.add_argument("--units", type=int, default=100_000, help="units of the --large-n case")
    parser.add_argument("--case", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.large_n and not args.case:
        main_largen(args.units, args.replicates or 256)
        return
    if args.case:
        kind, *rest = args.case
        if kind == "largen":
            result = case_largen(int(rest[0]), int(rest[1]), int(rest[2]))
        elif kind == "numpy":
            result = case_numpy(rest[0], int(rest[1]))
        elif kind == "engine":
            result = case_engine(rest[0], int(rest[1]), int(rest[2]))
        else:
            result = case_compile()
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as cache:
        compile_times = _run_case(["compile"], env={"NUMBA_CACHE_DIR": cache})
    rows = []
    n = args.replicates or 10_000
    for problem in args.problems:
        base = _run_case(["numpy", problem, str(n)])
        for threads in (1, 2):
            eng = _run_case(["engine", problem, str(n), str(threads)])
            rows.append({"problem": problem, "framework": PROBLEMS[problem], "replicates": n, "threads": threads,
                         "engine_s": eng["seconds"], "engine_rep_per_s": n / eng["seconds"],
                         "numpy_s": base["seconds"], "numpy_loop_s": base["loop_s"],
                         "speedup_vs_numpy": base["seconds"] / eng["seconds"],
                         "engine_peak_mb": eng["peak_mb"], "numpy_peak_mb": base["peak_mb"]})
            r = rows[-1]
            print(f"{problem:>9} x{threads}: engine {r['engine_s']:.3f} s ({r['engine_rep_per_s']:,.0f}/s), "
                  f"numpy {r['numpy_s']:.3f} s, {r['speedup_vs_numpy']:.1f}x numpy, peak {r['engine_peak_mb']:.0f} MB",
                  flush=True)
    report = {"machine": machine(),
              "problem": "record-level Poisson bootstrap of ai_firms_synthetic (4,311 firms)",
              "compile": compile_times, "rows": rows}
    lines = ["| firms → | framework | replicates | threads | engine s | replicates/s | NumPy s | × NumPy | peak MB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['problem']} | {r['framework']} | {r['replicates']:,} | {r['threads']} | "
                     f"{r['engine_s']:.3f} | {r['engine_rep_per_s']:,.0f} | {r['numpy_s']:.3f} | "
                     f"{r['speedup_vs_numpy']:.1f} | {r['engine_peak_mb']:.0f} |")
    lines.append("")
    lines.append(f"JIT compile (empty cache): pipeline kernels {compile_times['pipeline_compile_s']:.1f} s, "
                 f"bootstrap kernel {compile_times['bootstrap_compile_s']:.1f} s.")
    write_results("bootstrap", report, lines)


if __name__ == "__main__":
    main()
