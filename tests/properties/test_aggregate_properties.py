"""Hypothesis properties of the aggregation kernels (engine.kernels.aggregate), the aggregation stage
(engine.stages.aggregate with Framework.compile) and the ranking kernel (engine.kernels.rank).

Components are normalised-looking values in [1e-3, 1e3] plus exact zeros (and negatives where the
policy is under test), so that no power x**p with |p| <= 3 overflows.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from engine.kernels import aggregate as kernels
from engine.kernels import rank as rank_kernels
from engine.kernels import reference
from engine.schema import framework_from_dict
from engine.stages.aggregate import aggregate
from tests.strategies import (
    compiled_trees,
    component_matrices,
    distinct_integer_matrices,
    finite_floats,
    integer_matrices,
    matrices,
    weight_vectors,
)

#: (kernel name, exponent p or None); generalised is drawn at several exponents.
METHODS = [("arithmetic", None), ("geometric", None), ("harmonic", None), ("copeland", None),
           *[("generalised", p) for p in (-2.0, -1.0, 0.0, 0.5, 1.0, 3.0)]]
METHOD_IDS = [n if p is None else f"{n}-p={p}" for n, p in METHODS]
EXACT = ("arithmetic", "harmonic", "copeland")
COVERAGE = st.sampled_from([0.0, 0.25, 0.5, 2 / 3, 1.0])


def run(name: str, values: np.ndarray, weights: np.ndarray, p, min_coverage: float = 0.0) -> np.ndarray:
    args = (values, weights) + (() if p is None else (p,)) + (min_coverage,)
    return getattr(kernels, name)(*args, np.empty(values.shape[0]))


def twin(name: str, values: np.ndarray, weights: np.ndarray, p, min_coverage: float = 0.0) -> np.ndarray:
    return getattr(reference, name)(values, weights, *(() if p is None else (p,)), min_coverage)


@st.composite
def node_inputs(draw, nonnegative: bool = True, **kwargs):
    """(values (n_units, k), weights (k,) summing to 1) for one aggregation node."""
    values = draw(component_matrices(nonnegative=nonnegative, **kwargs))
    return values, draw(weight_vectors(values.shape[1]))


# ----------------------------------------------------------------------------- kernel == twin

@pytest.mark.parametrize(("name", "p"), METHODS, ids=METHOD_IDS)
@given(inputs=node_inputs(nonnegative=False), min_coverage=COVERAGE)
def test_kernel_equals_twin(name, p, inputs, min_coverage):
    """Each aggregation kernel equals its twin (NaN positions exactly) on random rows with zeros,
    negatives, NaN/±inf and any coverage threshold; exact except exp/log/pow (rtol 1e-12)."""
    values, weights = inputs
    expected = twin(name, values, weights, p, min_coverage)
    actual = run(name, values, weights, p, min_coverage)
    if name in EXACT:
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=0)


@given(data=st.data())
def test_aggregate_tree_equals_twin(data):
    """aggregate_tree == reference.aggregate_tree on random trees (mixed methods, exponents and
    coverage thresholds) and random indicator values; indicator columns are not modified."""
    indicators = data.draw(component_matrices(min_indicators=1, max_indicators=6), label="indicators")
    tree = data.draw(compiled_trees(indicators.shape[1]), label="tree")
    values = np.full((indicators.shape[0], indicators.shape[1] + tree["method"].size), np.nan)
    values[:, : indicators.shape[1]] = indicators
    expected = reference.aggregate_tree(values, **tree)
    actual = kernels.aggregate_tree(values.copy(), **tree)
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(actual[:, : indicators.shape[1]], indicators)


# ----------------------------------------------------------------------------- equivariance and invariances

@pytest.mark.parametrize(("name", "p"), METHODS, ids=METHOD_IDS)
@given(data=st.data())
def test_permuting_units_permutes_scores(name, p, data):
    """aggregate(values[perm]) == aggregate(values)[perm], Copeland included (its score is a sum of
    ±1 over opponents, exact in any order)."""
    values, weights = data.draw(node_inputs(), label="inputs")
    min_coverage = data.draw(COVERAGE, label="min_coverage")
    perm = np.array(data.draw(st.permutations(range(values.shape[0])), label="perm"), dtype=np.int64)
    np.testing.assert_array_equal(run(name, values[perm], weights, p, min_coverage),
                                  run(name, values, weights, p, min_coverage)[perm])


@pytest.mark.parametrize(("name", "p"), [("arithmetic", None), ("geometric", None), ("harmonic", None),
                                         *[("generalised", p) for p in (-2.0, 0.5, 1.0, 3.0)]],
                         ids=["arithmetic", "geometric", "harmonic", *[f"generalised-p={p}" for p in (-2, 0.5, 1, 3)]])
@given(data=st.data())
def test_mean_of_equal_components_is_that_component(name, p, data):
    """A unit whose present components all equal c scores c (relative 1e-12), whatever the weights
    and wherever its missing components are."""
    k = data.draw(st.integers(1, 6), label="k")
    c = data.draw(st.one_of(st.just(0.0), finite_floats(1e-3, 1e3)), label="c")
    present = data.draw(st.lists(st.booleans(), min_size=k, max_size=k).filter(any), label="present")
    row = np.where(present, c, np.nan).reshape(1, k)
    weights = data.draw(weight_vectors(k), label="weights")
    np.testing.assert_allclose(run(name, row, weights, p), [c], rtol=1e-12, atol=0)


@pytest.mark.parametrize(("name", "p"), [m for m in METHODS if m[0] != "copeland"],
                         ids=[i for i in METHOD_IDS if i != "copeland"])
@given(inputs=node_inputs(), scale=finite_floats(1e-3, 1e3))
def test_weights_scaled_by_a_constant_change_nothing(name, p, inputs, scale):
    """Means renormalise over present components, so weights c*w give the scores of w (rtol 1e-12)."""
    values, weights = inputs
    np.testing.assert_allclose(run(name, values, scale * weights, p), run(name, values, weights, p), rtol=1e-12, atol=0)


@given(inputs=node_inputs(nonnegative=False), scale=st.sampled_from([0.25, 2.0, 8.0, 1024.0]))
def test_copeland_weights_scaled_by_a_power_of_two_change_nothing(inputs, scale):
    """Copeland compares weight shares with 1/2; scaling by a power of two is exact, so scores are
    identical (other factors could move a share of exactly 1/2 by one ulp)."""
    values, weights = inputs
    np.testing.assert_array_equal(run("copeland", values, scale * weights, None),
                                  run("copeland", values, weights, None))


# ----------------------------------------------------------------------------- Copeland: exact outranking

def exact_copeland(values: np.ndarray, weights: list[Fraction]) -> list[Fraction | None]:
    """Copeland scores in exact rational arithmetic (min_coverage 0): i beats j when the weight of the
    components both have where i is ahead, plus half that of the ties, is more than half of the weight
    they both have; None for a unit with no present component."""
    rows = values.tolist()
    scored = [any(math.isfinite(v) for v in row) for row in rows]
    out: list[Fraction | None] = []
    for i, row_i in enumerate(rows):
        if not scored[i]:
            out.append(None)
            continue
        score = Fraction(0)
        for j, row_j in enumerate(rows):
            both = [k for k in range(len(row_i)) if math.isfinite(row_i[k]) and math.isfinite(row_j[k])]
            if j == i or not scored[j] or not both:
                continue
            total = sum(weights[k] for k in both)
            share = (sum(weights[k] for k in both if row_i[k] > row_j[k])
                     + sum(weights[k] for k in both if row_i[k] == row_j[k]) / 2) / total
            score += (share > Fraction(1, 2)) - (share < Fraction(1, 2))
        out.append(score)
    return out


@st.composite
def copeland_cases(draw) -> tuple[np.ndarray, list[Fraction]]:
    """Small integer tables (many ties, missing cells) and the weights a framework gives: equal (1/k, not
    exact in binary for k = 3, 5, 6, 7, 9, ...) or small integers (exact in binary)."""
    values = draw(integer_matrices(0, 2, max_units=6, max_indicators=9, missing=(np.nan,)))
    k = values.shape[1]
    if draw(st.booleans()):
        return values, [Fraction(1, k)] * k
    return values, [Fraction(w) for w in draw(st.lists(st.integers(1, 8), min_size=k, max_size=k))]


#: Issue 15 item 4: two units, six weights 1/6, a 3-3 split (both units got +1).
EVEN_SPLIT = np.array([[1.0, 1.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]])
UNIT = st.integers(0, 11)


@pytest.mark.parametrize("home", ["kernel", "twin"])
@given(case=copeland_cases())
@example(case=(EVEN_SPLIT, [Fraction(1, 6)] * 6))
@example(case=(np.array([[2.0, 2.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0, 1.0]]),
               [Fraction(1, 9)] * 9))
def test_copeland_equals_exact_rational_scores(home, case):
    """Kernel and twin equal the Copeland scores computed in exact rationals from the intended weights
    (1/k, or integers), passed as floats: a share of exactly 1/2 is a draw."""
    values, weights = case
    floats = np.array([float(w) for w in weights])
    actual = run("copeland", values, floats, None) if home == "kernel" else twin("copeland", values, floats, None)
    expected = [np.nan if s is None else float(s) for s in exact_copeland(values, weights)]
    np.testing.assert_array_equal(actual, expected)


@st.composite
def tie_cases(draw) -> tuple[np.ndarray, np.ndarray]:
    """Tables with few distinct values (many ties), negatives and missing cells, and any weights: random
    positive ones, or equal ones 1/k."""
    values = draw(integer_matrices(-2, 2, max_indicators=9))
    k = values.shape[1]
    return values, draw(st.one_of(weight_vectors(k), st.just(np.full(k, 1.0 / k))))


@pytest.mark.parametrize("home", ["kernel", "twin"])
@given(case=tie_cases(), min_coverage=COVERAGE, pair=st.tuples(UNIT, UNIT))
@example(case=(EVEN_SPLIT, np.full(6, 1 / 6)), min_coverage=0.0, pair=(0, 1))
def test_copeland_scores_sum_to_zero_and_swapping_two_units_swaps_their_scores(home, case, min_coverage, pair):
    """Each contest gives +1/-1 or 0/0, so the scores of a node sum to exactly zero (whatever the
    weights and ties); exchanging two units' data exchanges their scores and leaves the others."""
    values, weights = case
    score = run if home == "kernel" else twin
    scores = score("copeland", values, weights, None, min_coverage)
    assert np.nansum(scores) == 0.0
    i, j = (p % values.shape[0] for p in pair)
    swapped = values.copy()
    swapped[[i, j]] = values[[j, i]]
    expected = scores.copy()
    expected[[i, j]] = scores[[j, i]]
    np.testing.assert_array_equal(score("copeland", swapped, weights, None, min_coverage), expected)


