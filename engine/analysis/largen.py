"""Large-n Monte Carlo: rank statistics of 10⁴–10⁵ units in O(units × bins) memory, with the
median, 5 % and 95 % ranks still exact.

The exact histograms of :class:`engine.analysis.montecarlo.ChunkState` are units × units per
target (7 GB at 30,000 units).  Above a unit count (:data:`LARGE_N_ABOVE`, the user's
``large_n_above``), :func:`engine.analysis.uncertainty.uncertainty` runs this mode instead, in two
passes of the one driver (:func:`engine.analysis.driver.drive`) over the very same replicates
(a replicate is a function of the seed and its block only):

1. :class:`BandState`: per unit, counts over coarse rank bins (:class:`Bands`: equal bins whose
   edges also fall on every decile, top-k and nominal-tier edge, so those band probabilities are
   exact), the exact Σ rank, Σ rank², best and worst rank, and the total rank shift S (its
   histogram in bins of n_units ranks, its exact sum);
2. :class:`WindowState`: per unit and wanted quantile (5 %, 50 %, 95 %), exact rank counts in a
   window of one bin width from the bin that holds the quantile's order statistic (found from
   pass 1), and the smallest rank beyond it.

:func:`summarise` then gives ``numpy.quantile`` (linear, type 7) of each unit's raw ranks exactly,
as :func:`engine.analysis.montecarlo.quantile_from_counts` does from full histograms.  All counts
are integers, merged by addition (min / max for the extremes), so results are bit-identical for any
threads, chunks, block sizes or Dask workers.  Not in this mode: checkpoints and resume (pass 2
has no store yet; a resume is refused), the unit × rank acceptability matrix (replaced by the
decile-acceptability matrix), and an exact R_S distribution (binned to n_units / n_ranked ≈ 1 rank;
its mean is exact).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from ..backends.state import BlockState
from ..errors import SchemaError
from ..kernels import bands as band_kernels
from ..kernels import montecarlo as kernel
from .design import RNG_BLOCK, ParameterMap, n_columns, replicate_uniforms
from .driver import BackendOptions, drive, replicate_chunk_blocks
from .exact import ExactSum, add_sums
from .montecarlo import BlockDealer, RankStatistics, in_lanes, pair_table, quantile_from_counts, rng_ranges
from .problem import Problem, kernel_design, kernel_targets, kernel_tree
from .spec import Factor

__all__ = ["LARGE_N_ABOVE", "LANE_BYTES", "QUANTILES", "BandState", "Bands", "MonteCarloSource", "WindowState", "bands",
           "count_ranks", "count_type", "default_bins", "exact_quantiles", "lane_state", "large_n_mode", "merge_lanes",
           "quantile_windows", "run_chunk", "run_largen", "summarise"]

#: Units above which an uncertainty run uses this mode (``large_n_above`` / ``--large-n-above``).
LARGE_N_ABOVE = 5000
#: The quantiles kept exact (the per-unit table's q05_rank, median_rank, q95_rank).
QUANTILES = (0.05, 0.5, 0.95)
#: Ranks a lane holds at once (bytes): its counting batch of replicates.  The counting kernels
#: walk the units and count a unit's ranks of the whole batch before the next unit's, so a bigger
#: batch reuses each unit's counters (its row of coarse bins) more often: at 10⁵ units pass-1
#: counting costs ≈ 1.5 ms per replicate with 23 replicates a batch, ≈ 0.6 ms with 167 (int32 ranks).
LANE_BYTES = 1 << 26
#: Replicates a lane scores and ranks at once (their scores and keys: 12 bytes per unit and target),
#: then adds to its counting batch.
SCORE_BATCH = 32


def large_n_mode(n_units: int, above: int | None, bins: int | None) -> bool:
    """Whether a run of ``n_units`` uses large-n mode (above ``above`` units, default
    :data:`LARGE_N_ABOVE`); bad ``above`` / ``bins`` are refused before any work."""
    if above is not None and (isinstance(above, bool) or not isinstance(above, int) or above < 0):
        raise SchemaError(f"large_n_above must be a whole number of units >= 0, got {above!r}",
                          fix="e.g. large_n_above=5000 (0: always large-n mode)")
    if bins is not None and (isinstance(bins, bool) or not isinstance(bins, int) or bins < 1):
        raise SchemaError(f"rank_bins must be a whole number >= 1, got {bins!r}", fix="e.g. rank_bins=500, or leave "
                          "it unset (√(3 · units))")
    return n_units > (LARGE_N_ABOVE if above is None else above)


def default_bins(n_units: int) -> int:
    """Coarse bins minimising a unit's state (bins + 3 windows of n_units / bins ranks): √(3 n)."""
    return max(1, min(n_units, round(math.sqrt(3 * n_units))))


