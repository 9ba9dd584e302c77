"""Every Numba kernel against its readable twin in engine.kernels.reference, over an edge catalogue.

Kernels and twins are paired **by name**: a kernel listed in a kernel module's ``__all__`` without
a function of the same name in ``reference`` fails here.  Kernels write into ``out``; twins return
a new array.  Pure arithmetic done in the same order must agree bit for bit
(``assert_array_equal``, which also requires NaN in exactly the same cells); the exp/log/pow of the
geometric and generalised means is compared with ``rtol=1e-12, atol=0``.

Policies checked explicitly (not only kernel == twin, since a policy bug shared by both homes would
pass a twin comparison): non-finite = missing, ``fill`` for constant columns, coverage thresholds,
negative and zero components of geometric/harmonic/power means, Copeland scores.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import math
import pkgutil

import numpy as np
import pytest

import engine.kernels
from engine.kernels import aggregate as aggregate_kernels
from engine.kernels import normalise as normalise_kernels
from engine.kernels import rank as rank_kernels
from engine.kernels import reference
from engine.schema import AGGREGATION_CODES
from engine.stages.normalise import NORMALISERS
from tests.strategies import NORMALISATION_METHODS, fixed_params

nan, inf = np.nan, np.inf


def _kernel_modules():
    """Every public module of engine.kernels except the twins: the three core ones first, then any
    module added later (it is paired by name too, so a new kernel without a twin fails here)."""
    core = [normalise_kernels, aggregate_kernels, rank_kernels]
    found = sorted(info.name for info in pkgutil.iter_modules(engine.kernels.__path__)
                   if not info.name.startswith("_") and info.name != "reference")
    extra = [importlib.import_module(f"engine.kernels.{name}") for name in found]
    return core + [module for module in extra if module not in core]


KERNEL_MODULES = _kernel_modules()
KERNEL_NAMES = [(module.__name__.rsplit(".", 1)[-1], name) for module in KERNEL_MODULES for name in module.__all__]


def _kernel(name: str):
    for module in KERNEL_MODULES:
        if name in module.__all__:
            return getattr(module, name)
    raise KeyError(name)


# ============================================================================ pairing by name

@pytest.mark.parametrize(("module", "name"), KERNEL_NAMES, ids=[f"{m}.{n}" for m, n in KERNEL_NAMES])
def test_every_kernel_has_a_twin_of_the_same_name(module, name):
    """A kernel in a kernel module's __all__ has a reference function of the same name."""
    twin = getattr(reference, name, None)
    assert callable(twin), f"engine.kernels.{module}.{name} has no twin engine.kernels.reference.{name}"
    assert twin.__module__ == reference.__name__, f"reference.{name} is re-exported, not a readable twin"
    assert name in reference.__all__


def test_every_kernel_module_declares_its_kernels():
    """Each kernel module lists its kernels in __all__ (pairing reads it) and the three core modules
    are among them."""
    assert all(isinstance(getattr(module, "__all__", None), list | tuple) for module in KERNEL_MODULES)
    assert {"normalise", "aggregate", "rank"} <= {m.__name__.rsplit(".", 1)[-1] for m in KERNEL_MODULES}


def test_every_twin_has_a_kernel():
    """The reverse pairing: reference.__all__ names nothing but kernels."""
    kernel_names = {name for _, name in KERNEL_NAMES}
    assert set(reference.__all__) == kernel_names


@pytest.mark.parametrize(("module", "name"), KERNEL_NAMES, ids=[f"{m}.{n}" for m, n in KERNEL_NAMES])
def test_kernel_and_twin_take_the_same_parameters(module, name):
    """The kernel's signature is the twin's plus a trailing ``out`` (aggregate_tree works in place;
    the Monte Carlo kernels are single-lane and write several accumulators; the fused bootstrap
    kernel takes a lane count too)."""
    kernel = _kernel(name)
    kernel_params = list(inspect.signature(getattr(kernel, "py_func", kernel)).parameters)  # py_func: under JIT
    twin_params = list(inspect.signature(getattr(reference, name)).parameters)
    trailing = {"aggregate_tree": [],
                "montecarlo_scores": ["scores_out", "keys_out"],
                "montecarlo_accumulate": ["acc"],
                "rank_batch": ["moments", "ranks"],
                "count_bands": ["acc"],
                "count_windows": ["acc"],
                "bootstrap_blocks": ["n_lanes", "acc", "scores_out"]}
    expected = [*twin_params, *trailing.get(name, ["out"])]
    assert kernel_params == expected


