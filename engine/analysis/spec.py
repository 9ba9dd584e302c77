"""Uncertainty specification: file → validated :class:`UncertaintySpec` → named factors.

A *factor* is one column of the U(0,1) design: a node's weight noise or range, one coordinate of a
Dirichlet draw, the choice among a list of weight vectors, the normalisation choice, one
aggregation choice, the indicator exclusion, the treatment switch, one value of a pipeline
setting (a registered method parameter, the imputation/treatment/normalisation method of some
indicators, the screening threshold, denominators on/off, the weighting method of some
aggregates).  Monte Carlo draws the columns pseudo-randomly; Sobol analysis draws them from a
scrambled Sobol sequence and groups them.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from .. import methods
from ..errors import SchemaError, preview
from ..resources import load_schema
from ..schema import (
    AGGREGATION_CODES,
    AGGREGATION_DEFAULTS,
    NORMALISATION_DEFAULTS,
    Framework,
    Method,
    check_positive_inputs,
    framework_from_dict,
    needs_positive_inputs,
    parse_document,
)

__all__ = ["UncertaintySpec", "Factor", "load_spec", "read_document", "resolve_factors", "DEFAULT_BLOCK_SIZE",
           "SETTINGS", "apply_settings"]

DEFAULT_BLOCK_SIZE = 8192


@dataclass(frozen=True)
class UncertaintySpec:
    """A validated uncertainty specification (see ``schemas/uncertainty.schema.json``)."""

    replicates: int = 10_000
    seed: int | None = None
    block_size: int = DEFAULT_BLOCK_SIZE
    targets: tuple[str, ...] = ()
    top_k: tuple[int, ...] = (1, 3, 10)
    pairs: tuple[Any, ...] = ()
    tiers: int | None = None
    weights: tuple[Mapping[str, Any], ...] = ()
    normalisation: tuple[Method, ...] = ()
    aggregation: tuple[Mapping[str, Any], ...] = ()
    exclusion: bool = False
    treatment: bool = False
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Pipeline settings varied upstream of normalisation (``settings`` rules, values expanded).
    settings: tuple[Mapping[str, Any], ...] = ()
    #: Alternative weight vectors (``weight_sets``): each maps node ids to weights.
    weight_sets: tuple[Mapping[str, float], ...] = ()
    #: Confidence level of the Sobol indices' bootstrap intervals (None: the analysis default).
    confidence: float | None = None
    document: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**dict(self.document), "replicates": self.replicates, "seed": self.seed,
                "block_size": self.block_size}


@dataclass(frozen=True)
class Factor:
    """One column of the design (or several, for a Dirichlet group)."""

    name: str  #: e.g. ``weight:Conn``, ``normalisation``, ``aggregation:depth1``, ``setting:treatment.winmax``.
    #: noise | range | dirichlet | weight_set | normalisation | aggregation | exclusion | treatment | setting
    #: (a data variant per value) | weighting (a weight vector per value)
    kind: str
    column: int  #: First design column.
    width: int = 1  #: Number of design columns (Dirichlet groups use one per sibling).
    nodes: tuple[str, ...] = ()  #: Nodes the factor acts on.
    params: Mapping[str, Any] = field(default_factory=dict)


def _method(kind: str, spec: Any, defaults: dict[str, dict[str, Any]], where: str) -> Method:
    spec = {"method": spec} if isinstance(spec, str) else dict(spec)
    name = spec.pop("method", None)
    if name not in defaults:
        raise SchemaError(f"unknown {kind} method {name!r} in {where}", path=None,
                          fix=f"use one of {', '.join(defaults)}")
    return Method(name, {**defaults[name], **spec})


def read_document(source: str | Path | Mapping[str, Any] | None, kind: str, overrides: Mapping[str, Any]
                  ) -> dict[str, Any]:
    """A specification document from a YAML/JSON file, a dict or nothing, with ``overrides``
    applied (when not None) and validated against ``schemas/<kind>.schema.json``."""
    if source is None:
        document = {}
    elif isinstance(source, Mapping):
        document = dict(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise SchemaError(f"{kind} specification not found", path=str(path), fix="check the path")
        text = path.read_text(encoding="utf-8")
        document = parse_document(text, str(path), is_json=path.suffix.lower() == ".json") or {}
    document.update({k: v for k, v in overrides.items() if v is not None})
    errors = sorted(Draft202012Validator(load_schema(kind)).iter_errors(document),
                    key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise SchemaError(f"invalid {kind} specification at {where}: {err.message}",
                          fix=f"see schemas/{kind}.schema.json and docs/{DOCS[kind]}")
    return document


#: The page documenting each kind of specification.
DOCS = {"uncertainty": "uncertainty.md", "bootstrap": "bootstrap.md"}


def load_spec(source: str | Path | Mapping[str, Any] | UncertaintySpec | None, **overrides: Any) -> UncertaintySpec:
    """Load and validate a specification from a YAML/JSON file, a dict or nothing (defaults).

    ``overrides`` (e.g. ``replicates``, ``seed``, ``block_size`` from the command line) replace
    the file's values when not None."""
    document = read_document(source.document if isinstance(source, UncertaintySpec) else source, "uncertainty",
                             overrides)
    for rule in document.get("weights", []):
        if ("depth" in rule) == ("nodes" in rule):
            raise SchemaError(f"weight rule {rule} must give exactly one of `depth` or `nodes`",
                              fix="select the nodes by depth (1 = dimensions) or list them")
        if sum(k in rule for k in ("noise", "dirichlet", "range")) != 1:
            raise SchemaError(f"weight rule {rule} must give exactly one of `noise`, `dirichlet`, `range`",
                              fix="e.g. {depth: 1, noise: 0.25}")
        if "range" in rule and not rule["range"][0] < rule["range"][1]:
            raise SchemaError(f"weight range {rule['range']} must have low < high", fix="write [low, high]")
    for rule in document.get("aggregation", []):
        if ("depth" in rule) == ("nodes" in rule):
            raise SchemaError(f"aggregation rule {rule} must give exactly one of `depth` or `nodes`",
                              fix="select the aggregate nodes by depth (0 = the index) or list them")
    settings = tuple(_setting_rule(k, rule) for k, rule in enumerate(document.get("settings", ())))
    if settings and document.get("normalisation") and any(r["setting"].startswith("normalisation.")
                                                          for r in settings):
        raise SchemaError("normalisation settings cannot be varied together with normalisation.choices "
                          "(a choice replaces every indicator's normalisation)",
                          fix="vary normalisation through one of them: list the methods with their parameters as "
                          "choices, e.g. [{method: minmax, range: [0, 100]}, {method: minmax, range: [1, 100]}]")
    return UncertaintySpec(
        replicates=int(document.get("replicates", 10_000)),
        seed=document.get("seed"),
        block_size=int(document.get("block_size", DEFAULT_BLOCK_SIZE)),
        targets=tuple(document.get("targets", ())),
        top_k=tuple(document.get("top_k", (1, 3, 10))),
        pairs=tuple(document.get("pairs", ())),
        tiers=document.get("tiers"),
        weights=tuple(document.get("weights", ())),
        normalisation=tuple(_method("normalisation", c, NORMALISATION_DEFAULTS, "normalisation.choices")
                            for c in document.get("normalisation", {}).get("choices", ())),
        aggregation=tuple(document.get("aggregation", ())),
        exclusion=bool(document.get("exclusion", False)),
        treatment=bool(document.get("treatment", False)),
        groups={k: tuple(v) for k, v in document.get("groups", {}).items()},
        settings=settings,
        weight_sets=tuple(dict(w) for w in document.get("weight_sets", ())),
        confidence=document.get("confidence"),
        document=document,
    )


