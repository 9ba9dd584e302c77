"""Dask backend: one task per chunk, the problem as one shared task, the states merged on the workers
as they complete (a fold per worker, then across workers).

A task's key is its kind (``cityrank-chunk``, ``cityrank-merge``, ``cityrank-inputs``: Dask learns each
kind's duration apart, so it weighs a chunk's real length against moving the inputs to an idle
worker), then the run's token and the chunk's block range (a merge: a digest of its two inputs'
keys), so keys differ between chunks, merges and runs; tasks are pure functions of (problem, seed,
blocks), so a task lost with a worker is simply recomputed and the result stays bit-identical.
"""

from __future__ import annotations

import gc
import hashlib
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..errors import BackendError
from .state import MergeableState

__all__ = ["WORKER_WAIT", "completed", "connect", "connected_workers", "run_dask", "share", "worker_addresses"]

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


def worker_addresses(client: Any) -> list[str]:
    """The addresses of the workers the scheduler has now (all of them, not the first few), sorted."""
    try:
        return sorted(client.scheduler_info(n_workers=-1).get("workers", {}))
    except TypeError:  # older distributed: no n_workers argument
        return sorted(client.scheduler_info().get("workers", {}))


def connected_workers(client: Any) -> int:
    """How many workers the scheduler has now."""
    return len(worker_addresses(client))


def completed(client: Any, futures: Iterable, worker_wait: float = WORKER_WAIT, poll: float | None = None,
              stream=None) -> Iterator:
    """The futures as they complete (like ``as_completed``), watching the cluster meanwhile: while
    no worker is connected, say so on ``stream`` (stderr) with how long it has waited, and raise
    :class:`BackendError` once that lasts ``worker_wait`` seconds (a run whose workers all died
    would otherwise wait forever).  Given a ``set``, the iteration works on that very set: futures
    the caller adds to it while iterating are waited for too (and each yielded one is removed)."""
    from dask.distributed import wait

    pending = futures if isinstance(futures, set) else set(futures)
    del futures  # hold no future once it is yielded (the caller may release it: its data leaves the cluster)
    poll = poll if poll is not None else min(5.0, max(0.1, worker_wait / 4))
    stream = stream or sys.stderr
    alone_since, told = None, 0.0
    while pending:
        try:
            done = wait(list(pending), timeout=poll, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            done = set()
        progressed = bool(done)
        while done:  # popped: no future stays referenced here once it is yielded
            future = done.pop()
            pending.discard(future)
            yield future
            del future
        if progressed or connected_workers(client):
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


def _on(worker: str | None) -> dict[str, Any]:
    """``submit`` options that prefer ``worker``, as a hint (the task runs elsewhere if it dies or
    lags behind); none for None."""
    return {} if worker is None else {"workers": [worker], "allow_other_workers": True}


def _holder(client: Any, future: Any) -> str | None:
    """The address of a worker that holds ``future``'s result (None if none is known now)."""
    holders = client.who_has([future]).get(future.key, ())
    return min(holders) if holders else None


def run_dask(client: Any, chunk_fn: Callable, args: tuple, token: str, ranges: list[tuple[int, int]],
             on_chunk: Callable[[tuple[int, int], MergeableState | None], None],
             worker_wait: float = WORKER_WAIT, chunk_states: bool = True) -> MergeableState | None:
    """Submit ``chunk_fn(*args, first, stop)`` per range; report each chunk as it completes
    (for checkpointing and progress) and return the merged state.  With ``chunk_states=False`` (no
    checkpoints: progress only) ``on_chunk`` gets ``None`` and no chunk's state travels to the
    client, only the merged one (a large-n chunk state is ~330 MB at 10⁵ units).  Raises
    :class:`BackendError` when no worker has been connected for ``worker_wait`` seconds.

    The states are merged on the workers as they complete, each into the state already merged on
    the same worker (a fold per worker: no state crosses the network while chunks run); once every
    chunk has run, the workers' states are merged pairwise, all pairs at once (log2(workers)
    rounds).  States add up exactly in any grouping and order (:class:`MergeableState`), so the
    result does not depend on which worker ran what or when; a merge is a task like a chunk (pure:
    recomputed if its worker dies)."""

    if not ranges:
        return None
    shared = share(client, args, f"cityrank-inputs-{token}")
    # Every chunk depends on the inputs, which are on one worker: left to itself, the scheduler gives that
    # worker the chunks of a short pass and the others wait for work stealing (4 chunks on 2 workers: 3
    # and 1).  Chunks are dealt round the workers instead, as a hint (a worker that dies or lags has its
    # chunks run or stolen elsewhere).
    workers = worker_addresses(client)
    chunks = {client.submit(_run_chunk, chunk_fn, shared, first, stop, key=f"cityrank-chunk-{token}-{first}-{stop}",
                            retries=3, **_on(workers[k % len(workers)] if workers else None)): (first, stop)
              for k, (first, stop) in enumerate(ranges)}
    pending = set(chunks)
    merged: dict[str | None, Any] = {}  # per worker: the one state merged so far that it holds

    def merge(a: Any, b: Any, where: str | None) -> None:
        # the key names the two states merged (which pairs meet depends on timing): a key never stands
        # for another computation, e.g. in a later run of the same token while this one's futures live on
        key = f"cityrank-merge-{token}-{hashlib.sha256(f'{a.key} {b.key}'.encode()).hexdigest()[:16]}"
        # before the worker's next chunk (priority): its two states leave its memory at once
        pending.add(client.submit(_merge, a, b, key=key, retries=3, priority=1, **_on(where)))

    for future in completed(client, pending, worker_wait):
        where = _holder(client, future)
        if where in merged:  # merged first, reported (e.g. stored as a checkpoint) meanwhile
            merge(merged.pop(where), future, where)
        else:
            merged[where] = future
        chunk = chunks.pop(future, None)
        if chunk is not None:
            on_chunk(chunk, future.result() if chunk_states else None)
        # a chunk's future is dropped once reported and merged: its state then leaves the worker's memory
        # as soon as its merge has run (holding every chunk state of a pass at 10^5 units held ~2.3 GB
        # per worker); a worker holds at most one state not merged yet
        del future
        if not pending:  # every chunk has run: merge the workers' states, in pairs at once (log2 rounds)
            while len(merged) > 1:
                (where, a), (_, b) = merged.popitem(), merged.popitem()
                merge(a, b, where)
                del a, b
    (final,) = merged.values()
    return final.result()
