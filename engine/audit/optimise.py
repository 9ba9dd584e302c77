"""Audit section "weights": optimised weights at aggregate nodes, written as a framework file, with the
rank changes they cause (see docs/audit.md).

At a node with components x_1 … x_k and score y(w) (its own aggregation of the components with
weights w), the measure m_c(w) of component c is its importance η²_c (:mod:`.importance`) or its
Pearson correlation r_c with y (COINr's ``get_opt_weights``).  ``balance`` finds w such that the
shares m_c / Σ m_j match the targets t_c (equal by default; Becker et al. 2017), minimising
Σ (m_c / Σ m_j − t_c)²; ``infomax`` maximises the information the node keeps about its
components, Σ m_c² (squared correlations) or Σ η²_c.  Weights are searched on the simplex
(w = θ / Σθ with θ in [0, 1], bounded least squares from the current weights).  Nodes are optimised
bottom-up, each on its components' scores under the weights already optimised below it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

from ..errors import SchemaError
from ..io import atomic_write
from ..kernels.aggregate import aggregate_node
from ..pipeline import ScoreResult
from ..schema import AGGREGATION_CODES, framework_from_dict
from ..stages import aggregate
from ..stages.weights import resolve_weights
from .importance import SmootherSet, SplineSmoother
from .importance import check_option as option
from .result import flag
from .whatif import as_result, rank_shifts

__all__ = ["OPTIONS", "OptimisedWeights", "optimise_weights", "section"]

OPTIONS: dict[str, Any] = {
    "weight_nodes": None,  #: Aggregates to optimise (None: every aggregate with two or more components).
    "weight_targets": None,  #: {node: {component: relative target}}; a node not given: equal targets.
    "weight_measure": "importance",  #: "importance" (η²) or "correlation" (Pearson r with the node).
    "weight_objectives": ("balance", "infomax"),  #: Which optimisations the section runs.
    "weight_tolerance": 0.02,  #: Largest |share − target| still counted as reached.
    "segments": 12,  #: Spline segments of the importance measure (shared with the importance section).
    "min_units": 20,  #: Fewest units with a value per component (shared with the importance section).
}
OBJECTIVES = ("balance", "infomax")
MEASURES = ("importance", "correlation")
DIGITS = 6  #: Decimals of the written weights (the rank changes use the written values).


@dataclass(frozen=True, eq=False)
class OptimisedWeights:
    """Optimised weights, what they achieve, the rank changes, and the framework file that has them."""

    objective: str
    measure: str
    weights: dict[str, float]  #: New sibling-relative weight of every component of the optimised nodes.
    components: pl.DataFrame  #: One row per optimised node and component (before/after/target).
    ranks: pl.DataFrame  #: Unit, ``rank`` (audited), ``new_rank``, ``shift`` (rank − new_rank: + = moves up).
    document: dict[str, Any]  #: The framework document with the new weights.
    flags: list[dict[str, Any]] = field(default_factory=list)
    result: ScoreResult | None = field(default=None, repr=False)  #: The index scored with the new weights.

    def yaml(self) -> str:
        """The framework file's text (YAML; node ids unchanged, the optimised nodes' weights manual)."""
        nodes = sorted({row["node"] for row in self.components.iter_rows(named=True)})
        head = (f"# Weights of {', '.join(nodes)} optimised by cityrank audit ({self.objective}, measure "
                f"{self.measure}); everything else as in the audited framework.\n")
        return head + yaml.safe_dump(self.document, allow_unicode=True, sort_keys=False, width=110)

    def write(self, path: str | Path) -> Path:
        """Write :meth:`yaml` to ``path`` atomically (load it with :func:`engine.load_framework`)."""
        text = self.yaml()
        return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def check(options: Mapping[str, Any]) -> None:
    """Refuse unknown objectives or measures and a bad tolerance before any work."""
    objectives = options["weight_objectives"]
    for objective in (objectives,) if isinstance(objectives, str) else objectives:
        if objective not in OBJECTIVES:
            raise SchemaError(f"unknown weight objective {objective!r}", node=None, fix=f"use one of {OBJECTIVES}")
    if options["weight_measure"] not in MEASURES:
        raise SchemaError(f"unknown weight measure {options['weight_measure']!r}", node=None,
                          fix=f"use one of {MEASURES}")
    tolerance = options["weight_tolerance"]
    if not (isinstance(tolerance, float | int) and 0 < tolerance < 1):
        raise SchemaError(f"weight tolerance must be between 0 and 1, got {tolerance!r}", node=None,
                          fix="e.g. 0.02 (two percentage points of share)")
    if "segments" in options:  # the audit's options (optimise_weights checks its own through _check)
        segments, units = options["segments"], options["min_units"]
        option("segments", segments, isinstance(segments, int) and 3 <= segments <= 200,
               "give a whole number of segments, 3-200")
        option("min_units", units, isinstance(units, int) and units >= 5, "give a whole number >= 5")


def check_data(options: Mapping[str, Any], framework, dataset) -> None:
    """Refuse, before scoring, nodes that are not aggregates and targets that do not fit them."""
    objectives = options["weight_objectives"]
    for objective in (objectives,) if isinstance(objectives, str) else objectives:
        _check(framework, options["weight_nodes"], objective, options["weight_targets"] if objective == "balance"
               else None, options["weight_measure"], options["weight_tolerance"])


def _check(fw, nodes, objective, targets, measure, tolerance) -> list[str]:
    check({"weight_objectives": objective, "weight_measure": measure, "weight_tolerance": tolerance})
    aggregates = [a.id for a in fw.aggregates]
    nodes = [nodes] if isinstance(nodes, str) else nodes
    chosen = list(nodes) if nodes is not None else [a.id for a in fw.aggregates if len(a.children) > 1]
    if targets is not None and not isinstance(targets, Mapping):
        raise SchemaError(f"weight targets must map nodes to {{component: target}}, not {targets!r}", node=None,
                          path=fw.path, fix=f"e.g. {{{aggregates[-1]!r}: {{...}}}}")
    for node in chosen:
        if node not in aggregates:
            raise SchemaError("weights can only be optimised at an aggregate node", node=node, path=fw.path,
                              fix=f"name one of {', '.join(aggregates)}")
    for node, given in (targets or {}).items():
        if node not in chosen:
            raise SchemaError("targets given for a node that is not optimised", node=node, path=fw.path,
                              fix=f"add it to the nodes, or optimise one of {', '.join(chosen)}")
        children = fw.node(node).children
        numbers = isinstance(given, Mapping) and all(isinstance(v, float | int) and 0 <= v < float("inf")
                                                     for v in given.values())
        if not numbers or set(given) != set(children) or not sum(given.values()):
            raise SchemaError(f"targets must give every component a number >= 0 (not all 0), got {given!r}",
                              node=node, path=fw.path,
                              fix=f"e.g. {{{', '.join(f'{c!r}: 1' for c in children)}}}")
    order = {a: k for k, a in enumerate(aggregates)}
    return sorted(dict.fromkeys(chosen), key=order.__getitem__)  # bottom-up (post-order)


class _Node:
    """The objective at one node: its components' values, the aggregation kernel, the measures."""

    def __init__(self, fw, node: str, values: np.ndarray, measure: str, segments: int) -> None:
        agg = fw.node(node)
        position = {n: k for k, n in enumerate(fw.node_ids)}
        self.block = np.ascontiguousarray(values[:, [position[c] for c in agg.children]])
        self.code = AGGREGATION_CODES[agg.aggregation.name]
        self.p = float(agg.aggregation.params.get("p", 1.0))
        self.coverage = agg.min_coverage
        self.measure = measure
        self.out = np.empty(len(self.block))
        y = self.score(np.full(self.block.shape[1], 1.0 / self.block.shape[1]))
        self.valid = [np.isfinite(x) & np.isfinite(y) for x in self.block.T]
        # components present for the same units are measured together (usually all of them)
        self.groups: list[tuple[np.ndarray, list[int], SmootherSet | None]] = []
        for c, v in enumerate(self.valid):
            group = next((g for g in self.groups if (g[0] == v).all()), None)
            if group is None:
                self.groups.append((v, [c], None))
            else:
                group[1].append(c)
        if measure == "importance":
            self.groups = [(v, members, SmootherSet([SplineSmoother(self.block[v, c], segments) for c in members]))
                           for v, members, _ in self.groups]
        self.penalty: list[np.ndarray | None] = [None] * len(self.groups)  #: fixed penalties (None: GCV)

    def score(self, w: np.ndarray) -> np.ndarray:
        return aggregate_node(self.block, w, self.code, self.p, self.coverage, self.out).copy()

    def fix_penalty(self, w: np.ndarray | None) -> None:
        """Keep the GCV penalties chosen at weights ``w`` (None: choose them at every evaluation)."""
        self.penalty = [None] * len(self.groups)
        if w is not None and self.measure == "importance":
            y = self.score(w)
            self.penalty = [smoothers.eta(y[v])[1] for v, _, smoothers in self.groups]

    def measures(self, w: np.ndarray) -> np.ndarray:
        y = self.score(w)
        out = np.empty(self.block.shape[1])
        for (v, members, smoothers), penalty in zip(self.groups, self.penalty, strict=True):
            yv = y[v]
            if smoothers is not None:
                out[members] = smoothers.eta(yv, penalty)[0]
                continue
            x = self.block[v][:, members]
            xc, yc = x - x.mean(axis=0), yv - yv.mean()
            with np.errstate(invalid="ignore", divide="ignore"):
                out[members] = (yc @ xc) / np.sqrt((xc * xc).sum(axis=0) * (yc @ yc))
        return out


