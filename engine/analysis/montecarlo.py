"""Monte Carlo uncertainty analysis: chunks of blocks → mergeable statistics → exact summaries.

A run is a sequence of blocks of ``block_size`` replicates; chunks (a fixed number of consecutive
blocks) are the unit of work for the backends and of checkpointing.  The state of a chunk is
integer histograms (exact, mergeable in any order) and the score moments: float sums over each
RNG block of 1,024 replicates (whatever the work block), added up exactly (:class:`ExactSum`,
mergeable in any order, constant memory), so a result is bit-identical for any number of
threads, chunks, partitions, workers or block size.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from ..backends.state import BlockState
from ..kernels import montecarlo as kernel
from ..kernels import parallel_kernels_threadsafe
from .design import RNG_BLOCK, ParameterMap, n_columns, replicate_uniforms
from .exact import ExactSum, add_sums
from .problem import Problem, kernel_design, kernel_targets, kernel_tree
from .spec import Factor

__all__ = ["ChunkState", "Lanes", "pair_table", "run_chunk", "split_call", "run_design", "moment_block",
           "aligned_chunk_blocks", "rng_ranges", "BlockDealer", "in_lanes", "RankStatistics", "summarise",
           "quantile_from_counts"]


@dataclass
class ChunkState(BlockState):
    """Mergeable statistics of a set of blocks."""

    hist: np.ndarray  #: int64 (n_targets, n_units, n_units + 1); last column = replicates without a rank.
    shift_hist: np.ndarray  #: int64 (n_targets, shift_bins(n_units)): total absolute rank shift per replicate.
    pair_count: np.ndarray  #: int64 (n_targets, n_pairs, n_pairs).
    #: Σ score and Σ score² (n_targets, n_units, 2) of the ranked replicates: each RNG block's
    #: float sums (replicates in order) added up exactly, so they do not depend on the work block,
    #: chunks, threads, workers or the order of merging.  None: no moments (an empty state).
    moments: ExactSum | None = None
    blocks: set[int] = field(default_factory=set)  #: Work blocks included.
    #: Further exact (integer) sums of an analysis, merged by addition (e.g. the bootstrap's
    #: variance decomposition); name -> array.
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def empty(cls, problem: Problem) -> ChunkState:
        n_t, n_u, n_p = len(problem.targets), problem.n_units, len(problem.pair_units)
        return cls(np.zeros((n_t, n_u, n_u + 1), np.int64), np.zeros((n_t, kernel.shift_bins(n_u)), np.int64),
                   np.zeros((n_t, n_p, n_p), np.int64), ExactSum.zeros((n_t, n_u, 2)))

    def absorb(self, other: ChunkState) -> ChunkState:
        """:meth:`merge` into this state's own arrays (no new arrays: a run adds every chunk into
        one state, and fresh ~2 MB of histograms per chunk cost page faults while the lanes wait);
        returns self.  Only for a state nobody else holds."""
        self.claim(other)
        self.hist += other.hist
        self.shift_hist += other.shift_hist
        self.pair_count += other.pair_count
        for name, value in other.extra.items():
            if name in self.extra:
                self.extra[name] += value
            else:
                self.extra[name] = value.copy()
        self.moments = add_sums(self.moments, other.moments)
        return self

    def copy(self) -> ChunkState:
        """A state with arrays of its own."""
        return ChunkState(self.hist.copy(), self.shift_hist.copy(), self.pair_count.copy(),
                          None if self.moments is None else self.moments.copy(), set(self.blocks),
                          {name: value.copy() for name, value in self.extra.items()})

    @property
    def n_replicates(self) -> int:
        return int(self.hist[0, 0].sum())

    def score_moments(self) -> np.ndarray:
        """Σ score and Σ score² (n_targets, n_units, 2), correctly rounded from the exact sums."""
        if self.moments is None:
            return np.zeros((*self.hist.shape[:2], 2))
        return self.moments.value()


def moment_block(block_size: int) -> int:
    """Replicates per moment block: always the RNG block (a smaller work block would group the
    float sums differently), for a ``block_size`` that is a multiple or a divisor of it."""
    if block_size % RNG_BLOCK and RNG_BLOCK % block_size:
        raise ValueError(f"block_size {block_size} must be a multiple or a divisor of {RNG_BLOCK}")
    return RNG_BLOCK


def aligned_chunk_blocks(chunk_blocks: int, block_size: int) -> int:
    """``chunk_blocks`` rounded up so that a chunk holds whole RNG blocks (chunks then start at an
    RNG block, and an RNG block's moments are never split between two chunks)."""
    step = max(1, RNG_BLOCK // block_size)
    return -(-max(1, chunk_blocks) // step) * step


#: Replicates per kernel call in a lane's chain (scores → sort → accumulate): small enough that the
#: chain's arrays stay in the core's L2 cache, large enough that Python's share is negligible.
SUB_BATCH = 256


def _sort_keys(keys: np.ndarray) -> None:
    """Sort packed 32-bit keys along the unit axis in place (NumPy's vectorised sort; releases
    the GIL, so lane threads sort concurrently with each other's kernels)."""
    keys.reshape(-1, keys.shape[-1]).sort(axis=1)


def in_lanes(fn, n_lanes: int, parallel_kernels: bool = False) -> list:
    """``[fn(0), …, fn(n_lanes − 1)]``, each lane in its own thread (the kernels and NumPy's sort
    release the GIL); one lane runs in the calling thread.  Returns or raises (the first lane's
    error) once every lane has stopped.  ``parallel_kernels``: the lanes call ``parallel=True``
    kernels, so under Numba's ``workqueue`` layer (not thread-safe: it aborts the process) they
    run one after the other in the calling thread instead -- the same result, as a lane's work
    never depends on which lane does it (:class:`BlockDealer`)."""
    if n_lanes <= 1:
        return [fn(0)]
    if parallel_kernels and not parallel_kernels_threadsafe():
        return [fn(k) for k in range(n_lanes)]
    with ThreadPoolExecutor(n_lanes) as pool:
        return list(pool.map(fn, range(n_lanes)))


def rng_ranges(first_block: int, stop_block: int, block_size: int, n_replicates: int | None = None
               ) -> list[tuple[int, int]]:
    """The moment blocks of work blocks ``first_block .. stop_block − 1``: their replicates (up to
    ``n_replicates``) cut at every RNG block of 1,024 and at the chunk's ends, as ``(lo, hi)``.  A
    run's chunks start at an RNG block (:func:`aligned_chunk_blocks`), so only the run's last
    replicate cuts one short, whatever the work block."""
    start = first_block * block_size
    stop = stop_block * block_size if n_replicates is None else min(stop_block * block_size, n_replicates)
    size = moment_block(block_size)
    cuts = [start, *range((start // size + 1) * size, stop, size), stop]
    return [(lo, hi) for lo, hi in itertools.pairwise(cuts) if hi > lo]


class BlockDealer:
    """Deals a chunk's blocks ``0 .. n − 1`` to lane threads, the next one not yet taken to whichever
    lane asks (a lane on a core that runs slower does fewer blocks instead of the others waiting
    for it); once a lane has failed, no lane takes another block."""

    def __init__(self, n_blocks: int) -> None:
        self._blocks = iter(range(n_blocks))
        self._lock = threading.Lock()
        self._failed = threading.Event()

    def take(self) -> int | None:
        """The next block, or None when all are taken or a lane has failed."""
        with self._lock:
            return None if self._failed.is_set() else next(self._blocks, None)

    def lane(self, fn):
        """``fn`` that, when it raises, stops the other lanes from taking more blocks."""
        def run(*args):
            try:
                return fn(*args)
            except BaseException:
                self._failed.set()
                raise
        return run


def accumulators(problem: Problem, count: bool = True, lanes: tuple[int, ...] = ()):
    """Zeroed integer accumulators ``(hist, shift_hist, pair_count)``, with leading axes ``lanes``,
    and the pair units to count.  ``count=False`` (an analysis that outputs only scores, ranks or
    R_S per replicate): empty arrays and no pair units, which the kernels do not count into — no
    units² histograms."""
    n_t, n_u = len(problem.targets), problem.n_units
    if not count:
        return (np.zeros((*lanes, n_t, 0, 0), np.int64), np.zeros((*lanes, n_t, 0), np.int64),
                np.zeros((*lanes, n_t, 0, 0), np.int64), np.zeros(0, np.int64))
    n_p = len(problem.pair_units)
    return (np.zeros((*lanes, n_t, n_u, n_u + 1), np.int64), np.zeros((*lanes, n_t, kernel.shift_bins(n_u)), np.int64),
            np.zeros((*lanes, n_t, n_p, n_p), np.int64), problem.pair_units)


class _Lane:
    """One lane's integer accumulators (empty without ``count``) and its chain buffers."""

    def __init__(self, problem: Problem, sub: int, count: bool = True):
        n_t, n_u = len(problem.targets), problem.n_units
        self.problem = problem
        self.hist, self.shift_hist, self.pair_count, self.pair_units = accumulators(problem, count)
        self.scores = np.empty((sub, n_t, n_u))
        self.keys = np.empty((sub, n_t, n_u), np.uint32)
        self.shift_out = np.empty((sub, n_t))
        self.no_ranks = np.zeros((0, n_t, n_u), np.int64)

    def reset(self) -> None:
        """Zero the integer accumulators (the chain buffers are overwritten anyway)."""
        self.hist.fill(0)
        self.shift_hist.fill(0)
        self.pair_count.fill(0)

    def score(self, params, scores: np.ndarray, keys: np.ndarray) -> None:
        p = self.problem
        kernel.montecarlo_scores(p.zt, p.linear_variant, kernel_tree(p), kernel_design(params), kernel_targets(p),
                                 scores, keys)
        _sort_keys(keys)

    def accumulate(self, scores, keys, block_size: int, moments, shift_out, ranks) -> None:
        kernel.montecarlo_accumulate(scores, keys, self.problem.nominal_rank, self.pair_units, block_size,
                                     kernel.Accumulators(self.hist, self.shift_hist, self.pair_count, moments,
                                                         shift_out, ranks))

    def run_block(self, params, moments: np.ndarray) -> None:
        """Replicates ``params`` (one moment block) into ``moments`` (n_targets, n_units, 2), a
        sub-batch at a time (the same additions in the same order as one call)."""
        for a in range(0, len(params), len(self.scores)):
            b = min(a + len(self.scores), len(params))
            scores, keys = self.scores[:b - a], self.keys[:b - a]
            self.score(params.slice(a, b), scores, keys)
            self.accumulate(scores, keys, b - a, moments[None], self.shift_out[:b - a], self.no_ranks)


class Lanes:
    """Lane threads and their chains (accumulators and buffers), kept for all the chunks of a run:
    a chunk then starts no thread and touches no fresh memory, which otherwise costs a few
    milliseconds per chunk (thread start, first-touch page faults, a lane waiting for the other's
    start-up).  ``with Lanes(...) as lanes: run_chunk(..., lanes=lanes)``; without it, run_chunk
    makes its own for the one chunk.  One chunk at a time: a Lanes is not shared by concurrent
    run_chunk calls."""

    def __init__(self, problem: Problem, n_lanes: int, block_size: int):
        self.problem, self.sub = problem, min(SUB_BATCH, moment_block(block_size))
        self.chains = [_Lane(problem, self.sub) for _ in range(max(1, n_lanes))]
        self.pool = ThreadPoolExecutor(len(self.chains)) if len(self.chains) > 1 else None
        self.closed = False

    def run(self, fn, n_lanes: int) -> list[_Lane]:
        """``fn(chain)`` on the first ``n_lanes`` chains (zeroed), each in its own thread; returns
        the chains.  Returns or raises only once every lane has stopped (a lane that fails must
        make the others stop, see :func:`run_chunk`), so no lane is still counting into its chain
        when the next chunk zeroes it."""
        chains = self.chains[:n_lanes]
        for chain in chains:
            chain.reset()
        if self.pool is None or n_lanes <= 1:
            fn(chains[0])
            return chains
        futures = [self.pool.submit(fn, chain) for chain in chains]
        wait(futures)
        for future in futures:
            future.result()  # the first lane's error, if any
        return chains

    def fits(self, problem: Problem, n_lanes: int, block_size: int) -> bool:
        return (not self.closed and self.problem is problem and self.sub == min(SUB_BATCH, moment_block(block_size))
                and len(self.chains) >= n_lanes)

    def close(self) -> None:
        self.closed = True
        if self.pool is not None:
            self.pool.shutdown()

    def __enter__(self) -> Lanes:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _merge_lanes(lanes: list[_Lane]):
    """The lanes' accumulators added up, in new arrays (one per accumulator)."""
    def total(arrays: list[np.ndarray]) -> np.ndarray:
        out = arrays[0].copy()
        for more in arrays[1:]:
            out += more
        return out

    return (total([lane.hist for lane in lanes]), total([lane.shift_hist for lane in lanes]),
            total([lane.pair_count for lane in lanes]))


def split_call(problem: Problem, params, block_size: int, n_lanes: int, keep: bool = False, count: bool = True):
    """The Monte Carlo path on explicit replicates: scores + keys kernel, NumPy sort, accumulate
    kernel, over ``n_lanes`` lane threads.

    Returns the accumulators ``(hist, shift_hist, pair_count, moments)`` (the integer ones empty
    without ``count``: see :func:`accumulators`), and with ``keep`` also the scores (n, n_targets,
    n_units), R_S per replicate (n, n_targets) and the ranks (n, n_targets, n_units) — callers
    bound n."""
    *accumulators, scores, shift_out, ranks = _split(problem, params, block_size, n_lanes, keep, count)
    return (*accumulators, scores, shift_out, ranks) if keep else tuple(accumulators)


def _split(problem: Problem, params, block_size: int, n_lanes: int, keep_ranks: bool, count: bool):
    """:func:`split_call`'s work: the accumulators, the scores, R_S per replicate and the ranks
    (empty unless ``keep_ranks``)."""
    n, n_t, n_u = len(params), len(problem.targets), problem.n_units
    n_lanes = max(1, n_lanes)
    scores = np.empty((n, n_t, n_u))
    keys = np.empty((n, n_t, n_u), np.uint32)
    moments = np.zeros((n // block_size, n_t, n_u, 2))
    shift_out = np.zeros((n, n_t))
    ranks = np.zeros((n if keep_ranks else 0, n_t, n_u), np.int64)
    lanes = [_Lane(problem, 0, count) for _ in range(n_lanes)]

    def score(lane: int) -> None:  # contiguous replicate ranges
        lo, hi = lane * n // n_lanes, (lane + 1) * n // n_lanes
        lanes[lane].score(params.slice(lo, hi), scores[lo:hi], keys[lo:hi])

    def accumulate(lane: int) -> None:  # blocks dealt to lanes: a block's moments are one lane's sum
        for b in range(lane, n // block_size, n_lanes):
            rows = slice(b * block_size, (b + 1) * block_size)
            lanes[lane].accumulate(scores[rows], keys[rows], block_size, moments[b:b + 1], shift_out[rows],
                                   ranks[rows] if keep_ranks else lanes[lane].no_ranks)

    in_lanes(score, n_lanes)
    in_lanes(accumulate, n_lanes)
    return (*_merge_lanes(lanes), moments, scores, shift_out, ranks)


def run_chunk(problem: Problem, factors: list[Factor], seed: int, first_block: int, stop_block: int,
              block_size: int, n_lanes: int = 1, n_replicates: int | None = None,
              lanes: Lanes | None = None, on_block: Callable[[int], None] | None = None) -> ChunkState:
    """Run work blocks ``first_block .. stop_block - 1`` of a Monte Carlo run of ``n_replicates``
    (the last block may be partial).

    Moment blocks (the RNG blocks of 1,024 replicates, cut at the chunk's ends; a run's chunks start
    at an RNG block, :func:`aligned_chunk_blocks`, so the cut is only at the run's last replicate,
    whatever the work block) go to ``n_lanes`` lane threads, each taking the
    next block not yet taken when it finishes one (a lane on a core that runs slower does fewer
    blocks, instead of the other lanes waiting for it at the chunk's end); each lane draws, maps,
    scores, sorts and accumulates its blocks with its own integer accumulators, so one lane's
    NumPy sort overlaps the other's kernels.  Which lane takes which block changes no result:
    integer counts add up the same in any grouping, and a block's score moments are that block's
    own sum.  ``lanes`` (:class:`Lanes`) keeps the threads and buffers from chunk to chunk;
    ``on_block(n)`` is called (from the lane's thread) after each block of ``n`` replicates
    (progress inside a long chunk)."""
    columns = n_columns(factors)
    ranges = rng_ranges(first_block, stop_block, block_size, n_replicates)
    n_lanes = max(1, min(n_lanes, len(ranges)))
    n_t, n_u = len(problem.targets), problem.n_units
    moments = np.zeros((len(ranges), n_t, n_u, 2))

    mapping = ParameterMap(factors, problem)  # set up once, called per block
    dealer = BlockDealer(len(ranges))

    @dealer.lane
    def lane_run(chain: _Lane) -> None:
        while (k := dealer.take()) is not None:
            lo, hi = ranges[k]
            chain.run_block(mapping(replicate_uniforms(seed, lo, hi, columns)), moments[k])
            if on_block is not None:
                on_block(hi - lo)

    own = lanes is None or not lanes.fits(problem, n_lanes, block_size)
    if own:
        lanes = Lanes(problem, n_lanes, block_size)
    try:
        hist, shift_hist, pairs = _merge_lanes(lanes.run(lane_run, n_lanes))  # new arrays: the lanes' are reused
    finally:
        if own:
            lanes.close()
    return ChunkState(hist, shift_hist, pairs, ExactSum.of(moments), set(range(first_block, stop_block)))


def run_design(problem: Problem, params, block_size: int, n_lanes: int = 1, keep_ranks: bool = False):
    """Run explicit replicates (e.g. a user's weight design or a Sobol design).

    Returns ``(state, shift_out, ranks)``; ``ranks`` is (n, n_targets, n_units) when
    ``keep_ranks`` (callers bound n), else empty."""
    n = len(params)
    if n % block_size:
        raise ValueError(f"the number of replicates ({n}) must be a multiple of block_size ({block_size})")
    hist, shift_hist, pairs, moments, _, shift_out, ranks = _split(problem, params, block_size, n_lanes, keep_ranks,
                                                                    True)
    state = ChunkState(hist, shift_hist, pairs, ExactSum.of(moments), set(range(n // block_size)))
    return state, shift_out, ranks


def quantile_from_counts(counts: np.ndarray, q: float) -> float | np.ndarray:
    """``numpy.quantile(sample, q)`` (linear interpolation, R type 7) of the sample in which value
    ``k + 1`` occurs ``counts[k]`` times; for a 2-D ``counts``, of each row's sample (one array
    operation for every unit; NaN for an empty row)."""
    rows = np.atleast_2d(counts)
    n = rows.sum(axis=1)
    h = (n - 1) * q
    lo = np.floor(h).astype(np.int64)
    cumulative = np.cumsum(rows, axis=1)
    # searchsorted(cumulative, x, side="right") = how many cumulative counts are <= x
    x_lo = (cumulative <= lo[:, None]).sum(axis=1) + 1
    x_hi = (cumulative <= np.minimum(lo + 1, n - 1)[:, None]).sum(axis=1) + 1
    with np.errstate(invalid="ignore"):
        value = np.where(n > 0, x_lo + (h - lo) * (x_hi - x_lo), np.nan)
    return float(value[0]) if np.ndim(counts) == 1 else value


@dataclass(frozen=True)
class RankStatistics:
    """Summaries of a Monte Carlo run, one set per target node."""

    units: dict[str, pl.DataFrame]  #: target -> per-unit table.
    acceptability: dict[str, pl.DataFrame]  #: target -> unit × rank probabilities.
    pairs: dict[str, pl.DataFrame]  #: target -> P(a ahead of b).
    rank_shift: dict[str, pl.DataFrame]  #: target -> distribution of R_S.
    rank_shift_summary: dict[str, dict[str, float]]
    n_replicates: int


def pair_table(problem: Problem, pair_count: np.ndarray, n_rep: int) -> pl.DataFrame:
    """The pairwise table of one target: P(unit a ranked ahead of unit b) for every ordered pair of
    the spec's ``pairs`` units, from its (n_pairs, n_pairs) counts over ``n_rep`` replicates."""
    names = [problem.units[i] for i in problem.pair_units]
    return pl.DataFrame({"unit_a": [a for a in names for _ in names], "unit_b": [b for _ in names for b in names],
                         "p_a_ahead_of_b": (pair_count / n_rep).ravel()}).filter(pl.col("unit_a") != pl.col("unit_b"))


def summarise(problem: Problem, state: ChunkState, top_k: tuple[int, ...] = (1, 3, 10)) -> RankStatistics:
    """Exact per-unit statistics from the histograms (no raw ranks needed)."""
    n_rep = state.n_replicates
    moments = state.score_moments()
    ranks_axis = np.arange(1, problem.n_units + 1, dtype=np.int64)
    units_tables, accept, pairs, shifts, shift_summary = {}, {}, {}, {}, {}
    for t, target in enumerate(problem.target_ids):
        hist = state.hist[t]
        counts = hist[:, :-1]
        ranked = counts.sum(axis=1)
        sum_r = counts @ ranks_axis  # exact integers
        sum_r2 = counts @ (ranks_axis * ranks_axis)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = sum_r / ranked
            var = np.maximum(sum_r2 / ranked - mean * mean, 0.0)
            score_mean = moments[t, :, 0] / ranked
            score_var = np.maximum(moments[t, :, 1] / ranked - score_mean * score_mean, 0.0)
        columns: dict[str, Any] = {
            "unit": problem.units,
            "nominal_score": problem.nominal_score[t],
            "nominal_rank": np.where(problem.nominal_rank[t] > 0, problem.nominal_rank[t], 0),
            "mean_rank": mean,
            "median_rank": quantile_from_counts(counts, 0.5),
            "q05_rank": quantile_from_counts(counts, 0.05),
            "q95_rank": quantile_from_counts(counts, 0.95),
            "rank_sd": np.sqrt(var),
            "best_rank": np.where(ranked > 0, np.argmax(counts > 0, axis=1) + 1, 0),
            "worst_rank": np.where(ranked > 0, counts.shape[1] - np.argmax(counts[:, ::-1] > 0, axis=1), 0),
        }
        for k in top_k:
            columns[f"p_top{k}"] = counts[:, :k].sum(axis=1) / n_rep
        lo, hi = problem.tier_bounds[t, :, 0], problem.tier_bounds[t, :, 1]
        cumulative = np.concatenate([np.zeros((len(counts), 1), np.int64), np.cumsum(counts, axis=1)], axis=1)
        rows = np.arange(len(counts))
        same = np.where(lo > 0, cumulative[rows, np.maximum(hi, 0)] - cumulative[rows, np.maximum(lo - 1, 0)], 0)
        columns["nominal_tier"] = problem.tier_of[t]
        columns["p_same_tier"] = same / n_rep
        columns["p_missing"] = hist[:, -1] / n_rep
        columns["score_mean"] = score_mean
        columns["score_sd"] = np.sqrt(score_var)
        table = pl.DataFrame(columns).with_columns(
            pl.col("nominal_rank").replace(0, None), (pl.col("q95_rank") - pl.col("q05_rank")).alias("rank_range_90"))
        units_tables[target] = table.sort("nominal_rank", nulls_last=True, maintain_order=True)
        accept[target] = pl.DataFrame(counts / n_rep, schema=[f"rank_{r}" for r in range(1, problem.n_units + 1)],
                                      orient="row").insert_column(0, pl.Series("unit", problem.units))
        if len(problem.pair_units):
            pairs[target] = pair_table(problem, state.pair_count[t], n_rep)
        n_ranked = int((problem.nominal_rank[t] > 0).sum())
        totals = np.flatnonzero(state.shift_hist[t])
        freq = state.shift_hist[t][totals]
        shifts[target] = pl.DataFrame({"total_shift": totals, "rank_shift": totals / n_ranked,
                                       "replicates": freq, "probability": freq / n_rep})
        shift_counts = np.zeros(int(totals.max()) + 1 if len(totals) else 1, np.int64)
        shift_counts[totals] = freq
        # quantile_from_counts indexes values from 1: shift the support by one and back.
        shift_summary[target] = {
            "mean": float((totals * freq).sum() / n_rep / n_ranked),
            **{name: (quantile_from_counts(shift_counts, q) - 1) / n_ranked
               for name, q in (("q05", 0.05), ("median", 0.5), ("q95", 0.95))},
            "max": float(totals.max() / n_ranked) if len(totals) else 0.0,
        }
    return RankStatistics(units_tables, accept, pairs, shifts, shift_summary, n_rep)
