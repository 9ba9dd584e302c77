"""Dask backend: one task per chunk, the problem as one shared task, tree reduction of the states.

The task key contains the run's token and the chunk's block range, so keys differ between chunks
and runs; tasks are pure functions of (problem, seed, blocks), so a task lost with a worker is
simply recomputed and the result stays bit-identical.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..analysis.montecarlo import ChunkState
from ..errors import BackendError

__all__ = ["run_dask", "connect", "share"]


def connect(client: Any = None, scheduler: str | None = None, workers: int | None = None):
    """Return ``(client, owned)``: the given client, one connected to ``scheduler``, or a new local
    cluster of ``workers`` single-threaded processes (``owned`` = we must close it)."""
    if client is not None:
        return client, False
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - dask[distributed] is a dependency
        raise BackendError("dask.distributed is not installed", fix="pip install 'dask[distributed]'") from exc
    if scheduler:
        try:
            return Client(scheduler, timeout="20s"), True
        except (OSError, TimeoutError) as exc:
            raise BackendError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}",
                               fix="start it with `dask scheduler` and check the address (tcp://host:port)") from exc
    cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster), True


def _merge(a: ChunkState, b: ChunkState) -> ChunkState:
    return a.merge(b)


def _shared_inputs(args: tuple) -> tuple:
    return args


def share(client: Any, args: tuple, key: str):
    """A future of ``args`` for many tasks to depend on.  A task's result rather than scattered data:
    the scheduler keeps the task, so if every worker holding the result dies (the active memory
    manager may have dropped the extra replicas of scattered data), it is recomputed instead of its
    dependents being cancelled as "already forgotten"."""
    return client.submit(_shared_inputs, args, key=key, retries=3)


def _run_chunk(chunk_fn: Callable, args: tuple, first: int, stop: int) -> ChunkState:
    return chunk_fn(*args, first, stop)


def run_dask(client: Any, chunk_fn: Callable, args: tuple, token: str, ranges: list[tuple[int, int]],
             on_chunk: Callable[[tuple[int, int], ChunkState], None]) -> ChunkState | None:
    """Submit ``chunk_fn(*args, first, stop)`` per range; report each chunk as it completes
    (for checkpointing and progress) and return the tree-reduced state."""
    from dask.distributed import as_completed

    if not ranges:
        return None
    shared = share(client, args, f"cityrank-{token}-inputs")
    futures = {client.submit(_run_chunk, chunk_fn, shared, first, stop, key=f"cityrank-{token}-chunk-{first}-{stop}",
                             retries=3): (first, stop) for first, stop in ranges}
    level = list(futures)
    depth = 0
    while len(level) > 1:
        nxt = []
        for k in range(0, len(level) - 1, 2):
            nxt.append(client.submit(_merge, level[k], level[k + 1], key=f"cityrank-{token}-merge-{depth}-{k}",
                                     retries=3))
        if len(level) % 2:
            nxt.append(level[-1])
        level, depth = nxt, depth + 1
    for future in as_completed(list(futures)):
        on_chunk(futures[future], future.result())
    return level[0].result()
