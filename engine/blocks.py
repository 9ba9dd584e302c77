"""Row blocks: a large array's units handled a block of rows at a time, in a pool's threads if given.

Every block is computed alone and in the same way, so a result does not depend on the block size
or the number of threads (used by the data preparation, aggregation and the output table)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor

__all__ = ["ROW_BLOCK", "over_blocks"]

#: Units per block (16,384 rows of 25–40 float64 columns: a few MB, cache-friendly, many blocks per thread).
ROW_BLOCK = 16_384


def over_blocks(n_rows: int, work: Callable[[int, int], None], pool: Executor | None = None,
                block: int = ROW_BLOCK) -> None:
    """Call ``work(start, stop)`` for the rows ``start … stop − 1`` of every block of ``block`` rows
    among ``n_rows``, in ``pool``'s threads (or here, in order, without one)."""
    bounds = [(start, min(start + block, n_rows)) for start in range(0, n_rows, block)]
    if pool is None:
        for start, stop in bounds:
            work(start, stop)
    else:
        list(pool.map(lambda b: work(*b), bounds))
