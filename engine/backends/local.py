"""In-process backend: chunks one after another, Numba lanes (threads) inside each chunk."""

from __future__ import annotations

from collections.abc import Callable

import numba

from .state import MergeableState

__all__ = ["run_local"]


def run_local(chunk_fn: Callable[[int, int, int], MergeableState], ranges: list[tuple[int, int]],
              threads: int | None, on_chunk: Callable[[tuple[int, int], MergeableState], None]) -> None:
    """Call ``chunk_fn(first, stop, n_lanes)`` for every range; ``threads=1`` is the serial backend."""
    lanes = threads or numba.get_num_threads()
    if lanes > numba.config.NUMBA_NUM_THREADS:
        lanes = numba.config.NUMBA_NUM_THREADS
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, lanes))
    try:
        for first, stop in ranges:
            on_chunk((first, stop), chunk_fn(first, stop, lanes))
    finally:
        numba.set_num_threads(previous)
