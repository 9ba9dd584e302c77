"""Bootstrap rank stability: records, units or measurement error, optionally combined with weight and
method perturbations; rank statistics, variance shares by source and rank confidence sets.

A run is a sequence of blocks like a Monte Carlo run (same :class:`ChunkState`, backends,
summaries): block ``b`` of seed ``s`` draws its resampling from ``SeedSequence(s, spawn_key=(b, 1))``
and its perturbations from ``SeedSequence(s, spawn_key=(b,))``, so results are bit-identical for
any number of threads, chunks, partitions or workers.

Variance shares (combined studies, ``decompose``): replicates are paired (2j, 2j + 1) = (A, B);
two extra evaluations per pair swap one source — C_P = (perturbation of B, resampling of A) and
C_S = (perturbation of A, resampling of B) — and integer sums of the ranks give, per unit,
Saltelli's (2010) first-order V_i = E[y_B (y_{C_i} − y_A)] and Jansen's total-order
E[(y_A − y_{C_i})²]/2 for i ∈ {perturbation, sampling}, with V the rank variance over A ∪ B.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import polars as pl

from .. import methods
from ..errors import SchemaError, preview
from ..kernels import bootstrap as kernel
from ..kernels.montecarlo import Accumulators
from ..stages.normalise import NON_NEGATIVE, NORMALISERS
from .bootstrap_spec import BlockDraws, BootstrapSpec, RecordDesign, SamplingDraws, resample_size, sampling_draws
from .design import RNG_BLOCK, ParameterMap, Parameters, n_columns, replicate_uniforms
from .exact import ExactSum
from .largen import LANE_BYTES, Bands, BandState, WindowState, count_ranks, lane_state, merge_lanes
from .montecarlo import BlockDealer, ChunkState, accumulators, in_lanes, moment_block, rng_ranges
from .problem import Problem, kernel_design, kernel_targets, kernel_tree
from .spec import Factor

__all__ = ["BootstrapProblem", "BootstrapSource", "block_draws", "replicate_draws",
           "build_bootstrap_problem", "run_bootstrap_chunk", "run_bootstrap_bands", "evaluate", "variance_shares",
           "DECOMPOSITION_SUMS"]

#: Integer sums per (target, unit) of the variance decomposition, in this order.
DECOMPOSITION_SUMS = ("n", "a", "a2", "b", "b2", "b_cp", "b_a", "d_p2", "b_cs", "d_s2")

_CODES = methods.codes(methods.NORMALISATION)

#: Per-unit variance shares are reported only for units whose rank variance reaches this (rank sd 0.1).
MIN_SHARED_VARIANCE = 0.01


@dataclass(frozen=True)
class BootstrapProblem:
    """Arrays shared by every replicate (read-only; shipped once to Dask workers as one shared task)."""

    problem: Problem  #: Tree, targets, nominal ranks and tiers (the Monte Carlo problem).
    mode: str
    base: np.ndarray  #: float64 (n_units, n_indicators): undirected values entering normalisation.
    direction: np.ndarray
    norm_code: np.ndarray  #: int64 (n_variants, n_indicators)
    norm_param: np.ndarray  #: float64 (n_variants, 3, n_indicators)
    norm_cap: np.ndarray  #: bool (n_variants, n_indicators)
    records: RecordDesign | None
    m_units: int  #: Units drawn per replicate (mode units).
    noise_index: np.ndarray  #: int64 (n_noisy,)
    noise_sd: np.ndarray  #: float64 (n_units, n_noisy)
    noise_floor: np.ndarray  #: float64 (n_noisy,)
    factors: tuple[Factor, ...]  #: Perturbation factors (empty without a combined study).
    decompose: bool

    @property
    def n_units(self) -> int:
        return self.base.shape[0]

    @property
    def draw_bytes(self) -> int:
        """Bytes one replicate's sampling draws take while they are drawn (:class:`BlockDraws`): a
        uint32 uniform per record, an int64 per drawn unit and a float64 multiplicity per unit, or a
        float64 normal per unit and noisy indicator."""
        if self.mode == "records":
            return 4 * (self.records.n_records if self.records else 0)
        if self.mode == "units":
            return 8 * (self.m_units + self.n_units)
        return 8 * self.n_units * len(self.noise_index)

    @cached_property
    def sorted_units(self) -> tuple[np.ndarray, np.ndarray]:
        """Per indicator, the units with a finite directed value by ascending value, ties by unit
        (stable sort): ``(order, n_sorted)``, int64 (n_indicators, n_units) padded with −1 and
        (n_indicators,).  Sorted once: every replicate's normalisation fit reads its sample's min,
        max and ranks from it (:func:`engine.kernels.normalise.normalise_sorted`)."""
        order = np.full(self.base.T.shape, -1, np.int64)
        n_sorted = np.zeros(self.base.shape[1], np.int64)
        for j in range(self.base.shape[1]):
            directed = self.base[:, j] * self.direction[j]
            finite = np.flatnonzero(np.isfinite(directed))
            order[j, :len(finite)] = finite[np.argsort(directed[finite], kind="stable")]
            n_sorted[j] = len(finite)
        return order, n_sorted

    def without_result(self) -> BootstrapProblem:
        return replace(self, problem=self.problem.without_result())


def _norm_arrays(framework, variants: list[tuple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes and parameters of each normalisation variant: variant 0 = the framework's own methods,
    then one per alternative of the spec (applied to every indicator)."""
    inds = framework.indicators
    midpoint = framework.constant_indicator == "midpoint"
    n_v, n_i = len(variants), len(inds)
    code = np.zeros((n_v, n_i), np.int64)
    param = np.zeros((n_v, 3, n_i))
    cap = np.zeros((n_v, n_i), np.bool_)
    for v, indicators in enumerate(variants):
        for j, ind in enumerate(indicators):
            name = ind.normalisation.name
            code[v, j] = _CODES[name]
            values = NORMALISERS[name].params([ind], midpoint)
            if name == "distance_to_target":
                target, scale, capped = values
                param[v, 0, j], param[v, 1, j], cap[v, j] = target[0], scale[0], capped[0]
            else:
                for k, array in enumerate(values):
                    param[v, k, j] = array[0]
    return code, param, cap


