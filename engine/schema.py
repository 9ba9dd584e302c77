"""Framework files: load, validate against ``schemas/framework.schema.json``, and freeze.

A framework is a flat list of nodes in which every node but the root names its ``parent``; a
node with a ``column`` is an indicator.  Loading checks, in this order: readable YAML/JSON with no
recursive aliases → JSON Schema (unknown keys, types, non-positive weights) → ids unique → one
root → parents exist → no cycles → indicator/aggregate key consistency → method parameters.
Every failure is a :class:`~engine.errors.SchemaError` naming the node and the fix.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import yaml
from jsonschema import Draft202012Validator

from . import methods
from .errors import SchemaError, preview
from .resources import load_schema, shipped_frameworks

__all__ = [
    "Method",
    "Indicator",
    "Aggregate",
    "Framework",
    "CompiledTree",
    "load_framework",
    "framework_from_dict",
    "NORMALISATION_DEFAULTS",
]

#: Parameter defaults of every method, by family (derived from the registry, :mod:`engine.methods`).
NORMALISATION_DEFAULTS: dict[str, dict[str, Any]] = methods.defaults(methods.NORMALISATION)
TREATMENT_DEFAULTS: dict[str, dict[str, Any]] = methods.defaults(methods.TREATMENT)
IMPUTATION_DEFAULTS: dict[str, dict[str, Any]] = methods.defaults(methods.IMPUTATION)
AGGREGATION_DEFAULTS: dict[str, dict[str, Any]] = methods.defaults(methods.AGGREGATION)
#: Aggregation codes used by the kernels (engine.kernels.aggregate).
AGGREGATION_CODES = methods.codes(methods.AGGREGATION)

_INDICATOR_ONLY = ("column", "components", "direction", "unit", "range", "denominator", "scale_factor",
                   "imputation", "treatment", "normalisation")
_AGGREGATE_ONLY = ("aggregation", "min_coverage", "weighting", "renormalise")
#: Weighting methods computed from the data (the children's scores) rather than the file.
DATA_DRIVEN_WEIGHTING = ("entropy", "critic", "pca")


@dataclass(frozen=True)
class Method:
    """A stage method and its resolved parameters (defaults filled in)."""

    #: Registry key of the method, e.g. ``"minmax"``.
    name: str
    #: Parameters with defaults filled in (read-only mapping).
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.name, **{k: _plain(v) for k, v in self.params.items()}}


@dataclass(frozen=True)
class Indicator:
    """A leaf of the tree: one data column and how it is prepared."""

    id: str  #: Unique node id.
    parent: str  #: Id of the parent node.
    labels: Mapping[str, str]  #: ``{"en": ..., "zh": ...}``.
    weight: float  #: Weight relative to siblings, as written in the file.
    column: str | None  #: Raw data column (None when the value is a weighted sum of ``components``).
    direction: int  #: +1 more is better, -1 less is better.
    unit: str | None
    denominator: str | None
    scale_factor: float
    imputation: Method
    treatment: Method
    normalisation: Method
    components: Mapping[str, float] | None = None  #: ``{column: weight}`` summed into the raw value.
    #: Declared plausible range ``(low, high)`` of the value (None = open end), or None.
    range: tuple[float | None, float | None] | None = None

    @property
    def source_columns(self) -> tuple[str, ...]:
        """The data columns this indicator reads (its column, or its components)."""
        return tuple(self.components) if self.components else (self.column,)


@dataclass(frozen=True)
class Aggregate:
    """A non-leaf node: aggregates its children."""

    id: str
    parent: str | None  #: None for the root.
    labels: Mapping[str, str]
    weight: float
    aggregation: Method
    min_coverage: float
    children: tuple[str, ...]  #: Child ids in file order.
    weighting: Method = field(default_factory=lambda: Method("manual"))  #: How children's weights are set.
    #: False: the children's weights apply as written (index only; :func:`engine.stages.rescale`).
    renormalise: bool = True


@dataclass(frozen=True)
class CompiledTree:
    """The aggregation tree as flat arrays for the kernels.

    Columns of the value matrix are the indicators (``0 .. n_indicators-1``, in framework order)
    followed by the aggregates in post-order (children before parents; the root is last).
    """

    n_indicators: int
    child_ptr: np.ndarray  #: int64 (n_aggregates + 1,): CSR offsets into child_idx.
    child_idx: np.ndarray  #: int64: value-matrix column of each child.
    child_weight: np.ndarray  #: float64: weight of each child, renormalised to sum 1 per parent.
    method: np.ndarray  #: int64 (n_aggregates,): AGGREGATION_CODES.
    param: np.ndarray  #: float64 (n_aggregates,): exponent p of the generalised mean.
    min_coverage: np.ndarray  #: float64 (n_aggregates,).

    @property
    def n_aggregates(self) -> int:
        return len(self.method)

    @property
    def n_nodes(self) -> int:
        return self.n_indicators + self.n_aggregates


@dataclass(frozen=True)
class Framework:
    """A validated, immutable index framework."""

    id: str
    labels: Mapping[str, str]
    description: str
    source: str
    data: Mapping[str, Any]  #: Data hints (unit, unit_label, groups, dataset, synthetic).
    indicators: tuple[Indicator, ...]  #: In file order.
    aggregates: tuple[Aggregate, ...]  #: Post-order: children before parents, root last.
    rescale: Method
    screening: float | None  #: Unit screening threshold, or None.
    tiers: Mapping[str, Any] | None  #: ``{"k", "node", "method"}`` or None.
    constant_indicator: str
    document: Mapping[str, Any]  #: The validated document as loaded.
    path: str | None
    digest: str  #: sha256 of the canonical JSON of the document.

    # -- tree queries -------------------------------------------------------------------------
    @property
    def root(self) -> Aggregate:
        return self.aggregates[-1]

    @property
    def node_ids(self) -> tuple[str, ...]:
        """Ids in value-matrix column order: indicators, then aggregates in post-order."""
        return tuple(i.id for i in self.indicators) + tuple(a.id for a in self.aggregates)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every data column the framework reads (indicators and denominators), no repeats."""
        seen: dict[str, None] = {}
        for ind in self.indicators:
            for column in ind.source_columns:
                seen[column] = None
            if ind.denominator:
                seen[ind.denominator] = None
        return tuple(seen)

    def node(self, node_id: str) -> Indicator | Aggregate:
        for node in (*self.indicators, *self.aggregates):
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def depth(self, node_id: str) -> int:
        """Distance from the root (root = 0)."""
        depth, node = 0, self.node(node_id)
        while node.parent is not None:
            node, depth = self.node(node.parent), depth + 1
        return depth

    def compile(self, weights: Mapping[str, float] | None = None) -> CompiledTree:
        """Flatten the tree for the kernels, optionally with replacement weights by node id."""
        position = {node_id: k for k, node_id in enumerate(self.node_ids)}
        local = self.local_weights(weights)
        ptr, idx, wts, method, param, cover = [0], [], [], [], [], []
        for agg in self.aggregates:
            idx.extend(position[c] for c in agg.children)
            wts.extend(local[c] for c in agg.children)
            ptr.append(len(idx))
            method.append(AGGREGATION_CODES[agg.aggregation.name])
            param.append(float(agg.aggregation.params.get("p", 1.0)))
            cover.append(agg.min_coverage)
        return CompiledTree(
            n_indicators=len(self.indicators),
            child_ptr=np.asarray(ptr, np.int64),
            child_idx=np.asarray(idx, np.int64),
            child_weight=np.asarray(wts, np.float64),
            method=np.asarray(method, np.int64),
            param=np.asarray(param, np.float64),
            min_coverage=np.asarray(cover, np.float64),
        )

    def local_weights(self, weights: Mapping[str, float] | None = None) -> dict[str, float]:
        """Every non-root node's share among its siblings, ``w / Σ siblings' w`` (NaN when they all
        weigh 0): the one sibling renormalisation of the Python layer (the Monte Carlo kernels'
        is :func:`engine.kernels.montecarlo.local_weights`, which also drops an excluded indicator).

        ``weights`` replaces the file's weights by node id (e.g. resolved AHP/entropy weights)."""
        local: dict[str, float] = {}
        for agg in self.aggregates:
            raw = np.array([(weights or {}).get(c, self.node(c).weight) for c in agg.children], float)
            total = raw.sum()
            local.update(zip(agg.children, (raw / total if total > 0 else np.full(raw.shape, np.nan)).tolist(),
                             strict=True))
        return local

    def effective_weights(self, weights: Mapping[str, float] | None = None) -> dict[str, float]:
        """Global weight of every indicator: product of sibling-normalised weights
        (:meth:`local_weights`) to the root.

        ``weights`` replaces the file's weights by node id (e.g. resolved AHP/entropy weights)."""
        local = self.local_weights(weights)
        result = {}
        for ind in self.indicators:
            w, node = 1.0, ind
            while node.parent is not None:
                w *= local[node.id]
                node = self.node(node.parent)
            result[ind.id] = w
        return result


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------

