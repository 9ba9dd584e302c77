"""Variance-based (Sobol') sensitivity analysis: design, estimators and closed-form oracles.

Pure NumPy/SciPy, no I/O.  The same code path serves a generic ``model(U)`` (:func:`analyse`) and the
composite-indicator analysis, which builds the design with :func:`sobol_design` / :func:`ab_matrix`,
evaluates its kernels on the matrices and calls :func:`estimate`.

Design (Saltelli 2010): two N × d matrices A and B of U(0,1) inputs, and for each group i of columns
the matrix AB_i = A with the columns of group i taken from B; N·(k + 2) model runs for k groups
(N·(2k + 2) with the BA_i matrices for second-order indices).  A and B are the two halves of the
columns of one scrambled Sobol' sequence of dimension 2d, so the 2d columns are jointly
low-discrepancy.

Estimators, on outputs centred by the mean of all evaluations (as SALib does):

* first order (Saltelli et al. 2010):  ``S_i  = mean(y_B (y_ABi − y_A)) / V``
* total order (Jansen 1999):            ``ST_i = mean((y_A − y_ABi)²) / (2V)``
* second order (Saltelli 2002, the closed form of SALib's ``second_order``):
  ``S_ij = mean(y_BAi y_ABj − y_A y_B) / V − S_i − S_j``

with ``V`` the variance (ddof=0) of the pooled y_A and y_B.  References: Saltelli, Annoni, Azzini,
Campolongo, Ratto, Tarantola (2010), Comput. Phys. Commun. 181:259-270; Jansen (1999), Comput.
Phys. Commun. 117:35-43; Saltelli (2002), Comput. Phys. Commun. 145:280-297; SALib
``analyze/sobol.py`` (1.6.0), whose numbers :func:`estimate` reproduces to rounding on the same
sample matrices.

Closed-form test functions (:func:`ishigami`, :func:`sobol_g`) and their analytic indices are
shipped here as oracles, as SALib ships them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import qmc

from engine.errors import DataError, SchemaError, preview

__all__ = [
    "SobolIndices",
    "sobol_design",
    "ab_matrix",
    "estimate",
    "analyse",
    "ishigami",
    "ishigami_indices",
    "sobol_g",
    "sobol_g_indices",
]

#: Largest number of float64 values a bootstrap chunk materialises at once (~128 MB).
_BOOT_CHUNK_VALUES = 1 << 24


# ---------------------------------------------------------------------------------------------
# Design
# ---------------------------------------------------------------------------------------------

def sobol_design(n_base: int, n_columns: int, seed: int, *, scramble: bool = True
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Matrices A and B of a Sobol' design, the two column halves of one Sobol' sequence.

    Parameters
    ----------
    n_base : int
        Base sample size N (rows of A and B), at least 2.  Use a power of two: Sobol' points are
        balanced only for N = 2^m.
    n_columns : int
        Number d of U(0,1) input columns.
    seed : int
        Seed of the scrambling (``np.random.default_rng(seed)``).  ``seed=0`` is a real seed
        (unlike SALib, where 0 means "unseeded").
    scramble : bool
        Owen scrambling with digital shift (default).  Without it the sequence is deterministic and
        its first point is the origin.

    Returns
    -------
    A, B : ndarray of float64, shape (n_base, n_columns), values in [0, 1)
        ``A = X[:, :d]``, ``B = X[:, d:]`` with X the first N points of
        ``scipy.stats.qmc.Sobol(d=2d, scramble=scramble, rng=np.random.default_rng(seed))``.

    Raises
    ------
    SchemaError
        If ``n_base < 2`` or ``n_columns < 1``.

    Notes
    -----
    When N = 2^m the points come from ``random_base2(m)``.  Otherwise they are the first N points
    of the 2^ceil(log2 N) sequence, which is exactly what ``Sobol.random(N)`` returns, but without
    SciPy's balance warning; such a design is valid but loses the balance properties, so its
    estimates converge more slowly.
    """
    n_base = _check_n_base(n_base, "n_base")
    if int(n_columns) != n_columns or n_columns < 1:
        raise SchemaError(f"n_columns must be a positive integer, got {n_columns!r}",
                          fix="pass the number of U(0,1) input columns of the model (≥ 1)")
    n_columns = int(n_columns)
    engine = qmc.Sobol(d=2 * n_columns, scramble=scramble, rng=np.random.default_rng(seed))
    m = int(np.ceil(np.log2(n_base)))
    # The first N points of a Sobol' sequence do not depend on how many more are drawn.
    points = engine.random_base2(m)[:n_base]
    return (np.ascontiguousarray(points[:, :n_columns]), np.ascontiguousarray(points[:, n_columns:]))