def _weights(theta: np.ndarray) -> np.ndarray:
    total = theta.sum()
    return theta / total if total > 0 else np.full_like(theta, 1.0 / len(theta))


def _shares(m: np.ndarray) -> np.ndarray:
    total = m.sum()
    return m / total if total != 0 and np.isfinite(total) else np.full_like(m, np.nan)


def _problem(fw, node: str, values: np.ndarray, measure: str, min_units: int) -> str | None:
    """Why a node cannot be optimised (None: it can)."""
    agg = fw.node(node)
    if len(agg.children) < 2:
        return "it has one component: there is no weight to choose"
    position = {n: k for k, n in enumerate(fw.node_ids)}
    for c in agg.children:
        x = values[:, position[c]]
        finite = x[np.isfinite(x)]
        if finite.size < min_units:
            return (f"component {c!r} has {finite.size} unit(s) with a value, fewer than the {min_units} the "
                    "measures need (option min_units)")
        if np.ptp(finite) == 0:
            return f"component {c!r} is constant: its {measure} with the node is undefined"
    return None


def _search(problem: _Node, objective: str, measure: str, before: np.ndarray, target: np.ndarray):
    """Weights w = θ / Σθ, θ in [0, 1], for one node, by bounded least squares (trust region; one more
    residual Σθ − 1 fixes the scale, which the objectives do not see): balance on
    the k residuals share − target; infomax on the k residuals √(1 − m_c²) (correlation) or
    √(1 − η²_c), whose sum of squares k − Σ m² is smallest where Σ m² is largest.  For η² each pass
    keeps the smoothers' penalties chosen at its starting weights (a smooth objective for the
    finite-difference Jacobian); a second pass starts from the first one's weights with the
    penalties chosen there."""
    theta = before.copy()
    fit = None

    def residuals(t):
        m = problem.measures(_weights(t))
        if objective == "balance":
            r = _shares(m) - target
        else:
            r = np.sqrt(np.maximum(1.0 - (m**2 if measure == "correlation" else m), 0.0))
        return np.append(np.where(np.isfinite(r), r, 1.0), t.sum() - 1.0)  # the last one fixes the scale

    from scipy.optimize import least_squares  # here, not at import: `import engine` loads this package

    for _ in range(2 if measure == "importance" else 1):
        problem.fix_penalty(_weights(theta))
        fit = least_squares(residuals, theta, bounds=(0.0, 1.0), diff_step=1e-6, xtol=1e-10, ftol=1e-12)
        theta = fit.x
    problem.fix_penalty(None)
    return fit