def test_normaliser_registry_uses_the_named_kernel_and_twin():
    """engine.stages.normalise.NORMALISERS maps each method name to the kernel and twin of that name."""
    assert list(NORMALISERS) == [name for name in normalise_kernels.__all__ if name != "normalise_column"]
    for name, entry in NORMALISERS.items():
        assert entry.kernel is getattr(normalise_kernels, name)
        assert entry.reference is getattr(reference, name)


# ============================================================================ normalisation: edge catalogue

#: One column per edge case, six units each (so that they can also be stacked into one matrix).
EDGE_COLUMNS: dict[str, list[float]] = {
    "nan_first": [nan, 3.0, 1.0, 2.0, 5.0, 4.0],
    "nan_last": [3.0, 1.0, 2.0, 5.0, 4.0, nan],
    "nan_middle": [3.0, 1.0, nan, nan, 5.0, 4.0],
    "all_nan": [nan] * 6,
    "constant": [2.5] * 6,
    "constant_with_nan": [2.5, nan, 2.5, 2.5, -inf, 2.5],
    "ties": [1.0, 3.0, 3.0, 2.0, 3.0, 1.0],
    "pos_inf": [inf, 1.0, 2.0, 5.0, 2.0, 0.5],
    "neg_inf": [1.0, -inf, 2.0, 5.0, 2.0, 0.5],
    "both_inf": [inf, -inf, 0.5, 0.25, 1.0, 0.75],
    "one_present": [nan, inf, 4.0, -inf, nan, nan],
    "negative": [-5.0, -1.0, -3.0, -1.0, -0.5, -2.0],
    "zeros": [0.0, 0.0, 3.0, 1.5, 0.0, 6.0],
    "all_zero": [0.0] * 6,
    "direction_plus": [3.0, 1.0, 4.0, 1.0, 5.0, 9.0],
    "direction_minus": [-3.0, -1.0, -4.0, -1.0, -5.0, -9.0],  # the same indicator with direction -1
    "non_integer": [0.1, 0.7, 0.3, 0.3, 1e-3, 12.5],
}

EDGE_MATRICES: dict[str, np.ndarray] = {
    **{name: np.array(col, dtype=np.float64).reshape(-1, 1) for name, col in EDGE_COLUMNS.items()},
    "one_unit": np.array([[5.0, -1.0, nan, inf, 0.0]]),
    "two_units": np.array([[1.0, 4.0, nan, 2.0, 0.0], [2.0, 4.0, 3.0, -inf, -1.0]]),
    "two_units_tied": np.array([[7.0, 0.0], [7.0, 0.0]]),
    "mixed": np.ascontiguousarray(np.array(list(EDGE_COLUMNS.values()), dtype=np.float64).T),
}

#: Methods whose parameters include ``fill`` (the value of a constant column).
FILLED = ("minmax", "zscore", "percentile", "fraction_of_max", "distance_to_max")

NORMALISATION_CASES = [
    pytest.param(name, case, fill, id=f"{name}-{case}-fill={fill}")
    for name in NORMALISATION_METHODS
    for case in EDGE_MATRICES
    for fill in ((nan, 0.5) if name in FILLED else (nan,))
]


def run_kernel(name: str, x: np.ndarray, params: tuple) -> np.ndarray:
    """Call a normalisation or ranking kernel the way the stages do: fresh ``out``, C-contiguous input."""
    out = np.full_like(x, -12345.0)  # a sentinel: every cell must be written
    result = _kernel(name)(np.ascontiguousarray(x), *params, out)
    assert result is out
    return out


@pytest.mark.parametrize(("name", "case", "fill"), NORMALISATION_CASES)
def test_normalisation_kernel_equals_twin_on_edge_cases(name, case, fill):
    """Kernel == twin bit for bit (NaN cells included) on every edge case; the input is not modified."""
    x = EDGE_MATRICES[case].copy()
    params = fixed_params(name, x, fill)
    expected = getattr(reference, name)(x, *params)
    actual = run_kernel(name, x, params)
    np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(x, EDGE_MATRICES[case])


