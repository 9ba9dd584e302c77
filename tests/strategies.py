"""Hypothesis strategies shared by the kernel and property tests.

Everything here produces plain NumPy arrays in the kernels' layout: C-contiguous float64 matrices
of shape ``(n_units, n_indicators)``, weight vectors ``(k,)`` and the flat arrays of a compiled
aggregation tree (:class:`engine.schema.CompiledTree`).  Finite values are bounded (``±BOUND``) and
never subnormal so that no intermediate of a kernel or twin overflows; missing values are NaN or,
where asked, ±inf (the kernels treat every non-finite value as missing).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine import methods

__all__ = [
    "BOUND",
    "MISSING",
    "NORMALISATION_METHODS",
    "finite_floats",
    "matrices",
    "integer_matrices",
    "distinct_integer_matrices",
    "component_matrices",
    "weight_vectors",
    "normalisation_params",
    "compiled_trees",
    "fixed_params",
]

#: Largest magnitude of a finite test value.
BOUND = 1e6
#: The three spellings of "missing" (non-finite) a kernel must accept.
MISSING = (np.nan, np.inf, -np.inf)
#: Names of the normalisation methods, from the registry (engine.methods), in code order.
NORMALISATION_METHODS = methods.names(methods.NORMALISATION)


def finite_floats(min_value: float = -BOUND, max_value: float = BOUND) -> st.SearchStrategy[float]:
    """Finite, normal (or zero) floats in ``[min_value, max_value]``."""
    return st.floats(min_value=min_value, max_value=max_value, allow_nan=False, allow_infinity=False,
                     allow_subnormal=False)


@st.composite
def _shapes(draw, min_units, max_units, min_indicators, max_indicators):
    return (draw(st.integers(min_units, max_units)), draw(st.integers(min_indicators, max_indicators)))


@st.composite
def _with_missing(draw, values: np.ndarray, missing: tuple[float, ...]) -> np.ndarray:
    """Replace a drawn subset of cells by values drawn from ``missing``."""
    if not missing:
        return values
    mask = draw(hnp.arrays(np.bool_, values.shape))
    codes = draw(hnp.arrays(np.int64, values.shape, elements=st.integers(0, len(missing) - 1)))
    out = values.copy()
    out[mask] = np.asarray(missing, dtype=np.float64)[codes[mask]]
    return np.ascontiguousarray(out)


@st.composite
def matrices(draw, elements: st.SearchStrategy[float] | None = None, *, min_units: int = 1, max_units: int = 12,
             min_indicators: int = 1, max_indicators: int = 4,
             missing: tuple[float, ...] = MISSING) -> np.ndarray:
    """Float64 ``(n_units, n_indicators)`` matrices of ``elements`` (default: bounded finite floats)
    with a random subset of cells replaced by the non-finite values in ``missing`` (``()``: none)."""
    shape = draw(_shapes(min_units, max_units, min_indicators, max_indicators))
    values = draw(hnp.arrays(np.float64, shape, elements=elements if elements is not None else finite_floats()))
    return draw(_with_missing(values, missing))


def integer_matrices(low: int = -1000, high: int = 1000, **kwargs) -> st.SearchStrategy[np.ndarray]:
    """Integer-valued float matrices: arithmetic on them is exact, so ties are real ties."""
    return matrices(st.integers(low, high).map(float), **kwargs)


@st.composite
def distinct_integer_matrices(draw, low: int = -1000, high: int = 1000, *, min_units: int = 1, max_units: int = 12,
                              min_indicators: int = 1, max_indicators: int = 4,
                              missing: tuple[float, ...] = (np.nan,)) -> np.ndarray:
    """Integer-valued float matrices whose present values are distinct within every column."""
    n_units, n_indicators = draw(_shapes(min_units, max_units, min_indicators, max_indicators))
    columns = [draw(st.lists(st.integers(low, high), min_size=n_units, max_size=n_units, unique=True))
               for _ in range(n_indicators)]
    values = np.ascontiguousarray(np.array(columns, dtype=np.float64).T.reshape(n_units, n_indicators))
    return draw(_with_missing(values, missing))


def component_matrices(*, nonnegative: bool = True, **kwargs) -> st.SearchStrategy[np.ndarray]:
    """Children of one aggregation node (n_units, k): normalised-looking values in [1e-3, 1e3], exact
    zeros, and (unless ``nonnegative``) negative values, with missing cells.

    Tiny positive values are left out on purpose: with p < 0 the power mean of 1e-200 overflows
    (see tests/kernels/test_twins.py::test_generalised_tiny_component_does_not_overflow)."""
    magnitude = st.one_of(st.just(0.0), finite_floats(1e-3, 1e3))
    elements = magnitude if nonnegative else st.one_of(magnitude, magnitude.map(lambda v: -v))
    kwargs.setdefault("max_indicators", 5)
    return matrices(elements, **kwargs)


@st.composite
def weight_vectors(draw, k: int, *, normalise: bool = True) -> np.ndarray:
    """Positive weights ``(k,)`` in [0.01, 100], divided by their sum when ``normalise``."""
    raw = np.array(draw(st.lists(finite_floats(0.01, 100.0), min_size=k, max_size=k)), dtype=np.float64)
    return raw / raw.sum() if normalise else raw


# ----------------------------------------------------------------------------- normalisation parameters

@st.composite
def _fill(draw, n_cols: int) -> np.ndarray:
    """``fill`` for a constant column: NaN ("missing" policy) or a number ("midpoint" policy)."""
    return np.array(draw(st.lists(st.one_of(st.just(np.nan), finite_floats(-100, 100)),
                                  min_size=n_cols, max_size=n_cols)), dtype=np.float64)


@st.composite
def _column_params(draw, n_cols: int, elements) -> np.ndarray:
    return np.array(draw(st.lists(elements, min_size=n_cols, max_size=n_cols)), dtype=np.float64)


@st.composite
def _ordered_pairs(draw, n_cols: int, low: int = -1000, high: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Per-column integer (lo, hi) with lo < hi (the schema rejects lo >= hi)."""
    lo, hi = [], []
    for _ in range(n_cols):
        a = draw(st.integers(low, high - 1))
        lo.append(float(a))
        hi.append(float(draw(st.integers(a + 1, high))))
    return np.array(lo), np.array(hi)


