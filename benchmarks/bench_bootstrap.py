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


def _run_case(args: list[str], env: dict | None = None) -> dict:
    return run_script(__file__, ["--case", *args], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=10_000)
    parser.add_argument("--problems", nargs="*", default=list(PROBLEMS), choices=list(PROBLEMS))
    parser.add_argument("--case", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        kind, *rest = args.case
        if kind == "numpy":
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
    n = args.replicates
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
