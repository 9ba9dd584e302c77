"""Backends run the same chunk function over blocks of replicates and merge the states.

* ``serial``: one lane, in process;
* ``threads``: Numba ``prange`` lanes in process (default: all of Numba's threads);
* ``dask``: one task per chunk on a ``dask.distributed`` cluster, states merged by a tree
  reduction on the workers; an existing ``Client``, a scheduler address, or a local cluster of
  ``workers`` processes.

Chunks are fixed ranges of whole blocks, never keyed by worker, so every backend gives the same
bit-identical statistics.
"""

from collections.abc import Callable
from typing import Any

from .distributed import connected_workers, run_dask
from .local import run_local
from .state import MergeableState

__all__ = ["MergeableState", "check_backend", "chunk_ranges", "execute", "run_dask", "run_local"]

BACKENDS = ("serial", "threads", "dask")


def check_backend(backend: str, threads: int | None = None, workers: int | None = None,
                  worker_wait: float | None = None) -> None:
    """Refuse an unknown backend or a thread/worker count below 1 before any work starts."""
    from ..errors import SchemaError

    if backend not in BACKENDS:
        raise SchemaError(f"unknown backend {backend!r}", fix="use serial, threads or dask")
    for name, value in (("threads", threads), ("workers", workers)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise SchemaError(f"{name} must be a whole number of at least 1, got {value!r}",
                              fix=f"pass {name}=None for the default, or a count such as 2")
    if worker_wait is not None and not worker_wait > 0:
        raise SchemaError(f"worker_wait must be a positive number of seconds, got {worker_wait!r}",
                          fix="e.g. worker_wait=300")


def chunk_ranges(n_blocks: int, chunk_blocks: int, done: set[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    """Fixed chunks ``[(first, stop), …]`` covering blocks 0 … n_blocks − 1, minus those done."""
    ranges = [(b, min(b + chunk_blocks, n_blocks)) for b in range(0, n_blocks, chunk_blocks)]
    return [r for r in ranges if not done or r not in done]


def execute(backend: str, ranges: list[tuple[int, int]], *, local_chunk: Callable, dask_task: Callable,
            dask_args: tuple, token: str, on_chunk: Callable, threads: int | None = None, client: Any = None,
            scheduler: str | None = None, workers: int | None = None, worker_wait: float | None = None,
            chunk_states: bool = True):
    """Run the chunks on a backend; return ``(merged state or None, info)``.

    ``local_chunk(first, stop, n_lanes)`` runs a chunk in process; ``dask_task(*dask_args, first,
    stop)`` is the same chunk as a Dask task.  ``on_chunk(chunk, state)`` is called once per
    completed chunk (progress, checkpoints); on Dask with ``chunk_states=False`` (no checkpoints) it
    gets ``None`` instead of the state, which then stays on the workers.  ``worker_wait``: seconds a
    Dask run waits with no worker connected before it raises BackendError (default
    ``distributed.WORKER_WAIT``)."""
    info: dict[str, Any] = {"backend": backend}
    if backend == "dask":
        from .distributed import connect

        dask_client, owned = connect(client, scheduler, workers)
        info["workers"] = connected_workers(dask_client)
        try:
            merged = run_dask(dask_client, dask_task, dask_args, token, ranges, on_chunk, chunk_states=chunk_states,
                              **({} if worker_wait is None else {"worker_wait": worker_wait}))
        finally:
            if owned:
                dask_client.close()
                if getattr(dask_client, "cluster", None) is not None:
                    dask_client.cluster.close()
        return merged, info
    lanes = 1 if backend == "serial" else threads
    info["threads"] = lanes or __import__("numba").get_num_threads()
    merged = None

    def accumulate(chunk: tuple[int, int], chunk_state) -> None:
        nonlocal merged
        # the first chunk's state is copied once, then every chunk is added into that copy in place
        merged = chunk_state.copy() if merged is None else merged.absorb(chunk_state)
        on_chunk(chunk, chunk_state)

    run_local(local_chunk, ranges, lanes, accumulate)
    return merged, info