@st.composite
def normalisation_params(draw, name: str, x: np.ndarray) -> tuple[np.ndarray, ...]:
    """Kernel parameters of normalisation ``name`` for the columns of ``x`` (everything between ``x``
    and ``out`` in the kernel's signature)."""
    n_cols = x.shape[1]
    scale = _column_params(n_cols, finite_floats(0.5, 100.0))
    if name == "minmax":
        lo, hi = draw(_ordered_pairs(n_cols))
        return lo, hi, draw(_fill(n_cols))
    if name == "zscore":
        return draw(_column_params(n_cols, finite_floats(-100, 100))), draw(scale), draw(_fill(n_cols))
    if name == "borda":
        return ()
    if name == "rank":  # ties: 0 = min, 1 = average (engine.methods.TIES)
        return (np.array(draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n_cols, max_size=n_cols))),)
    if name == "exponential":
        return (draw(_column_params(n_cols, finite_floats(1.0, 100.0))),)
    if name in ("percentile", "fraction_of_max", "distance_to_max"):
        return draw(scale), draw(_fill(n_cols))
    if name == "distance_to_target":
        # Integer targets: target - min is then never a tiny non-zero divisor.
        target = draw(_column_params(n_cols, st.integers(-int(BOUND), int(BOUND)).map(float)))
        cap = np.array(draw(st.lists(st.booleans(), min_size=n_cols, max_size=n_cols)), dtype=np.bool_)
        return target, draw(scale), cap
    if name == "goalposts":
        lo, hi = draw(_ordered_pairs(n_cols, -int(BOUND), int(BOUND)))
        return lo, hi, draw(scale)
    raise KeyError(name)


def fixed_params(name: str, x: np.ndarray, fill: float = np.nan) -> tuple[np.ndarray, ...]:
    """Deterministic kernel parameters for ``x``: defaults of the schema (minmax [0, 100], zscore
    (0, 1), scale 1), a target one above the largest finite value, goalposts at the column's 10th
    and 90th finite values (or [0, 1]), and ``fill`` for every column."""
    n_cols = x.shape[1]
    fills = np.full(n_cols, fill, dtype=np.float64)
    ones = np.ones(n_cols)
    if name == "minmax":
        return np.zeros(n_cols), np.full(n_cols, 100.0), fills
    if name == "zscore":
        return np.zeros(n_cols), ones, fills
    if name == "borda":
        return ()
    if name == "rank":  # ties averaged in every other column (engine.methods.TIES: 0 = min, 1 = average)
        return (np.arange(n_cols, dtype=np.float64) % 2,)
    if name == "exponential":
        return (np.full(n_cols, 23.0),)
    if name in ("percentile", "fraction_of_max", "distance_to_max"):
        return ones, fills
    finite = [x[np.isfinite(x[:, j]), j] for j in range(n_cols)]
    if name == "distance_to_target":
        target = np.array([col.max() + 1.0 if col.size else 1.0 for col in finite])
        return target, ones, np.ones(n_cols, dtype=np.bool_)
    if name == "goalposts":
        lo = np.array([np.sort(col)[col.size // 10] if col.size else 0.0 for col in finite])
        hi = np.array([np.sort(col)[(9 * col.size) // 10] if col.size else 1.0 for col in finite])
        hi = np.where(hi > lo, hi, lo + 1.0)
        return lo, hi, ones
    raise KeyError(name)


# ----------------------------------------------------------------------------- aggregation trees

@st.composite
def compiled_trees(draw, n_indicators: int, *, max_children: int = 3) -> dict[str, np.ndarray]:
    """A random aggregation tree over ``n_indicators`` leaves, flattened like
    :meth:`engine.schema.Framework.compile`: aggregates in post-order (every child column comes
    before its parent), CSR children, weights renormalised per parent, mixed methods, exponents and
    coverage thresholds.  Returns the keyword arguments of ``aggregate_tree`` after ``values``."""
    open_nodes = list(range(n_indicators))
    next_column = n_indicators
    ptr, idx, weight, method, param, cover = [0], [], [], [], [], []
    while len(open_nodes) > 1 or next_column == n_indicators:
        size = draw(st.integers(1, min(max_children, len(open_nodes))))
        picked = draw(st.lists(st.sampled_from(open_nodes), min_size=size, max_size=size, unique=True))
        open_nodes = [n for n in open_nodes if n not in picked] + [next_column]
        next_column += 1
        idx.extend(picked)
        weight.extend(draw(weight_vectors(size)))
        ptr.append(len(idx))
        method.append(draw(st.sampled_from(sorted(methods.codes(methods.AGGREGATION).values()))))
        param.append(draw(st.sampled_from([-2.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0])))
        cover.append(draw(st.sampled_from([0.0, 0.5, 1.0])))
    return {
        "child_ptr": np.array(ptr, np.int64),
        "child_idx": np.array(idx, np.int64),
        "child_weight": np.array(weight, np.float64),
        "method": np.array(method, np.int64),
        "param": np.array(param, np.float64),
        "min_coverage": np.array(cover, np.float64),
    }
