"""Tier classification: the Fisher–Jenks kernel against its twin, against brute force, and the
``engine.tiers`` API around it.

* Kernel == twin **bit for bit** (``assert_array_equal``) on an edge catalogue crossed with ``k``,
  and with Hypothesis: both compute the same sums of squares with the same float operations; the
  kernel searches the starts of a class by divide and conquer, the twin tries all of them, so the
  comparison also checks that the divide and conquer finds the plain DP's choice (also at d ~ 400).
* Optimality is checked independently of both homes: for n <= 9 and k <= 4 every contiguous
  partition of the sorted values is enumerated and the DP's total within-class sum of squares must
  equal the brute-force minimum (relative 1e-9; sums of squares computed with ``math.fsum``).
* Policies checked explicitly (a policy bug shared by both homes would pass a twin comparison): ties
  never split, k above the number of distinct values, the equal-total rule, tier 1 = best,
  missing = 0, permutation equivariance, the errors.
"""

from __future__ import annotations

import inspect
import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from engine.errors import DataError, SchemaError
from engine.kernels import reference
from engine.kernels import tiers as tier_kernels
from engine.tiers import TIER_METHODS, assign_tiers, tier_breaks
from tests.strategies import finite_floats

nan, inf = np.nan, np.inf


def run_kernel(sorted_values, k: int) -> np.ndarray:
    """Call the kernel with a sentinel-filled ``out``: every cell must be written."""
    x = np.ascontiguousarray(sorted_values, dtype=np.float64)
    out = np.full(k + 1, -12345.0)
    result = tier_kernels.jenks(x, k, out)
    assert result is out
    return out


def within_ss(groups) -> float:
    """Total within-group sum of squared deviations, accurately (independent of both homes)."""
    total = 0.0
    for group in groups:
        mean = math.fsum(group) / len(group)
        total += math.fsum((v - mean) ** 2 for v in group)
    return total


def classes(sorted_values: np.ndarray, breaks: np.ndarray) -> list[list[float]]:
    """The classes the breaks define: ``(breaks[c], breaks[c + 1]]``, the first one closed on the left.
    Only the ``min(k, d)`` real classes are returned (the breaks after them repeat the max)."""
    n_classes = min(len(breaks) - 1, len(np.unique(sorted_values)))
    index = np.searchsorted(breaks[1:n_classes], sorted_values, side="left")
    return [sorted_values[index == c].tolist() for c in range(n_classes)]


def brute_force_minimum(sorted_values: np.ndarray, k: int) -> float:
    """Least total within-class SS over every split of the sorted values into k contiguous, non-empty
    classes (ties may be split here: the DP must still reach the same minimum)."""
    values = sorted_values.tolist()
    n = len(values)
    best = math.inf
    for cuts in itertools.combinations(range(1, n), k - 1):
        bounds = (0, *cuts, n)
        best = min(best, within_ss([values[a:b] for a, b in itertools.pairwise(bounds)]))
    return best


def assert_same_minimum(dp: float, brute: float, sorted_values: np.ndarray) -> None:
    scale = 1.0 + float(np.max(np.abs(sorted_values)))
    # absolute slack: a class of equal values has SS 0 exactly, but fsum's mean may be 1 ulp off
    slack = len(sorted_values) * (4 * np.finfo(np.float64).eps * scale) ** 2
    assert math.isclose(dp, brute, rel_tol=1e-9, abs_tol=slack), (dp, brute)


def assert_well_formed(sorted_values: np.ndarray, k: int, breaks: np.ndarray) -> None:
    """k + 1 breaks: min, then strictly increasing upper bounds that are data values, ending at the
    max, then the max repeated (k > number of distinct values)."""
    distinct = np.unique(sorted_values)
    n_classes = min(k, distinct.size)
    assert breaks.shape == (k + 1,)
    assert breaks[0] == sorted_values[0]
    uppers = breaks[1:n_classes + 1]
    assert np.all(np.diff(uppers) > 0), breaks
    assert np.all(np.isin(uppers, distinct))
    assert uppers[-1] == sorted_values[-1]
    assert np.all(breaks[n_classes + 1:] == sorted_values[-1])


# ============================================================================ pairing by name

