"""Bootstrap rank stability: an independent recomputation of the record-level bootstrap, nominal
reproduction, determinism across backends/threads/chunks/blocks (and a real Dask cluster),
statistics against raw ranks, the three modes, combined studies, every raise, shipped data, output.

Problems are small (the 31 provinces of regional-ai-2023, 4,311 records; a 10-unit miniature
framework) and runs short (≤ 4,096 replicates): the kernel is compiled once per session (cached).
"""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
import yaml
from scipy.stats import poisson

import engine
from engine.analysis.bootstrap import bootstrap, default_bootstrap_spec
from engine.analysis.bootstrap_spec import (
    BootstrapSpec,
    compile_records,
    load_bootstrap_spec,
    poisson_thresholds,
    resample_size,
    sampling_draws,
)
from engine.analysis.design import map_parameters, n_columns, replicate_uniforms
from engine.analysis.resampling import (
    DECOMPOSITION_SUMS,
    build_bootstrap_problem,
    evaluate,
    kernel_inputs,
    run_bootstrap_chunk,
)
from engine.errors import DataError, SchemaError
from engine.kernels import bootstrap as kernel
from engine.resources import shipped_datasets
from engine.schema import framework_from_dict
from tests.analysis.conftest import city_data, city_framework

FW = "regional-ai-2023"
RECORDS = "ai_firms_synthetic"
#: The eight firm-derived columns of the province table and how the shipped spec derives them.
DERIVED_COLUMNS = ("firm_count", "firm_mean_valuation_100m_yuan", "firm_mean_patents", "base_tech_firm_count",
                   "tech_enabling_relations", "financing_relations", "financing_amount_100m_yuan",
                   "investment_relations")


@pytest.fixture(scope="module")
def firms() -> pl.DataFrame:
    return pl.read_csv(shipped_datasets()[RECORDS])


