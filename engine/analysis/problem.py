"""The prepared problem of an uncertainty or sensitivity analysis.

Everything upstream of the perturbed stages is computed once: the pipeline runs to the nominal
result, the normalised matrix of every method variant (treatment on/off × normalisation choice ×
every combination of the values of the ``settings`` factors) is built and transposed for the
kernel, and the tree is flattened.  Replicates then only redo aggregation and ranking (in the
Monte Carlo kernels).
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl

from .. import methods
from ..errors import DataError, SchemaError, preview
from ..kernels import montecarlo as kernel
from ..pipeline import ScoreResult, run_stages
from ..schema import Framework, Method
from ..stages import normalise
from ..stages.weights import resolve_weights
from .spec import Factor, UncertaintySpec, apply_settings

__all__ = ["Problem", "build_problem", "MAX_VARIANTS", "MAX_VARIANT_BYTES", "check_variants"]

#: Most normalised data sets (variants) a run precomputes, and the most memory they may take:
#: their number is the product of the levels of the upstream factors (treatment on/off,
#: normalisation choices, settings), so a few settings with many values multiply quickly.
MAX_VARIANTS = 4096
MAX_VARIANT_BYTES = 2 * 2**30


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
    #: Number of values of each ``settings`` factor, in factor order (the variants' inner digits).
    setting_levels: tuple[int, ...] = ()
    #: int64: rows of :attr:`units` holding the nominal run's units (all rows unless a setting
    #: changes which units pass screening: then :attr:`units` are the units kept by any variant).
    nominal_rows: np.ndarray | None = None
    #: Per ``weighting.method`` factor: the raw weights (n_values, its children) each value gives.
    weight_vectors: dict[str, np.ndarray] | None = None

    @property
    def n_units(self) -> int:
        return self.zt.shape[2]

    @property
    def n_indicators(self) -> int:
        return self.zt.shape[1]

    def variant_index(self, treatment_on: np.ndarray, norm_choice: np.ndarray,
                      setting_choice: np.ndarray | None = None) -> np.ndarray:
        """Index of the normalised matrix: 0 nominal, else ``1 + ((treatment off) · n_norm +
        normalisation choice) · Π levels + the settings' values in mixed radix (last fastest)``.
        ``setting_choice``: int (n, n_settings) value index of each setting factor."""
        if not self.method_variants:
            return np.zeros(len(norm_choice), np.int64)
        treatment_slot = (1 - treatment_on) if self.has_treatment_variants else np.zeros_like(treatment_on)
        index = treatment_slot * self.n_norm + norm_choice
        for k, levels in enumerate(self.setting_levels):
            index = index * levels + setting_choice[:, k]
        return (1 + index).astype(np.int64)

    def embed(self, values: np.ndarray, fill: float = np.nan) -> np.ndarray:
        """Values (n_nominal_units, ...) of the nominal run placed in the rows of :attr:`units`."""
        if self.nominal_rows is None or len(self.nominal_rows) == self.n_units:
            return values
        out = np.full((self.n_units, *values.shape[1:]), fill, dtype=np.result_type(values, type(fill)))
        out[self.nominal_rows] = values
        return out

    def unit_names(self) -> pl.DataFrame | None:
        """Unit id, display name and group columns of :attr:`units` (from the data when a setting
        ranks units the nominal run screened out), for the tables; None without the nominal run."""
        if self.result is None:
            return None
        names = self.result.unit_names()
        if names.height == self.n_units:
            return names
        ds = self.result.dataset
        return ds.table.select(ds.unit, *([ds.label] if ds.label else []), *ds.groups)

    def without_result(self) -> Problem:
        """A lighter copy for shipping to workers (the nominal ScoreResult stays local)."""
        return replace(self, result=None)


def check_variants(spec: UncertaintySpec, factors: list[Factor], n_units: int, n_indicators: int) -> int:
    """The number of normalised matrices a run precomputes; a :class:`SchemaError` naming the
    upstream factors and their levels when they exceed :data:`MAX_VARIANTS` or
    :data:`MAX_VARIANT_BYTES` (checked before any of them is computed)."""
    levels = ([("treatment", 2)] if spec.treatment else []) + (
        [("normalisation", len(spec.normalisation))] if spec.normalisation else []) + [
        (f.name, len(f.params["values"])) for f in factors if f.kind == "setting"]
    if not levels:
        return 1
    n = 1 + math.prod(k for _, k in levels)
    nbytes = 8 * n * n_units * n_indicators
    if n > MAX_VARIANTS or nbytes > MAX_VARIANT_BYTES:
        product = " × ".join(f"{name} ({k})" for name, k in levels)
        raise SchemaError(f"the upstream factors {product} make {n:,} normalised data sets of {n_units:,} units × "
                          f"{n_indicators} indicators ({nbytes / 2**30:.2f} GiB), above the limit of "
                          f"{MAX_VARIANTS:,} data sets and {MAX_VARIANT_BYTES / 2**30:g} GiB",
                          fix="give these factors fewer values (e.g. fewer winmax levels), or analyse some of them "
                          "in a separate run")
    return n


def _variant_matrices(framework: Framework, result: ScoreResult, spec: UncertaintySpec, settings: list[Factor]
                      ) -> tuple[list[np.ndarray], np.ndarray]:
    """The normalised matrices (variant 0 the nominal one, then treatment × normalisation ×
    settings, last fastest) in the rows of the units any variant keeps (a bool mask over the input
    units, returned too; the nominal kept units unless a setting changes the screening)."""
    stages = result.stages
    nominal = stages.normalised
    if not spec.normalisation and not spec.treatment and not settings:
        return [nominal], stages.kept
    for method in spec.normalisation:
        if method.name in ("distance_to_target", "goalposts"):
            raise SchemaError(f"{method.name} needs per-indicator parameters and cannot be a global "
                              "normalisation choice", fix="use minmax, zscore, rank, borda, percentile, "
                              "fraction_of_max or distance_to_max")
    # Every combination of the settings' values: its framework and its stages up to treatment (from
    # the nominal run's prepared inputs unless the denominators vary).  A warning is given once,
    # naming the first variant that raised it, not once per variant.
    upstream = [(framework, stages, "")]
    if settings:
        upstream = []
        inputs = result.dataset if any(f.params["stage"] == "denomination" for f in settings) else stages.inputs
        seen: dict[tuple[type, str], str] = {}  # (category, message) -> the first variant giving it
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for values in itertools.product(*(f.params["values"] for f in settings)):
                chosen = list(zip(settings, values, strict=True))
                label = ", ".join(f"{f.params['setting']} = {v!r}" for f, v in chosen)
                variant = apply_settings(framework, chosen)
                upstream.append((variant, run_stages(variant, inputs, up_to="treat"), label))
                for w in caught:
                    seen.setdefault((w.category, str(w.message)), label)
                caught.clear()
        for (category, message), label in seen.items():
            warnings.warn(f"{message} (uncertainty variant {label})", category, stacklevel=3)
    rows = np.logical_or.reduce([stages.kept, *(st.kept for _, st, _ in upstream)])
    all_units = stages.inputs.units

    def embed(matrix: np.ndarray, kept: np.ndarray) -> np.ndarray:
        if np.array_equal(kept, rows):
            return matrix
        out = np.full((int(rows.sum()), matrix.shape[1]), np.nan)
        out[kept[rows]] = matrix
        return out

    matrices = [embed(nominal, stages.kept)]
    for treatment_on in ((True, False) if spec.treatment else (True,)):
        for method in list(spec.normalisation) or [None]:
            for variant, st, label in upstream:
                indicators = variant.indicators if method is None else tuple(
                    replace(ind, normalisation=method) for ind in variant.indicators)
                if not treatment_on:  # the treatment switched off: what the method receives is untreated
                    indicators = tuple(replace(ind, treatment=Method("none")) for ind in indicators)
                treated = st.treated if treatment_on else st.imputed[st.kept]
                try:
                    matrices.append(embed(normalise(treated, indicators, variant.constant_indicator,
                                                    units=all_units.filter(pl.Series(st.kept)).to_list()), st.kept))
                except DataError as err:
                    what = (f"normalisation choice {method.name!r}" if method is not None else
                            "the framework's normalisation") + ("" if treatment_on else " with the treatment off")
                    if label:  # the settings' values; alone when they are the only change
                        what = label if method is None and treatment_on else f"{what}, {label}"
                    raise DataError(f"uncertainty variant ({what}): {err.message}", node=err.node, column=err.column,
                                    units=err.units, fix=f"remove {method.name!r} from normalisation.choices"
                                    if method is not None else err.fix) from err
    return matrices, rows


def _weight_vectors(framework: Framework, normalised: np.ndarray, factors: list[Factor]) -> dict[str, np.ndarray]:
    """The weights of the children of a ``weighting.method`` factor's aggregates under each of its
    values, resolved as the pipeline does (data-driven methods from the nominal normalised data,
    as the nominal weights are)."""
    out = {}
    for f in factors:
        if f.kind == "weighting":
            resolved = [resolve_weights(apply_settings(framework, [(f, v)]), normalised)[0] for v in f.params["values"]]
            out[f.name] = np.array([[w[c] for c in f.params["children"]] for w in resolved], np.float64)
    return out


def _tiers(framework: Framework, scores: np.ndarray, ranks: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    from ..tiers import assign_tiers

    tier = assign_tiers(scores, k, method=framework.tiers["method"] if framework.tiers else "jenks")
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
    settings = [f for f in factors if f.kind == "setting"]
    check_variants(spec, factors, len(stages.inputs.units), len(framework.indicators))
    matrices, rows = _variant_matrices(framework, result, spec, settings)
    zt = np.ascontiguousarray(np.stack([m.T for m in matrices]))
    nominal_weight = np.ones(len(ids))
    for node, w in stages.weights.items():
        nominal_weight[position[node]] = w
    target_ids = spec.targets or (framework.root.id,)
    targets = np.array([position[t] for t in target_ids], np.int64)
    units = result.stages.inputs.units.filter(pl.Series(rows)).to_list()
    nominal_rows = np.flatnonzero(stages.kept[rows])
    nominal_score = np.full((len(targets), len(units)), np.nan)
    nominal_score[:, nominal_rows] = stages.scores[:, targets].T
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
        nominal_score=nominal_score,
        pair_units=np.array([lookup[p] for p in spec.pairs], np.int64),
        tier_of=np.zeros((len(targets), len(units)), np.int64),
        tier_bounds=np.zeros((len(targets), len(units), 2), np.int64),
        position=position, aggregate_index=aggregate_index,
        setting_levels=tuple(len(f.params["values"]) for f in settings), nominal_rows=nominal_rows,
        weight_vectors=_weight_vectors(framework, stages.normalised, factors),
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