@pytest.mark.parametrize("case", list(EDGE_MATRICES))
@pytest.mark.parametrize("name", NORMALISATION_METHODS)
def test_normalisation_missing_policy(name, case):
    """With a numeric ``fill``, non-finite inputs (NaN, +inf, -inf) and only they give NaN."""
    x = EDGE_MATRICES[case]
    params = fixed_params(name, x, 0.5)
    missing = ~np.isfinite(x)
    np.testing.assert_array_equal(np.isnan(run_kernel(name, x, params)), missing)
    np.testing.assert_array_equal(np.isnan(getattr(reference, name)(x, *params)), missing)


#: (method, case) pairs where the statistic the method divides by is zero, so ``fill`` is written:
#: max - min (one distinct value), n - 1 (one present unit), max (fraction_of_max).  distance_to_target
#: has no degenerate case: a target at or below the minimum means every unit reached it (scale).
FILL_CASES = [
    *[(name, case) for name in ("minmax", "zscore", "distance_to_max")
      for case in ("constant", "constant_with_nan", "all_zero", "one_present")],
    ("percentile", "one_present"),
    ("fraction_of_max", "all_zero"),
]


@pytest.mark.parametrize("fill", [nan, 0.5, -3.0])
@pytest.mark.parametrize(("name", "case"), FILL_CASES)
def test_degenerate_column_gets_fill(name, case, fill):
    """A column whose divisor is zero gets ``fill`` in every present cell and NaN elsewhere (both
    homes)."""
    x = EDGE_MATRICES[case]
    present = np.isfinite(x)
    params = fixed_params(name, x, fill)
    expected = np.where(present, fill, nan)
    np.testing.assert_array_equal(run_kernel(name, x, params), expected)
    np.testing.assert_array_equal(getattr(reference, name)(x, *params), expected)


@pytest.mark.parametrize("home", ["kernel", "twin"])
def test_zscore_constant_column_with_inexact_mean_gets_fill(home):
    """zscore of [0.1, 0.1, 0.1] (a constant indicator, flagged as such by the stage) is ``fill``."""
    x = np.array([[0.1], [0.1], [0.1]])
    params = (np.zeros(1), np.ones(1), np.array([7.0]))
    out = run_kernel("zscore", x, params) if home == "kernel" else reference.zscore(x, *params)
    np.testing.assert_array_equal(out, [[7.0], [7.0], [7.0]])


def test_minmax_hand_computed():
    """minmax onto [0, 100] of [nan, 1, 3, 5, inf] is [nan, 0, 50, 100, nan] (both homes)."""
    x = np.array([[nan], [1.0], [3.0], [5.0], [inf]])
    params = (np.zeros(1), np.full(1, 100.0), np.full(1, nan))
    expected = np.array([[nan], [0.0], [50.0], [100.0], [nan]])
    np.testing.assert_array_equal(run_kernel("minmax", x, params), expected)
    np.testing.assert_array_equal(reference.minmax(x, *params), expected)


@pytest.mark.parametrize("name", ["rank", "borda", "percentile"])
def test_rank_family_hand_computed(name):
    """Ascending competition ranks, ties at the minimum: [1, 3, 3, 2, 3, 1] -> [1, 4, 4, 3, 4, 1];
    Borda = rank - 1; percentile = (rank - 1) / (n - 1)."""
    x = EDGE_MATRICES["ties"]
    ranks = np.array([[1.0], [4.0], [4.0], [3.0], [4.0], [1.0]])
    expected = {"rank": ranks, "borda": ranks - 1.0, "percentile": (ranks - 1.0) / 5.0}[name]
    params = fixed_params(name, x)
    np.testing.assert_array_equal(run_kernel(name, x, params), expected)
    np.testing.assert_array_equal(getattr(reference, name)(x, *params), expected)