@pytest.fixture(scope="module")
def shipped_spec() -> dict:
    return yaml.safe_load(default_bootstrap_spec(FW).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def records_run():
    """The reference records-mode run (2,048 replicates, two threads)."""
    return bootstrap(FW, records=RECORDS, replicates=2048, seed=5, block_size=1024, threads=2)


def _inputs(bp, seed: int, start: int, stop: int):
    """Perturbation parameters and sampling draws of replicates start .. stop − 1, as a run draws them."""
    factors = list(bp.factors)
    params = map_parameters(replicate_uniforms(seed, start, stop, n_columns(factors)), factors, bp.problem)
    draws = sampling_draws(seed, start, stop, bp.mode, n_records=bp.records.n_records if bp.records else 0,
                           n_units=bp.n_units, m_units=bp.m_units, n_noisy=len(bp.noise_index))
    return params, draws


def _raw_ranks(bp, seed: int, n: int) -> np.ndarray:
    """Ranks (n, n_targets, n_units) of replicates 0 .. n − 1 (0 = missing)."""
    params, draws = _inputs(bp, seed, 0, n)
    return evaluate(bp, params, draws, n, 1, keep_ranks=True)[5]


def _rank_columns(table: pl.DataFrame) -> list[str]:
    return [c for c in table.columns if not c.startswith(("score_", "cs_"))]


# ============================================================================ independent record-level check

def _poisson_weights(uniform: np.ndarray, rate: float) -> np.ndarray:
    """Poisson(rate) weights by inversion with SciPy's CDF: the smallest k with u/2³² < P(W ≤ k)."""
    cdf = poisson.cdf(np.arange(64), rate)
    return np.searchsorted(cdf, uniform.astype(np.float64) / 2.0**32, side="right")


def _weighted_province_table(firms: pl.DataFrame, weights: np.ndarray) -> pl.DataFrame:
    """The eight firm-derived indicators per province as the shipped spec derives them, each record
    counted ``weight`` times (a mean is Σ w·v / Σ w: missing when no record of the province is drawn)."""
    w = pl.col("w")
    return firms.with_columns(pl.Series("w", weights, pl.Float64)).group_by("province").agg(
        w.sum().alias("firm_count"),
        ((w * pl.col("valuation_100m_yuan")).sum() / w.sum()).alias("firm_mean_valuation_100m_yuan"),
        ((w * pl.col("patents")).sum() / w.sum()).alias("firm_mean_patents"),
        (w * pl.col("layer").is_in(["base", "technology"])).sum().alias("base_tech_firm_count"),
        (w * pl.col("tech_cooperation")).sum().alias("tech_enabling_relations"),
        (w * pl.col("financing_events")).sum().alias("financing_relations"),
        (w * pl.col("financing_amount_100m_yuan")).sum().alias("financing_amount_100m_yuan"),
        (w * pl.col("investment_relations")).sum().alias("investment_relations"),
    ).with_columns(pl.col(c).fill_nan(None) for c in DERIVED_COLUMNS)


def test_record_bootstrap_equals_an_independent_recomputation(records_run, firms):
    """For a few replicates: the same uint32 uniforms → Poisson weights by SciPy inversion → the
    weighted province table (Polars) → the ordinary pipeline (engine.score) → ranks equal to the
    kernel's, unit by unit.  No tolerance was needed: the inversion agrees except when u falls
    within 2⁻³² of a CDF value (probability ~13·2⁻³² per record), and no two provinces tie.  At
    least one replicate draws no firm of a one-firm province (its means are missing)."""
    bp = records_run.problem
    seed, n = 5, 6
    params, draws = _inputs(bp, seed, 0, n)
    kernel_ranks = evaluate(bp, params, draws, n, 1, keep_ranks=True)[5][:, 0]
    table = pl.read_csv(shipped_datasets()["regional_ai_provinces_synthetic"])
    units = [str(u) for u in bp.problem.units]
    any_missing = False
    for r in range(n):
        weights = _poisson_weights(draws.record_uniform[r], 1.0)
        derived = _weighted_province_table(firms, weights)
        any_missing |= derived["firm_mean_patents"].null_count() > 0
        replicate = table.drop(DERIVED_COLUMNS).join(derived, on="province", how="left", maintain_order="left")
        result = engine.score(FW, replicate)
        ranks = dict(zip(result.table["province"].to_list(), result.table["regional_ai_rank"].to_list()))
        np.testing.assert_array_equal(kernel_ranks[r], [ranks[u] or 0 for u in units], err_msg=f"replicate {r}")
    assert any_missing


def test_poisson_thresholds_match_scipy():
    """thresholds[k] = ⌊P(W ≤ k)·2³²⌋ while below 2³² (rates 1, 0.3 and 4)."""
    for rate in (1.0, 0.3, 4.0):
        t = poisson_thresholds(rate)
        k = np.arange(len(t))
        np.testing.assert_array_equal(t, np.floor(poisson.cdf(k, rate) * 2.0**32).astype(np.int64))
        assert np.all(np.diff(t) > 0) and t[-1] < 2**32
        assert poisson.sf(len(t) - 1, rate) < 2.0**-31  # the tail cut off is negligible


def test_poisson_weights_have_mean_and_variance_one():
    """The kernel's inversion (#thresholds ≤ u) of one RNG block of draws (1,024 × 2,000 weights):
    mean and variance 1 within 5 standard errors, P(W = 0) = e⁻¹, and equal to SciPy's ppf."""
    u = sampling_draws(17, 0, 1024, "records", n_records=2000, n_units=1).record_uniform.ravel()
    t = poisson_thresholds(1.0)
    w = np.searchsorted(t, u.astype(np.int64), side="right")
    n = w.size
    assert abs(w.mean() - 1.0) < 5 * math.sqrt(1.0 / n)
    assert abs(w.var() - 1.0) < 5 * math.sqrt(3.0 / n)  # Var(W²) of Poisson(1) = 3 + ... ≈ μ4 − σ⁴ = 3
    assert abs((w == 0).mean() - math.exp(-1.0)) < 5 * math.sqrt(0.25 / n)
    sample = u[:100_000]
    np.testing.assert_array_equal(w[:100_000], _poisson_weights(sample, 1.0))
    np.testing.assert_array_equal(w[:100_000], poisson.ppf(sample / 2.0**32, 1.0).astype(np.int64))


def test_sampling_draws_depend_only_on_seed_and_replicate():
    """Replicates 1,000..1,100 drawn alone equal the same rows of a 0..2,048 draw (records, units,
    noise), and another seed draws differently."""
    for mode, kw in (("records", {"n_records": 50}), ("units", {"m_units": 7}), ("noise", {"n_noisy": 3})):
        whole = sampling_draws(3, 0, 2048, mode, n_units=9, **kw)
        part = sampling_draws(3, 1000, 1100, mode, n_units=9, **kw)
        other = sampling_draws(4, 1000, 1100, mode, n_units=9, **kw)
        for name in ("record_uniform", "count", "noise_eps"):
            np.testing.assert_array_equal(getattr(part, name), getattr(whole, name)[1000:1100])
        assert any(getattr(part, name).size and not np.array_equal(getattr(part, name), getattr(other, name))
                   for name in ("record_uniform", "count", "noise_eps"))


# ============================================================================ nominal reproduction

def test_all_weights_one_reproduce_the_nominal_ranks(records_run):
    """Uniform 2³¹ lies in [thresholds[0], thresholds[1]) of Poisson(1): every record weighs 1, and
    every replicate ranks as the nominal run, which is the ordinary pipeline's ranking."""
    bp = records_run.problem
    params, draws = _inputs(bp, 5, 0, 4)
    draws.record_uniform[:] = np.uint32(2**31)
    ranks = evaluate(bp, params, draws, 4, 1, keep_ranks=True)[5]
    nominal = engine.score(FW)
    expected = dict(zip(nominal.table["province"].to_list(), nominal.table["regional_ai_rank"].to_list()))
    np.testing.assert_array_equal(bp.problem.nominal_rank[0], [expected[u] for u in bp.problem.units])
    np.testing.assert_array_equal(ranks, np.broadcast_to(bp.problem.nominal_rank, ranks.shape))


def test_unit_counts_all_one_reproduce_the_nominal_ranks():
    """Mode units on ASEM (with its outlier treatment) with every multiplicity 1 = the nominal ranks."""
    result = bootstrap("asem", spec={"mode": "units"}, replicates=64, seed=1, block_size=64)
    bp = result.problem
    params, draws = _inputs(bp, 1, 0, 8)
    ones = type(draws)(draws.record_uniform, np.ones_like(draws.count), draws.noise_eps)
    ranks = evaluate(bp, params, ones, 8, 1, keep_ranks=True)[5]
    np.testing.assert_array_equal(ranks, np.broadcast_to(bp.problem.nominal_rank, ranks.shape))


# ============================================================================ determinism

@pytest.mark.parametrize("options", [
    {"backend": "serial"},
    {"threads": 1},
    {"threads": 2, "chunk_blocks": 1},
    {"threads": 2, "chunk_blocks": 4},
    {"block_size": 2048},
], ids=["serial", "threads1", "chunk1", "chunk4", "block2048"])
def test_records_run_is_bit_identical_for_any_backend_threads_chunks(records_run, options):
    run = bootstrap(FW, records=RECORDS, replicates=2048, seed=5, **{"block_size": 1024, **options})
    assert run.units.equals(records_run.units)
    target = records_run.target_ids[0]
    for table in ("acceptability", "rank_shift"):
        assert getattr(run.statistics, table)[target].equals(getattr(records_run.statistics, table)[target])


@pytest.mark.parametrize("options", [{"block_size": 512}, {"block_size": 256}, {"block_size": 256, "chunk_blocks": 3}])
def test_smaller_blocks_give_identical_results(records_run, options):
    """block_size 512 or 256: the same replicates, and the score moments still summed per RNG
    block of 1,024, so every table is identical, score_mean/score_sd/score_se included (issue
    21.8: they differed in the last bits)."""
    run = bootstrap(FW, records=RECORDS, replicates=2048, seed=5, **options)
    ref = records_run.units
    for column in ref.columns:
        np.testing.assert_array_equal(run.units[column].to_numpy(), ref[column].to_numpy(), err_msg=column)
    target = records_run.target_ids[0]
    for table in ("acceptability", "rank_shift"):
        assert getattr(run.statistics, table)[target].equals(getattr(records_run.statistics, table)[target])


def test_different_seeds_differ_and_the_seed_is_recorded(records_run):
    other = bootstrap(FW, records=RECORDS, replicates=2048, seed=6)
    assert not other.units.equals(records_run.units)
    assert records_run.manifest["seed"] == 5 and other.manifest["seed"] == 6
    fresh = bootstrap(FW, records=RECORDS, replicates=16, block_size=16)
    assert isinstance(fresh.manifest["seed"], int)
    again = bootstrap(FW, records=RECORDS, replicates=16, block_size=16, seed=fresh.manifest["seed"])
    assert again.units.select(_rank_columns(again.units)).equals(fresh.units.select(_rank_columns(fresh.units)))


def test_chunks_merge_to_the_whole_run(records_run):
    """run_bootstrap_chunk over blocks [0, 1) and [1, 2) merges to the histograms of [0, 2)."""
    bp = records_run.problem
    whole = run_bootstrap_chunk(bp, 5, 0, 2, 1024, n_lanes=2)
    parts = run_bootstrap_chunk(bp, 5, 0, 1, 1024).merge(run_bootstrap_chunk(bp, 5, 1, 2, 1024))
    np.testing.assert_array_equal(parts.hist, whole.hist)
    np.testing.assert_array_equal(parts.shift_hist, whole.shift_hist)
    assert parts.moments == whole.moments


@pytest.mark.dask
def test_dask_cluster_equals_in_process(dask_client, records_run):
    run = bootstrap(FW, records=RECORDS, replicates=2048, seed=5, block_size=1024, backend="dask",
                    client=dask_client, chunk_blocks=1)
    assert run.manifest["workers"] == 2 and run.manifest["backend"] == "dask"
    assert run.units.equals(records_run.units)
    target = records_run.target_ids[0]
    assert run.statistics.acceptability[target].equals(records_run.statistics.acceptability[target])
    assert run.statistics.rank_shift[target].equals(records_run.statistics.rank_shift[target])


@pytest.mark.dask
def test_dask_combined_study_equals_in_process(dask_client):
    """The variance decomposition's integer sums travel through the workers unchanged."""
    spec = {"mode": "units", "perturb": {"weights": [{"depth": 1, "noise": 0.25}]}}
    local = bootstrap("asem", spec=spec, replicates=2048, seed=9, threads=2)
    run = bootstrap("asem", spec=spec, replicates=2048, seed=9, backend="dask", client=dask_client, chunk_blocks=1)
    assert run.units.equals(local.units)
    assert run.shares["Index"].equals(local.shares["Index"])


@pytest.mark.dask
def test_dask_large_n_passes_are_cut_for_every_worker(dask_client, monkeypatch):
    """A large-n bootstrap without chunk_blocks gave its passes the in-process bootstrap's chunks of
    16,384 replicates (64 blocks of 256): 4,096 replicates were one chunk per pass, on one worker.  Now
    each pass cuts itself as the Monte Carlo's do (on Dask at least 16 chunks of at least one RNG
    block): 4 chunks of 4 blocks per pass."""
    import engine.backends as backends

    real, cuts = backends.run_dask, []

    def spy(client, chunk_fn, args, token, ranges, on_chunk, **options):
        cuts.append(list(ranges))
        return real(client, chunk_fn, args, token, ranges, on_chunk, **options)

    monkeypatch.setattr(backends, "run_dask", spy)
    fw, data = framework_from_dict(city_framework()), city_data(n_units=30)
    options = {"spec": {"mode": "units"}, "replicates": 4096, "seed": 5, "block_size": 256, "large_n_above": 0,
               "rank_bins": 3}
    run = bootstrap(fw, data, backend="dask", client=dask_client, **options)
    assert cuts == [[(0, 4), (4, 8), (8, 12), (12, 16)]] * 2  # pass 1, pass 2 (was [[(0, 16)]] * 2)
    assert run.units.equals(bootstrap(fw, data, threads=2, **options).units)


# ============================================================================ statistics

def test_statistics_equal_numpy_on_the_raw_ranks(records_run):
    """median/q05/q95 = numpy.quantile (linear), mean and sd, best/worst, P(top k) and P(missing)
    of the raw ranks of the same 2,048 replicates (kept by a second kernel call)."""
    bp = records_run.problem
    units = records_run.statistics.units[records_run.target_ids[0]]  # sorted by nominal rank
    row = {str(u): i for i, u in enumerate(bp.problem.units)}
    order = [row[str(u)] for u in units["unit"]]
    ranks = _raw_ranks(bp, 5, 2048)[:, 0][:, order]
    assert (ranks > 0).all()
    np.testing.assert_array_equal(units["median_rank"], np.quantile(ranks, 0.5, axis=0))
    np.testing.assert_array_equal(units["q05_rank"], np.quantile(ranks, 0.05, axis=0))
    np.testing.assert_array_equal(units["q95_rank"], np.quantile(ranks, 0.95, axis=0))
    np.testing.assert_allclose(units["mean_rank"], ranks.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(units["rank_sd"], ranks.std(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(units["best_rank"], ranks.min(axis=0))
    np.testing.assert_array_equal(units["worst_rank"], ranks.max(axis=0))
    for k in (1, 3, 10):
        np.testing.assert_allclose(units[f"p_top{k}"], (ranks <= k).mean(axis=0), rtol=1e-15)
        assert units[f"p_top{k}"].is_between(0.0, 1.0).all()
    assert units["p_same_tier"].is_between(0.0, 1.0).all()
    assert (units["q05_rank"] <= units["median_rank"]).all() and (units["median_rank"] <= units["q95_rank"]).all()
    np.testing.assert_array_equal(units["nominal_rank"], bp.problem.nominal_rank[0][order])


def test_m_out_of_n_records_widen_the_rank_intervals(records_run, shipped_spec):
    """records.m = n^0.7 (351 of 4,311 records, weights ×12.3) spreads the ranks more than n-out-of-n."""
    spec = {**shipped_spec, "records": {**shipped_spec["records"], "m": "n^0.7"}}
    run = bootstrap(FW, spec=spec, records=RECORDS, replicates=2048, seed=5)
    assert run.problem.records.rate == pytest.approx(round(4311**0.7) / 4311)
    assert run.manifest["records"]["poisson_rate"] == run.problem.records.rate
    wide, narrow = run.units, records_run.units
    assert wide["rank_sd"].mean() > 1.2 * narrow["rank_sd"].mean()
    assert (wide["q95_rank"] - wide["q05_rank"]).mean() > (narrow["q95_rank"] - narrow["q05_rank"]).mean()


# ============================================================================ mode units

def test_units_mode_draws_m_units_and_ranks_every_unit():
    """units.m = n^0.7 → round(31^0.7) = 11 drawn (with repetition) per replicate; every original
    province is ranked in every replicate (no missing data in this framework)."""
    run = bootstrap(FW, spec={"mode": "units", "units": {"m": "n^0.7"}}, replicates=1024, seed=2)
    bp = run.problem
    assert bp.m_units == round(31**0.7) == 11 == run.manifest["units_drawn"]
    draws = _inputs(bp, 2, 0, 1024)[1]
    np.testing.assert_array_equal(draws.count.sum(axis=1), 11)
    assert (draws.count >= 0).all() and np.array_equal(draws.count, np.round(draws.count))
    ranks = _raw_ranks(bp, 2, 1024)[:, 0]
    assert (ranks > 0).all()
    assert run.manifest["missing_ranks"][run.target_ids[0]] == 0
    assert run.units["p_missing"].max() == 0.0
    assert run.confidence is None and not any(c.startswith("cs_") for c in run.units.columns)


def test_resample_size_rules():
    assert resample_size(None, 31, "units") == 31
    assert resample_size(7, 31, "units") == 7
    assert resample_size("n^0.7", 31, "units") == 11
    assert resample_size("n^1", 31, "units") == 31
    assert resample_size("n^0", 31, "units") == 2  # at least 2
    assert resample_size("n^0.5", 4311, "records") == 66


# ============================================================================ mode noise

def test_negligible_noise_reproduces_the_nominal_ranks():
    run = bootstrap(FW, spec={"mode": "noise", "noise": {"default": {"relative": 1e-12}}}, replicates=256, seed=3,
                    block_size=256)
    units = run.units
    for column in ("median_rank", "q05_rank", "q95_rank", "best_rank", "worst_rank"):
        np.testing.assert_array_equal(units[column], units["nominal_rank"].cast(pl.Float64), err_msg=column)
    assert run.manifest["rank_shift"][run.target_ids[0]]["mean"] == 0.0
    assert len(run.manifest["noisy_indicators"]) == 24


def test_noise_is_truncated_at_zero_for_non_negative_indicators():
    """Floors: 0 for indicators whose values are all ≥ 0 (truncate default), −∞ with truncate
    false or when an indicator has a negative value; a huge negative ε lands exactly on the floor."""
    fw = framework_from_dict(city_framework())
    data = city_data(n_units=12).with_columns((pl.col("x5") - 1.0).alias("x5"))  # x5 takes both signs
    spec = {"mode": "noise", "noise": {"default": {"relative": 0.5}}}
    bp = bootstrap(fw, data, spec=spec, replicates=16, seed=1, block_size=16).problem
    np.testing.assert_array_equal(bp.noise_floor, [0.0, 0.0, 0.0, 0.0, 0.0, -np.inf])
    untruncated = bootstrap(fw, data, spec={**spec, "noise": {**spec["noise"], "truncate": False}}, replicates=16,
                            seed=1, block_size=16).problem
    np.testing.assert_array_equal(untruncated.noise_floor, np.full(6, -np.inf))
    n_units, n_noisy = bp.noise_sd.shape
    eps = np.full((n_units, n_noisy), -100.0)
    x = np.empty_like(bp.base)
    empty = np.zeros(0, np.int64)
    kernel.replicate_values(bp.base, np.ones((n_units, 0)), empty, np.zeros((0, 1)), np.zeros(0, np.uint32), empty,
                            1.0, empty, empty, empty, bp.noise_index, bp.noise_sd, bp.noise_floor, eps,
                            np.zeros((n_units, 1)), x)
    np.testing.assert_array_equal(x[:, :5], 0.0)
    np.testing.assert_array_equal(x[:, 5], bp.base[:, 5] - 100.0 * bp.noise_sd[:, 5])
    # noise sd = sqrt((relative·|v|)² + absolute²)
    np.testing.assert_allclose(bp.noise_sd, 0.5 * np.abs(bp.base), rtol=1e-15)


def test_negligible_noise_reproduces_the_nominal_ranks_with_missing_values():
    fw = framework_from_dict(city_framework())
    data = city_data(n_units=12, missing=0.15, seed=3)
    run = bootstrap(fw, data, spec={"mode": "noise", "noise": {"default": {"relative": 1e-12}}}, replicates=64,
                    seed=1, block_size=64)
    np.testing.assert_array_equal(run.units["median_rank"], run.units["nominal_rank"].cast(pl.Float64))


# ============================================================================ combined studies

COMBINED = {"perturb": {"weights": [{"depth": 1, "noise": 0.25}]}}


@pytest.fixture(scope="module")
def combined_spec(shipped_spec):
    return {**shipped_spec, **COMBINED}


def test_combined_study_has_finite_variance_shares(combined_spec):
    run = bootstrap(FW, spec=combined_spec, records=RECORDS, replicates=2048, seed=4)
    share_columns = ("rank_variance", "share_perturbation", "share_sampling", "share_interaction",
                     "total_perturbation", "total_sampling")
    assert all(c in run.units.columns for c in share_columns)
    overall = run.shares[run.target_ids[0]].filter(pl.col("unit") == "(all units)")
    for column in share_columns:
        assert math.isfinite(overall[column][0]), column
    assert run.manifest["evaluations"] == 2 * 2048
    assert run.confidence is None  # confidence sets only without perturbations
    assert set(run.manifest["variance_shares"][run.target_ids[0]]) == set(share_columns)


def test_inert_perturbation_leaves_the_variance_to_sampling(combined_spec):
    """Weight noise 1e-9 moves no rank: the perturbation's first- and total-order shares are 0
    exactly (C_P has the ranks of A), the sampling share ≈ 1 (Saltelli's estimator, 4,096 pairs)."""
    spec = {**combined_spec, "perturb": {"weights": [{"depth": 1, "noise": 1e-9}]}}
    run = bootstrap(FW, spec=spec, records=RECORDS, replicates=8192, seed=4)
    overall = run.shares[run.target_ids[0]].filter(pl.col("unit") == "(all units)").row(0, named=True)
    assert overall["share_perturbation"] == 0.0 and overall["total_perturbation"] == 0.0
    assert overall["share_sampling"] == pytest.approx(1.0, abs=0.05)
    assert overall["total_sampling"] == pytest.approx(1.0, abs=0.05)


def test_decomposition_does_not_change_the_rank_statistics(combined_spec):
    """The histograms use only the main replicates: decompose true/false give equal unit tables."""
    on = bootstrap(FW, spec=combined_spec, records=RECORDS, replicates=2048, seed=4)
    off = bootstrap(FW, spec={**combined_spec, "decompose": False}, records=RECORDS, replicates=2048, seed=4)
    target = on.target_ids[0]
    assert on.statistics.units[target].equals(off.statistics.units[target])
    assert not off.shares and off.manifest["variance_shares"] == {}
    assert on.shares and off.manifest["evaluations"] == 2048


def test_decomposition_sums_are_integers_of_the_pairs(combined_spec):
    run = bootstrap(FW, spec=combined_spec, records=RECORDS, replicates=1024, seed=4, block_size=1024)
    state = run_bootstrap_chunk(run.problem, 4, 0, 1, 1024)
    sums = state.extra["decomposition"]
    assert sums.dtype == np.int64 and sums.shape == (1, 31, len(DECOMPOSITION_SUMS))
    np.testing.assert_array_equal(sums[..., 0], 512)  # n: every pair counts (no missing ranks)


@pytest.mark.parametrize("replicates", [1, 1025])
def test_combined_study_with_an_odd_tail(replicates):
    run = bootstrap("asem", spec={"mode": "units", **COMBINED}, replicates=replicates, seed=2, threads=1)
    assert run.manifest["replicates"] == replicates


# ============================================================================ errors

def _spec_error(doc, match, exc=SchemaError, **overrides):
    with pytest.raises(exc, match=match):
        load_bootstrap_spec(doc, **overrides)


RECORD_RULES = {"indicators": {"firm_count": {"stat": "count"}}}


def test_spec_errors(tmp_path):
    _spec_error(tmp_path / "absent.yaml", r"bootstrap specification not found.*Fix: check the path")
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: [records\n", encoding="utf-8")
    _spec_error(bad, r"not valid YAML/JSON")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{mode: 1", encoding="utf-8")
    _spec_error(bad_json, r"not valid YAML/JSON")
    _spec_error({"mode": "bogus"}, r"invalid bootstrap specification at mode: 'bogus' is not one of")
    _spec_error({"mode": "units", "replicate": 3}, r"at \(top level\): Additional properties")
    _spec_error({"mode": "units", "units": {"m": 1}}, r"invalid bootstrap specification at units/m")
    _spec_error({"mode": "units", "units": {"m": "n^2"}}, r"invalid bootstrap specification at units/m")
    _spec_error({"mode": "records", "records": {"indicators": {"a": {"stat": "median"}}}},
                r"at records/indicators/a/stat")
    _spec_error({"mode": "units", "seed": -1}, r"at seed")
    _spec_error({}, r"gives no mode.*Fix: set mode: records, units or noise")
    _spec_error({"replicates": 5}, r"gives no mode")
    _spec_error({"mode": "records"}, r"mode records needs a `records` section")
    _spec_error({"mode": "units"}, r"mode records needs a `records` section", mode="records")
    _spec_error({"mode": "noise"}, r"mode noise needs a `noise` section")
    _spec_error({"mode": "records", "records": {"indicators": {"a": {"stat": "sum"}}}},
                r"records derivation of 'a' \(sum\) needs a `column`")
    _spec_error({"mode": "records", "records": {"indicators": {"a": {"stat": "mean"}}}},
                r"records derivation of 'a' \(mean\) needs a `column`")
    _spec_error({"mode": "records", "records": {"indicators": {"a": {"stat": "count", "column": "x"}}}},
                r"a count takes no `column`.*Fix: filter the records with `where")
    _spec_error({"mode": "units", "perturb": {"weights": [{"depth": 1, "noise": 0.1}], "treatment": True}},
                r"cannot switch the treatment")
    _spec_error({"mode": "units", "perturb": {"weights": [{"depth": 1, "noise": 0.1}], "targets": ["Index"]}},
                r"perturb takes weights, normalisation, aggregation and exclusion, not \['targets'\]")
    _spec_error({"mode": "units", "block_size": 1000}, r"block_size 1000 must be a multiple or a divisor of 1024")
    _spec_error({"mode": "units"}, r"block_size 3 must be", block_size=3)
    _spec_error({"mode": "units", "block_size": 1, **COMBINED}, r"pairs replicates: block_size must be at least 2")
    assert load_bootstrap_spec({"mode": "units", "block_size": 1, **COMBINED, "decompose": False}).block_size == 1
    assert load_bootstrap_spec({"mode": "units", "block_size": 4096}).block_size == 4096


def test_overrides_replace_the_file_values():
    spec = load_bootstrap_spec(default_bootstrap_spec(FW), mode="units", replicates=7, seed=3, block_size=None)
    assert (spec.mode, spec.replicates, spec.seed, spec.block_size) == ("units", 7, 3, 1024)
    assert load_bootstrap_spec(spec).document == spec.document


@pytest.fixture(scope="module")
def nominal_problem():
    """(nominal result, problem units) of regional-ai-2023 for compile_records."""
    from engine.analysis.problem import build_problem
    from engine.analysis.spec import resolve_factors

    nominal = engine.score(FW)
    uspec = load_bootstrap_spec({"mode": "units"}).uncertainty_spec()
    return nominal, build_problem(nominal, uspec, resolve_factors(uspec, nominal.framework)).units


def _compile(records, rules, nominal_problem, **kw):
    nominal, units = nominal_problem
    return compile_records(records, rules, nominal, units, "province", **kw)


def test_records_errors(firms, shipped_spec, nominal_problem):
    rules = shipped_spec["records"]
    with pytest.raises(SchemaError,
                       match=r"node 'nope': records derivation names an indicator the framework does not have"):
        _compile(firms, {"indicators": {"nope": {"stat": "count"}}}, nominal_problem)
    with pytest.raises(DataError, match=r"records have no unit column 'region'.*Fix: set records.unit"):
        _compile(firms, {**rules, "unit": "region"}, nominal_problem)
    with pytest.raises(DataError, match=r"the records table is empty"):
        _compile(firms.head(0), rules, nominal_problem)
    with pytest.raises(DataError, match=r"2 record\(s\) have no unit, e.g. rows 0, 5"):
        _compile(firms.with_columns(pl.when(pl.int_range(pl.len()).is_in([0, 5])).then(None)
                                    .otherwise(pl.col("province")).alias("province")), rules, nominal_problem)
    with pytest.raises(DataError, match=r"records name 1 unit\(s\) that are not in the data: 'Atlantis'"):
        _compile(firms.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("Atlantis"))
                                    .otherwise(pl.col("province")).alias("province")), rules, nominal_problem)
    with pytest.raises(DataError, match=r"uses column 'valuation', which the records lack"):
        _compile(firms, {"indicators": {"firm_mean_valuation": {"stat": "mean", "column": "valuation"}}},
                 nominal_problem)
    with pytest.raises(DataError, match=r"filters on column 'tier', which the records lack"):
        _compile(firms, {"indicators": {"base_tech_firms": {"stat": "count", "where": {"column": "tier",
                                                                                        "in": ["a"]}}}},
                 nominal_problem)
    with pytest.raises(DataError, match=r"records column 'layer' \(String\) is not numeric"):
        _compile(firms, {"indicators": {"tech_enabling": {"stat": "sum", "column": "layer"}}}, nominal_problem)
    broken = firms.with_columns(pl.when(pl.int_range(pl.len()).is_in([2, 9])).then(float("nan"))
                                .otherwise(pl.col("valuation_100m_yuan")).alias("valuation_100m_yuan"))
    with pytest.raises(DataError, match=r"'valuation_100m_yuan' has 2 missing or non-finite value\(s\), e.g. in "
                                        r"rows 2, 9"):
        _compile(broken, rules, nominal_problem)
    nulls = firms.with_columns(pl.when(pl.int_range(pl.len()) == 4).then(None).otherwise(pl.col("patents"))
                               .alias("patents"))
    with pytest.raises(DataError, match=r"'patents' has 1 missing"):
        _compile(nulls, rules, nominal_problem)
    with pytest.raises(DataError, match=r"indicator 'firm_count' of unit '北京市' is \S*1252\.0\)? in the "
                                        r"unit table but \S*1251\.0\)? from the records \(7 mismatch"):
        _compile(firms.filter(pl.col("firm_id") != "AI0001"), rules, nominal_problem)
    with pytest.raises(DataError, match=r"indicator 'tech_enabling' .*Fix: the unit table must be the records "
                                        r"aggregated"):
        _compile(firms, {"indicators": {"tech_enabling": {"stat": "sum", "column": "investment_relations"}}},
                 nominal_problem)
    design = _compile(firms.filter(pl.col("firm_id") != "AI0001"), rules, nominal_problem, check=False)
    assert design.n_records == firms.height - 1


def test_records_error_for_a_treated_indicator():
    fw = framework_from_dict(city_framework(defaults={"treatment": {"method": "skew_kurtosis"}}))
    records = pl.DataFrame({"unit": [f"c{i:03d}" for i in range(40)]})
    with pytest.raises(SchemaError, match=r"record-derived indicator 'x0' has outlier treatment 'skew_kurtosis'.*"
                                          r"Fix: set treatment: \{method: none\}"):
        bootstrap(fw, city_data(), spec={"mode": "records", "records": {"indicators": {"x0": {"stat": "count"}}}},
                  records=records, replicates=16, block_size=16)


def test_build_errors():
    mini_fw, mini = framework_from_dict(city_framework()), city_data(n_units=12)
    with pytest.raises(SchemaError, match=r"noise names unknown indicator\(s\) \['x9'\]"):
        bootstrap(mini_fw, mini, spec={"mode": "noise", "noise": {"indicators": {"x9": {"relative": 0.1}}}},
                  replicates=16, block_size=16)
    with pytest.raises(SchemaError, match=r"the noise section gives no indicator a positive error"):
        bootstrap(mini_fw, mini, spec={"mode": "noise", "noise": {"default": {"relative": 0.0}}},
                  replicates=16, block_size=16)
    with pytest.raises(SchemaError, match=r"distance_to_target needs per-indicator parameters"):
        bootstrap(mini_fw, mini, spec={"mode": "units", "perturb": {"normalisation": {
            "choices": ["minmax", {"method": "distance_to_target", "target": 1}]}}}, replicates=16, block_size=16)
    run = bootstrap(mini_fw, mini, spec={"mode": "units"}, replicates=16, block_size=16)
    problem = run.problem.problem
    with pytest.raises(SchemaError, match=r"units.m = 1: at least 2 units must be drawn"):
        build_bootstrap_problem(problem, BootstrapSpec(mode="units", units={"m": 1}), [], None)
    with pytest.raises(SchemaError, match=r"mode records needs the record-level table"):
        build_bootstrap_problem(problem, BootstrapSpec(mode="records"), [], None)


def test_entry_point_errors(tmp_path):
    with pytest.raises(SchemaError, match=r"unknown backend 'gpu'.*Fix: use serial, threads or dask"):
        bootstrap(FW, records=RECORDS, replicates=16, block_size=16, backend="gpu")
    with pytest.raises(SchemaError, match=r"mode records needs the record-level table.*--records"):
        bootstrap(FW, replicates=16, block_size=16)
    with pytest.raises(DataError, match=r"no records file or shipped dataset named 'nowhere.csv'.*ai_firms_synthetic"):
        bootstrap(FW, records="nowhere.csv", replicates=16, block_size=16)
    with pytest.raises(SchemaError, match=r"gives no mode"):
        bootstrap("asem", replicates=16, block_size=16)  # no shipped bootstrap spec, no mode


# ============================================================================ shipped data and specs

def test_shipped_firm_city_table_is_the_generator_output():
    from tools.synthetic.firms import generate_ai_firms
    from tools.synthetic.provinces import firm_indicators

    expected = firm_indicators(generate_ai_firms(2024), "city")
    shipped = pl.read_csv(shipped_datasets()["ai_firm_cities_synthetic"])
    assert shipped.columns == expected.columns and shipped.height == expected.height == 61
    for column in expected.columns:
        a, b = shipped[column], expected[column]
        if b.dtype.is_numeric():
            np.testing.assert_allclose(a.cast(pl.Float64).to_numpy(), b.cast(pl.Float64).to_numpy(), rtol=1e-12,
                                       err_msg=column)
        else:
            assert a.to_list() == b.to_list(), column


def test_shipped_records_are_the_generator_output(firms):
    from tools.synthetic.firms import generate_ai_firms

    generated = generate_ai_firms(2024)
    assert firms.height == generated.height == 4311
    assert firms["province"].to_list() == generated["province"].to_list()


@pytest.mark.parametrize(("framework", "unit"), [("regional-ai-2023", "province"), ("ai-firms-2023", "city")])
def test_shipped_bootstrap_specs_validate_and_pass_the_nominal_check(framework, unit, firms):
    from engine.analysis.problem import build_problem
    from engine.analysis.spec import resolve_factors

    spec = load_bootstrap_spec(default_bootstrap_spec(framework))
    assert spec.mode == "records" and spec.records["unit"] == unit and len(spec.records["indicators"]) == 8
    nominal = engine.score(framework)
    uspec = spec.uncertainty_spec()
    units = build_problem(nominal, uspec, resolve_factors(uspec, nominal.framework)).units
    design = compile_records(firms, spec.records, nominal, units, nominal.framework.data.get("unit"))
    assert design.n_records == 4311 and design.ignored == 0 and design.rate == 1.0
    assert len(units) == (31 if framework == "regional-ai-2023" else 61)


def test_ai_firms_framework_records_run():
    run = bootstrap("ai-firms-2023", records=RECORDS, replicates=1024, seed=8)
    assert run.units.height == 61 and run.manifest["records"]["derived"] == [
        "firm_count", "firm_mean_valuation", "firm_mean_patents", "base_tech_firms", "tech_enabling",
        "financing_relations", "financing_amount", "investment_relations"]


# ============================================================================ output

def test_write_and_manifest(records_run, tmp_path):
    folder = records_run.write(tmp_path / "out")
    for name in ("units.parquet", "acceptability.parquet", "rank_shift.parquet", "manifest.json"):
        assert (folder / name).is_file(), name
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["kind"] == "bootstrap" and manifest["mode"] == "records"
    assert manifest["replicates"] == 2048 and manifest["seed"] == 5 and manifest["spec"]["seed"] == 5
    assert {"cityrank", "numpy", "numba", "polars"} <= set(manifest["versions"])
    assert manifest["records"]["n_records"] == 4311 and manifest["records"]["source"].endswith(".csv")
    units = pl.read_parquet(folder / "units.parquet")
    extra = records_run.problem.problem.result.unit_names().columns[1:]  # display name and groups
    assert extra and units.columns[1:1 + len(extra)] == extra
    assert units.drop(extra).equals(records_run.units)


def test_confidence_sets_contain_the_nominal_rank(records_run):
    units = records_run.units
    for column in ("cs_ci_lower", "cs_ci_upper", "cs_simultaneous_lower", "cs_simultaneous_upper", "cs_in_top_k"):
        assert column in units.columns, column
    assert (units["cs_ci_lower"] <= units["nominal_rank"]).all()
    assert (units["nominal_rank"] <= units["cs_ci_upper"]).all()
    assert (units["cs_simultaneous_lower"] <= units["cs_ci_lower"]).all()
    assert (units["cs_ci_upper"] <= units["cs_simultaneous_upper"]).all()
    assert units.filter(pl.col("nominal_rank") <= 5)["cs_in_top_k"].all()
    assert records_run.manifest["confidence"]["top_k"] == 5


def test_resample_size_rejects_a_malformed_rule():
    """Rules that bypass the schema (direct calls) still get a typed error naming the form."""
    with pytest.raises(SchemaError, match=r"units\.m rule 'sqrt\(n\)' is not of the form n\^a"):
        resample_size("sqrt(n)", 100, "units")


def test_records_with_a_denominator_and_screened_units():
    """A record-derived count divided by a denominator (per 1,000 people) and a unit removed by
    screening: the nominal check passes on the denominated values, the screened unit's records are
    ignored (counted in the manifest), weight-1 records reproduce the nominal ranks, and the kernel
    equals its twin."""
    rng = np.random.default_rng(11)
    n_units = 12
    document = city_framework(screening={"min_coverage": 0.6})
    document["nodes"][6] = {**document["nodes"][6], "denominator": "pop", "scale_factor": 1000}
    fw = framework_from_dict(document)
    firms = rng.integers(1, 9, n_units)
    records = pl.DataFrame({"unit": [f"c{i:03d}" for i in range(n_units) for _ in range(firms[i])],
                            "patents": rng.poisson(3.0, int(firms.sum())).astype(float)})
    data = city_data(n_units=n_units).with_columns(
        pl.Series("x0", firms.astype(float)), pl.Series("pop", rng.uniform(50, 500, n_units)))
    data = data.with_columns(*(pl.when(pl.col("unit") == "c011").then(None).otherwise(pl.col(f"x{j}")).alias(f"x{j}")
                               for j in range(1, 6)))  # c011 keeps 1 of 6 indicators: screened out
    spec = {"mode": "records", "records": {"unit": "unit", "indicators": {"x0": {"stat": "count"}}}}
    run = bootstrap(fw, data, spec=spec, records=records, replicates=256, seed=4, block_size=256)
    assert "c011" not in run.units["unit"].to_list()
    assert run.manifest["records"]["ignored_records"] == int(firms[11])
    result = engine.score(fw, data)
    parsed = load_bootstrap_spec(spec, replicates=8, block_size=8, seed=4)
    uspec = parsed.uncertainty_spec()
    from engine.analysis.problem import build_problem

    problem = build_problem(result, uspec, [])
    design = compile_records(records, parsed.records, result, problem.units, "unit")
    np.testing.assert_allclose(design.divisor[:, 0], data["pop"].to_numpy()[:11] / 1000)
    bp = build_bootstrap_problem(problem, parsed, [], design)
    params = map_parameters(replicate_uniforms(4, 0, 8, 0), [], problem)
    ones = sampling_draws(4, 0, 8, "records", n_records=records.height, n_units=bp.n_units)
    ones = type(ones)(np.full_like(ones.record_uniform, 2**31), ones.count, ones.noise_eps)  # weight 1 each
    ranks = evaluate(bp, params, ones, 8, 1, keep_ranks=True)[5]
    assert (ranks == problem.nominal_rank[None]).all()
    draws = sampling_draws(4, 0, 8, "records", n_records=records.height, n_units=bp.n_units)
    got = evaluate(bp, params, draws, 8, 2, keep_ranks=True, keep_scores=True)
    from engine.kernels import reference

    twin = reference.bootstrap_blocks(*kernel_inputs(bp, params, draws), 8)
    for a, b in zip(got, twin):
        np.testing.assert_array_equal(a, b)


def test_confidence_sets_use_the_bootstrap_covariance_and_say_so():
    """Records mode: the sets use the covariance of the scores over the run's first replicates;
    with fewer than 100 usable replicates they fall back to per-unit standard errors — the
    manifest says which, and both contain the nominal rank."""
    full = bootstrap(FW, records=RECORDS, replicates=1024, seed=6)
    assert full.manifest["confidence"]["covariance"] == "bootstrap"
    assert full.manifest["confidence"]["replicates"] == 1024
    short = bootstrap(FW, records=RECORDS, replicates=64, seed=6, block_size=64)
    assert short.manifest["confidence"]["covariance"].startswith("diagonal")
    for run in (full, short):
        units = run.units.drop_nulls("cs_ci_lower")
        assert ((units["cs_ci_lower"] <= units["nominal_rank"]) & (units["nominal_rank"] <= units["cs_ci_upper"])).all()
        assert ((units["cs_simultaneous_lower"] <= units["cs_ci_lower"])
                & (units["cs_ci_upper"] <= units["cs_simultaneous_upper"])).all()


def test_records_confidence_sets_with_scores_that_never_move():
    """Issue 15 item 1, end to end: units whose records all carry one value have scores that never
    move in a record bootstrap (sd 0, or roundoff of a mean: se ~1e-13) beside units with real
    variance.  The sets agree with the bootstrap rank intervals (was: [1, 13] for a unit whose 5-95 %
    interval is [2, 2], with the manifest saying covariance "bootstrap"), and the manifest names the
    units treated as having zero variance."""
    rng = np.random.default_rng(15)
    fixed = {"top": (9.7, 4.9), "bottom": (0.0, 0.0), "umax": (6.1, 9.9), "mid": (3.3, 2.9)}
    rows = [(unit, v, u) for unit, (v, u) in fixed.items() for _ in range(40)]
    for i, centre in enumerate(np.linspace(1.5, 8.5, 12)):
        v, u = (rng.normal(centre, 1.0, 300).clip(0.5, 9.5) for _ in range(2))
        rows += [(f"r{i:02d}", float(a), float(b)) for a, b in zip(v, u, strict=True)]
    records = pl.DataFrame(rows, schema=["unit", "v", "u"], orient="row")
    data = records.group_by("unit", maintain_order=True).agg(pl.col("v").mean().alias("x0"),
                                                             pl.col("u").mean().alias("x1"))
    fw = framework_from_dict({"id": "zv", "labels": {"en": "zv"}, "data": {"unit": "unit"}, "nodes": [
        {"id": "Index", "labels": {"en": "Index"}},
        {"id": "x0", "parent": "Index", "labels": {"en": "x0"}, "column": "x0"},
        {"id": "x1", "parent": "Index", "labels": {"en": "x1"}, "column": "x1"}]})
    spec = {"mode": "records", "records": {"unit": "unit", "indicators": {"x0": {"stat": "mean", "column": "v"},
                                                                          "x1": {"stat": "mean", "column": "u"}}},
            "confidence": {"level": 0.9, "top_k": 3, "draws": 1000}}
    run = bootstrap(fw, data, spec=spec, records=records, replicates=512, seed=3, block_size=256)
    how = run.manifest["confidence"]
    assert how["covariance"] == "bootstrap"
    units = run.units
    boot = units["q95_rank"] - units["q05_rank"]
    assert ((units["cs_ci_lower"] <= units["q05_rank"]) & (units["q95_rank"] <= units["cs_ci_upper"])).all()
    assert ((units["cs_ci_upper"] - units["cs_ci_lower"]) - boot <= 2).all()
    assert ((units["cs_simultaneous_upper"] - units["cs_simultaneous_lower"]) - boot <= 3).all()
    still = units.filter(pl.col("unit").is_in(list(fixed)))
    # Their sets are their bootstrap intervals: the rank, or [4, 5] for "top" beside a noisy neighbour.
    assert (still["cs_ci_lower"] == still["q05_rank"]).all() and (still["cs_ci_upper"] == still["q95_rank"]).all()
    assert 3 <= units["cs_in_top_k"].sum() <= 4
    assert (still["score_se"] == 0.0).all()
    assert how["zero_variance_units"] == ["top", "bottom", "umax", "mid"] and how["degenerate_pairs"] == 6


def test_record_files_keep_ids_such_as_na(tmp_path):
    """Issue 21 item 10 for record-level files: Namibia's ISO code ``NA`` (and ``null``) in the
    records' unit column are ids, as in the unit table, not missing units."""
    rng = np.random.default_rng(21)
    ids = ["NA", "null", "ZA", "BW", "ZM", "MZ"]
    rows = [(unit, float(v)) for k, unit in enumerate(ids) for v in rng.normal(k + 1.0, 1.0, 30)]
    records = tmp_path / "records.csv"
    pl.DataFrame(rows, schema=["country", "v"], orient="row").write_csv(records)
    data = tmp_path / "units.csv"
    table = pl.read_csv(records, schema_overrides={"country": pl.String}, null_values=[])
    table.group_by("country", maintain_order=True).agg(pl.col("v").mean().alias("x0")).write_csv(data)
    fw = framework_from_dict({"id": "na", "labels": {"en": "na"}, "data": {"unit": "country"}, "nodes": [
        {"id": "Index", "labels": {"en": "Index"}},
        {"id": "x0", "parent": "Index", "labels": {"en": "x0"}, "column": "x0"}]})
    spec = {"mode": "records", "records": {"indicators": {"x0": {"stat": "mean", "column": "v"}}}}
    run = bootstrap(fw, str(data), spec=spec, records=str(records), replicates=64, seed=1, block_size=64)
    assert sorted(run.units["unit"].to_list()) == sorted(ids)
    assert run.manifest["records"]["n_records"] == 6 * 30