def load_framework(path_or_name: str | Path | Framework | Mapping[str, Any]) -> Framework:
    """Load a framework from a YAML/JSON file, by the name of a shipped framework, or from a mapping.

    Parameters
    ----------
    path_or_name
        A path to a ``.yaml``/``.yml``/``.json`` file, or the name of a shipped framework
        (``cityrank frameworks`` lists them).  A :class:`Framework` is returned unchanged; a mapping
        (the document as a Python dict) is validated like a file (:func:`framework_from_dict`).

    Raises
    ------
    SchemaError
        The file is missing, unreadable or invalid; the message names the node and the fix.
    """
    if isinstance(path_or_name, Framework):
        return path_or_name
    if isinstance(path_or_name, Mapping):
        return framework_from_dict(copy.deepcopy(dict(path_or_name)))
    if not isinstance(path_or_name, str | Path):
        raise SchemaError(f"a framework must be a file path, a shipped framework's name, a mapping or a Framework, "
                          f"not {type(path_or_name).__name__}", fix="e.g. engine.score('asem')")
    text = str(path_or_name)
    shipped = shipped_frameworks()
    path = Path(text)
    try:
        exists = path.exists()
    except OSError:  # e.g. a name longer than the file system allows
        exists = False
    if not exists:
        if text in shipped:
            path = shipped[text]
        else:
            raise SchemaError(
                f"no framework file or shipped framework named {text!r}",
                path=text,
                fix=f"give a path to a YAML/JSON file or one of: {', '.join(shipped) or '(none shipped)'}",
            )
    try:
        raw_text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"cannot read the file ({exc})", path=str(path),
                          fix="check the path and that the file is UTF-8 text") from exc
    return _framework_from_text(raw_text, str(path), path.suffix.lower() == ".json")