@pytest.mark.parametrize("cap", [True, False])
@pytest.mark.parametrize("direction", [1.0, -1.0])
@pytest.mark.parametrize("target", [9.0, 4.0, 1.0], ids=["above_max", "inside", "at_min"])
def test_distance_to_target_equals_twin(cap, direction, target):
    """distance_to_target kernel == twin for targets above the maximum, inside the range (where the
    cap matters) and at the minimum (fill), with direction applied to x and target by the caller."""
    base = np.array([[3.0], [1.0], [nan], [4.0], [1.0], [5.0], [inf], [9.0]])
    if direction < 0:  # the stage flips both, so the "minimum" is then -9
        target = -{9.0: 1.0, 4.0: 4.0, 1.0: 9.0}[target]
    x = base * direction
    params = (np.array([target]), np.array([2.0]), np.array([cap]))
    np.testing.assert_array_equal(run_kernel("distance_to_target", x, params), reference.distance_to_target(x, *params))


@pytest.mark.parametrize("home", ["kernel", "twin"])
def test_distance_to_target_units_beyond_target_get_full_score(home):
    """With cap, every unit at or beyond the target scores ``scale``; order is never reversed."""
    x = np.array([[3.0], [5.0], [4.0]])
    params = (np.array([2.0]), np.ones(1), np.array([True]))
    out = run_kernel("distance_to_target", x, params) if home == "kernel" else reference.distance_to_target(x, *params)
    np.testing.assert_array_equal(out, [[1.0], [1.0], [1.0]])


# ============================================================================ ranking

@pytest.mark.parametrize("case", list(EDGE_MATRICES))
def test_rank_desc_equals_twin_on_edge_cases(case):
    """Descending competition ranks: kernel == twin bit for bit on every edge case."""
    x = EDGE_MATRICES[case]
    np.testing.assert_array_equal(run_kernel("rank_desc", x, ()), reference.rank_desc(x))


def test_rank_desc_hand_computed():
    """rank_desc of [2, nan, 5, 2, -inf, 7, 5] is [4, nan, 2, 4, nan, 1, 2] (ties share the minimum)."""
    x = np.array([[2.0], [nan], [5.0], [2.0], [-inf], [7.0], [5.0]])
    expected = np.array([[4.0], [nan], [2.0], [4.0], [nan], [1.0], [2.0]])
    np.testing.assert_array_equal(run_kernel("rank_desc", x, ()), expected)
    np.testing.assert_array_equal(reference.rank_desc(x), expected)


# ============================================================================ aggregation: edge catalogue

#: Rows of three components each: every row is one edge case for one unit.
AGGREGATION_ROWS = np.array([
    [10.0, 20.0, 30.0],   # all present
    [nan, 20.0, 30.0],    # NaN first
    [10.0, 20.0, nan],    # NaN last
    [10.0, nan, 30.0],    # NaN in the middle
    [nan, nan, nan],      # nothing present
    [inf, 20.0, -inf],    # non-finite = missing
    [nan, 5.0, nan],      # one of three present
    [0.0, 20.0, 30.0],    # a zero component
    [-10.0, 20.0, 30.0],  # a negative component
    [0.0, -10.0, 30.0],   # zero and negative
    [7.0, 7.0, 7.0],      # equal components
    [0.0, 0.0, 0.0],
    [10.0, 20.0, 30.0],   # duplicate of row 0 (Copeland ties)
    [30.0, 20.0, 10.0],   # reversed
    [20.0, 20.0, 20.0],
    [0.25, 1e3, 0.5],     # spread out
])

UNIT_SLICES = {"all_units": slice(None), "one_unit": slice(0, 1), "two_units": slice(12, 14)}
WEIGHTS = {"equal": np.full(3, 1.0 / 3.0), "unequal": np.array([0.5, 0.3, 0.2])}
COVERAGES = (0.0, 0.5, 1.0)
#: (method, p) pairs; p is None for methods without an exponent.
AGGREGATIONS = [("arithmetic", None), ("geometric", None), ("harmonic", None), ("copeland", None),
                *[("generalised", p) for p in (-2.0, -1.0, 0.0, 0.5, 1.0, 3.0)]]
AGGREGATION_IDS = [name if p is None else f"{name}-p={p}" for name, p in AGGREGATIONS]
EXACT = ("arithmetic", "harmonic", "copeland")  # pure arithmetic in the same order