def optimise_weights(result: Any, nodes: Sequence[str] | None = None, *, objective: str = "balance",
                     targets: Mapping[str, Mapping[str, float]] | None = None, measure: str = "importance",
                     tolerance: float = 0.02, segments: int = 12, min_units: int = 20, data: Any = None
                     ) -> OptimisedWeights:
    """Weights at aggregate nodes that balance (or maximise) what their components carry.

    Parameters
    ----------
    result
        A :class:`~engine.ScoreResult`, or a framework scored on ``data``.
    nodes
        Aggregates to optimise (default: every aggregate with two or more components), bottom-up.
    objective
        ``"balance"``: the components' shares of the measure match ``targets``; ``"infomax"``: the
        sum of squared measures is as large as possible.
    targets
        ``{node: {component: relative target}}`` for ``balance``; nodes not given get equal targets.
    measure
        ``"importance"`` (correlation ratio η² of the component in the node) or ``"correlation"``
        (Pearson r).
    tolerance
        A balance whose largest |share − target| stays above this is flagged (targets not reached).
    segments, min_units
        Spline segments of the importance measure; fewest units with a value per component (below: the
        node is not optimised, a flag says why).

    Returns
    -------
    OptimisedWeights
        ``weights``, ``components`` (per node and component: ``weight_before``/``weight_after``
        as shares among siblings, ``target``, ``measure_before``/``measure_after``,
        ``share_before``/``share_after``, and per node ``gap`` = largest |share − target|),
        ``ranks``, ``document``/``yaml()``/``write(path)``, ``flags``, ``result``.

    Raises
    ------
    SchemaError
        Unknown objective/measure, a node that is not an aggregate, bad targets (before any work).
    """
    result = as_result(result, data)
    fw, stages = result.framework, result.stages
    chosen = _check(fw, nodes, objective, targets, measure, tolerance)
    weights = dict(stages.weights)
    rows, flags, changed = [], [], {}
    for node in chosen:
        values = aggregate(stages.normalised, fw.compile(weights))
        why = _problem(fw, node, values, measure, min_units)
        if why is not None:
            flags.append(flag("weights", "warning" if nodes is not None else "note", f"not optimised: {why}",
                              node=node))
            continue
        children = fw.node(node).children
        before = np.array([weights[c] for c in children])
        before = before / before.sum()
        given = (targets or {}).get(node)
        target = np.array([given[c] for c in children], float) if given else np.ones(len(children))
        target = target / target.sum()
        problem = _Node(fw, node, values, measure, segments)

        fit = _search(problem, objective, measure, before, target)
        # the file's weights (compile() renormalises them); a framework file needs weights > 0, so a
        # component the optimiser drops keeps the smallest written weight, 10^-DIGITS
        written = np.maximum(np.round(_weights(fit.x), DIGITS), 10.0**-DIGITS)
        after = written / written.sum()
        m_before, m_after = problem.measures(before), problem.measures(after)
        gap = float(np.max(np.abs(_shares(m_after) - target))) if objective == "balance" else None
        for c, w in zip(children, written, strict=True):
            weights[c] = changed[c] = float(w)
        for k, c in enumerate(children):
            rows.append({"node": node, "component": c, "weight_before": float(before[k]),
                         "weight_after": float(after[k]),
                         "target": float(target[k]) if objective == "balance" else None,
                         "measure_before": float(m_before[k]), "measure_after": float(m_after[k]),
                         "share_before": float(_shares(m_before)[k]), "share_after": float(_shares(m_after)[k]),
                         "gap": gap, "converged": bool(fit.success)})
        if gap is not None and gap > tolerance:
            worst = int(np.argmax(np.abs(_shares(m_after) - target)))
            flags.append(flag("weights", "warning", f"the balance cannot reach its targets: the shares of {measure} "
                              f"stay up to {gap:.3f} from them ({children[worst]!r}: "
                              f"{_shares(m_after)[worst]:.3f} against a target of {target[worst]:.3f})",
                              node=node, column=children[worst]))
        for c, w in zip(children, after, strict=True):
            if w < 0.01:
                flags.append(flag("weights", "note", f"{objective} gives {c!r} a weight share of {w:.4f}: it almost "
                                  "drops out", node=node, column=c))
    schema = {"node": pl.String, "component": pl.String, "weight_before": pl.Float64, "weight_after": pl.Float64,
              "target": pl.Float64, "measure_before": pl.Float64, "measure_after": pl.Float64,
              "share_before": pl.Float64, "share_after": pl.Float64, "gap": pl.Float64, "converged": pl.Boolean}
    components = pl.DataFrame(rows, schema=schema, orient="row")
    document = _document(fw, changed)
    new = result
    if changed:
        # the weights the written file gives: a node weighted by entropy/CRITIC/PCA above an optimised
        # one gets its weights again from the new scores, as scoring the file would
        resolved, _ = resolve_weights(framework_from_dict(copy.deepcopy(document)), stages.normalised)
        new = result.reaggregate(set=resolved)
    ranks = rank_shifts(result, {objective: new.stages.ranks[:, -1]}).drop("variant")
    return OptimisedWeights(objective=objective, measure=measure, weights=changed, components=components,
                            ranks=ranks, document=document, flags=flags, result=new)


