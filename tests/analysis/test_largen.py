"""Large-n mode (issue 19 item 2): O(units × bins) state, exact median/5 %/95 % ranks from two
passes over the same replicates, rank bands, bit-identical across threads, chunks and block sizes."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from engine.analysis.design import ParameterMap, n_columns, replicate_uniforms
from engine.analysis.largen import LARGE_N_ABOVE, BandState, WindowState, bands
from engine.analysis.memory import counts_bytes, estimate_bytes
from engine.analysis.montecarlo import run_design
from engine.analysis.spec import load_spec, resolve_factors
from engine.analysis.uncertainty import uncertainty, with_default_factors
from engine.errors import DataError, SchemaError
from engine.kernels import bands as band_kernels
from engine.kernels import reference
from engine.schema import framework_from_dict
from tests.analysis.conftest import assert_quantiles_and_deciles_of_raw_ranks, city_data, city_framework

#: Columns both modes compute (same names, same values).
SHARED = ["unit", "nominal_score", "nominal_rank", "mean_rank", "median_rank", "q05_rank", "q95_rank", "rank_sd",
          "best_rank", "worst_rank", "p_top1", "p_top3", "p_top10", "nominal_tier", "p_same_tier", "p_missing",
          "score_mean", "score_sd", "rank_range_90"]


def _run(data, n=2048, **options):
    return uncertainty(framework_from_dict(city_framework()), data, replicates=n, seed=5, block_size=256,
                       **options)


def _raw_ranks(result, n):
    """The run's raw ranks (n, n_targets, n_units), replayed from its seed through the one path."""
    problem = result.problem
    spec = with_default_factors(load_spec(None, replicates=n, seed=5, block_size=256), problem.framework)
    factors = resolve_factors(spec, problem.framework)
    params = ParameterMap(factors, problem)(replicate_uniforms(5, 0, n, n_columns(factors)))
    return run_design(problem, params, 256, keep_ranks=True)[2]


@pytest.mark.parametrize("data_args", [{}, {"ties": True}, {"missing": 0.2}], ids=["plain", "ties", "missing"])
def test_large_n_mode_equals_the_exact_histograms_and_numpy_quantiles(data_args):
    """Forced into large-n mode with 3 coarse bins on 60 units, every statistic both modes have is
    equal to the units² histograms' (exactly, float for float), and median/q05/q95 equal
    numpy.quantile of the raw ranks (type 7); decile probabilities equal the raw ranks' shares."""
    data = city_data(n_units=60, **data_args)
    exact = _run(data)
    large = _run(data, large_n_above=0, rank_bins=3)
    assert large.manifest["large_n"]["passes"] == 2 and exact.manifest.get("large_n") is None
    assert_frame_equal(large.units.select(SHARED), exact.units.select(SHARED))
    raw = _raw_ranks(large, 2048)[:, 0]
    assert_quantiles_and_deciles_of_raw_ranks(large.units, raw, large.problem.units, 2048)  # pct_rank_median too
    accept = large.statistics.acceptability[large.problem.target_ids[0]]
    assert accept.select(pl.sum_horizontal(pl.col("^count_decile_.*$"))).to_series().sum() == np.count_nonzero(raw)


def test_large_n_results_are_bit_identical_across_threads_chunks_and_block_sizes():
    data = city_data(n_units=50)
    base = uncertainty(framework_from_dict(city_framework()), data, replicates=3000, seed=9, block_size=1024,
                       threads=1, large_n_above=0, rank_bins=4)
    for options in ({"threads": 2}, {"threads": 2, "chunk_blocks": 1}, {"block_size": 256, "threads": 2},
                    {"backend": "serial", "block_size": 2048}):
        options = {"block_size": 1024, **options}
        other = uncertainty(framework_from_dict(city_framework()), data, replicates=3000, seed=9, large_n_above=0,
                            rank_bins=4, **options)
        assert_frame_equal(other.units, base.units)
        target = base.problem.target_ids[0]
        assert_frame_equal(other.statistics.acceptability[target], base.statistics.acceptability[target])
        assert other.statistics.rank_shift_summary == base.statistics.rank_shift_summary


def test_large_n_results_do_not_depend_on_the_counting_batch(monkeypatch):
    """A lane scores SCORE_BATCH replicates at a time and counts its int32 ranks LANE_BYTES at a time:
    counting batches of 7 replicates filled 3 at a time (batches that straddle RNG blocks, a partial
    last one) give the same tables as the default batches."""
    from engine.analysis import largen

    data = city_data(n_units=50)

    def run():
        return uncertainty(framework_from_dict(city_framework()), data, replicates=1000, seed=9, block_size=256,
                           threads=2, large_n_above=0, rank_bins=4)

    base = run()
    monkeypatch.setattr(largen, "LANE_BYTES", 4 * 7 * 50 * len(base.problem.targets))
    monkeypatch.setattr(largen, "SCORE_BATCH", 3)
    other = run()
    assert_frame_equal(other.units, base.units)
    target = base.problem.target_ids[0]
    assert_frame_equal(other.statistics.acceptability[target], base.statistics.acceptability[target])
    assert other.statistics.rank_shift_summary == base.statistics.rank_shift_summary


