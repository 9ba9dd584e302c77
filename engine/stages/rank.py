"""Ranking stage: descending competition ranks of every node's scores."""

from __future__ import annotations

import numpy as np

from ..kernels import rank as kernels
from ..kernels import reference

__all__ = ["rank"]


def rank(values: np.ndarray, *, use_reference: bool = False) -> np.ndarray:
    """Ranks (float64, NaN for missing) of every column: largest score = 1, ties share the
    minimum rank, missing stays missing."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    if use_reference:
        return reference.rank_desc(values)
    out = np.empty_like(values)
    for j in range(values.shape[1]):  # one column at a time: memory O(n_units) beyond the result
        column = np.ascontiguousarray(values[:, j])
        with np.errstate(invalid="ignore"):
            keys = np.where(np.isfinite(column), -column, np.nan)  # missing sorts last
        out[:, j] = kernels.rank_ordered(column, np.argsort(keys), np.empty_like(column))
    return out
