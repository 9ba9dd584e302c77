"""Dask backend: one task per chunk, the problem as one shared task, tree reduction of the states.

The task key contains the run's token and the chunk's block range, so keys differ between chunks
and runs; tasks are pure functions of (problem, seed, blocks), so a task lost with a worker is
simply recomputed and the result stays bit-identical.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..errors import BackendError
from .state import MergeableState

__all__ = ["WORKER_WAIT", "completed", "connect", "run_dask", "share"]

#: Seconds a run waits with no Dask worker connected before it gives up (BackendError).
WORKER_WAIT = 300.0


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
        except (OSError, TimeoutError, ValueError) as exc:  # ValueError: a malformed address
            reason = str(exc)
        # The half-built Client is closed by its __del__.  Left to the garbage collector, that may run
        # inside the next LocalCluster's start and deadlock on its loop (seen in the tests), so the
        # client is collected here, with no traceback keeping it alive (hence no chained exception).
        gc.collect()
        raise BackendError(f"cannot reach the Dask scheduler at {scheduler!r}: {reason}",
                           fix="start it with `dask scheduler` and check the address (tcp://host:port)")
    cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True, dashboard_address=":0")
    return Client(cluster), True


def _merge(a: MergeableState, b: MergeableState) -> MergeableState:
    return a.merge(b)


def _shared_inputs(args: tuple) -> tuple:
    return args


def share(client: Any, args: tuple, key: str):
    """A future of ``args`` for many tasks to depend on.  A task's result rather than scattered data:
    the scheduler keeps the task, so if every worker holding the result dies (the active memory
    manager may have dropped the extra replicas of scattered data), it is recomputed instead of its
    dependents being cancelled as "already forgotten"."""
    return client.submit(_shared_inputs, args, key=key, retries=3)


def connected_workers(client: Any) -> int:
    """How many workers the scheduler has now (all of them, not the first few)."""
    try:
        return len(client.scheduler_info(n_workers=-1).get("workers", {}))
    except TypeError:  # older distributed: no n_workers argument
        return len(client.scheduler_info().get("workers", {}))


def completed(client: Any, futures: Iterable, worker_wait: float = WORKER_WAIT, poll: float | None = None,
              stream=None) -> Iterator:
    """The futures as they complete (like ``as_completed``), watching the cluster meanwhile: while
    no worker is connected, say so on ``stream`` (stderr) with how long it has waited, and raise
    :class:`BackendError` once that lasts ``worker_wait`` seconds (a run whose workers all died
    would otherwise wait forever)."""
    from dask.distributed import wait

    pending = set(futures)
    del futures  # hold no future once it is yielded (the caller may release it: its data leaves the cluster)
    poll = poll if poll is not None else min(5.0, max(0.1, worker_wait / 4))
    stream = stream or sys.stderr
    alone_since, told = None, 0.0
    while pending:
        try:
            done = wait(list(pending), timeout=poll, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            done = set()
        for future in done:
            pending.discard(future)
            yield future
        if done or connected_workers(client):
            alone_since = None
            continue
        now = time.monotonic()
        alone_since = alone_since if alone_since is not None else now
        waited = now - alone_since
        address = getattr(getattr(client, "scheduler", None), "address", "the scheduler")
        if waited >= worker_wait:
            raise BackendError(f"no Dask worker connected to {address} for {waited:.0f} s "
                               f"({len(pending)} tasks still to run); giving up",
                               fix="start workers (`dask worker <scheduler address>`) and run again (with -o, "
                               "--resume continues from the stored chunks), or allow a longer wait "
                               "(--worker-wait SECONDS / worker_wait=)")
        if now - told >= min(30.0, max(poll, worker_wait / 4)) or told == 0.0:
            told = now
            stream.write(f"cityrank: no Dask worker connected to {address}; waited {waited:.0f} s "
                         f"(giving up after {worker_wait:.0f} s)\n")
            stream.flush()


def _run_chunk(chunk_fn: Callable, args: tuple, first: int, stop: int) -> MergeableState:
    return chunk_fn(*args, first, stop)


def run_dask(client: Any, chunk_fn: Callable, args: tuple, token: str, ranges: list[tuple[int, int]],
             on_chunk: Callable[[tuple[int, int], MergeableState | None], None],
             worker_wait: float = WORKER_WAIT, chunk_states: bool = True) -> MergeableState | None:
    """Submit ``chunk_fn(*args, first, stop)`` per range; report each chunk as it completes
    (for checkpointing and progress) and return the tree-reduced state.  The states are merged on
    the workers; with ``chunk_states=False`` (no checkpoints: progress only) ``on_chunk`` gets
    ``None`` and no chunk's state travels to the client, only the merged one (a large-n chunk
    state is ~440 MB at 10⁵ units).  Raises :class:`BackendError` when no worker has been
    connected for ``worker_wait`` seconds."""

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
    # a chunk's future is dropped once reported: its state then leaves the workers' memory as soon as
    # its merge has run, instead of every chunk state of the pass staying until the end (10 chunks at
    # 10^5 units held ~2.3 GB per pass)
    for future in completed(client, list(futures), worker_wait):
        chunk = futures.pop(future)
        on_chunk(chunk, future.result() if chunk_states else None)
        del future
    for _ in completed(client, [level[0]], worker_wait):
        pass
    return level[0].result()
