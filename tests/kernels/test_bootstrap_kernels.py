"""The bootstrap kernels against their readable twins and against the stage kernels.

* ``normalise_column`` (statistics fitted on a weighted sample, applied to every unit) == its twin
  bit for bit over an edge catalogue (NaN first/last/all, constant, ties, ±inf, negatives, one
  unit, counts with zeros, a one-unit sample, an empty sample) crossed with all nine codes; with
  every count 1 it is the stage kernel of the same method, with the stage's own parameters
  (``NORMALISERS[name].params``); its documented semantics are checked explicitly too (a policy
  bug shared by both twins would pass a twin comparison): statistics of the sample only, ranks =
  1 + weighted count below, units outside the sample may leave [lo, hi], and normalising with
  multiplicities equals normalising the explicitly repeated sample.
* ``bootstrap_blocks`` == its twin (all six outputs exactly) in records, units and noise modes and
  in a combined study (perturbed weights, geometric/arithmetic aggregation, normalisation
  alternatives) on a miniature framework; bit-identical for 1 or 2 lanes and any block size.
"""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import engine
from engine.analysis.bootstrap_spec import compile_records, load_bootstrap_spec, sampling_draws
from engine.analysis.design import map_parameters, n_columns, replicate_uniforms
from engine.analysis.problem import build_problem
from engine.analysis.resampling import build_bootstrap_problem, evaluate, kernel_inputs
from engine.analysis.spec import resolve_factors
from engine.kernels import normalise as kernel
from engine.kernels import reference
from engine.schema import framework_from_dict
from engine.stages.normalise import NORMALISERS
from tests.analysis.conftest import city_framework
from tests.strategies import finite_floats

nan, inf = np.nan, np.inf
NAMES = list(NORMALISERS)
CODE = {name: k for k, name in enumerate(NAMES)}

# ============================================================================ normalise_column: catalogue

#: Six units per column (counts below have six entries too).
COLUMNS: dict[str, list[float]] = {
    "nan_first": [nan, 3.0, 1.0, 2.0, 5.0, 4.0],
    "nan_last": [3.0, 1.0, 2.0, 5.0, 4.0, nan],
    "all_nan": [nan] * 6,
    "constant": [2.5] * 6,
    "ties": [1.0, 3.0, 3.0, 2.0, 3.0, 1.0],
    "pos_inf": [inf, 1.0, 2.0, 5.0, 2.0, 0.5],
    "neg_inf": [1.0, -inf, 2.0, 5.0, 2.0, 0.5],
    "both_inf": [inf, -inf, 0.5, 0.25, 1.0, 0.75],
    "negative": [-5.0, -1.0, -3.0, -1.0, -0.5, -2.0],
    "zeros": [0.0, 0.0, 3.0, 1.5, 0.0, 6.0],
    "all_zero": [0.0] * 6,
    "non_integer": [0.1, 0.7, 0.3, 0.3, 1e-3, 12.5],
}