def _framework_from_text(raw_text: str, path: str, is_json: bool) -> Framework:
    """A framework from a file's text: the parsed, validated document is cached on the text
    (:func:`_validated_document`), and every call builds its own Framework from a copy of it, so
    no caller can change what another load returns."""
    return _build(copy.deepcopy(_validated_document(raw_text, path, is_json)), path)


@functools.lru_cache(maxsize=32)
def _validated_document(raw_text: str, path: str, is_json: bool) -> Any:
    """Parse a framework file's text and run the document checks (cycles, JSON Schema, non-finite
    numbers).  Cached on the text itself (and the path it is reported under): loading the same
    file again — every analysis run starts with a nominal run — skips the parse and the JSON
    Schema validation; an edited file is new text, so it is always validated, and a
    file that fails raises every time (errors are not cached)."""
    document = parse_document(raw_text, path, is_json=is_json)
    _validate_document(document, path)
    return document


#: libyaml's safe loader when PyYAML was built with it (the same documents, several times faster on
#: a framework file), else the pure-Python one.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


#: Deepest nesting a framework or specification file may have (a real one is under 10 levels).
MAX_DEPTH = 100
#: Nodes YAML aliases may add: at most this many, or as many as the file writes out if that is more.
MAX_ALIAS_NODES = 10_000


def parse_yaml(text: str, path: str | None = None) -> Any:
    """``yaml.safe_load(text)`` (libyaml's parser when available), after :func:`_scan_yaml` has
    refused alias bombs, recursive aliases and deep nesting without building anything."""
    _scan_yaml(text, path)
    return yaml.load(text, Loader=_YAML_LOADER)


def parse_document(text: str, path: str | None, *, is_json: bool) -> Any:
    """The one parser of framework and specification files (YAML or JSON text).

    Raises
    ------
    SchemaError
        Invalid syntax; nesting deeper than :data:`MAX_DEPTH`; YAML aliases that refer to
        themselves or expand beyond :data:`MAX_ALIAS_NODES` nodes (checked on the parser's
        events, before any alias is expanded)."""
    try:
        document = json.loads(text) if is_json else parse_yaml(text, path)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise SchemaError(f"not valid YAML/JSON: {exc}", path=path, fix="fix the syntax at the position given") from exc
    except RecursionError:
        document = None  # JSON nested deeper than Python's recursion limit
    if (document is None and is_json) or _depth(document) > MAX_DEPTH:
        raise _too_deep(path)
    return document


