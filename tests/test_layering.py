"""The layering of engine/ (issue 16.4), read from the source with ``ast`` (imports inside functions
count too: a lazy import still makes one layer depend on another).

A layer is a subpackage (``engine.kernels``, ``engine.analysis``, ...) or a top-level module
(``engine.pipeline``, ``engine.cli``, ...)."""

from __future__ import annotations

import ast
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[1] / "engine"

#: No private name is imported across modules (issue 16.4); the set stays empty.
KNOWN_PRIVATE_IMPORTS: set[tuple[str, str, str]] = set()


def _module(path: Path) -> str:
    parts = list(path.relative_to(ENGINE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, imported names, line) of every import of ``path``, relative ones resolved."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [alias.name for alias in node.names]
            # ``from . import x``/``from .pkg import mod``: the names may be modules themselves
            found.append((target, names, node.lineno))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, [], node.lineno) for alias in node.names)
    return [(target, names, line) for target, names, line in found if target.split(".")[0] == "engine"]


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "engine"


@pytest.fixture(scope="module")
def graph() -> dict[str, list[tuple[str, str, list[str], int]]]:
    """module -> [(imported module, layer of it, names, line)] for every module of engine/."""
    return {_module(path): [(target, _layer(target), names, line) for target, names, line in _imports(path)]
            for path in sorted(ENGINE.rglob("*.py"))}


def _layer_edges(graph) -> dict[str, dict[str, list[str]]]:
    edges: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for module, imported in graph.items():
        if module == "engine":  # the public API re-exports every layer
            continue
        for target, layer, _, line in imported:
            if layer not in (_layer(module), "engine"):
                edges[_layer(module)][layer].append(f"{module}:{line} -> {target}")
    return edges


def _cycle(edges: dict[str, dict[str, list[str]]]) -> list[str] | None:
    """A cycle of layers (first layer repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(layer: str) -> list[str] | None:
        state[layer] = 1
        path.append(layer)
        for other in edges.get(layer, {}):
            if state.get(other) == 1:
                return [*path[path.index(other):], other]
            if other not in state and (found := visit(other)):
                return found
        path.pop()
        state[layer] = 2
        return None

    return next((found for layer in sorted(edges) if layer not in state and (found := visit(layer))), None)


def test_the_graph_sees_the_package_and_finds_a_cycle(graph):
    assert {"engine.kernels.rank", "engine.analysis.uncertainty", "engine.backends", "engine.cli"} <= set(graph)
    assert any(target == "engine.kernels._jit" for target, *_ in graph["engine.kernels.rank"])
    assert "stages" in _layer_edges(graph)["pipeline"]
    assert _cycle({"a": {"b": ["a.py:1"]}, "b": {"c": ["b.py:1"]}, "c": {"a": ["c.py:1"]}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b": ["a.py:1"]}, "b": {}}) is None


def test_no_import_cycles_between_layers(graph):
    edges = _layer_edges(graph)
    cycle = _cycle(edges)
    assert cycle is None, [edges[a][b][0] for a, b in pairwise(cycle)]


@pytest.mark.parametrize(("layer", "forbidden"), [
    ("kernels", {"analysis", "backends", "cli", "audit", "pipeline", "stages", "data", "io"}),
    ("backends", {"analysis", "audit", "cli", "pipeline"}),
    ("stages", {"analysis", "backends", "cli", "audit"}),
    ("analysis", {"cli", "audit"}),
])
def test_lower_layers_do_not_import_higher_ones(graph, layer, forbidden):
    offending = [where for other, wheres in _layer_edges(graph).get(layer, {}).items() if other in forbidden
                 for where in wheres]
    assert offending == []


def test_no_new_private_names_imported_across_modules(graph):
    found = {(module, target, name) for module, imported in graph.items() for target, _, names, _ in imported
             for name in names if name.startswith("_") and not name.startswith("__") and target != module}
    assert found - KNOWN_PRIVATE_IMPORTS == set(), "a private name imported from another module: make it public"
    assert KNOWN_PRIVATE_IMPORTS - found == set(), "fixed: delete it from KNOWN_PRIVATE_IMPORTS"


def test_nothing_in_engine_imports_the_tools(graph):
    for module in graph:
        source = (ENGINE.parent / (module.replace(".", "/") + ".py"))
        source = source if source.exists() else ENGINE.parent / module.replace(".", "/") / "__init__.py"
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "tools" and not node.level:
                pytest.fail(f"{module} imports {node.module} (tools/ is not installed)")
            if isinstance(node, ast.Import):
                assert all(alias.name.split(".")[0] != "tools" for alias in node.names), module