def test_kernel_is_paired_with_a_twin_of_the_same_name():
    """tiers.jenks has a readable twin reference.jenks (not a re-export), listed in reference.__all__."""
    assert tier_kernels.__all__ == ["jenks", "quantile_tiers"]
    assert reference.jenks.__module__ == reference.__name__
    assert "jenks" in reference.__all__
    assert TIER_METHODS["jenks"] == (tier_kernels.jenks, reference.jenks)


def test_kernel_and_twin_take_the_same_parameters():
    """The kernel's signature is the twin's plus a trailing ``out`` (the project-wide convention)."""
    kernel_params = list(inspect.signature(getattr(tier_kernels.jenks, "py_func", tier_kernels.jenks)).parameters)
    twin_params = list(inspect.signature(reference.jenks).parameters)
    assert kernel_params == [*twin_params, "out"] == ["sorted_values", "k", "out"]


# ============================================================================ edge catalogue

#: Sorted inputs, one per edge case.
EDGE_VALUES: dict[str, list[float]] = {
    "one_value": [4.25],
    "two_values": [-1.0, 3.0],
    "two_distinct_many": [0.5, 0.5, 0.5, 2.0, 2.0],
    "constant": [2.5] * 6,
    "ties": [1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 7.0, 7.0, 8.0],
    "ties_at_both_ends": [0.0, 0.0, 0.0, 1.0, 2.0, 5.0, 5.0],
    "three_groups": [1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 30.0, 31.0],
    "equal_totals": [0.0, 1.0, 2.0, 3.0, 4.0],
    "outlier": [0.0, 0.1, 0.2, 0.3, 0.4, 100.0],
    "negative": [-9.0, -5.5, -5.0, -1.0, -0.75],
    "non_integer": [1e-3, 0.1, 0.3, 0.3, 0.7, 12.5],
    "large": [1e6 - 3.0, 1e6 - 2.0, 1e6, 1e6, 1e6 + 0.5],
    "zeros": [-0.0, 0.0, 0.0, 1.0],
}

EDGE_CASES = [
    pytest.param(case, k, id=f"{case}-k={k}")
    for case, values in EDGE_VALUES.items()
    for k in sorted({1, 2, 3, 4, len(values), len(values) + 1})
]


@pytest.mark.parametrize(("case", "k"), EDGE_CASES)
def test_kernel_equals_twin_on_edge_cases(case, k):
    """Kernel == twin bit for bit, well-formed breaks, input not modified; k = 1 … n + 1."""
    x = np.array(EDGE_VALUES[case])
    expected = reference.jenks(x, k)
    actual = run_kernel(x, k)
    np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(x, EDGE_VALUES[case])
    assert_well_formed(x, k, actual)


@pytest.mark.parametrize(("case", "k"), [p for p in EDGE_CASES if p.values[1] <= min(4, len(EDGE_VALUES[p.values[0]]))])
def test_edge_cases_reach_the_brute_force_minimum(case, k):
    x = np.array(EDGE_VALUES[case])
    breaks = run_kernel(x, k)
    assert_same_minimum(within_ss(classes(x, breaks)), brute_force_minimum(x, k), x)


