"""Memory: runs that would not fit are refused before any work, with the figure and what would fit;
analyses do not allocate the units² histograms they do not output (issue 21 item 4)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import engine
from engine.analysis import bootstrap as stability_module
from engine.analysis import memory
from engine.analysis import sensitivity as sensitivity_module
from engine.analysis import uncertainty as run_module
from engine.analysis.bootstrap import bootstrap
from engine.analysis.design import n_columns
from engine.analysis.memory import FIXED_SETS, check_memory, counts_bytes, estimate_bytes
from engine.analysis.montecarlo import split_call
from engine.analysis.problem import build_problem
from engine.analysis.sensitivity import _evaluate, sensitivity
from engine.analysis.spec import load_spec, resolve_factors
from engine.analysis.uncertainty import uncertainty
from engine.errors import DataError
from engine.schema import framework_from_dict
from tests.analysis.conftest import city_data, city_framework
from tests.kernels.test_montecarlo import _case

MiB = 2**20


@pytest.fixture
def no_analysis(monkeypatch):
    """Make the analyses' first step after the memory check fail loudly: a refusal must come first."""
    def never(*args, **kwargs):
        raise AssertionError("the analysis started although the memory check should have refused it")

    for module in (run_module, sensitivity_module, stability_module):
        monkeypatch.setattr(module, "build_problem", never)


def test_counts_bytes_and_the_estimate_formula():
    # 3 units: rank histogram 3 x 4, rank-shift histogram 3 * 2 + 1 bins, 2 pairs: 2 x 2, per target
    assert counts_bytes(3, 1, 2) == 8 * (12 + 7 + 4)
    assert counts_bytes(3, 2, 0) == 2 * 8 * (12 + 7)
    n = 10_000
    lanes = 2
    assert (estimate_bytes("uncertainty", n, 1, lanes)
            == (lanes + FIXED_SETS["uncertainty"]) * counts_bytes(n) + lanes * 256 * n * 12)
    # Sobol: one sub-batch (rows' scores, keys and ranks, then one output's terms) + per-batch sums; any lanes
    per_sample = n * (5 * 28 + 8 * 15)
    assert memory.sobol_sample_bytes(n, 1, 3) == per_sample
    sub = memory.SOBOL_EVALUATION_BYTES // per_sample
    assert estimate_bytes("sensitivity", n, 1, 2, groups=3) == sub * per_sample + 2 * 8 * 12 * n
    assert (estimate_bytes("sensitivity", n, 1, 2, groups=3, second_order=True, base_samples=2048)
            == memory.sobol_sub_batch(n, 1, 3, True) * n * (8 * 28 + 8 * 15) + 4 * 2 * 8 * 12 * n)
    with pytest.raises(ValueError, match="unknown analysis 'sobol'"):
        estimate_bytes("sobol", 10)


def test_available_bytes_reads_the_machine():
    available = memory.available_bytes()
    assert available is None or available > 0


def test_uncertainty_that_fits_with_one_thread_is_refused_naming_that_option(monkeypatch, no_analysis):
    """300 units, 2 lanes need ~10 MiB; with 9 MiB available the error gives both figures and that
    threads=1 (8 MiB) would fit — raised before the problem is built or any kernel runs."""
    fw, data = framework_from_dict(city_framework()), city_data(n_units=300)
    assert 9 * MiB < estimate_bytes("uncertainty", 300, 1, 2) and estimate_bytes("uncertainty", 300, 1, 1) < 9 * MiB
    monkeypatch.setattr(memory, "available_bytes", lambda: 9 * MiB)
    with pytest.raises(DataError, match=r"uncertainty of 300 units \(1 target\(s\), 2 lane\(s\)\) needs about 10 MiB "
                                        r"of memory \(histograms of units × units per target and lane\), but only "
                                        r"9 MiB is available\. Fix: threads=1 \(--threads 1\) needs about 8 MiB and "
                                        r"would fit; CITYRANK_MEMORY_CHECK=off skips this check"):
        uncertainty(fw, data, replicates=1024, seed=1, threads=2)


