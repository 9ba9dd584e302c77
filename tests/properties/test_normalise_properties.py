"""Hypothesis properties of the normalisation kernels (engine.kernels.normalise via the registry
engine.stages.normalise.NORMALISERS).

Data for order and invariance properties is integer-valued so that every tie is a real tie and
the transformations used (a*x + b with a in {2, 0.5, 3}, exp/cube/arctan of small integers) are
exact or strictly increasing in floating point, never merging or splitting values.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.kernels import aggregate as aggregate_kernels
from engine.kernels import rank as rank_kernels
from engine.stages.normalise import NORMALISERS
from tests.strategies import (
    distinct_integer_matrices,
    finite_floats,
    fixed_params,
    integer_matrices,
    matrices,
    normalisation_params,
    weight_vectors,
)

METHODS = list(NORMALISERS)
#: Methods that separate distinct values (goalposts clamps outside its posts).
STRICT = ("minmax", "zscore", "rank", "borda", "percentile", "fraction_of_max", "distance_to_max",
          "distance_to_target")
#: Methods that depend on x only through the order of its values.
ORDINAL = ("rank", "borda", "percentile")


def normalise(name: str, x: np.ndarray, params: tuple) -> np.ndarray:
    """Run the registered kernel of ``name`` into a fresh ``out``."""
    return NORMALISERS[name].kernel(np.ascontiguousarray(x), *params, np.empty_like(x))


def data_for(name: str, **kwargs):
    """Integer-valued data valid for ``name``: fraction_of_max needs x >= 0 (validated by the schema)."""
    low = 0 if name == "fraction_of_max" else -1000
    return integer_matrices(low, 1000, **kwargs)


def assert_order(x: np.ndarray, out: np.ndarray, *, strict: bool, reverse: bool = False) -> None:
    """Within every column, x_i < x_k implies out_i <= out_k (``<`` if strict; ``>=``/``>`` if reverse)."""
    for j in range(x.shape[1]):
        present = np.isfinite(x[:, j])
        xs, ys = x[present, j], out[present, j]
        below = xs[:, None] < xs[None, :]
        if reverse:
            ys = -ys
        holds = (ys[:, None] < ys[None, :]) if strict else (ys[:, None] <= ys[None, :])
        bad = below & ~holds
        assert not bad.any(), f"column {j}: order broken for x = {xs[np.nonzero(bad)[0]]} vs {xs[np.nonzero(bad)[1]]}"


# ----------------------------------------------------------------------------- kernel == twin

@pytest.mark.parametrize("name", METHODS)
@given(data=st.data())
def test_kernel_equals_twin(name, data):
    """Every normalisation kernel equals its twin bit for bit (NaN cells included) on random data
    with NaN/±inf and random parameters."""
    elements = finite_floats(0.0) if name == "fraction_of_max" else None
    x = data.draw(matrices(elements), label="x")
    params = data.draw(normalisation_params(name, x), label="params")
    entry = NORMALISERS[name]
    np.testing.assert_array_equal(normalise(name, x, params), entry.reference(x, *params))


# ----------------------------------------------------------------------------- minmax range

@given(data=st.data())
def test_minmax_within_range_and_reaches_both_ends(data):
    """minmax output lies in [lo, hi]; a column with >= 2 distinct finite values reaches lo and hi
    exactly (integer lo < hi, so (hi - lo) + lo == hi has no rounding)."""
    x = data.draw(matrices(), label="x")
    lo, hi, fill = data.draw(normalisation_params("minmax", x), label="params")
    out = normalise("minmax", x, (lo, hi, fill))
    for j in range(x.shape[1]):
        present = np.isfinite(x[:, j])
        values = out[present, j]
        if np.unique(x[present, j]).size >= 2:
            assert values.min() == lo[j] and values.max() == hi[j]
            assert np.all((values >= lo[j]) & (values <= hi[j]))
        else:
            np.testing.assert_array_equal(values, np.full(values.shape, fill[j]))


# ----------------------------------------------------------------------------- order

@pytest.mark.parametrize("name", METHODS)
@given(data=st.data())
def test_order_preserved(name, data):
    """Larger x never gets a smaller normalised value; strictly larger for methods in STRICT."""
    x = data.draw(data_for(name), label="x")
    out = normalise(name, x, fixed_params(name, x))
    assert_order(x, out, strict=name in STRICT)


@pytest.mark.parametrize("name", [m for m in METHODS if m != "fraction_of_max"])
@given(data=st.data())
def test_direction_minus_one_reverses_order(name, data):
    """Normalising -x (direction -1; parameters derived from -x as the stage does) reverses the order
    of x: x_i < x_k implies out_i >= out_k (strictly for STRICT methods)."""
    x = data.draw(data_for(name), label="x")
    flipped = -x
    out = normalise(name, flipped, fixed_params(name, flipped))
    assert_order(x, out, strict=name in STRICT, reverse=True)


@given(x=integer_matrices())
def test_ascending_rank_of_negated_is_descending_rank(x):
    """rank(-x) (normalisation, ascending, ties at the minimum) == rank_desc(x) (ranking stage), ties included."""
    ties_min = (np.zeros(x.shape[1]),)
    np.testing.assert_array_equal(normalise("rank", -x, ties_min), rank_kernels.rank_desc(x, np.empty_like(x)))


@given(x=integer_matrices())
def test_average_ties_rank_is_the_mean_of_the_min_and_max_ranks(x):
    """rank with ties averaged == (min rank + max rank) / 2, max rank = n + 1 − min rank of −x; the
    ranks of each column sum to n (n + 1) / 2 over its n present values."""
    ones, zeros = (np.ones(x.shape[1]),), (np.zeros(x.shape[1]),)
    n = np.isfinite(x).sum(axis=0)
    low = normalise("rank", x, zeros)
    high = n + 1.0 - normalise("rank", -x, zeros)
    average = normalise("rank", x, ones)
    np.testing.assert_array_equal(average, (low + high) / 2.0)
    np.testing.assert_array_equal(np.nansum(average, axis=0), n * (n + 1) / 2.0)


# ----------------------------------------------------------------------------- invariances

AFFINE = st.tuples(st.sampled_from([2.0, 0.5, 3.0]), st.integers(-1000, 1000).map(float))


@pytest.mark.parametrize("name", ["minmax", "zscore", "rank"])
@given(x=integer_matrices(), affine=AFFINE)
def test_invariant_to_positive_affine_transformation(name, x, affine):
    """minmax, z-score and rank normalisation of a*x + b (a > 0) equal those of x (the transform is
    exact on integers; minmax/zscore compared with tolerance, rank exactly)."""
    a, b = affine
    params = fixed_params(name, x)
    before = normalise(name, x, params)
    after = normalise(name, a * x + b, params)
    if name == "rank":
        np.testing.assert_array_equal(after, before)
    else:
        np.testing.assert_allclose(after, before, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("name", ["minmax", "rank"])
@given(data=st.data(), affine=AFFINE)
def test_aggregate_ranks_invariant_to_affine_transformation_of_an_indicator(name, data, affine):
    """Ranks of the weighted arithmetic mean of normalised indicators do not change when one
    indicator is replaced by a*x + b (a > 0)."""
    x = data.draw(integer_matrices(min_indicators=2), label="x")
    j = data.draw(st.integers(0, x.shape[1] - 1), label="indicator")
    a, b = affine
    weights = data.draw(weight_vectors(x.shape[1]), label="weights")
    transformed = x.copy()
    transformed[:, j] = a * x[:, j] + b

    def ranks(table):
        scores = aggregate_kernels.arithmetic(normalise(name, table, fixed_params(name, table)), weights, 0.0,
                                              np.empty(table.shape[0]))
        return rank_kernels.rank_desc(scores.reshape(-1, 1), np.empty((table.shape[0], 1)))

    np.testing.assert_array_equal(ranks(transformed), ranks(x))


INCREASING = {"exp": lambda v: np.exp(v / 10.0), "cube": lambda v: v**3, "arctan": np.arctan}


@pytest.mark.parametrize("transform", list(INCREASING))
@pytest.mark.parametrize("name", ORDINAL)
@given(data=st.data())
def test_ordinal_methods_invariant_to_increasing_transformation(name, transform, data):
    """rank, Borda and percentile depend only on the order: f(x) for strictly increasing f gives
    exactly the same output (integers in [-200, 200] stay distinct under exp(x/10), x**3, arctan)."""
    x = data.draw(integer_matrices(-200, 200, missing=(np.nan,)), label="x")
    params = fixed_params(name, x)
    np.testing.assert_array_equal(normalise(name, INCREASING[transform](x), params), normalise(name, x, params))


# ----------------------------------------------------------------------------- permutation of units

@pytest.mark.parametrize("name", METHODS)
@given(data=st.data())
def test_permuting_units_permutes_output(name, data):
    """normalise(x[perm]) == normalise(x)[perm]: units are exchangeable.  Exact, except zscore whose
    sum of squares depends on the order (integer data keeps the mean exact; rtol 1e-12)."""
    if name == "zscore":
        x = data.draw(integer_matrices(), label="x")
    else:
        x = data.draw(matrices(finite_floats(0.0) if name == "fraction_of_max" else None), label="x")
    params = data.draw(normalisation_params(name, x), label="params")
    perm = np.array(data.draw(st.permutations(range(x.shape[0])), label="perm"), dtype=np.int64)
    permuted = normalise(name, x[perm], params)
    expected = normalise(name, x, params)[perm]
    if name == "zscore":
        np.testing.assert_allclose(permuted, expected, rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_array_equal(permuted, expected)


@given(x=distinct_integer_matrices())
def test_borda_of_negated_is_reflected(x):
    """With distinct values, borda(-x) = (n_present - 1) - borda(x) in every column."""
    n_present = np.isfinite(x).sum(axis=0)
    np.testing.assert_array_equal(normalise("borda", -x, ()), (n_present - 1.0) - normalise("borda", x, ()))
