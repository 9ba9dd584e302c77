"""Plumbing shared by the benchmark scripts: each case runs in its own process (so that its peak
resident memory is its own) and prints one JSON line; each script writes ``results/<name>.json``
and ``results/<name>.md`` and prints the table."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def peak_mb() -> float:
    """Peak resident memory of this process, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_script(script: str | Path, args: list[str], env: dict | None = None) -> dict:
    """Run ``python script *args`` from the project root (engine importable) and return the JSON of
    its last output line."""
    output = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, check=True,
                            cwd=HERE.parent, env={**os.environ, "PYTHONPATH": str(HERE.parent), **(env or {})})
    return json.loads(output.stdout.strip().splitlines()[-1])


def machine() -> dict:
    import numba
    import numpy

    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": model or platform.processor(), "platform": platform.platform(),
            "python": platform.python_version(), "numpy": numpy.__version__, "numba": numba.__version__}


def write_results(name: str, report: dict, table: list[str]) -> None:
    """Write ``report`` as JSON and the Markdown ``table`` lines to ``results/``; print the table."""
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, indent=2))
    (out / f"{name}.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