def test_a_hundred_thousand_units_are_refused_with_the_figure(monkeypatch, no_analysis):
    """The issue's 10^5-unit run (a raw _ArrayMemoryError for 74.5 GiB): a DataError with the
    figure and the memory available, pointing at large-n mode when no option fits (forced into the
    exact mode: by default 10^5 units run in large-n mode, tests/analysis/test_largen.py)."""
    n = 100_000
    fw, data = framework_from_dict(city_framework()), city_data(n_units=n)
    monkeypatch.setattr(memory, "available_bytes", lambda: 64 * 2**30)
    expected = estimate_bytes("uncertainty", n, 1, 1) / 2**30
    with pytest.raises(DataError, match=rf"uncertainty of 100,000 units .* needs about {expected:.1f} GiB of memory .* "
                                        r"only 64\.0 GiB is available\. Fix: analyse fewer units: memory grows with "
                                        r"units² \(uncertainty's large-n mode needs units × bins: "
                                        r"--large-n-above / large_n_above below the unit count\)"):
        uncertainty(fw, data, replicates=1024, seed=1, threads=1, large_n_above=10**6)


def test_bootstrap_and_sensitivity_are_checked_first(monkeypatch, no_analysis):
    fw, data = framework_from_dict(city_framework()), city_data(n_units=200)
    monkeypatch.setattr(memory, "available_bytes", lambda: MiB)
    with pytest.raises(DataError, match=r"bootstrap of 200 units .* only 1 MiB is available\. Fix: analyse fewer "
                                        r"units: memory grows with units²"):
        bootstrap(fw, data, spec={"mode": "units", "replicates": 1024, "seed": 1}, threads=1)
    with pytest.raises(DataError, match=r"sensitivity of 200 units .* \(sub-batches of base samples × "
                                        r"\(groups \+ 2\) replicates, per-unit sums per batch\), but only 1 MiB is "
                                        r"available\. Fix: analyse fewer units: memory grows with units × groups"):
        sensitivity(fw, data, base_samples=64, seed=1, threads=1)


def test_sobol_at_a_hundred_thousand_units_is_sized_by_sub_batches(monkeypatch):
    """10^5 units, 5 groups: one batch of 512 base samples × 7 rows needed ~10 GB at once; sub-batches
    sized from the unit count (7 base samples) bound it, and the estimate and the refusal use that size."""
    n = 100_000
    assert memory.sobol_sub_batch(n, 1, 5) == 7
    need = estimate_bytes("sensitivity", n, 1, 2, groups=5, base_samples=1024)
    assert need == 7 * n * (7 * 28 + 8 * 23) + 2 * 2 * 8 * 18 * n  # 266 MB + 58 MB, was 512 * 7 * n * 28 = 10 GB
    assert need < memory.SOBOL_EVALUATION_BYTES + 64 * MiB
    monkeypatch.setattr(memory, "available_bytes", lambda: 200 * MiB)
    with pytest.raises(DataError, match=rf"sensitivity of 100,000 units .* needs about {need / MiB:.0f} MiB of memory "
                                        r"\(sub-batches of base samples"):
        check_memory("sensitivity", n, 1, 2, groups=5, base_samples=1024)
    monkeypatch.setattr(memory, "available_bytes", lambda: 400 * MiB)
    assert check_memory("sensitivity", n, 1, 2, groups=5, base_samples=1024) == need


def test_second_order_option_is_offered(monkeypatch):
    need_first = estimate_bytes("sensitivity", 1000, 1, 1, groups=4)
    monkeypatch.setattr(memory, "available_bytes", lambda: need_first + 1)
    with pytest.raises(DataError, match=r"Fix: no second-order indices needs about \d+ MiB and would fit"):
        check_memory("sensitivity", 1000, 1, 1, groups=4, second_order=True)
    assert check_memory("sensitivity", 1000, 1, 1, groups=4) == need_first


def test_the_check_can_be_switched_off(monkeypatch):
    fw, data = framework_from_dict(city_framework()), city_data(n_units=30)
    monkeypatch.setattr(memory, "available_bytes", lambda: 1)
    with pytest.raises(DataError, match="needs about"):
        uncertainty(fw, data, replicates=1024, seed=1, threads=1)
    monkeypatch.setenv("CITYRANK_MEMORY_CHECK", "off")
    assert uncertainty(fw, data, replicates=1024, seed=1, threads=1).statistics.n_replicates == 1024


@pytest.mark.parametrize("case", ["weights only (linear path)", "missing values (tree path)", "treatment switch",
                                  "ties between units"])
def test_uncounted_replicates_give_the_same_scores_ranks_and_shifts(case):
    """``count=False`` (empty histograms and pair counts, as Sobol uses): the same scores, R_S, ranks
    and moments, bit for bit, as a counted run, and nothing of units² size."""
    problem, _, params, _ = _case(case, 64, 9, 64)
    counted = split_call(problem, params, 64, 2, keep=True)
    uncounted = split_call(problem, params, 64, 2, keep=True, count=False)
    for a, b in zip(counted[3:], uncounted[3:], strict=True):  # moments, scores, R_S, ranks
        np.testing.assert_array_equal(a, b)
    assert all(a.size == 0 for a in uncounted[:3])
    assert counted[0].sum() > 0