def small_framework() -> object:
    """Index (arithmetic) over P1 (geometric: I1, I2, I3) and P2 (harmonic: I4, I5); minmax [0, 100]."""
    nodes = [{"id": "Index", "labels": {"en": "Index"}},
             {"id": "P1", "parent": "Index", "labels": {"en": "P1"}, "aggregation": {"method": "geometric"}},
             {"id": "P2", "parent": "Index", "labels": {"en": "P2"}, "aggregation": {"method": "harmonic"}}]
    for i, parent in enumerate(["P1", "P1", "P1", "P2", "P2"], start=1):
        nodes.append({"id": f"I{i}", "parent": parent, "labels": {"en": f"I{i}"}, "column": f"c{i}"})
    return framework_from_dict({"id": "small", "labels": {"en": "small"}, "nodes": nodes})


@given(data=st.data())
def test_stage_scores_invariant_to_scaling_all_weights(data):
    """engine.stages.aggregate with Framework.compile(weights=c*w) gives the scores of weights=w
    (compile renormalises within every parent; rtol 1e-12)."""
    framework = small_framework()
    ids = [n for n in framework.node_ids if n != "Index"]
    raw = data.draw(weight_vectors(len(ids), normalise=False), label="weights")
    scale = data.draw(finite_floats(1e-3, 1e3), label="scale")
    normalised = data.draw(component_matrices(min_indicators=5, max_indicators=5), label="normalised")
    tree = framework.compile(dict(zip(ids, raw, strict=True)))
    scaled = framework.compile(dict(zip(ids, scale * raw, strict=True)))
    np.testing.assert_allclose(aggregate(normalised, scaled), aggregate(normalised, tree), rtol=1e-12, atol=0)


