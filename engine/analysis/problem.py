"""The prepared problem of an uncertainty or sensitivity analysis.

Everything upstream of the perturbed stages is computed once: the pipeline runs to the nominal
result, the normalised matrix of every method variant (treatment on/off × normalisation choice)
is built and transposed for the kernel, and the tree is flattened.  Replicates then only redo
aggregation and ranking (in the Monte Carlo kernels).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl

from .. import methods
from ..errors import DataError, SchemaError, preview
from ..kernels import montecarlo as kernel
from ..pipeline import ScoreResult
from ..schema import Framework, Method
from ..stages import normalise
from .spec import Factor, UncertaintySpec

__all__ = ["Problem", "build_problem"]


@dataclass(frozen=True)
class Problem:
    """Arrays shared by every replicate (read-only; shipped once to Dask workers as one shared task)."""

    framework: Framework
    result: ScoreResult  #: The nominal run.
    units: list[Any]  #: Unit ids (rows of every array).
    zt: np.ndarray  #: float64 (n_variants, n_indicators, n_units); variant 0 is the nominal one.
    linear_variant: np.ndarray  #: bool (n_variants,): no missing value in the variant.
    child_ptr: np.ndarray
    child_idx: np.ndarray
    param: np.ndarray
    min_coverage: np.ndarray
    any_coverage: bool
    base_codes: np.ndarray  #: int64 (n_aggregates,): the framework's aggregation methods.
    nominal_weight: np.ndarray  #: float64 (n_nodes,): resolved raw weights (root 1).
    n_norm: int  #: Normalisation alternatives (1 = the framework's own).
    has_treatment_variants: bool
    method_variants: bool  #: Whether any replicate uses a variant other than 0.
    targets: np.ndarray  #: int64 (n_targets,): value-matrix column of each target node.
    target_ids: tuple[str, ...]
    nominal_rank: np.ndarray  #: int64 (n_targets, n_units), 0 = missing.
    nominal_score: np.ndarray  #: float64 (n_targets, n_units).
    pair_units: np.ndarray  #: int64: unit rows of the pairwise comparisons.
    tier_of: np.ndarray  #: int64 (n_targets, n_units): nominal tier (1 = best, 0 = none).
    tier_bounds: np.ndarray  #: int64 (n_targets, n_units, 2): rank range of the unit's nominal tier.
    position: dict[str, int]
    aggregate_index: dict[str, int]

    @property
    def n_units(self) -> int:
        return self.zt.shape[2]

    @property
    def n_indicators(self) -> int:
        return self.zt.shape[1]

    def variant_index(self, treatment_on: np.ndarray, norm_choice: np.ndarray) -> np.ndarray:
        if not self.method_variants:
            return np.zeros(len(norm_choice), np.int64)
        treatment_slot = (1 - treatment_on) if self.has_treatment_variants else np.zeros_like(treatment_on)
        return (1 + treatment_slot * self.n_norm + norm_choice).astype(np.int64)

    def without_result(self) -> Problem:
        """A lighter copy for shipping to workers (the nominal ScoreResult stays local)."""
        return replace(self, result=None)


def _variant_matrices(framework: Framework, result: ScoreResult, spec: UncertaintySpec) -> list[np.ndarray]:
    stages = result.stages
    nominal = stages.normalised
    if not spec.normalisation and not spec.treatment:
        return [nominal]
    treated_options = [stages.treated]
    if spec.treatment:
        treated_options.append(stages.imputed[stages.kept])
    norm_options: list[Method | None] = list(spec.normalisation) or [None]
    for method in norm_options:
        if method is not None and method.name in ("distance_to_target", "goalposts"):
            raise SchemaError(f"{method.name} needs per-indicator parameters and cannot be a global "
                              "normalisation choice", fix="use minmax, zscore, rank, borda, percentile, "
                              "fraction_of_max or distance_to_max")
    matrices = [nominal]
    units = stages.inputs.units.filter(pl.Series(stages.kept)).to_list()
    for treated in treated_options:
        for method in norm_options:
            indicators = framework.indicators if method is None else tuple(
                replace(ind, normalisation=method) for ind in framework.indicators)
            if treated is not stages.treated:  # the treatment switched off: what the method receives is untreated
                indicators = tuple(replace(ind, treatment=Method("none")) for ind in indicators)
            try:
                matrices.append(normalise(treated, indicators, framework.constant_indicator, units=units))
            except DataError as err:
                variant = (f"normalisation choice {method.name!r}" if method is not None else
                           "the framework's normalisation") + (" with the treatment off" if treated is not
                                                               stages.treated else "")
                raise DataError(f"uncertainty variant ({variant}): {err.message}", node=err.node, column=err.column,
                                units=err.units, fix=f"remove {method.name!r} from normalisation.choices"
                                if method is not None else err.fix) from err
    return matrices


def _tiers(framework: Framework, scores: np.ndarray, ranks: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    from ..tiers import assign_tiers

    tier = assign_tiers(scores, k)
    bounds = np.zeros((len(scores), 2), np.int64)
    for t in np.unique(tier[tier > 0]):
        members = ranks[tier == t]
        bounds[tier == t] = (members.min(), members.max())
    return tier, bounds


def build_problem(result: ScoreResult, spec: UncertaintySpec, factors: list[Factor]) -> Problem:
    """Prepare the arrays of an analysis from a nominal :class:`ScoreResult`."""
    framework = result.framework
    stages = result.stages
    tree = framework.compile(stages.weights)
    ids = framework.node_ids
    position = {node: k for k, node in enumerate(ids)}
    aggregate_index = {a.id: k for k, a in enumerate(framework.aggregates)}
    param = tree.param.copy()
    for f in factors:
        if f.kind == "aggregation":
            ps = {p for code, p in zip(f.params["codes"], f.params["p"], strict=True) if code == methods.GENERALISED}
            if len(ps) > 1:
                raise SchemaError(f"aggregation rule {f.name!r} has generalised means with different p {sorted(ps)}",
                                  fix="keep one generalised choice per rule")
            if ps:
                p = ps.pop()
                for node in f.nodes:
                    param[aggregate_index[node]] = p
    matrices = _variant_matrices(framework, result, spec)
    zt = np.ascontiguousarray(np.stack([m.T for m in matrices]))
    nominal_weight = np.ones(len(ids))
    for node, w in stages.weights.items():
        nominal_weight[position[node]] = w
    target_ids = spec.targets or (framework.root.id,)
    targets = np.array([position[t] for t in target_ids], np.int64)
    units = result.stages.inputs.units.filter(pl.Series(stages.kept)).to_list()
    lookup = {u: i for i, u in enumerate(units)}
    missing = [p for p in spec.pairs if p not in lookup]
    if missing:
        raise SchemaError(f"pairs name unknown unit(s) {preview(missing)}", fix=f"use unit ids such as {units[:3]}")
    problem = Problem(
        framework=framework, result=result, units=units, zt=zt,
        linear_variant=np.array([not np.isnan(m).any() for m in matrices]),
        child_ptr=tree.child_ptr, child_idx=tree.child_idx, param=param, min_coverage=tree.min_coverage,
        any_coverage=bool((tree.min_coverage > 0).any()), base_codes=tree.method.copy(),
        nominal_weight=nominal_weight, n_norm=max(1, len(spec.normalisation)),
        has_treatment_variants=spec.treatment, method_variants=len(matrices) > 1,
        targets=targets, target_ids=tuple(target_ids),
        nominal_rank=np.zeros((len(targets), len(units)), np.int64),
        nominal_score=np.ascontiguousarray(stages.scores[:, targets].T),
        pair_units=np.array([lookup[p] for p in spec.pairs], np.int64),
        tier_of=np.zeros((len(targets), len(units)), np.int64),
        tier_bounds=np.zeros((len(targets), len(units), 2), np.int64),
        position=position, aggregate_index=aggregate_index,
    )
    # Nominal ranks from the kernel itself (the same float operations as every replicate).
    nominal_rank = evaluate_ranks(problem, nominal_weight[None, :], np.zeros(1, np.int64),
                                  problem.base_codes[None, :], np.full(1, -1, np.int64))[0]
    k = spec.tiers or (framework.tiers["k"] if framework.tiers else 5)
    tier_of = np.zeros_like(nominal_rank)
    bounds = np.zeros((len(targets), len(units), 2), np.int64)
    for t in range(len(targets)):
        tier_of[t], bounds[t] = _tiers(framework, problem.nominal_score[t], nominal_rank[t], k)
    return replace(problem, nominal_rank=nominal_rank, tier_of=tier_of, tier_bounds=bounds)


def evaluate_ranks(problem: Problem, node_weight, variant, agg_code, excluded) -> np.ndarray:
    """Ranks (n, n_targets, n_units) of explicit replicates, through the Monte Carlo path
    (:func:`engine.analysis.montecarlo.split_call`, one block each).  Nothing else is counted: the
    histograms and pair counts are empty (no units² arrays)."""
    from .design import Parameters
    from .montecarlo import split_call  # montecarlo imports this module

    params = Parameters(np.ascontiguousarray(node_weight, np.float64), np.ascontiguousarray(variant, np.int64),
                        np.ascontiguousarray(agg_code, np.int64), np.ascontiguousarray(excluded, np.int64))
    return split_call(problem, params, 1, 1, keep=True, count=False)[-1]


def kernel_tree(problem: Problem) -> kernel.Tree:
    """The problem's aggregation tree as the kernels take it."""
    return kernel.Tree(problem.child_ptr, problem.child_idx, problem.param, problem.min_coverage,
                       problem.any_coverage)


def kernel_design(params) -> kernel.Design:
    """Per-replicate parameters (:class:`engine.analysis.design.Parameters`) as the kernels take them."""
    return kernel.Design(params.node_weight, params.variant, params.agg_code, params.excluded)


def kernel_targets(problem: Problem, pair_units: np.ndarray | None = None) -> kernel.Targets:
    """The target nodes, their nominal ranks and the pair units (``pair_units`` replaces the
    problem's, e.g. by an empty array when pairs are not counted)."""
    return kernel.Targets(problem.targets, problem.nominal_rank,
                          problem.pair_units if pair_units is None else pair_units)
