"""Tiers: units grouped into ``k`` classes of their scores by exact optimal 1-D breaks.

The only method is ``"jenks"`` (Fisher–Jenks natural breaks): the sorted present scores are split
into ``k`` contiguous classes with the least total within-class sum of squared deviations, by exact
dynamic programming (:func:`engine.kernels.tiers.jenks`, twin :func:`engine.kernels.reference.jenks`).
Each layer of the DP is solved by divide and conquer, so the time is O(k d log d) for ``d``
distinct scores instead of the plain DP's O(k d²) (timings: docs/performance.md).

Policies:

* **Tier 1 is the best** (highest scores), tier ``k`` the lowest; a missing score (NaN, and, as
  everywhere in the engine, ±inf) gets tier **0** and takes no part in the breaks.
* **Ties always share a tier**: class boundaries fall only between different scores.
* **k larger than the number of distinct present scores ``d``** is reduced to ``d``: each distinct
  score is its own tier, so the tiers are numbered ``1 … d`` and :func:`tier_breaks` returns
  ``d + 1`` breaks.  No scores at all: every tier is 0 and there are no breaks.
* **Equal optima**: when several partitions have exactly the same computed total, the one whose top
  tier starts at the highest score (the smallest top tier) is chosen, then the smallest tier 2
  among those, and so on.  The result is therefore a function of the scores alone, independent of
  the order of the units.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .errors import DataError, SchemaError
from .kernels import rank as rank_kernels
from .kernels import reference
from .kernels import tiers as kernels

__all__ = ["TIER_METHODS", "assign_tiers", "tier_breaks"]

#: Largest |score| the kernels classify (Dekker's split of a square, ~1.3e8 · score², must stay finite).
MAX_SCORE = 1e140

#: Classification methods by schema name (``tiers.method``): (Numba kernel, readable twin).  ``jenks``
#: computes score breaks; ``quantile`` groups by rank (:func:`assign_tiers`; it has no score breaks).
TIER_METHODS: dict[str, tuple[Callable, Callable]] = {"jenks": (kernels.jenks, reference.jenks),
                                                      "quantile": (kernels.quantile_tiers, reference.quantile_tiers)}


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise SchemaError(f"the number of tiers k must be an integer, got {k!r} ({type(k).__name__})",
                          fix="pass a whole number of tiers, e.g. k=5")
    if k < 1:
        raise SchemaError(f"the number of tiers k must be at least 1, got k={k}",
                          fix="pass k >= 1 (k=1 puts every scored unit in tier 1; seed 000 uses k=5)")
    return int(k)


def _check_method(method: str) -> None:
    if method not in TIER_METHODS:
        raise SchemaError(f"unknown tier method {method!r}",
                          fix=f"use one of {', '.join(repr(m) for m in TIER_METHODS)}")


def _present_sorted(scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores as float64 (n_units,), present mask, sorted present scores)."""
    try:
        values = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"scores must be numeric ({exc})", fix="pass one float score per unit") from None
    if values.ndim != 1:
        raise DataError(f"scores must be one-dimensional (one score per unit), got shape {values.shape}",
                        fix="pass a single score column, e.g. result[:, j] or a Polars Series")
    present = np.isfinite(values)
    return values, present, np.ascontiguousarray(np.sort(values[present]))


def _breaks(sorted_present: np.ndarray, k: int, method: str, use_reference: bool) -> np.ndarray:
    _check_method(method)
    if method == "quantile":
        raise SchemaError("quantile tiers are groups of ranks, not score breaks (tied scores at a boundary can "
                          "leave a group empty)", fix="use assign_tiers(scores, k, method='quantile') for the tiers")
    if sorted_present.size == 0:
        return np.empty(0, dtype=np.float64)
    largest = max(abs(sorted_present[0]), abs(sorted_present[-1]))
    if largest > MAX_SCORE:
        raise DataError(f"scores as large as {largest:.3g} cannot be classified exactly (their sums of squares "
                        f"overflow float64 beyond |score| = {MAX_SCORE:g})",
                        fix="rescale the scores before classifying, e.g. divide them by a power of ten")
    n_distinct = 1 + int(np.count_nonzero(sorted_present[1:] != sorted_present[:-1]))
    n_classes = min(k, n_distinct)
    kernel, twin = TIER_METHODS[method]
    if use_reference:
        return twin(sorted_present, n_classes)
    return kernel(sorted_present, n_classes, np.empty(n_classes + 1, dtype=np.float64))