def _setting_names() -> dict[str, str]:
    """Every setting a spec can vary: the method and every registered parameter of the imputation,
    treatment and normalisation families (:mod:`engine.methods`), the screening threshold and the
    denominators."""
    out = {}
    for family in ("imputation", "treatment", "normalisation"):
        out[f"{family}.method"] = f"the {family} method of the indicators"
        takers: dict[str, list[str]] = {}
        for method in methods.FAMILIES[family].values():
            for name in sorted(method.parameters):
                takers.setdefault(name, []).append(method.name)
        for name, users in sorted(takers.items()):
            out[f"{family}.{name}"] = f"the {family} parameter {name!r} ({', '.join(users)})"
    out["weighting.method"] = "how the children of aggregate nodes are weighted (manual, equal, ahp, entropy, ...)"
    out["screening.min_coverage"] = "the unit screening threshold (share of indicators present; null: no screening)"
    out["denomination.enabled"] = "whether the indicators are divided by their denominators (true/false)"
    return out


#: Pipeline settings a spec's ``settings`` rules can vary: ``<stage>.<parameter>`` → what it is.
SETTINGS: Mapping[str, str] = _setting_names()


def _setting_rule(k: int, rule: Mapping[str, Any]) -> dict[str, Any]:
    """A ``settings`` rule with its levels expanded: ``values`` as given, or ``range: [lo, hi]``
    (every integer, or ``levels`` evenly spaced values)."""
    name = rule["setting"]
    if name not in SETTINGS:
        raise SchemaError(f"settings[{k}]: unknown setting {name!r}", fix=f"use one of {', '.join(SETTINGS)}")
    if ("values" in rule) == ("range" in rule):
        raise SchemaError(f"settings[{k}] ({name}) must give exactly one of `values` or `range`",
                          fix="e.g. {setting: treatment.winmax, values: [1, 3, 5]} or range: [1, 5]")
    if "levels" in rule and "range" not in rule:
        raise SchemaError(f"settings[{k}] ({name}): `levels` goes with `range`", fix="remove `levels` or use `range`")
    if "values" in rule:
        values = list(rule["values"])
    else:
        lo, hi = rule["range"]
        if not lo < hi:
            raise SchemaError(f"settings[{k}] ({name}): range {rule['range']} must have low < high",
                              fix="write [low, high]")
        if "levels" in rule:
            n = int(rule["levels"])
            values = [lo + (hi - lo) * i / (n - 1) for i in range(n)]
        elif all(isinstance(v, int) for v in (lo, hi)):
            values = list(range(lo, hi + 1))
        else:
            raise SchemaError(f"settings[{k}] ({name}): range {rule['range']} of non-integers needs `levels`",
                              fix="add levels: <number of evenly spaced values>, e.g. levels: 5")
    if name == "denomination.enabled" and not all(isinstance(v, bool) for v in values):
        raise SchemaError(f"settings[{k}]: denomination.enabled takes true or false, got {values!r}",
                          fix="write values: [true, false]")
    if name in ("screening.min_coverage", "weighting.method") and "indicators" in rule:
        raise SchemaError(f"settings[{k}]: {name} does not apply to indicators",
                          fix="remove `indicators` (weighting.method selects aggregate `nodes`)")
    if "nodes" in rule and name != "weighting.method":
        raise SchemaError(f"settings[{k}]: `nodes` selects the aggregates of weighting.method, not of {name}",
                          fix="select indicators with `indicators`")
    return {"setting": name, "values": tuple(values),
            **{key: tuple(rule[key]) for key in ("indicators", "nodes") if key in rule}}


