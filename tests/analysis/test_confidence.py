"""Rank confidence sets (Mogstad, Romano, Shaikh & Wilhelm 2024; csranks).

Coverage is measured by simulation with fixed seeds: R repetitions of θ̂ ~ N(θ, Σ) with θ known.
A frequency below ``level`` by more than ``3 sqrt(level (1 − level) / R)`` (three binomial
standard errors; 0.045 at level 0.9 and R = 400) fails.  The procedure is conservative, so the
measured frequencies sit well above the level (see docs/rank-confidence-sets.md).
"""

from __future__ import annotations

import math
import time
import tracemalloc

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from engine.analysis.confidence import ConfidenceSets, rank_confidence_sets, rank_confidence_sets_from_bootstrap
from engine.errors import DataError, SchemaError

LEVEL = 0.9


def true_ranks(theta: np.ndarray) -> np.ndarray:
    """``1 + #{k : θ_k > θ_j}``."""
    return 1 + (theta[None, :] > theta[:, None]).sum(axis=1)


def tolerance(level: float, repetitions: int) -> float:
    return 3.0 * math.sqrt(level * (1.0 - level) / repetitions)


def simulate(theta, *, se=None, cov=None, top_k, repetitions, n_draws=500, stepdown=True, seed=2024):
    """Coverage frequencies: per-unit marginal, joint simultaneous, top-k."""
    p = theta.shape[0]
    rng = np.random.default_rng(seed)
    factor = np.diag(se) if cov is None else np.linalg.cholesky(cov)
    ranks = true_ranks(theta)
    best = ranks <= top_k
    marginal = np.zeros(p)
    joint = top = 0
    for r in range(repetitions):
        estimates = theta + factor @ rng.standard_normal(p)
        cs = rank_confidence_sets(estimates, se=se, cov=cov, level=LEVEL, top_k=top_k, n_draws=n_draws,
                                  seed=r, stepdown=stepdown)
        marginal += (cs.lower <= ranks) & (ranks <= cs.upper)
        joint += bool(np.all((cs.simultaneous_lower <= ranks) & (ranks <= cs.simultaneous_upper)))
        top += bool(np.all(cs.top_k_set[best]))
    return marginal / repetitions, joint / repetitions, top / repetitions


#: p = 10: four well-separated leaders, a cluster of near-ties (0, 0.1, 0.2, 0.3), two laggards.
THETA_10 = np.array([6.0, 4.5, 3.0, 1.5, 0.0, 0.1, 0.2, 0.3, -1.5, -3.0])
SE_10 = np.full(10, 0.5)


@pytest.fixture(scope="module")
def coverage_10():
    return simulate(THETA_10, se=SE_10, top_k=3, repetitions=400)


@pytest.fixture(scope="module")
def coverage_30():
    theta = np.linspace(0.0, 6.0, 30)
    se = np.random.default_rng(30).uniform(0.2, 1.5, 30)  # varied precision
    return simulate(theta, se=se, top_k=5, repetitions=400)


@pytest.fixture(scope="module")
def coverage_correlated():
    """p = 10 with a common shock (ρ = 0.6) and one strongly correlated pair, passed as ``cov``."""
    sd = np.linspace(0.3, 0.8, 10)
    corr = np.full((10, 10), 0.6)
    corr[4, 7] = corr[7, 4] = 0.9
    np.fill_diagonal(corr, 1.0)
    cov = corr * np.outer(sd, sd)
    return simulate(THETA_10, cov=cov, top_k=3, repetitions=300)


def test_marginal_coverage(coverage_10, coverage_30, coverage_correlated):
    for marginal, _, _ in (coverage_10, coverage_30):
        assert marginal.min() >= LEVEL - tolerance(LEVEL, 400), marginal
    assert coverage_correlated[0].min() >= LEVEL - tolerance(LEVEL, 300), coverage_correlated[0]