def run_aggregation(name: str, values: np.ndarray, weights: np.ndarray, p, min_coverage: float,
                    home: str = "kernel") -> np.ndarray:
    args = (values, weights) + (() if p is None else (p,)) + (min_coverage,)
    if home == "twin":
        return getattr(reference, name)(*args)
    out = np.full(values.shape[0], -12345.0)
    result = getattr(aggregate_kernels, name)(*args, out)
    assert result is out
    return out


def assert_same(name: str, actual: np.ndarray, expected: np.ndarray) -> None:
    """Bit-exact for pure arithmetic; rtol 1e-12 for the exp/log/pow of geometric and power means."""
    if name in EXACT:
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("min_coverage", COVERAGES)
@pytest.mark.parametrize("weights", list(WEIGHTS))
@pytest.mark.parametrize("units", list(UNIT_SLICES))
@pytest.mark.parametrize(("name", "p"), AGGREGATIONS, ids=AGGREGATION_IDS)
def test_aggregation_kernel_equals_twin_on_edge_cases(name, p, units, weights, min_coverage):
    """Kernel == twin (NaN positions exactly) for every method × edge row × weights × coverage."""
    values = np.ascontiguousarray(AGGREGATION_ROWS[UNIT_SLICES[units]])
    before = values.copy()
    w = WEIGHTS[weights]
    expected = run_aggregation(name, values, w, p, min_coverage, "twin")
    actual = run_aggregation(name, values, w, p, min_coverage)
    assert_same(name, actual, expected)
    np.testing.assert_array_equal(values, before)


@pytest.mark.parametrize("home", ["kernel", "twin"])
@pytest.mark.parametrize(("name", "p"), AGGREGATIONS, ids=AGGREGATION_IDS)
def test_coverage_threshold(name, p, home):
    """A unit is scored iff its share of present components is >= min_coverage and > 0."""
    values = np.array([[nan, 5.0, nan], [nan, 5.0, 7.0], [1.0, 5.0, 7.0], [nan, nan, nan]])
    w = WEIGHTS["equal"]
    scored = {0.0: [True, True, True, False], 0.5: [False, True, True, False], 1.0: [False, False, True, False]}
    for min_coverage, expected in scored.items():
        out = run_aggregation(name, values, w, p, min_coverage, home)
        np.testing.assert_array_equal(np.isfinite(out), expected, err_msg=f"min_coverage={min_coverage}")


@pytest.mark.parametrize("home", ["kernel", "twin"])
def test_coverage_share_equal_to_threshold_is_kept(home):
    """A share of present components equal to min_coverage (7/25 == 0.28 in float64) keeps the unit."""
    values = np.full((1, 25), nan)
    values[0, :7] = 1.0
    out = run_aggregation("arithmetic", values, np.full(25, 1 / 25), None, 0.28, home)
    np.testing.assert_array_equal(out, [1.0])


@pytest.mark.parametrize("home", ["kernel", "twin"])
@pytest.mark.parametrize(("name", "p"), [("geometric", None), ("harmonic", None),
                                         *[("generalised", p) for p in (-2.0, -1.0, 0.0, 0.5, 1.0, 3.0)]])
def test_negative_component_gives_missing(name, p, home):
    """Means that need inputs >= 0 give NaN for a unit with a negative present component."""
    values = np.array([[-1.0, 4.0, 9.0], [-1e-3, nan, 2.0], [1.0, 4.0, 9.0]])
    out = run_aggregation(name, values, WEIGHTS["equal"], p, 0.0, home)
    np.testing.assert_array_equal(np.isnan(out), [True, True, False])


@pytest.mark.parametrize("home", ["kernel", "twin"])
@pytest.mark.parametrize(("name", "p"), [("geometric", None), ("harmonic", None),
                                         *[("generalised", p) for p in (-2.0, -1.0, 0.0, 0.5, 1.0, 3.0)]])
def test_zero_component(name, p, home):
    """A zero component gives 0 when p <= 0 (geometric p = 0, harmonic p = -1); for p > 0 the
    power mean is computed: (0.5 * 4^p)^(1/p) for components [0, 4] with equal weights."""
    values = np.array([[0.0, 4.0], [0.0, nan]])
    out = run_aggregation(name, values, np.array([0.5, 0.5]), p, 0.0, home)
    exponent = {"geometric": 0.0, "harmonic": -1.0}.get(name, p)
    first = 0.0 if exponent <= 0 else (0.5 * 4.0 ** exponent) ** (1.0 / exponent)
    np.testing.assert_allclose(out, [first, 0.0], rtol=1e-15, atol=0)