def resolve_factors(spec: UncertaintySpec, framework: Framework) -> list[Factor]:
    """Turn the spec's rules into design columns, checking every node name against the framework."""
    factors: list[Factor] = []
    column = 0
    ids = set(framework.node_ids)
    aggregates = {a.id for a in framework.aggregates}
    taken: dict[str, int] = {}

    def select(rule: Mapping[str, Any], kind: str, pool: set[str]) -> list[str]:
        if "nodes" in rule:
            unknown = [n for n in rule["nodes"] if n not in pool]
            if unknown:
                raise SchemaError(f"{kind} rule names unknown or unsuitable node(s) {preview(unknown)}",
                                  node=unknown[0], fix=f"use node ids of the framework, e.g. {sorted(pool)[:3]}")
            return list(rule["nodes"])
        chosen = [n for n in framework.node_ids if n in pool and framework.depth(n) == rule["depth"]]
        if not chosen:
            raise SchemaError(f"{kind} rule: no node at depth {rule['depth']}",
                              fix="depth 0 is the index, 1 its children, and so on")
        return chosen

    for k, rule in enumerate(spec.weights):
        nodes = select(rule, "weight", ids - {framework.root.id})
        for n in nodes:
            if n in taken:
                raise SchemaError(f"node's weight is varied by two rules (#{taken[n]} and #{k})", node=n,
                                  fix="keep one rule per node")
            taken[n] = k
        if "dirichlet" in rule:
            by_parent: dict[str, list[str]] = {}
            for n in nodes:
                by_parent.setdefault(framework.node(n).parent, []).append(n)
            for parent, members in by_parent.items():
                siblings = framework.node(parent).children
                if sorted(members) != sorted(siblings):
                    raise SchemaError("a Dirichlet rule must cover whole sibling groups", node=parent,
                                      fix=f"include all of {list(siblings)} or use noise/range")
                factors.append(Factor(f"dirichlet:{parent}", "dirichlet", column, len(members), tuple(members),
                                      {"concentration": float(rule["dirichlet"])}))
                column += len(members)
        else:
            for n in nodes:
                kind = "noise" if "noise" in rule else "range"
                params = {"noise": float(rule["noise"])} if kind == "noise" else {"range": tuple(rule["range"])}
                factors.append(Factor(f"weight:{n}", kind, column, 1, (n,), params))
                column += 1
    if spec.weight_sets:
        factors.append(_weight_sets(spec.weight_sets, framework, taken, column))
        column += 1
    if spec.normalisation:
        factors.append(Factor("normalisation", "normalisation", column, 1, (),
                              {"choices": spec.normalisation}))
        column += 1
    for k, rule in enumerate(spec.aggregation):
        nodes = select(rule, "aggregation", aggregates)
        choices = [_method("aggregation", c, AGGREGATION_DEFAULTS, f"aggregation[{k}]") for c in rule["choices"]]
        for c in choices:
            if c.name == "generalised" and "p" not in c.params:
                raise SchemaError("a generalised-mean choice needs `p`", fix="write {method: generalised, p: 2}")
        label = f"depth{rule['depth']}" if "depth" in rule else "+".join(nodes)
        factors.append(Factor(f"aggregation:{label}", "aggregation", column, 1, tuple(nodes),
                              {"choices": tuple(choices), "codes": tuple(AGGREGATION_CODES[c.name] for c in choices),
                               "p": tuple(float(c.params.get("p", 1.0)) for c in choices)}))
        column += 1
    if spec.exclusion:
        factors.append(Factor("exclusion", "exclusion", column))
        column += 1
    if spec.treatment:
        if all(i.treatment.name == "none" for i in framework.indicators):
            raise SchemaError("treatment on/off varies nothing: the framework treats no indicator",
                              fix="remove `treatment: true` or give the framework a treatment")
        factors.append(Factor("treatment", "treatment", column))
        column += 1
    varied: dict[tuple[str, str, str], str] = {}  # (node or "", stage, parameter) -> the rule varying it
    weighted = set(taken) | {n for f in factors if f.kind == "weight_set" for n in f.nodes}
    for rule in spec.settings:
        factors.append(_setting_factor(rule, framework, varied, column, weighted))
        column += 1
    for target in spec.targets:
        if target not in aggregates:
            raise SchemaError("target is not an aggregate node", node=target,
                              fix=f"use the index {framework.root.id!r} or one of its aggregates")
    _check_combinations(framework, spec.normalisation, [f for f in factors if f.kind == "aggregation"])
    names = {f.name for f in factors}
    for group, members in spec.groups.items():
        unknown = [m for m in members if m not in names]
        if unknown:
            raise SchemaError(f"group {group!r} names unknown factor(s) {preview(unknown)}",
                              fix=f"factors are: {', '.join(sorted(names))}")
    return factors