def test_rank_counts_are_int32_below_two_to_the_31_replicates():
    """A count is at most the replicates a state holds: int32 below 2³¹ (half the memory), int64 at
    2³¹ or when the number is not given; an int64 chunk state adds into an int32 run state."""
    run = _run(city_data(n_units=30), n=256, large_n_above=0, rank_bins=3)
    problem, layout = run.problem, bands(run.problem, 3)
    for cls, name in ((BandState, "coarse"), (WindowState, "fine")):
        assert getattr(cls.empty(problem, layout, 2**31 - 1), name).dtype == np.int32
        assert getattr(cls.empty(problem, layout, 2**31), name).dtype == np.int64
        assert getattr(cls.empty(problem, layout), name).dtype == np.int64
    total, chunk = BandState.empty(problem, layout, 10), BandState.empty(problem, layout)
    chunk.coarse[...] = 3
    total.absorb(chunk)
    assert total.coarse.dtype == np.int32 and (total.coarse == 3).all()


def test_bands_put_edges_on_deciles_top_k_and_tiers():
    result = _run(city_data(n_units=47), n=256, large_n_above=0, rank_bins=2)
    layout = bands(result.problem, 2)
    edges = set(layout.starts.tolist())
    assert {(d * 47) // 10 + 1 for d in range(10)} <= edges and {2, 4, 11} <= edges
    bounds = result.problem.tier_bounds[0]
    assert set(bounds[:, 0].tolist()) <= edges
    assert layout.width == max(np.diff(np.append(layout.starts, 48)))


@pytest.mark.parametrize("rank_type", [np.int64, np.int32])
def test_count_kernels_equal_their_twins(rank_type):
    """int32 ranks and bins: run_chunk's counting batch and Bands.bin_of_rank; a rank² is summed in
    int64 (a rank of 10⁵ squares past int32)."""
    rng = np.random.default_rng(2)
    ranks = rng.integers(0, 31, size=(17, 2, 30)).astype(rank_type)  # 0 = missing
    nominal = rng.integers(0, 31, size=(2, 30)).astype(np.int64)
    bin_of_rank = (np.arange(30) // 5).astype(rank_type)  # 6 bins
    acc = (np.zeros((2, 30, 7), np.int64), np.zeros((2, 30, 2), np.int64), np.zeros((2, 30, 2), np.int64),
           np.zeros((2, 30), np.int64), np.zeros(2, np.int64))
    acc[2][..., 0] = 31
    band_kernels.count_bands(ranks, nominal, bin_of_rank, acc)
    for got, want in zip(acc, reference.count_bands(ranks, nominal, bin_of_rank), strict=True):
        np.testing.assert_array_equal(got, want)
    big = np.array([[[100_000]]], rank_type)  # one unit at rank 10⁵: Σ rank² = 10¹⁰
    sums = np.zeros((1, 1, 2), np.int64)
    band_kernels.count_bands(big, np.zeros((1, 1), np.int64), np.zeros(100_000, np.int64),  # no nominal: no shift
                             (np.zeros((1, 1, 2), np.int64), sums, np.array([[[100_001, 0]]]),
                              np.zeros((1, 1), np.int64), np.zeros(1, np.int64)))
    assert sums[0, 0, 1] == 10**10
    starts = rng.integers(1, 31, size=(2, 30, 3)).astype(np.int64)
    fine, above = np.zeros((2, 30, 3, 5), np.int64), np.full((2, 30, 3), 31, np.int64)
    band_kernels.count_windows(ranks, starts, 5, (fine, above))
    want_fine, want_above = reference.count_windows(ranks, starts, 5)
    np.testing.assert_array_equal(fine, want_fine)
    np.testing.assert_array_equal(above, want_above)


def test_mode_is_chosen_above_the_threshold_and_recorded():
    data = city_data(n_units=30)
    assert "large_n" not in _run(data, n=256).manifest
    manifest = _run(data, n=256, large_n_above=29).manifest
    assert manifest["large_n"]["above"] == 29 and manifest["large_n"]["units"] == 30
    assert LARGE_N_ABOVE == 5000


@pytest.mark.parametrize(("options", "error", "match"), [
    ({"large_n_above": -1}, SchemaError, r"large_n_above must be a whole number of units >= 0, got -1"),
    ({"rank_bins": 0}, SchemaError, r"rank_bins must be a whole number >= 1, got 0"),
    ({"large_n_above": 0, "resume": True}, DataError, r"cannot resume a large-n run \(30 units\): large-n mode "
                                                       r"stores no checkpoints yet"),
    ({"large_n_above": 0, "design": {"i1": np.ones(4)}}, DataError, r"explicit designs are not supported in "
                                                                       r"large-n mode"),
])
def test_bad_large_n_options_are_refused_before_any_replicate(options, error, match, tmp_path):
    if options.get("resume"):
        options = {**options, "out": tmp_path / "run"}
    with pytest.raises(error, match=match):
        _run(city_data(n_units=30), n=256, **options)


def test_memory_estimate_of_large_n_is_units_times_bins():
    """10^5 units: units² histograms need hundreds of GiB; large-n mode (√(3n) = 548 bins) a few GiB
    with two lanes, within the 4 GB target with one."""
    n = 100_000
    exact = estimate_bytes("uncertainty", n, 1, 2)
    large = estimate_bytes("uncertainty", n, 1, 2, rank_bins=548)
    assert exact > 6 * counts_bytes(n) > 400 * 2**30
    assert large < 6 * 2**30 and estimate_bytes("uncertainty", n, 1, 1, rank_bins=548) < 4 * 2**30


@pytest.mark.parametrize("rank_type", [np.int64, np.int32])
def test_rank_batch_equals_its_twin_on_edge_rows(rank_type):
    """The bucket-sort ranks and moments of rank_batch against the twin: ties, -0.0 and 0.0, NaN and
    ±inf (rank 0, no moments), a constant row, one unit, and crowds of near-equal scores that fill a
    bucket past the insertion limit (NumPy's sort there); into int64 or int32 ranks (run_chunk's)."""
    rng = np.random.default_rng(8)
    n = 300
    rows = [rng.random(n), np.round(rng.random(n), 1), np.full(n, 0.25), rng.lognormal(size=n) ** 4]
    crowd = rng.random(n)
    crowd[:200] = 0.5 + rng.random(200) * 1e-12  # near-equal scores: one bucket of 200
    edges = rng.random(n)
    edges[[0, 7, 99]] = np.nan
    edges[[3, 4]] = np.inf
    edges[5] = -np.inf
    edges[[10, 11]] = (0.0, -0.0)
    rows += [crowd, edges, np.full(n, np.nan)]
    scores = np.stack(rows)[:, None, :].repeat(2, axis=1)
    scores[:, 1] = -scores[:, 1]  # second target: the mirror image
    moments, ranks = np.zeros((2, n, 2)), np.zeros(scores.shape, rank_type)
    band_kernels.rank_batch(scores, moments, ranks)
    want_moments, want_ranks = reference.rank_batch(scores)
    np.testing.assert_array_equal(ranks, want_ranks)
    np.testing.assert_array_equal(moments, want_moments)
    one = np.array([[[3.0]]])
    band_kernels.rank_batch(one, np.zeros((1, 1, 2)), out := np.zeros((1, 1, 1), np.int64))
    assert out[0, 0, 0] == 1


#: Scores that stress the two-level bucket sort: any float (subnormals, ±1e308), missing values,
#: signed zeros, repeats (ties) and crowds of near-equal scores (one bucket past the insertion limit).
SCORES = st.one_of(st.floats(), st.sampled_from([0.0, -0.0, 0.25, 1.0, np.nan, np.inf, -np.inf]),
                   st.floats(0.5, 0.5 + 1e-9))


@given(st.lists(SCORES, max_size=400), st.sampled_from([np.int64, np.int32]))
def test_rank_batch_equals_its_twin_hypothesis(values, rank_type):
    scores = np.array(values, np.float64).reshape(1, 1, -1)
    moments, ranks = np.zeros((1, len(values), 2)), np.zeros(scores.shape, rank_type)
    with np.errstate(over="ignore"):  # s² of a huge score is inf in both
        band_kernels.rank_batch(scores, moments, ranks)
        want_moments, want_ranks = reference.rank_batch(scores)
    np.testing.assert_array_equal(ranks, want_ranks)
    np.testing.assert_array_equal(moments, want_moments)


def test_a_dask_pass_is_cut_for_every_worker(monkeypatch):
    """10^4 replicates on Dask used to be one chunk of 65,536 replicates (blocks of 8,192): one worker
    did the whole pass. Now a pass has at least 16 chunks of at least one RNG block each, the work
    block lowered to one RNG block (results do not depend on it); in process nothing changes."""
    from engine.analysis import largen
    from engine.analysis.driver import BackendOptions
    from engine.analysis.problem import build_problem

    nominal = engine_score_city()
    spec = load_spec({"replicates": 10_000, "seed": 1})
    factors = resolve_factors(with_default_factors(spec, nominal.framework), nominal.framework)
    problem = build_problem(nominal, with_default_factors(spec, nominal.framework), factors)
    seen = []

    def drive(analysis, finish, backend, **options):
        dask = backend.backend == "dask"
        seen.append((analysis.block_size, analysis.chunk_blocks(options.get("chunk_blocks"), dask)))
        raise StopIteration

    monkeypatch.setattr(largen, "drive", drive)
    for backend, expected in ((BackendOptions("dask", client=object()), (1024, 1)),
                              (BackendOptions("threads"), (8192, 32))):
        with pytest.raises(StopIteration):
            largen.run_largen(problem, factors, 1, 10_000, 8192, backend)
        assert seen.pop() == expected
    with pytest.raises(StopIteration):
        largen.run_largen(problem, factors, 1, 10_000_000, 8192, BackendOptions("dask", client=object()))
    assert seen.pop() == (1024, 64)  # chunks of 65,536 replicates: 153 of them


def engine_score_city():
    import engine

    return engine.score(framework_from_dict(city_framework()), city_data(n_units=60))
