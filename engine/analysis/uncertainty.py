"""``engine.uncertainty``: prepare → run blocks on a backend → exact statistics → tables/files."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .. import __version__
from ..display import ResultShape
from ..errors import DataError, SchemaError
from ..io import with_unit_names
from ..pipeline import ScoreResult, score
from .design import RNG_BLOCK, Parameters
from .driver import (
    BackendOptions,
    check_run,
    data_digest,
    drive,
    replicate_chunk_blocks,
    run_manifest,
    run_seed,
    versions,
    warn_missing_ranks,
)
from .largen import LARGE_N_ABOVE, default_bins, large_n_mode, run_largen
from .memory import check_memory
from .montecarlo import ChunkState, Lanes, RankStatistics, run_chunk, run_design, summarise
from .problem import Problem, build_problem
from .spec import UncertaintySpec, load_spec, resolve_factors
from .store import CHECKPOINT_FORMAT

__all__ = ["UncertaintyResult", "uncertainty", "versions", "with_default_factors"]


@dataclass(frozen=True, repr=False)
class UncertaintyResult(ResultShape):
    """Rank distributions of a Monte Carlo run (per target node) and its manifest (the shape of
    every result: :class:`engine.display.ResultShape`)."""

    statistics: RankStatistics
    manifest: dict[str, Any]
    problem: Problem

    @property
    def units(self) -> pl.DataFrame:
        """Per-unit table of the first target (the index by default)."""
        return self.statistics.units[self.problem.target_ids[0]]

    def least_stable(self, n: int = 10) -> pl.DataFrame:
        """Units with the widest 90 % rank interval (then the largest rank sd)."""
        return self.units.sort(["rank_range_90", "rank_sd"], descending=True, nulls_last=True).head(n)

    def output_tables(self) -> dict[str, pl.DataFrame]:
        """What :meth:`write` writes: per target, the per-unit table (display names and groups beside
        the unit codes), the acceptability matrix, the R_S table and the pairs (first target
        unsuffixed, others ``_<target>``)."""
        stats = self.statistics
        names = self.problem.unit_names()
        tables = {}
        for target in self.problem.target_ids:
            suffix = "" if target == self.problem.target_ids[0] else f"_{target}"
            tables[f"units{suffix}"] = with_unit_names(stats.units[target], names)
            tables[f"acceptability{suffix}"] = with_unit_names(stats.acceptability[target], names)
            tables[f"rank_shift{suffix}"] = stats.rank_shift[target]
            if target in stats.pairs:
                tables[f"pairs{suffix}"] = stats.pairs[target]
        return tables


def _chunk(problem: Problem, factors, seed: int, block_size: int, n_replicates: int, first: int, stop: int
           ) -> ChunkState:
    """Dask task: blocks [first, stop) with one lane."""
    return run_chunk(problem, factors, seed, first, stop, block_size, n_lanes=1, n_replicates=n_replicates)


#: Replicates per chunk when chunks are checkpoints or Dask tasks (a folder stored with one chunk
#: size resumes only with the same: keep this value).
CHUNK_REPLICATES = 65536
#: Replicates per chunk of an in-process run that stores nothing.
LOCAL_CHUNK_REPLICATES = 262144


def _fingerprint(result: ScoreResult, spec: UncertaintySpec, seed: int, n_blocks: int) -> dict[str, Any]:
    """What a stored run must share with a run resuming it (the stored arrays' shapes are checked
    chunk by chunk when they are loaded, :meth:`ChunkStore.load`)."""
    return {"framework": result.framework.digest, "data": data_digest(result), "seed": seed,
            # the seed is its own entry (not in "spec"): a run seeded by fresh entropy resumes with --seed
            "block_size": spec.block_size,
            "spec": json.loads(json.dumps({k: v for k, v in spec.document.items() if k != "seed"}, default=str)),
            "n_blocks": n_blocks, "engine": __version__, "checkpoint_format": CHECKPOINT_FORMAT}


class _MonteCarlo:
    """The Monte Carlo adapter of :func:`engine.analysis.driver.drive`: random replicates by
    (seed, block), scored by :func:`engine.analysis.montecarlo.run_chunk`; checkpointed."""

    checkpoints = True
    work_per_replicate, work_unit = 1, "replicates"

    def __init__(self, nominal: ScoreResult, problem: Problem, spec: UncertaintySpec, factors, seed: int):
        self.nominal, self.problem, self.spec, self.factors, self.seed = nominal, problem, spec, factors, seed
        self.n_replicates, self.block_size = spec.replicates, spec.block_size
        self.lane_sets: dict[int, Lanes] = {}  # in-process lanes, kept from chunk to chunk

    def chunk_blocks(self, requested: int | None, distributed: bool) -> int:
        per_chunk = CHUNK_REPLICATES if distributed else LOCAL_CHUNK_REPLICATES
        return replicate_chunk_blocks(requested, per_chunk, self.block_size)

    def empty_state(self) -> ChunkState:
        return ChunkState.empty(self.problem)

    def run_chunk(self, first: int, stop: int, n_lanes: int, on_block) -> ChunkState:
        if n_lanes not in self.lane_sets:
            self.lane_sets[n_lanes] = Lanes(self.problem, n_lanes, self.block_size)
        return run_chunk(self.problem, self.factors, self.seed, first, stop, self.block_size, n_lanes,
                         self.n_replicates, lanes=self.lane_sets[n_lanes], on_block=on_block)

    def dask_task(self):
        return _chunk, (self.problem.without_result(), self.factors, self.seed, self.block_size, self.n_replicates)

    def fingerprint(self) -> dict[str, Any]:
        return _fingerprint(self.nominal, self.spec, self.seed, -(-self.n_replicates // self.block_size))

    def close(self) -> None:
        for lanes in self.lane_sets.values():
            lanes.close()
        self.lane_sets.clear()


def uncertainty(framework, data=None, spec: str | Path | Mapping | UncertaintySpec | None = None, *,
                replicates: int | None = None, seed: int | None = None, block_size: int | None = None,
                backend: str = "threads", threads: int | None = None, client: Any = None,
                scheduler: str | None = None, workers: int | None = None, out: str | Path | None = None,
                resume: bool = False, progress: bool = False, design: Any = None, worker_wait: float | None = None,
                confirm: Callable[[dict[str, Any]], None] | None = None,
                chunk_blocks: int | None = None, out_format: str | None = None, overwrite: bool = False,
                keep_checkpoints: bool = False, large_n_above: int | None = None, rank_bins: int | None = None,
                **load_kwargs: Any) -> UncertaintyResult:
    """Monte Carlo uncertainty analysis of the ranking.

    Parameters
    ----------
    framework, data
        As for :func:`engine.score` (a nominal run is made first).
    spec
        Uncertainty specification (file, dict or :class:`UncertaintySpec`); ``replicates``,
        ``seed`` and ``block_size`` override it.
    backend
        ``serial``, ``threads`` (default) or ``dask``; ``threads`` sets the Numba lanes; ``client``,
        ``scheduler`` (address) or ``workers`` (local cluster size) select the Dask cluster;
        ``worker_wait``: seconds a Dask run waits with no worker connected before it raises
        BackendError (default 300).  ``threads``/``workers`` below 1 raise SchemaError.
    out, resume
        Output folder: chunk checkpoints and, at the end, the tables and ``manifest.json``;
        ``resume=True`` continues a killed run from its stored chunks (bit-identical result).
        One run at a time per folder (a lock file); a fresh run in a folder holding checkpoints
        is refused unless ``overwrite=True``; the checkpoints are removed after a successful run
        unless ``keep_checkpoints=True`` (see :mod:`engine.analysis.store`).
        ``out`` ending in ``.xlsx``: one Excel workbook, no checkpoints.  Checked before any work
        (:func:`engine.io.check_output`).
    out_format
        Tables in the folder: ``"parquet"`` (default), ``"csv"`` or ``"xlsx"`` (one workbook).
    design
        Explicit replicates instead of random draws: an array (n, n_nodes) of raw node weights in
        ``framework.node_ids`` order, or a mapping ``{node_id: array (n,)}`` (other nodes nominal).
    progress
        Show a progress bar on stderr.
    confirm
        Called with the run's estimate before the replicates start (``{"stage": "start",
        "replicates", "seconds", "chunks"}``, time from a short calibration run) and, when
        checkpointing, once the first chunk is stored (``stage`` ``"first chunk"``, with
        ``checkpoint_bytes`` for the whole run); it raises to stop the run (the CLI asks, or
        refuses large runs without ``--yes``).
    chunk_blocks
        Blocks per chunk, the unit of work of the backends, of checkpoints and of progress (no
        effect on results).  Default: 65,536 replicates' worth when checkpointing (``out``) or on
        Dask (resume granularity, tasks to balance over workers), 262,144 otherwise (fewer chunk
        ends, where lanes wait for each other).  A stored run resumes only with the chunk size it
        was started with.
    large_n_above, rank_bins
        Large-n mode (:mod:`engine.analysis.largen`) above ``large_n_above`` units (default 5,000):
        memory O(units × bins) instead of units², the same exact median/5 %/95 % ranks (two
        passes over the same replicates), decile and percentile-rank bands; ``rank_bins`` coarse
        bins (default √(3 · units)).  No checkpoints in this mode (``resume`` is refused).

    Returns
    -------
    UncertaintyResult
    """
    started = time.perf_counter()
    backends = check_run(out, [framework, data, spec],
                         BackendOptions(backend, threads, client, scheduler, workers, worker_wait))
    spec = load_spec(spec, replicates=replicates, seed=seed, block_size=block_size)
    nominal = score(framework, data, **load_kwargs)
    spec = with_default_factors(spec, nominal.framework)
    factors = resolve_factors(spec, nominal.framework)
    n_units = int(np.count_nonzero(nominal.stages.kept))
    large = _large_n(n_units, large_n_above, rank_bins, resume, design, out)
    check_memory("uncertainty", n_units, len(spec.targets) or 1, backends.lanes, n_pairs=len(spec.pairs),
                 rank_bins=(rank_bins or default_bins(n_units)) if large else None)
    problem = build_problem(nominal, spec, factors)
    seed = run_seed(spec.seed)
    if design is not None:
        params = _design_parameters(problem, design)
        n = len(params)
        size = spec.block_size if n % spec.block_size == 0 else n
        state, _, _ = run_design(problem, params, size, n_lanes=1 if backend == "serial" else (threads or 1))
        result = _finish(problem, spec, factors, state, seed, started, {"backend": backend, "design": "explicit"})
        if out is not None:
            result.write(out, format=out_format)
        return result
    if spec.block_size % RNG_BLOCK and RNG_BLOCK % spec.block_size:
        raise SchemaError(f"block_size {spec.block_size} must be a multiple or a divisor of {RNG_BLOCK}",
                          fix="use e.g. 1024, 4096 or 8192 (or 64, 256 for tiny runs)")
    if large:
        stats, state, info = run_largen(problem, factors, seed, spec.replicates, spec.block_size, backends,
                                        bins=rank_bins, top_k=spec.top_k, progress=progress, chunk_blocks=chunk_blocks,
                                        confirm=confirm, fingerprint=_fingerprint(nominal, spec, seed, 0))
        info["large_n"] |= {"above": LARGE_N_ABOVE if large_n_above is None else large_n_above, "units": n_units}
        result = _finish(problem, spec, factors, state, seed, started, info, stats)
        if out is not None:
            result.write(out, format=out_format)
        return result
    return drive(_MonteCarlo(nominal, problem, spec, factors, seed),
                 lambda state, info: _finish(problem, spec, factors, state, seed, started, info), backends,
                 out=out, out_format=out_format, resume=resume, overwrite=overwrite,
                 keep_checkpoints=keep_checkpoints, progress=progress, chunk_blocks=chunk_blocks, confirm=confirm)


def with_default_factors(spec: UncertaintySpec, framework) -> UncertaintySpec:
    """A spec that varies nothing gets COINr's default: ±25 % uniform noise on every weight."""
    varied = ("weights", "weight_sets", "normalisation", "aggregation", "exclusion", "treatment", "settings")
    if any(spec.document.get(k) for k in varied):
        return spec
    depths = sorted({framework.depth(n) for n in framework.node_ids if n != framework.root.id})
    document = {**dict(spec.document), "weights": [{"depth": d, "noise": 0.25} for d in depths]}
    return load_spec(document)