def ab_matrix(A: np.ndarray, B: np.ndarray, columns: Sequence[int]) -> np.ndarray:
    """A copy of ``A`` whose ``columns`` are taken from ``B`` (a group of columns moves together).

    ``ab_matrix(A, B, group_i)`` is Saltelli's AB_i; ``ab_matrix(B, A, group_i)`` is BA_i.

    Raises
    ------
    SchemaError
        If A and B differ in shape or a column is outside ``0 .. d-1``.
    """
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    if A.ndim != 2 or A.shape != B.shape:
        raise SchemaError(f"A and B must be 2-D matrices of the same shape, got {A.shape} and {B.shape}",
                          fix="build them with sobol_design(n_base, n_columns, seed)")
    cols = _check_columns(columns, A.shape[1], "columns")
    out = A.copy()
    out[:, cols] = B[:, cols]
    return out


# ---------------------------------------------------------------------------------------------
# Estimators
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SobolIndices:
    """Sobol' indices of one or many outputs; ``…`` is the trailing output shape of the model."""

    first: np.ndarray  #: float64 (n_groups, …): first-order indices S_i (Saltelli 2010).
    total: np.ndarray  #: float64 (n_groups, …): total-order indices ST_i (Jansen 1999).
    first_ci: np.ndarray | None  #: float64 (n_groups, …, 2): bootstrap percentile interval of S_i, or None.
    total_ci: np.ndarray | None  #: float64 (n_groups, …, 2): bootstrap percentile interval of ST_i, or None.
    #: float64 (n_groups, n_groups, …): symmetric second-order indices S_ij (Saltelli 2002),
    #: NaN on the diagonal (undefined); None unless BA outputs were given.
    second: np.ndarray | None
    variance: np.ndarray  #: float64 (…): V, variance (ddof=0) of the pooled centred y_A and y_B.
    n_base: int  #: Base sample size N.
    groups: tuple[str, ...]  #: Group names, in the order of the first axis.