# ----------------------------------------------------------------------------- means: bounds and ordering

@given(inputs=node_inputs())
def test_power_means_are_ordered_in_p_and_bounded(inputs):
    """For x >= 0: min <= M_-2 <= harmonic (M_-1) <= geometric (M_0) <= M_0.5 <= arithmetic (M_1) <= M_3
    <= max over the present components (relative slack 1e-12)."""
    values, weights = inputs
    means = [run("generalised", values, weights, -2.0), run("harmonic", values, weights, None),
             run("geometric", values, weights, None), run("generalised", values, weights, 0.5),
             run("arithmetic", values, weights, None), run("generalised", values, weights, 3.0)]
    scored = np.isfinite(values).any(axis=1)
    filled = np.where(np.isfinite(values), values, np.nan)
    low = np.full(values.shape[0], np.inf)
    high = np.full(values.shape[0], -np.inf)
    low[scored] = np.nanmin(filled[scored], axis=1)
    high[scored] = np.nanmax(filled[scored], axis=1)
    chain = [low, *means, high]
    for smaller, larger in itertools.pairwise(chain):
        np.testing.assert_array_equal(np.isfinite(smaller[scored]), True)
        assert np.all(smaller[scored] <= larger[scored] * (1 + 1e-12)), (smaller[scored], larger[scored])
    for mean in means:
        np.testing.assert_array_equal(np.isnan(mean), ~scored)


