"""The bootstrap's replicates (engine.analysis.resampling): large-n lane states and the size of a
replicate's draws."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from engine.analysis.bootstrap import bootstrap
from engine.analysis.change import change
from engine.analysis.design import RNG_BLOCK
from engine.analysis.largen import bands, quantile_windows
from engine.analysis.resampling import block_draws, run_bootstrap_bands
from engine.panel import load_panel
from engine.schema import framework_from_dict
from tests.analysis.conftest import city_data, city_framework


@pytest.fixture(scope="module")
def units_problem():
    """A mode-units bootstrap problem of 30 units (m = n)."""
    return bootstrap(framework_from_dict(city_framework()), city_data(n_units=30), spec={"mode": "units"},
                     replicates=64, seed=5, block_size=256, large_n_above=0, rank_bins=4).problem


def test_large_n_bootstrap_lanes_count_in_the_monte_carlos_integer_type(units_problem):
    """Bootstrap lanes made their states without the replicate count, so their counts were int64 where
    the Monte Carlo's lanes' are int32 (largen.count_type: fewer than 2³¹ replicates), twice the
    memory the estimate (memory.band_bytes) counts; the counts are the same."""
    layout = bands(units_problem.problem, 4)
    first = run_bootstrap_bands(units_problem, 3, 0, 4, 256, 1024, layout, n_lanes=2)
    second = run_bootstrap_bands(units_problem, 3, 0, 4, 256, 1024, layout, quantile_windows(first, layout), n_lanes=2)
    assert first.coarse.dtype == np.int32 and second.fine.dtype == np.int32
    assert (first.coarse[0].sum(axis=1) == 1024).all() and first.moments is not None


def _peak_bytes(fn) -> int:
    """Peak bytes that ``fn()`` allocates (NumPy reports its arrays to tracemalloc)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("mode", ["units", "records", "noise"])
def test_draw_bytes_are_what_drawing_a_replicate_allocates(mode, units_problem):
    """BootstrapProblem.draw_bytes, the one figure of a replicate's draws (the memory check's lanes and
    a large-n lane's sub-batch): what drawing 1,024 replicates allocates at its peak, to 1 %.  In mode
    units that is the drawn units (int64) beside the multiplicities (float64): the property counted
    only the multiplicities (half of it with m = n), a second function both."""
    if mode == "units":
        bp = units_problem
    elif mode == "records":
        bp = bootstrap("regional-ai-2023", records="ai_firms_synthetic", replicates=16, block_size=16, seed=1).problem
    else:
        bp = bootstrap(framework_from_dict(city_framework()), city_data(n_units=30), replicates=16, block_size=16,
                       seed=1, spec={"mode": "noise", "noise": {"default": {"relative": 0.2}}}).problem
    assert bp.mode == mode
    n = 1024
    peak = _peak_bytes(lambda: block_draws(bp, 1, 0).take(n))
    assert n * bp.draw_bytes <= peak <= 1.01 * n * bp.draw_bytes


def test_paired_record_draws_are_counted_by_the_change_memory_check(monkeypatch):
    """A change lane in mode records holds an RNG block's shared uniforms and each period's taken
    ones: the memory check counts exactly what PairedRecords.draws allocates (to 1 %)."""
    from engine.analysis import change as change_module
    from tests.analysis.test_change_bootstrap import FRAMEWORK as CHANGE_FRAMEWORK
    from tests.analysis.test_change_bootstrap import SPEC, _records, _unit_table

    seen, real_check, real_memory = {}, change_module._check_memory, change_module.check_memory

    def check(n_units, lanes, records=None):
        seen["records"] = records
        return real_check(n_units, lanes, records)

    def memory(*args, lane_draws=0, **options):
        seen["lane_draws"] = lane_draws
        return real_memory(*args, lane_draws=lane_draws, **options)

    monkeypatch.setattr(change_module, "_check_memory", check)
    monkeypatch.setattr(change_module, "check_memory", memory)
    records = _records()
    panel = load_panel(framework_from_dict(CHANGE_FRAMEWORK), _unit_table(records))
    change(None, panel, start=2011, end=2012, spec=SPEC, records=records, record_id="id", n_replicates=64, seed=7,
           block_size=64, threads=1)
    peak = _peak_bytes(lambda: seen["records"].draws(7, 0, RNG_BLOCK))
    assert seen["lane_draws"] <= peak <= 1.01 * seen["lane_draws"]