def _weight_sets(sets: tuple[Mapping[str, float], ...], framework: Framework, taken: Mapping[str, int],
                 column: int) -> Factor:
    """The factor choosing one of ``sets`` (node → weight; nodes a set leaves out keep their
    weight), each checked against the framework: known non-root nodes, weights finite and >= 0,
    not all zero within a sibling group, no node also varied by a weight rule."""
    suitable = set(framework.node_ids) - {framework.root.id}
    for k, weights in enumerate(sets):
        unknown = [n for n in weights if n not in suitable]
        if unknown:
            raise SchemaError(f"weight_sets[{k}] names unknown or unsuitable node(s) {preview(unknown)}",
                              node=unknown[0], fix=f"use node ids of the framework other than the index "
                              f"{framework.root.id!r}, e.g. {sorted(suitable)[:3]}")
        bad = [n for n, w in weights.items() if not (isinstance(w, int | float) and math.isfinite(w) and w >= 0)]
        if bad:
            raise SchemaError(f"weight_sets[{k}]: the weight of {bad[0]!r} is {weights[bad[0]]!r}; weights must be "
                              "finite numbers >= 0", node=bad[0], fix="give every node a weight >= 0")
        for parent in {framework.node(n).parent for n in weights}:
            siblings = framework.node(parent).children
            if sum(weights.get(c, framework.node(c).weight) for c in siblings) <= 0:
                raise SchemaError(f"weight_sets[{k}] gives every child of {parent!r} weight 0", node=parent,
                                  fix=f"give one of {list(siblings)} a positive weight")
        both = [n for n in weights if n in taken]
        if both:
            raise SchemaError(f"weight_sets[{k}] sets the weight of a node a weight rule varies", node=both[0],
                              fix="vary each node's weight by one rule: remove it from the weight rules or the sets")
    nodes = tuple(n for n in framework.node_ids if any(n in w for w in sets))
    return Factor("weight_sets", "weight_set", column, 1, nodes, {"sets": tuple(dict(w) for w in sets)})