def _design_parameters(problem: Problem, design: Any) -> Parameters:
    ids = problem.framework.node_ids
    if isinstance(design, Mapping):
        n = len(next(iter(design.values())))
        weights = np.tile(problem.nominal_weight, (n, 1))
        for node, values in design.items():
            if node not in problem.position:
                raise SchemaError("design names an unknown node", node=node, fix=f"use ids such as {ids[:3]}")
            weights[:, problem.position[node]] = np.asarray(values, float)
    else:
        weights = np.asarray(design, float)
        if weights.ndim != 2 or weights.shape[1] != len(ids):
            raise SchemaError(f"design must be (n_replicates, {len(ids)}) raw node weights in framework.node_ids order",
                              fix="or pass a mapping {node_id: weights}")
    if (weights < 0).any() or not np.isfinite(weights).all():
        raise SchemaError("design weights must be finite and >= 0", fix="check the design array")
    n = weights.shape[0]
    return Parameters(np.ascontiguousarray(weights), np.zeros(n, np.int64),
                      np.ascontiguousarray(np.tile(problem.base_codes, (n, 1))), np.full(n, -1, np.int64))


def _large_n(n_units: int, above: int | None, bins: int | None, resume: bool, design: Any, out) -> bool:
    """Whether a run of ``n_units`` uses large-n mode; its options and what it cannot do are refused
    before any work."""
    large = large_n_mode(n_units, above, bins)
    if large and resume:
        raise DataError(f"cannot resume a large-n run ({n_units:,} units): large-n mode stores no checkpoints yet",
                        path=str(out), fix="run it again without --resume, or raise --large-n-above above the "
                        "unit count if units² histograms fit in memory")
    if large and design is not None:
        raise DataError(f"explicit designs are not supported in large-n mode ({n_units:,} units)",
                        fix="draw random replicates (no design), or raise large_n_above above the unit count")
    return large


def _finish(problem: Problem, spec: UncertaintySpec, factors, state: ChunkState, seed: int, started: float,
            info: dict[str, Any], stats: RankStatistics | None = None) -> UncertaintyResult:
    stats = summarise(problem, state, spec.top_k) if stats is None else stats
    wall = time.perf_counter() - started
    manifest = {
        **run_manifest("uncertainty", problem, spec.to_dict(), spec.block_size, seed, stats, state, wall),
        "factors": [f.name for f in factors],
        "nominal_matches_pipeline": bool(np.array_equal(
            problem.nominal_rank[0],
            np.nan_to_num(problem.embed(problem.result.stages.ranks[:, problem.targets[0]])).astype(np.int64)))
        if problem.result is not None else None,
        **info,
    }
    warn_missing_ranks("uncertainty", problem.target_ids, problem.units, [h[:, -1] for h in state.hist],
                       stats.n_replicates, problem.nominal_rank)
    return UncertaintyResult(stats, manifest, problem)
