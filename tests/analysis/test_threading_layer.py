"""Lanes that call ``parallel=True`` kernels (the bootstrap kernel: large-n bootstrap lanes, the paired
record bootstrap) under Numba's ``workqueue`` threading layer, the fallback where neither TBB nor
OpenMP is found (macOS without libomp): it is not thread-safe and aborted the whole process
("Terminating: Nested parallel kernel launch detected"); now those lanes run one after the other,
with the same result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numba
import pytest

from engine.analysis import montecarlo
from engine.analysis.montecarlo import in_lanes
from engine.kernels import parallel_kernels_threadsafe

RUN = """
import json, engine, engine.panel
boot = engine.bootstrap("asem", mode="units", replicates=2048, seed=3, large_n_above=0, threads=2)
panel = engine.panel.load_panel("ai-firms-2023", "ai_firm_cities_panel_synthetic", period="year")
change = engine.change(None, panel, start=2022, end=2023, records="ai_firms_panel_synthetic", record_id="firm_id",
                       n_replicates=2048, seed=3, threads=2)
print(json.dumps({"layer": __import__("numba").threading_layer(),
                  "boot": boot.units.select("median_rank", "q05_rank", "q95_rank", "mean_rank").rows(),
                  "change": change.units.drop_nulls("median_change").select("median_change", "p_improved").rows()}))
"""


def _run(layer: str) -> dict:
    env = {**os.environ, "NUMBA_THREADING_LAYER": layer, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([sys.executable, "-c", RUN], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_parallel_kernels_in_lanes_under_workqueue_give_the_same_result():
    """Where workqueue is this machine's default layer (the case the fix protects) the run is the
    workqueue run and there is nothing to compare it with: skipped (it failed there)."""
    default = _run("default")
    if default["layer"] == "workqueue":
        pytest.skip("Numba's default threading layer here is workqueue (neither TBB nor OpenMP): no other to compare")
    queue = _run("workqueue")
    assert queue["layer"] == "workqueue"
    assert queue["boot"] == default["boot"] and queue["change"] == default["change"]


def test_lanes_run_in_turn_only_when_parallel_kernels_are_not_threadsafe(monkeypatch):
    def where(_lane: int) -> int:
        return threading.get_ident()

    here = threading.get_ident()
    monkeypatch.setattr(montecarlo, "parallel_kernels_threadsafe", lambda: False)
    assert in_lanes(where, 3, parallel_kernels=True) == [here] * 3
    assert here not in in_lanes(where, 3)[1:]  # lanes of non-parallel kernels keep their threads
    monkeypatch.setattr(montecarlo, "parallel_kernels_threadsafe", lambda: True)
    assert here not in in_lanes(where, 3, parallel_kernels=True)[1:]


def test_the_probe_names_this_process_layer():
    assert parallel_kernels_threadsafe() == (numba.threading_layer() != "workqueue")
