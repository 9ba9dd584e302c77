"""One run driver for the replicate analyses (Monte Carlo, bootstrap, Sobol and those to come).

An analysis is an adapter (:class:`Analysis`): its design, its kernel call over a chunk of blocks,
its mergeable state and its summaries.  :func:`drive` does the rest, once for all of them: the
chunk plan, the run's estimate and ``confirm``, progress, checkpoints (store, lock, resume),
dispatch to a backend (:mod:`engine.backends`: in process or Dask) and writing the result.
The rest every analysis shares lives here too: :func:`check_run` (output path and backend
options, before any work), :func:`run_seed` (fresh entropy, recorded, when no seed is given),
:func:`calibrate`, :func:`run_manifest`, :func:`warn_missing_ranks`, :func:`versions`.

Adding an analysis: check with :func:`check_run`, score the nominal run, build the problem and the
design, then ``drive(Adapter(...), finish, backend, ...)`` where ``finish(state, info)`` turns the
merged state into the result (see ``_MonteCarlo`` in :mod:`engine.analysis.uncertainty`).

A run is ``n_replicates`` replicates in blocks of ``block_size``; a chunk (a fixed number of
consecutive blocks, never keyed by a worker) is the unit of work of the backends, of the
checkpoints and of progress, so a result does not depend on the backend, threads or workers.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import polars as pl

from .. import __version__
from ..backends import MergeableState, check_backend, chunk_ranges, execute
from ..errors import DataError, MissingRankWarning
from ..io import check_output
from ..progress import Progress
from .design import RNG_BLOCK
from .memory import local_lanes
from .montecarlo import aligned_chunk_blocks

if TYPE_CHECKING:
    from ..pipeline import ScoreResult
    from .montecarlo import ChunkState, RankStatistics
    from .problem import Problem

__all__ = ["Analysis", "BackendOptions", "calibrate", "check_run", "data_digest", "drive", "replicate_chunk_blocks",
           "run_manifest", "run_seed", "run_token", "versions", "warn_missing_ranks"]


def run_seed(seed: int | None) -> int:
    """The run's seed: ``seed``, or fresh entropy (recorded in the manifest, so the run can be repeated)."""
    return seed if seed is not None else int(np.random.SeedSequence().entropy % (2**63))