@pytest.mark.parametrize("home", ["kernel", "twin"])
def test_means_of_a_hand_computed_row(home):
    """[1, 4, 16] with equal weights: arithmetic 7, geometric 4, harmonic 16/7, p=2 sqrt(91)."""
    values = np.array([[1.0, 4.0, 16.0]])
    w = WEIGHTS["equal"]
    np.testing.assert_allclose(run_aggregation("arithmetic", values, w, None, 0.0, home), [7.0], rtol=1e-15)
    np.testing.assert_allclose(run_aggregation("geometric", values, w, None, 0.0, home), [4.0], rtol=1e-14)
    np.testing.assert_allclose(run_aggregation("harmonic", values, w, None, 0.0, home), [48.0 / 21.0], rtol=1e-15)
    np.testing.assert_allclose(run_aggregation("generalised", values, w, 2.0, 0.0, home), [math.sqrt(91.0)],
                               rtol=1e-15)


def test_generalised_tiny_component_twin_agrees_with_kernel():
    """Twin and kernel agree on a power mean with p < 0 and a tiny (but normal) component."""
    values, w = np.array([[1e-200, 1.0]]), np.array([0.5, 0.5])
    np.testing.assert_allclose(reference.generalised(values, w, -2.0, 0.0),
                               run_aggregation("generalised", values, w, -2.0, 0.0), rtol=1e-12, atol=0)


def test_generalised_tiny_component_does_not_overflow():
    """The kernel's power mean of representable inputs is accurate even when x**p overflows."""
    values, w = np.array([[1e-200, 1.0]]), np.array([0.5, 0.5])
    np.testing.assert_allclose(run_aggregation("generalised", values, w, -2.0, 0.0), [math.sqrt(2.0) * 1e-200],
                               rtol=1e-12)


@pytest.mark.parametrize("home", ["kernel", "twin"])
def test_copeland_hand_computed_with_ties(home):
    """Copeland with a tie in shares: [1,2] vs [2,1] draw (0); [3,3] beats both; an all-NaN unit is
    unscored -> [-1, -1, 2, nan]."""
    values = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 3.0], [nan, nan]])
    out = run_aggregation("copeland", values, np.array([0.5, 0.5]), None, 0.0, home)
    np.testing.assert_array_equal(out, [-1.0, -1.0, 2.0, nan])


@pytest.mark.parametrize("home", ["kernel", "twin"])
def test_copeland_hand_computed_with_missing(home):
    """Pairs are compared on the components both have; no common component = no contest.
    min_coverage=1 leaves the two complete units, u1 and u3, as each other's only opponent."""
    values = np.array([[1.0, nan], [2.0, 1.0], [nan, 3.0], [2.0, 2.0]])
    w = np.array([0.75, 0.25])
    # u0: vs u1 loses (1<2 on c0), vs u2 no contest, vs u3 loses            -> -2
    # u1: vs u0 wins, vs u2 loses (1<3 on c1), vs u3 tie on c0, loses c1 (share .375) -> -1
    # u2: vs u0 none, vs u1 wins, vs u3 wins (3>2 on c1)                     -> 2
    # u3: vs u0 wins, vs u1 wins (share .625), vs u2 loses                    -> 1
    np.testing.assert_array_equal(run_aggregation("copeland", values, w, None, 0.0, home), [-2.0, -1.0, 2.0, 1.0])
    np.testing.assert_array_equal(run_aggregation("copeland", values, w, None, 1.0, home), [nan, -1.0, nan, 1.0])