def _too_deep(path: str | None) -> SchemaError:
    return SchemaError(f"the document is nested more than {MAX_DEPTH} levels deep", path=path,
                       fix="a framework or specification is a few levels deep: check the brackets/indentation")


def _depth(obj: Any) -> int:
    """Nesting depth of lists and dicts, without recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list) and depth <= MAX_DEPTH + 1:
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return deepest


def _scan_yaml(text: str, path: str | None) -> None:
    """Walk the parser's events (no node is built): refuse nesting deeper than MAX_DEPTH, an alias
    inside the collection it names (a cycle), and aliases that would add more than
    max(MAX_ALIAS_NODES, nodes written out) nodes — a 600-byte "billion laughs" file expands to
    10⁹ nodes."""
    sizes: dict[str, int] = {}  # anchor -> nodes it stands for, aliases expanded
    stack: list[list[Any]] = []  # open collections: [anchor, nodes so far]
    written = added = 0
    for event in yaml.parse(text, Loader=_YAML_LOADER):
        if isinstance(event, yaml.CollectionStartEvent):
            stack.append([event.anchor, 1])
            written += 1
            if len(stack) > MAX_DEPTH:
                raise _too_deep(path)
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            anchor, size = stack.pop()
        elif isinstance(event, yaml.ScalarEvent):
            anchor, size = event.anchor, 1
            written += 1
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in sizes:
                if any(open_anchor == event.anchor for open_anchor, _ in stack):
                    raise SchemaError("the document refers to itself through a YAML alias (a cycle)", path=path,
                                      fix="replace the recursive alias (*name) by a plain value")
                continue  # an undefined alias: the loader reports it
            anchor, size = None, sizes[event.anchor]
            added += size
            if added > max(MAX_ALIAS_NODES, written):
                raise SchemaError(f"YAML aliases expand to more than {max(MAX_ALIAS_NODES, written):,} nodes "
                                  f"(the file writes out {written:,}): refused as an alias bomb", path=path,
                                  fix="write the repeated values out, or use fewer and smaller aliases (*name)")
        else:
            continue
        if anchor:
            sizes[anchor] = size
        if stack:
            stack[-1][1] += size


def framework_from_dict(document: Any, *, path: str | None = None) -> Framework:
    """Validate a framework document (already parsed) and freeze it into a :class:`Framework`."""
    _validate_document(document, path)
    return _build(document, path)


def _validate_document(document: Any, path: str | None) -> None:
    """The checks on a whole document before it is built: no cycle, the JSON Schema, finite numbers."""
    _reject_recursion(document, path)
    _check_json_schema(document, path)
    _reject_non_finite(document, document, [], path)


def _reject_non_finite(document: Any, obj: Any, where: list[Any], path: str | None) -> None:
    """JSON Schema bounds are false for NaN, and YAML/JSON accept .nan/.inf: reject them here."""
    if isinstance(obj, float) and not np.isfinite(obj):
        key = "/".join(str(p) for p in where)
        raise SchemaError(f"non-finite number {obj!r} at {key}", node=_node_of(document, where), path=path,
                          fix="write a finite number")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _reject_non_finite(document, v, [*where, k], path)
    elif isinstance(obj, list):
        for k, v in enumerate(obj):
            _reject_non_finite(document, v, [*where, k], path)


def _reject_recursion(obj: Any, path: str | None, _active: set[int] | None = None) -> None:
    """A YAML alias can make a document contain itself; reject that before anything recurses."""
    active = _active if _active is not None else set()
    if isinstance(obj, dict | list):
        if id(obj) in active:
            raise SchemaError("the document refers to itself through a YAML alias (a cycle)",
                              path=path, fix="replace the recursive alias (*name) by a plain value")
        active.add(id(obj))
        for value in obj.values() if isinstance(obj, dict) else obj:
            _reject_recursion(value, path, active)
        active.discard(id(obj))


def _node_of(document: Any, error_path: list[Any]) -> str | None:
    if len(error_path) >= 2 and error_path[0] == "nodes" and isinstance(error_path[1], int):
        try:
            node = document["nodes"][error_path[1]]
            return str(node.get("id", f"#{error_path[1]}")) if isinstance(node, dict) else f"#{error_path[1]}"
        except (IndexError, KeyError, TypeError):
            return None
    return None


def _check_json_schema(document: Any, path: str | None) -> None:
    validator = Draft202012Validator(load_schema("framework"))
    errors = sorted(validator.iter_errors(document), key=lambda e: (list(e.absolute_path), e.message))
    if not errors:
        return
    err = errors[0]
    where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
    node = _node_of(document, list(err.absolute_path))
    key = err.absolute_path[-1] if err.absolute_path else None
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        fix = f"remove or rename the unknown key; allowed keys here: {', '.join(allowed)}"
    elif key == "weight":
        fix = "give the weight as a positive number (weights are relative to siblings)"
    elif err.validator == "enum":
        fix = f"use one of {preview(err.validator_value, 20)}"
    elif err.validator == "required":
        fix = "add the missing key"
    elif key == "id" and err.validator == "pattern" and node is not None:
        fix = ("a node id is letters and digits in any script (e.g. 创新, Innovation_2), '_', and after the first "
               "character also '-' and '.'; no spaces or other punctuation")
    else:
        described = err.schema.get("description") if isinstance(err.schema, dict) else None
        fix = "see docs/frameworks.md for this key" + (f" ({described.rstrip('.')})" if described else "")
    more = f" ({len(errors) - 1} more problem(s) after this one)" if len(errors) > 1 else ""
    raise SchemaError(f"invalid at {where}: {err.message}{more}", node=node, path=path, fix=fix)


#: Parameters each method of the other stages accepts (normalisation is checked separately).
STAGE_PARAMETERS = {family: {m.name: set(m.parameters) for m in methods.FAMILIES[family].values()
                              if m.parameters} for family in ("imputation", "treatment", "aggregation")}


def _check_parameters(kind: str, node: str, method: Method, path: str | None) -> None:
    allowed = STAGE_PARAMETERS[kind].get(method.name, set())
    unused = sorted(set(method.params) - allowed)
    if unused:
        raise SchemaError(f"{kind} parameter(s) {preview(unused)} do not apply to {method.name!r}", node=node,
                          path=path,
                          fix=f"remove them; {method.name} takes {', '.join(sorted(allowed)) or 'no parameters'}")


def _resolve(kind: str, defaults: dict[str, dict[str, Any]], spec: Mapping[str, Any] | None,
             fallback: Mapping[str, Any] | None) -> Method:
    """Merge a method spec onto the framework default: parameters are inherited only when the
    method is the same; the method's own defaults fill the rest."""
    base = dict(fallback or {"method": next(iter(defaults))})
    if spec is None:
        chosen = base
    elif spec.get("method") == base.get("method"):
        chosen = {**base, **spec}
    else:
        chosen = dict(spec)
    name = chosen.pop("method")
    params = {**defaults[name], **chosen}
    return Method(name, MappingProxyType(params))


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _build(document: dict[str, Any], path: str | None) -> Framework:
    nodes = document["nodes"]
    ids = [n["id"] for n in nodes]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SchemaError(f"duplicate node id(s): {preview(duplicates)}", node=duplicates[0], path=path,
                          fix="give every node a unique id")
    by_id = {n["id"]: n for n in nodes}
    roots = [n["id"] for n in nodes if "parent" not in n]
    if len(roots) != 1:
        raise SchemaError(
            f"exactly one node must have no parent (the index); found {len(roots)}: {preview(roots)}",
            node=roots[0] if roots else None, path=path,
            fix="give every node except the index a `parent`",
        )
    root = roots[0]
    for n in nodes:
        if "parent" in n and n["parent"] not in by_id:
            raise SchemaError(f"parent {n['parent']!r} does not exist", node=n["id"], path=path,
                              fix=f"set `parent` to one of the node ids, e.g. {root!r}")
        if n.get("parent") == n["id"]:
            raise SchemaError("the node is its own parent (a cycle)", node=n["id"], path=path,
                              fix="set `parent` to another node")
    children: dict[str, list[str]] = {i: [] for i in ids}
    for n in nodes:
        if "parent" in n:
            children[n["parent"]].append(n["id"])
    # Reachability from the root: whatever is not reached sits on a cycle (or hangs from one).
    reached, stack = set(), [root]
    while stack:
        current = stack.pop()
        if current in reached:
            continue
        reached.add(current)
        stack.extend(children[current])
    unreached = [i for i in ids if i not in reached]
    if unreached:
        raise SchemaError(f"node(s) not connected to the index {root!r}: their parents form a cycle: "
                          f"{preview(unreached)}", node=unreached[0], path=path,
                          fix="break the cycle so that following `parent` always ends at the index")

    defaults = document.get("defaults", {})
    constant_policy = defaults.get("constant_indicator", "midpoint")
    groups = list(document.get("data", {}).get("groups", []))
    indicators: list[Indicator] = []
    for n in nodes:
        is_indicator = "column" in n or "components" in n
        if "column" in n and "components" in n:
            raise SchemaError("an indicator has either `column` or `components`, not both", node=n["id"],
                              path=path, fix="keep `column` for a data column, `components` for a weighted sum")
        if is_indicator and children[n["id"]]:
            key = "column" if "column" in n else "components"
            raise SchemaError(f"an indicator (it has `{key}`) cannot have children; children: "
                              f"{preview(children[n['id']])}", node=n["id"], path=path,
                              fix=f"remove `{key}` to make it an aggregate, or re-parent the children")
        if not is_indicator and not children[n["id"]]:
            raise SchemaError("the node has neither a `column` (indicator) nor children (aggregate)",
                              node=n["id"], path=path,
                              fix="add `column: <data column>` or give it child nodes")
        misplaced = [k for k in (_AGGREGATE_ONLY if is_indicator else _INDICATOR_ONLY) if k in n]
        if misplaced:
            kind = "an indicator" if is_indicator else "an aggregate"
            raise SchemaError(f"key(s) {preview(misplaced)} do not apply to {kind}", node=n["id"],
                              path=path, fix="remove them (see docs/frameworks.md)")
        if n["id"] == root and is_indicator:
            raise SchemaError("the index (root) cannot be an indicator", node=n["id"], path=path,
                              fix="add an aggregate root node")
        if not is_indicator:
            continue
        normalisation = _resolve("normalisation", NORMALISATION_DEFAULTS, n.get("normalisation"),
                                 defaults.get("normalisation", {"method": "minmax"}))
        _check_normalisation(n["id"], normalisation, path)
        imputation = _resolve("imputation", IMPUTATION_DEFAULTS, n.get("imputation"),
                              defaults.get("imputation", {"method": "none"}))
        _check_parameters("imputation", n["id"], imputation, path)
        if imputation.name.startswith("group_"):
            group = imputation.params.get("group")
            if group is None:
                raise SchemaError(f"imputation {imputation.name!r} needs a `group` column", node=n["id"],
                                  path=path, fix="add `group: <column>` to the imputation")
            if groups and group not in groups:
                raise SchemaError(f"imputation group {group!r} is not among data.groups {groups}",
                                  node=n["id"], path=path, fix="add it to data.groups")
        treatment = _resolve("treatment", TREATMENT_DEFAULTS, n.get("treatment"),
                             defaults.get("treatment", {"method": "none"}))
        _check_parameters("treatment", n["id"], treatment, path)
        indicators.append(Indicator(
            id=n["id"], parent=n["parent"], labels=MappingProxyType(dict(n["labels"])),
            weight=float(n.get("weight", 1.0)), column=n.get("column"), direction=int(n.get("direction", 1)),
            unit=n.get("unit"), denominator=n.get("denominator"),
            scale_factor=float(n.get("scale_factor", 1.0)), imputation=imputation, treatment=treatment,
            normalisation=normalisation,
            components=(MappingProxyType({k: float(v) for k, v in n["components"].items()})
                        if "components" in n else None),
            range=_plausible_range(n, path),
        ))

    aggregates: list[Aggregate] = []

    def visit(node_id: str) -> None:
        for child in children[node_id]:
            visit(child)
        n = by_id[node_id]
        if "column" in n or "components" in n:
            return
        aggregation = _resolve("aggregation", AGGREGATION_DEFAULTS, n.get("aggregation"),
                               defaults.get("aggregation", {"method": "arithmetic"}))
        _check_parameters("aggregation", node_id, aggregation, path)
        if aggregation.name == "generalised" and "p" not in aggregation.params:
            raise SchemaError("the generalised mean needs an exponent `p`", node=node_id, path=path,
                              fix="add `p: <number>` to the aggregation (1 arithmetic, 0 geometric, -1 harmonic)")
        aggregates.append(Aggregate(
            id=node_id, parent=n.get("parent"), labels=MappingProxyType(dict(n["labels"])),
            weight=float(n.get("weight", 1.0)), aggregation=aggregation,
            min_coverage=float(n.get("min_coverage", defaults.get("min_coverage", 0.0))),
            children=tuple(children[node_id]),
            weighting=_weighting(node_id, n.get("weighting"), children[node_id], path),
            renormalise=_renormalise(n, root, aggregation, path),
        ))

    visit(root)
    rescale_doc = document.get("rescale", {"method": "none"})
    rescale = Method(rescale_doc["method"], MappingProxyType({"scope": rescale_doc.get("scope", "index")}))
    screening = document.get("screening", {}).get("min_coverage")
    tiers = None
    if "tiers" in document:
        tiers = {"k": int(document["tiers"]["k"]), "node": document["tiers"].get("node", root),
                 "method": document["tiers"].get("method", "jenks")}
        if tiers["node"] not in by_id or "column" in by_id[tiers["node"]] or "components" in by_id[tiers["node"]]:
            raise SchemaError(f"tiers.node {tiers['node']!r} is not an aggregate node", node=tiers["node"], path=path,
                              fix=f"name an aggregate node, e.g. the index {root!r}")
    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    framework = Framework(
        id=document["id"], labels=MappingProxyType(dict(document["labels"])),
        description=document.get("description", ""), source=document.get("source", ""),
        data=MappingProxyType(dict(document.get("data", {}))), indicators=tuple(indicators),
        aggregates=tuple(aggregates), rescale=rescale,
        screening=None if screening is None else float(screening),
        tiers=None if tiers is None else MappingProxyType(tiers),
        constant_indicator=constant_policy, document=MappingProxyType(document), path=path,
        digest=hashlib.sha256(canonical.encode()).hexdigest(),
    )
    check_positive_inputs(framework, path)
    return framework


