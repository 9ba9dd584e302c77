"""``engine.change``: is a rank change between two periods real?  Paired Monte Carlo.

Each replicate draws ONE design row (keyed by (seed, block), as in :func:`engine.uncertainty`)
and applies its weights and method choices to both periods: one :class:`Problem` per period
from the same spec and factors, scored with the same parameters
(:func:`engine.kernels.montecarlo.montecarlo_scores`), ranked within each period, and the rank
change ``rank_from − rank_to`` (positive = moved up) of every unit present in both periods is
counted in an integer histogram (:func:`engine.kernels.change.rank_change`: exact, mergeable in
any order, so the result is the same for any threads, chunks or Dask workers).  Nothing of size
units × replicates is held beyond a sub-batch of 256 replicates.

Units that entered (only in the later period) or left (only in the earlier one) are reported in
the units table with their one rank, not dropped.

Mode ``records`` (paired record bootstrap, where record-level data exist): each replicate also
resamples the records of both periods (Poisson weights, as :func:`engine.bootstrap` in mode
``records``) and recomputes the record-derived indicators of each period with the bootstrap's
kernel (:func:`engine.analysis.resampling.evaluate`) before ranking; a record present in both
periods (the same record id) gets the same weight in both (:class:`PairedRecords`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .. import __version__
from ..backends.state import BlockState
from ..display import ResultShape, manifest_summary
from ..errors import DataError, SchemaError, preview
from ..io import with_unit_names
from ..kernels import montecarlo as mc_kernel
from ..kernels.change import rank_change
from ..kernels.rank import index_bits, pack_keys
from ..panel import Panel, check_normalisation, said_by_load_panel
from ..pipeline import ScoreResult, as_dataset, score
from ..schema import load_framework
from .bootstrap import default_bootstrap_spec, read_records
from .bootstrap_spec import BootstrapSpec, SamplingDraws, compile_records, load_bootstrap_spec, sampling_draws
from .design import RNG_BLOCK, ParameterMap, n_columns, replicate_uniforms
from .driver import BackendOptions, check_run, data_digest, drive, replicate_chunk_blocks, run_seed, versions
from .memory import available_bytes, check_memory, estimate_bytes
from .montecarlo import SUB_BATCH, BlockDealer, in_lanes, moment_block, quantile_from_counts, rng_ranges
from .problem import Problem, build_problem, kernel_design, kernel_targets, kernel_tree
from .resampling import BootstrapProblem, build_bootstrap_problem, evaluate
from .spec import UncertaintySpec, load_spec, resolve_factors
from .uncertainty import CHUNK_REPLICATES, LOCAL_CHUNK_REPLICATES, with_default_factors

__all__ = ["ChangeResult", "ChangeState", "PairedProblem", "PairedRecords", "change", "change_statistics",
           "run_change_chunk"]

#: Places of the default ``P(improved by >= k places)`` columns.
PLACES = (1, 3, 5, 10)
UNITS = ("all", "common")
#: Sources of variation: the paired Monte Carlo of weights/methods, or the paired record bootstrap.
MODES = ("montecarlo", "records")


@dataclass(frozen=True)
class PairedRecords:
    """The record bootstrap of both periods (mode ``records``): each period's bootstrap problem and
    the column of each of its records in a replicate's shared draws.

    A replicate draws one uniform 32-bit integer per *record key* from the bootstrap's stream
    ``SeedSequence(seed, spawn_key=(block, 1))`` (:func:`engine.analysis.bootstrap_spec.sampling_draws`),
    and record i of a period takes the uniform of its key (``columns_*[i]``), turned into its
    Poisson weight by the kernel.  With a record id column the keys are the sorted union of both
    periods' ids, so a record present in both periods gets the same weight in both, whatever the
    order of the rows (each period's records are also sorted by id, so the float sums are too);
    without one, the keys are the rows of the earlier period, then those of the later one:
    independent draws per period."""

    before: BootstrapProblem
    after: BootstrapProblem
    columns_from: np.ndarray  #: int64 (n_records_from,): key of each record of ``before``.
    columns_to: np.ndarray  #: int64 (n_records_to,): key of each record of ``after``.
    n_keys: int  #: Uniforms per replicate.

    def draws(self, seed: int, lo: int, hi: int) -> tuple[SamplingDraws, SamplingDraws]:
        """Each period's draws of replicates ``lo .. hi − 1`` (one RNG block at most), from the same uniforms."""
        shared = sampling_draws(seed, lo, hi, "records", n_records=self.n_keys, n_units=0).record_uniform
        return tuple(SamplingDraws(np.take(shared, columns, axis=1), np.zeros((hi - lo, 0)),
                                   np.zeros((hi - lo, bp.n_units, 0)))
                     for bp, columns in ((self.before, self.columns_from), (self.after, self.columns_to)))

    def without_result(self) -> PairedRecords:
        return replace(self, before=self.before.without_result(), after=self.after.without_result())


@dataclass(frozen=True)
class PairedProblem:
    """The two periods' problems and the rows of the units present in both."""

    before: Problem  #: The earlier period (``start``).
    after: Problem  #: The later period (``end``).
    rows_from: np.ndarray  #: int64 (n_common,): rows of the common units in ``before``.
    rows_to: np.ndarray  #: int64 (n_common,): their rows in ``after``.
    common: list[Any]  #: Ids of the common units (in ``after``'s order).
    records: PairedRecords | None = None  #: Mode ``records``: the paired record bootstrap.

    @property
    def n_bins(self) -> int:
        """Histogram columns: 2 n − 1 changes (n = the larger period's unit count) and no-rank."""
        return 2 * max(self.before.n_units, self.after.n_units)

    def without_result(self) -> PairedProblem:
        """A lighter copy for shipping to workers."""
        return replace(self, before=self.before.without_result(), after=self.after.without_result(),
                       records=None if self.records is None else self.records.without_result())


@dataclass
class ChangeState(BlockState):
    """Mergeable statistics of a set of blocks: the integer histogram of rank changes."""

    hist: np.ndarray  #: int64 (n_common, 2 n): change d in column d + n − 1, last column = no rank.
    blocks: set[int] = field(default_factory=set)  #: Work blocks included.

    @classmethod
    def empty(cls, pair: PairedProblem) -> ChangeState:
        return cls(np.zeros((len(pair.common), pair.n_bins), np.int64))

    def absorb(self, other: ChangeState) -> ChangeState:
        self.claim(other)
        self.hist += other.hist
        return self

    def copy(self) -> ChangeState:
        return ChangeState(self.hist.copy(), set(self.blocks))

    @property
    def n_replicates(self) -> int:
        return int(self.hist[0].sum()) if len(self.hist) else 0


def _score_period(problem: Problem, params, scores: np.ndarray, keys: np.ndarray) -> None:
    """Scores and sorted packed keys (n, 1, n_units) of replicates ``params`` in one period."""
    mc_kernel.montecarlo_scores(problem.zt, problem.linear_variant, kernel_tree(problem), kernel_design(params),
                                kernel_targets(problem, np.zeros(0, np.int64)), scores, keys)
    keys.reshape(-1, keys.shape[-1]).sort(axis=1)  # NumPy's sort releases the GIL


def _score_resampled(bp: BootstrapProblem, params, draws: SamplingDraws, scores: np.ndarray, keys: np.ndarray) -> None:
    """As :func:`_score_period` for record-bootstrap replicates: the bootstrap's kernel resamples,
    normalises and scores (:func:`engine.analysis.resampling.evaluate`), then each row's keys are packed."""
    m = len(params)
    scores[:] = evaluate(bp, params, draws, m, 1, keep_scores=True, count=False)[6]
    bits = index_bits(scores.shape[-1])
    for row, key in zip(scores.reshape(m, -1), keys.reshape(m, -1), strict=True):
        pack_keys(row, bits, key)
    keys.reshape(m, -1).sort(axis=1)


def run_change_chunk(pair: PairedProblem, factors, seed: int, first_block: int, stop_block: int, block_size: int,
                     n_lanes: int = 1, n_replicates: int | None = None,
                     on_block: Callable[[int], None] | None = None) -> ChangeState:
    """Paired replicates of work blocks ``first_block .. stop_block − 1`` (the last may be partial).

    The RNG blocks (1,024 replicates) of the chunk go to ``n_lanes`` lane threads, each taking the
    next one not yet taken; a lane draws the block's design rows, maps them to each period's
    parameters (the same rows), and in mode ``records`` the block's shared record draws
    (:meth:`PairedRecords.draws`), scores both periods a sub-batch at a time and counts the rank
    changes into its own histogram.  Integer counts add up the same in any grouping, so which lane
    takes which block changes nothing."""
    size = moment_block(block_size)
    ranges = rng_ranges(first_block, stop_block, block_size, n_replicates)
    n_lanes = max(1, min(n_lanes, len(ranges)))
    columns = n_columns(factors)
    maps = ParameterMap(factors, pair.before), ParameterMap(factors, pair.after)
    hists = [np.zeros((len(pair.common), pair.n_bins), np.int64) for _ in range(n_lanes)]
    dealer = BlockDealer(len(ranges))

    @dealer.lane
    def lane(k: int) -> None:
        sub = min(SUB_BATCH, size)
        buffers = [(np.empty((sub, 1, p.n_units)), np.empty((sub, 1, p.n_units), np.uint32))
                   for p in (pair.before, pair.after)]
        while (index := dealer.take()) is not None:
            lo, hi = ranges[index]
            u = replicate_uniforms(seed, lo, hi, columns)
            params = maps[0](u), maps[1](u)  # one design row, both periods
            draws = pair.records.draws(seed, lo, hi) if pair.records is not None else (None, None)
            for a in range(0, hi - lo, sub):
                b = min(a + sub, hi - lo)
                for period, (scores, keys) in enumerate(buffers):
                    if pair.records is None:
                        _score_period((pair.before, pair.after)[period], params[period].slice(a, b),
                                      scores[:b - a], keys[:b - a])
                    else:
                        _score_resampled((pair.records.before, pair.records.after)[period],
                                         params[period].slice(a, b), draws[period].take(np.arange(a, b)),
                                         scores[:b - a], keys[:b - a])
                (sf, kf), (st, kt) = ((s[:b - a].reshape(b - a, -1), k_[:b - a].reshape(b - a, -1))
                                      for s, k_ in buffers)
                rank_change(sf, kf, st, kt, pair.rows_from, pair.rows_to, hists[k])
            if on_block is not None:
                on_block(hi - lo)

    in_lanes(lane, n_lanes, parallel_kernels=pair.records is not None)  # the bootstrap kernel is parallel
    total = hists[0]
    for more in hists[1:]:
        total += more
    return ChangeState(total, set(range(first_block, stop_block)))


def _chunk(pair: PairedProblem, factors, seed: int, block_size: int, n_replicates: int, first: int, stop: int
           ) -> ChangeState:
    """Dask task: blocks [first, stop) with one lane."""
    return run_change_chunk(pair, factors, seed, first, stop, block_size, 1, n_replicates)


class _Change:
    """The paired Monte Carlo adapter of :func:`engine.analysis.driver.drive` (no checkpoints)."""

    checkpoints = False
    work_per_replicate, work_unit = 1, "paired replicates"

    def __init__(self, pair: PairedProblem, spec: UncertaintySpec, factors, seed: int, fingerprint: dict[str, Any]):
        self.pair, self.spec, self.factors, self.seed, self._fingerprint = pair, spec, factors, seed, fingerprint
        self.n_replicates, self.block_size = spec.replicates, spec.block_size

    def chunk_blocks(self, requested: int | None, distributed: bool) -> int:
        per_chunk = CHUNK_REPLICATES if distributed else LOCAL_CHUNK_REPLICATES
        return replicate_chunk_blocks(requested, per_chunk, self.block_size)

    def empty_state(self) -> ChangeState:
        return ChangeState.empty(self.pair)

    def run_chunk(self, first: int, stop: int, n_lanes: int, on_block) -> ChangeState:
        return run_change_chunk(self.pair, self.factors, self.seed, first, stop, self.block_size, n_lanes,
                                self.n_replicates, on_block)

    def dask_task(self):
        return _chunk, (self.pair.without_result(), self.factors, self.seed, self.block_size, self.n_replicates)

    def fingerprint(self) -> dict[str, Any]:
        return self._fingerprint

    def close(self) -> None:
        pass


def change_statistics(hist: np.ndarray, places: Sequence[int] = PLACES) -> dict[str, np.ndarray]:
    """Per-unit summaries of rank-change histograms ``hist`` (n_units, 2 n) (see :class:`ChangeState`):
    median, 5 % and 95 % quantiles (``numpy.quantile``'s linear rule on the exact counts), mean and
    sd of the change over the replicates where the unit has both ranks; P(improved), P(improved by
    >= k places), P(same), P(worsened) and P(no rank) over all replicates; ``robust``: the 5–95 %
    interval excludes 0."""
    counts = hist[:, :-1]
    offset = counts.shape[1] // 2  # n − 1: column of change 0
    values = np.arange(counts.shape[1], dtype=np.int64) - offset
    n_rep = hist.sum(axis=1)
    ranked = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (counts @ values) / ranked
        sd = np.sqrt(np.maximum((counts @ (values * values)) / ranked - mean * mean, 0.0))
        q05, median, q95 = (quantile_from_counts(counts, q) - 1 - offset for q in (0.05, 0.5, 0.95))
        out = {"median_change": median, "q05_change": q05, "q95_change": q95, "mean_change": mean, "sd_change": sd,
               "p_improved": counts[:, values > 0].sum(axis=1) / n_rep}
        for k in places:
            if k > 1:
                out[f"p_improved_{k}"] = counts[:, values >= k].sum(axis=1) / n_rep
        out |= {"p_same": counts[:, offset] / n_rep, "p_worsened": counts[:, values < 0].sum(axis=1) / n_rep,
                "p_missing": hist[:, -1] / n_rep}
    out["robust"] = (q05 > 0) | (q95 < 0)
    return out


@dataclass(frozen=True, repr=False)
class ChangeResult(ResultShape):
    """Distribution of every unit's rank change between two periods under paired replicates (the
    shape of every result: :class:`engine.display.ResultShape`)."""

    units: pl.DataFrame  #: Per unit: status, ranks, nominal change, change distribution summaries.
    distribution: pl.DataFrame  #: Long table of the exact histogram: unit, change, replicates, probability.
    manifest: dict[str, Any]
    pair: PairedProblem

    @property
    def robust(self) -> pl.DataFrame:
        """Units whose 5–95 % rank-change interval excludes 0 (largest median change first)."""
        return self.units.filter(pl.col("robust")).sort("median_change", descending=True, maintain_order=True)

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        records = m["records"]
        mode = m["mode"] if not records else \
            f"records, paired by {records['record_id']!r}" if records["record_id"] else "records, unpaired"
        return {**manifest_summary(m), "periods": f"{m['periods']['from']} → {m['periods']['to']}", "mode": mode,
                "common units": m["units"]["common"], "robust": m["units"]["robust"]}

    def output_tables(self) -> dict[str, pl.DataFrame]:
        """What :meth:`write` writes: ``units`` and ``distribution``."""
        return {"units": self.units, "distribution": self.distribution}


def _as_periods(data: Any, start: Any, end: Any, normalisation: str):
    """``(label_from, data_from, label_to, data_to, framework_or_None)`` from a panel, a mapping
    {period: data} or a pair (data_from, data_to); refuses bad periods before any work."""
    check_normalisation(normalisation)
    if isinstance(data, Panel):
        first, last = data.check_period(start, "start"), data.check_period(end, "end")
        if first == last:
            raise SchemaError(f"start and end are the same period {first!r}", fix="compare two different periods")
        return first, data.dataset(first), last, data.dataset(last), data.framework(normalisation=normalisation)
    if normalisation == "panel":
        raise SchemaError("normalisation='panel' needs a panel (one normalisation fitted across all periods)",
                          fix="pass engine.load_panel(...) or use normalisation='period'")
    if isinstance(data, Mapping):
        periods = list(data)
        for name, period in (("start", start), ("end", end)):
            if period not in data:
                raise DataError(f"{name} period {period!r} is not among the periods given ({preview(periods)})",
                                fix=f"choose periods among {preview(periods)}")
        if start == end:
            raise SchemaError(f"start and end are the same period {start!r}", fix="compare two different periods")
        return start, data[start], end, data[end], None
    if isinstance(data, Sequence) and not isinstance(data, str) and len(data) == 2:
        return (start if start is not None else "from"), data[0], (end if end is not None else "to"), data[1], None
    raise SchemaError(f"expected a panel, a mapping {{period: data}} or a pair (data_from, data_to), got "
                      f"{type(data).__name__}", fix="e.g. change(fw, {2011: data_2011, 2012: data_2012}, "
                      "start=2011, end=2012)")


def _pair(before: Problem, after: Problem, label_from: Any, label_to: Any,
          records: PairedRecords | None = None) -> PairedProblem:
    rows = {u: i for i, u in enumerate(before.units)}
    common = [u for u in after.units if u in rows]
    if not common:
        raise DataError(f"no unit is present in both periods {label_from!r} and {label_to!r} (e.g. "
                        f"{preview(before.units)} against {preview(after.units)})",
                        fix="check that both periods use the same unit ids (codes or names)")
    rows_to = {u: i for i, u in enumerate(after.units)}
    return PairedProblem(before, after, np.array([rows[u] for u in common], np.int64),
                         np.array([rows_to[u] for u in common], np.int64), common, records)


def _period_records(table: pl.DataFrame, period_column: str, label: Any, record_id: str | None, source: str
                    ) -> pl.DataFrame:
    """The records of period ``label`` (matched as text, so a period read as 2022 or "2022" is the
    same), sorted by record id when there is one (refused when an id is missing or repeated)."""
    rows = table.filter(pl.col(period_column).cast(pl.String) == str(label))
    if rows.height == 0:
        periods = table[period_column].unique().sort().to_list()
        raise DataError(f"the records have no row for period {label!r} (their periods: {preview(periods)})",
                        column=period_column, path=source, fix="give the records of both periods in one table with "
                        f"a {period_column!r} column, as in the panel")
    if record_id is None:
        return rows
    ids = rows[record_id].cast(pl.String)
    if ids.null_count():
        raise DataError(f"{ids.null_count()} record(s) of period {label!r} have no id", column=record_id, path=source,
                        fix="fill the record id column or drop those records")
    repeated = ids.filter(ids.is_duplicated()).unique().sort().to_list()
    if repeated:
        raise DataError(f"record ids repeat within period {label!r}: {preview(repeated)}; a record id must name one "
                        "record per period", column=record_id, path=source,
                        fix="give one row per record and period, or leave out the record id (independent draws)")
    return rows.with_columns(ids.alias("_record_key")).sort("_record_key").drop("_record_key")


def _paired_records(spec: BootstrapSpec, problems: tuple[Problem, Problem], factors, labels: tuple[Any, Any],
                    records: Any, record_id: str | None, period_column: str, common_only: bool
                    ) -> tuple[PairedRecords, dict[str, Any]]:
    """Each period's record design and bootstrap problem, the record keys that pair them (see
    :class:`PairedRecords`) and what the manifest says about them; refuses, before any replicate,
    records without the period column or the record id column, a period without records, ids missing
    or repeated within a period, and every check of :func:`engine.analysis.bootstrap_spec.compile_records`
    (a unit not in the period's data, a derived indicator that differs from the unit table), named by period.
    ``common_only`` (units="common"): the records of units scored in neither period are left out."""
    result = problems[0].result
    unit_column = spec.records.get("unit", result.dataset.unit)
    table, source = read_records(records, unit_column)
    for column, what, fix in ((period_column, "period", f"add the period of each record as a column {period_column!r}, "
                               "named as the panel's period column"),
                              (record_id, "record id", "name the column that identifies a record in both periods "
                               "(--record-id), or leave it out for independent draws per period")):
        if column is not None and column not in table.columns:
            raise DataError(f"the records have no {what} column {column!r} (columns: {preview(table.columns, 8)})",
                            column=column, path=source, fix=fix)
    periods, designs = [], []
    for problem, label in zip(problems, labels, strict=True):
        rows = _period_records(table, period_column, label, record_id, source)
        if common_only:
            scored = [str(u) for u in problem.result.stages.inputs.units.to_list()]
            rows = rows.filter(pl.col(unit_column).cast(pl.String).is_in(scored))
        try:
            design = compile_records(rows, spec.records, problem.result, problem.units, unit_column)
        except DataError as error:
            raise DataError(f"records of period {label!r}: {error.message}", node=error.node, column=error.column,
                            units=error.units, path=source, fix=error.fix) from None
        periods.append(rows)
        designs.append(design)
    n_from, n_to = (rows.height for rows in periods)
    if record_id is None:
        columns, n_keys, persisting = (np.arange(n_from), n_from + np.arange(n_to)), n_from + n_to, 0
    else:
        ids = [rows[record_id].cast(pl.String).to_list() for rows in periods]
        key = {k: i for i, k in enumerate(sorted(set(ids[0]) | set(ids[1])))}
        columns = tuple(np.array([key[k] for k in period_ids], np.int64) for period_ids in ids)
        n_keys, persisting = len(key), len(set(ids[0]) & set(ids[1]))
    bootstrap_spec = replace(spec, decompose=False)
    before, after = (build_bootstrap_problem(problem, bootstrap_spec, factors, design)
                     for problem, design in zip(problems, designs, strict=True))
    framework = result.framework
    manifest = {
        "source": source, "unit_column": unit_column, "period_column": period_column, "record_id": record_id,
        "pairing": (f"by record id {record_id!r}: a record in both periods has the same Poisson weight in both "
                    "(uniforms keyed by the sorted union of the ids)" if record_id else
                    "none (no record id column): each period's records are drawn independently"),
        "n_records": {"from": n_from, "to": n_to}, "persisting": persisting, "keys": n_keys,
        "ignored_records": {"from": designs[0].ignored, "to": designs[1].ignored},
        "derived": [framework.indicators[j].id for j in designs[0].derived],
        "poisson_rate": {"from": designs[0].rate, "to": designs[1].rate}}
    return PairedRecords(before, after, *columns, n_keys), manifest


def _default_records_spec(framework_id: str) -> Path:
    """The framework's shipped bootstrap specification (its record derivations), or a SchemaError."""
    path = default_bootstrap_spec(framework_id)
    if path is None:
        raise SchemaError(f"mode 'records' needs a bootstrap specification with a records section, and framework "
                          f"{framework_id!r} ships none", fix="pass spec= (--spec FILE): a bootstrap specification "
                          "saying how indicators are computed from the records (docs/bootstrap.md)")
    return path


def _check_memory(n_units: int, lanes: int, records: PairedRecords | None = None) -> None:
    """Refuse (DataError) a run whose histograms would not fit in memory, before any replicate: the
    change histograms (common units × 2 n per lane, chunk and run) are at most the size of an
    uncertainty run's rank and rank-shift histograms of the larger period; in mode ``records`` a lane
    also holds an RNG block's record uniforms, shared (4 bytes a key) and taken for each period (its
    :attr:`~engine.analysis.resampling.BootstrapProblem.draw_bytes`)."""
    draws = 0 if records is None else \
        RNG_BLOCK * (4 * records.n_keys + records.before.draw_bytes + records.after.draw_bytes)
    try:
        check_memory("uncertainty", n_units, 1, lanes, lane_draws=draws)
    except DataError:
        needed, available = estimate_bytes("uncertainty", n_units, 1, lanes, lane_draws=draws), available_bytes() or 0
        what = " and record draws per lane" if draws else ""
        raise DataError(f"change of {n_units:,} units ({lanes} lane(s)) needs about {needed / 2**20:,.0f} MiB of "
                        f"memory (rank-change histograms of units × 2 units per lane{what}), but only "
                        f"{available / 2**20:,.0f} MiB is available",
                        fix="use threads=1 (--threads 1), units='common' or fewer units: memory grows with units²"
                        + (" (and with the records)" if draws else "") + "; CITYRANK_MEMORY_CHECK=off skips this check"
                        ) from None


def _common_only(framework, data_from, data_to, label_from, label_to, load_kwargs):
    """Both periods' datasets restricted to the units present in both, and the ids of the units
    that entered and left (refused when none is common, before anything is scored)."""
    first, second = (as_dataset(framework, d, **load_kwargs) for d in (data_from, data_to))
    ids_from, ids_to = first.table[first.unit].to_list(), second.table[second.unit].to_list()
    in_from, in_to = set(ids_from), set(ids_to)
    common = in_from & in_to
    if not common:
        raise DataError(f"no unit is present in both periods {label_from!r} and {label_to!r} (e.g. "
                        f"{preview(ids_from)} against {preview(ids_to)})",
                        fix="check that both periods use the same unit ids (codes or names)")
    keep = [replace(d, table=d.table.filter(pl.col(d.unit).is_in(list(common)))) for d in (first, second)]
    return keep[0], keep[1], ([u for u in ids_to if u not in in_from], [u for u in ids_from if u not in in_to])


def _units_table(pair: PairedProblem, state: ChangeState, places: Sequence[int], entered: Sequence[Any],
                 left: Sequence[Any]) -> pl.DataFrame:
    """Common units with their statistics, then the ``entered`` and ``left`` ones (with their one
    rank and score when they were ranked, i.e. unless the run ranks common units only)."""
    before, after = pair.before, pair.after

    def rank_of(problem: Problem, rows) -> np.ndarray:
        ranks = problem.nominal_rank[0][rows]
        return np.where(ranks > 0, ranks, 0)

    rank_from, rank_to = rank_of(before, pair.rows_from), rank_of(after, pair.rows_to)
    common = pl.DataFrame({
        "unit": [str(u) for u in pair.common],
        "status": ["both"] * len(pair.common),
        "rank_from": rank_from, "rank_to": rank_to,
        "change": np.where((rank_from > 0) & (rank_to > 0), rank_from - rank_to, 0),
        **change_statistics(state.hist, places),
        "score_from": before.nominal_score[0][pair.rows_from], "score_to": after.nominal_score[0][pair.rows_to],
    }).with_columns(pl.when((pl.col("rank_from") > 0) & (pl.col("rank_to") > 0)).then(pl.col("change"))
                    .alias("change"))

    def one_sided(problem: Problem, ids: Sequence[Any], status: str, rank: str, score_column: str) -> pl.DataFrame:
        position = {u: i for i, u in enumerate(problem.units)}
        ranks = problem.nominal_rank[0]
        return pl.DataFrame({"unit": [str(u) for u in ids], "status": [status] * len(ids),
                             rank: [int(ranks[position[u]]) if u in position else 0 for u in ids],
                             score_column: [float(problem.nominal_score[0][position[u]]) if u in position else None
                                            for u in ids]}, schema_overrides={score_column: pl.Float64})

    table = pl.concat([common, one_sided(after, entered, "entered", "rank_to", "score_to"),
                       one_sided(before, left, "left", "rank_from", "score_from")], how="diagonal_relaxed")
    return (table.with_columns(pl.col("rank_from").replace(0, None), pl.col("rank_to").replace(0, None))
            .sort("rank_to", "rank_from", nulls_last=True, maintain_order=True))


def _distribution(pair: PairedProblem, state: ChangeState) -> pl.DataFrame:
    counts = state.hist[:, :-1]
    offset = counts.shape[1] // 2
    unit_index, column = np.nonzero(counts)
    n_rep = state.hist.sum(axis=1)
    return pl.DataFrame({"unit": [str(pair.common[i]) for i in unit_index], "change": column - offset,
                         "replicates": counts[unit_index, column],
                         "probability": counts[unit_index, column] / n_rep[unit_index]})


def _names(*results: ScoreResult) -> pl.DataFrame | None:
    tables = [r.unit_names() for r in results if r is not None]
    if not tables or all(t.width == 1 for t in tables):
        return None
    tables = [t.rename({t.columns[0]: "unit"}).with_columns(pl.col("unit").cast(pl.String)) for t in tables]
    return pl.concat(tables, how="diagonal_relaxed").unique("unit", keep="first", maintain_order=True)


def change(framework, periods, *, start=None, end=None, spec: str | Path | Mapping | UncertaintySpec | None = None,
           n_replicates: int | None = None, seed: int | None = None, block_size: int | None = None,
           node: str | None = None, normalisation: str = "period", units: str = "all", places: Sequence[int] = PLACES,
           backend: str = "threads", threads: int | None = None, client: Any = None, scheduler: str | None = None,
           workers: int | None = None, worker_wait: float | None = None, out: str | Path | None = None,
           out_format: str | None = None, progress: bool = False,
           confirm: Callable[[dict[str, Any]], None] | None = None, chunk_blocks: int | None = None,
           mode: str | None = None, records: Any = None, record_id: str | None = None,
           **load_kwargs: Any) -> ChangeResult:
    """Paired Monte Carlo (or paired record bootstrap) of the rank change of every unit from period
    ``start`` to ``end``.

    Parameters
    ----------
    framework
        Framework (object, shipped name or file) applied to both periods; with a panel, None (the
        panel's framework, :meth:`engine.panel.Panel.framework`) or the framework it was loaded for.
    periods
        A panel (:func:`engine.panel.load_panel`), a mapping ``{period: data}`` or a pair
        ``(data_from, data_to)``; ``start`` and ``end`` pick the two periods.
    spec, n_replicates, seed, block_size
        As for :func:`engine.uncertainty` (default: ±25 % noise on every weight); each replicate's
        design row is applied to both periods.  Mode ``records``: a bootstrap specification
        (:func:`engine.bootstrap`; default: the framework's shipped one) whose ``records`` section
        says how indicators are computed from the records, and whose ``perturb`` section, if any,
        adds weight/method perturbations (one design row per replicate, both periods).
    mode
        ``"montecarlo"`` (the default without ``records``): weights and methods perturbed;
        ``"records"`` (the default with ``records``): each replicate resamples the records of both
        periods (Poisson weights) and recomputes the record-derived indicators of each.
    records
        Record-level table of both periods (path, shipped dataset name or DataFrame): one row per
        record with its unit (the spec's ``records.unit``) and its period, in a column named as the
        panel's period column (``"period"`` without a panel).
    record_id
        Column of ``records`` that identifies a record in both periods (e.g. a firm id): a record
        present in both periods gets the same Poisson weight in both (exact pairing, whatever the
        row order).  Without it, each period's records are drawn independently.
    node
        The node whose rank change is analysed (default: the spec's first target, else the index).
    normalisation
        ``"period"``: each period normalised on its own data; ``"panel"``: one normalisation
        fitted across the panel (needs a panel), so scores are comparable over time.
    units
        ``"all"``: each period ranks all its units (a unit's rank also moves when units enter or
        leave); ``"common"``: both periods rank only the units present in both (the others are
        dropped before scoring, so they take no part in a period's normalisation either; they are
        still listed as entered or left, without a rank).
    places
        ``k`` of the ``p_improved_k`` columns (P(improved by >= k places)); 1 is ``p_improved``.
    backend, threads, client, scheduler, workers, worker_wait, chunk_blocks, progress, confirm
        As for :func:`engine.uncertainty` (no checkpoints: a paired run is not resumed).
    out, out_format
        Where the tables (``units``, ``distribution``) and ``manifest.json`` are written.

    Returns
    -------
    ChangeResult
        ``.units``: per unit ``status`` (``both``, ``entered``, ``left``), ``rank_from``,
        ``rank_to``, ``change`` (nominal, + = moved up), ``median_change``, ``q05_change``,
        ``q95_change``, ``mean_change``, ``sd_change``, ``p_improved``, ``p_improved_k``,
        ``p_same``, ``p_worsened``, ``p_missing``, ``robust`` (the 5–95 % interval excludes 0).

    Raises
    ------
    SchemaError
        Unknown normalisation, units, node or backend option, the same period twice, a block size that
        is not a multiple or divisor of 1,024, a panel loaded for another framework.
    DataError
        A period not in the panel, no unit present in both periods; in mode ``records``: records
        without the period or record id column, a period without records, a record id missing or
        repeated within a period, a record of a unit not in its period's data, a derived indicator
        that differs from the unit table.
    """
    started = time.perf_counter()
    label_from, data_from, label_to, data_to, panel_framework = _as_periods(periods, start, end, normalisation)
    backends = check_run(out, [framework, data_from, data_to, spec, records],
                         BackendOptions(backend, threads, client, scheduler, workers, worker_wait))
    if panel_framework is None and framework is None:
        raise SchemaError("no framework given", fix="pass the framework (name, file or object), or a panel")
    mode = mode or ("records" if records is not None else "montecarlo")
    if mode not in MODES:
        raise SchemaError(f"mode must be 'montecarlo' or 'records', got {mode!r}",
                          fix="'montecarlo': perturb weights and methods; 'records': resample the records of both "
                          "periods (needs records=)")
    if (mode == "records") != (records is not None):
        raise SchemaError("mode 'records' needs the record-level table" if records is None else
                          "records are resampled in mode 'records' only, not 'montecarlo'",
                          fix="pass records= (--records FILE) with mode 'records', or neither")
    bootstrap_spec = None
    if mode == "records":
        fw_id = (panel_framework or load_framework(framework)).id
        bootstrap_spec = load_bootstrap_spec(spec if spec is not None else _default_records_spec(fw_id), mode="records",
                                             replicates=n_replicates, seed=seed, block_size=block_size)
        spec = bootstrap_spec.uncertainty_spec()
    else:
        spec = load_spec(spec, replicates=n_replicates, seed=seed, block_size=block_size)
    if spec.block_size % RNG_BLOCK and RNG_BLOCK % spec.block_size:
        raise SchemaError(f"block_size {spec.block_size} must be a multiple or a divisor of {RNG_BLOCK}",
                          fix="use e.g. 1024, 4096 or 8192 (or 64, 256 for tiny runs)")
    if units not in UNITS:
        raise SchemaError(f"units must be 'all' or 'common', got {units!r}",
                          fix="'all': rank every unit of each period; 'common': only the units in both periods")
    if panel_framework is not None and framework is not None and \
            load_framework(framework).digest != periods.source_framework.digest:
        raise SchemaError(f"the panel was loaded for framework {periods.source_framework.id!r}, not the one given",
                          fix="pass framework=None (the panel's own) or load the panel with this framework")
    fw = load_framework(framework) if panel_framework is None else panel_framework
    dropped: tuple[list, list] = ([], [])  # entered, left: not scored (units="common")
    if units == "common":
        data_from, data_to, dropped = _common_only(fw, data_from, data_to, label_from, label_to, load_kwargs)
    with said_by_load_panel() if panel_framework is not None else nullcontext():
        nominal_from, nominal_to = (score(fw, d, **load_kwargs) for d in (data_from, data_to))
    resolved = nominal_from.framework
    target = node or (spec.targets[0] if spec.targets else resolved.root.id)
    if target not in resolved.node_ids:
        raise SchemaError(f"unknown node {target!r}", node=target, fix=f"use a node id such as {resolved.root.id!r}")
    n_ranked = max(int(np.count_nonzero(r.stages.kept)) for r in (nominal_from, nominal_to))
    _check_memory(n_ranked, backends.lanes)  # the histograms: before the records are read
    if mode == "montecarlo":
        spec = with_default_factors(spec, resolved)
    spec = replace(spec, targets=(target,), pairs=())
    factors = resolve_factors(spec, resolved)
    problems = build_problem(nominal_from, spec, factors), build_problem(nominal_to, spec, factors)
    resampled, records_manifest = None, None
    if mode == "records":
        period_column = periods.period if isinstance(periods, Panel) else "period"
        resampled, records_manifest = _paired_records(bootstrap_spec, problems, factors, (label_from, label_to),
                                                      records, record_id, period_column, units == "common")
        _check_memory(n_ranked, backends.lanes, resampled)
    pair = _pair(*problems, label_from, label_to, resampled)
    seed = run_seed(spec.seed)
    fingerprint = {"framework": resolved.digest, "data_from": data_digest(nominal_from),
                   "data_to": data_digest(nominal_to), "seed": seed, "block_size": spec.block_size,
                   "spec": json.loads(json.dumps({k: v for k, v in (bootstrap_spec or spec).document.items()
                                                    if k != "seed"}, default=str)),
                   "periods": [str(label_from), str(label_to)], "normalisation": normalisation, "units": units,
                   "node": target, "mode": mode,
                   "records": None if records_manifest is None else [records_manifest["source"], record_id],
                   "n_blocks": -(-spec.replicates // spec.block_size), "engine": __version__}

    def finish(state: ChangeState, info: dict[str, Any]) -> ChangeResult:
        common = set(pair.common)
        entered = dropped[0] or [u for u in pair.after.units if u not in common]
        left = dropped[1] or [u for u in pair.before.units if u not in common]
        table = with_unit_names(_units_table(pair, state, places, entered, left), _names(nominal_to, nominal_from))
        wall = time.perf_counter() - started
        n = state.n_replicates
        manifest = {
            "kind": "change",
            "mode": mode,
            "framework": {"id": resolved.id, "digest": resolved.digest, "path": resolved.path},
            "periods": {"from": label_from, "to": label_to},
            "normalisation": normalisation,
            "units_ranked": units,
            "node": target,
            "data": {"from": nominal_from.recipe["data"], "to": nominal_to.recipe["data"],
                     "n_units": len(pair.common)},
            "spec": (bootstrap_spec or spec).to_dict() | {"seed": seed},
            "records": records_manifest,
            "factors": [f.name for f in factors],
            "replicates": n, "block_size": spec.block_size, "rng_block": RNG_BLOCK, "seed": seed,
            "places": list(places),
            "units": {"common": len(pair.common),
                      "entered": [str(u) for u in entered], "left": [str(u) for u in left],
                      "robust": int(table["robust"].sum())},
            "versions": versions(), "wall_time_s": wall, "replicates_per_s": n / wall if wall > 0 else None,
            **info,
        }
        return ChangeResult(table, _distribution(pair, state), manifest, pair)

    return drive(_Change(pair, spec, factors, seed, fingerprint), finish, backends, out=out, out_format=out_format,
                 progress=progress, chunk_blocks=chunk_blocks, confirm=confirm)
