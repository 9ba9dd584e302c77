"""``bootstrap``: prepare → run blocks on a backend → rank statistics, variance shares, rank
confidence sets → tables/files.  The bootstrap counterpart of :func:`engine.analysis.uncertainty.uncertainty`."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ..display import ResultShape
from ..errors import DataError, SchemaError
from ..io import with_unit_names
from ..pipeline import score
from ..resources import shipped_datasets, shipped_specs
from .bootstrap_spec import BootstrapSpec, compile_records, load_bootstrap_spec
from .design import RNG_BLOCK, map_parameters, n_columns, replicate_uniforms
from .driver import (
    BackendOptions,
    check_run,
    data_digest,
    drive,
    replicate_chunk_blocks,
    run_manifest,
    run_seed,
    warn_missing_ranks,
)
from .largen import LARGE_N_ABOVE, default_bins, large_n_mode, run_largen
from .memory import check_memory
from .montecarlo import ChunkState, RankStatistics, summarise
from .problem import build_problem
from .resampling import (
    BootstrapProblem,
    BootstrapSource,
    build_bootstrap_problem,
    evaluate,
    replicate_draws,
    run_bootstrap_chunk,
    variance_shares,
)
from .spec import resolve_factors

__all__ = ["BootstrapResult", "bootstrap", "default_bootstrap_spec", "read_records"]


@dataclass(frozen=True, repr=False)
class BootstrapResult(ResultShape):
    """Rank distributions of a bootstrap run (per target), variance shares, confidence sets (the
    shape of every result: :class:`engine.display.ResultShape`)."""

    statistics: RankStatistics
    confidence: pl.DataFrame | None  #: Rank confidence sets of the first target (records/noise modes).
    shares: dict[str, pl.DataFrame]  #: target -> variance shares by source (combined studies).
    manifest: dict[str, Any]
    problem: BootstrapProblem

    @property
    def target_ids(self) -> tuple[str, ...]:
        return self.problem.problem.target_ids

    @property
    def units(self) -> pl.DataFrame:
        """Per-unit table of the first target: bootstrap rank statistics, then (when computed)
        the rank confidence sets and the variance shares."""
        target = self.target_ids[0]
        table = self.statistics.units[target]
        if self.confidence is not None:
            table = table.join(self.confidence.drop("estimate", "rank").rename({"se": "score_se"}), on="unit",
                               how="left", maintain_order="left")
        if target in self.shares:
            shares = self.shares[target].filter(pl.col("unit") != "(all units)")
            key = table["unit"].cast(pl.String)
            table = table.with_columns(key.alias("_key")).join(
                shares.rename({"unit": "_key"}), on="_key", how="left", maintain_order="left").drop("_key")
        return table

    def least_stable(self, n: int = 10) -> pl.DataFrame:
        return self.units.sort(["rank_range_90", "rank_sd"], descending=True, nulls_last=True).head(n)

    def output_tables(self) -> dict[str, pl.DataFrame]:
        """What :meth:`write` writes: per target, the per-unit table (display names and groups beside
        the unit codes), acceptability, R_S, pairs and variance shares."""
        stats = self.statistics
        result = self.problem.problem.result
        names = result.unit_names() if result is not None else None
        tables = {}
        for target in self.target_ids:
            suffix = "" if target == self.target_ids[0] else f"_{target}"
            units = self.units if not suffix else stats.units[target]
            tables[f"units{suffix}"] = with_unit_names(units, names)
            tables[f"acceptability{suffix}"] = with_unit_names(stats.acceptability[target], names)
            tables[f"rank_shift{suffix}"] = stats.rank_shift[target]
            if target in stats.pairs:
                tables[f"pairs{suffix}"] = stats.pairs[target]
            if target in self.shares:
                tables[f"variance_shares{suffix}"] = with_unit_names(self.shares[target], names)
        return tables


def default_bootstrap_spec(framework_id: str) -> Path | None:
    """The shipped bootstrap specification of a framework (record derivations), if any."""
    return shipped_specs().get(f"{framework_id}.bootstrap")


def read_records(records: Any, unit_column: str | None) -> tuple[pl.DataFrame, str]:
    """The record-level table and where it came from; its unit column is read as text, so ids
    such as ``NA`` or ``null`` stay ids (as in the unit table)."""
    from ..data.load import read_table

    if isinstance(records, pl.DataFrame):
        return records, "<DataFrame>"
    path = Path(str(records))
    if not path.exists() and str(records) in shipped_datasets():
        path = shipped_datasets()[str(records)]
    elif not path.exists():
        raise DataError(f"no records file or shipped dataset named {str(records)!r}", path=str(records),
                        fix=f"give a path, or one of the shipped datasets: {', '.join(shipped_datasets())}")
    return read_table(path, text_columns=[unit_column] if unit_column else ()), str(path)


def _chunk(bp: BootstrapProblem, seed: int, block_size: int, n_replicates: int, first: int, stop: int
           ) -> ChunkState:
    """Dask task: blocks [first, stop) with one lane."""
    return run_bootstrap_chunk(bp, seed, first, stop, block_size, n_lanes=1, n_replicates=n_replicates)


#: Replicates per chunk (a bootstrap stores no checkpoints: progress and Dask tasks only).
CHUNK_REPLICATES = 16384


class _Bootstrap:
    """The bootstrap adapter of :func:`engine.analysis.driver.drive`: resampled (and perturbed)
    replicates by (seed, block), scored by :func:`engine.analysis.resampling.run_bootstrap_chunk`."""

    checkpoints = False
    work_per_replicate, work_unit = 1, "replicates"

    def __init__(self, bp: BootstrapProblem, spec: BootstrapSpec, seed: int, records: str | None):
        self.bp, self.spec, self.seed, self.records = bp, spec, seed, records
        self.n_replicates, self.block_size = spec.replicates, spec.block_size

    def chunk_blocks(self, requested: int | None, distributed: bool) -> int:
        return replicate_chunk_blocks(requested, CHUNK_REPLICATES, self.block_size)

    def empty_state(self) -> ChunkState:
        return ChunkState.empty(self.bp.problem)

    def run_chunk(self, first: int, stop: int, n_lanes: int, on_block) -> ChunkState:
        return run_bootstrap_chunk(self.bp, self.seed, first, stop, self.block_size, n_lanes, self.n_replicates,
                                   on_block)

    def dask_task(self):
        return _chunk, (self.bp.without_result(), self.seed, self.block_size, self.n_replicates)

    def fingerprint(self) -> dict[str, Any]:
        result = self.bp.problem.result
        return {"framework": result.framework.digest, "data": data_digest(result), "spec": self.spec.to_dict(),
                "seed": self.seed, "records": self.records}

    def close(self) -> None:
        pass


#: Replicates whose scores estimate the covariance of the units' scores for the confidence sets
#: (the first ones of the run: the same draws; a bounded (replicates × units) array).
COVARIANCE_REPLICATES = 2048


def _score_replicates(bp: BootstrapProblem, seed: int, n_replicates: int, keep: np.ndarray):
    """The kept units' target-0 scores in the run's first replicates in which every kept unit has
    a score (rows = replicates), and how many there are; None when fewer than max(100, 2 units)."""
    n = min(n_replicates, COVARIANCE_REPLICATES)
    p = bp.problem
    params = map_parameters(replicate_uniforms(seed, 0, n, n_columns(list(bp.factors))), list(bp.factors), p)
    draws = replicate_draws(bp, seed, 0, n)
    scores = evaluate(bp, params, draws, n, 1, keep_scores=True, count=False)[6][:, 0][:, keep]
    rows = np.isfinite(scores).all(axis=1)
    if rows.sum() < max(100, 2 * int(keep.sum())):
        return None, int(rows.sum())
    return scores[rows], int(rows.sum())


def _confidence(bp: BootstrapProblem, state: ChunkState, spec: BootstrapSpec, seed: int, n_replicates: int):
    """Mogstad et al. rank confidence sets of the first target from the nominal scores and the
    bootstrap covariance of the scores (sampling-only modes); returns (table, how): how = the
    level, k and draws used (k at most the ranked units − 1) and where the covariance came from."""
    from .confidence import rank_confidence_sets, rank_confidence_sets_from_bootstrap

    if bp.mode == "units" or spec.perturb is not None:
        return None, None
    p = bp.problem
    moments = state.score_moments()[0]
    ranked = state.hist[0][:, :-1].sum(axis=1)
    estimate = p.nominal_score[0]
    keep = np.isfinite(estimate) & (ranked > 1)
    if keep.sum() < 2:
        return None, None
    units = [u for u, k in zip(p.units, keep) if k]
    n_keep = int(keep.sum())
    options = {"level": float(spec.confidence.get("level", 0.9)),
               "top_k": min(int(spec.confidence.get("top_k", 10)), n_keep - 1),
               "n_draws": int(spec.confidence.get("draws", 1000)), "seed": seed, "units": units}
    used = {"level": options["level"], "top_k": options["top_k"], "draws": options["n_draws"]}
    replicates, rows = _score_replicates(bp, seed, n_replicates, keep)
    sets, how, reason = None, None, None
    if replicates is not None:
        try:
            sets = rank_confidence_sets_from_bootstrap(estimate[keep], replicates, **options)
            how = {**used, "covariance": "bootstrap", "replicates": rows}
        except DataError as error:  # e.g. a covariance that is not positive semidefinite
            reason = str(error)
    if sets is None:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = moments[:, 0] / ranked
            var = np.maximum(moments[:, 1] / ranked - mean * mean, 0.0) * ranked / np.maximum(ranked - 1, 1)
        # A unit whose score never moves has se 0: its comparisons are decided by the others' errors.
        sets = rank_confidence_sets(estimate[keep], np.sqrt(var[keep]), **options)
        how = {**used, "covariance": "diagonal (per-unit standard errors)", "complete_replicates": rows,
               **({"fallback_reason": reason} if reason else {})}
    # Units whose score never moves (sd within roundoff of 0) and pairs decided without sampling error.
    how["zero_variance_units"] = [u for u, z in zip(units, sets.zero_variance, strict=True) if z]
    how["degenerate_pairs"] = sets.degenerate_pairs
    table = sets.table()
    return table.rename({c: f"cs_{c}" for c in table.columns if c not in ("unit", "estimate", "se", "rank")}), how


def bootstrap(framework, data=None, spec: str | Path | Mapping | BootstrapSpec | None = None, *,
              records: Any = None, mode: str | None = None, replicates: int | None = None, seed: int | None = None,
              block_size: int | None = None, backend: str = "threads", threads: int | None = None,
              client: Any = None, scheduler: str | None = None, workers: int | None = None,
              out: str | Path | None = None, progress: bool = False, chunk_blocks: int | None = None,
              worker_wait: float | None = None, confirm: Callable[[dict[str, Any]], None] | None = None,
              out_format: str | None = None, large_n_above: int | None = None, rank_bins: int | None = None,
              **load_kwargs: Any) -> BootstrapResult:
    """Bootstrap rank stability of a ranking.

    Parameters
    ----------
    framework, data
        As for :func:`engine.score` (the nominal run).
    spec
        Bootstrap specification (file, dict or :class:`BootstrapSpec`); default: the framework's
        shipped one (``engine/specs/<id>.bootstrap.yaml``) when it has one.  ``mode``,
        ``replicates``, ``seed`` and ``block_size`` override it.
    records
        Record-level table (path, shipped dataset name or DataFrame) for mode ``records``.
    backend, threads, client, scheduler, workers, worker_wait, confirm
        As for :func:`engine.analysis.uncertainty.uncertainty` (``confirm`` gets the ``"start"`` estimate
        only: a bootstrap stores no checkpoints).
    out, out_format
        Output folder for the tables (``out_format`` ``"parquet"``, the default, ``"csv"`` or
        ``"xlsx"``) and ``manifest.json``, or a ``.xlsx`` file (one workbook); checked before any
        work (:func:`engine.io.check_output`).
    large_n_above, rank_bins
        Large-n mode (:mod:`engine.analysis.largen`, as for
        :func:`engine.analysis.uncertainty.uncertainty`) above ``large_n_above`` units (default
        5,000; 0: always): memory O(units × bins), exact median/5 %/95 % ranks from two passes over
        the same replicates, decile and percentile-rank bands; no variance shares (``decompose``
        asked for is refused, the default is off) and no rank confidence sets; threads split a
        chunk's RNG blocks (each lane holds its own ranks and draws of a sub-batch, ≤ 64 MiB each,
        counted by the memory check).

    Returns
    -------
    BootstrapResult
    """
    started = time.perf_counter()
    backends = check_run(out, [framework, data, spec, records],
                         BackendOptions(backend, threads, client, scheduler, workers, worker_wait))
    fw_id = framework.id if hasattr(framework, "id") else str(framework)
    if spec is None:
        spec = default_bootstrap_spec(fw_id) or {}
    spec = load_bootstrap_spec(spec, mode=mode, replicates=replicates, seed=seed, block_size=block_size)
    if spec.mode == "records" and records is None:
        raise SchemaError("mode records needs the record-level table", fix="pass --records FILE (records=…)")
    nominal = score(framework, data, **load_kwargs)
    uspec = spec.uncertainty_spec()
    factors = resolve_factors(uspec, nominal.framework)
    n_units = int(np.count_nonzero(nominal.stages.kept))
    large = large_n_mode(n_units, large_n_above, rank_bins)
    if large and spec.decompose and spec.document.get("decompose"):
        raise DataError(f"variance shares (decompose) are not available in large-n mode ({n_units:,} units)",
                        fix="set decompose: false, or raise large_n_above above the unit count if units² "
                        "histograms fit in memory")
    if large and spec.decompose:  # on by default for a combined study: large-n mode leaves it out
        spec = replace(spec, decompose=False)
    sizes = dict(n_pairs=len(uspec.pairs), confidence=not factors and not large,
                 rank_bins=(rank_bins or default_bins(n_units)) if large else None)
    check_memory("bootstrap", n_units, len(uspec.targets) or 1, backends.lanes, **sizes)  # the histograms, first
    problem = build_problem(nominal, uspec, factors)
    design, records_source = None, None
    if spec.mode == "records":
        unit_column = spec.records.get("unit", nominal.dataset.unit)
        table, records_source = read_records(records, unit_column)
        design = compile_records(table, spec.records, nominal, problem.units, nominal.framework.data.get("unit"))
    bp = build_bootstrap_problem(problem, spec, factors, design)
    if not large:  # a kernel call holds an RNG block's draws and a slice of them (large-n lanes draw as they go)
        check_memory("bootstrap", n_units, len(uspec.targets) or 1, backends.lanes, **sizes,
                     lane_draws=2 * RNG_BLOCK * bp.draw_bytes)
    seed = run_seed(spec.seed)
    if large:
        adapter = _Bootstrap(bp, spec, seed, records_source)
        stats, state, info = run_largen(problem, factors, seed, spec.replicates, spec.block_size, backends,
                                        bins=rank_bins, top_k=uspec.top_k, progress=progress,
                                        chunk_blocks=chunk_blocks,  # None: the large-n passes' own (16+ on Dask)
                                        confirm=confirm, fingerprint=adapter.fingerprint(),
                                        source=BootstrapSource(bp, seed, spec.replicates, spec.block_size))
        info["large_n"] |= {"above": LARGE_N_ABOVE if large_n_above is None else large_n_above, "units": n_units}
        result = _finish(bp, spec, state, seed, started, info, records_source, stats)
        if out is not None:
            result.write(out, format=out_format)
        return result
    return drive(_Bootstrap(bp, spec, seed, records_source),
                 lambda state, info: _finish(bp, spec, state, seed, started, info, records_source), backends,
                 out=out, out_format=out_format, progress=progress, chunk_blocks=chunk_blocks, confirm=confirm)


def _finish(bp: BootstrapProblem, spec: BootstrapSpec, state: ChunkState, seed: int, started: float,
            info: dict[str, Any], records_source: str | None, stats: RankStatistics | None = None) -> BootstrapResult:
    """The result of a run; ``stats`` given: a large-n run (its statistics; ``state`` its pass-1
    state), which has no variance shares and no confidence sets."""
    p = bp.problem
    large = stats is not None
    stats = summarise(p, state, spec.uncertainty_spec().top_k) if stats is None else stats
    shares = variance_shares(p, state.extra["decomposition"]) if not large and "decomposition" in state.extra else {}
    confidence, how = (None, None) if large else _confidence(bp, state, spec, seed, stats.n_replicates)
    wall = time.perf_counter() - started
    n = stats.n_replicates
    framework = p.framework
    overall = {t: {k: v for k, v in table.filter(pl.col("unit") == "(all units)").row(0, named=True).items()
                   if k != "unit"} for t, table in shares.items()}
    manifest = {
        **run_manifest("bootstrap", p, spec.to_dict(), spec.block_size, seed, stats, state, wall),
        "mode": spec.mode,
        "records": None if bp.records is None else {
            "source": records_source, "n_records": bp.records.n_records, "ignored_records": bp.records.ignored,
            "derived": [framework.indicators[j].id for j in bp.records.derived],
            "poisson_rate": bp.records.rate},
        "units_drawn": bp.m_units or None,
        "noisy_indicators": [framework.indicators[j].id for j in bp.noise_index],
        "perturbation_factors": [f.name for f in bp.factors],
        "evaluations": n * (2 if shares else 1),
        "variance_shares": overall,
        "confidence": None if confidence is None else {
            **how, "method": "Mogstad, Romano, Shaikh & Wilhelm (2024)"},
        **info,
    }
    warn_missing_ranks("bootstrap", p.target_ids, p.units, [h[:, -1] for h in state.hist], n, p.nominal_rank)
    return BootstrapResult(stats, confidence, shares, manifest, bp)