@dataclass(frozen=True)
class Bands:
    """Coarse rank bins of a run: bin ``b`` holds ranks ``starts[b] … starts[b + 1] − 1``."""

    n_units: int
    starts: np.ndarray  #: int64 (n_bins,): first rank of each bin (starts[0] = 1).
    bin_of_rank: np.ndarray  #: int32 (n_units,): bin of rank r at r − 1 (int32: half the cache lines counting reads).
    width: int  #: Ranks in the widest bin (the pass-2 window).

    @property
    def n_bins(self) -> int:
        return len(self.starts)

    def cumulative(self, coarse: np.ndarray) -> np.ndarray:
        """Counts of ranks below each bin edge: (…, n_bins + 1), column 0 = 0 (for :meth:`count_between`)."""
        out = np.zeros((*coarse.shape[:-1], self.n_bins + 1), np.int64)
        running_counts(coarse[..., :self.n_bins], out=out[..., 1:])
        return out

    def count_between(self, cumulative: np.ndarray, lo: int | np.ndarray, hi: int | np.ndarray) -> np.ndarray:
        """Replicates with a rank in [lo, hi], from :meth:`cumulative` (``lo`` and ``hi + 1`` must be
        bin edges or n + 1)."""
        edges = np.append(self.starts, self.n_units + 1)
        first = np.searchsorted(edges, lo)
        stop = np.searchsorted(edges, np.asarray(hi) + 1)
        if np.ndim(lo):
            rows = np.arange(cumulative.shape[-2])
            return cumulative[..., rows, stop] - cumulative[..., rows, first]
        return cumulative[..., stop] - cumulative[..., first]