def test_simultaneous_coverage(coverage_10, coverage_30, coverage_correlated):
    assert coverage_10[1] >= LEVEL - tolerance(LEVEL, 400)
    assert coverage_30[1] >= LEVEL - tolerance(LEVEL, 400)
    assert coverage_correlated[1] >= LEVEL - tolerance(LEVEL, 300)


def test_top_k_coverage(coverage_10, coverage_30, coverage_correlated):
    assert coverage_10[2] >= LEVEL - tolerance(LEVEL, 400)
    assert coverage_30[2] >= LEVEL - tolerance(LEVEL, 400)
    assert coverage_correlated[2] >= LEVEL - tolerance(LEVEL, 300)


def test_coverage_is_exact_for_a_tied_pair():
    """θ_1 = θ_2: both true ranks are 1 and are covered iff the pair is not rejected, P = level exactly.

    This is the sharp case (the other designs are conservative), so coverage must also not exceed
    the level by more than the tolerance: a too-large critical value fails here.
    """
    repetitions = 1000
    rng = np.random.default_rng(99)
    covered = 0
    for r in range(repetitions):
        estimates = rng.normal(size=2) * np.array([0.3, 0.6])
        cs = rank_confidence_sets(estimates, se=[0.3, 0.6], seed=r, n_draws=500)
        covered += bool(np.all(cs.simultaneous_lower == 1)) and bool(np.all(cs.lower == 1))
    assert abs(covered / repetitions - LEVEL) <= tolerance(LEVEL, repetitions), covered


def test_single_step_critical_value_is_tukeys_studentized_range():
    """Equal se: max over all pairs of |Z_a − Z_b| / (σ√2) = range / (σ√2), Tukey's HSD quantile / √2."""
    from scipy.stats import studentized_range

    cs = rank_confidence_sets(np.zeros(10), se=np.ones(10), n_draws=20000, stepdown=False, seed=1)
    expected = studentized_range.ppf(LEVEL, 10, 1e6) / math.sqrt(2.0)  # ≈ 2.920
    assert cs.simultaneous_critical_value == pytest.approx(expected, abs=0.06)


@pytest.mark.slow
def test_single_step_coverage_and_tight_clusters():
    """Single-step sets, and a harder design: all 12 units within ~2 se of each other."""
    theta = np.linspace(0.0, 1.0, 12)
    se = np.full(12, 0.25)
    for stepdown in (False, True):
        marginal, joint, top = simulate(theta, se=se, top_k=4, repetitions=1000, stepdown=stepdown)
        tol = tolerance(LEVEL, 1000)
        assert marginal.min() >= LEVEL - tol and joint >= LEVEL - tol and top >= LEVEL - tol


# ---------------------------------------------------------------------------------------------
# Exact cases
# ---------------------------------------------------------------------------------------------

def test_separated_estimates_give_singletons():
    order = np.random.default_rng(1).permutation(12)
    estimates = 100.0 * order  # unit j has true rank 12 - order[j]
    cs = rank_confidence_sets(estimates, se=np.full(12, 1e-3), top_k=4)
    expected = 12 - order
    for bound in (cs.lower, cs.upper, cs.simultaneous_lower, cs.simultaneous_upper, cs.rank):
        assert_array_equal(bound, expected)
    assert_array_equal(cs.top_k_set, expected <= 4)


def test_equal_estimates_span_every_rank():
    p = 9
    cs = rank_confidence_sets(np.full(p, 0.5), se=np.full(p, 10.0), top_k=2)
    assert_array_equal(cs.lower, np.ones(p))
    assert_array_equal(cs.upper, np.full(p, p))
    assert_array_equal(cs.simultaneous_lower, np.ones(p))
    assert_array_equal(cs.simultaneous_upper, np.full(p, p))
    assert cs.top_k_set.all()
    assert_array_equal(cs.rank, np.ones(p))  # ties share the smallest rank


