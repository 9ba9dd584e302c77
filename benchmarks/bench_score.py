"""Scoring at scale: ``engine.score`` of 10⁴ … 10⁶ units × 25 indicators from Parquet, against a
NumPy floor measured in the same run.

Data: ``tools.synthetic.large`` (SYNTHETIC: rows of ``ai_cities_synthetic`` with log-normal noise,
so the shipped ``ai-city-2024`` framework — 25 indicators, denominators, components, 39 nodes,
Fisher–Jenks tiers — scores it unchanged), written once per size to a temporary Parquet file.

* **score** — ``engine.score("ai-city-2024", path)`` and ``ScoreResult.write`` of the table to
  Parquet: the whole pipeline (load, check, normalise, aggregate, rank, tiers, output);
* **floor** — ``polars.read_parquet`` of the same file, the indicator columns to one float64 NumPy
  matrix and a NumPy ``argsort`` of every column (what any implementation must at least do).

Each case runs in its own process (its peak resident memory is its own), warmed up on the shipped
337 cities first; ``--repeat`` rounds interleaved, best round reported (shared machines drift).
``data MB`` is the in-memory size of the loaded table (Polars ``estimated_size``); ``cpu`` the
process's CPU time (all threads), ``load`` the machine's 1-minute load average when the case ended
(other processes' share of the 2 cores).  ``--threads`` is ``engine.score``'s (default: all cores).

    python benchmarks/bench_score.py                            # 10^4, 10^5, 10^6 units
    python benchmarks/bench_score.py --sizes 100000 --repeat 1  # quick
    python benchmarks/bench_score.py --sizes 1000000 --threads 1 2
    python benchmarks/bench_score.py --stages 1000000 --threads 2 1   # wall, CPU and peak RSS per stage

Writes ``benchmarks/results/score.json`` and ``benchmarks/results/score.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine, peak_mb, run_script, write_results

HERE = Path(__file__).resolve().parent


def case(kind: str, path: str, threads: int | None = None) -> dict:
    import warnings

    import numpy as np
    import polars as pl

    import engine

    warnings.simplefilter("ignore")
    fw = engine.load_framework("ai-city-2024")
    engine.score(fw)  # compile / load the kernels
    started, cpu = time.perf_counter(), time.process_time()
    if kind == "score":
        result = engine.score(fw, path, threads=threads)
        result.write(Path(path).with_suffix(".scores.parquet"))
        n = result.table.height
    else:
        table = pl.read_parquet(path)
        columns = sorted({c for ind in fw.indicators for c in ind.source_columns})
        matrix = table.select(columns).cast(pl.Float64).to_numpy()
        for j in range(matrix.shape[1]):
            np.argsort(-matrix[:, j])
        n = table.height
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = peak_mb()
    data_mb = pl.read_parquet(path).estimated_size() / 1e6
    return {"kind": kind, "n": n, "threads": threads, "seconds": seconds, "cpu": cpu, "peak_mb": peak,
            "data_mb": data_mb, "load": os.getloadavg()[0]}


def stages(path: str, threads: int | None) -> None:
    """Print the wall time, CPU time and peak RSS after each stage of one ``engine.score`` and write
    (the pipeline's functions wrapped with timers)."""
    import resource
    import warnings

    import engine
    from engine import pipeline

    warnings.simplefilter("ignore")
    fw = engine.load_framework("ai-city-2024")
    engine.score(fw)
    times: dict[str, tuple[float, float, float]] = {}

    def timed(name: str):
        inner = getattr(pipeline, name)

        def wrapper(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return inner(*args, **kwargs)
            finally:
                times[name] = (time.perf_counter() - wall, time.process_time() - cpu,
                               resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        setattr(pipeline, name, wrapper)

    for name in ("as_dataset", "prepare", "normalise", "aggregate", "rescale", "rank", "_ranked", "_finish",
                 "write_table"):
        timed(name)
    wall, cpu = time.perf_counter(), time.process_time()
    result = engine.score(fw, path, threads=threads)
    result.write(Path(path).with_suffix(".scores.parquet"))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    label = {"_ranked": "ranks + tiers", "_finish": "output table", "write_table": "Parquet write"}
    print(f"threads {threads or 'all'}, load {os.getloadavg()[0]:.2f}")
    for name, (w, c, peak) in times.items():
        print(f"  {label.get(name, name):14s} wall {w:6.2f} s  cpu {c:6.2f} s  peak RSS {peak:6.0f} MB")
    print(f"  {'total':14s} wall {wall:6.2f} s  cpu {cpu:6.2f} s  peak RSS {peak_mb():6.0f} MB")


def generate_large(n: int, path: Path) -> None:
    """Write the data in a child process: a process's peak RSS passes to the processes it starts
    (Linux copies it through fork and exec), so every case's peak would start at this process's
    (about 0.8 GB after making 10^6 units)."""
    subprocess.run([sys.executable, "-m", "tools.synthetic.large", str(n), str(path)], check=True,
                   cwd=HERE.parent, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="*", default=[0], help="engine.score threads (0: default)")
    parser.add_argument("--stages", type=int, metavar="UNITS", help="time each stage of one run at this size")
    parser.add_argument("--case", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        if args.case[0] == "stages":
            stages(args.case[1], int(args.case[2]) or None)
        else:
            print(json.dumps(case(args.case[0], args.case[1], int(args.case[2]) or None)))
        return
    rounds = []
    if args.stages:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"large_{args.stages}.parquet"
            generate_large(args.stages, path)
            for threads in args.threads:  # each in its own process, one after the other (interleave by hand)
                subprocess.run([sys.executable, __file__, "--case", "stages", str(path), str(threads)], check=True,
                               cwd=HERE.parent, env={**os.environ, "PYTHONPATH": str(HERE.parent)})
        return
    with tempfile.TemporaryDirectory() as folder:
        for n in args.sizes:
            path = Path(folder) / f"large_{n}.parquet"
            generate_large(n, path)
            for _ in range(args.repeat):
                for threads in args.threads:
                    rounds.append(run_script(__file__, ["--case", "score", str(path), str(threads)]))
                rounds.append(run_script(__file__, ["--case", "floor", str(path), "0"]))
    best = {}
    for r in rounds:
        key = (r["kind"], r["n"], r["threads"])
        if key not in best or r["seconds"] < best[key]["seconds"]:
            best[key] = r
    table = ["| units | threads | data MB | score (s) | cpu (s) | floor (s) | ratio | score peak MB | peak / data "
             "| floor peak MB | load |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in args.sizes:
        f = best[("floor", n, None)]
        for threads in args.threads:
            s = best[("score", n, threads or None)]
            table.append(f"| {n:,} | {threads or 'all'} | {s['data_mb']:.0f} | {s['seconds']:.2f} | {s['cpu']:.2f} | "
                         f"{f['seconds']:.2f} | {s['seconds'] / f['seconds']:.1f} | {s['peak_mb']:.0f} | "
                         f"{s['peak_mb'] / s['data_mb']:.1f} | {f['peak_mb']:.0f} | {s['load']:.1f} |")
    write_results("score", {"machine": machine(), "rounds": rounds}, table)


if __name__ == "__main__":
    main()