@pytest.mark.parametrize("home", ["kernel", "twin"])
class TestPolicies:
    @staticmethod
    def jenks(home, values, k):
        x = np.array(values, dtype=np.float64)
        return run_kernel(x, k) if home == "kernel" else reference.jenks(x, k)

    def test_known_three_groups(self, home):
        """[1,2,3, 10,11,12, 30,31], k = 3 -> {1,2,3} {10,11,12} {30,31}."""
        breaks = self.jenks(home, EDGE_VALUES["three_groups"], 3)
        assert breaks.tolist() == [1.0, 3.0, 12.0, 31.0]

    def test_k_one_is_min_max(self, home):
        assert self.jenks(home, EDGE_VALUES["outlier"], 1).tolist() == [0.0, 100.0]

    def test_k_equal_n_distinct_gives_singletons(self, home):
        values = EDGE_VALUES["negative"]
        assert self.jenks(home, values, len(values)).tolist() == [values[0], *values]

    def test_constant_values(self, home):
        """One distinct value: one real class; the other breaks repeat it."""
        assert self.jenks(home, [2.5] * 6, 3).tolist() == [2.5] * 4

    def test_one_value(self, home):
        assert self.jenks(home, [4.25], 1).tolist() == [4.25, 4.25]
        assert self.jenks(home, [4.25], 3).tolist() == [4.25] * 4

    def test_two_distinct_values(self, home):
        """k >= 2 splits exactly at the change; extra classes are empty (max repeated)."""
        values = EDGE_VALUES["two_distinct_many"]
        assert self.jenks(home, values, 2).tolist() == [0.5, 0.5, 2.0]
        assert self.jenks(home, values, 5).tolist() == [0.5, 0.5, 2.0, 2.0, 2.0, 2.0]

    def test_ties_are_never_split(self, home):
        """k = n with ties gives one class per distinct value, not one per unit."""
        values = EDGE_VALUES["ties"]  # distinct: 1, 2, 3, 7, 8
        assert self.jenks(home, values, len(values)).tolist() == [1.0, 1.0, 2.0, 3.0, 7.0, 8.0, 8.0, 8.0, 8.0, 8.0]

    @pytest.mark.parametrize(("values", "k", "expected"), [
        ([0.0, 1.0, 2.0], 2, [0.0, 1.0, 2.0]),  # {0} {1,2} and {0,1} {2} both cost 0.5
        ([0.0, 1.0, 2.0, 3.0, 4.0], 2, [0.0, 2.0, 4.0]),  # {0,1} {2,3,4} and {0,1,2} {3,4} both cost 2.5
        ([0.0, 1.0, 2.0, 3.0, 4.0], 4, [0.0, 1.0, 2.0, 3.0, 4.0]),  # the one pair is placed lowest
    ])
    def test_equal_totals_choose_the_latest_top_class(self, home, values, k, expected):
        """Among equal totals the highest class starts latest (then the next one down)."""
        assert self.jenks(home, values, k).tolist() == expected


# ============================================================================ Hypothesis

#: Elements mixing arbitrary bounded floats, small integers (exact arithmetic, many ties) and a pool
#: of repeated values.
ELEMENTS = st.one_of(finite_floats(), st.integers(-20, 20).map(float), st.sampled_from([-1.5, 0.0, 0.1, 2.0, 1e6]))


def sorted_arrays(max_size: int) -> st.SearchStrategy[np.ndarray]:
    return st.lists(ELEMENTS, min_size=1, max_size=max_size).map(lambda v: np.array(sorted(v), dtype=np.float64))


@given(sorted_arrays(30), st.integers(1, 6))
def test_kernel_equals_twin_hypothesis(x, k):
    np.testing.assert_array_equal(run_kernel(x, k), reference.jenks(x, k))
    assert_well_formed(x, k, reference.jenks(x, k))


@given(sorted_arrays(9), st.integers(1, 4))
def test_dp_reaches_the_brute_force_minimum(x, k):
    """For n <= 9, k <= 4: the DP's total within-class SS == the minimum over every contiguous split."""
    assume(k <= x.size)
    breaks = run_kernel(x, k)
    assert_same_minimum(within_ss(classes(x, breaks)), brute_force_minimum(x, k), x)


def test_dp_reaches_the_brute_force_minimum_on_a_seeded_sample():
    """The same, over 200 seeded draws of 9 values (integers, so ties and exact equal totals occur)."""
    rng = np.random.default_rng(20240611)
    for _ in range(200):
        x = np.sort(rng.integers(0, 12, size=9).astype(np.float64))
        for k in range(1, 5):
            assert_same_minimum(within_ss(classes(x, run_kernel(x, k))), brute_force_minimum(x, k), x)


def test_kernel_equals_twin_on_hundreds_of_distinct_values():
    """Deep divide-and-conquer recursions (d ~ 400, many ties among rounded values) against the
    twin's full search, bit for bit."""
    rng = np.random.default_rng(7)
    for x in (np.sort(rng.gamma(2.0, 10.0, size=400)), np.sort(np.round(rng.normal(50.0, 15.0, size=600)))):
        for k in (2, 5, 9):
            np.testing.assert_array_equal(run_kernel(x, k), reference.jenks(x, k))


