"""Ranking kernels.

``rank_desc``: descending competition ranks ("1, 2, 2, 4"), the field's convention for scores
(COINr: ``rank(-x, ties.method = "min", na.last = "keep")``).  Non-finite values stay missing
(NaN) and do not count.  The twin is :func:`engine.kernels.reference.rank_desc`.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit

__all__ = ["rank_desc"]  # rank_1d is a building block shared with normalise.py


@jit
def rank_1d(x, descending, out):
    """Competition rank of one column into ``out`` (float64, NaN for missing).

    Formula: rank_i = 1 + #{j present : x_j > x_i} (descending) or ``<`` (ascending).
    Implementation: stable argsort of the present keys, then a walk that gives every member of a
    run of equal keys the position of the run's first member.
    """
    n = x.shape[0]
    keys = np.empty(n, np.float64)
    where = np.empty(n, np.int64)
    count = 0
    for i in range(n):
        out[i] = np.nan
        v = x[i]
        if np.isfinite(v):
            keys[count] = -v if descending else v
            where[count] = i
            count += 1
    order = np.argsort(keys[:count], kind="mergesort")
    current = 0.0
    previous = 0.0
    for pos in range(count):
        key = keys[order[pos]]
        if pos == 0 or key != previous:
            current = pos + 1.0
            previous = key
        out[where[order[pos]]] = current
    return out


@jit
def rank_desc(x, out):
    """Descending competition rank of every column of ``x`` (n_units, n_cols) into ``out``."""
    for j in range(x.shape[1]):
        rank_1d(x[:, j].copy(), True, out[:, j])
    return out