def _noise_arrays(spec: BootstrapSpec, framework, base: np.ndarray):
    rules = dict(spec.noise.get("indicators", {})) if spec.noise else {}
    ids = [i.id for i in framework.indicators]
    unknown = [k for k in rules if k not in ids]
    if unknown:
        raise SchemaError(f"noise names unknown indicator(s) {unknown[:5]}", node=unknown[0],
                          fix=f"use indicator ids such as {ids[:3]}")
    default = spec.noise.get("default", {}) if spec.noise else {}
    truncate = spec.noise.get("truncate", True) if spec.noise else True
    index, sds, floors = [], [], []
    for j, ind in enumerate(framework.indicators):
        rule = rules.get(ind.id, default)
        rel, ab = float(rule.get("relative", 0.0)), float(rule.get("absolute", 0.0))
        sd = np.sqrt((rel * np.abs(base[:, j])) ** 2 + ab**2)
        sd = np.where(np.isfinite(sd), sd, 0.0)
        if not (sd > 0).any():
            continue
        present = base[np.isfinite(base[:, j]), j]
        index.append(j)
        sds.append(sd)
        floors.append(0.0 if truncate and (present >= 0).all() else -np.inf)
    n = base.shape[0]
    if spec.mode == "noise" and not index:
        raise SchemaError("the noise section gives no indicator a positive error", fix="set relative or absolute > 0")
    return (np.array(index, np.int64), np.ascontiguousarray(np.stack(sds, axis=1)) if sds else np.zeros((n, 0)),
            np.array(floors, np.float64))