def estimate(y_a: np.ndarray, y_b: np.ndarray, y_ab: np.ndarray, *,
             groups: Sequence[str] | None = None, n_boot: int = 0,
             seed: int | np.random.SeedSequence = 0, confidence: float = 0.95,
             y_ba: np.ndarray | None = None) -> SobolIndices:
    """First-, total- (and optionally second-) order Sobol' indices from model outputs.

    Parameters
    ----------
    y_a, y_b : array_like, shape (N, …)
        Outputs on the rows of A and B; ``…`` is any output shape, e.g. () for one output or
        (n_units,) for per-unit outputs.  Each output position is analysed independently.
    y_ab : array_like, shape (n_groups, N, …)
        ``y_ab[i]`` are the outputs on AB_i (A with the columns of group i taken from B).
    groups : sequence of str, optional
        Names of the groups (default ``x1 .. xk``).
    n_boot : int
        Bootstrap resamples for confidence intervals (0: none).
    seed : int or SeedSequence
        Seed of the bootstrap resampling (``np.random.default_rng(seed)``); 0 is a real seed.
    confidence : float
        Level of the percentile intervals, in (0, 1).
    y_ba : array_like, shape (n_groups, N, …), optional
        Outputs on BA_i (B with the columns of group i taken from A); enables second order.

    Returns
    -------
    SobolIndices

    Raises
    ------
    SchemaError
        Mismatched shapes, N < 2, wrong number of group names, bad ``n_boot`` or ``confidence``.
    DataError
        Non-finite model outputs.

    Notes
    -----
    *Centring.*  All outputs are first centred by the mean of every evaluation, per output
    position: y_A, y_B, all y_ABi (and all y_BAi when given) pooled — the same centring as
    SALib's ``Y = (Y - Y.mean()) / Y.std()`` (the scaling by the standard deviation does not
    change the indices, so it is omitted).  The first- and second-order estimators are not
    shift-invariant; centring removes the bias that a large mean would otherwise cause.  Because
    SALib pools the BA outputs too, passing ``y_ba`` moves the centre slightly and so changes
    S_i in the last digits (within sampling error).

    *Formulas* (k groups, means over the N base samples)::

        V     = var([y_A, y_B])                          (ddof=0, pooled 2N values)
        S_i   = mean(y_B (y_ABi − y_A)) / V              (Saltelli et al. 2010)
        ST_i  = mean((y_A − y_ABi)²) / (2V)              (Jansen 1999)
        S_ij  = mean(y_BAi y_ABj − y_A y_B) / V − S_i − S_j   (Saltelli 2002; SALib second_order)

    ``S_ij`` is computed for i < j and mirrored (S_ji = S_ij); the diagonal is NaN.

    *Degenerate outputs.*  Where V = 0 (an output that is constant on A and B) every index is
    exactly 0, never NaN, and no warning is raised.  A group whose y_ABi equals y_A exactly (a
    dummy factor) gets S_i = ST_i = 0 exactly, since both numerators are exact zeros.

    *Bootstrap.*  ``n_boot`` times, N base-sample indices are drawn with replacement and the
    indices are recomputed on the resampled rows (with V recomputed on the resample; the centre
    stays that of the full sample, as in SALib).  The interval is the ``(1 − c)/2, (1 + c)/2``
    percentile interval of the resampled indices.  The bootstrap treats the base samples as iid,
    which is only an approximation for (scrambled) quasi-random points: the rows are not
    independent and their error converges faster than the iid bootstrap assumes, so the
    intervals are conservative (SALib makes the same approximation).  No intervals are computed
    for second-order indices.
    """
    y_a = _as_outputs(y_a, "y_a")
    y_b = _as_outputs(y_b, "y_b")
    y_ab = _as_outputs(y_ab, "y_ab")
    if y_a.ndim < 1:
        raise SchemaError("y_a must have a base-sample axis, shape (N, …), got a scalar",
                          fix="pass one output row per row of A")
    n_base = _check_n_base(y_a.shape[0], "the number of base samples N (rows of y_a)")
    trailing = y_a.shape[1:]
    if y_b.shape != y_a.shape:
        raise SchemaError(f"y_b has shape {y_b.shape} but y_a has shape {y_a.shape}",
                          fix="evaluate the model on A and B with the same number of rows and outputs")
    if y_ab.ndim != y_a.ndim + 1 or y_ab.shape[1:] != y_a.shape or y_ab.shape[0] < 1:
        raise SchemaError(f"y_ab has shape {y_ab.shape}, expected (n_groups, {', '.join(map(str, y_a.shape))})",
                          fix="stack the outputs on AB_1 .. AB_k along a new first axis (np.stack)")
    n_groups = y_ab.shape[0]
    if y_ba is not None:
        y_ba = _as_outputs(y_ba, "y_ba")
        if y_ba.shape != y_ab.shape:
            raise SchemaError(f"y_ba has shape {y_ba.shape} but y_ab has shape {y_ab.shape}",
                              fix="evaluate the model on BA_i for the same groups as AB_i")
    names = _group_names(groups, n_groups)
    if int(n_boot) != n_boot or n_boot < 0:
        raise SchemaError(f"n_boot must be a non-negative integer, got {n_boot!r}",
                          fix="use 0 (no intervals) or e.g. 200-1000 resamples")
    if not 0.0 < confidence < 1.0:
        raise SchemaError(f"confidence must lie in (0, 1), got {confidence!r}", fix="use e.g. 0.95")

    # Internal layout: output positions first, base samples last and contiguous, so that every
    # reduction runs over one contiguous row — the same summation for one output as for many.
    n_out = int(np.prod(trailing, dtype=np.int64))
    a = np.ascontiguousarray(y_a.reshape(n_base, n_out).T)
    b = np.ascontiguousarray(y_b.reshape(n_base, n_out).T)
    ab = np.ascontiguousarray(y_ab.reshape(n_groups, n_base, n_out).transpose(0, 2, 1))
    ba = (None if y_ba is None
          else np.ascontiguousarray(y_ba.reshape(n_groups, n_base, n_out).transpose(0, 2, 1)))

    # Centre by the mean of all evaluations (SALib: Y - Y.mean()).
    pooled = [a, b, *ab] + ([] if ba is None else [*ba])
    centre = np.concatenate(pooled, axis=-1).mean(axis=-1, keepdims=True)
    a, b, ab = a - centre, b - centre, ab - centre
    if ba is not None:
        ba = ba - centre

    variance, first, total = _first_total(a, b, ab)
    second = None
    if ba is not None:
        second = np.full((n_groups, n_groups, n_out), np.nan)
        for i in range(n_groups):
            for j in range(i + 1, n_groups):
                joint = _ratio(np.mean(ba[i] * ab[j] - a * b, axis=-1), variance)
                second[i, j] = second[j, i] = joint - first[i] - first[j]

    first_ci = total_ci = None
    if n_boot:
        first_ci, total_ci = _bootstrap(a, b, ab, int(n_boot), seed, confidence)

    def shaped(x: np.ndarray, lead: tuple[int, ...], tail: tuple[int, ...] = ()) -> np.ndarray:
        return x.reshape(lead + trailing + tail)

    return SobolIndices(
        first=shaped(first, (n_groups,)),
        total=shaped(total, (n_groups,)),
        first_ci=None if first_ci is None else shaped(first_ci, (n_groups,), (2,)),
        total_ci=None if total_ci is None else shaped(total_ci, (n_groups,), (2,)),
        second=None if second is None else shaped(second, (n_groups, n_groups)),
        variance=variance.reshape(trailing),
        n_base=n_base,
        groups=names,
    )


