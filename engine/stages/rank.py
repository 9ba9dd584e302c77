"""Ranking stage: descending competition ranks of every node's scores."""

from __future__ import annotations

from concurrent.futures import Executor

import numpy as np

from ..kernels import rank as kernels
from ..kernels import reference

__all__ = ["rank"]


def rank(values: np.ndarray, *, use_reference: bool = False, pool: Executor | None = None) -> np.ndarray:
    """Ranks (float64, NaN for missing) of every column: largest score = 1, ties share the
    minimum rank, missing stays missing.

    The result is column-major (Fortran order: each node's ranks are contiguous).  With ``pool``,
    the columns are ranked in its threads (NumPy's sort and the kernel release the GIL); each
    column is computed alone, so the ranks do not depend on the number of threads."""
    values = np.asarray(values, dtype=np.float64)
    if use_reference:
        return np.asfortranarray(reference.rank_desc(np.ascontiguousarray(values)))
    out = np.empty(values.shape, np.float64, order="F")

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