@pytest.mark.parametrize("home", ["kernel", "twin"])
def test_exactly_equal_totals_follow_the_tie_rule(home):
    """{2, 2} {3, 3, 3, 4, 4} and {2, 2, 3, 3, 3} {4, 4} both cost 6/5 exactly: the top class starts
    latest.  (The earlier running-update sums of squares rounded the two totals apart and chose
    the other one.)"""
    x = np.array([2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 4.0])
    breaks = run_kernel(x, 2) if home == "kernel" else reference.jenks(x, 2)
    assert breaks.tolist() == [2.0, 3.0, 4.0]


def test_tight_classes_far_from_zero_are_not_lost_to_cancellation():
    """Sums of squares from prefix sums: a float64 ``S2 - S1^2 / W`` would lose the spread of
    {1e6, 1e6 + 1e-6} (~1e-13) against 1e12; the double-double sums keep the optimum."""
    x = np.array([0.0, 1e-6, 3e-6, 1e6 - 3e-6, 1e6, 1e6 + 1e-6])
    for k in (2, 3, 4, 5):
        breaks = run_kernel(x, k)
        assert_same_minimum(within_ss(classes(x, breaks)), brute_force_minimum(x, k), x)
    assert run_kernel(x, 4).tolist() == [0.0, 1e-6, 3e-6, 1e6 - 3e-6, 1e6 + 1e-6]


@pytest.mark.timeout(120)
def test_a_hundred_thousand_units_is_fast():
    """10^5 distinct scores, k = 5: O(k d log d) (~0.2 s measured; the O(k d^2) DP took 80 s)."""
    scores = np.random.default_rng(0).gamma(2.0, 10.0, size=100_000)
    tiers = assign_tiers(scores, k=5)
    assert np.bincount(tiers).tolist() == [0, 2814, 10512, 21318, 31899, 33457]


def test_five_thousand_units():
    """n ~ 5,000 runs (seeded), gives well-formed breaks and beats equal-count classes."""
    x = np.sort(np.random.default_rng(0).gamma(2.0, 10.0, size=5000))
    breaks = run_kernel(x, 5)
    assert_well_formed(x, 5, breaks)
    quantile_classes = np.array_split(x, 5)
    assert within_ss(classes(x, breaks)) <= within_ss(quantile_classes)


# ============================================================================ engine.tiers

def test_assign_tiers_known_example_top_class_is_tier_1_and_missing_is_0():
    scores = np.array([1.0, 31.0, 2.0, nan, 11.0, 3.0, 30.0, 10.0, 12.0, inf, -inf])
    tiers = assign_tiers(scores, k=3)
    assert tiers.dtype == np.int64
    assert tiers.tolist() == [3, 1, 3, 0, 2, 3, 1, 2, 2, 0, 0]
    assert tier_breaks(scores, k=3).tolist() == [1.0, 3.0, 12.0, 31.0]


def test_default_k_is_five():
    scores = np.array([0.0, 1.0, 10.0, 11.0, 20.0, 21.0, 30.0, 31.0, 40.0, 41.0, 100.0])
    assert assign_tiers(scores).max() == 5
    assert tier_breaks(scores).size == 6


def test_k_above_distinct_values_is_reduced():
    """Three distinct scores and k = 5: three tiers (1 … 3), four breaks."""
    scores = [2.0, 2.0, nan, 9.0, 5.0, 9.0]
    assert assign_tiers(scores, k=5).tolist() == [3, 3, 0, 1, 2, 1]
    assert tier_breaks(scores, k=5).tolist() == [2.0, 2.0, 5.0, 9.0]


def test_constant_scores_are_one_tier():
    assert assign_tiers([0.5, 0.5, nan, 0.5], k=5).tolist() == [1, 1, 0, 1]


def test_no_present_scores():
    assert assign_tiers([nan, inf], k=3).tolist() == [0, 0]
    assert assign_tiers(np.empty(0), k=3).tolist() == []
    assert tier_breaks([nan, nan], k=3).shape == (0,)


def test_input_is_not_modified():
    scores = np.array([3.0, nan, 1.0, 2.0])
    assign_tiers(scores, k=2)
    np.testing.assert_array_equal(scores, [3.0, nan, 1.0, 2.0])