def _renormalise(n: Mapping[str, Any], root: str, aggregation: Method, path: str | None) -> bool:
    """``renormalise: false`` (weights as written) is for the index's arithmetic mean of manual weights."""
    if n.get("renormalise", True):
        return True
    why = ("it is not the index (a scaled child would change its parent's mix of weights)" if n["id"] != root else
           f"its aggregation is {aggregation.name!r} (only an arithmetic mean has a weighted sum)"
           if aggregation.name != "arithmetic" else
           f"its weights are computed ({n['weighting']['method']}) and sum to 1 anyway"
           if n.get("weighting", {}).get("method", "manual") != "manual" else "")
    if why:
        raise SchemaError(f"renormalise: false cannot apply here: {why}", node=n["id"], path=path,
                          fix="keep renormalise: false on the index only, with arithmetic aggregation and the "
                          "children's weights written in the file; elsewhere remove it (weights are relative)")
    return False


def _plausible_range(n: Mapping[str, Any], path: str | None) -> tuple[float | None, float | None] | None:
    if "range" not in n:
        return None
    lo, hi = (None if v is None else float(v) for v in n["range"])
    if lo is not None and hi is not None and not lo < hi:
        raise SchemaError(f"range [{lo:g}, {hi:g}] must have low < high", node=n["id"], path=path,
                          fix="write the plausible range as [low, high]; null leaves an end open")
    return lo, hi