def test_two_units_hand_computed():
    """p = 2: one pair, two directions, so c is the 0.9 quantile of |N(0, 1)| ≈ 1.645."""
    cs = rank_confidence_sets([1.0, 0.0], se=[0.5, 0.5], n_draws=20000)  # t = 1 / sqrt(0.5) ≈ 1.414
    assert cs.simultaneous_critical_value == pytest.approx(1.645, abs=0.03)
    assert_array_equal(cs.lower, [1, 1])
    assert_array_equal(cs.upper, [2, 2])
    cs = rank_confidence_sets([1.0, 0.0], se=[0.3, 0.3], n_draws=20000)  # t ≈ 2.357 > 1.645
    assert_array_equal(cs.lower, [1, 2])
    assert_array_equal(cs.upper, [1, 2])


estimates_and_se = st.integers(2, 12).flatmap(lambda p: st.tuples(
    st.lists(st.floats(-5, 5, allow_nan=False), min_size=p, max_size=p),
    st.lists(st.floats(0.05, 3), min_size=p, max_size=p),
    st.integers(0, 2**32 - 1),
))


@given(estimates_and_se)
def test_nesting_properties(case):
    """Point-estimate rank ∈ marginal ⊆ simultaneous ⊆ single-step simultaneous; top-k ⊇ estimated top-k."""
    estimates, se, seed = case
    p = len(estimates)
    k = max(1, p // 3)
    cs = rank_confidence_sets(estimates, se=se, n_draws=200, seed=seed, top_k=k)
    single = rank_confidence_sets(estimates, se=se, n_draws=200, seed=seed, top_k=k, stepdown=False)
    assert np.all((1 <= cs.lower) & (cs.lower <= cs.rank) & (cs.rank <= cs.upper) & (cs.upper <= p))
    assert np.all((cs.simultaneous_lower <= cs.lower) & (cs.upper <= cs.simultaneous_upper))
    assert np.all((single.simultaneous_lower <= cs.simultaneous_lower)
                  & (cs.simultaneous_upper <= single.simultaneous_upper))
    assert np.all((single.lower <= cs.lower) & (cs.upper <= single.upper))
    assert np.all(cs.top_k_set[cs.rank <= k])
    assert_array_equal(cs.top_k_set, cs.simultaneous_lower <= k)
    assert cs.simultaneous_critical_value <= single.simultaneous_critical_value


def test_invariant_to_adding_a_constant():
    rng = np.random.default_rng(7)
    estimates, se = rng.normal(size=25), rng.uniform(0.1, 0.5, 25)
    a = rank_confidence_sets(estimates, se=se, top_k=5, seed=3)
    b = rank_confidence_sets(estimates + 1000.0, se=se, top_k=5, seed=3)
    for name in ("lower", "upper", "simultaneous_lower", "simultaneous_upper", "top_k_set", "rank"):
        assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("use_cov", [False, True])
def test_permuting_units_permutes_the_sets(use_cov):
    rng = np.random.default_rng(11)
    p = 20
    estimates, sd = rng.normal(size=p), rng.uniform(0.1, 0.5, p)
    cov = None
    if use_cov:
        a = rng.normal(size=(p, p)) * 0.1
        cov = a @ a.T + np.diag(sd**2)
    perm = rng.permutation(p)
    if use_cov:
        base = rank_confidence_sets(estimates, cov=cov, top_k=5, seed=9)
        moved = rank_confidence_sets(estimates[perm], cov=cov[np.ix_(perm, perm)], top_k=5, seed=9)
    else:
        base = rank_confidence_sets(estimates, se=sd, top_k=5, seed=9)
        moved = rank_confidence_sets(estimates[perm], se=sd[perm], top_k=5, seed=9)
    for name in ("lower", "upper", "simultaneous_lower", "simultaneous_upper", "top_k_set",
                 "marginal_critical_values"):
        assert_array_equal(getattr(moved, name), getattr(base, name)[perm])
    assert moved.simultaneous_critical_value == base.simultaneous_critical_value


def test_diagonal_cov_equals_se():
    rng = np.random.default_rng(5)
    estimates, se = rng.normal(size=15), rng.uniform(0.1, 0.9, 15)
    a = rank_confidence_sets(estimates, se=se, top_k=3, seed=1)
    b = rank_confidence_sets(estimates, cov=np.diag(se**2), top_k=3, seed=1)
    for name in ("lower", "upper", "simultaneous_lower", "simultaneous_upper", "top_k_set",
                 "marginal_critical_values", "se"):
        assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.simultaneous_critical_value == b.simultaneous_critical_value


def test_common_shock_cancels_in_differences():
    """Σ = ρσ²11ᵀ + (1−ρ)σ²I ranks like independent estimates with se = σ sqrt(1 − ρ)."""
    estimates = np.linspace(0.0, 3.0, 8)
    sigma, rho = 1.0, 0.96  # independent-equivalent se 0.2: neighbours (Δ = 0.43) are ~1.5 se apart
    cov = sigma**2 * (rho * np.ones((8, 8)) + (1 - rho) * np.eye(8))
    a = rank_confidence_sets(estimates, cov=cov, n_draws=4000)
    b = rank_confidence_sets(estimates, se=np.full(8, sigma * math.sqrt(1 - rho)), n_draws=4000)
    assert a.simultaneous_critical_value == pytest.approx(b.simultaneous_critical_value, abs=0.1)
    assert_array_equal(a.simultaneous_lower, b.simultaneous_lower)
    assert_array_equal(a.simultaneous_upper, b.simultaneous_upper)
    wide = rank_confidence_sets(estimates, se=np.full(8, sigma), n_draws=4000)  # ignoring the correlation
    assert np.all(wide.simultaneous_upper - wide.simultaneous_lower >= a.simultaneous_upper - a.simultaneous_lower)


def test_reproducible_and_seed_dependent_critical_values():
    rng = np.random.default_rng(2)
    estimates, se = rng.normal(size=10), rng.uniform(0.2, 0.4, 10)
    a = rank_confidence_sets(estimates, se=se, seed=4)
    b = rank_confidence_sets(estimates, se=se, seed=4)
    c = rank_confidence_sets(estimates, se=se, seed=5)
    assert_array_equal(a.marginal_critical_values, b.marginal_critical_values)
    assert a.simultaneous_critical_value != c.simultaneous_critical_value


def test_table_and_result_are_read_only():
    cs = rank_confidence_sets([3.0, 2.0, 2.0, 0.0], se=[0.01, 0.01, 0.01, 0.01], units=["a", "b", "c", "d"], top_k=1)
    table = cs.table()
    assert table.columns == ["unit", "estimate", "se", "rank", "ci_lower", "ci_upper", "simultaneous_lower",
                             "simultaneous_upper", "in_top_k"]
    assert table["unit"].to_list() == ["a", "b", "c", "d"]
    assert table["rank"].to_list() == [1, 2, 2, 4]
    assert table["ci_lower"].to_list() == [1, 2, 2, 4] and table["ci_upper"].to_list() == [1, 3, 3, 4]
    assert table["in_top_k"].to_list() == [True, False, False, False]
    assert table.schema["rank"] == pl.Int64
    plain = rank_confidence_sets([3.0, 2.0], se=[1.0, 1.0]).table()
    assert plain.columns[-1] == "simultaneous_upper" and plain["unit"].to_list() == [0, 1]
    assert isinstance(cs, ConfidenceSets)
    with pytest.raises(ValueError, match="read-only"):
        cs.lower[0] = 3


def test_from_bootstrap_matches_direct_call():
    rng = np.random.default_rng(8)
    nominal = rng.normal(size=6)
    replicates = nominal + rng.normal(size=(200, 6)) * 0.3 + rng.normal(size=(200, 1)) * 0.2
    a = rank_confidence_sets_from_bootstrap(nominal, replicates, top_k=2, seed=1)
    b = rank_confidence_sets(nominal, cov=np.cov(replicates, rowvar=False), top_k=2, seed=1)
    c = rank_confidence_sets_from_bootstrap(nominal, replicates, covariance=False, seed=1)
    d = rank_confidence_sets(nominal, se=replicates.std(axis=0, ddof=1), seed=1)
    assert_array_equal(a.simultaneous_lower, b.simultaneous_lower)
    assert_array_equal(a.top_k_set, b.top_k_set)
    assert_array_equal(c.lower, d.lower)
    assert_array_equal(c.upper, d.upper)


@pytest.mark.slow
def test_full_size_runtime_and_memory():
    """338 units (≈114,000 ordered pairs) × 1,000 draws with step-down: seconds, well under 500 MB."""
    rng = np.random.default_rng(338)
    estimates, se = rng.normal(size=338), rng.uniform(0.05, 0.3, 338)
    tracemalloc.start()
    start = time.perf_counter()
    cs = rank_confidence_sets(estimates, se=se, top_k=10, n_draws=1000)
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200e6, peak
    assert elapsed < 60, elapsed
    assert np.all(cs.simultaneous_lower <= cs.lower)


# ---------------------------------------------------------------------------------------------
# Zero and near-zero variances (issue 15 item 1)
# ---------------------------------------------------------------------------------------------

def bootstrap_shape(tiny_units, tiny_sd, *, tiny_common: bool = False, p: int = 80, replicates: int = 2000):
    """A record-bootstrap-like shape: p evenly spread scores on 0-100 with real sd 0.2-0.6 and a
    common shock (bootstrap rank intervals 0-2 ranks wide), and units whose score never moves
    (sd 0) or moves by roundoff (2e-12, 2e-14).  Returns the nominal scores, the replicates and
    the 5 %/95 % bootstrap rank quantiles."""
    rng = np.random.default_rng(15)
    nominal = np.linspace(100.0, 0.0, p)
    common = rng.normal(size=(replicates, 1))
    reps = nominal + rng.normal(size=(replicates, p)) * rng.uniform(0.2, 0.6, p) + common
    for unit, sd in zip(tiny_units, tiny_sd, strict=True):
        noise = common[:, 0] if tiny_common else rng.normal(size=replicates)
        reps[:, unit] = nominal[unit] + noise * sd
    ranks = 1 + (reps[:, None, :] > reps[:, :, None]).sum(axis=2)
    q05, q95 = np.quantile(ranks, [0.05, 0.95], axis=0, method="lower")
    return nominal, reps, q05, q95


@pytest.mark.parametrize(("tiny_units", "tiny_sd", "tiny_common"), [
    ((0, 1), (2e-12, 2e-14), False),        # the issue: the top units' scores never move
    ((0, 79), (2e-12, 2e-14), True),         # roundoff that follows the common shock
    ((40, 41, 78), (0.0, 2e-12, 2e-14), False),
    ((10, 60), (0.0, 0.0), False),           # constant scores (np.cov leaves roundoff variances)
])
def test_zero_and_near_zero_variance_units_beside_real_variance(tiny_units, tiny_sd, tiny_common):
    """Units whose bootstrap score never moves beside units with real variance: the sets agree with
    the bootstrap rank intervals (0-2 ranks wide here).  The old code factored Σ itself; its roundoff
    gave the tiny units draws with sd ~1e-7, the max-t quantile came out at 10³-10⁵ and the sets at
    [1, 80] (top-10 set = all 80 units) in the last three cases."""
    nominal, reps, q05, q95 = bootstrap_shape(tiny_units, tiny_sd, tiny_common=tiny_common)
    p = nominal.shape[0]
    cs = rank_confidence_sets_from_bootstrap(nominal, reps, top_k=10, seed=1)
    zero = np.zeros(p, dtype=bool)
    zero[list(tiny_units)] = True
    assert_array_equal(cs.zero_variance, zero)
    assert_array_equal(cs.se[zero], 0.0)
    assert cs.simultaneous_critical_value < 5.0  # the max-t quantile of 80 units, not 10⁴
    assert np.all(cs.marginal_critical_values < 5.0)
    # Consistent with the bootstrap: every marginal set holds the 5-95 % rank interval and is at
    # most 3 ranks wider (measured 2-3; the old code 76-77); the simultaneous sets at most 6 (4-5).
    assert np.all((cs.lower <= q05) & (q95 <= cs.upper))
    assert np.all((cs.upper - cs.lower) - (q95 - q05) <= 3), (cs.upper - cs.lower - (q95 - q05)).max()
    assert np.all((cs.simultaneous_upper - cs.simultaneous_lower) - (q95 - q05) <= 6)
    assert 10 <= cs.top_k_set.sum() <= 13
    # The same with per-unit standard errors (covariance=False): se = 0 is accepted now.
    independent = rank_confidence_sets_from_bootstrap(nominal, reps, covariance=False, top_k=10, seed=1)
    assert_array_equal(independent.zero_variance, zero)
    assert np.all((independent.lower <= q05) & (q95 <= independent.upper))
    assert independent.top_k_set.sum() < p


def test_zero_variance_units_hand_computed():
    """Three units without sampling error (sd 0, 2e-12, 2e-14 on a 0-10 scale) are ordered by their
    estimates exactly; the two noisy units are compared by their t-statistics as usual."""
    estimates = [10.0, 8.0, 6.0, 2.0, 1.9]
    se = [0.0, 2e-12, 2e-14, 0.5, 0.5]
    cs = rank_confidence_sets(estimates, se=se, n_draws=4000, top_k=2, units=list("abcde"))
    assert_array_equal(cs.zero_variance, [True, True, True, False, False])
    assert cs.degenerate_pairs == 3  # a-b, a-c, b-c
    assert_array_equal(cs.lower, [1, 2, 3, 4, 4])
    assert_array_equal(cs.upper, [1, 2, 3, 5, 5])
    assert_array_equal(cs.simultaneous_lower, [1, 2, 3, 4, 4])
    assert_array_equal(cs.simultaneous_upper, [1, 2, 3, 5, 5])
    assert_array_equal(cs.top_k_set, [True, True, False, False, False])
    assert cs.table()["se"].to_list() == [0.0, 0.0, 0.0, 0.5, 0.5]
    # Equal estimates without sampling error are a tie: neither rank bound moves past the other.
    tied = rank_confidence_sets([5.0, 5.0, 1.0], se=[0.0, 0.0, 0.1])
    assert_array_equal(tied.lower, [1, 1, 3]) and assert_array_equal(tied.upper, [2, 2, 3])
    # Every unit without variance: the sets are the exact ranks, no family is left to test.
    exact = rank_confidence_sets([3.0, 1.0, 2.0, 2.0], se=[0.0, 0.0, 0.0, 0.0])
    assert_array_equal(exact.lower, [1, 4, 2, 2]) and assert_array_equal(exact.upper, [1, 4, 3, 3])
    assert math.isnan(exact.simultaneous_critical_value) and exact.simultaneous_steps == 0
    assert np.isnan(exact.marginal_critical_values).all()


def test_lockstep_pair_is_decided_by_the_sign_of_its_difference():
    """Two units perfectly correlated with equal variance: their difference has no sampling error,
    so it is decided by its sign (was a DataError); within 100 tolerances it is a tie."""
    cov = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    cs = rank_confidence_sets([1.0, 2.0, 3.0], cov=cov, units=["a", "b", "c"])
    assert cs.degenerate_pairs == 1 and not cs.zero_variance.any()
    assert_array_equal(cs.lower, [2, 1, 1])   # b is known to beat a; c beats neither significantly
    assert_array_equal(cs.upper, [3, 2, 3])
    near = rank_confidence_sets([1.0, 1.0 + 1e-4, 3.0], cov=cov)  # |Δ| = 1e-4 < 100 · 1e-5 · sqrt(2)
    assert near.degenerate_pairs == 1
    assert_array_equal(near.lower, [1, 1, 1]) and assert_array_equal(near.upper, [3, 3, 3])
    # The same pair through a bootstrap: two units that move in lockstep, a third independent.
    rng = np.random.default_rng(4)
    shock = rng.normal(size=(500, 1))
    reps = np.hstack([shock, shock + 1.0, rng.normal(size=(500, 1)) + 3.0])
    boot = rank_confidence_sets_from_bootstrap([0.0, 1.0, 3.0], reps)
    assert boot.degenerate_pairs == 1
    assert boot.upper[1] == 2 and boot.lower[0] >= 2  # b is known to beat a


def test_tiny_but_real_variance_is_kept_and_drawn_on_its_own_scale():
    """sd 1e-6 on a 0-100 scale is above the roundoff tolerance (1e-12 · 100): it stays a variance,
    and two such units 1e-5 apart (t ≈ 7) are told apart, beside units with sd 1."""
    rng = np.random.default_rng(6)
    estimates = np.array([100.0, 50.0, 50.0 + 1e-5, 20.0, 10.0])
    sd = np.array([1.0, 1e-6, 1e-6, 1.0, 1.0])
    a = rng.normal(size=(5, 5)) * 0.3
    corr = a @ a.T + np.eye(5)
    corr /= np.sqrt(np.outer(np.diagonal(corr), np.diagonal(corr)))
    cs = rank_confidence_sets(estimates, cov=corr * np.outer(sd, sd), n_draws=2000)
    assert not cs.zero_variance.any() and cs.degenerate_pairs == 0
    assert_array_equal(cs.lower, [1, 3, 2, 4, 5])
    assert_array_equal(cs.upper, [1, 3, 2, 4, 5])


@pytest.mark.parametrize("tiny_sd", [2e-7, 1e-8, 1e-10])
def test_draws_keep_each_units_own_scale(tiny_sd):
    """Z* ~ N(0, Σ) for a bootstrap Σ of 80 units (sd ≈ 1) with two independent units of sd 1e-8 or
    1e-10: the draws of every unit, and of the tiny pair's difference, have the right sd.  Factoring
    Σ itself (the old code) gave them 0.2-0.8 of it (and 1e-7 instead of 2e-12 in the issue's shape)."""
    from engine.analysis.confidence import _draws

    _, reps, _, _ = bootstrap_shape((40, 41), (tiny_sd, tiny_sd), replicates=2000)
    cov = np.cov(reps, rowvar=False)
    sd = np.sqrt(np.diagonal(cov))
    z = _draws(sd**2, cov, 4000, 1)
    np.testing.assert_allclose(z.std(axis=0) / sd, 1.0, atol=0.05)
    pair = math.sqrt(cov[40, 40] + cov[41, 41] - 2.0 * cov[40, 41])
    assert ((z[:, 40] - z[:, 41]) / pair).std() == pytest.approx(1.0, abs=0.05)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

GOOD = np.array([1.0, 2.0, 3.0])
GOOD_SE = np.array([0.1, 0.2, 0.3])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"level": 1.0}, r"level must be a number strictly between 0 and 1, got 1\.0.*Fix: pass a coverage"),
    ({"level": 0}, r"level must be .* got 0"),
    ({"level": "0.9"}, r"level must be a number"),
    ({"n_draws": 100.0}, r"n_draws must be an integer, got 100\.0"),
    ({"n_draws": 50, "level": 0.99}, r"n_draws=50 is too few for a 0\.99 quantile \(at least 100 needed\)"),
    ({"n_draws": 5}, r"at least 10 needed.*Fix: pass n_draws=1000"),
    ({"stepdown": "yes"}, r"stepdown must be True or False, got 'yes'"),
    ({"top_k": 1.5}, r"top_k must be an integer or None, got 1\.5"),
    ({"top_k": 3}, r"top_k must be between 1 and n_units - 1 = 2, got 3"),
    ({"top_k": 0}, r"top_k must be between 1 .* got 0.*Fix: pass top_k in 1\.\.2"),
])
def test_argument_errors(kwargs, match):
    with pytest.raises(SchemaError, match=match):
        rank_confidence_sets(GOOD, se=GOOD_SE, **kwargs)