def _ratio(numerator: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """numerator / V, exactly 0 where V == 0 (constant output: 0/0 is defined as 0)."""
    return np.divide(numerator, variance, out=np.zeros(np.broadcast(numerator, variance).shape),
                     where=variance > 0.0)


def _first_total(a: np.ndarray, b: np.ndarray, ab: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """V, S_i and ST_i; a, b (…, N) centred, ab (k, …, N); reductions over the last axis."""
    pooled = np.concatenate([a, b], axis=-1)
    # var(ddof=0) as two plain means over contiguous rows: the indices of one output must not
    # depend (even in the last bit) on how many outputs are estimated together.
    variance = np.mean((pooled - np.mean(pooled, axis=-1, keepdims=True)) ** 2, axis=-1)
    first = _ratio(np.mean(b * (ab - a), axis=-1), variance)  # Saltelli 2010, eq. (b)
    total = _ratio(np.mean((a - ab) ** 2, axis=-1), 2.0 * variance)  # Jansen 1999
    return variance, first, total


def _bootstrap(a: np.ndarray, b: np.ndarray, ab: np.ndarray, n_boot: int,
               seed: int | np.random.SeedSequence, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile intervals (k, n_out, 2) of S_i and ST_i over iid resamples of the base samples."""
    n_groups, n_out, n_base = ab.shape
    # All resample indices are drawn up front, so chunking cannot change them.
    rows = np.random.default_rng(seed).integers(0, n_base, size=(n_boot, n_base))
    chunk = max(1, _BOOT_CHUNK_VALUES // ((n_groups + 2) * n_out * n_base))
    first = np.empty((n_groups, n_out, n_boot))
    total = np.empty((n_groups, n_out, n_boot))
    for start in range(0, n_boot, chunk):
        r = rows[start:start + chunk]  # (c, N)
        # Fancy indexing returns a non-C layout; reductions must run over contiguous rows
        # (pairwise summation) so that the result does not depend on n_out.
        _, f, t = _first_total(np.ascontiguousarray(a[:, r]), np.ascontiguousarray(b[:, r]),
                               np.ascontiguousarray(ab[:, :, r]))  # (…, c, N) → (k, n_out, c)
        first[:, :, start:start + chunk] = f
        total[:, :, start:start + chunk] = t
    levels = [(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0]
    return (np.moveaxis(np.quantile(first, levels, axis=-1), 0, -1),
            np.moveaxis(np.quantile(total, levels, axis=-1), 0, -1))


# ---------------------------------------------------------------------------------------------
# Generic model hook
# ---------------------------------------------------------------------------------------------

def analyse(model: Callable[[np.ndarray], np.ndarray], n_columns: int, n_base: int, *,
            groups: dict[str, list[int]] | None = None, seed: int = 0, n_boot: int = 0,
            second_order: bool = False) -> SobolIndices:
    """Sobol' indices of ``model`` over U(0,1)^d inputs: design, evaluation, :func:`estimate`.

    Parameters
    ----------
    model : callable
        ``model(U)`` with U of shape (N, n_columns) in [0, 1) returns outputs of shape (N,) or
        (N, …); the model maps U to its own input ranges (e.g. ``floor(u·k)`` for k choices).
    n_columns : int
        Number d of input columns.
    n_base : int
        Base sample size N (a power of two; see :func:`sobol_design`).  Cost: N·(k + 2) model
        rows, N·(2k + 2) with ``second_order``.
    groups : dict of str to list of int, optional
        Groups of columns that move together, e.g. ``{"weights": [0, 1, 2], "method": [3]}``.
        Default: one group per column, named ``x1 .. xd``.  Columns in no group still vary (they
        contribute to V) but get no index.
    seed : int
        Seed of the design; the bootstrap uses the independent stream
        ``SeedSequence(seed, spawn_key=(1,))``.
    n_boot : int
        Bootstrap resamples for confidence intervals (0: none).
    second_order : bool
        Also evaluate BA_i and estimate second-order indices.

    Returns
    -------
    SobolIndices

    Raises
    ------
    SchemaError
        Invalid sizes or groups, or model outputs of the wrong shape.

    Examples
    --------
    >>> res = analyse(ishigami, 3, 1024, seed=1)
    >>> res.groups
    ('x1', 'x2', 'x3')
    """
    A, B = sobol_design(n_base, n_columns, seed)
    d = A.shape[1]
    if groups is None:
        groups = {f"x{j + 1}": [j] for j in range(d)}
    if not isinstance(groups, dict) or not groups:
        raise SchemaError(f"groups must be a non-empty dict of name -> column list, got {groups!r}",
                          fix='use e.g. {"weights": [0, 1], "method": [2]}')
    columns = {name: _check_columns(cols, d, f"group {name!r}") for name, cols in groups.items()}

    def run(U: np.ndarray, what: str) -> np.ndarray:
        y = np.asarray(model(U), dtype=np.float64)
        if y.ndim < 1 or y.shape[0] != n_base:
            raise SchemaError(f"model returned shape {y.shape} on {what}, expected ({n_base}, …)",
                              fix="return one output row per input row")
        return y

    y_a = run(A, "A")
    y_b = run(B, "B")
    y_ab = np.stack([run(ab_matrix(A, B, cols), f"AB for group {name!r}") for name, cols in columns.items()])
    y_ba = None
    if second_order:
        y_ba = np.stack([run(ab_matrix(B, A, cols), f"BA for group {name!r}") for name, cols in columns.items()])
    return estimate(y_a, y_b, y_ab, groups=tuple(columns), n_boot=n_boot,
                    seed=np.random.SeedSequence(seed, spawn_key=(1,)), y_ba=y_ba)


# ---------------------------------------------------------------------------------------------
# Closed-form test functions (oracles)
# ---------------------------------------------------------------------------------------------

def ishigami(u: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    """Ishigami function ``sin x1 + a sin² x2 + b x3⁴ sin x1`` with x = −π + 2π·u ∈ [−π, π)³.

    ``u`` has shape (N, 3) in [0, 1); returns shape (N,).  Ishigami & Homma (1990).
    """
    x = -np.pi + 2.0 * np.pi * np.asarray(u, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3:
        raise SchemaError(f"ishigami takes u of shape (N, 3), got {x.shape}", fix="pass three input columns")
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


def ishigami_indices(a: float = 7.0, b: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Analytic (S1, ST) of :func:`ishigami`; S13 = ST[2] (x3 acts only with x1).

    Notes
    -----
    ``V1 = (1 + bπ⁴/5)²/2``, ``V2 = a²/8``, ``V13 = b²π⁸·8/225``, ``V3 = V12 = V23 = V123 = 0``,
    ``V = V1 + V2 + V13`` (Sobol' & Levitan 1999; SALib ``test_functions/Ishigami.py``).
    """
    pi4 = np.pi ** 4
    v1 = 0.5 * (1.0 + b * pi4 / 5.0) ** 2
    v2 = a ** 2 / 8.0
    v13 = b ** 2 * np.pi ** 8 * 8.0 / 225.0
    v = v1 + v2 + v13
    return np.array([v1, v2, 0.0]) / v, np.array([v1 + v13, v2, v13]) / v


def sobol_g(u: np.ndarray, a: Sequence[float]) -> np.ndarray:
    """Sobol' G function ``∏_i (|4u_i − 2| + a_i) / (1 + a_i)`` on u ∈ [0, 1)^d; returns shape (N,)."""
    u = np.asarray(u, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    if u.ndim != 2 or u.shape[1] != a.size:
        raise SchemaError(f"sobol_g takes u of shape (N, {a.size}) for {a.size} coefficients, got {u.shape}",
                          fix="pass one coefficient a_i per input column")
    return np.prod((np.abs(4.0 * u - 2.0) + a) / (1.0 + a), axis=1)


def sobol_g_indices(a: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Analytic (S1, ST) of :func:`sobol_g`.

    Notes
    -----
    ``V_i = 1 / (3 (1 + a_i)²)``, ``V = ∏(1 + V_i) − 1``, ``S_i = V_i / V``,
    ``ST_i = V_i ∏_{j≠i}(1 + V_j) / V`` (Saltelli & Sobol' 1995; SALib ``test_functions/Sobol_G.py``).
    """
    a = np.asarray(a, dtype=np.float64)
    vi = 1.0 / (3.0 * (1.0 + a) ** 2)
    prod = np.prod(1.0 + vi)
    v = prod - 1.0
    return vi / v, vi * (prod / (1.0 + vi)) / v


# ---------------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------------

def _check_n_base(n: int, what: str) -> int:
    if int(n) != n or n < 2:
        raise SchemaError(f"{what} must be an integer ≥ 2, got {n!r}",
                          fix="use a power of two such as 1024 or 8192 base samples")
    return int(n)


def _check_columns(columns: Sequence[int], d: int, what: str) -> list[int]:
    cols = list(columns)
    if not cols:
        raise SchemaError(f"{what} names no column", fix=f"list at least one column index in 0 .. {d - 1}")
    bad = [c for c in cols if isinstance(c, bool) or not isinstance(c, int | np.integer) or not 0 <= c < d]
    if bad:
        raise SchemaError(f"{what} names unknown column(s) {preview(bad)}; the design has {d} columns",
                          fix=f"use integer column indices in 0 .. {d - 1}")
    return [int(c) for c in cols]


def _group_names(groups: Sequence[str] | None, n_groups: int) -> tuple[str, ...]:
    if groups is None:
        return tuple(f"x{i + 1}" for i in range(n_groups))
    names = tuple(groups)
    if len(names) != n_groups:
        raise SchemaError(f"{len(names)} group name(s) {preview(names)} for {n_groups} groups in y_ab",
                          fix="give one name per AB_i output, in the order of y_ab's first axis")
    return names


def _as_outputs(y: np.ndarray, what: str) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    bad = ~np.isfinite(y)
    if bad.any():
        where = [tuple(int(i) for i in idx) for idx in np.argwhere(bad)[:5]]
        raise DataError(f"{what} has {int(bad.sum())} non-finite value(s), at {preview(where)}",
                        fix="make the model return finite outputs (count and drop failed runs before estimating)")
    return y