def _check_normalisation(node: str, method: Method, path: str | None) -> None:
    p = method.params
    if method.name == "minmax":
        lo, hi = p["range"]
        if not lo < hi:
            raise SchemaError(f"minmax range [{lo}, {hi}] must have lo < hi", node=node, path=path,
                              fix="write the range as [lower, upper], e.g. [0, 100]")
    elif method.name == "goalposts":
        if "goalposts" not in p:
            raise SchemaError("goalposts normalisation needs `goalposts: [lower, upper]`", node=node,
                              path=path, fix="add the two goalposts in the indicator's units")
        lo, hi = p["goalposts"]
        if not lo < hi:
            raise SchemaError(f"goalposts [{lo}, {hi}] must have lower < upper", node=node, path=path,
                              fix="write them as [lower, upper]; use direction -1 for less-is-better")
    elif method.name == "distance_to_target" and "target" not in p:
        raise SchemaError("distance_to_target needs a `target`", node=node, path=path,
                          fix="add `target: <value in the indicator's units>`")
    own = methods.NORMALISATION[method.name].required
    unused = set(p) - set(NORMALISATION_DEFAULTS[method.name]) - own
    if unused:
        raise SchemaError(f"parameter(s) {preview(sorted(unused))} do not apply to {method.name!r}",
                          node=node, path=path, fix=f"remove them; {method.name} takes "
                          f"{', '.join(NORMALISATION_DEFAULTS[method.name]) or 'no parameters'}")