def test_se_and_cov_exclusive():
    with pytest.raises(SchemaError, match=r"pass exactly one of se .* or cov"):
        rank_confidence_sets(GOOD)
    with pytest.raises(SchemaError, match="pass exactly one of se"):
        rank_confidence_sets(GOOD, se=GOOD_SE, cov=np.diag(GOOD_SE**2))


@pytest.mark.parametrize(("estimates", "se", "units", "match"), [
    (np.ones((2, 2)), GOOD_SE, None, r"estimates must be one-dimensional .* shape \(2, 2\)"),
    ([1.0], [0.1], None, r"at least 2 units are needed to rank, got 1"),
    (GOOD, GOOD_SE, ["a", "b"], r"units has 2 labels but estimates has 3 values"),
    (GOOD, GOOD_SE, ["a", "b", "a"], r"duplicate unit labels. Units: 'a'.*Fix: give every unit a distinct label"),
    ([1.0, np.nan, np.inf], GOOD_SE, ["a", "b", "c"],
     r"estimates must be finite; 2 are NaN or infinite. Units: 'b', 'c'. Fix: drop these units"),
    (GOOD, [0.1, 0.2], None, r"se has shape \(2,\) but estimates has shape \(3,\)"),
    (GOOD, [-0.1, 0.0, np.nan], ["a", "b", "c"],
     r"standard errors must be finite and >= 0; 2 are not \(values -0\.1, nan\). Units: 'a', 'c'"),
    (GOOD, [-0.1, 0.2, 0.3], None, r"standard errors must be finite and >= 0.*Units: 0\..*Fix: check these"),
])
def test_data_errors(estimates, se, units, match):
    with pytest.raises(DataError, match=match):
        rank_confidence_sets(estimates, se=se, units=units)