def tier_breaks(scores: np.ndarray, k: int = 5, *, method: str = "jenks", use_reference: bool = False) -> np.ndarray:
    """Class breaks of the present scores, ascending.

    Parameters
    ----------
    scores : array-like (n_units,)
        Scores; non-finite values are missing and ignored.
    k : int, default 5
        Number of tiers, >= 1; reduced to the number ``d`` of distinct present scores if larger.
    method : {"jenks", "quantile"}
        Classification method (the schema's ``tiers.method``); ``quantile`` has no score breaks
        (SchemaError here; see :func:`assign_tiers`).
    use_reference : bool
        Use the readable twin instead of the Numba kernel (slow; for tests and benchmarks).

    Returns
    -------
    numpy.ndarray, float64 (min(k, d) + 1,)
        ``[min, upper bound of the lowest class, …, max]``; empty if no score is present.  With
        ``m = len(breaks) - 1`` classes, tier ``t`` holds the scores in
        ``(breaks[m - t], breaks[m - t + 1]]`` (the lowest tier, ``t = m``, also ``breaks[0]``).

    Raises
    ------
    SchemaError
        ``k`` is not an integer >= 1, or ``method`` is unknown.
    DataError
        ``scores`` is not a one-dimensional numeric array, or a present score exceeds ±1e140.

    Examples
    --------
    >>> tier_breaks([1, 2, 3, 10, 11, 12, 30, 31], k=3).tolist()
    [1.0, 3.0, 12.0, 31.0]
    """
    k = _check_k(k)
    _, _, sorted_present = _present_sorted(scores)
    return _breaks(sorted_present, k, method, use_reference)


def assign_tiers(scores: np.ndarray, k: int = 5, *, method: str = "jenks", use_reference: bool = False) -> np.ndarray:
    """Tier of every unit: 1 = the class of the highest scores, 0 = missing score.

    Parameters and policies as in :func:`tier_breaks` (see the module notes: ties share a tier, k is
    reduced to the number of distinct present scores, equal optima resolved towards a smaller top tier).

    ``method="quantile"`` groups by rank instead: tier = ceil(rank · k / n), rank = descending
    competition rank of the score (1 = highest; ties share the smaller rank, hence the better
    tier), n = the number of present scores; k = 10 gives deciles as the English Indices of
    Deprivation publish them.  A tier is empty when tied scores straddle its boundary, and k is not
    reduced.

    Returns
    -------
    numpy.ndarray, int64 (n_units,)
        Tiers ``1 … min(k, d)`` for present scores, 0 for missing ones.  Permuting the units permutes
        the tiers.

    Raises
    ------
    SchemaError, DataError
        As :func:`tier_breaks`.

    Examples
    --------
    >>> assign_tiers([1, 31, 2, float("nan"), 11, 3, 30, 10, 12], k=3).tolist()
    [3, 1, 3, 0, 2, 3, 1, 2, 2]
    >>> assign_tiers([1, 31, 2, float("nan"), 11, 3, 30, 10, 12], k=4, method="quantile").tolist()
    [4, 1, 4, 0, 2, 3, 1, 3, 2]
    """
    k = _check_k(k)
    values, present, sorted_present = _present_sorted(scores)
    _check_method(method)
    if method == "quantile":
        column = np.ascontiguousarray(values[:, None])
        if use_reference:
            return reference.quantile_tiers(reference.rank_desc(column)[:, 0], k)
        ranks = rank_kernels.rank_desc(column, np.empty_like(column))[:, 0]
        return kernels.quantile_tiers(ranks, k, np.empty(values.shape[0], np.int64))
    breaks = _breaks(sorted_present, k, method, use_reference)
    tiers = np.zeros(values.shape[0], dtype=np.int64)
    if breaks.size:
        n_classes = breaks.size - 1
        # lowest-first class index = number of inner upper bounds strictly below the score
        lowest_first = np.searchsorted(breaks[1:n_classes], values[present], side="left")
        tiers[present] = n_classes - lowest_first
    return tiers