def _can_be_negative(framework: Framework, node_id: str) -> bool:
    node = framework.node(node_id)
    if isinstance(node, Indicator):
        m = node.normalisation
        if m.name == "minmax":
            return m["range"][0] < 0
        return m.name == "zscore"
    if node.aggregation.name == "copeland":
        return True
    return any(_can_be_negative(framework, c) for c in node.children)


def needs_positive_inputs(method: Method) -> bool:
    """Geometric/harmonic means and power means with p <= 0."""
    return method.name in ("geometric", "harmonic") or (method.name == "generalised" and method.params.get("p", 1) <= 0)


def check_positive_inputs(framework: Framework, path: str | None, aggregates: Iterable[Aggregate] | None = None
                           ) -> None:
    """Geometric/harmonic means and power means with p <= 0 need inputs >= 0: decide statically
    (for every aggregate, or for ``aggregates`` of the framework only)."""
    for agg in framework.aggregates if aggregates is None else aggregates:
        if not needs_positive_inputs(agg.aggregation):
            continue
        bad = [c for c in agg.children if _can_be_negative(framework, c)]
        if bad:
            raise SchemaError(
                f"{agg.aggregation.name} aggregation needs non-negative inputs, but child(ren) {preview(bad)} "
                "can be negative (z-scores, a minmax range below 0, or Copeland scores)", node=agg.id, path=path,
                fix="normalise those children onto a positive range, e.g. minmax with range [1, 100], "
                "or aggregate this node arithmetically",
            )