@pytest.mark.parametrize(("cov", "match"), [
    (np.eye(2), r"cov has shape \(2, 2\) but there are 3 estimates.*Fix: pass a \(3, 3\) covariance"),
    (np.diag([1.0, np.nan, 1.0]), r"cov must be finite; rows of 1 units .* Units: 'b'"),
    (np.array([[1.0, 0.5, 0.0], [0.4, 1.0, 0.0], [0.0, 0.0, 1.0]]),
     r"cov is not symmetric: cov\[0, 1\] = 0\.5 but cov\[1, 0\] = 0\.4. Units: 'a', 'b'"),
    (np.diag([1.0, -1.0, 1.0]), r"cov has negative variances on its diagonal. Units: 'b'"),
    (np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
     r"cov is not positive semidefinite: its smallest eigenvalue is -1.*Fix: pass a covariance estimate"),
])
def test_covariance_errors(cov, match):
    with pytest.raises(DataError, match=match):
        rank_confidence_sets(GOOD, cov=cov, units=["a", "b", "c"])


def test_from_bootstrap_errors():
    with pytest.raises(DataError, match=r"replicates must have shape \(n_replicates >= 2, 3\), got \(10, 2\)"):
        rank_confidence_sets_from_bootstrap(GOOD, np.zeros((10, 2)))
    with pytest.raises(DataError, match=r"replicates must have shape .* got \(1, 3\)"):
        rank_confidence_sets_from_bootstrap(GOOD, np.zeros((1, 3)))
    bad = np.random.default_rng(0).normal(size=(10, 3))
    bad[4, 2] = np.nan
    with pytest.raises(DataError, match=r"bootstrap replicates of 1 units hold NaN.*Units: 'c'.*Fix: drop failed"):
        rank_confidence_sets_from_bootstrap(GOOD, bad, units=["a", "b", "c"])