def _setting_factor(rule: Mapping[str, Any], framework: Framework, varied: dict[tuple[str, str, str], str],
                    column: int, weighted: set[str]) -> Factor:
    """The factor of one ``settings`` rule: its indicators (the listed ones, else every indicator the
    setting applies to) or, for ``weighting.method``, its aggregates (default all) checked, and
    every value checked by building the framework with it.  ``weighted``: nodes whose weight a
    weight rule or weight set varies (their parent's weighting cannot vary too)."""
    setting = rule["setting"]
    stage, parameter = setting.split(".")
    indicator_ids = [i.id for i in framework.indicators]
    extra: dict[str, Any] = {}
    if stage == "screening":
        nodes: list[str] = []
    elif stage == "weighting":
        aggregates = [a.id for a in framework.aggregates]
        nodes = list(rule.get("nodes") or aggregates)
        unknown = [n for n in nodes if n not in aggregates]
        if unknown:
            raise SchemaError(f"setting {setting} names node(s) that are not aggregates: {preview(unknown)}",
                              node=unknown[0], fix=f"name aggregate nodes, e.g. {aggregates[-3:]}")
        extra["children"] = tuple(c for n in framework.node_ids if n in nodes for c in framework.node(n).children)
        both = [c for c in extra["children"] if c in weighted]
        if both:
            raise SchemaError(f"setting {setting} reweights a node whose weight a weight rule or weight set varies",
                              node=both[0], fix="vary each weight one way: remove the node from the weight rules "
                              "or sets, or its parent from the setting's `nodes`")
    else:
        listed = rule.get("indicators")
        unknown = [n for n in listed or () if n not in indicator_ids]
        if unknown:
            raise SchemaError(f"setting {setting} names unknown indicator(s) {preview(unknown)}", node=unknown[0],
                              fix=f"use indicator ids of the framework, e.g. {indicator_ids[:3]}")

        def applies(node: str) -> bool:
            ind = framework.node(node)
            if stage == "denomination":
                return ind.denominator is not None
            if parameter == "method":
                return True
            return parameter in methods.FAMILIES[stage][getattr(ind, stage).name].parameters

        nodes = [n for n in listed or indicator_ids if applies(n)]
        if listed and len(nodes) < len(listed):
            node = next(n for n in listed if n not in nodes)
            what = "no denominator" if stage == "denomination" else \
                f"{stage} {getattr(framework.node(node), stage).name!r}, which takes no {parameter!r}"
            raise SchemaError(f"setting {setting} does not apply to {node!r}: it has {what}", node=node,
                              fix=f"list only indicators it applies to, or set their {stage} method first")
        if not nodes:
            raise SchemaError(f"setting {setting} applies to no indicator of the framework",
                              fix="remove the rule, or name the indicators whose method takes the parameter")
    label = f"{setting}:{'+'.join(nodes)}" if "indicators" in rule or "nodes" in rule else setting
    for node in nodes or [""]:
        # one rule per parameter, and a method varied alone (its parameters come with its values)
        clash = [other for (n, s, p), other in varied.items() if n == node and s == stage and (
            p == parameter or "method" in (p, parameter))]
        if clash:
            raise SchemaError(f"the {stage} of {node or 'the units'} is varied by two settings ({clash[0]} and "
                              f"{label})", node=node or None, fix="vary each parameter by one rule (give a varied "
                              "method its parameters in its values, e.g. {method: skew_kurtosis, winmax: 3})")
        varied[node, stage, parameter] = label
    factor = Factor(f"setting:{label}", "weighting" if stage == "weighting" else "setting", column, 1, tuple(nodes),
                    {"setting": setting, "stage": stage, "parameter": parameter, "values": rule["values"], **extra})
    for value in factor.params["values"]:
        try:
            apply_settings(framework, [(factor, value)])
        except SchemaError as err:
            raise SchemaError(f"setting {setting} = {value!r}: {err.message}", node=err.node,
                              fix=err.fix or f"use values {stage} accepts (see docs/frameworks.md)") from err
    return factor