@st.composite
def scores_and_permutation(draw):
    values = draw(st.lists(st.one_of(ELEMENTS, st.just(nan), st.just(inf)), min_size=0, max_size=25))
    permutation = draw(st.permutations(range(len(values))))
    return np.array(values, dtype=np.float64), np.array(permutation, dtype=np.int64)


@given(scores_and_permutation(), st.integers(1, 6))
def test_assign_tiers_properties(data, k):
    """Permutation equivariance, ties share a tier, higher score -> same or better tier, tiers 1 … m
    all used, missing -> 0, the breaks delimit the tiers, kernel == twin."""
    scores, permutation = data
    tiers = assign_tiers(scores, k)
    np.testing.assert_array_equal(assign_tiers(scores[permutation], k), tiers[permutation])
    np.testing.assert_array_equal(assign_tiers(scores, k, use_reference=True), tiers)

    present = np.isfinite(scores)
    assert np.all(tiers[~present] == 0)
    breaks = tier_breaks(scores, k)
    np.testing.assert_array_equal(tier_breaks(scores, k, use_reference=True), breaks)
    n_classes = min(k, np.unique(scores[present]).size)
    assert breaks.size == (n_classes + 1 if n_classes else 0)
    assert sorted(set(tiers[present].tolist())) == list(range(1, n_classes + 1))
    for i, j in itertools.product(np.flatnonzero(present), repeat=2):
        if scores[i] == scores[j]:
            assert tiers[i] == tiers[j]
        elif scores[i] > scores[j]:
            assert tiers[i] <= tiers[j]
    for t in range(1, n_classes + 1):
        members = scores[tiers == t]
        low, high = breaks[n_classes - t], breaks[n_classes - t + 1]
        assert np.all(members <= high)
        assert np.all(members > low) or t == n_classes


# ============================================================================ errors

@pytest.mark.parametrize("k", [0, -3])
def test_k_below_one_is_a_schema_error(k):
    with pytest.raises(SchemaError, match=rf"k must be at least 1, got k={k}\. Fix: pass k >= 1"):
        assign_tiers([1.0, 2.0], k=k)
    with pytest.raises(SchemaError, match="at least 1"):
        tier_breaks([1.0, 2.0], k=k)


@pytest.mark.parametrize("k", [2.0, "5", True, None])
def test_k_not_an_integer_is_a_schema_error(k):
    with pytest.raises(SchemaError, match=r"k must be an integer, got .*Fix: pass a whole number of tiers"):
        assign_tiers([1.0, 2.0], k=k)


def test_numpy_integer_k_is_accepted():
    assert assign_tiers([1.0, 2.0, 9.0], k=np.int64(2)).tolist() == [2, 2, 1]


def test_unknown_method_is_a_schema_error():
    with pytest.raises(SchemaError, match=r"unknown tier method 'kmeans'\. Fix: use one of 'jenks'"):
        assign_tiers([1.0, 2.0], k=2, method="kmeans")


def test_two_dimensional_scores_are_a_data_error():
    with pytest.raises(DataError, match=r"one-dimensional .* got shape \(2, 2\)\. Fix: pass a single score column"):
        assign_tiers(np.ones((2, 2)), k=2)


@pytest.mark.parametrize("scale", [1e141, -1e150, 1e300])
def test_scores_too_large_for_the_sums_of_squares_are_a_data_error(scale):
    """Beyond ±1e140 the double-double sums overflow (at 1e150 the breaks came out wrong, silently)."""
    scores = np.array([0.0, 1.0, 2.0, 10.0, 11.0, 12.0, 30.0, 31.0]) * scale
    with pytest.raises(DataError, match=r"scores as large as .* cannot be classified exactly .*beyond \|score\| = "
                                        r"1e\+140.*Fix: rescale the scores"):
        assign_tiers(scores, k=3)


def test_scores_up_to_the_bound_are_classified():
    scores = np.array([0.0, 1.0, 2.0, 10.0, 11.0, 12.0, 30.0, 31.0]) * 1e138
    assert tier_breaks(scores, k=3).tolist() == [0.0, 2e138, 12e138, 31e138]


