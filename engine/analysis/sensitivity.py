"""Global sensitivity (Sobol) analysis of a ranking: which choice moves the ranks.

Factors and groups come from the uncertainty specification (every weight-noise source,
normalisation choice, aggregation choice, exclusion and treatment switch is a factor; `groups`
binds factors that move together; a Dirichlet sibling group is one group).  The design is the
A/B/AB_i scheme on scrambled Sobol points (:mod:`engine.analysis.sobol`), mapped to replicate
parameters exactly as Monte Carlo draws are, and evaluated by the same kernels.

Outputs, from the same N (g + 2) evaluations:

* the mean absolute rank shift R_S of the target against the nominal ranking (the field's
  convention, COINr) — first/total-order indices with bootstrap confidence intervals;
* per unit, its rank and its score — first/total-order indices, accumulated batch by batch as
  mergeable sums (never a units × evaluations matrix):
  S_i = (Σ y_B (y_ABi − y_A) − m Σ (y_ABi − y_A)) / N / V and ST_i = Σ (y_A − y_ABi)² / (2 N V),
  with m the mean of all evaluations (centring, as SALib) and V the variance of the pooled A and B
  outputs.  Where V = 0 the indices are exactly 0.

Batches are fixed (``BATCH`` base samples) and merged in batch order, so results are
bit-identical for any number of threads or Dask workers.  A batch is evaluated in sub-batches of
base samples sized from the unit count (:func:`engine.analysis.memory.sobol_sub_batch`: all 512
for small indices, a few at 10⁵ units) and its sums add one base sample after the other, so
the sub-batch size changes no bit; rows are ranked by the bucket sort of large-n mode
(:func:`engine.kernels.bands.rank_batch`, the same ranks as the packed keys).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ..display import ResultShape, manifest_summary
from ..errors import SchemaError
from ..io import with_unit_names
from ..kernels import bands as band_kernels
from ..kernels import montecarlo as kernel
from ..pipeline import score
from .design import map_parameters, n_columns
from .driver import BackendOptions, check_run, data_digest, drive, run_seed, versions, warn_missing_ranks
from .memory import check_memory, sobol_sub_batch
from .montecarlo import in_lanes
from .problem import Problem, build_problem, kernel_design, kernel_targets, kernel_tree
from .spec import Factor, load_spec, resolve_factors
from .uncertainty import with_default_factors

__all__ = ["SensitivityResult", "sensitivity", "sensitivity_factors", "factor_groups", "BATCH", "CONFIDENCE"]

#: Base samples per evaluation batch (fixed: batch sums are merged in batch order).
BATCH = 512
#: Default confidence level of the bootstrap intervals of the indices (``confidence=`` or the spec's
#: ``confidence`` change it).
CONFIDENCE = 0.95


def factor_groups(factors: list[Factor], groups: dict[str, tuple[str, ...]]) -> list[tuple[str, list[int]]]:
    """(group name, design columns) for every group: the spec's groups first, then every factor
    not in a group on its own (a Dirichlet factor's columns always move together)."""
    by_name = {f.name: f for f in factors}
    used: set[str] = set()
    result = []
    for name, members in groups.items():
        overlap = used & set(members)
        if overlap:
            raise SchemaError(f"factor(s) {sorted(overlap)} are in two groups", fix="put every factor in one group")
        used.update(members)
        columns = [c for m in members for c in range(by_name[m].column, by_name[m].column + by_name[m].width)]
        result.append((name, columns))
    for f in factors:
        if f.name not in used:
            result.append((f.name, list(range(f.column, f.column + f.width))))
    return result


def _evaluate(problem: Problem, factors: list[Factor], u: np.ndarray, n_lanes: int | None = None):
    """Ranks and scores of the first target for design rows ``u`` and R_S per row: the Monte Carlo's
    scores (:func:`engine.kernels.montecarlo.montecarlo_scores`) and bucket-sort ranks
    (:func:`engine.kernels.bands.rank_batch`), contiguous rows dealt to ``n_lanes`` threads (default
    Numba's); every row's result depends only on its own design row.  No histogram is counted."""
    import numba

    params = map_parameters(u, factors, problem)
    n, n_t, n_u = len(params), len(problem.targets), problem.n_units
    scores = np.empty((n, n_t, n_u))
    ranks = np.zeros((n, n_t, n_u), np.int64)
    tree, targets = kernel_tree(problem), kernel_targets(problem)
    n_lanes = max(1, min(n_lanes or numba.get_num_threads(), n))

    def lane(k: int) -> None:
        lo, hi = k * n // n_lanes, (k + 1) * n // n_lanes
        if hi > lo:
            keys = np.empty((hi - lo, n_t, n_u), np.uint32)
            kernel.montecarlo_scores(problem.zt, problem.linear_variant, tree, kernel_design(params.slice(lo, hi)),
                                     targets, scores[lo:hi], keys)
            band_kernels.rank_batch(scores[lo:hi], np.zeros((n_t, n_u, 2)), ranks[lo:hi])

    in_lanes(lane, n_lanes)
    rank = ranks[:, 0, :]
    nominal = problem.nominal_rank[0]
    both = (rank > 0) & (nominal > 0)[None]
    total = np.where(both, np.abs(rank - nominal[None]), 0).sum(axis=1)
    ranked = both.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(ranked > 0, total / np.maximum(ranked, 1), np.nan)  # R_S, as accumulate_replicate
    return rank.astype(np.float64), scores[:, 0, :], shift


_SUM_KEYS = ("sum", "sum_ab_pool", "sq_ab_pool", "t1", "d", "q")


def _empty_sums(g: int, n_units: int) -> dict[str, np.ndarray]:
    return {k: np.zeros(n_units if k in _SUM_KEYS[:3] else (g, n_units)) for k in _SUM_KEYS}


def _add_sums(acc: dict[str, np.ndarray], y_a: np.ndarray, y_b: np.ndarray, y_ab: np.ndarray) -> None:
    """Add the terms of base samples (y: (s, units); y_ab: (g, s, units)) to the mergeable sums
    ``acc`` of the per-unit estimators, one base sample after the other: any split of a batch into
    sub-batches adds the same floats in the same order."""
    pool = y_a + y_b
    every = pool.copy()
    for i in range(len(y_ab)):
        every += y_ab[i]
    square = y_a * y_a + y_b * y_b
    diff = y_ab - y_a[None]
    terms = {"sum": every, "sum_ab_pool": pool, "sq_ab_pool": square, "t1": np.moveaxis(y_b[None] * diff, 1, 0),
             "d": np.moveaxis(diff, 1, 0), "q": np.moveaxis(diff * diff, 1, 0)}
    for key, term in terms.items():
        total = acc[key]
        for row in term:
            total += row


@dataclass
class BatchSums:
    """The reductions of a set of batches of a Sobol run (:func:`_batch`, keyed by the batch's
    block), merged by union and read in batch order (so any grouping gives the same result)."""

    parts: dict[int, dict[str, Any]]

    def merge(self, other: BatchSums) -> BatchSums:
        return self.copy().absorb(other)

    def absorb(self, other: BatchSums) -> BatchSums:
        overlap = self.parts.keys() & other.parts.keys()
        if overlap:
            raise ValueError(f"batches counted twice: {sorted(overlap)[:5]}")
        self.parts.update(other.parts)
        return self

    def copy(self) -> BatchSums:
        return BatchSums(dict(self.parts))

    def ordered(self) -> list[dict[str, Any]]:
        return [self.parts[k] for k in sorted(self.parts)]


def _batches(problem: Problem, factors: list[Factor], groups: list[tuple[str, list[int]]], a: np.ndarray,
             b: np.ndarray, second_order: bool, sub: int, first: int, stop: int) -> BatchSums:
    """Batches ``[first, stop)`` of the design (``BATCH`` base samples each, evaluated ``sub`` at a
    time; also the Dask task)."""
    return BatchSums({k: _batch(problem, factors, a[k * BATCH:(k + 1) * BATCH], b[k * BATCH:(k + 1) * BATCH], groups,
                                second_order, sub) for k in range(first, stop)})


class _Sobol:
    """The Sobol adapter of :func:`engine.analysis.driver.drive`: blocks are batches of ``BATCH``
    base samples of the A/B design, each evaluated with all its AB_i (and BA_i) rows."""

    checkpoints = False
    work_unit = "evaluations"
    block_size = BATCH

    def __init__(self, nominal, problem: Problem, spec, factors: list[Factor], groups, a: np.ndarray, b: np.ndarray,
                 second_order: bool, seed: int):
        self.nominal, self.problem, self.spec, self.factors, self.groups = nominal, problem, spec, factors, groups
        self.a, self.b, self.second_order, self.seed = a, b, second_order, seed
        self.n_replicates = len(a)
        self.work_per_replicate = (2 if second_order else 1) * len(groups) + 2
        self.sub = sobol_sub_batch(problem.n_units, len(problem.targets), len(groups), second_order)

    def chunk_blocks(self, requested: int | None, distributed: bool) -> int:
        return requested or 1

    def empty_state(self) -> BatchSums:
        return BatchSums({})

    def run_chunk(self, first: int, stop: int, n_lanes: int, on_block) -> BatchSums:
        return _batches(self.problem, self.factors, self.groups, self.a, self.b, self.second_order, self.sub, first,
                        stop)

    def dask_task(self):
        return _batches, (self.problem.without_result(), self.factors, self.groups, self.a, self.b, self.second_order,
                          self.sub)

    def fingerprint(self) -> dict[str, Any]:
        return {"framework": self.nominal.framework.digest, "data": data_digest(self.nominal),
                "spec": self.spec.to_dict(), "seed": self.seed, "base_samples": self.n_replicates,
                "second_order": self.second_order}

    def close(self) -> None:
        pass


def _batch(problem: Problem, factors: list[Factor], a: np.ndarray, b: np.ndarray,
           groups: list[tuple[str, list[int]]], second_order: bool = False, sub: int | None = None) -> dict[str, Any]:
    """Evaluate one batch of base samples (A, B, every AB_i and, for second order, every BA_i),
    ``sub`` base samples at a time (default: all; the result does not depend on it), and reduce it."""
    n, g, n_u = len(a), len(groups), problem.n_units
    sums = {"rank": _empty_sums(g, n_u), "score": _empty_sums(g, n_u)}
    missing = np.zeros(n_u, np.int64)
    shifts: list[list[np.ndarray]] = [[], [], [], []]  # A, B, AB_i (g, s), BA_i (g, s)
    for lo in range(0, n, sub or n):
        a_s, b_s = a[lo:lo + (sub or n)], b[lo:lo + (sub or n)]
        s = len(a_s)
        matrices = [a_s, b_s]
        for _, columns in groups:
            ab = a_s.copy()
            ab[:, columns] = b_s[:, columns]
            matrices.append(ab)
        if second_order:
            for _, columns in groups:
                ba = b_s.copy()
                ba[:, columns] = a_s[:, columns]
                matrices.append(ba)
        ranks, scores, shift = _evaluate(problem, factors, np.concatenate(matrices))
        stop = (g + 2) * s
        for key, y in (("rank", ranks), ("score", scores)):
            _add_sums(sums[key], y[:s], y[s:2 * s], y[2 * s:stop].reshape(g, s, n_u))
        missing += np.count_nonzero(ranks == 0, axis=0)  # per unit: evaluations that left it unranked
        for part, piece in zip(shifts, (shift[:s], shift[s:2 * s], shift[2 * s:stop].reshape(g, s),
                                        shift[stop:].reshape(g, s) if second_order else None)):
            part.append(piece)
    return {**sums, "missing": missing,
            "shift": np.concatenate([*(np.concatenate(p) for p in shifts[:2]), np.concatenate(shifts[2], 1).ravel()]),
            "shift_ba": np.concatenate(shifts[3], 1) if second_order else None}


def _indices_from_sums(parts: list[dict[str, np.ndarray]], n: int, g: int) -> tuple[np.ndarray, np.ndarray]:
    total = {k: sum(p[k] for p in parts) for k in parts[0]}  # batch order: deterministic
    evaluations = n * (g + 2)
    mean = total["sum"] / evaluations
    pooled_mean = total["sum_ab_pool"] / (2 * n)
    variance = total["sq_ab_pool"] / (2 * n) - pooled_mean * pooled_mean
    ok = variance > 1e-12 * np.maximum(1.0, pooled_mean * pooled_mean)
    safe = np.where(ok, variance, 1.0)
    first = np.where(ok, (total["t1"] - mean[None] * total["d"]) / n / safe, 0.0)
    total_order = np.where(ok, total["q"] / (2 * n) / safe, 0.0)
    return first, total_order


@dataclass(frozen=True, repr=False)
class SensitivityResult(ResultShape):
    """Sobol indices of R_S (with CIs) and, per unit, of its rank and score (the shape of every
    result: :class:`engine.display.ResultShape`; :attr:`units` is one row per unit)."""

    indices: pl.DataFrame  #: group, first, first_lo, first_hi, total, total_lo, total_hi (output R_S).
    unit_rank: pl.DataFrame  #: unit, group, first, total (output: the unit's rank).
    unit_score: pl.DataFrame  #: unit, group, first, total (output: the unit's score).
    manifest: dict[str, Any]
    second: pl.DataFrame | None = None  #: group_a, group_b, second (R_S), with ``second_order``.
    unit_names: pl.DataFrame | None = None  #: unit id, display name and group columns (for the files).

    @property
    def units(self) -> pl.DataFrame:
        """One row per unit (the order of :attr:`unit_rank`): ``driver``, the group with the largest
        total-order index of the unit's rank (its main rank driver; null where no group moves the
        rank), ``driver_total`` (that index, 0 where none), then ``total_<group>`` and
        ``first_<group>`` for every group in the order of :attr:`indices` (the numbers of
        :attr:`unit_rank`, one row per unit instead of one per unit and group)."""
        groups = self.indices["group"].to_list()
        n = self.unit_rank.height // len(groups)
        total = self.unit_rank["total"].to_numpy().reshape(len(groups), n)  # unit_rank is group-major
        first = self.unit_rank["first"].to_numpy().reshape(len(groups), n)
        moved = total.max(axis=0) > 0
        driver = pl.Series("driver", [groups[k] if m else None for k, m in zip(total.argmax(axis=0), moved)],
                           dtype=pl.String)
        return pl.DataFrame([self.unit_rank["unit"][:n], driver,
                             pl.Series("driver_total", total.max(axis=0)),
                             *[pl.Series(f"total_{name}", total[k]) for k, name in enumerate(groups)],
                             *[pl.Series(f"first_{name}", first[k]) for k, name in enumerate(groups)]])

    def output_tables(self) -> dict[str, pl.DataFrame]:
        """What :meth:`write` writes: the indices of R_S, the per-unit indices of rank and score (long
        tables, display names and groups beside the unit codes) and the second-order indices."""
        tables = {"indices": self.indices, "unit_rank_indices": with_unit_names(self.unit_rank, self.unit_names),
                  "unit_score_indices": with_unit_names(self.unit_score, self.unit_names)}
        if self.second is not None:
            tables["second_order"] = self.second
        return tables

    def summary(self) -> dict[str, Any]:
        top = self.indices.sort("total", descending=True).row(0, named=True) if self.indices.height else None
        extra = {"largest total order": f"{top['group']} ({top['total']:.3f})"} if top else {}
        return {**manifest_summary(self.manifest), **extra}


def _factors(spec, framework) -> tuple[Any, list[Factor], list[tuple[str, list[int]]]]:
    """The spec with its default factors, its factors and their groups.  The default (noise on
    every weight) is analysed by level: one group per depth."""
    defaulted = with_default_factors(spec, framework)
    if defaulted is not spec and not spec.groups:
        by_depth: dict[int, list[str]] = {}
        for node in framework.node_ids:
            if node != framework.root.id:
                by_depth.setdefault(framework.depth(node), []).append(f"weight:{node}")
        defaulted = load_spec({**dict(defaulted.document),
                               "groups": {f"weights:depth{d}": members for d, members in sorted(by_depth.items())}})
    factors = resolve_factors(defaulted, framework)
    return defaulted, factors, factor_groups(factors, dict(defaulted.groups))


def sensitivity_factors(framework, data=None, spec=None, **load_kwargs: Any) -> pl.DataFrame:
    """The factors a Sobol analysis of ``spec`` would vary, one row each: ``factor`` (the name a
    spec's ``groups`` use), ``kind``, ``nodes`` it acts on, design ``columns`` and the ``group`` whose
    indices it shares (its own name when it is in no group).  Runs no evaluation; the framework is
    scored once, so the factors are those of the framework as screened on ``data``."""
    spec, factors, groups = _factors(load_spec(spec), score(framework, data, **load_kwargs).framework)
    group_of = {c: name for name, columns in groups for c in columns}
    return pl.DataFrame({"factor": [f.name for f in factors], "kind": [f.kind for f in factors],
                         "nodes": [", ".join(f.nodes) for f in factors], "columns": [f.width for f in factors],
                         "group": [group_of[f.column] for f in factors]})


def sensitivity(framework, data=None, spec=None, *, base_samples: int = 1024, seed: int | None = None,
                n_boot: int = 200, confidence: float | None = None, second_order: bool = False,
                threads: int | None = None, backend: str = "threads", client: Any = None,
                scheduler: str | None = None, workers: int | None = None, out: str | Path | None = None,
                progress: bool = False, out_format: str | None = None, worker_wait: float | None = None,
                **load_kwargs: Any) -> SensitivityResult:
    """Sobol first- and total-order indices of the ranking, from N (g + 2) evaluations
    (N (2 g + 2) with ``second_order``, which adds the second-order indices of R_S).

    ``base_samples`` N should be a power of two (scrambled Sobol points); see
    docs/sensitivity.md for the N that gives stable answers.  ``backend``, ``threads``, ``client``,
    ``scheduler``, ``workers`` and ``worker_wait`` as for :func:`engine.analysis.uncertainty.uncertainty`.
    ``out``: a folder for the tables
    (``out_format`` ``"parquet"``, the default, ``"csv"`` or ``"xlsx"``) and ``manifest.json``, or a
    ``.xlsx`` file (one workbook); checked before any work.  ``confidence``: the level of the
    bootstrap intervals of the indices of R_S (default the spec's ``confidence``, else
    :data:`CONFIDENCE`; COINr reports 0.9), recorded in the manifest."""
    from . import sobol

    started = time.perf_counter()
    if confidence is not None and not (isinstance(confidence, int | float) and 0.0 < confidence < 1.0):
        raise SchemaError(f"confidence must lie strictly between 0 and 1, got {confidence!r}",
                          fix="use e.g. 0.9 (COINr) or 0.95 (the default)")
    backends = check_run(out, [framework, data, spec],
                         BackendOptions(backend, threads, client, scheduler, workers, worker_wait))
    if base_samples < 2:
        raise SchemaError(f"base_samples must be at least 2, got {base_samples}", fix="use a power of two, e.g. 1024")
    if client is not None or scheduler or workers:  # a Dask cluster is named: the run goes there
        backends = replace(backends, backend="dask")
    spec = load_spec(spec, seed=seed)
    nominal = score(framework, data, **load_kwargs)
    spec, factors, groups = _factors(spec, nominal.framework)
    level = confidence if confidence is not None else spec.confidence if spec.confidence is not None else CONFIDENCE
    check_memory("sensitivity", int(np.count_nonzero(nominal.stages.kept)), len(spec.targets) or 1, backends.lanes,
                 groups=len(groups), second_order=second_order, base_samples=base_samples)
    problem = build_problem(nominal, spec, factors)
    seed = run_seed(spec.seed)
    a, b = sobol.sobol_design(base_samples, n_columns(factors), seed)
    g = len(groups)
    per_sample = 2 * g + 2 if second_order else g + 2
    batches = [(lo, min(lo + BATCH, base_samples)) for lo in range(0, base_samples, BATCH)]

    def finish(state: BatchSums, info: dict[str, Any]) -> SensitivityResult:
        return _summarise(problem, spec, factors, groups, state.ordered(), batches, base_samples, per_sample, n_boot,
                          seed, started, info, level)

    return drive(_Sobol(nominal, problem, spec, factors, groups, a, b, second_order, seed), finish, backends,
                 out=out, out_format=out_format, progress=progress)


def _summarise(problem: Problem, spec, factors: list[Factor], groups: list[tuple[str, list[int]]],
               ordered: list[dict[str, Any]], batches: list[tuple[int, int]], base_samples: int, per_sample: int,
               n_boot: int, seed: int, started: float, info: dict[str, Any],
               confidence: float = 0.95) -> SensitivityResult:
    """Indices of R_S (with bootstrap intervals) and per unit, from the batches' reductions in batch
    order; ``info``: where the run ran (backend, threads or workers), for the manifest."""
    from . import sobol

    g = len(groups)
    second_order = per_sample > g + 2
    missing = sum(r["missing"] for r in ordered)
    shift = np.concatenate([r["shift"] for r in ordered])  # batch order: [A, B, AB_1..AB_g] per batch
    y_a, y_b, y_ab = [], [], []
    for (lo, hi), r in zip(batches, ordered):
        n = hi - lo
        y_a.append(r["shift"][:n])
        y_b.append(r["shift"][n:2 * n])
        y_ab.append(r["shift"][2 * n:].reshape(g, n))
    names = tuple(name for name, _ in groups)
    y_ba = np.concatenate([r["shift_ba"] for r in ordered], axis=1) if second_order else None
    rs = sobol.estimate(np.concatenate(y_a), np.concatenate(y_b), np.concatenate(y_ab, axis=1), groups=names,
                        n_boot=n_boot, seed=seed, y_ba=y_ba, confidence=confidence)
    rank_first, rank_total = _indices_from_sums([r["rank"] for r in ordered], base_samples, g)
    score_first, score_total = _indices_from_sums([r["score"] for r in ordered], base_samples, g)
    ci = rs.first_ci if rs.first_ci is not None else np.full((g, 2), np.nan)
    cit = rs.total_ci if rs.total_ci is not None else np.full((g, 2), np.nan)
    indices = pl.DataFrame({"group": list(names), "first": rs.first, "first_lo": ci[:, 0], "first_hi": ci[:, 1],
                            "total": rs.total, "total_lo": cit[:, 0], "total_hi": cit[:, 1]})
    second = None
    if rs.second is not None:
        pairs = [(i, j) for i in range(g) for j in range(i + 1, g)]
        second = pl.DataFrame({"group_a": [names[i] for i, _ in pairs], "group_b": [names[j] for _, j in pairs],
                               "second": [float(rs.second[i, j]) for i, j in pairs]})

    def per_unit(first: np.ndarray, total: np.ndarray) -> pl.DataFrame:
        return pl.DataFrame({"unit": [u for _ in names for u in problem.units],
                             "group": [name for name in names for _ in problem.units],
                             "first": first.ravel(), "total": total.ravel()})

    wall = time.perf_counter() - started
    evaluations = base_samples * per_sample
    manifest = {
        "kind": "sensitivity", "framework": {"id": problem.framework.id, "digest": problem.framework.digest},
        "data": problem.result.recipe["data"], "spec": spec.to_dict() | {"seed": seed},
        "factors": [f.name for f in factors], "groups": {name: cols for name, cols in groups},
        "target": problem.target_ids[0], "base_samples": base_samples, "evaluations": evaluations,
        "output_variance_rank_shift": float(rs.variance), "bootstrap": {"resamples": n_boot, "confidence": confidence,
        "method": "percentile bootstrap over base samples (treats the quasi-random points as iid)"},
        "seed": seed, "versions": versions(), "wall_time_s": wall, "evaluations_per_s": evaluations / wall,
        "shift_mean": float(shift.mean()),
        "missing_ranks": {problem.target_ids[0]: int(missing.sum())},
        **info,
    }
    warn_missing_ranks("sensitivity", problem.target_ids[:1], problem.units, [missing], evaluations,
                       problem.nominal_rank[:1])
    return SensitivityResult(indices, per_unit(rank_first, rank_total), per_unit(score_first, score_total), manifest,
                             second, problem.unit_names())