def decile_of(rank: np.ndarray, n_units: int) -> np.ndarray:
    """Decile of a rank among ``n_units``: ceil(10 · rank / n) (1 = the best tenth; 0 = no rank), the
    English Indices of Deprivation's convention (:func:`engine.kernels.tiers.quantile_tiers`)."""
    rank = np.asarray(rank, np.int64)
    return np.where(rank > 0, (rank * 10 + n_units - 1) // n_units, 0)


def bands(problem: Problem, bins: int | None = None, top_k: tuple[int, ...] = (1, 3, 10)) -> Bands:
    """The coarse bins of a run: ``bins`` equal bins (default :func:`default_bins`), split further at
    every decile edge, top-k edge and nominal-tier edge."""
    n = problem.n_units
    step = -(-n // (bins or default_bins(n)))
    starts = set(range(1, n + 1, step))
    starts |= {(d * n) // 10 + 1 for d in range(10)}  # first rank of decile d + 1: ceil(10 r / n) = d + 1
    starts |= {k + 1 for k in top_k}
    bounds = problem.tier_bounds[problem.tier_bounds[..., 0] > 0]
    starts |= set(bounds[:, 0].tolist()) | set((bounds[:, 1] + 1).tolist())
    starts_array = np.array(sorted(s for s in starts if 1 <= s <= n), np.int64)
    bin_of_rank = (np.searchsorted(starts_array, np.arange(1, n + 1), side="right") - 1).astype(np.int32)
    width = int(np.diff(np.append(starts_array, n + 1)).max())
    return Bands(n, starts_array, bin_of_rank, width)


def count_type(n_replicates: int | None) -> type:
    """The integer type of a state's rank counts (coarse bins, windows): a count is at most the
    replicates the state holds, so int32 below 2³¹ of them (half the memory, and half the cache
    lines the counting kernels touch), int64 beyond or when unknown (None)."""
    return np.int32 if n_replicates is not None and n_replicates < 2**31 else np.int64


@dataclass
class BandState(BlockState):
    """Pass-1 statistics of a set of blocks (mergeable, see the module docstring)."""

    coarse: np.ndarray  #: int32 or int64 (:func:`count_type`) (n_targets, n_units, n_bins + 1); last column = no rank.
    rank_sums: np.ndarray  #: int64 (n_targets, n_units, 2): Σ rank, Σ rank².
    extremes: np.ndarray  #: int64 (n_targets, n_units, 2): best (n + 1 before any) and worst (0) rank.
    shift_hist: np.ndarray  #: int64 (n_targets, n_units): total rank shift S in bins of n_units.
    shift_sum: np.ndarray  #: int64 (n_targets,): Σ S.
    pair_count: np.ndarray  #: int64 (n_targets, n_pairs, n_pairs).
    moments: ExactSum | None = None  #: As :attr:`engine.analysis.montecarlo.ChunkState.moments`.
    blocks: set[int] = field(default_factory=set)

    @classmethod
    def empty(cls, problem: Problem, layout: Bands, n_replicates: int | None = None,
              moments: bool = True) -> BandState:
        """An empty state for at most ``n_replicates`` replicates (None: any number); ``moments``
        False: without score moments (a lane's: its chunk sums them per RNG block, :func:`merge_lanes`)."""
        n_t, n_u, n_p = len(problem.targets), problem.n_units, len(problem.pair_units)
        extremes = np.zeros((n_t, n_u, 2), np.int64)
        extremes[..., 0] = n_u + 1
        return cls(np.zeros((n_t, n_u, layout.n_bins + 1), count_type(n_replicates)),
                   np.zeros((n_t, n_u, 2), np.int64), extremes, np.zeros((n_t, n_u), np.int64), np.zeros(n_t, np.int64),
                   np.zeros((n_t, n_p, n_p), np.int64), ExactSum.zeros((n_t, n_u, 2)) if moments else None)

    @property
    def hist(self) -> np.ndarray:
        """The coarse counts: like ChunkState.hist, the last column counts replicates without a rank."""
        return self.coarse

    @property
    def n_replicates(self) -> int:
        return int(self.coarse[0, 0].sum())

    def absorb(self, other: BandState) -> BandState:
        self.claim(other)
        for name in ("coarse", "rank_sums", "shift_hist", "shift_sum", "pair_count"):
            getattr(self, name).__iadd__(getattr(other, name))
        np.minimum(self.extremes[..., 0], other.extremes[..., 0], out=self.extremes[..., 0])
        np.maximum(self.extremes[..., 1], other.extremes[..., 1], out=self.extremes[..., 1])
        self.moments = add_sums(self.moments, other.moments)
        return self

    def copy(self) -> BandState:
        return BandState(self.coarse.copy(), self.rank_sums.copy(), self.extremes.copy(), self.shift_hist.copy(),
                         self.shift_sum.copy(), self.pair_count.copy(),
                         None if self.moments is None else self.moments.copy(), set(self.blocks))

    def score_moments(self) -> np.ndarray:
        if self.moments is None:
            return np.zeros((*self.coarse.shape[:2], 2))
        return self.moments.value()


@dataclass
class WindowState(BlockState):
    """Pass-2 statistics of a set of blocks: exact rank counts in each unit's quantile windows."""

    fine: np.ndarray  #: int32 or int64 (:func:`count_type`) (n_targets, n_units, 3, width).
    above: np.ndarray  #: int64 (n_targets, n_units, 3): smallest rank beyond the window (n + 1: none).
    blocks: set[int] = field(default_factory=set)

    @classmethod
    def empty(cls, problem: Problem, layout: Bands, n_replicates: int | None = None) -> WindowState:
        """An empty state for at most ``n_replicates`` replicates (None: any number)."""
        n_t, n_u = len(problem.targets), problem.n_units
        return cls(np.zeros((n_t, n_u, len(QUANTILES), layout.width), count_type(n_replicates)),
                   np.full((n_t, n_u, len(QUANTILES)), n_u + 1, np.int64))

    def absorb(self, other: WindowState) -> WindowState:
        self.claim(other)
        self.fine += other.fine
        np.minimum(self.above, other.above, out=self.above)
        return self

    def copy(self) -> WindowState:
        return WindowState(self.fine.copy(), self.above.copy(), set(self.blocks))


def run_chunk(problem: Problem, factors: list[Factor], seed: int, first_block: int, stop_block: int,
              block_size: int, n_lanes: int, n_replicates: int, layout: Bands, windows: np.ndarray | None = None,
              on_block=None) -> BandState | WindowState:
    """Blocks ``first_block .. stop_block − 1`` of a run: pass 1 (``windows`` None) or pass 2
    (``windows``: (n_targets, n_units, 3) window starts from :func:`quantile_windows`).

    The replicates are those of :func:`engine.analysis.montecarlo.run_chunk` (RNG blocks, the same
    draws and scores, :func:`engine.kernels.montecarlo.montecarlo_scores`; the same exact ranks and
    moment additions, by the bucket sort of :func:`engine.kernels.bands.rank_batch`, moments per RNG
    block); lanes take RNG blocks in turn, each counting into its own state."""
    ranges = rng_ranges(first_block, stop_block, block_size, n_replicates)
    n_lanes = max(1, min(n_lanes, len(ranges)))
    n_t, n_u = len(problem.targets), problem.n_units
    moments = np.zeros((len(ranges), n_t, n_u, 2))
    mapping = ParameterMap(factors, problem)
    columns = n_columns(factors)
    batch = max(1, min(256, LANE_BYTES // (4 * n_t * n_u)))  # int32 ranks (a rank is at most n_units)
    sub = min(SCORE_BATCH, batch)
    dealer = BlockDealer(len(ranges))
    tree, targets = kernel_tree(problem), kernel_targets(problem)

    @dealer.lane
    def lane_run(lane: int) -> BandState | WindowState:
        state = lane_state(problem, layout, windows, n_replicates)
        scores, keys = np.empty((sub, n_t, n_u)), np.empty((sub, n_t, n_u), np.uint32)
        ranks = np.zeros((batch, n_t, n_u), np.int32)
        filled = 0  # replicates ranked into ranks[:filled], not counted yet (counts are integers: any grouping)
        scratch = np.zeros((n_t, n_u, 2)) if windows is not None else None
        while (k := dealer.take()) is not None:
            lo, hi = ranges[k]
            params = mapping(replicate_uniforms(seed, lo, hi, columns))
            a = 0
            while a < hi - lo:
                m = min(sub, hi - lo - a, batch - filled)
                kernel.montecarlo_scores(problem.zt, problem.linear_variant, tree,
                                         kernel_design(params.slice(a, a + m)), targets, scores[:m], keys[:m])
                band_kernels.rank_batch(scores[:m], moments[k] if windows is None else scratch,
                                        ranks[filled:filled + m])
                a, filled = a + m, filled + m
                if filled == batch:
                    count_ranks(problem, layout, windows, state, ranks)
                    filled = 0
            if on_block is not None:
                on_block(hi - lo)
        if filled:
            count_ranks(problem, layout, windows, state, ranks[:filled])
        return state

    return merge_lanes(in_lanes(lane_run, n_lanes), moments, windows, first_block, stop_block)


def lane_state(problem: Problem, layout: Bands, windows: np.ndarray | None, n_replicates: int | None
               ) -> BandState | WindowState:
    """A lane's empty state of a pass (``windows`` None: pass 1, without score moments: the lanes'
    chunk sums them per RNG block, :func:`merge_lanes`), its counts typed for ``n_replicates``."""
    if windows is None:
        return BandState.empty(problem, layout, n_replicates, moments=False)
    return WindowState.empty(problem, layout, n_replicates)


def merge_lanes(states: list, moments: np.ndarray, windows: np.ndarray | None, first_block: int, stop_block: int):
    """A chunk's pass state from its lanes' states: added up, with the chunk's score moments (summed
    exactly per RNG block, pass 1 only) and the chunk's blocks."""
    total = states[0]
    for more in states[1:]:
        total.absorb(more)
    if windows is None:
        total.moments = ExactSum.of(moments)
    total.blocks = set(range(first_block, stop_block))
    return total


def count_ranks(problem: Problem, layout: Bands, windows: np.ndarray | None, state: BandState | WindowState,
                ranks: np.ndarray) -> None:
    """Count the ranks (m, n_targets, n_units) of a batch of replicates into a pass-1 ``state``
    (``windows`` None: coarse bins, rank sums, extremes, rank shifts, pairs) or a pass-2 one."""
    if windows is not None:
        band_kernels.count_windows(ranks, windows, layout.width, (state.fine, state.above))
        return
    if len(problem.pair_units):
        _count_pairs(ranks, problem.pair_units, state.pair_count)
    band_kernels.count_bands(ranks, problem.nominal_rank, layout.bin_of_rank,
                             (state.coarse, state.rank_sums, state.extremes, state.shift_hist, state.shift_sum))


def _count_pairs(ranks: np.ndarray, pair_units: np.ndarray, pair_count: np.ndarray) -> None:
    """``pair_count[t, a, b] +=`` replicates in which pair unit a is ranked strictly ahead of b (both ranked)."""
    chosen = ranks[:, :, pair_units]
    ranked = chosen > 0
    ahead = (chosen[..., :, None] < chosen[..., None, :]) & ranked[..., :, None] & ranked[..., None, :]
    pair_count += ahead.sum(axis=0)


def _chunk(problem: Problem, factors, seed: int, block_size: int, n_replicates: int, layout: Bands,
           windows: np.ndarray | None, first: int, stop: int):
    """Dask task: blocks [first, stop) of a pass with one lane."""
    return run_chunk(problem, factors, seed, first, stop, block_size, 1, n_replicates, layout, windows)


#: Replicates per chunk on Dask, and in process (as engine.analysis.uncertainty).
CHUNK_REPLICATES, LOCAL_CHUNK_REPLICATES = 65536, 262144
#: On Dask a pass is cut into at least this many chunks (of at least one RNG block each), so that
#: every worker of a small cluster gets work: 10⁴ replicates make 10 chunks, not one of 65,536.
DASK_CHUNKS = 16


class MonteCarloSource:
    """Where a large-n pass gets its replicates' ranks: the Monte Carlo's (:func:`run_chunk`).  Another
    analysis (the bootstrap, :mod:`engine.analysis.resampling`) gives its own source with the same
    two methods: ``run(first, stop, n_lanes, layout, windows, on_block)`` → a pass state, and
    ``task(layout, windows)`` → (function, arguments) of the Dask task, called with (first, stop), and
    the attributes ``n_replicates`` and ``block_size`` (which :func:`run_largen` may lower on Dask)."""

    def __init__(self, problem: Problem, factors, seed: int, n_replicates: int, block_size: int):
        self.problem, self.factors, self.seed = problem, factors, seed
        self.n_replicates, self.block_size = n_replicates, block_size

    def run(self, first: int, stop: int, n_lanes: int, layout: Bands, windows: np.ndarray | None, on_block):
        return run_chunk(self.problem, self.factors, self.seed, first, stop, self.block_size, n_lanes,
                         self.n_replicates, layout, windows, on_block)

    def task(self, layout: Bands, windows: np.ndarray | None):
        return _chunk, (self.problem.without_result(), self.factors, self.seed, self.block_size, self.n_replicates,
                        layout, windows)


class _Pass:
    """One pass as an analysis of :func:`engine.analysis.driver.drive` (no checkpoints)."""

    checkpoints = False
    work_per_replicate = 1

    def __init__(self, problem: Problem, source, layout: Bands, windows: np.ndarray | None,
                 fingerprint: dict[str, Any]):
        self.problem, self.source, self.layout, self.windows = problem, source, layout, windows
        self.n_replicates, self.block_size = source.n_replicates, source.block_size
        self.work_unit = "replicates (pass 1 of 2)" if windows is None else "replicates (pass 2 of 2)"
        self._fingerprint = {**fingerprint, "pass": 1 if windows is None else 2}

    def chunk_blocks(self, requested: int | None, distributed: bool) -> int:
        if not distributed:
            return replicate_chunk_blocks(requested, LOCAL_CHUNK_REPLICATES, self.block_size)
        per_chunk = min(CHUNK_REPLICATES, max(RNG_BLOCK, -(-self.n_replicates // DASK_CHUNKS)))
        return replicate_chunk_blocks(requested, per_chunk, self.block_size)

    def empty_state(self):
        return (BandState if self.windows is None else WindowState).empty(self.problem, self.layout, self.n_replicates)

    def run_chunk(self, first: int, stop: int, n_lanes: int, on_block):
        return self.source.run(first, stop, n_lanes, self.layout, self.windows, on_block)

    def dask_task(self):
        return self.source.task(self.layout, self.windows)

    def fingerprint(self) -> dict[str, Any]:
        return self._fingerprint

    def close(self) -> None:
        pass


def running_counts(counts: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """int64 running sums of ``counts`` along the last axis (``np.cumsum``), into ``out`` if given:
    widened first, then summed in place (4 × faster than a cumsum that converts int32 counts as it
    goes, 10^5 units × 549 bins)."""
    if out is None:
        out = counts.astype(np.int64)
    else:
        out[...] = counts
    return np.cumsum(out, axis=-1, out=out)


def _order_statistics(n: np.ndarray, q: float):
    """Per unit, from its sample size ``n`` (its ranked replicates): h = (n − 1) q and the 0-based
    order statistics lo = ⌊h⌋ and hi = min(lo + 1, n − 1) that type-7 interpolation reads."""
    h = np.maximum(n - 1, 0) * q
    lo = np.floor(h).astype(np.int64)
    return h, lo, np.minimum(lo + 1, np.maximum(n - 1, 0))


def quantile_windows(state: BandState, layout: Bands) -> np.ndarray:
    """Window starts (n_targets, n_units, 3) of pass 2: the first rank of the bin that holds each
    wanted quantile's lower order statistic (a unit without ranks: bin 0)."""
    counts = state.coarse[..., :layout.n_bins]
    cumulative = running_counts(counts)
    starts = np.empty((*counts.shape[:-1], len(QUANTILES)), np.int64)
    for j, q in enumerate(QUANTILES):
        _, lo, _ = _order_statistics(cumulative[..., -1], q)
        b = np.minimum((cumulative <= lo[..., None]).sum(axis=-1), layout.n_bins - 1)
        starts[..., j] = layout.starts[b]
    return starts


def exact_quantiles(state: BandState, windows: np.ndarray, second: WindowState, layout: Bands) -> np.ndarray:
    """``numpy.quantile(ranks, q)`` (type 7) of every unit's ranks for each q of :data:`QUANTILES`:
    (n_targets, n_units, 3), NaN for a unit never ranked."""
    counts = state.coarse[..., :layout.n_bins]
    cumulative = running_counts(counts)
    out = np.empty(windows.shape)
    n = cumulative[..., -1]
    for j, q in enumerate(QUANTILES):
        h, lo, hi = _order_statistics(n, q)
        start = windows[..., j]
        below = np.where(start > 1, np.take_along_axis(
            cumulative, np.maximum(layout.bin_of_rank[start - 1] - 1, 0)[..., None], axis=-1)[..., 0], 0)
        fine = running_counts(second.fine[..., j, :])  # ranks up to each of the window's, counted from its start
        x_lo = start + (fine <= (lo - below)[..., None]).sum(axis=-1)
        inside = below + fine[..., -1] > hi
        x_hi = np.where(inside, start + (fine <= (hi - below)[..., None]).sum(axis=-1), second.above[..., j])
        with np.errstate(invalid="ignore"):
            out[..., j] = np.where(n > 0, x_lo + (h - lo) * (x_hi - x_lo), np.nan)
    return out


def summarise(problem: Problem, state: BandState, quantiles: np.ndarray, layout: Bands,
              top_k: tuple[int, ...] = (1, 3, 10)) -> RankStatistics:
    """The per-unit tables of :func:`engine.analysis.montecarlo.summarise` (same column names and,
    for the statistics both modes have, the same values) plus rank bands: percentile ranks
    (rank − 1)/(n − 1) of the nominal rank and of the 5 %, 50 %, 95 % ranks, P(each decile) and
    P(same decile); the acceptability table is the decile-acceptability matrix (nominal decile ×
    replicate decile, shares of unit-replicates)."""
    n_rep, n_u = state.n_replicates, problem.n_units
    moments = state.score_moments()
    units_tables, accept, pairs, shifts, shift_summary = {}, {}, {}, {}, {}
    decile_edges = [(d * n_u) // 10 + 1 for d in range(11)]
    scale = max(n_u - 1, 1)
    for t, target in enumerate(problem.target_ids):
        coarse = state.coarse[t]
        below = layout.cumulative(coarse)  # once: every band probability reads it
        ranked = coarse[:, :-1].sum(axis=1)
        sum_r, sum_r2 = state.rank_sums[t, :, 0], state.rank_sums[t, :, 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = sum_r / ranked
            var = np.maximum(sum_r2 / ranked - mean * mean, 0.0)
            score_mean = moments[t, :, 0] / ranked
            score_var = np.maximum(moments[t, :, 1] / ranked - score_mean * score_mean, 0.0)
        q05, median, q95 = quantiles[t, :, 0], quantiles[t, :, 1], quantiles[t, :, 2]
        nominal = problem.nominal_rank[t]
        columns: dict[str, Any] = {
            "unit": problem.units, "nominal_score": problem.nominal_score[t],
            "nominal_rank": np.where(nominal > 0, nominal, 0), "mean_rank": mean, "median_rank": median,
            "q05_rank": q05, "q95_rank": q95, "rank_sd": np.sqrt(var),
            "best_rank": np.where(ranked > 0, state.extremes[t, :, 0], 0),
            "worst_rank": np.where(ranked > 0, state.extremes[t, :, 1], 0),
        }
        for k in top_k:
            columns[f"p_top{k}"] = layout.count_between(below, 1, min(k, n_u)) / n_rep
        lo, hi = problem.tier_bounds[t, :, 0], problem.tier_bounds[t, :, 1]
        same = np.where(lo > 0, layout.count_between(below, np.maximum(lo, 1), np.maximum(hi, 1)), 0)
        columns["nominal_tier"] = problem.tier_of[t]
        columns["p_same_tier"] = same / n_rep
        columns["p_missing"] = coarse[:, -1] / n_rep
        columns["score_mean"] = score_mean
        columns["score_sd"] = np.sqrt(score_var)
        columns["nominal_pct_rank"] = np.where(nominal > 0, (nominal - 1) / scale, np.nan)
        for name, value in (("q05", q05), ("median", median), ("q95", q95)):
            columns[f"pct_rank_{name}"] = (value - 1) / scale
        nominal_decile = decile_of(nominal, n_u)
        columns["nominal_decile"] = nominal_decile
        deciles = np.stack([layout.count_between(below, decile_edges[d], decile_edges[d + 1] - 1)
                            for d in range(10)], axis=1)
        for d in range(10):
            columns[f"p_decile_{d + 1}"] = deciles[:, d] / n_rep
        rows = np.arange(n_u)
        columns["p_same_decile"] = np.where(nominal_decile > 0, deciles[rows, np.maximum(nominal_decile - 1, 0)],
                                            0) / n_rep
        table = pl.DataFrame(columns).with_columns(
            pl.col("nominal_rank").replace(0, None), (pl.col("q95_rank") - pl.col("q05_rank")).alias("rank_range_90"))
        units_tables[target] = table.sort("nominal_rank", nulls_last=True, maintain_order=True)
        matrix = np.zeros((11, 10), np.int64)  # nominal decile (0 = no nominal rank) × replicate decile
        np.add.at(matrix, nominal_decile, deciles)
        members = np.bincount(nominal_decile, minlength=11)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = matrix / (members[:, None] * n_rep)
        accept[target] = pl.DataFrame({"nominal_decile": np.arange(1, 11), "units": members[1:],
                                       **{f"decile_{d + 1}": shares[1:, d] for d in range(10)},
                                       **{f"count_decile_{d + 1}": matrix[1:, d] for d in range(10)}})
        if len(problem.pair_units):
            pairs[target] = pair_table(problem, state.pair_count[t], n_rep)
        n_ranked = max(int((nominal > 0).sum()), 1)
        bins = np.flatnonzero(state.shift_hist[t])
        freq = state.shift_hist[t][bins]
        shifts[target] = pl.DataFrame({"total_shift_from": bins * n_u, "rank_shift_from": bins * n_u / n_ranked,
                                       "replicates": freq, "probability": freq / n_rep})
        counts = np.zeros(int(bins.max()) + 1 if len(bins) else 1, np.int64)
        counts[bins] = freq
        shift_summary[target] = {
            "mean": float(state.shift_sum[t] / n_rep / n_ranked),
            **{name: (quantile_from_counts(counts, q) - 1) * n_u / n_ranked
               for name, q in (("q05", 0.05), ("median", 0.5), ("q95", 0.95))},
            "max": float((bins.max() + 1) * n_u / n_ranked) if len(bins) else 0.0,
            "resolution": n_u / n_ranked,
        }
    return RankStatistics(units_tables, accept, pairs, shifts, shift_summary, n_rep)


def run_largen(problem: Problem, factors: list[Factor], seed: int, n_replicates: int, block_size: int,
               backend: BackendOptions, *, bins: int | None = None, top_k: tuple[int, ...] = (1, 3, 10),
               fingerprint: dict[str, Any] | None = None, progress: bool = False, chunk_blocks: int | None = None,
               confirm=None, source=None) -> tuple[RankStatistics, BandState, dict[str, Any]]:
    """Both passes on ``backend`` (each through :func:`engine.analysis.driver.drive`); returns the
    statistics, the pass-1 state and the run info (``large_n`` describes the mode).  ``source``:
    where the replicates' ranks come from (default the Monte Carlo's, :class:`MonteCarloSource`)."""
    layout = bands(problem, bins, top_k)
    source = source or MonteCarloSource(problem, factors, seed, n_replicates, block_size)
    if backend.backend == "dask" and source.block_size > RNG_BLOCK:
        # chunks are whole work blocks: on Dask, blocks of one RNG block let a pass be cut finely
        # enough for every worker (results do not depend on the block size)
        source = copy.copy(source)
        source.block_size = RNG_BLOCK
    fingerprint = {**(fingerprint or {}), "seed": seed, "replicates": n_replicates, "bins": layout.n_bins}

    def twice(info: dict[str, Any]) -> None:  # the estimate covers both passes
        confirm({**info, "seconds": None if info.get("seconds") is None else 2 * info["seconds"]})

    first, info = drive(_Pass(problem, source, layout, None, fingerprint),
                        lambda state, info: (state, info), backend, progress=progress, chunk_blocks=chunk_blocks,
                        confirm=None if confirm is None else twice)
    windows = quantile_windows(first, layout)
    second, _ = drive(_Pass(problem, source, layout, windows, fingerprint),
                      lambda state, info: (state, info), backend, progress=progress, chunk_blocks=chunk_blocks)
    quantiles = exact_quantiles(first, windows, second, layout)
    stats = summarise(problem, first, quantiles, layout, top_k)
    info = {**info, "large_n": {"bins": layout.n_bins, "window": layout.width, "passes": 2,
                                "quantiles": list(QUANTILES), "checkpoints": False}}
    return stats, first, info
