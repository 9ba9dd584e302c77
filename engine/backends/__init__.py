"""Backends run the same chunk function over blocks of replicates and merge the states.

* ``serial``: one lane, in process;
* ``threads``: Numba ``prange`` lanes in process (default: all of Numba's threads);
* ``dask``: one task per chunk on a ``dask.distributed`` cluster, states merged by a tree
  reduction on the workers; an existing ``Client``, a scheduler address, or a local cluster of
  ``workers`` processes.

Chunks are fixed ranges of whole blocks, never keyed by worker, so every backend gives the same
bit-identical statistics.
"""

from .local import run_local
from .distributed import run_dask

__all__ = ["run_local", "run_dask", "chunk_ranges"]


def chunk_ranges(n_blocks: int, chunk_blocks: int, done: set[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    """Fixed chunks ``[(first, stop), …]`` covering blocks 0 … n_blocks − 1, minus those done."""
    ranges = [(b, min(b + chunk_blocks, n_blocks)) for b in range(0, n_blocks, chunk_blocks)]
    return [r for r in ranges if not done or r not in done]
