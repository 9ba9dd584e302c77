"""Paired rank-change benchmark: ``engine.change`` against two plain Monte Carlo runs, in one run.

Problem: the shipped ``ai-city-2024`` framework on its 337-city dataset (25 indicators) as the
earlier period, and the same cities with every indicator value multiplied by a seeded U(0.9, 1.1)
factor as the later one; weights-only perturbation (±25 % uniform noise on every weight).

* **change** — ``engine.change`` with ``n`` paired replicates (each draws one set of weights and
  scores, ranks and compares both periods);
* **baseline** — two plain ``engine.uncertainty`` runs of ``n`` replicates, one per period (the
  same scoring work, rank histograms instead of a rank-change histogram, no pairing).

Each case runs in its own process, warmed up (JIT compiled) before it is timed, ``--repeat``
rounds interleaved with the other case (best round reported; shared machines drift).  Besides the
wall time each case records its process CPU time (all lane threads): on a machine shared with
other work the wall time follows the load, the CPU time much less, so the CPU ratio is the fairer
comparison of the work done per paired replicate.

    python benchmarks/bench_change.py                         # 10^6 paired replicates
    python benchmarks/bench_change.py --sizes 100000 --repeat 1   # quick

Writes ``benchmarks/results/change.json`` and ``benchmarks/results/change.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import machine, peak_mb, run_script, write_results

HERE = Path(__file__).resolve().parent
SPEC = {"weights": [{"depth": 1, "noise": 0.25}, {"depth": 2, "noise": 0.25}, {"depth": 3, "noise": 0.25}]}


def _periods():
    import numpy as np
    import polars as pl

    import engine

    fw = engine.load_framework("ai-city-2024")
    before = engine.load_data(fw.data["dataset"], framework=fw)
    rng = np.random.default_rng(2012)
    columns = sorted({c for ind in fw.indicators for c in ind.source_columns})
    after = before.table.with_columns(pl.col(c) * pl.Series(rng.uniform(0.9, 1.1, before.table.height))
                                      for c in columns)
    return fw, before.table, after


def case(kind: str, n: int, threads: int) -> dict:
    import warnings

    import engine

    warnings.simplefilter("ignore")
    fw, before, after = _periods()

    def run(replicates: int) -> tuple[float, float]:
        started, cpu = time.perf_counter(), time.process_time()
        if kind == "change":
            engine.change(fw, {1: before, 2: after}, start=1, end=2, spec=SPEC, n_replicates=replicates, seed=7,
                          threads=threads)
        else:
            for data in (before, after):
                engine.uncertainty(fw, data, SPEC, replicates=replicates, seed=7, threads=threads)
        return time.perf_counter() - started, time.process_time() - cpu

    run(16384)  # compile / load the kernels, touch the code paths
    seconds, cpu_seconds = run(n)
    return {"kind": kind, "n": n, "threads": threads, "seconds": seconds, "cpu_seconds": cpu_seconds,
            "peak_mb": peak_mb(), "units": before.height}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--case", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(case(args.case[0], int(args.case[1]), int(args.case[2]))))
        return
    rounds = []
    for n in args.sizes:
        for _ in range(args.repeat):
            for kind in ("change", "baseline"):
                rounds.append(run_script(__file__, ["--case", kind, str(n), str(args.threads)]))
    best = {}
    for r in rounds:
        key = (r["kind"], r["n"])
        if key not in best or r["seconds"] < best[key]["seconds"]:
            best[key] = r
    cpu = {}  # least CPU time of each case's rounds
    for r in rounds:
        key = (r["kind"], r["n"])
        cpu[key] = min(cpu.get(key, r["cpu_seconds"]), r["cpu_seconds"])
    table = ["| paired replicates | units | threads | change (s) | two uncertainty runs (s) | ratio | change CPU s | "
             "two runs CPU s | CPU ratio | CPU µs per pair | change peak MB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in args.sizes:
        c, b = best[("change", n)], best[("baseline", n)]
        cc, cb = cpu[("change", n)], cpu[("baseline", n)]
        table.append(f"| {n:,} | {c['units']} | {args.threads} | {c['seconds']:.2f} | {b['seconds']:.2f} | "
                     f"{c['seconds'] / b['seconds']:.2f} | {cc:.2f} | {cb:.2f} | {cc / cb:.2f} | {cc / n * 1e6:.2f} | "
                     f"{c['peak_mb']:.0f} |")
    write_results("change", {"machine": machine(), "spec": SPEC, "rounds": rounds}, table)


if __name__ == "__main__":
    main()