def test_sobol_evaluations_allocate_no_units_squared_histogram():
    """A Sobol evaluation of 8 rows for 1,500 units keeps scores and ranks (~0.3 MiB); it used to
    allocate a rank and a rank-shift histogram (2 x 17 MiB) per lane as well."""
    fw, data = framework_from_dict(city_framework()), city_data(n_units=1500)
    nominal = engine.score(fw, data)
    spec = load_spec({"weights": [{"depth": 1, "noise": 0.25}]}, seed=1)
    factors = resolve_factors(spec, nominal.framework)
    problem = build_problem(nominal, spec, factors)
    u = np.random.default_rng(0).random((8, n_columns(factors)))
    _evaluate(problem, factors, u)  # compile first
    tracemalloc.start()
    try:
        ranks, scores, shift = _evaluate(problem, factors, u)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ranks.shape == scores.shape == (8, 1500) and shift.shape == (8,)
    assert peak < 4 * MiB, peak


def test_estimate_is_within_a_factor_two_of_the_arrays_a_run_allocates():
    """NumPy's allocations of a 1,500-unit uncertainty run (traced, so not timing-dependent): the
    estimate is between 0.5 and 2 times their peak."""
    fw, data = framework_from_dict(city_framework()), city_data(n_units=1500)
    uncertainty(fw, city_data(n_units=20), replicates=1024, seed=1, threads=1)  # compile first
    tracemalloc.start()
    try:
        uncertainty(fw, data, replicates=2048, seed=1, threads=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    estimate = estimate_bytes("uncertainty", 1500, 1, 1)
    assert 0.5 <= estimate / peak <= 2.0, (estimate / MiB, peak / MiB)


def test_record_draws_are_counted_before_the_replicates(monkeypatch):
    """A kernel call holds an RNG block's record uniforms and a slice of them: 2 × 1,024 × records × 4
    bytes per lane (8 GiB at 10^6 records), which the estimate left out; refused before any replicate."""
    from engine.analysis import change as change_module

    monkeypatch.setattr(stability_module, "drive", lambda *a, **k: pytest.fail("a replicate ran"))
    histograms = estimate_bytes("bootstrap", 31, 1, 2, confidence=True)
    draws = 2 * 1024 * 4 * 4311  # the shipped synthetic firms
    assert estimate_bytes("bootstrap", 31, 1, 2, confidence=True, lane_draws=draws) == histograms + 2 * draws
    monkeypatch.setattr(memory, "available_bytes", lambda: histograms + draws)
    with pytest.raises(DataError, match=r"bootstrap of 31 units .* and 34 MiB of sampling draws per lane .* Fix: "
                                        r"threads=1 \(--threads 1\) needs about"):
        bootstrap("regional-ai-2023", records="ai_firms_synthetic", mode="records", replicates=1024, seed=1,
                  threads=2)
    from engine.panel import load_panel

    panel = load_panel("ai-firms-2023", "ai_firm_cities_panel_synthetic", period="year")
    monkeypatch.setattr(change_module, "run_change_chunk", lambda *a, **k: pytest.fail("a replicate ran"))
    monkeypatch.setattr(memory, "available_bytes", lambda: 40 * MiB)
    with pytest.raises(DataError, match=r"change of 61 units \(2 lane\(s\)\) .* and record draws per lane"):
        change_module.change(None, panel, start=2022, end=2023, records="ai_firms_panel_synthetic",
                             record_id="firm_id", n_replicates=1024, seed=1, threads=2)


def test_large_n_lanes_count_their_own_draws_not_an_rng_blocks():
    """A large-n lane draws a sub-batch at a time (at most 64 MiB, counted for the bootstrap): an RNG
    block's draws (``lane_draws``, what an exact-mode lane holds) are not in its figure; the large-n
    branch took the larger of the two, though no run passes lane_draws there."""
    block = 2**33  # an RNG block of 10^6 records' uniforms, 2 copies
    large = estimate_bytes("bootstrap", 10**5, 1, 4, rank_bins=548)
    assert estimate_bytes("bootstrap", 10**5, 1, 4, rank_bins=548, lane_draws=block) == large
    assert estimate_bytes("bootstrap", 10**5, 1, 4, lane_draws=block) == \
        estimate_bytes("bootstrap", 10**5, 1, 4) + 4 * block
