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
``data MB`` is the in-memory size of the loaded table (Polars ``estimated_size``).

    python benchmarks/bench_score.py                            # 10^4, 10^5, 10^6 units
    python benchmarks/bench_score.py --sizes 100000 --repeat 1  # quick

Writes ``benchmarks/results/score.json`` and ``benchmarks/results/score.md``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _common import machine, peak_mb, run_script, write_results

HERE = Path(__file__).resolve().parent


def case(kind: str, path: str) -> dict:
    import warnings

    import numpy as np
    import polars as pl

    import engine

    warnings.simplefilter("ignore")
    fw = engine.load_framework("ai-city-2024")
    engine.score(fw)  # compile / load the kernels
    started = time.perf_counter()
    if kind == "score":
        result = engine.score(fw, path)
        result.write(Path(path).with_suffix(".scores.parquet"))
        n = result.table.height
    else:
        table = pl.read_parquet(path)
        columns = sorted({c for ind in fw.indicators for c in ind.source_columns})
        matrix = table.select(columns).cast(pl.Float64).to_numpy()
        for j in range(matrix.shape[1]):
            np.argsort(-matrix[:, j])
        n = table.height
    seconds = time.perf_counter() - started
    data_mb = pl.read_parquet(path).estimated_size() / 1e6
    return {"kind": kind, "n": n, "seconds": seconds, "peak_mb": peak_mb(), "data_mb": data_mb}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(case(args.case[0], args.case[1])))
        return
    import sys

    sys.path.insert(0, str(HERE.parent))
    from tools.synthetic.large import generate_large

    rounds = []
    with tempfile.TemporaryDirectory() as folder:
        for n in args.sizes:
            path = Path(folder) / f"large_{n}.parquet"
            generate_large(n).write_parquet(path)
            for _ in range(args.repeat):
                for kind in ("score", "floor"):
                    rounds.append(run_script(__file__, ["--case", kind, str(path)]))
    best = {}
    for r in rounds:
        key = (r["kind"], r["n"])
        if key not in best or r["seconds"] < best[key]["seconds"]:
            best[key] = r
    table = ["| units | data MB | score (s) | floor (s) | ratio | score peak MB | peak / data | floor peak MB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in args.sizes:
        s, f = best[("score", n)], best[("floor", n)]
        table.append(f"| {n:,} | {s['data_mb']:.0f} | {s['seconds']:.2f} | {f['seconds']:.2f} | "
                     f"{s['seconds'] / f['seconds']:.1f} | {s['peak_mb']:.0f} | {s['peak_mb'] / s['data_mb']:.1f} | "
                     f"{f['peak_mb']:.0f} |")
    write_results("score", {"machine": machine(), "rounds": rounds}, table)


if __name__ == "__main__":
    main()
