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
    return kernels.rank_desc(values, np.empty_like(values))