def build_bootstrap_problem(problem: Problem, spec: BootstrapSpec, factors: list[Factor],
                            records: RecordDesign | None) -> BootstrapProblem:
    """Assemble the kernel's arrays from the Monte Carlo problem (built with the spec's
    perturbations) and the mode's design."""
    framework = problem.framework
    stages = problem.result.stages
    base = np.ascontiguousarray(stages.treated, np.float64)
    variants = [framework.indicators]
    for method in (spec.perturb.normalisation if spec.perturb else ()):
        variants.append(tuple(replace(ind, normalisation=method) for ind in framework.indicators))
    code, param, cap = _norm_arrays(framework, variants)
    if spec.mode != "noise":
        noise_index, noise_sd, noise_floor = np.zeros(0, np.int64), np.zeros((len(base), 0)), np.zeros(0)
    else:
        noise_index, noise_sd, noise_floor = _noise_arrays(spec, framework, base)
        unbounded = [framework.indicators[j].id for j, floor in zip(noise_index, noise_floor, strict=True)
                     if floor < 0 and any(v[j].normalisation.name in NON_NEGATIVE for v in variants)]
        if unbounded:
            raise SchemaError(f"untruncated noise can move indicator(s) {preview(unbounded)} across 0, but "
                              f"{'/'.join(NON_NEGATIVE)} needs values >= 0 (x / max would reverse their order)",
                              node=unbounded[0], fix="use minmax or distance_to_max for them, or noise.truncate: "
                              "true (it keeps indicators whose values are all >= 0 at or above 0)")
    m_units = resample_size(spec.units.get("m"), len(base), "units") if spec.mode == "units" else 0
    if spec.mode == "units" and m_units < 2:
        raise SchemaError(f"units.m = {m_units}: at least 2 units must be drawn", fix="use m >= 2 or a rule n^a")
    if spec.mode == "records" and records is None:
        raise SchemaError("mode records needs the record-level table", fix="pass records= (--records FILE)")
    return BootstrapProblem(
        problem=problem, mode=spec.mode, base=base,
        direction=np.array([i.direction for i in framework.indicators], np.float64),
        norm_code=code, norm_param=param, norm_cap=cap, records=records if spec.mode == "records" else None,
        m_units=m_units, noise_index=noise_index, noise_sd=noise_sd, noise_floor=noise_floor,
        factors=tuple(factors), decompose=spec.decompose)


def replicate_draws(bp: BootstrapProblem, seed: int, start: int, stop: int) -> SamplingDraws:
    return sampling_draws(seed, start, stop, bp.mode, n_records=bp.records.n_records if bp.records else 0,
                          n_units=bp.n_units, m_units=bp.m_units, n_noisy=len(bp.noise_index))


def block_draws(bp: BootstrapProblem, seed: int, block: int) -> BlockDraws:
    """The draws of RNG block ``block``, a few replicates at a time (the rows of :func:`replicate_draws`)."""
    return BlockDraws(seed, block, bp.mode, n_records=bp.records.n_records if bp.records else 0, n_units=bp.n_units,
                      m_units=bp.m_units, n_noisy=len(bp.noise_index))


def kernel_inputs(bp: BootstrapProblem, params: Parameters, draws: SamplingDraws) -> tuple:
    """The arguments of :func:`engine.kernels.bootstrap.bootstrap_blocks` (and of its twin) that
    describe the problem and the replicates, grouped per concept: ``(sample, records, noise, norm,
    tree, design, targets)``."""
    p, rec, empty_i = bp.problem, bp.records, np.zeros(0, np.int64)
    records = (kernel.Records(rec.unit, rec.values, draws.record_uniform, rec.thresholds, 1.0 / rec.rate, rec.derived,
                              rec.numerator, rec.denominator, rec.divisor) if rec else
               kernel.Records(empty_i, np.zeros((0, 1)), draws.record_uniform, empty_i, 1.0, empty_i, empty_i, empty_i,
                              np.ones((p.n_units, 0))))
    return (kernel.Sample(bp.base, bp.direction, draws.count, *bp.sorted_units), records,
            kernel.Noise(bp.noise_index, bp.noise_sd, bp.noise_floor, draws.noise_eps),
            kernel.Normalisation(bp.norm_code, bp.norm_param, bp.norm_cap),
            kernel_tree(p), kernel_design(params), kernel_targets(p))


