"""Ranking stage: descending competition ranks of every node's scores."""

from __future__ import annotations

from concurrent.futures import Executor

import numpy as np

from ..kernels import rank as kernels
from ..kernels import reference

__all__ = ["rank", "rank_dtype"]

#: The largest unit count whose ranks (integers 1 … n) float32 holds exactly (every integer up to 2^24).
FLOAT32_EXACT = 2**24


def rank_dtype(n_units: int) -> np.dtype:
    """The compact dtype of a pipeline's stored ranks: float32 (4 bytes, NaN = missing) when every
    rank 1 … ``n_units`` is exact in it, else float64 (10^6 units × 39 nodes: 156 MB instead of 312)."""
    return np.dtype(np.float32 if n_units <= FLOAT32_EXACT else np.float64)


def rank(values: np.ndarray, *, use_reference: bool = False, pool: Executor | None = None,
         dtype: np.dtype | type = np.float64) -> np.ndarray:
    """Ranks (``dtype``: float64, or float32 from :func:`rank_dtype`; NaN for missing) of every
    column: largest score = 1, ties share the minimum rank, missing stays missing.

    The result is column-major (Fortran order: each node's ranks are contiguous).  With ``pool``,
    the columns are ranked in its threads (NumPy's sort and the kernel release the GIL); each
    column is computed alone, so the ranks do not depend on the number of threads."""
    values = np.asarray(values, dtype=np.float64)
    if use_reference:
        return np.asfortranarray(reference.rank_desc(np.ascontiguousarray(values)), dtype=dtype)
    out = np.empty(values.shape, dtype, order="F")

    def column(j: int) -> None:  # memory O(n_units) per thread beyond the result
        keys = np.negative(values[:, j])  # one pass over the strided column: largest score first
        missing = ~np.isfinite(keys)
        if missing.any():
            keys[missing] = np.nan  # missing (NaN, ±inf) sorts last
        order = np.argsort(keys)
        kernels.rank_ordered(np.negative(keys, out=keys), order, out[:, j])  # −(−x) is x, bit for bit

    if pool is None:
        for j in range(values.shape[1]):
            column(j)
    else:
        list(pool.map(column, range(values.shape[1])))
    return out