def _weighting(node: str, spec: Mapping[str, Any] | None, children: list[str], path: str | None) -> Method:
    """Validate a node's ``weighting`` block (the AHP matrix shape, order and reciprocity)."""
    if spec is None:
        return Method("manual")
    params = {k: v for k, v in spec.items() if k != "method"}
    name = spec["method"]
    if name != "ahp":
        extra = sorted(params)
        if extra:
            raise SchemaError(f"weighting {name!r} takes no parameters, got {preview(extra)}", node=node, path=path,
                              fix="remove them (matrix/order/eigenvector/random_index belong to `ahp`)")
        return Method(name, MappingProxyType({}))
    if "matrix" not in params:
        raise SchemaError("AHP weighting needs a pairwise comparison `matrix`", node=node, path=path,
                          fix="add `matrix:` with one row per child")
    order = list(params.get("order", children))
    if sorted(order) != sorted(children):
        raise SchemaError(f"AHP `order` {preview(order)} must list exactly the children {preview(children)}",
                          node=node, path=path, fix="list every child id once")
    try:
        matrix = np.asarray(params["matrix"], dtype=float)
    except ValueError as exc:
        raise SchemaError("AHP matrix rows have different lengths", node=node, path=path,
                          fix=f"give a square matrix with one row and one column per child ({len(children)})") from exc
    k = len(children)
    if matrix.shape != (k, k):
        raise SchemaError(f"AHP matrix is {matrix.shape[0]}×{matrix.shape[1] if matrix.ndim == 2 else '?'} "
                          f"but the node has {k} children", node=node, path=path,
                          fix=f"give a {k}×{k} matrix, rows and columns in the order {order}")
    for i in range(k):
        for j in range(k):
            if not np.isclose(matrix[i, j] * matrix[j, i], 1.0, rtol=1e-2):
                raise SchemaError(f"AHP matrix is not reciprocal at ({order[i]}, {order[j]}): "
                                  f"{matrix[i, j]} × {matrix[j, i]} ≠ 1", node=node, path=path,
                                  fix="make a[j][i] = 1 / a[i][j] and a[i][i] = 1")
    return Method("ahp", MappingProxyType({
        "matrix": matrix.tolist(), "order": order,
        "eigenvector": params.get("eigenvector", "principal"),
        "random_index": params.get("random_index", "saaty"),
    }))