def evaluate(bp: BootstrapProblem, params: Parameters, draws: SamplingDraws, block_size: int, n_lanes: int,
             keep_ranks: bool = False, keep_scores: bool = False, count: bool = True):
    """Run the kernel on explicit replicates: returns ``(hist, shift_hist, pair_count, moments,
    shift_out, ranks, scores)`` (accumulators summed over lanes, empty without ``count``: see
    :func:`engine.analysis.montecarlo.accumulators`; ``ranks`` and ``scores`` empty unless
    ``keep_ranks`` / ``keep_scores``; callers bound the number of replicates)."""
    p = bp.problem
    n, n_t, n_u = len(params), len(p.targets), p.n_units
    hist, shift_hist, pair_count, pair_units = accumulators(p, count, (n_lanes,))
    moments = np.zeros((n // block_size, n_t, n_u, 2))
    shift_out = np.zeros((n, n_t))
    ranks = np.zeros((n if keep_ranks else 0, n_t, n_u), np.int64)
    scores = np.zeros((n if keep_scores else 0, n_t, n_u))
    *inputs, _ = kernel_inputs(bp, params, draws)
    kernel.bootstrap_blocks(*inputs, kernel_targets(p, pair_units), block_size, n_lanes,
                            Accumulators(hist, shift_hist, pair_count, moments, shift_out, ranks), scores)
    return hist.sum(axis=0), shift_hist.sum(axis=0), pair_count.sum(axis=0), moments, shift_out, ranks, scores


def _decomposition_sums(main: np.ndarray, cross: np.ndarray) -> np.ndarray:
    """Integer sums (n_targets, n_units, len(DECOMPOSITION_SUMS)) over the pairs of a batch."""
    a, b = main[0::2], main[1::2]
    cp, cs = cross[0::2], cross[1::2]
    valid = (a > 0) & (b > 0) & (cp > 0) & (cs > 0)
    a, b, cp, cs = (np.where(valid, v, 0) for v in (a, b, cp, cs))
    terms = (valid.astype(np.int64), a, a * a, b, b * b, b * cp, b * a, (a - cp) ** 2, b * cs, (a - cs) ** 2)
    return np.stack([t.sum(axis=0) for t in terms], axis=-1)


def run_bootstrap_chunk(bp: BootstrapProblem, seed: int, first_block: int, stop_block: int, block_size: int,
                        n_lanes: int = 1, n_replicates: int | None = None, on_block=None) -> ChunkState:
    """Run work blocks ``first_block .. stop_block − 1`` (the last may be partial), one moment block
    per lane per kernel call, like :func:`engine.analysis.montecarlo.run_chunk`; ``on_block(n)``
    after each kernel call of ``n`` replicates (progress inside a long chunk)."""
    p = bp.problem
    start = first_block * block_size
    stop = stop_block * block_size if n_replicates is None else min(stop_block * block_size, n_replicates)
    size = moment_block(block_size)
    batch = size * max(1, n_lanes)
    columns = n_columns(list(bp.factors))
    state = ChunkState.empty(p)
    mapping = ParameterMap(list(bp.factors), p)
    decompose = bp.decompose
    if decompose:
        state.extra["decomposition"] = np.zeros((len(p.targets), p.n_units, len(DECOMPOSITION_SUMS)), np.int64)
    for lo in range(start, stop, batch):
        hi = min(lo + batch, stop)
        params = mapping(replicate_uniforms(seed, lo, hi, columns))
        draws = replicate_draws(bp, seed, lo, hi)
        whole = (hi - lo) // size * size
        for a, b, kernel_block in ((0, whole, size), (whole, hi - lo, hi - lo - whole)):
            if b <= a:
                continue
            sub_params, sub_draws = params.slice(a, b), draws.take(np.arange(a, b))
            hist, shift_hist, pairs, moments, _, ranks, _ = evaluate(bp, sub_params, sub_draws, kernel_block, n_lanes,
                                                                  keep_ranks=decompose)
            chunk = ChunkState(hist, shift_hist, pairs, ExactSum.of(moments))
            n_pairs = (b - a) // 2 * 2  # an odd last replicate has no partner and no cross evaluations
            if decompose and n_pairs:
                swap = np.arange(n_pairs) ^ 1  # cross evaluation e: perturbation of e ^ 1, resampling of e
                crossed = evaluate(bp, sub_params.slice(0, n_pairs).take(swap), sub_draws.take(np.arange(n_pairs)),
                                   n_pairs, n_lanes=1, keep_ranks=True, count=False)[5]
                chunk.extra["decomposition"] = _decomposition_sums(ranks[:n_pairs], crossed)
            state.absorb(chunk)
        if on_block is not None:
            on_block(hi - lo)
    state.blocks = set(range(first_block, stop_block))
    return state


def run_bootstrap_bands(bp: BootstrapProblem, seed: int, first_block: int, stop_block: int, block_size: int,
                        n_replicates: int, layout: Bands, windows: np.ndarray | None = None,
                        on_block=None, n_lanes: int = 1) -> BandState | WindowState:
    """Large-n mode (:mod:`engine.analysis.largen`): blocks ``first_block .. stop_block − 1`` counted
    into a pass-1 :class:`BandState` (``windows`` None) or a pass-2 :class:`WindowState`.

    The replicates are those of :func:`run_bootstrap_chunk` (draws and perturbations per RNG block,
    the same kernel and ranks), run through the kernel in sub-batches of at most
    :data:`~engine.analysis.largen.LANE_BYTES` of ranks and of draws (drawn as they are needed,
    :func:`block_draws`: no RNG block's draws held at once) with no units² histogram; score moments
    are summed per RNG block (the kernel adds one replicate after the other into the block's sums)
    and merged exactly, so results do not depend on chunks, sub-batches or lanes.  Lanes take RNG
    blocks in turn (:class:`~engine.analysis.montecarlo.BlockDealer`, as the Monte Carlo's large-n
    chunks), each with its own buffers, draws and state (integer counts, merged by addition)."""
    p = bp.problem
    size = moment_block(block_size)
    ranges = rng_ranges(first_block, stop_block, block_size, n_replicates)
    n_lanes = max(1, min(n_lanes, len(ranges)))
    n_t, n_u = len(p.targets), p.n_units
    moments = np.zeros((len(ranges), n_t, n_u, 2))
    sub = max(1, min(size, LANE_BYTES // max(8 * n_t * n_u, bp.draw_bytes)))
    mapping, columns = ParameterMap(list(bp.factors), p), n_columns(list(bp.factors))
    dealer = BlockDealer(len(ranges))

    @dealer.lane
    def lane_run(lane: int) -> BandState | WindowState:
        state = lane_state(p, layout, windows, n_replicates)  # counts typed as the Monte Carlo's lanes'
        hist, shift_hist, pair_count, pair_units = accumulators(p, False, (1,))
        targets = kernel_targets(p, pair_units)
        ranks, shift_out = np.zeros((sub, n_t, n_u), np.int64), np.zeros((sub, n_t))
        no_scores = np.zeros((0, n_t, n_u))
        while (k := dealer.take()) is not None:
            lo, hi = ranges[k]
            params = mapping(replicate_uniforms(seed, lo, hi, columns))
            draws = block_draws(bp, seed, lo // RNG_BLOCK)  # a range lies in one RNG block
            if lo % RNG_BLOCK:
                draws.rows(lo % RNG_BLOCK)  # skipped: the block's replicates before the range
            for a in range(0, hi - lo, sub):
                m = min(sub, hi - lo - a)
                *inputs, _ = kernel_inputs(bp, params.slice(a, a + m), draws.take(m))
                kernel.bootstrap_blocks(*inputs, targets, m, 1, Accumulators(
                    hist, shift_hist, pair_count, moments[k:k + 1], shift_out[:m], ranks[:m]), no_scores)
                count_ranks(p, layout, windows, state, ranks[:m])
            if on_block is not None:
                on_block(hi - lo)
        return state

    states = in_lanes(lane_run, n_lanes, parallel_kernels=True)  # bootstrap_blocks is a parallel kernel
    return merge_lanes(states, moments, windows, first_block, stop_block)


def _band_chunk(bp: BootstrapProblem, seed: int, block_size: int, n_replicates: int, layout: Bands,
                windows: np.ndarray | None, first: int, stop: int) -> BandState | WindowState:
    """Dask task of a large-n pass: blocks [first, stop)."""
    return run_bootstrap_bands(bp, seed, first, stop, block_size, n_replicates, layout, windows)


class BootstrapSource:
    """The bootstrap's replicates as the source of a large-n run
    (:func:`engine.analysis.largen.run_largen`)."""

    def __init__(self, bp: BootstrapProblem, seed: int, n_replicates: int, block_size: int):
        self.bp, self.seed, self.n_replicates, self.block_size = bp, seed, n_replicates, block_size

    def run(self, first: int, stop: int, n_lanes: int, layout: Bands, windows: np.ndarray | None, on_block):
        return run_bootstrap_bands(self.bp, self.seed, first, stop, self.block_size, self.n_replicates, layout,
                                   windows, on_block, n_lanes)

    def task(self, layout: Bands, windows: np.ndarray | None):
        return _band_chunk, (self.bp.without_result(), self.seed, self.block_size, self.n_replicates, layout, windows)


def variance_shares(problem: Problem, sums: np.ndarray) -> dict[str, pl.DataFrame]:
    """Per target: per unit rank variance and its first-order shares (perturbation, sampling), the
    interaction (1 − both), and total-order indices; a last row ``(all units)`` weighs units by
    their variance.  Units with a rank variance below :data:`MIN_SHARED_VARIANCE` get empty shares."""
    out = {}
    names = {k: i for i, k in enumerate(DECOMPOSITION_SUMS)}
    for t, target in enumerate(problem.target_ids):
        s = sums[t].astype(np.float64)
        n = s[:, names["n"]]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (s[:, names["a"]] + s[:, names["b"]]) / (2 * n)
            var = (s[:, names["a2"]] + s[:, names["b2"]]) / (2 * n) - mean * mean
            v_p = (s[:, names["b_cp"]] - s[:, names["b_a"]]) / n
            v_s = (s[:, names["b_cs"]] - s[:, names["b_a"]]) / n
            t_p = s[:, names["d_p2"]] / (2 * n)
            t_s = s[:, names["d_s2"]] / (2 * n)
            table = pl.DataFrame({
                "unit": [*(str(u) for u in problem.units), "(all units)"],
                "rank_variance": [*var, np.nansum(var)],
                "share_perturbation": [*(v_p / var), np.nansum(v_p) / np.nansum(var)],
                "share_sampling": [*(v_s / var), np.nansum(v_s) / np.nansum(var)],
                "total_perturbation": [*(t_p / var), np.nansum(t_p) / np.nansum(var)],
                "total_sampling": [*(t_s / var), np.nansum(t_s) / np.nansum(var)],
            }, strict=False).with_columns(
                (1.0 - pl.col("share_perturbation") - pl.col("share_sampling")).alias("share_interaction"))
        # A unit whose rank (almost) never moves has no variance to share out: its ratios are
        # noise (e.g. -8 and 9 for a rank variance of 1e-4), so they are left empty.
        steady = pl.col("rank_variance") < MIN_SHARED_VARIANCE
        ratios = ["share_perturbation", "share_sampling", "total_perturbation", "total_sampling", "share_interaction"]
        table = table.with_columns(pl.when(steady & (pl.col("unit") != "(all units)")).then(None)
                                   .otherwise(pl.col(c)).alias(c) for c in ratios)
        out[target] = table.with_columns(pl.col(pl.Float64).fill_nan(None))
    return out