@given(inputs=node_inputs(nonnegative=False), min_coverage=COVERAGE)
def test_generalised_special_exponents(inputs, min_coverage):
    """generalised(p=1) == arithmetic to rtol 1e-13 (the power mean is computed scaled by the row
    maximum, so it is not the same float operations), p=0 == geometric bit for bit on x >= 0 rows;
    generalised(p=-1) == harmonic to rtol 1e-12 (negative rows are NaN in both)."""
    values, weights = inputs
    nonnegative = ~(values < 0).any(axis=1)
    arithmetic = run("arithmetic", values, weights, None, min_coverage)
    np.testing.assert_allclose(run("generalised", values, weights, 1.0, min_coverage)[nonnegative],
                               arithmetic[nonnegative], rtol=1e-13, atol=0)
    np.testing.assert_array_equal(run("generalised", values, weights, 0.0, min_coverage),
                                  run("geometric", values, weights, None, min_coverage))
    np.testing.assert_allclose(run("generalised", values, weights, -1.0, min_coverage),
                               run("harmonic", values, weights, None, min_coverage), rtol=1e-12, atol=0)


# ----------------------------------------------------------------------------- ranking

def rank_desc(x: np.ndarray) -> np.ndarray:
    return rank_kernels.rank_desc(np.ascontiguousarray(x), np.empty_like(x))


@given(x=matrices())
def test_rank_desc_equals_twin(x):
    """rank_desc == reference.rank_desc bit for bit on random data with NaN/±inf and ties."""
    np.testing.assert_array_equal(rank_desc(x), reference.rank_desc(x))


@given(data=st.data())
def test_rank_desc_permutation_equivariant(data):
    """rank_desc(x[perm]) == rank_desc(x)[perm]."""
    x = data.draw(integer_matrices(-5, 5), label="x")  # a small range: many ties
    perm = np.array(data.draw(st.permutations(range(x.shape[0])), label="perm"), dtype=np.int64)
    np.testing.assert_array_equal(rank_desc(x[perm]), rank_desc(x)[perm])


@given(x=integer_matrices(-5, 5))
def test_rank_desc_is_a_competition_ranking(x):
    """Per column: missing stays missing; ranks are integers in 1..n_present with minimum 1; for
    every rank r that occurs, exactly r - 1 units rank better and its tie group is exactly the units
    with the same value; a larger value always has a smaller rank."""
    ranks = rank_desc(x)
    for j in range(x.shape[1]):
        present = np.isfinite(x[:, j])
        np.testing.assert_array_equal(np.isnan(ranks[:, j]), ~present)
        r, v = ranks[present, j], x[present, j]
        if r.size == 0:
            continue
        assert r.min() == 1.0
        assert np.all((r >= 1) & (r <= r.size) & (r == np.floor(r)))
        for rank in np.unique(r):
            assert np.count_nonzero(r < rank) == rank - 1
            group = r == rank
            assert np.unique(v[group]).size == 1
            np.testing.assert_array_equal(group, v == v[group][0])
        assert not np.any((v[:, None] > v[None, :]) & (r[:, None] >= r[None, :]))


@given(x=distinct_integer_matrices())
def test_rank_desc_without_ties_is_a_permutation(x):
    """With distinct values the present ranks of every column are exactly 1..n_present, and the
    count of units with rank <= r is r."""
    ranks = rank_desc(x)
    for j in range(x.shape[1]):
        r = np.sort(ranks[np.isfinite(x[:, j]), j])
        np.testing.assert_array_equal(r, np.arange(1.0, r.size + 1.0))
        for rank in r:
            assert np.count_nonzero(r <= rank) == rank