#: Integer multiplicities (what the unit bootstrap produces), as float64 like the kernel's input.
COUNTS: dict[str, list[float]] = {
    "ones": [1.0] * 6,
    "with_zeros": [0.0, 1.0, 2.0, 0.0, 1.0, 3.0],
    "first_last_out": [0.0, 2.0, 1.0, 1.0, 2.0, 0.0],
    "single_unit": [0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
    "single_unit_twice": [0.0, 0.0, 0.0, 0.0, 3.0, 0.0],
    "heavy": [6.0, 1.0, 0.0, 1.0, 1.0, 1.0],
    "none": [0.0] * 6,
}

#: (p0, p1, p2, cap) per method, with a NaN and a numeric value for the degenerate-case fill.
PARAMS: dict[str, list[tuple[float, float, float, bool]]] = {
    "minmax": [(0.0, 100.0, nan, False), (0.0, 100.0, 50.0, False), (-1.0, 1.0, 0.0, False)],
    "zscore": [(0.0, 1.0, nan, False), (10.0, 2.0, 10.0, False)],
    "rank": [(0.0, 0.0, 0.0, False), (1.0, 0.0, 0.0, False)],  # ties at the minimum, averaged
    "borda": [(0.0, 0.0, 0.0, False)],
    "percentile": [(1.0, nan, 0.0, False), (100.0, 50.0, 0.0, False)],
    "fraction_of_max": [(1.0, nan, 0.0, False), (100.0, 50.0, 0.0, False)],
    "distance_to_max": [(1.0, nan, 0.0, False), (100.0, 50.0, 0.0, False)],
    "distance_to_target": [(4.0, 100.0, 0.0, True), (4.0, 100.0, 0.0, False), (-2.0, 1.0, 0.0, True),
                           (0.75, 1.0, 0.0, False)],
    "goalposts": [(1.0, 4.0, 100.0, False), (-3.0, 0.5, 1.0, False)],
    "exponential": [(23.0, 0.0, 0.0, False), (0.5, 0.0, 0.0, False)],
}


def kernel_column(code, x, count, p0, p1, p2, cap):
    x = np.ascontiguousarray(x, np.float64)
    count = np.ascontiguousarray(count, np.float64)
    out = np.full(x.shape, -12345.0)  # a sentinel: every cell must be written
    result = kernel.normalise_column(code, x, count, p0, p1, p2, cap, out)
    assert result is out
    return out


def twin_column(code, x, count, p0, p1, p2, cap):
    return reference.normalise_column(code, np.asarray(x, np.float64), np.asarray(count, np.float64),
                                      p0, p1, p2, cap)


CATALOGUE = [pytest.param(name, column, id=f"{name}-{column}") for name in NAMES for column in COLUMNS]


@pytest.mark.parametrize(("name", "column"), CATALOGUE)
def test_normalise_column_equals_twin_on_edge_cases(name, column):
    """Kernel == twin bit for bit (NaN positions included) for every count pattern and parameter
    set; the inputs are not modified; non-finite values are NaN, and so is every cell when the
    sample is empty (except goalposts, which fit nothing)."""
    x = np.array(COLUMNS[column])
    for counts_name, counts in COUNTS.items():
        count = np.array(counts)
        for p in PARAMS[name]:
            expected = twin_column(CODE[name], x, count, *p)
            actual = kernel_column(CODE[name], x, count, *p)
            np.testing.assert_array_equal(actual, expected, err_msg=f"counts={counts_name} params={p}")
            np.testing.assert_array_equal(x, COLUMNS[column])
            np.testing.assert_array_equal(count, counts)
            assert np.isnan(actual[~np.isfinite(x)]).all()
            sample = (count > 0) & np.isfinite(x)
            if not sample.any() and name != "goalposts":
                assert np.isnan(actual).all()


def sorted_units(x) -> np.ndarray:
    """The units with a finite value by ascending value, ties by unit (what the bootstrap sorts once)."""
    finite = np.flatnonzero(np.isfinite(x))
    return finite[np.argsort(np.asarray(x)[finite], kind="stable")]


@pytest.mark.parametrize(("name", "column"), CATALOGUE)
def test_normalise_sorted_equals_twin_on_edge_cases(name, column):
    """With the column's units given in ascending order (the bootstrap's speed-up: min and max read
    from the first and last drawn unit, no sort for rank-based methods), the fit gives the twin's
    values bit for bit (ties, ±inf, -0.0 and an all-missing column included)."""
    for values in (COLUMNS[column], [-0.0 if v == 0.0 else v for v in COLUMNS[column]]):
        x = np.array(values)
        order = sorted_units(x)
        for counts_name, counts in COUNTS.items():
            count = np.array(counts)
            for p in PARAMS[name]:
                out = np.full(x.shape, -12345.0)
                kernel.normalise_sorted(CODE[name], x, count, order, *p, out)
                np.testing.assert_array_equal(out, twin_column(CODE[name], x, count, *p),
                                              err_msg=f"counts={counts_name} params={p}")


def test_normalise_sorted_zscore_of_a_huge_undrawn_value():
    """The sorted fit adds an undrawn unit's zero terms instead of branching on the draw; a unit so far
    out that its squared deviation overflows (0 · inf = NaN) must still leave the sums alone."""
    x = np.array([1e200, 1.0, 2.0, 4.0, -1e200])
    for counts in ([0.0, 1.0, 2.0, 1.0, 0.0], [1.0, 1.0, 0.0, 1.0, 0.0]):
        count = np.array(counts)
        for p in PARAMS["zscore"]:
            out = np.full(5, -12345.0)
            kernel.normalise_sorted(CODE["zscore"], x, count, sorted_units(x), *p, out)
            np.testing.assert_array_equal(out, twin_column(CODE["zscore"], x, count, *p))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(NAMES))
