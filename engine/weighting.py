"""Weighting methods: the sibling weights of one node's children, as pure NumPy functions.

Every function takes plain arrays and returns weights that sum to 1 (float64, one per child, in
the order of the input).  No I/O, no Polars, no node names: the caller (the weights stage) maps
children to rows/columns and adds the node and file to any error it re-raises.

======================  ========================================================================
``equal(k)``            ``1/k`` each
``ahp(matrix, ...)``    principal right eigenvector (Saaty) or row geometric means of a pairwise
                        comparison matrix, with λmax, CI and CR → :class:`AHPResult`
``entropy(x)``          Shannon entropy weights of an ``(n_units, k)`` matrix of scores
``critic(x)``           CRITIC (contrast × conflict) weights
``pca(x)``              OECD/JRC Handbook (2008, §6.1) factor-analysis weights + a details dict
======================  ========================================================================

Errors: a malformed AHP matrix or an unknown method/table name is a :class:`~engine.errors.SchemaError`
(it comes from the framework file); scores that the data-driven methods cannot use (negative values
for entropy, ±inf, fewer than two complete units) are a :class:`~engine.errors.DataError`.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import DataError, EngineWarning, SchemaError, preview

__all__ = [
    "CR_THRESHOLD",
    "RANDOM_INDEX",
    "AHPConsistencyWarning",
    "AHPResult",
    "ahp",
    "critic",
    "entropy",
    "equal",
    "pca",
]

#: Random Index RI(n) tables for the AHP consistency ratio ``CR = CI / RI(n)``, by name.
#:
#: ``"saaty"``: T. L. Saaty, *Theory and Applications of the Analytic Network Process*, RWS
#: Publications, Pittsburgh, 2005, p. 31 (the ``'saaty'`` table of AHPy); the same values are in
#: Saaty (2008), "Decision making with the analytic hierarchy process", *Int. J. Services Sciences*
#: 1(1), 83–98, Table 2.
#:
#: ``"alonso_lamata"``: J. A. Alonso and M. T. Lamata (2006), "Consistency in the analytic hierarchy
#: process: a new approach", *Int. J. Uncertainty, Fuzziness and Knowledge-Based Systems* 14(4),
#: 445–459 (means over 100,000 random reciprocal matrices per n).
#:
#: RI(1) = RI(2) = 0 in both: matrices of order 1 and 2 are always consistent (CI = CR = 0).
RANDOM_INDEX: dict[str, dict[int, float]] = {
    "saaty": {1: 0.0, 2: 0.0, 3: 0.52, 4: 0.89, 5: 1.11, 6: 1.25, 7: 1.35, 8: 1.40, 9: 1.45, 10: 1.49},
    "alonso_lamata": {1: 0.0, 2: 0.0, 3: 0.5245, 4: 0.8815, 5: 1.1086, 6: 1.2479, 7: 1.3417, 8: 1.4056,
                      9: 1.4499, 10: 1.4854},
}

#: Saaty's acceptance rule: judgements with ``CR >= CR_THRESHOLD`` are flagged as inconsistent.
CR_THRESHOLD: float = 0.1

_EIGENVECTOR_METHODS = ("principal", "geometric_mean")
#: relative tolerance of the reciprocity check a_ij * a_ji = 1 (the same as engine.schema's)
_RECIPROCAL_RTOL = 1e-2
#: eigenvalues/shares within this of a PCA retention threshold count as rounding, not above it
_PCA_TOL = 1e-10


class AHPConsistencyWarning(EngineWarning):
    """The AHP pairwise judgements are inconsistent: consistency ratio CR >= 0.1."""


@dataclass(frozen=True)
class AHPResult:
    """Weights and consistency statistics of one AHP pairwise comparison matrix."""

    #: priority vector, normalised to sum 1, in the row order of the matrix
    weights: np.ndarray
    #: principal eigenvalue (``principal``) or mean((A w)_i / w_i) (``geometric_mean``)
    lambda_max: float
    #: consistency index max(0, (λmax − n) / (n − 1)); 0 for n <= 2
    ci: float
    #: consistency ratio CI / RI(n); 0 for n <= 2
    cr: float
    #: the RI(n) value used (0 for n <= 2)
    random_index: float
    #: ``"principal"`` or ``"geometric_mean"``
    method: str
    #: the Random Index table: ``"saaty"`` or ``"alonso_lamata"``
    table: str


# ============================================================================ equal

def equal(k: int) -> np.ndarray:
    """Equal weights ``1/k`` for ``k`` children.

    Raises
    ------
    SchemaError
        If ``k`` is not a positive integer.
    """
    try:
        k = operator.index(k)
    except TypeError:
        raise SchemaError(f"equal weighting needs an integer number of children, got {k!r}",
                          fix="pass the number of children as an int") from None
    if k < 1:
        raise SchemaError(f"equal weighting needs at least one child, got k = {k}",
                          fix="give the node one or more children")
    return np.full(k, 1.0 / k)


# ============================================================================ AHP

def ahp(matrix: Any, *, eigenvector: str = "principal", random_index: str = "saaty",
        names: Sequence[str] | None = None, node: str | None = None) -> AHPResult:
    """AHP priority weights and consistency of a positive reciprocal pairwise comparison matrix.

    Parameters
    ----------
    matrix : array_like, shape (n, n)
        ``matrix[i][j]`` says how much more important child ``i`` is than child ``j``; positive,
        ``a_ii = 1`` and ``a_ji = 1/a_ij`` (both checked with ``rtol=1e-2``, as in the schema).
        The matrix is used as given (entries are not symmetrised).
    eigenvector : {"principal", "geometric_mean"}
        ``principal``: the Perron (principal right) eigenvector, Saaty's method.
        ``geometric_mean``: the normalised row geometric means (logarithmic least squares).
    random_index : {"saaty", "alonso_lamata"}
        The :data:`RANDOM_INDEX` table for ``CR = CI / RI(n)``; both cover n = 1…10.
    names, node : optional
        The children's ids in the matrix's row order and the node's id: the consistency warning
        then names the comparisons by node ids rather than matrix indices.

    Returns
    -------
    AHPResult
        ``weights`` (sum 1), ``lambda_max``, ``ci``, ``cr``, ``random_index`` (the RI value),
        ``method`` and ``table`` (the names used).

    Raises
    ------
    SchemaError
        The matrix is not a square numeric matrix, has a non-positive or non-finite entry, is not
        reciprocal, or n > 10 (no RI value); or a method/table name is unknown.

    Warns
    -----
    AHPConsistencyWarning
        When ``cr >= CR_THRESHOLD`` (0.1).  The message names the (up to three) judgements most at
        odds with the weights, largest ``|ln(a_ij w_j / w_i)|`` first, as the ones to revisit.

    Notes
    -----
    ``λmax`` is the principal eigenvalue of ``A`` for ``principal`` weights; for ``geometric_mean``
    weights it is estimated as ``mean_i((A w)_i / w_i)``, which equals the principal eigenvalue
    when ``A`` is consistent.  ``CI = (λmax − n)/(n − 1)`` and ``CR = CI / RI(n)``, with
    ``CI = CR = 0`` for ``n <= 2``.  For a positive reciprocal matrix ``λmax >= n`` (Saaty 1977),
    so a ``CI`` below 0 can only be rounding and is set to 0: a consistent matrix
    (``a_ij = w_i / w_j``) gives ``CI = CR = 0``.

    Saaty, T. L. (1977), "A scaling method for priorities in hierarchical structures",
    *J. Math. Psychology* 15(3), 234–281; Crawford and Williams (1985) for row geometric means.

    Examples
    --------
    >>> res = ahp([[1, 3], [1 / 3, 1]])
    >>> res.weights.round(4).tolist(), res.cr
    ([0.75, 0.25], 0.0)
    """
    if eigenvector not in _EIGENVECTOR_METHODS:
        raise SchemaError(f"unknown AHP eigenvector method {eigenvector!r}",
                          fix=f"use one of {preview(_EIGENVECTOR_METHODS)}")
    if random_index not in RANDOM_INDEX:
        raise SchemaError(f"unknown AHP random index table {random_index!r}",
                          fix=f"use one of {preview(RANDOM_INDEX)}")
    a = _check_pairwise(matrix, random_index)
    n = a.shape[0]

    if eigenvector == "principal":
        weights, lambda_max = _principal_eigenvector(a)
    else:
        # exp(mean(log)) rather than prod**(1/n): no overflow, and exact ratios for consistent matrices
        geometric = np.exp(np.log(a).mean(axis=1))
        weights = geometric / geometric.sum()
        lambda_max = float(np.mean(a @ weights / weights))

    ri = RANDOM_INDEX[random_index][n]
    if n <= 2:
        ci = cr = 0.0
    else:
        ci = max(0.0, (lambda_max - n) / (n - 1))
        cr = ci / ri
    if cr >= CR_THRESHOLD:
        ratio = np.abs(np.log(a * weights[None, :] / weights[:, None]))
        upper = [(i, j) for i in range(n) for j in range(i + 1, n)]
        worst = sorted(upper, key=lambda ij: -ratio[ij])[:3]
        label = (lambda k: repr(names[k])) if names is not None else str
        judged = "; ".join(f"{label(i)} vs {label(j)} = {a[i, j]:g} (matrix[{i}][{j}]), the weights say "
                           f"{weights[i] / weights[j]:.3g}" for i, j in worst)
        warnings.warn(
            (f"node {node!r}: " if node else "")
            + f"AHP consistency ratio CR = {cr:.4f} is at or above the threshold {CR_THRESHOLD} "
            f"(n = {n}, λmax = {lambda_max:.5f}, CI = {ci:.5f}, RI = {ri} from the {random_index!r} table): "
            f"the pairwise judgements contradict each other. The judgements most at odds with the weights: "
            f"{judged}. Fix: revise the comparisons, starting with the first, until CR < {CR_THRESHOLD}",
            AHPConsistencyWarning, stacklevel=2,
        )
    return AHPResult(weights=weights, lambda_max=float(lambda_max), ci=float(ci), cr=float(cr),
                     random_index=float(ri), method=eigenvector, table=random_index)


def _check_pairwise(matrix: Any, table: str) -> np.ndarray:
    """The matrix as a float64 (n, n) array; SchemaError if it is not a positive reciprocal matrix."""
    try:
        a = np.array(matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise SchemaError("the AHP matrix must be a square matrix of numbers (a list of equal-length rows)",
                          fix="give one row per child, each with one positive number per child") from None
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise SchemaError(f"the AHP matrix must be square and non-empty, got shape {a.shape}",
                          fix="give an n×n matrix, one row and one column per child")
    n = a.shape[0]
    bad = [(int(i), int(j)) for i, j in zip(*np.nonzero(~(np.isfinite(a) & (a > 0))), strict=True)]
    if bad:
        raise SchemaError(f"the AHP matrix must have finite positive entries; {len(bad)} do not, at (row, column) "
                          f"{preview(bad)} with values {preview(a[tuple(np.array(bad).T)].tolist())}",
                          fix="use judgements on Saaty's 1/9…9 scale, e.g. 1/3 rather than 0 or -3")
    diagonal = np.nonzero(~np.isclose(np.diag(a), 1.0, rtol=_RECIPROCAL_RTOL))[0]
    if diagonal.size:
        raise SchemaError(f"the AHP matrix must have 1 on the diagonal; rows {preview(diagonal.tolist())} have "
                          f"{preview(np.diag(a)[diagonal].tolist())}", fix="set matrix[i][i] = 1")
    product = a * a.T
    rows, cols = np.nonzero(np.triu(~np.isclose(product, 1.0, rtol=_RECIPROCAL_RTOL), k=1))
    if rows.size:
        pairs = [f"[{i}][{j}] = {a[i, j]:g} vs [{j}][{i}] = {a[j, i]:g}"
                 for i, j in zip(rows.tolist(), cols.tolist(), strict=True)]
        raise SchemaError(f"the AHP matrix is not reciprocal (matrix[j][i] must be 1 / matrix[i][j], rtol 1e-2) "
                          f"at {len(pairs)} pair(s): {'; '.join(pairs[:5])}{' …' if len(pairs) > 5 else ''}",
                          fix="enter each judgement once and set matrix[j][i] = 1 / matrix[i][j]")
    if n not in RANDOM_INDEX[table]:
        raise SchemaError(f"the {table!r} random index table covers n = 1…{max(RANDOM_INDEX[table])}, but the AHP "
                          f"matrix is {n}×{n}",
                          fix="split the children into sub-groups of at most 10 (AHP judgements are reliable "
                          "for about 7 ± 2 items)")
    return a


def _principal_eigenvector(a: np.ndarray) -> tuple[np.ndarray, float]:
    """Perron eigenvector (sum 1, positive) and eigenvalue of a positive matrix."""
    values, vectors = np.linalg.eig(a)
    # The Perron root of a positive matrix is real, simple and strictly the largest in modulus,
    # so it also has the largest real part; its eigenvector has components of one sign.
    k = int(np.argmax(values.real))
    weights = vectors[:, k].real
    weights = weights / weights.sum()
    return weights, float(values[k].real)


# ============================================================================ data-driven weights

def _complete_rows(x: Any, method: str) -> np.ndarray:
    """The rows of a (n_units, k) score matrix without NaN; DataError for ±inf, k = 0 or < 2 rows."""
    try:
        arr = np.array(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{method} weighting needs a numeric (n_units, n_children) matrix",
                        fix="pass the children's scores as a 2-D float array") from None
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise DataError(f"{method} weighting needs a 2-D (n_units, n_children) matrix with at least one column, "
                        f"got shape {arr.shape}", fix="pass one column per child, one row per unit")
    infinite = np.nonzero(np.isinf(arr).any(axis=0))[0]
    if infinite.size:
        raise DataError(f"{method} weighting got ±inf in column(s) {preview(infinite.tolist())}",
                        fix="treat or cap the infinite values (or set them missing) before weighting")
    complete = arr[~np.isnan(arr).any(axis=1)]
    if complete.shape[0] < 2:
        raise DataError(f"{method} weighting needs at least 2 units with every child present, got "
                        f"{complete.shape[0]} of {arr.shape[0]}",
                        fix="impute the missing scores or choose manual/equal/ahp weights for this node")
    return complete


def _constant_columns(x: np.ndarray) -> np.ndarray:
    """Boolean mask of the columns with a single distinct value."""
    return x.max(axis=0) == x.min(axis=0)


def entropy(x: Any) -> np.ndarray:
    """Shannon entropy weights of a (n_units, k) matrix of non-negative scores (columns = children).

    Parameters
    ----------
    x : array_like, shape (n_units, k)
        Non-negative scores, e.g. min-max normalised.  Rows (units) with any NaN are dropped
        before computing (listwise deletion), so every column is measured on the same units.

    Returns
    -------
    numpy.ndarray, shape (k,)
        Weights summing to 1.

    Raises
    ------
    DataError
        A negative or ±inf value, not a 2-D matrix with k >= 1, or fewer than 2 complete rows.

    Notes
    -----
    With ``m`` complete units: ``p_ij = x_ij / Σ_i x_ij``,
    ``e_j = −Σ_i p_ij ln p_ij / ln m`` (``0 ln 0 = 0``), ``w_j = (1 − e_j) / Σ_k (1 − e_k)``
    (references: Shannon 1948; Zeleny 1982; pymcdm, scikit-criteria and pyDecision give the same).

    Degenerate columns, decided once: a **constant column** (including an all-zero one, whose
    ``p`` is undefined) carries no information and has ``1 − e_j = 0`` exactly, hence weight 0.
    If **every** column is constant, the weights are equal (``1/k``).  ``w`` is invariant to
    multiplying a column by a positive constant and to permuting the units.

    Examples
    --------
    >>> entropy([[1.0, 2.0], [3.0, 2.0]]).tolist()
    [1.0, 0.0]
    """
    x = _complete_rows(x, "entropy")
    negative = np.nonzero((x < 0).any(axis=0))[0]
    if negative.size:
        raise DataError(f"entropy weighting needs non-negative scores; column(s) {preview(negative.tolist())} have "
                        f"negative values, e.g. {preview(x[:, negative[0]][x[:, negative[0]] < 0].tolist())}",
                        fix="normalise the children onto a non-negative range (e.g. minmax [0, 100]) first")
    m, k = x.shape
    constant = _constant_columns(x)
    diversity = np.zeros(k)                      # 1 − e_j; exactly 0 for constant columns
    informative = x[:, ~constant]
    if informative.size:
        p = informative / informative.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            plogp = np.where(p > 0, p * np.log(p), 0.0)
        e = -plogp.sum(axis=0) / np.log(m)
        diversity[~constant] = np.clip(1.0 - e, 0.0, None)   # 0 <= e <= 1; clip rounding below 0
    total = diversity.sum()
    if total == 0.0:
        return equal(k)
    return diversity / total


def critic(x: Any) -> np.ndarray:
    """CRITIC weights (Diakoulaki, Mavrotas & Papayannakis 1995) of a (n_units, k) score matrix.

    Parameters
    ----------
    x : array_like, shape (n_units, k)
        Scores, any sign (only their min-max transform is used).  Rows with any NaN are dropped.

    Returns
    -------
    numpy.ndarray, shape (k,)
        Weights summing to 1.

    Raises
    ------
    DataError
        A ±inf value, not a 2-D matrix with k >= 1, or fewer than 2 complete rows.

    Notes
    -----
    ``z_ij = (x_ij − min_i x_ij) / (max_i x_ij − min_i x_ij)``; ``C_j = σ_j Σ_k (1 − r_jk)`` with
    ``σ_j`` the standard deviation of ``z_j`` and ``r`` the Pearson correlation of the ``z``;
    ``w_j = C_j / Σ C``.  σ is the population sd (ddof 0, as pymcdm); the sample sd multiplies every
    ``C_j`` by the same ``sqrt(m/(m−1))`` and gives identical weights (both reproduce the
    reference values of pymcdm, scikit-criteria and pyDecision).  Weights are invariant to any
    positive affine change of a column and to permuting the units.

    Degenerate columns, decided once: a **constant column** has ``σ = 0`` and an undefined
    correlation; it gets weight 0 and is left out of the other columns' conflict sums, so the
    other weights are exactly those of CRITIC without it.  If every ``C_j`` is 0 — all columns
    constant, a single non-constant column, or all non-constant columns perfectly correlated —
    the weights are equal over the non-constant columns (over all columns if all are constant).

    Examples
    --------
    >>> critic([[0.0, 1.0, 5.0], [1.0, 0.0, 5.0]]).tolist()
    [0.5, 0.5, 0.0]
    """
    x = _complete_rows(x, "critic")
    k = x.shape[1]
    constant = _constant_columns(x)
    weights = np.zeros(k)
    informative = x[:, ~constant]
    if informative.shape[1] == 0:
        return equal(k)
    low, high = informative.min(axis=0), informative.max(axis=0)
    z = (informative - low) / (high - low)
    sd = z.std(axis=0)
    centred = (z - z.mean(axis=0)) / sd
    r = np.clip(centred.T @ centred / z.shape[0], -1.0, 1.0)
    np.fill_diagonal(r, 1.0)                 # r_jj = 1 exactly: a lone column has no conflict
    contrast = sd * (1.0 - r).sum(axis=1)
    contrast = np.clip(contrast, 0.0, None)   # 1 − r >= 0; clip rounding below 0
    total = contrast.sum()
    weights[~constant] = contrast / total if total > 0.0 else 1.0 / informative.shape[1]
    return weights


# ============================================================================ PCA / factor analysis

def pca(x: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """Factor-analysis weights of the OECD/JRC Handbook (2008, §6.1, Step 6) for a (n_units, k) matrix.

    Parameters
    ----------
    x : array_like, shape (n_units, k)
        Scores of the k children.  Rows with any NaN are dropped.

    Returns
    -------
    weights : numpy.ndarray, shape (k,)
        Weights summing to 1 (0 for a constant column and for an indicator whose assigned factor
        does not load on it).
    details : dict
        ``eigenvalues`` (k', descending, of the correlation matrix of the k' non-constant columns),
        ``explained`` (each eigenvalue / k'), ``retained`` (number of factors kept, the first ones),
        ``cumulative`` (variance share of the retained factors), ``loadings`` (k, retained: unrotated),
        ``rotated_loadings`` (k, retained: after varimax), ``factor_share`` (retained: each rotated
        factor's share of the retained variance), ``factor`` (k: the factor of each indicator, −1
        for a constant column), ``constant`` (k: bool).  Rows of constant columns are 0.

    Raises
    ------
    DataError
        A ±inf value, not a 2-D matrix with k >= 1, or fewer than 2 complete rows.

    Notes
    -----
    1. Standardise the columns; eigen-decompose their correlation matrix ``R`` (PCA).
       Loadings ``L = V sqrt(Λ)`` (correlations between indicators and components).
    2. Retain the components with **eigenvalue > 1 and share of variance (eigenvalue / k') > 10%**
       (both criteria of the Handbook; with descending eigenvalues they select the first ones).
       If none qualifies, retain the first.  The Handbook's third criterion (cumulative > 60%) is
       a diagnostic of the data, not a selection rule here: it is reported as ``cumulative``.
    3. Varimax-rotate the retained loadings (Kaiser 1958, with Kaiser row normalisation; the SVD
       iteration of R's ``stats::varimax``).  Deterministic convention: rotated factors in
       descending order of explained variance (column sum of squared loadings), each signed so its
       largest-magnitude loading is positive.
    4. Squared rotated loadings scaled to unit sum per factor, ``s_if = L_if² / Σ_i L_if²``.
    5. Each indicator goes to the factor with its largest squared loading ``L_if²`` (ties: the
       first factor); factor weights ``φ_f = Σ_i L_if² / Σ_if L_if²`` (its share of the explained
       variance of the retained factors, after rotation, as in the Handbook's Table 17).
    6. ``w_i ∝ s_{i,f(i)} φ_{f(i)}``, normalised to sum 1.

    Degenerate columns: a constant column has no correlation; it gets weight 0 and is left out of
    the analysis (``factor`` −1).  If every column is constant the weights are equal.  Weights are
    invariant to permuting the units and to positive affine changes of a column.
    """
    x = _complete_rows(x, "pca")
    m, k = x.shape
    constant = _constant_columns(x)
    kept = np.nonzero(~constant)[0]
    k_kept = kept.size
    if k_kept == 0:
        details = {"eigenvalues": np.zeros(0), "explained": np.zeros(0), "retained": 0, "cumulative": 0.0,
                   "loadings": np.zeros((k, 0)), "rotated_loadings": np.zeros((k, 0)),
                   "factor_share": np.zeros(0), "factor": np.full(k, -1), "constant": constant}
        return equal(k), details

    z = x[:, kept]
    z = (z - z.mean(axis=0)) / z.std(axis=0)
    correlation = np.clip(z.T @ z / m, -1.0, 1.0)
    np.fill_diagonal(correlation, 1.0)
    values, vectors = np.linalg.eigh(correlation)
    order = np.argsort(values)[::-1]
    values = np.clip(values[order], 0.0, None)
    vectors = vectors[:, order]
    explained = values / k_kept

    qualifies = (values > 1.0 + _PCA_TOL) & (explained > 0.1 + _PCA_TOL)
    # descending eigenvalues: both criteria hold for a leading block; count it
    n_factors = int(np.argmin(qualifies)) if not qualifies.all() else k_kept
    n_factors = max(n_factors, 1)

    loadings = vectors[:, :n_factors] * np.sqrt(values[:n_factors])
    loadings = _sign_columns(loadings)
    rotated = _varimax(loadings)
    variance = (rotated**2).sum(axis=0)
    rotated = _sign_columns(rotated[:, np.argsort(-variance, kind="stable")])
    squared = rotated**2
    variance = squared.sum(axis=0)
    factor_share = variance / variance.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(variance > 0, squared / variance, 0.0)
    factor = np.argmax(squared, axis=1)
    raw = scaled[np.arange(k_kept), factor] * factor_share[factor]

    weights = np.zeros(k)
    weights[kept] = raw / raw.sum() if raw.sum() > 0 else 1.0 / k_kept
    full_loadings = np.zeros((k, n_factors))
    full_loadings[kept] = loadings
    full_rotated = np.zeros((k, n_factors))
    full_rotated[kept] = rotated
    full_factor = np.full(k, -1)
    full_factor[kept] = factor
    details = {
        "eigenvalues": values,
        "explained": explained,
        "retained": n_factors,
        "cumulative": float(explained[:n_factors].sum()),
        "loadings": full_loadings,
        "rotated_loadings": full_rotated,
        "factor_share": factor_share,
        "factor": full_factor,
        "constant": constant,
    }
    return weights, details


def _sign_columns(loadings: np.ndarray) -> np.ndarray:
    """Flip each column so that its largest-magnitude entry (the first, on ties) is positive."""
    if loadings.size == 0:
        return loadings
    pivot = loadings[np.argmax(np.abs(loadings), axis=0), np.arange(loadings.shape[1])]
    return loadings * np.where(pivot < 0, -1.0, 1.0)


def _varimax(loadings: np.ndarray, *, tol: float = 1e-13, max_iter: int = 1000) -> np.ndarray:
    """Varimax rotation (Kaiser 1958) of a (k, q) loading matrix, with Kaiser normalisation.

    Maximises ``Σ_f [Σ_i h_if⁴ / k − (Σ_i h_if² / k)²]`` over orthogonal rotations ``T`` of the
    row-normalised loadings ``h = L / |L_i|`` (the Kaiser normalisation: every indicator counts
    alike, whatever its communality), by the SVD iteration of R's ``stats::varimax``:
    ``z = h T``, ``B = hᵀ (z³ − z diag(Σ_i z_if²) / k)``, ``T ← U Vᵀ`` from ``B = U S Vᵀ``; returns
    ``h T |L_i|``.  It stops when no entry of ``T`` moves by more than ``tol``: R stops on a relative
    gain of the criterion below 1e-5, which is second order in ``T`` and leaves the loadings
    accurate to ~1e-3 only, and could stop one step earlier or later on data that differ by
    rounding (e.g. permuted units).  Starts from the identity, so the result is deterministic;
    rows with zero communality stay zero.
    """
    k, q = loadings.shape
    if q < 2:
        return loadings.copy()
    scale = np.sqrt((loadings**2).sum(axis=1))
    scale = np.where(scale > 0, scale, 1.0)
    h = loadings / scale[:, None]
    rotation = np.eye(q)
    for _ in range(max_iter):
        z = h @ rotation
        b = h.T @ (z**3 - z * ((z**2).sum(axis=0) / k))
        u, _, vt = np.linalg.svd(b)
        previous, rotation = rotation, u @ vt
        if np.max(np.abs(rotation - previous)) <= tol:
            break
    return (h @ rotation) * scale[:, None]