def apply_settings(framework: Framework, choices: list[tuple[Factor, Any]]) -> Framework:
    """The framework with the settings of ``choices`` (setting factor, value) applied to its
    document, rebuilt and validated as a framework file would be (so every value meets the
    framework's own checks)."""
    if not choices:
        return framework
    document = json.loads(json.dumps(dict(framework.document)))
    nodes = {n["id"]: n for n in document["nodes"]}
    edited: dict[tuple[str, str], dict[str, Any]] = {}  # (node, stage) -> its method spec so far
    for factor, value in choices:
        stage, parameter = factor.params["stage"], factor.params["parameter"]
        if stage == "screening":
            document.pop("screening", None)
            if value is not None:
                document["screening"] = {"min_coverage": value}
            continue
        for node in factor.nodes:
            if stage == "denomination":
                if not value:
                    nodes[node].pop("denominator", None)
                    nodes[node].pop("scale_factor", None)
            elif parameter == "method":  # an indicator's imputation/treatment/normalisation, an aggregate's weighting
                nodes[node][stage] = {"method": value} if isinstance(value, str) else value
            else:
                spec = edited.setdefault((node, stage), getattr(framework.node(node), stage).to_dict())
                spec[parameter] = value
                nodes[node][stage] = spec
    return framework_from_dict(document, path=framework.path)


def _check_combinations(framework: Framework, normalisation: tuple[Method, ...], rules: list[Factor]) -> None:
    """Refuse a spec whose alternatives can meet in a replicate the framework validator would refuse
    (:func:`engine.schema.check_positive_inputs`: a geometric/harmonic/power mean with p <= 0 over a
    child that can be negative — z-scores, a minmax range below 0, Copeland scores), instead of
    leaving those replicates' ranks missing.

    For every aggregate that can draw such a mean, every combination of the factors that decide its
    check is tried: the normalisation choice (applied to every indicator), its own aggregation rule
    and the rules below it that can draw ``copeland`` (any other choice of a rule below it is
    equivalent here).  A rule varies all its nodes together, so only combinations that occur are tried."""
    norm_options: list[Method | None] = list(normalisation) or [None]
    rule_of = {node: k for k, rule in enumerate(rules) for node in rule.nodes}
    base = {node: rule.params["choices"][0] for rule in rules for node in rule.nodes}

    def below(node_id: str) -> list[str]:
        node = framework.node(node_id)
        return [d for c in getattr(node, "children", ()) for d in (c, *below(c))]

    for agg in framework.aggregates:
        own = rules[rule_of[agg.id]].params["choices"] if agg.id in rule_of else (agg.aggregation,)
        if not any(needs_positive_inputs(method) for method in own):
            continue
        relevant = sorted({rule_of[n] for n in (agg.id, *below(agg.id)) if n in rule_of and (
            n == agg.id or any(c.name == "copeland" for c in rules[rule_of[n]].params["choices"]))})
        for norm, picks in itertools.product(norm_options,
                                             itertools.product(*(rules[k].params["choices"] for k in relevant))):
            methods = base | {node: pick for k, pick in zip(relevant, picks, strict=True) for node in rules[k].nodes}
            variant = replace(
                framework,
                indicators=framework.indicators if norm is None else tuple(
                    replace(ind, normalisation=norm) for ind in framework.indicators),
                aggregates=tuple(replace(a, aggregation=methods[a.id]) if a.id in methods else a
                                 for a in framework.aggregates))
            try:
                check_positive_inputs(variant, None, [variant.node(agg.id)])
            except SchemaError as err:
                chosen = [f"normalisation {norm.name!r}"] if norm is not None and _passes(
                    replace(variant, indicators=framework.indicators), agg.id) else []
                chosen += [f"{rules[k].name} {pick.name!r}" for k, pick in zip(relevant, picks, strict=True)
                           if agg.id in rules[k].nodes or pick.name == "copeland"]
                raise SchemaError(f"the uncertainty alternatives {', '.join(chosen)} cannot be combined: "
                                  f"{err.message}; every replicate drawing them would leave the ranks missing",
                                  node=err.node, fix="remove one of them from its `choices` (e.g. zscore or copeland "
                                  "under a geometric/harmonic mean: use minmax with range [1, 100], rank or "
                                  "arithmetic)") from err


def _passes(framework: Framework, node: str) -> bool:
    """Whether ``node`` passes :func:`engine.schema.check_positive_inputs`."""
    try:
        check_positive_inputs(framework, None, [framework.node(node)])
    except SchemaError:
        return False
    return True
