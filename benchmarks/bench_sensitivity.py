"""Sobol sensitivity benchmark: 2^14 base samples, 6 factor groups on ai-city-2024 (337 × 25).

Groups: dimension weights, sub-dimension weights, indicator weights (±25 % noise each), the
normalisation choice (minmax / rank / percentile), the aggregation of the dimensions (arithmetic /
geometric) and the exclusion of one indicator: N (g + 2) = 16,384 × 8 = 131,072 evaluations.
Baselines measured in the same run, as in bench_montecarlo.py: the NumPy baseline and the floor
(matmul + sort) for the same number of (weights-only) evaluations.

    python benchmarks/bench_sensitivity.py

Writes benchmarks/results/sensitivity.json and .md.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from _common import run_script, write_results

HERE = Path(__file__).resolve().parent
N_BASE = 2**14


def spec() -> dict:
    import engine

    fw = engine.load_framework("ai-city-2024")
    by_depth = {d: [n for n in fw.node_ids if n != fw.root.id and fw.depth(n) == d] for d in (1, 2, 3)}
    return {"weights": [{"depth": d, "noise": 0.25} for d in (1, 2, 3)],
            "normalisation": {"choices": ["minmax", "rank", "percentile"]},
            "aggregation": [{"depth": 1, "choices": ["arithmetic", "geometric"]}],
            "exclusion": True,
            "groups": {"dimension_weights": [f"weight:{n}" for n in by_depth[1]],
                       "subdimension_weights": [f"weight:{n}" for n in by_depth[2]],
                       "indicator_weights": [f"weight:{n}" for n in by_depth[3]]}}


def case_engine() -> dict:
    from engine.analysis.sensitivity import sensitivity

    sensitivity("ai-city-2024", spec=spec(), base_samples=512, seed=1, n_boot=10)  # JIT warm-up
    started = time.perf_counter()
    run = sensitivity("ai-city-2024", spec=spec(), base_samples=N_BASE, seed=7, n_boot=200)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "evaluations": run.manifest["evaluations"],
            "indices": run.indices.to_dicts()}


def main() -> None:
    if sys.argv[1:] == ["--case"]:
        print(json.dumps(case_engine()))
        return
    eng = run_script(__file__, ["--case"])
    n = eng["evaluations"]
    numpy_base = run_script(HERE / "bench_montecarlo.py", ["--case", "numpy", str(n)])
    floor = run_script(HERE / "bench_montecarlo.py", ["--case", "floor", str(n)])
    report = {"base_samples": N_BASE, "groups": 6, "evaluations": n, "engine_s": eng["seconds"],
              "evaluations_per_s": n / eng["seconds"], "numpy_s": numpy_base["seconds"],
              "floor_s": floor["seconds"], "speedup_vs_numpy": numpy_base["seconds"] / eng["seconds"],
              "ratio_to_floor": eng["seconds"] / floor["seconds"],
              "indices": eng["indices"]}
    line = (f"| {N_BASE:,} | 6 | {n:,} | {eng['seconds']:.2f} | {n / eng['seconds']:,.0f} | "
            f"{numpy_base['seconds']:.2f} | {floor['seconds']:.2f} | {report['speedup_vs_numpy']:.1f} | "
            f"{report['ratio_to_floor']:.2f} |")
    write_results("sensitivity", report, [
        "| base samples | groups | evaluations | engine s | evaluations/s | NumPy s (weights only) | floor s | "
        "× NumPy | × floor |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|", line])


if __name__ == "__main__":
    main()