def _document(fw, weights: Mapping[str, float]) -> dict[str, Any]:
    """The framework document with ``weights`` written on the nodes and their parents' weighting made
    manual (the weights are the file's own from now on)."""
    document = json.loads(json.dumps(dict(fw.document), ensure_ascii=False))
    parents = {fw.node(c).parent for c in weights}
    for node in document["nodes"]:
        if node["id"] in weights:
            node["weight"] = weights[node["id"]]
        if node["id"] in parents:
            node.pop("weighting", None)
    return document


def section(result: ScoreResult, options: dict[str, Any]) -> tuple[dict[str, pl.DataFrame], list[dict[str, Any]]]:
    check(options)
    objectives = options["weight_objectives"]
    objectives = (objectives,) if isinstance(objectives, str) else tuple(objectives)
    tables, flags, ranks, files = {}, [], [], []
    for objective in objectives:
        found = optimise_weights(result, options["weight_nodes"], objective=objective,
                                 targets=options["weight_targets"] if objective == "balance" else None,
                                 measure=options["weight_measure"], tolerance=options["weight_tolerance"],
                                 segments=options["segments"], min_units=options["min_units"])
        tables[objective] = found.components
        ranks.append(found.ranks.with_columns(objective=pl.lit(objective)))
        files.append({"objective": objective, "framework": found.yaml()})
        flags.extend(found.flags)
    if ranks:
        tables["ranks"] = pl.concat(ranks).select("objective", *ranks[0].columns[:-1])
        tables["frameworks"] = pl.DataFrame(files, schema={"objective": pl.String, "framework": pl.String})
    return tables, flags
