"""Audit benchmark: a full statistical audit (every registered section) of the shipped real index
china-city-innovation-2023 (297 cities × 12 indicators), and of asem (51 × 49) for scale.

Each framework runs in its own process: one warm-up audit (Numba kernels loaded or compiled),
then the best of 3 timed audits, with the time per section from the audit's own manifest.

    python benchmarks/bench_audit.py

Writes benchmarks/results/audit.json and .md.
"""

from __future__ import annotations

import json
import sys
import time

from _common import machine, peak_mb, run_script, write_results

FRAMEWORKS = ("china-city-innovation-2023", "asem")


def case(framework: str) -> dict:
    import engine

    engine.audit(framework)  # warm-up
    best, result = float("inf"), None
    for _ in range(3):
        started = time.perf_counter()
        result = engine.audit(framework)
        best = min(best, time.perf_counter() - started)
    audit = result.recipe["audit"]
    return {"framework": framework, "units": audit["n_units"], "indicators": len(result.score.framework.indicators),
            "seconds": best, "sections": audit["sections"], "section_s": audit["section_time_s"],
            "flags": result.flags.height, "peak_mb": peak_mb()}


def main() -> None:
    if sys.argv[1:2] == ["--case"]:
        print(json.dumps(case(sys.argv[2])))
        return
    cases = [run_script(__file__, ["--case", name]) for name in FRAMEWORKS]
    lines = ["| framework | units × indicators | sections | audit s (best of 3) | per section s | flags | peak MB |",
             "|---|---:|---|---:|---|---:|---:|"]
    for c in cases:
        per = ", ".join(f"{k} {v:.3f}" for k, v in c["section_s"].items())
        lines.append(f"| {c['framework']} | {c['units']} × {c['indicators']} | {', '.join(c['sections'])} | "
                     f"{c['seconds']:.3f} | {per} | {c['flags']} | {c['peak_mb']:.0f} |")
    write_results("audit", {"machine": machine(), "cases": cases}, lines)


if __name__ == "__main__":
    main()