def test_non_numeric_scores_are_a_data_error():
    with pytest.raises(DataError, match=r"scores must be numeric .*Fix: pass one float score per unit"):
        assign_tiers(["a", "b"], k=2)



# ---------------------------------------------------------------------------- quantile tiers (groups by rank)

QUANTILE_EDGE = {
    "distinct": [5.0, 1.0, 4.0, 2.0, 3.0, 6.0, 7.0, 9.0, 8.0, 10.0],
    "ties": [3.0, 3.0, 3.0, 1.0, 2.0, 2.0, 5.0],
    "missing": [nan, 4.0, inf, 1.0, -inf, 2.0],
    "one_unit": [7.0],
    "all_missing": [nan, nan],
    "constant": [2.5] * 4,
}


@pytest.mark.parametrize("k", [1, 2, 3, 10, 20])
@pytest.mark.parametrize("case", list(QUANTILE_EDGE))
def test_quantile_kernel_equals_twin_and_the_formula(case, k):
    """quantile_tiers == its twin == ceil(rank · k / n) (n present, competition ranks), 0 = missing,
    on every edge case; assign_tiers(method="quantile") gives the same in both homes."""
    scores = np.array(QUANTILE_EDGE[case])
    ranks = reference.rank_desc(scores[:, None])[:, 0]
    kernel = tier_kernels.quantile_tiers(ranks, k, np.full(scores.shape, -1, np.int64))
    twin = reference.quantile_tiers(ranks, k)
    n = int(np.isfinite(scores).sum())
    expected = [math.ceil(r * k / n) if math.isfinite(r) else 0 for r in ranks]
    np.testing.assert_array_equal(kernel, expected)
    np.testing.assert_array_equal(twin, expected)
    np.testing.assert_array_equal(assign_tiers(scores, k, method="quantile"), expected)
    np.testing.assert_array_equal(assign_tiers(scores, k, method="quantile", use_reference=True), expected)


def test_deciles_of_a_hundred_units_hold_ten_each_best_first():
    scores = np.arange(100.0)[::-1].copy()  # unit 0 has the highest score
    tiers = assign_tiers(scores, 10, method="quantile")
    np.testing.assert_array_equal(tiers, np.repeat(np.arange(1, 11), 10))


def test_quantile_ties_share_the_better_group_and_may_leave_one_empty():
    # ranks 1, 1, 1, 4: with k = 4 the three tied units all get ceil(1 · 4 / 4) = 1; groups 2 and 3 are empty
    tiers = assign_tiers([5.0, 5.0, 5.0, 1.0], 4, method="quantile")
    np.testing.assert_array_equal(tiers, [1, 1, 1, 4])


def test_quantile_tiers_have_no_score_breaks():
    with pytest.raises(SchemaError, match=r"quantile tiers are groups of ranks, not score breaks"):
        tier_breaks([1.0, 2.0, 3.0], 2, method="quantile")


@given(st.lists(st.one_of(st.integers(-20, 20).map(float), st.just(nan)), min_size=1, max_size=60),
       st.integers(1, 12), st.randoms(use_true_random=False))
def test_quantile_tiers_properties(values, k, random):
    """Kernel == twin; tiers follow the ranks (a better score never gets a worse tier); tied scores share a
    tier; no tier holds more than ceil(n / k) units unless ties straddle its boundary; permuting the
    units permutes the tiers."""
    scores = np.array(values)
    tiers = assign_tiers(scores, k, method="quantile")
    np.testing.assert_array_equal(tiers, assign_tiers(scores, k, method="quantile", use_reference=True))
    present = np.isfinite(scores)
    assert (tiers[~present] == 0).all() and ((tiers[present] >= 1) & (tiers[present] <= k)).all()
    s, t = scores[present], tiers[present]
    for i in range(s.size):
        assert (t[s > s[i]] <= t[i]).all() and (t[s == s[i]] == t[i]).all()
    if np.unique(s).size == s.size and s.size:
        assert np.bincount(t).max() <= math.ceil(s.size / k)
    order = list(range(scores.size))
    random.shuffle(order)
    np.testing.assert_array_equal(assign_tiers(scores[order], k, method="quantile"), tiers[order])