def run_token(fingerprint: dict[str, Any]) -> str:
    """A short digest of a run's fingerprint (names its Dask tasks)."""
    return hashlib.sha256(json.dumps(fingerprint, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BackendOptions:
    """Where the chunks run: ``serial``, ``threads`` (Numba lanes, default all) or ``dask`` (a
    ``client``, a ``scheduler`` address or a local cluster of ``workers``); ``worker_wait``: seconds
    a Dask run waits with no worker connected."""

    backend: str = "threads"
    threads: int | None = None
    client: Any = None
    scheduler: str | None = None
    workers: int | None = None
    worker_wait: float | None = None

    def check(self) -> BackendOptions:
        """Refuse an unknown backend or a thread/worker count below 1 (SchemaError); returns self."""
        check_backend(self.backend, self.threads, self.workers, self.worker_wait)
        return self

    @property
    def lanes(self) -> int:
        """Lanes counting at once in this machine's memory (:func:`engine.analysis.memory.local_lanes`)."""
        return local_lanes(self.backend, self.threads, self.workers)


def check_run(out: str | Path | None, inputs: list[Any], backend: BackendOptions) -> BackendOptions:
    """What every analysis checks before any work: its output path (:func:`engine.io.check_output`:
    a folder or a ``.xlsx`` file that would overwrite none of its ``inputs``) and its backend
    options (:meth:`BackendOptions.check`); returns the options."""
    if out is not None:
        check_output(out, "tables", inputs=inputs)
    return backend.check()


class Analysis(Protocol):
    """What an analysis gives the driver.  Its state is a :class:`engine.backends.MergeableState`."""

    n_replicates: int  #: Replicates of the run (a Sobol run: base samples).
    block_size: int  #: Replicates per block (the last block may be partial).
    #: Progress: units of work per replicate and their name.
    work_per_replicate: int
    work_unit: str
    #: Whether a state can be stored as a checkpoint (:class:`engine.analysis.store.ChunkStore`).
    checkpoints: bool

    def chunk_blocks(self, requested: int | None, distributed: bool) -> int:
        """Blocks per chunk (``distributed``: checkpointed or on Dask)."""

    def empty_state(self) -> MergeableState:
        """The state of no blocks (what stored chunks are loaded into)."""

    def run_chunk(self, first: int, stop: int, n_lanes: int, on_block: Callable[[int], None]) -> MergeableState:
        """Blocks ``[first, stop)`` in process on ``n_lanes`` lanes; ``on_block(n)`` after ``n`` replicates
        (also what :func:`calibrate` times)."""

    def dask_task(self) -> tuple[Callable[..., MergeableState], tuple]:
        """``(function, arguments)``: ``function(*arguments, first, stop)`` runs a chunk with one lane
        (a module-level function, so that Dask can ship it)."""

    def fingerprint(self) -> dict[str, Any]:
        """What a resumed run must share with the stored one (and what names the Dask tasks)."""

    def close(self) -> None:
        """Release in-process resources kept from chunk to chunk."""


def calibrate(analysis: Analysis, n_lanes: int, replicates: int = 1024) -> float:
    """Seconds per replicate of ``n_lanes`` lanes together (their throughput on this machine as it
    is loaded now): the run's first blocks, ``replicates`` per lane (at least one block each), timed
    after a first, identical run that compiles the kernels."""
    size = analysis.block_size
    blocks = min(max(n_lanes, replicates * n_lanes // size), -(-analysis.n_replicates // size))

    def ignore(n: int) -> None:
        pass

    analysis.run_chunk(0, blocks, n_lanes, ignore)
    started = time.perf_counter()
    analysis.run_chunk(0, blocks, n_lanes, ignore)
    return (time.perf_counter() - started) / min(blocks * size, analysis.n_replicates)


def _one_thread(task: Callable, *args: Any):
    """A Dask task runs with one Numba thread (a worker runs one task per thread it has; more Numba
    threads would oversubscribe its cores)."""
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return task(*args)
    finally:
        numba.set_num_threads(previous)


def drive(analysis: Analysis, finish: Callable[[MergeableState, dict[str, Any]], Any], backend: BackendOptions, *,
          out: str | Path | None = None, out_format: str | None = None, resume: bool = False,
          overwrite: bool = False, keep_checkpoints: bool = False, progress: bool = False,
          chunk_blocks: int | None = None, confirm: Callable[[dict[str, Any]], None] | None = None):
    """Run ``analysis`` over all its blocks on ``backend`` and return ``finish(state, info)``
    (``info``: backend, threads or workers, resumed chunks), written to ``out`` when given.

    ``out`` (a folder) holds the checkpoints of an analysis that has them: one run at a time (a
    lock), ``resume`` continues from the stored chunks, bit-identically; ``overwrite`` and
    ``keep_checkpoints`` as in :class:`engine.analysis.store.ChunkStore`.  ``confirm`` is called
    with the estimate (``stage`` ``"start"``, from :func:`calibrate`) and, when
    checkpointing, after the first stored chunk (``"first chunk"``, with ``checkpoint_bytes``)."""
    n, size = analysis.n_replicates, analysis.block_size
    n_blocks = -(-n // size)
    dask = backend.backend == "dask"
    workbook = out is not None and Path(out).suffix.lower() == ".xlsx"
    if workbook and resume:
        raise DataError("cannot resume into a .xlsx output (a workbook holds no checkpoints)", path=str(out),
                        fix="resume the folder given as --out of the killed run")
    stores = analysis.checkpoints and out is not None
    blocks = analysis.chunk_blocks(chunk_blocks, stores or dask)
    n_chunks = -(-n_blocks // blocks)
    if confirm is not None:
        # in-process: the lanes' measured throughput; Dask: one lane here, divided by the workers
        lanes = backend.lanes
        per_replicate = calibrate(analysis, 1 if dask else lanes) / (lanes if dask else 1)
        confirm({"stage": "start", "replicates": n, "seconds": per_replicate * n,
                 "chunks": n_chunks if stores else None, "checkpoint_bytes": None})
    fingerprint = analysis.fingerprint()
    store = None
    done: list[tuple[int, int]] = []  # stored chunks (added into state)
    state = analysis.empty_state()
    if stores and not workbook:
        from .store import ChunkStore

        store = ChunkStore(out, fingerprint, resume=resume, overwrite=overwrite, block_size=size, n_replicates=n)
        done = store.load(state) if resume else []
    ranges = chunk_ranges(n_blocks, blocks, set(done))
    stored_blocks = {b for first, stop in done for b in range(first, stop)}
    if any(b in stored_blocks for first, stop in ranges for b in range(first, stop)):
        whole = sorted({stop - first for first, stop in done if stop < n_blocks})  # not the run's last chunk
        started_with = f"chunk_blocks={whole[-1]}" if len(whole) == 1 else "the chunk_blocks"
        store.close()
        raise DataError(f"cannot resume: the stored chunks do not line up with chunks of {blocks} blocks",
                        path=str(out), fix=f"resume with {started_with} the run was started with")

    def work(first: int, stop: int) -> int:
        return (min(stop * size, n) - first * size) * analysis.work_per_replicate

    bar = Progress(n * analysis.work_per_replicate, unit=analysis.work_unit, enabled=progress)
    bar.update(sum(work(*chunk) for chunk in done))

    def on_chunk(chunk: tuple[int, int], chunk_state: MergeableState | None) -> None:
        if store is not None:
            store.save(chunk, chunk_state)
            if confirm is not None and not done and bar.done == 0 and n_chunks > 1:  # the run's first stored chunk
                stored = sum(f.stat().st_size for f in store.chunks.glob("chunk_*"))
                with bar.paused():
                    confirm({"stage": "first chunk", "replicates": n, "chunks": n_chunks,
                             "checkpoint_bytes": stored * n_chunks, "seconds": None})
        bar.update(work(*chunk))

    def partial(replicates: int) -> None:
        bar.partial(replicates * analysis.work_per_replicate)

    task, args = analysis.dask_task()
    try:
        merged, info = execute(
            backend.backend, ranges, threads=backend.threads, client=backend.client, scheduler=backend.scheduler,
            workers=backend.workers, worker_wait=backend.worker_wait, token=run_token(fingerprint),
            local_chunk=lambda first, stop, n_lanes: analysis.run_chunk(first, stop, n_lanes, partial),
            dask_task=_one_thread, dask_args=(task, *args), on_chunk=on_chunk, chunk_states=store is not None)
    except BaseException:
        if store is not None:
            store.close()  # the lock; the stored chunks stay for --resume
        raise
    finally:
        bar.close()
        analysis.close()  # e.g. lanes' buffers: not needed for the summaries
    if merged is not None:
        state.absorb(merged)  # the run's own state (empty, or the stored chunks): no copy of its histograms
    if analysis.checkpoints:
        info["resumed_chunks"] = len(done)
    try:
        result = finish(state, info)
        if out is not None:
            result.write(out, format=out_format)
        if store is not None:
            store.finish(keep=keep_checkpoints)
    finally:
        if store is not None:
            store.close()
    return result


def versions() -> dict[str, str]:
    """Versions of the engine and of the libraries a result depends on (recorded in every manifest)."""
    import dask
    import numba

    return {"cityrank": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "polars": pl.__version__, "dask": dask.__version__}


def data_digest(result: ScoreResult) -> str:
    """SHA-256 of the raw indicator matrix a run was scored from."""
    return hashlib.sha256(np.ascontiguousarray(result.stages.inputs.raw).tobytes()).hexdigest()


def replicate_chunk_blocks(requested: int | None, replicates: int, block_size: int) -> int:
    """Blocks per chunk: ``requested``, else ``replicates``' worth, rounded up to whole RNG blocks."""
    return aligned_chunk_blocks(requested or replicates // block_size, block_size)


def run_manifest(kind: str, problem: Problem, spec: dict[str, Any], block_size: int, seed: int,
                 stats: RankStatistics, state: ChunkState, wall: float) -> dict[str, Any]:
    """The manifest entries every analysis run records (framework, data, spec, seed, versions,
    replicates, speed, missing ranks, R_S summary)."""
    framework = problem.framework
    n = stats.n_replicates
    return {
        "kind": kind,
        "framework": {"id": framework.id, "digest": framework.digest, "path": framework.path},
        "data": problem.result.recipe["data"] if problem.result is not None else None,
        "spec": spec | {"seed": seed},
        "targets": list(problem.target_ids),
        "replicates": n,
        "block_size": block_size,
        "rng_block": RNG_BLOCK,
        "seed": seed,
        "versions": versions(),
        "wall_time_s": wall,
        "replicates_per_s": n / wall if wall > 0 else None,
        "missing_ranks": {t: int(state.hist[k][:, -1].sum()) for k, t in enumerate(problem.target_ids)},
        "rank_shift": stats.rank_shift_summary,
    }


def warn_missing_ranks(kind: str, target_ids: Sequence[str], units: Sequence[Any], missing: Sequence[np.ndarray],
                       n_evaluations: int, nominal: np.ndarray) -> None:
    """Warn (:class:`MissingRankWarning`) when replicates left ranks missing: per target, the count,
    the share of all unit-replicate ranks and the units missing most often.  ``missing``: per target,
    (n_units,) counts of replicates in which the unit had no rank; ``nominal``: (n_targets, n_units)
    nominal ranks (0 = none)."""
    for target, counts, ranks in zip(target_ids, missing, nominal, strict=True):
        total, size = int(counts.sum()), n_evaluations * len(counts)
        if total == 0:
            continue
        worst = np.argsort(-counts, kind="stable")[:3]
        most = ", ".join(f"{units[i]} ({counts[i] / n_evaluations:.1%})" for i in worst if counts[i] > 0)
        unranked = int(np.count_nonzero(ranks == 0))
        also = f"; {unranked} unit(s) have no nominal rank either" if unranked else ""
        where = "`missing_ranks` in the manifest" + ("" if kind == "sensitivity" else ", p_missing in the units table")
        warnings.warn(f"{kind}: {total:,} of {size:,} ranks of {target!r} are missing ({total / size:.1%}): the unit "
                      f"got no score in those replicates{also}; most often {most}. See {where}",
                      MissingRankWarning, stacklevel=2)