def test_property_normalise_sorted_equals_normalise_column(seed, name):
    """Random columns with ties and missing values and bootstrap multiplicities: the sorted fit is the
    plain one bit for bit."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    x = rng.integers(-4, 5, n) * rng.choice([0.5, 1.0, 0.1], n)
    x[rng.random(n) < 0.15] = np.nan
    count = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
    for p in PARAMS[name]:
        expected = kernel_column(CODE[name], x, count, *p)
        out = np.full(n, -12345.0)
        kernel.normalise_sorted(CODE[name], x, count, sorted_units(x), *p, out)
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("x", [[5.0], [-2.0], [nan], [inf]], ids=["one", "negative", "nan", "inf"])
@pytest.mark.parametrize("count", [[1.0], [0.0], [3.0]], ids=["once", "outside", "thrice"])
def test_normalise_column_one_unit(name, x, count):
    """A one-unit column: kernel == twin; a drawn finite unit gets the degenerate-case value."""
    for p in PARAMS[name]:
        actual = kernel_column(CODE[name], x, count, *p)
        np.testing.assert_array_equal(actual, twin_column(CODE[name], x, count, *p))
        if math.isfinite(x[0]) and count[0] > 0:
            p0, p1, p2, _ = p
            single = {"minmax": p2, "zscore": p2, "rank": 1.0 if p0 == 0.0 else (count[0] + 1) / 2,  # ties averaged
                      "borda": 0.0, "percentile": p1 if count[0] == 1 else 0.0, "fraction_of_max": p0,
                      "distance_to_max": p1}
            if name in single:
                np.testing.assert_array_equal(actual, [single[name]])


# ---------------------------------------------------------------------------- count all 1 == the stage kernel

def _framework_with_methods(direction: int) -> engine.Framework:
    """One indicator per normalisation method (target and goalposts in the indicator's units; the
    stage's parameter builder flips them for direction −1)."""
    methods = {
        "minmax": {"method": "minmax", "range": [0, 100]},
        "zscore": {"method": "zscore", "mean": 10, "sd": 2},
        "rank": {"method": "rank"},
        "rank_average": {"method": "rank", "ties": "average"},
        "borda": {"method": "borda"},
        "percentile": {"method": "percentile", "scale": 100},
        "fraction_of_max": {"method": "fraction_of_max", "scale": 100},
        "distance_to_max": {"method": "distance_to_max", "scale": 100},
        "distance_to_target": {"method": "distance_to_target", "target": 4, "scale": 100},
        "goalposts": {"method": "goalposts", "goalposts": [1, 4], "scale": 100},
        "exponential": {"method": "exponential", "c": 23},
    }
    nodes = [{"id": "Index", "labels": {"en": "Index"}}]
    for name, method in methods.items():
        nodes.append({"id": name, "parent": "Index", "labels": {"en": name}, "column": name,
                      "direction": direction, "normalisation": method})
    return framework_from_dict({"id": "methods", "labels": {"en": "methods"}, "data": {"unit": "unit"},
                                "nodes": nodes})


def _column_params(ind, midpoint: bool) -> tuple[float, float, float, bool]:
    """(p0, p1, p2, cap) of the column kernel from the stage's own parameter arrays."""
    values = NORMALISERS[ind.normalisation.name].params([ind], midpoint)
    if ind.normalisation.name == "distance_to_target":
        target, scale, cap = values
        return float(target[0]), float(scale[0]), 0.0, bool(cap[0])
    padded = [float(v[0]) for v in values] + [0.0] * (3 - len(values))
    return padded[0], padded[1], padded[2], False


@pytest.mark.parametrize("midpoint", [True, False], ids=["midpoint", "missing"])
@pytest.mark.parametrize("direction", [1, -1])
@pytest.mark.parametrize("column", list(COLUMNS))
def test_count_all_ones_equals_the_stage_kernel(column, direction, midpoint):
    """With every count 1, normalise_column is the stage's kernel of the same method bit for bit,
    given the parameters NORMALISERS[name].params builds (directions applied by the caller)."""
    framework = _framework_with_methods(direction)
    x = np.array(COLUMNS[column]) * direction
    ones = np.ones_like(x)
    for ind in framework.indicators:
        entry = NORMALISERS[ind.normalisation.name]
        params = entry.params([ind], midpoint)
        block = np.ascontiguousarray(x[:, None])
        expected = entry.kernel(block, *params, np.empty_like(block))[:, 0]
        actual = kernel_column(CODE[ind.normalisation.name], x, ones, *_column_params(ind, midpoint))
        np.testing.assert_array_equal(actual, expected, err_msg=ind.id)


# ---------------------------------------------------------------------------- documented semantics

def test_minmax_is_fitted_on_the_sample_and_applied_to_every_unit():
    """min = 2, max = 4 over the drawn units only; the undrawn units 1 and 10 leave [0, 100]."""
    x = np.array([1.0, 2.0, 3.0, 4.0, 10.0, nan])
    count = np.array([0.0, 1.0, 2.0, 1.0, 0.0, 1.0])
    out = kernel_column(CODE["minmax"], x, count, 0.0, 100.0, nan, False)
    np.testing.assert_array_equal(out, [-50.0, 0.0, 50.0, 100.0, 400.0, nan])
    np.testing.assert_array_equal(twin_column(CODE["minmax"], x, count, 0.0, 100.0, nan, False), out)


@pytest.mark.parametrize("home", ["kernel", "twin"])
def test_rank_family_counts_weighted_sample_values_strictly_below(home):
    """rank = 1 + Σ{count_k : x_k < v over the sample}: sample {1, 1, 2, 3, 3, 3} (x = 2 of unit 2
    is not drawn, x = 5 neither); Borda = rank − 1; percentile = (rank − 1)/(Σc − 1)·scale."""
    x = np.array([1.0, 2.0, 2.0, 3.0, 5.0])
    count = np.array([2.0, 0.0, 1.0, 3.0, 0.0])
    run = kernel_column if home == "kernel" else twin_column
    ranks = np.array([1.0, 3.0, 3.0, 4.0, 7.0])
    np.testing.assert_array_equal(run(CODE["rank"], x, count, 0.0, 0.0, 0.0, False), ranks)
    np.testing.assert_array_equal(run(CODE["borda"], x, count, 0.0, 0.0, 0.0, False), ranks - 1.0)
    np.testing.assert_array_equal(run(CODE["percentile"], x, count, 10.0, nan, 0.0, False),
                                  (ranks - 1.0) / 5.0 * 10.0)  # the undrawn maximum gets 12 > scale


@pytest.mark.parametrize("home", ["kernel", "twin"])
def test_zscore_uses_the_weighted_sample_mean_and_sd(home):
    """Sample {1, 1, 3}: mean 5/3, sd² = (2·(4/9) + 16/9)/2 = 4/3; the undrawn 2 is still scored."""
    x = np.array([1.0, 2.0, 3.0])
    count = np.array([2.0, 0.0, 1.0])
    run = kernel_column if home == "kernel" else twin_column
    out = run(CODE["zscore"], x, count, 0.0, 1.0, nan, False)
    np.testing.assert_allclose(out, (x - 5.0 / 3.0) / math.sqrt(4.0 / 3.0), rtol=1e-15)


@pytest.mark.parametrize("home", ["kernel", "twin"])
def test_max_based_methods_use_the_sample_max(home):
    """fraction_of_max, distance_to_max and distance_to_target take max/min from the sample."""
    x = np.array([1.0, 2.0, 4.0, 8.0])
    count = np.array([0.0, 1.0, 1.0, 0.0])
    run = kernel_column if home == "kernel" else twin_column
    np.testing.assert_array_equal(run(CODE["fraction_of_max"], x, count, 1.0, nan, 0.0, False),
                                  [0.25, 0.5, 1.0, 2.0])
    np.testing.assert_array_equal(run(CODE["distance_to_max"], x, count, 1.0, nan, 0.0, False),
                                  [-0.5, 0.0, 1.0, 3.0])
    # target 3 above the sample min 2: (1 − (3 − v)/(3 − 2)), capped at 1
    np.testing.assert_array_equal(run(CODE["distance_to_target"], x, count, 3.0, 1.0, 0.0, True),
                                  [-1.0, 0.0, 1.0, 1.0])
    # target 2 at the sample min: every unit has reached it (scale)
    np.testing.assert_array_equal(run(CODE["distance_to_target"], x, count, 2.0, 5.0, 0.0, True), [5.0] * 4)


@pytest.mark.parametrize("home", ["kernel", "twin"])
def test_goalposts_do_not_depend_on_the_sample(home):
    x = np.array([0.0, 2.0, 5.0, nan])
    run = kernel_column if home == "kernel" else twin_column
    for count in ([1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 1.0]):
        np.testing.assert_array_equal(run(CODE["goalposts"], x, np.array(count), 1.0, 4.0, 100.0, False),
                                      [0.0, (2.0 - 1.0) / (4.0 - 1.0) * 100.0, 100.0, nan])


def test_non_finite_values_with_a_count_are_not_in_the_sample():
    """An inf with count 5 neither moves the max nor counts in the ranks."""
    x = np.array([1.0, inf, 3.0, -inf])
    count = np.array([1.0, 5.0, 1.0, 5.0])
    np.testing.assert_array_equal(kernel_column(CODE["minmax"], x, count, 0.0, 1.0, nan, False),
                                  [0.0, nan, 1.0, nan])
    np.testing.assert_array_equal(kernel_column(CODE["rank"], x, count, 0.0, 0.0, 0.0, False),
                                  [1.0, nan, 2.0, nan])


EXACT_REPEAT = ("minmax", "rank", "borda", "percentile", "fraction_of_max", "distance_to_max",
                "distance_to_target", "goalposts", "exponential")


@pytest.mark.parametrize("name", NAMES)
def test_multiplicities_equal_the_explicitly_repeated_sample(name):
    """Normalising with counts c = normalising the sample with unit i repeated c_i times (drawn units'
    values; the stage kernel on the repeated column).  zscore sums in a different order: 1e-13."""
    x = np.array([0.5, 3.0, 1.0, 3.0, 7.0, 2.0])
    count = np.array([2.0, 1.0, 0.0, 3.0, 1.0, 1.0])
    drawn = count > 0
    repeated = np.repeat(x, count.astype(np.int64))
    for p in PARAMS[name]:
        p0, p1, p2, cap = p
        stage = {"minmax": (np.array([p0]), np.array([p1]), np.array([p2])),
                 "zscore": (np.array([p0]), np.array([p1]), np.array([p2])),
                 "rank": (np.array([p0]),), "exponential": (np.array([p0]),), "borda": (),
                 "distance_to_target": (np.array([p0]), np.array([p1]), np.array([cap])),
                 "goalposts": (np.array([p0]), np.array([p1]), np.array([p2]))}.get(
                     name, (np.array([p0]), np.array([p1])))
        block = np.ascontiguousarray(repeated[:, None])
        expanded = NORMALISERS[name].kernel(block, *stage, np.empty_like(block))[:, 0]
        # the first occurrence of each drawn unit in the repeated column
        first = np.concatenate([[0], np.cumsum(count[drawn].astype(np.int64))[:-1]])
        actual = kernel_column(CODE[name], x, count, *p)[drawn]
        if name in EXACT_REPEAT:
            np.testing.assert_array_equal(actual, expanded[first])
        else:
            np.testing.assert_allclose(actual, expanded[first], rtol=1e-13, atol=1e-13)


# ---------------------------------------------------------------------------- Hypothesis property

@st.composite
def columns_and_counts(draw):
    n = draw(st.integers(1, 12))
    small = st.integers(-3, 3).map(float)  # ties are frequent
    values = st.one_of(finite_floats(-1e3, 1e3), small, st.sampled_from([nan, inf, -inf]))
    x = draw(hnp.arrays(np.float64, n, elements=values))
    count = draw(hnp.arrays(np.float64, n, elements=st.integers(0, 4).map(float)))
    return x, count


@given(data=columns_and_counts(), name=st.sampled_from(NAMES),
       p=st.tuples(finite_floats(-10, 10), finite_floats(-10, 10), st.one_of(st.just(nan), finite_floats(-10, 10)),
                   st.booleans()))
def test_property_normalise_column_equals_twin(data, name, p):
    x, count = data
    p0, p1, p2, cap = p
    if name == "goalposts" and p1 <= p0:
        p1 = p0 + 1.0  # the schema requires lower < upper
    actual = kernel_column(CODE[name], x, count, p0, p1, p2, cap)
    np.testing.assert_array_equal(actual, twin_column(CODE[name], x, count, p0, p1, p2, cap))
    assert np.isnan(actual[~np.isfinite(x)]).all()


# ============================================================================ bootstrap_blocks

N_UNITS = 10


def _records(seed: int = 4) -> pl.DataFrame:
    """A record table: every unit has 1–9 records (unit c009 exactly one, so its mean is missing in
    the replicates that do not draw it), a category, an amount and an integer."""
    rng = np.random.default_rng(seed)
    per_unit = [1 + (i * 7) % 9 for i in range(N_UNITS)]
    per_unit[-1] = 1
    units = np.repeat([f"c{i:03d}" for i in range(N_UNITS)], per_unit)
    n = len(units)
    return pl.DataFrame({"unit": units, "cat": rng.choice(["a", "b"], n),
                         "amount": np.round(rng.lognormal(0.0, 1.0, n), 2), "k": rng.integers(0, 5, n)})


RECORD_RULES = {"indicators": {"x0": {"stat": "count"}, "x1": {"stat": "mean", "column": "amount"},
                               "x2": {"stat": "sum", "column": "k", "where": {"column": "cat", "in": ["a"]}}}}


def _unit_table(records: pl.DataFrame, seed: int = 9) -> pl.DataFrame:
    """x0..x2 aggregated from the records as RECORD_RULES says; x3..x5 fixed (lognormal)."""
    agg = records.group_by("unit").agg(
        pl.len().cast(pl.Float64).alias("x0"), pl.col("amount").mean().alias("x1"),
        (pl.col("k") * (pl.col("cat") == "a")).sum().cast(pl.Float64).alias("x2")).sort("unit")
    rng = np.random.default_rng(seed)
    return agg.with_columns(*(pl.Series(f"x{j}", rng.lognormal(0.0, 1.0, N_UNITS)) for j in (3, 4, 5)))


def resolve_unchecked(spec, framework):
    """resolve_factors without the refusal of impossible method combinations (issue 15 item 2): some
    cases keep zscore under geometric/harmonic means on purpose, so that the kernels' policy for a
    negative component (a missing score) stays compared with the twins'."""
    with mock.patch("engine.analysis.spec._check_combinations"):
        return resolve_factors(spec, framework)


def _problem(mode: str, extra: dict | None = None, missing: bool = False):
    """(BootstrapProblem, factors) of the miniature framework in ``mode``."""
    framework = framework_from_dict(city_framework())
    records = _records()
    data = _unit_table(records)
    if missing:
        data = data.with_columns(pl.when(pl.col("unit") == "c002").then(None).otherwise(pl.col("x4")).alias("x4"))
    doc = {"mode": mode, "records": RECORD_RULES, "noise": {"default": {"relative": 0.1}, "indicators": {
        "x5": {"absolute": 0.5}}}, "pairs": ["c000", "c001", "c002"], **(extra or {})}
    spec = load_bootstrap_spec(doc)
    nominal = engine.score(framework, data)
    uspec = spec.uncertainty_spec()
    factors = resolve_unchecked(uspec, nominal.framework)
    problem = build_problem(nominal, uspec, factors)
    design = compile_records(records, spec.records, nominal, problem.units, "unit") if mode == "records" else None
    return build_bootstrap_problem(problem, spec, factors, design)


def _inputs(bp, seed: int, n: int):
    factors = list(bp.factors)
    params = map_parameters(replicate_uniforms(seed, 0, n, n_columns(factors)), factors, bp.problem)
    draws = sampling_draws(seed, 0, n, bp.mode, n_records=bp.records.n_records if bp.records else 0,
                           n_units=bp.n_units, m_units=bp.m_units, n_noisy=len(bp.noise_index))
    return params, draws


def _twin(bp, params, draws, block: int):
    return reference.bootstrap_blocks(*kernel_inputs(bp, params, draws), block)


OUTPUTS = ("hist", "shift_hist", "pair_count", "moments", "shift_out", "ranks", "scores")
COMBINED = {"perturb": {"weights": [{"depth": 1, "noise": 0.25}, {"depth": 2, "noise": 0.25}],
                        "aggregation": [{"depth": 1, "choices": ["arithmetic", "geometric"]}],
                        "normalisation": {"choices": ["minmax", "rank", "zscore"]}},
            "targets": ["Index", "D1"]}
BLOCKS_CASES = {
    "records": ("records", None, False),
    "records m-out-of-n": ("records", {"records": {**RECORD_RULES, "m": "n^0.7"}}, False),
    "units": ("units", None, False),
    "units m-out-of-n": ("units", {"units": {"m": 4}}, False),
    "noise": ("noise", None, False),
    "noise untruncated": ("noise", {"noise": {"default": {"relative": 0.5}, "truncate": False}}, False),
    "records combined": ("records", COMBINED, False),
    "units combined": ("units", COMBINED, False),
    "noise combined": ("noise", COMBINED, False),
    "units with a missing value": ("units", None, True),
}


@pytest.mark.parametrize("case", list(BLOCKS_CASES))
def test_bootstrap_blocks_equals_twin(case):
    """All seven outputs (accumulators, ranks, scores) exactly equal (the kernel and the twin add the same floats in
    the same order), with one and with two lanes."""
    mode, extra, missing = BLOCKS_CASES[case]
    bp = _problem(mode, extra, missing)
    block, n = 8, 32
    params, draws = _inputs(bp, 21, n)
    twin = _twin(bp, params, draws, block)
    for lanes in (1, 2):
        out = evaluate(bp, params, draws, block, lanes, keep_ranks=True, keep_scores=True)
        for name, got, expected in zip(OUTPUTS, out, twin):
            np.testing.assert_array_equal(got, expected, err_msg=f"{name}, {lanes} lane(s)")
    assert twin[0].sum() == n * bp.n_units * len(bp.problem.targets)  # every (replicate, unit) counted once


@pytest.mark.parametrize("case", ["records", "units combined"])
def test_bootstrap_blocks_do_not_depend_on_lanes_or_block_size(case):
    """Histograms, pair counts, per-replicate shifts and ranks are identical for block sizes 4, 8,
    32 and 1 or 2 lanes; moments are per block (sums regrouped: equal to 1e-12)."""
    mode, extra, missing = BLOCKS_CASES[case]
    bp = _problem(mode, extra, missing)
    n = 32
    params, draws = _inputs(bp, 5, n)
    base = evaluate(bp, params, draws, 8, 1, keep_ranks=True)
    for block in (4, 8, 32):
        for lanes in (1, 2):
            out = evaluate(bp, params, draws, block, lanes, keep_ranks=True)
            for k in (0, 1, 2, 4, 5):
                np.testing.assert_array_equal(out[k], base[k], err_msg=f"{OUTPUTS[k]} block={block} lanes={lanes}")
            np.testing.assert_allclose(out[3].sum(axis=0), base[3].sum(axis=0), rtol=1e-12)
            if block == 8:
                np.testing.assert_array_equal(out[3], base[3])


def test_bootstrap_blocks_without_variation_give_nominal_ranks():
    """Records mode with every weight 1 (uniform 2³¹ lies between the thresholds of 0 and 1):
    every replicate's ranks are the nominal ranks, R_S = 0."""
    bp = _problem("records")
    n = 8
    params, draws = _inputs(bp, 1, n)
    draws.record_uniform[:] = np.uint32(2**31)
    assert bp.records.thresholds[0] <= 2**31 < bp.records.thresholds[1]
    out = evaluate(bp, params, draws, n, 1, keep_ranks=True)
    np.testing.assert_array_equal(out[5], np.broadcast_to(bp.problem.nominal_rank, out[5].shape))
    np.testing.assert_array_equal(out[4], 0.0)
    twin = _twin(bp, params, draws, n)
    np.testing.assert_array_equal(twin[5], out[5])


def test_noise_keeps_missing_values_missing_in_the_twin():
    """The twin's reading of the documented policy: noise on a missing value leaves it missing (the
    kernel's agreement with it is test_bootstrap_blocks_equals_twin[noise with a missing value])."""
    bp = _problem("noise", None, missing=True)
    x = reference._bootstrap_values(bp.base, np.ones((bp.n_units, 0)), np.zeros(0, np.int64), np.zeros((0, 1)),
                                    np.zeros(0, np.uint32), np.zeros(0, np.int64), 1.0, np.zeros(0, np.int64),
                                    np.zeros(0, np.int64), np.zeros(0, np.int64), bp.noise_index, bp.noise_sd,
                                    bp.noise_floor, np.ones((bp.n_units, len(bp.noise_index))))
    np.testing.assert_array_equal(np.isnan(x), np.isnan(bp.base))


def test_bootstrap_blocks_equals_twin_noise_with_a_missing_value():
    bp = _problem("noise", None, missing=True)
    block, n = 8, 16
    params, draws = _inputs(bp, 21, n)
    twin = _twin(bp, params, draws, block)
    out = evaluate(bp, params, draws, block, 1, keep_ranks=True, keep_scores=True)
    for name, got, expected in zip(OUTPUTS, out, twin):
        np.testing.assert_array_equal(got, expected, err_msg=name)