@pytest.mark.parametrize("home", ["kernel", "twin"])
@pytest.mark.parametrize(("k", "ahead", "behind"), [(6, 3, 3), (9, 4, 4), (9, 3, 3), (10, 5, 5), (3, 1, 1), (7, 3, 3)])
def test_copeland_even_split_is_a_draw(home, k, ahead, behind):
    """Issue 15 item 4: two units, k equally weighted components (weights 1/k as the framework
    compiles them), A ahead on ``ahead``, B on ``behind``, tied on the rest: a draw, 0 and 0.  A
    share (ahead + tied/2) / total formed in floating point landed above 1/2 for both with k = 6 or 9."""
    values = np.zeros((2, k))
    values[0, :ahead] = 1.0
    values[1, ahead:ahead + behind] = 1.0
    weights = np.full(k, 1.0) / k
    np.testing.assert_array_equal(run_aggregation("copeland", values, weights, None, 0.0, home), [0.0, 0.0])
    values[0, -1] = 2.0  # A now ahead on one more (or on the former tie): A wins
    np.testing.assert_array_equal(run_aggregation("copeland", values, weights, None, 0.0, home), [1.0, -1.0])


# ============================================================================ aggregation: the whole tree

#: Three levels of aggregates over eight indicators (columns 0-7); aggregates are columns 8-13 in
#: post-order: 8 = (0, 1), 9 = (2, 3), 10 = (4, 5, 6), 11 = (8, 9), 12 = (10, 7), root 13 = (11, 12).
TREE_CHILDREN = [[0, 1], [2, 3], [4, 5, 6], [8, 9], [10, 7], [11, 12]]
TREE_WEIGHTS = [[0.25, 0.75], [0.5, 0.5], [0.2, 0.3, 0.5], [0.6, 0.4], [0.5, 0.5], [0.7, 0.3]]
#: (method code, p, min_coverage) per aggregate; Copeland sits above exact nodes only, so a last-bit
#: difference of a pow cannot flip one of its comparisons.
TREE_DESIGNS = {
    "mixed": [(0, 1.0, 0.0), (1, 1.0, 0.5), (2, 1.0, 1.0), (3, 3.0, 0.0), (4, 1.0, 0.5), (0, 1.0, 0.0)],
    "mixed_rotated": [(2, 1.0, 0.5), (0, 1.0, 0.0), (4, 1.0, 0.0), (1, 1.0, 1.0), (3, -2.0, 0.5), (3, 0.5, 0.0)],
    "all_arithmetic": [(0, 1.0, 0.0)] * 6,
    "strict_coverage": [(0, 1.0, 1.0), (3, 0.0, 1.0), (3, -1.0, 1.0), (2, 1.0, 1.0), (0, 1.0, 1.0), (1, 1.0, 1.0)],
}


def flat_tree(design: str) -> dict[str, np.ndarray]:
    """The CSR arrays of engine.schema.CompiledTree for TREE_CHILDREN with the given design."""
    ptr = np.cumsum([0] + [len(c) for c in TREE_CHILDREN])
    codes, params, cover = zip(*TREE_DESIGNS[design], strict=True)
    return {
        "child_ptr": ptr.astype(np.int64),
        "child_idx": np.array([i for c in TREE_CHILDREN for i in c], np.int64),
        "child_weight": np.array([w for ws in TREE_WEIGHTS for w in ws], np.float64),
        "method": np.array(codes, np.int64),
        "param": np.array(params, np.float64),
        "min_coverage": np.array(cover, np.float64),
    }


def tree_values(n_units: int = 9) -> np.ndarray:
    """Normalised-looking indicator values in [0, 100] with zeros, missing cells and ties; aggregate
    columns NaN (the stage's layout)."""
    rng = np.random.default_rng(20240601)
    values = np.full((n_units, 14), nan)
    values[:, :8] = np.round(rng.uniform(0.0, 100.0, (n_units, 8)), 1)
    holes = rng.uniform(size=(n_units, 8)) < 0.2
    values[:, :8][holes] = nan
    values[0, :8] = nan          # a unit with nothing
    values[1, :8] = 50.0         # a unit with equal components
    values[2, [0, 3, 5]] = 0.0   # zero components
    values[3, 7] = inf           # non-finite = missing
    values[4, :8] = values[5, :8]  # two identical units (Copeland ties)
    return values


@pytest.mark.parametrize("n_units", [9, 1, 2])
@pytest.mark.parametrize("design", list(TREE_DESIGNS))
def test_aggregate_tree_equals_twin(design, n_units):
    """aggregate_tree (in place, post-order) == reference.aggregate_tree on a 3-level mixed tree;
    indicator columns are left untouched."""
    values = tree_values()[:n_units].copy()
    tree = flat_tree(design)
    expected = reference.aggregate_tree(values, **tree)
    actual = aggregate_kernels.aggregate_tree(values.copy(), **tree)
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(actual[:, :8], values[:, :8])
    assert np.isfinite(actual[:, 8:]).any() or n_units < 9


def test_aggregate_tree_composes_the_node_kernels():
    """Every aggregate column equals the named kernel applied to its children's columns (checks the
    post-order walk, the CSR slicing and the code -> method dispatch)."""
    values = tree_values()
    tree = flat_tree("mixed")
    result = aggregate_kernels.aggregate_tree(values.copy(), **tree)
    names = {code: name for name, code in AGGREGATION_CODES.items()}
    for a, children in enumerate(TREE_CHILDREN):
        code, p, cover = TREE_DESIGNS["mixed"][a]
        name = names[code]
        block = np.ascontiguousarray(result[:, children])
        node = run_aggregation(name, block, np.array(TREE_WEIGHTS[a]), p if name == "generalised" else None, cover)
        np.testing.assert_array_equal(result[:, 8 + a], node, err_msg=f"aggregate {a} ({name})")


@pytest.mark.parametrize(("name", "code"), list(AGGREGATION_CODES.items()))
@pytest.mark.parametrize("home", ["kernel", "twin"])
def test_aggregate_tree_dispatches_each_code(name, code, home):
    """A one-node tree with method code c computes exactly the kernel of that name (both homes)."""
    values = np.full((AGGREGATION_ROWS.shape[0], 4), nan)
    values[:, :3] = AGGREGATION_ROWS
    tree = {"child_ptr": np.array([0, 3], np.int64), "child_idx": np.array([0, 1, 2], np.int64),
            "child_weight": WEIGHTS["unequal"], "method": np.array([code], np.int64),
            "param": np.array([-2.0]), "min_coverage": np.array([0.5])}
    if home == "kernel":
        column = aggregate_kernels.aggregate_tree(values.copy(), **tree)[:, 3]
    else:
        column = reference.aggregate_tree(values, **tree)[:, 3]
    direct = run_aggregation(name, np.ascontiguousarray(AGGREGATION_ROWS), WEIGHTS["unequal"],
                             -2.0 if name == "generalised" else None, 0.5, home)
    np.testing.assert_array_equal(column, direct)


@pytest.mark.parametrize("case", list(EDGE_MATRICES))
def test_rank_ordered_equals_rank_desc_and_twin_on_edge_cases(case):
    """rank_ordered with NumPy's argsort of the negated finite values (NaN last; ties in any order)
    == rank_desc == the twin, column by column; the ranking stage uses it."""
    from engine.stages.rank import rank

    x = EDGE_MATRICES[case]
    for j in range(x.shape[1]):
        column = np.ascontiguousarray(x[:, j])
        keys = np.where(np.isfinite(column), -column, nan)
        stable, present = np.argsort(keys, kind="stable"), int(np.isfinite(column).sum())
        reversed_ties = np.concatenate([_reverse_ties(column, stable[:present]), stable[present:]])
        for order, dtype in itertools.product((np.argsort(keys), stable, reversed_ties), (np.float64, np.float32)):
            out = np.full(column.shape, -12345.0, dtype)  # float32: the pipeline's stored ranks
            assert rank_kernels.rank_ordered(column, order, out) is out
            np.testing.assert_array_equal(out, reference.rank_desc(x)[:, j])
            np.testing.assert_array_equal(out, reference.rank_ordered(column, order))
    np.testing.assert_array_equal(rank(x), reference.rank_desc(x))
    np.testing.assert_array_equal(rank(x, dtype=np.float32), reference.rank_desc(x))


def _reverse_ties(column, order):
    """``order`` with every run of equal values reversed (another valid input of rank_ordered)."""
    out, start = order.copy(), 0
    for pos in range(1, order.size + 1):
        if pos == order.size or column[order[pos]] != column[order[start]]:
            out[start:pos] = order[start:pos][::-1]
            start = pos
    return out
