"""Every ``raise SchemaError`` of engine/schema.py and engine/pipeline.py::check_names.

Each test builds a small framework document (``minimal_document()`` then one mutation) and checks
the message (``match=``), the structured attributes (``.node``, ``.fix``, ``.path``) and that
``str(err)`` names the node and the fix.  Known engine gaps are ``xfail(strict=True)`` with the
reason spelled out, so that a fix turns them into failures that ask for the marker to go.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

import engine
from engine.errors import EngineError, SchemaError
from engine.schema import NORMALISATION_DEFAULTS, Framework, framework_from_dict, load_framework

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def minimal_document() -> dict[str, Any]:
    """A valid framework: index ``idx`` with two minmax indicators ``a`` and ``b``."""
    return {
        "id": "tiny",
        "version": 1,
        "labels": {"en": "Tiny index"},
        "data": {"unit": "unit", "groups": ["region"]},
        "nodes": [
            {"id": "idx", "labels": {"en": "Index"}},
            {"id": "a", "parent": "idx", "labels": {"en": "A"}, "column": "a"},
            {"id": "b", "parent": "idx", "labels": {"en": "B"}, "column": "b"},
        ],
    }


def two_level_document() -> dict[str, Any]:
    """A valid framework: ``idx`` -> pillars ``p`` (indicators a, b) and ``q`` (indicator c)."""
    return {
        "id": "two",
        "labels": {"en": "Two levels"},
        "data": {"unit": "unit"},
        "nodes": [
            {"id": "idx", "labels": {"en": "Index"}},
            {"id": "p", "parent": "idx", "labels": {"en": "P"}},
            {"id": "q", "parent": "idx", "labels": {"en": "Q"}},
            {"id": "a", "parent": "p", "labels": {"en": "A"}, "column": "a"},
            {"id": "b", "parent": "p", "labels": {"en": "B"}, "column": "b"},
            {"id": "c", "parent": "q", "labels": {"en": "C"}, "column": "c"},
        ],
    }


def node(document: dict[str, Any], node_id: str) -> dict[str, Any]:
    """The node dict with id ``node_id`` (to mutate in place)."""
    return next(n for n in document["nodes"] if n.get("id") == node_id)


def leaf(node_id: str, parent: str, **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "parent": parent, "labels": {"en": node_id.upper()}, "column": node_id, **extra}


def branch(node_id: str, parent: str | None = None, **extra: Any) -> dict[str, Any]:
    out = {"id": node_id, "labels": {"en": node_id.upper()}, **extra}
    if parent is not None:
        out["parent"] = parent
    return out


def expect_schema_error(document: Any, match: str, node_id: str | None) -> SchemaError:
    """framework_from_dict(document) raises a SchemaError matching ``match`` about ``node_id``."""
    with pytest.raises(SchemaError, match=match) as info:
        framework_from_dict(document)
    err = info.value
    assert err.node == node_id
    assert err.fix, "every SchemaError carries a fix"
    text = str(err)
    assert "Fix:" in text
    if node_id is not None:
        assert f"node {node_id!r}" in text
    return err


def write_document(document: Any, folder: Path, fmt: str, name: str = "framework") -> Path:
    path = folder / f"{name}.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# the helpers themselves: valid documents load (so every failure below is caused by its mutation)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [minimal_document, two_level_document])
def test_helper_documents_are_valid(make):
    framework = framework_from_dict(make())
    assert isinstance(framework, Framework)
    assert framework.root.id == "idx"
    assert [i.id for i in framework.indicators] == [n["id"] for n in make()["nodes"] if "column" in n]


def test_framework_from_dict_does_not_mutate_the_document():
    document = two_level_document()
    before = copy.deepcopy(document)
    framework_from_dict(document)
    assert document == before


# ---------------------------------------------------------------------------------------------
# the error class
# ---------------------------------------------------------------------------------------------


def test_schema_error_is_a_value_error_and_an_engine_error():
    document = minimal_document()
    node(document, "a")["weight"] = 0
    with pytest.raises(SchemaError) as info:
        framework_from_dict(document)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, EngineError)
    assert issubclass(SchemaError, ValueError) and issubclass(SchemaError, EngineError)
    # a caller can catch it as a plain ValueError
    with pytest.raises(ValueError, match="weight"):
        framework_from_dict(document)


def test_str_names_path_node_message_and_fix():
    err = SchemaError("something is wrong", node="pillar_1", path="fw.yaml", fix="do this")
    assert str(err) == "fw.yaml: node 'pillar_1': something is wrong. Fix: do this."


# ---------------------------------------------------------------------------------------------
# load_framework: files and names
# ---------------------------------------------------------------------------------------------


def test_unknown_shipped_name():
    with pytest.raises(SchemaError, match=r"no framework file or shipped framework named 'no_such_index'") as info:
        load_framework("no_such_index")
    err = info.value
    assert err.node is None
    assert err.path == "no_such_index"
    for name in engine.shipped_frameworks():
        assert name in err.fix, "the fix lists the shipped frameworks"
    assert "Fix:" in str(err)


def test_missing_file(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(SchemaError, match="no framework file or shipped framework named") as info:
        load_framework(missing)
    assert info.value.path == str(missing)
    assert "YAML/JSON" in info.value.fix


def test_a_file_loaded_again_is_reused_and_an_edited_one_validated_again(tmp_path):
    """Parsing and validation are cached on the file's text, but every load builds its own
    framework (changing one's document cannot reach another's); an edit — valid or not — is
    parsed and validated afresh."""
    path = tmp_path / "fw.yaml"
    path.write_text(yaml.safe_dump(minimal_document()), encoding="utf-8")
    first = load_framework(path)
    second = load_framework(path)
    assert second is not first and second.digest == first.digest and second == first
    first.document["nodes"][1]["weight"] = 99  # the document's inner lists are plain Python objects
    assert "weight" not in load_framework(path).document["nodes"][1]
    edited = minimal_document()
    edited["id"] = "edited"
    path.write_text(yaml.safe_dump(edited), encoding="utf-8")
    assert load_framework(path).id == "edited"
    broken = minimal_document()
    broken["nodes"][0]["weight"] = -1
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    with pytest.raises(SchemaError):
        load_framework(path)
    with pytest.raises(SchemaError):  # errors are not cached away either
        load_framework(path)


def test_unreadable_file_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("id: tiny\nlabels: {en: Zürich}\n".encode("latin-1"))
    with pytest.raises(SchemaError, match="cannot read the file") as info:
        load_framework(path)
    assert info.value.path == str(path)
    assert "UTF-8" in info.value.fix


def test_unreadable_path_is_a_directory(tmp_path):
    folder = tmp_path / "framework.yaml"
    folder.mkdir()
    with pytest.raises(SchemaError, match="cannot read the file") as info:
        load_framework(folder)
    assert info.value.path == str(folder)
    assert info.value.fix


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        ("yaml", "id: tiny\nlabels: {en: [unclosed\nnodes: []\n"),
        ("yml", "id: tiny\n  labels: bad indentation: here\n"),
        ("json", '{"id": "tiny", "labels": {"en": "T"},}'),
    ],
)
def test_invalid_syntax(tmp_path, suffix, text):
    path = tmp_path / f"broken.{suffix}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SchemaError, match="not valid YAML/JSON: ") as info:
        load_framework(path)
    assert info.value.path == str(path)
    assert "position" in info.value.fix
    assert str(path) in str(info.value)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_valid_file_loads_from_yaml_and_json(tmp_path, fmt):
    path = write_document(two_level_document(), tmp_path, fmt)
    framework = load_framework(path)
    assert framework.path == str(path)
    assert framework.node_ids == ("a", "b", "c", "p", "q", "idx")
    assert framework.digest == framework_from_dict(two_level_document()).digest


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize(
    ("mutate", "match", "node_id"),
    [
        (lambda d: d["nodes"].append(leaf("a", "idx")), r"duplicate node id\(s\): 'a'", "a"),
        (lambda d: node(d, "b").update(colour="red"), r"Additional properties .*'colour'", "b"),
        (lambda d: node(d, "a").update(parent="nowhere"), r"parent 'nowhere' does not exist", "a"),
        (lambda d: node(d, "a").update(weight="abc"), r"nodes/1/weight: 'abc' is not of type 'number'", "a"),
    ],
    ids=["duplicate-id", "unknown-node-key", "missing-parent", "weight-abc"],
)
def test_errors_from_files_carry_the_path(tmp_path, fmt, mutate, match, node_id):
    document = minimal_document()
    mutate(document)
    path = write_document(document, tmp_path, fmt)
    with pytest.raises(SchemaError, match=match) as info:
        load_framework(path)
    assert info.value.node == node_id
    assert info.value.path == str(path)
    assert str(info.value).startswith(f"{path}: node {node_id!r}:")


# ---------------------------------------------------------------------------------------------
# recursive YAML aliases (PyYAML builds self-containing lists and dicts from `&x [*x]`)
# ---------------------------------------------------------------------------------------------


def test_pyyaml_builds_recursive_aliases():
    # The premise of the check: safe_load returns a list that contains itself.
    document = yaml.safe_load("a: &x [*x]")
    assert document["a"][0] is document["a"]
    mapping = yaml.safe_load("&y {self: *y}")
    assert mapping["self"] is mapping


@pytest.mark.parametrize(
    "recursive",
    [
        "description: &x [*x]\n",  # a list containing itself
        "description: &x {again: *x}\n",  # a mapping containing itself
    ],
)
def test_recursive_yaml_alias_in_a_file(tmp_path, recursive):
    path = tmp_path / "recursive.yaml"
    path.write_text(yaml.safe_dump(minimal_document(), sort_keys=False) + recursive, encoding="utf-8")
    with pytest.raises(SchemaError, match=r"the document refers to itself through a YAML alias") as info:
        load_framework(path)
    assert info.value.node is None
    assert info.value.path == str(path)
    assert "recursive alias" in info.value.fix


def test_recursive_structure_in_a_node():
    document = minimal_document()
    labels: dict[str, Any] = {"en": "A"}
    labels["zh"] = labels  # the dict equivalent of `labels: &l {en: A, zh: *l}`
    node(document, "a")["labels"] = labels
    expect_schema_error(document, r"the document refers to itself through a YAML alias", None)


BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{x}: &{x} [{','.join([f'*{prev}'] * 9)}]\n" for prev, x in zip("abcdefgh", "bcdefghi", strict=True))


def test_yaml_alias_bomb_is_refused_before_expansion(tmp_path):
    # issue 21 item 6: a 631-byte framework ran at 100 % CPU until killed (9^9 nodes)
    import time

    path = tmp_path / "bomb.yaml"
    path.write_text(yaml.safe_dump(minimal_document(), sort_keys=False) + BOMB, encoding="utf-8")
    assert path.stat().st_size < 1000
    started = time.perf_counter()
    with pytest.raises(SchemaError, match=r"YAML aliases expand to more than 10,000 nodes \(the file writes out "
                                          r"\d+\): refused as an alias bomb") as info:
        load_framework(path)
    assert time.perf_counter() - started < 2.0
    assert info.value.path == str(path) and "fewer and smaller aliases" in info.value.fix


def test_yaml_alias_bomb_in_an_uncertainty_spec_is_refused(tmp_path):
    # issue 21 item 6: a 508-byte uncertainty spec reached 8 GB
    from engine.analysis.spec import load_spec

    path = tmp_path / "spec.yaml"
    path.write_text("replicates: 100\n" + BOMB, encoding="utf-8")
    with pytest.raises(SchemaError, match=r"YAML aliases expand to more than 10,000 nodes"):
        load_spec(path)


def test_aliases_that_repeat_as_much_as_the_file_writes_are_fine(tmp_path):
    # the bound is max(10,000, nodes written out): a big file may share a big block once
    block = yaml.safe_dump({"labels": {f"k{i}": "v" for i in range(12_000)}})
    text = yaml.safe_dump(minimal_document(), sort_keys=False) + "x-shared: &big\n" + "".join(
        "  " + line + "\n" for line in block.splitlines())
    from engine.schema import parse_document

    assert len(parse_document(text + "x-again: *big\n", "f.yaml", is_json=False)["x-again"]["labels"]) == 12_000
    with pytest.raises(SchemaError, match=r"YAML aliases expand to more than"):
        parse_document(text + "x-again: [*big, *big]\n", "f.yaml", is_json=False)


@pytest.mark.parametrize(("suffix", "text"), [
    (".json", "[" * 100_000 + "]" * 100_000),   # was a RecursionError traceback
    (".json", '{"a":' * 150 + "1" + "}" * 150),  # parses, but deeper than any framework
    (".yaml", "a:\n" + "".join("  " * k + "- \n" for k in range(1, 150))),
])
def test_deeply_nested_files_are_refused(tmp_path, suffix, text):
    path = tmp_path / f"deep{suffix}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SchemaError, match=r"the document is nested more than 100 levels deep") as info:
        load_framework(path)
    assert "brackets/indentation" in info.value.fix


def test_deep_json_uncertainty_spec_is_refused(tmp_path):
    from engine.analysis.spec import load_spec

    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(SchemaError, match=r"nested more than 100 levels deep"):
        load_spec(path)


def test_unicode_node_ids_are_allowed(tmp_path):
    # issue 15 item 9: Chinese ids were refused with a regex pointing at schemas/framework.schema.json
    document = minimal_document()
    node(document, "idx")["id"] = "创新指数"
    for n in document["nodes"][1:]:
        n["parent"] = "创新指数"
    node(document, "a")["id"] = "经济_1"
    framework = framework_from_dict(document)
    assert framework.node_ids == ("经济_1", "b", "创新指数")
    err = expect_schema_error({**document, "nodes": [*document["nodes"][:2], {**document["nodes"][2], "id": "环 境"}]},
                              r"nodes/2/id: '环 境' does not match", "环 境")
    assert "any script" in err.fix and "schema.json" not in err.fix


def test_indicator_range_must_have_low_below_high():
    document = minimal_document()
    node(document, "a")["range"] = [100, 0]
    expect_schema_error(document, r"range \[100, 0\] must have low < high", "a")
    node(document, "a")["range"] = [None, 100]
    assert framework_from_dict(document).indicators[0].range == (None, 100.0)
    node(document, "a")["range"] = [0, 1, 2]
    expect_schema_error(document, r"nodes/1/range: \[0, 1, 2\] is too long", "a")


def test_shared_but_not_recursive_alias_is_fine(tmp_path):
    # Aliases that only share a value (a DAG, not a cycle) are legitimate YAML.
    text = (
        "id: tiny\nlabels: {en: Tiny}\n"
        "nodes:\n"
        "- {id: idx, labels: &l {en: Same label}}\n"
        "- {id: a, parent: idx, labels: *l, column: a}\n"
        "- {id: b, parent: idx, labels: *l, column: b}\n"
    )
    path = tmp_path / "shared.yaml"
    path.write_text(text, encoding="utf-8")
    framework = load_framework(path)
    assert [i.labels["en"] for i in framework.indicators] == ["Same label", "Same label"]


# ---------------------------------------------------------------------------------------------
# JSON Schema: unknown keys, types, weights, enums, required keys
# ---------------------------------------------------------------------------------------------


def test_not_a_mapping():
    expect_schema_error(["id", "tiny"], r"invalid at \(top level\): .* is not of type 'object'", None)


def test_unknown_top_level_key():
    document = minimal_document()
    document["weights"] = {"a": 2}
    err = expect_schema_error(document, r"invalid at \(top level\): Additional properties .*'weights'", None)
    assert "allowed keys here" in err.fix
    for key in ("id", "labels", "nodes", "defaults", "data"):
        assert key in err.fix


def test_unknown_key_in_data_section():
    document = minimal_document()
    document["data"]["units"] = "unit"  # typo for `unit`
    err = expect_schema_error(document, r"invalid at data: Additional properties .*'units'", None)
    assert "unit" in err.fix and "groups" in err.fix


def test_unknown_key_in_a_node():
    document = minimal_document()
    node(document, "b")["directon"] = -1  # typo for `direction`
    err = expect_schema_error(document, r"invalid at nodes/2: Additional properties .*'directon'", "b")
    assert "direction" in err.fix


def test_unknown_key_in_a_node_method_spec():
    document = minimal_document()
    node(document, "a")["normalisation"] = {"method": "minmax", "ranges": [0, 1]}
    err = expect_schema_error(document, r"invalid at nodes/1/normalisation: Additional properties .*'ranges'", "a")
    assert "range" in err.fix and "goalposts" in err.fix


def test_unknown_key_in_a_defaults_method_spec():
    document = minimal_document()
    document["defaults"] = {"aggregation": {"method": "generalised", "power": 2}}
    err = expect_schema_error(document, r"invalid at defaults/aggregation: Additional properties .*'power'", None)
    assert "p" in err.fix.split("allowed keys here: ")[1].split(", ")


def test_node_without_id_is_named_by_position():
    document = minimal_document()
    del node(document, "b")["id"]
    err = expect_schema_error(document, r"invalid at nodes/2: 'id' is a required property", "#2")
    assert err.fix == "add the missing key"


def test_several_problems_are_counted():
    document = minimal_document()
    node(document, "a")["weight"] = -1
    node(document, "b")["weight"] = 0
    expect_schema_error(document, r"nodes/1/weight: .* \(1 more problem\(s\) after this one\)", "a")


@pytest.mark.parametrize(
    ("weight", "match"),
    [
        ("abc", r"'abc' is not of type 'number'"),
        (True, r"True is not of type 'number'"),
        (None, r"None is not of type 'number'"),
        (0, r"0 is less than or equal to the minimum of 0"),
        (-2.5, r"-2.5 is less than or equal to the minimum of 0"),
    ],
)
def test_bad_weight(weight, match):
    document = minimal_document()
    node(document, "b")["weight"] = weight
    err = expect_schema_error(document, r"invalid at nodes/2/weight: " + match, "b")
    assert "positive number" in err.fix


@pytest.mark.parametrize(
    ("where", "value"),
    [("weight", float("nan")), ("weight", float("inf")), ("min_coverage", float("nan"))],
    ids=["weight-nan", "weight-inf", "min_coverage-nan"],
)
def test_non_finite_numbers_are_rejected(where, value):
    document = minimal_document()
    if where == "weight":
        node(document, "a")["weight"] = value
    else:
        node(document, "idx")["min_coverage"] = value
    with pytest.raises(SchemaError, match=f"non-finite number .* at nodes/[0-9]+/{where}") as info:
        framework_from_dict(document)
    assert info.value.node in ("a", "idx") and info.value.fix


@pytest.mark.parametrize(
    ("mutate", "match", "node_id", "fix_part"),
    [
        (lambda d: node(d, "a").update(direction=2), r"nodes/1/direction: 2 is not one of \[1, -1\]", "a",
         "use one of"),
        (lambda d: node(d, "a").update(normalisation={"method": "min-max"}), r"nodes/1/normalisation/method: 'min-max'",
         "a", "'minmax'"),
        (lambda d: d.update(defaults={"constant_indicator": "ignore"}), r"defaults/constant_indicator: 'ignore'", None,
         "'midpoint'"),
        (lambda d: node(d, "idx").update(aggregation={"p": 2}), r"nodes/0/aggregation: 'method' is a required",
         "idx", "add the missing key"),
        (lambda d: d.update(rescale={"scope": "index"}), r"rescale: 'method' is a required", None,
         "add the missing key"),
        (lambda d: d.update(screening={}), r"screening: 'min_coverage' is a required", None, "add the missing key"),
        (lambda d: node(d, "a").update(id="a b"), r"nodes/1/id: 'a b' does not match", "a b",
         "letters and digits in any script"),
        (lambda d: d.update(id="Tiny Index"), r"invalid at id: 'Tiny Index' does not match", None,
         "docs/frameworks.md"),
        (lambda d: d.update(version=2), r"invalid at version: 1 was expected", None, "docs/frameworks.md"),
        (lambda d: node(d, "idx").update(min_coverage=1.5), r"nodes/0/min_coverage: 1.5 is greater than the maximum",
         "idx", "docs/frameworks.md"),
        (lambda d: node(d, "a").update(normalisation={"method": "minmax", "range": [0, 1, 2]}),
         r"nodes/1/normalisation/range: \[0, 1, 2\] is too long", "a", "docs/frameworks.md"),
        (lambda d: d["nodes"].__delitem__(slice(1, 3)), r"invalid at nodes: .* is too short", None,
         "docs/frameworks.md"),
        (lambda d: node(d, "b").update(parent=None), r"nodes/2/parent: None is not of type 'string'", "b",
         "docs/frameworks.md"),
        (lambda d: d["data"].update(groups=["region", "region"]), r"data/groups: .* non-unique elements", None,
         "docs/frameworks.md"),
    ],
    ids=["direction", "normalisation-enum", "constant-policy-enum", "aggregation-method-missing",
         "rescale-method-missing", "screening-min_coverage-missing", "bad-node-id", "bad-framework-id",
         "version", "min_coverage-above-1", "range-length", "one-node", "parent-null", "duplicate-groups"],
)
def test_schema_violations(mutate, match, node_id, fix_part):
    document = minimal_document()
    mutate(document)
    err = expect_schema_error(document, match, node_id)
    assert fix_part in err.fix


# ---------------------------------------------------------------------------------------------
# tree structure: ids, roots, parents, cycles
# ---------------------------------------------------------------------------------------------


def test_duplicate_ids_are_listed():
    document = two_level_document()
    document["nodes"] += [leaf("c", "q"), leaf("b", "q"), leaf("b", "p")]
    err = expect_schema_error(document, r"duplicate node id\(s\): 'b', 'c'", "b")
    assert err.fix == "give every node a unique id"


def test_duplicate_of_the_root():
    document = minimal_document()
    document["nodes"].append(branch("idx", "idx"))
    expect_schema_error(document, r"duplicate node id\(s\): 'idx'", "idx")


def test_zero_roots():
    document = minimal_document()
    node(document, "idx")["parent"] = "a"
    err = expect_schema_error(document, r"exactly one node must have no parent \(the index\); found 0", None)
    assert "parent" in err.fix


def test_two_roots():
    document = minimal_document()
    document["nodes"].append(branch("other_index"))
    document["nodes"].append(leaf("c", "other_index"))
    err = expect_schema_error(
        document, r"exactly one node must have no parent \(the index\); found 2: 'idx', 'other_index'", "idx")
    assert "parent" in err.fix


def test_missing_parent_names_child_and_suggests_root():
    document = two_level_document()
    node(document, "c")["parent"] = "Q"  # ids are case-sensitive
    err = expect_schema_error(document, r"parent 'Q' does not exist", "c")
    assert "'idx'" in err.fix


def test_node_is_its_own_parent():
    document = two_level_document()
    node(document, "q")["parent"] = "q"
    err = expect_schema_error(document, r"the node is its own parent \(a cycle\)", "q")
    assert "another node" in err.fix


def test_two_node_cycle_unreachable_from_root():
    document = minimal_document()
    document["nodes"] += [branch("x", "y"), branch("y", "x")]
    err = expect_schema_error(
        document, r"node\(s\) not connected to the index 'idx': their parents form a cycle: 'x', 'y'\. Fix:", "x")
    assert "break the cycle" in err.fix


def test_three_node_cycle_with_a_leaf_hanging_from_it():
    document = minimal_document()
    document["nodes"] += [branch("x", "z"), branch("y", "x"), branch("z", "y"), leaf("c", "y")]
    expect_schema_error(document, r"not connected to the index 'idx'.*'x', 'y', 'z', 'c'", "x")


def test_cycle_message_previews_long_lists():
    document = minimal_document()
    ring = [f"r{k}" for k in range(7)]
    document["nodes"] += [branch(r, ring[k - 1]) for k, r in enumerate(ring)]
    expect_schema_error(document, r"'r0', 'r1', 'r2', 'r3', 'r4', … \(7 in all\)", "r0")


# ---------------------------------------------------------------------------------------------
# indicator / aggregate consistency
# ---------------------------------------------------------------------------------------------


def test_indicator_with_children():
    document = two_level_document()
    node(document, "p")["column"] = "p_col"
    err = expect_schema_error(
        document, r"an indicator \(it has `column`\) cannot have children; children: 'a', 'b'", "p")
    assert "remove `column`" in err.fix


def test_aggregate_without_children():
    document = two_level_document()
    document["nodes"].append(branch("empty_pillar", "idx"))
    err = expect_schema_error(
        document, r"the node has neither a `column` \(indicator\) nor children \(aggregate\)", "empty_pillar")
    assert "column" in err.fix and "child" in err.fix


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("direction", -1),
        ("unit", "percent"),
        ("denominator", "population"),
        ("scale_factor", 1000),
        ("imputation", {"method": "mean"}),
        ("treatment", {"method": "log"}),
        ("normalisation", {"method": "zscore"}),
    ],
)
def test_indicator_only_key_on_an_aggregate(key, value):
    document = two_level_document()
    node(document, "p")[key] = value
    err = expect_schema_error(document, rf"key\(s\) '{key}' do not apply to an aggregate", "p")
    assert "docs/frameworks.md" in err.fix


@pytest.mark.parametrize(("key", "value"), [("aggregation", {"method": "geometric"}), ("min_coverage", 0.5)])
def test_aggregate_only_key_on_an_indicator(key, value):
    document = two_level_document()
    node(document, "c")[key] = value
    expect_schema_error(document, rf"key\(s\) '{key}' do not apply to an indicator", "c")


def test_several_misplaced_keys_are_listed():
    document = two_level_document()
    node(document, "q").update(direction=-1, unit="t", treatment={"method": "none"})
    expect_schema_error(document, r"key\(s\) 'direction', 'unit', 'treatment' do not apply to an aggregate", "q")


def test_root_indicator_with_children():
    document = minimal_document()
    node(document, "idx")["column"] = "total"
    err = expect_schema_error(document, r"an indicator \(it has `column`\) cannot have children", "idx")
    assert "remove `column`" in err.fix


def test_root_indicator_without_children():
    # A childless indicator root leaves every other node unreachable (the schema demands >= 2
    # nodes), so the cycle check reports it first. schema.py's own raise for this case,
    # "the index (root) cannot be an indicator", is therefore unreachable (reported as dead code).
    document = minimal_document()
    node(document, "idx")["column"] = "total"
    node(document, "a")["parent"] = "b"
    node(document, "b")["parent"] = "a"
    node(document, "a").pop("column")
    node(document, "b").pop("column")
    with pytest.raises(SchemaError, match=r"not connected to the index 'idx'") as info:
        framework_from_dict(document)
    assert info.value.node == "a"


# ---------------------------------------------------------------------------------------------
# method parameters
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bounds", [[1, 1], [100, 0], [0.5, -0.5]])
def test_minmax_range_lo_not_below_hi(bounds):
    document = minimal_document()
    node(document, "b")["normalisation"] = {"method": "minmax", "range": bounds}
    err = expect_schema_error(document, rf"minmax range \[{bounds[0]}, {bounds[1]}\] must have lo < hi", "b")
    assert "[lower, upper]" in err.fix


def test_minmax_range_from_defaults_names_the_first_indicator():
    document = minimal_document()
    document["defaults"] = {"normalisation": {"method": "minmax", "range": [10, 0]}}
    expect_schema_error(document, r"minmax range \[10, 0\] must have lo < hi", "a")


def test_goalposts_missing():
    document = minimal_document()
    node(document, "a")["normalisation"] = {"method": "goalposts", "scale": 100}
    err = expect_schema_error(document, r"goalposts normalisation needs `goalposts: \[lower, upper\]`", "a")
    assert "indicator's units" in err.fix


@pytest.mark.parametrize("posts", [[10, 0], [5, 5]])
def test_goalposts_inverted(posts):
    document = minimal_document()
    node(document, "a")["normalisation"] = {"method": "goalposts", "goalposts": posts}
    err = expect_schema_error(document, rf"goalposts \[{posts[0]}, {posts[1]}\] must have lower < upper", "a")
    assert "direction -1" in err.fix


def test_goalposts_inherited_from_defaults_are_enough():
    document = minimal_document()
    document["defaults"] = {"normalisation": {"method": "goalposts", "goalposts": [0, 10]}}
    node(document, "b")["normalisation"] = {"method": "goalposts", "scale": 100}
    framework = framework_from_dict(document)
    assert dict(framework.node("b").normalisation.params) == {"goalposts": [0, 10], "scale": 100}


def test_distance_to_target_without_target():
    document = minimal_document()
    node(document, "b")["normalisation"] = {"method": "distance_to_target", "cap": False}
    err = expect_schema_error(document, r"distance_to_target needs a `target`", "b")
    assert "target:" in err.fix


@pytest.mark.parametrize(
    ("spec", "unused"),
    [
        ({"method": "zscore", "range": [0, 1]}, "'range'"),
        ({"method": "minmax", "mean": 50}, "'mean'"),
        ({"method": "rank", "scale": 10}, "'scale'"),
        ({"method": "goalposts", "goalposts": [0, 1], "cap": False}, "'cap'"),
        ({"method": "percentile", "sd": 2, "mean": 1}, "'mean', 'sd'"),
    ],
)
def test_parameter_that_does_not_apply_to_the_method(spec, unused):
    document = minimal_document()
    node(document, "a")["normalisation"] = spec
    err = expect_schema_error(document, rf"parameter\(s\) {unused} do not apply to '{spec['method']}'", "a")
    takes = ", ".join(NORMALISATION_DEFAULTS[spec["method"]]) or "no parameters"
    assert err.fix.endswith(f"takes {takes}")


def test_parameters_of_the_default_method_are_not_inherited_by_another_method():
    document = minimal_document()
    document["defaults"] = {"normalisation": {"method": "minmax", "range": [1, 10]}}
    node(document, "a")["normalisation"] = {"method": "zscore"}
    framework = framework_from_dict(document)
    assert dict(framework.node("a").normalisation.params) == {"mean": 0.0, "sd": 1.0}
    assert dict(framework.node("b").normalisation.params) == {"range": [1, 10]}


@pytest.mark.parametrize(
    "spec",
    [{"method": "minmax", "target": 3}, {"method": "zscore", "goalposts": [0, 1]},
     {"method": "distance_to_target", "target": 1, "goalposts": [0, 1]}],
    ids=["target-on-minmax", "goalposts-on-zscore", "goalposts-on-distance_to_target"],
)
def test_target_and_goalposts_on_other_methods_are_rejected(spec):
    document = minimal_document()
    node(document, "a")["normalisation"] = spec
    with pytest.raises(SchemaError, match=r"do not apply to"):
        framework_from_dict(document)


@pytest.mark.parametrize(
    ("key", "spec", "on"),
    [
        ("aggregation", {"method": "arithmetic", "p": 0}, "idx"),
        ("imputation", {"method": "mean", "group": "region"}, "a"),
        ("treatment", {"method": "log", "winmax": 3}, "a"),
    ],
    ids=["p-on-arithmetic", "group-on-mean", "winmax-on-log"],
)
def test_parameters_of_other_stages_that_do_not_apply_are_rejected(key, spec, on):
    document = minimal_document()
    node(document, on)[key] = spec
    with pytest.raises(SchemaError, match=r"do not apply to"):
        framework_from_dict(document)


def test_generalised_without_p():
    document = two_level_document()
    node(document, "p")["aggregation"] = {"method": "generalised"}
    err = expect_schema_error(document, r"the generalised mean needs an exponent `p`", "p")
    assert "p: <number>" in err.fix


def test_generalised_without_p_from_defaults_names_the_first_aggregate_in_post_order():
    document = two_level_document()
    document["defaults"] = {"aggregation": {"method": "generalised"}}
    expect_schema_error(document, r"the generalised mean needs an exponent `p`", "p")


def test_generalised_p_inherited_from_defaults():
    document = two_level_document()
    document["defaults"] = {"aggregation": {"method": "generalised", "p": 0.5}}
    node(document, "q")["aggregation"] = {"method": "generalised"}
    framework = framework_from_dict(document)
    assert framework.node("q").aggregation["p"] == 0.5


def test_group_imputation_without_group():
    document = minimal_document()
    node(document, "b")["imputation"] = {"method": "group_median"}
    err = expect_schema_error(document, r"imputation 'group_median' needs a `group` column", "b")
    assert "group: <column>" in err.fix


def test_group_imputation_without_group_from_defaults():
    document = minimal_document()
    document["defaults"] = {"imputation": {"method": "group_mean"}}
    expect_schema_error(document, r"imputation 'group_mean' needs a `group` column", "a")


def test_group_imputation_group_not_in_data_groups():
    document = minimal_document()
    node(document, "a")["imputation"] = {"method": "group_mean", "group": "province"}
    err = expect_schema_error(
        document, r"imputation group 'province' is not among data.groups \['region'\]", "a")
    assert "data.groups" in err.fix


def test_group_imputation_with_a_listed_group():
    document = minimal_document()
    node(document, "a")["imputation"] = {"method": "group_mean", "group": "region"}
    assert framework_from_dict(document).node("a").imputation["group"] == "region"


# ---------------------------------------------------------------------------------------------
# geometric / harmonic / p <= 0 means over children that can be negative
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aggregation", "name"),
    [
        ({"method": "geometric"}, "geometric"),
        ({"method": "harmonic"}, "harmonic"),
        ({"method": "generalised", "p": 0}, "generalised"),
        ({"method": "generalised", "p": -1}, "generalised"),
    ],
)
@pytest.mark.parametrize(
    "normalisation",
    [{"method": "zscore"}, {"method": "minmax", "range": [-1, 1]}],
    ids=["zscore", "minmax-range-below-0"],
)
def test_positive_mean_over_a_child_that_can_be_negative(aggregation, name, normalisation):
    document = minimal_document()
    node(document, "idx")["aggregation"] = aggregation
    node(document, "b")["normalisation"] = normalisation
    err = expect_schema_error(
        document, rf"{name} aggregation needs non-negative inputs, but child\(ren\) 'b' can be negative", "idx")
    assert "(z-scores, a minmax range below 0, or Copeland scores)" in err.message
    assert "range [1, 100]" in err.fix and "arithmetically" in err.fix


def test_geometric_over_a_copeland_child():
    document = two_level_document()
    node(document, "p")["aggregation"] = {"method": "copeland"}
    node(document, "idx")["aggregation"] = {"method": "geometric"}
    expect_schema_error(document, r"geometric aggregation .* child\(ren\) 'p' can be negative", "idx")


def test_geometric_over_an_arithmetic_child_of_zscores():
    document = two_level_document()
    document["defaults"] = {"normalisation": {"method": "zscore"}}
    node(document, "idx")["aggregation"] = {"method": "geometric"}
    expect_schema_error(document, r"child\(ren\) 'p', 'q' can be negative", "idx")


def test_geometric_over_non_negative_children_is_fine():
    document = two_level_document()
    document["defaults"] = {"aggregation": {"method": "geometric"}}
    node(document, "a")["normalisation"] = {"method": "minmax", "range": [1, 100]}
    node(document, "b")["normalisation"] = {"method": "rank"}
    node(document, "c")["normalisation"] = {"method": "goalposts", "goalposts": [0, 1]}
    framework = framework_from_dict(document)
    assert {a.aggregation.name for a in framework.aggregates} == {"geometric"}


def test_generalised_with_positive_p_over_zscores_is_fine():
    document = minimal_document()
    document["defaults"] = {"normalisation": {"method": "zscore"}}
    node(document, "idx")["aggregation"] = {"method": "generalised", "p": 2}
    assert framework_from_dict(document).root.aggregation["p"] == 2


# ---------------------------------------------------------------------------------------------
# pipeline.check_names: node ids against the result columns
# ---------------------------------------------------------------------------------------------


def small_table() -> pl.DataFrame:
    return pl.DataFrame({
        "unit": ["u1", "u2", "u3"],
        "name": ["One", "Two", "Three"],
        "region": ["N", "S", "S"],
        "a": [1.0, 2.0, 4.0],
        "b": [3.0, 1.0, 2.0],
    })


def test_score_small_table_works():
    result = engine.score(framework_from_dict(minimal_document()), small_table())
    assert result.table.columns == ["unit", "region", "idx", "idx_rank", "a", "a_rank", "b", "b_rank"]


@pytest.mark.parametrize(
    ("rename", "load", "clash"),
    [
        ({"b": "unit"}, {}, "unit"),
        ({"b": "region"}, {}, "region"),
        ({"b": "name"}, {"label": "name"}, "name"),
        ({"b": "a_rank"}, {}, "a"),
        ({"idx": "b_rank"}, {}, "b"),
        ({"b": "a_tier"}, {}, "a"),
    ],
    ids=["unit-column", "group-column", "label-column", "rank-of-indicator", "root-is-rank-of-indicator",
         "tier-of-indicator"],
)
def test_node_id_clashing_with_a_result_column(rename, load, clash):
    document = minimal_document()
    for old, new in rename.items():
        node(document, old)["id"] = new
        for n in document["nodes"]:
            if n.get("parent") == old:
                n["parent"] = new
    framework = framework_from_dict(document)  # the framework alone is valid
    with pytest.raises(SchemaError, match=r"node id clashes with a result column") as info:
        engine.score(framework, small_table(), **load)
    err = info.value
    assert err.node == clash
    assert f"'{clash}_rank'" in err.message and f"'{clash}_tier'" in err.message
    assert "rename the node" in err.fix
    assert f"node {clash!r}" in str(err) and "Fix:" in str(err)
    # validate() runs the same check without computing anything
    with pytest.raises(SchemaError, match=r"node id clashes with a result column"):
        engine.validate(framework, small_table(), **load)


def test_tiers_column_in_the_result():
    document = minimal_document()
    document["tiers"] = {"k": 2}
    result = engine.score(framework_from_dict(document), small_table())
    assert result.table["idx_tier"].dtype == pl.Int32
    assert sorted(result.table["idx_tier"].to_list()) in ([1, 2, 2], [1, 1, 2])


def test_weight_override_for_an_unknown_node():
    framework = framework_from_dict(minimal_document())
    with pytest.raises(SchemaError, match=r"cannot set the weight of an unknown node \(or of the index\)") as info:
        engine.score(framework, small_table(), weights={"c": 2.0})
    assert info.value.node == "c" and "'a'" in info.value.fix
    result = engine.score(framework, small_table())
    with pytest.raises(SchemaError, match=r"cannot set the weight of an unknown node") as info:
        result.reaggregate(set={"idx": 2.0})
    assert info.value.node == "idx"


def test_weight_override_for_an_unknown_node_with_data_driven_weighting():
    document = minimal_document()
    node(document, "idx")["weighting"] = {"method": "entropy"}
    result = engine.score(framework_from_dict(document), small_table())
    with pytest.raises(SchemaError, match=r"cannot set the weight of an unknown node") as info:
        result.reaggregate(scale={"c": 2.0})
    assert info.value.node == "c"


def test_no_data_and_no_default_dataset():
    framework = framework_from_dict(minimal_document())
    with pytest.raises(SchemaError, match=r"no data given and the framework names no default dataset") as info:
        engine.score(framework)
    assert info.value.node is None
    assert "pass data" in info.value.fix


# ---------------------------------------------------------------------------------------------
# indicators as weighted sums of columns (`components`)
# ---------------------------------------------------------------------------------------------


def test_components_make_an_indicator():
    document = minimal_document()
    node(document, "a").pop("column")
    node(document, "a")["components"] = {"a1": 0.75, "a2": 0.25}
    framework = framework_from_dict(document)
    indicator = framework.node("a")
    assert indicator.column is None
    assert indicator.source_columns == ("a1", "a2")
    assert dict(indicator.components) == {"a1": 0.75, "a2": 0.25}
    assert framework.columns == ("a1", "a2", "b")


def test_column_and_components_together():
    document = minimal_document()
    node(document, "a")["components"] = {"a1": 1, "a2": 1}
    err = expect_schema_error(document, r"an indicator has either `column` or `components`, not both", "a")
    assert "weighted sum" in err.fix


@pytest.mark.parametrize(
    ("components", "match"),
    [({}, r"nodes/1/components: \{\} should be non-empty"), ({"a1": 0}, r"nodes/1/components/a1: 0 is less than"),
     ({"a1": "x"}, r"nodes/1/components/a1: 'x' is not of type 'number'")],
    ids=["empty", "zero-weight", "text-weight"],
)
def test_bad_components(components, match):
    document = minimal_document()
    node(document, "a").pop("column")
    node(document, "a")["components"] = components
    expect_schema_error(document, match, "a")


def test_components_on_a_node_with_children():
    document = two_level_document()
    node(document, "p")["components"] = {"x": 1}
    expect_schema_error(document, r"cannot have children; children: 'a', 'b'", "p")


def test_components_on_a_node_with_children_names_components():
    document = two_level_document()
    node(document, "p")["components"] = {"x": 1}
    with pytest.raises(SchemaError) as info:
        framework_from_dict(document)
    assert "`column`" not in str(info.value) and "components" in str(info.value)


# ---------------------------------------------------------------------------------------------
# node weighting (AHP) and tiers
# ---------------------------------------------------------------------------------------------


def test_ahp_weighting_with_defaults():
    document = minimal_document()
    node(document, "idx")["weighting"] = {"method": "ahp", "matrix": [[1, 3], [0.33, 1]]}
    weighting = framework_from_dict(document).root.weighting
    assert weighting.name == "ahp"
    assert dict(weighting.params) == {"matrix": [[1.0, 3.0], [0.33, 1.0]], "order": ["a", "b"],
                                      "eigenvector": "principal", "random_index": "saaty"}


def test_weighting_defaults_to_manual():
    assert framework_from_dict(minimal_document()).root.weighting.name == "manual"


def test_weighting_on_an_indicator():
    document = minimal_document()
    node(document, "a")["weighting"] = {"method": "equal"}
    expect_schema_error(document, r"key\(s\) 'weighting' do not apply to an indicator", "a")


@pytest.mark.parametrize("method", ["manual", "equal", "entropy", "critic", "pca"])
def test_non_ahp_weighting_takes_no_parameters(method):
    document = minimal_document()
    node(document, "idx")["weighting"] = {"method": method, "order": ["b", "a"], "eigenvector": "principal"}
    err = expect_schema_error(
        document, rf"weighting '{method}' takes no parameters, got 'eigenvector', 'order'", "idx")
    assert "`ahp`" in err.fix


def test_ahp_without_matrix():
    document = minimal_document()
    node(document, "idx")["weighting"] = {"method": "ahp", "order": ["a", "b"]}
    err = expect_schema_error(document, r"AHP weighting needs a pairwise comparison `matrix`", "idx")
    assert "one row per child" in err.fix


@pytest.mark.parametrize("order", [["a"], ["a", "c"], ["a", "b", "idx"]])
def test_ahp_order_must_list_the_children(order):
    document = minimal_document()
    node(document, "idx")["weighting"] = {"method": "ahp", "matrix": [[1, 2], [0.5, 1]], "order": order}
    err = expect_schema_error(document, r"AHP `order` .* must list exactly the children 'a', 'b'", "idx")
    assert err.fix == "list every child id once"


@pytest.mark.parametrize(
    ("matrix", "shape"),
    [([[1, 2, 4], [0.5, 1, 2]], "2×3"), ([[1]], "1×1"), ([], "0×\\?")],
)
def test_ahp_matrix_shape(matrix, shape):
    document = minimal_document()
    node(document, "idx")["weighting"] = {"method": "ahp", "matrix": matrix}
    err = expect_schema_error(document, rf"AHP matrix is {shape} but the node has 2 children", "idx")
    assert "2×2" in err.fix and "['a', 'b']" in err.fix


@pytest.mark.parametrize(
    ("matrix", "where"),
    [([[1, 3], [0.5, 1]], r"\(a, b\): 3.0 × 0.5"), ([[2, 1], [1, 1]], r"\(a, a\): 2.0 × 2.0")],
    ids=["off-diagonal", "diagonal"],
)
def test_ahp_matrix_not_reciprocal(matrix, where):
    document = minimal_document()
    node(document, "idx")["weighting"] = {"method": "ahp", "matrix": matrix}
    err = expect_schema_error(document, rf"AHP matrix is not reciprocal at {where} ≠ 1", "idx")
    assert "1 / a[i][j]" in err.fix


def test_ahp_order_is_used_for_messages():
    document = minimal_document()
    node(document, "idx")["weighting"] = {"method": "ahp", "order": ["b", "a"], "matrix": [[1, 4], [0.2, 1]]}
    expect_schema_error(document, r"not reciprocal at \(b, a\): 4.0 × 0.2", "idx")


def test_ahp_ragged_matrix():
    document = minimal_document()
    node(document, "idx")["weighting"] = {"method": "ahp", "matrix": [[1, 2], [0.5]]}
    expect_schema_error(document, r"AHP matrix rows have different lengths", "idx")


def test_tiers_default_node_and_method():
    document = minimal_document()
    document["tiers"] = {"k": 3}
    assert dict(framework_from_dict(document).tiers) == {"k": 3, "node": "idx", "method": "jenks"}


@pytest.mark.parametrize("target", ["a", "no_such_node"])
def test_tiers_node_must_be_an_aggregate(target):
    document = minimal_document()
    document["tiers"] = {"k": 4, "node": target}
    err = expect_schema_error(document, rf"tiers.node '{target}' is not an aggregate node", target)
    assert "'idx'" in err.fix


def test_excel_labels_language_must_be_known(asem_result, tmp_path):
    with pytest.raises(SchemaError, match="labels must be 'en', 'zh' or 'id', not 'fr'"):
        asem_result.write(tmp_path / "s.xlsx", labels="fr")
    assert not (tmp_path / "s.xlsx").exists()


def test_tiers_on_a_components_indicator():
    document = minimal_document()
    node(document, "a").pop("column")
    node(document, "a")["components"] = {"a1": 1}
    document["tiers"] = {"k": 2, "node": "a"}
    expect_schema_error(document, r"tiers.node 'a' is not an aggregate node", "a")


@pytest.mark.parametrize(
    ("tiers", "match"),
    [({"k": 1}, r"tiers/k: 1 is less than the minimum of 2"), ({"node": "idx"}, r"tiers: 'k' is a required"),
     ({"k": 3, "method": "natural"}, r"tiers/method: 'natural' is not one of \['jenks', 'quantile'\]")],
)
def test_tiers_schema(tiers, match):
    document = minimal_document()
    document["tiers"] = tiers
    expect_schema_error(document, match, None)


@pytest.mark.parametrize(("where", "change", "match"), [
    ("p", {}, r"renormalise: false cannot apply here: it is not the index"),
    ("idx", {"aggregation": {"method": "geometric"}},
     r"renormalise: false cannot apply here: its aggregation is 'geometric' \(only an arithmetic mean"),
    ("idx", {"weighting": {"method": "entropy"}},
     r"renormalise: false cannot apply here: its weights are computed \(entropy\) and sum to 1 anyway"),
])
def test_renormalise_false_only_on_the_arithmetic_index_with_manual_weights(where, change, match):
    document = two_level_document() if where == "p" else minimal_document()
    node(document, where).update({"renormalise": False, **change})
    err = expect_schema_error(document, match, where)
    assert err.fix.startswith("keep renormalise: false on the index only")


def test_renormalise_false_on_an_indicator_is_misplaced():
    document = minimal_document()
    node(document, "a")["renormalise"] = False
    expect_schema_error(document, r"key\(s\) 'renormalise' do not apply to an indicator", "a")


def test_percentile_ranks_refuse_an_unknown_group_or_node():
    result = engine.score("asem")
    with pytest.raises(SchemaError, match=r"percentile ranks within 'nope': not a group column of the data") as info:
        result.percentile_ranks(within="nope")
    assert "data.groups" in info.value.fix
    with pytest.raises(SchemaError, match=r"percentile ranks of an unknown node") as info:
        result.percentile_ranks(nodes=["Nope"])
    assert info.value.node == "Nope"


def test_reaggregate_refuses_ambiguous_or_bad_weights():
    # issue 15.16: a plain mapping was read as "replace" by the engine and as "multiply" by users
    result = engine.score("asem")
    with pytest.raises(SchemaError, match=r"is ambiguous \(replace the weight, or multiply it\)") as info:
        result.reaggregate({"Environ": 2.0})
    assert info.value.node == "Environ" and "scale={node: 2.0} doubles it" in info.value.fix
    with pytest.raises(SchemaError, match=r"a node's weight is both set and scaled") as info:
        result.reaggregate(set={"Environ": 1.0}, scale={"Environ": 2.0})
    assert info.value.node == "Environ"
    for name in ("set", "scale"):
        with pytest.raises(SchemaError, match=rf"{name}= values must be finite numbers >= 0, got") as info:
            result.reaggregate(**{name: {"Environ": float("nan")}})
        assert info.value.node == "Environ"


# ---------------------------------------------------------------------------------------------
# guard: every raise in the modules has a test in this file
# ---------------------------------------------------------------------------------------------


def raise_messages(source: str, error: str) -> list[str]:
    """The literal part (placeholders and regex metacharacters cut out) of every raise's message."""
    found = []
    for match in re.finditer(rf"raise {error}\(\s*((?:f?\"[^\"]*\"\s*)+|f?'[^']*')", source):
        literal = re.sub(r"(?<=\")\s*f?\"", "", match.group(1))  # join implicit concatenation
        parts = re.split(r"\{[^}]*\}|[()\[\]*.+?\\|^$\"]|\bf\"", literal)
        found.append(max((p.strip() for p in parts), key=len))
    return found


def test_every_schema_error_raise_is_covered():
    # A new `raise SchemaError` in schema.py / pipeline.py must come with a test in this file.
    root = Path(engine.__file__).parent
    this = Path(__file__).read_text(encoding="utf-8")
    messages = []
    for module in ("schema.py", "pipeline.py"):
        source = (root / module).read_text(encoding="utf-8")
        found = raise_messages(source, "SchemaError")
        assert len(found) == source.count("raise SchemaError("), f"could not parse every raise in {module}"
        messages += found
    assert len(messages) >= 30
    uncovered = [m for m in messages if m not in this]
    assert not uncovered, f"raise SchemaError without a test: {uncovered}"


def test_a_framework_given_as_a_mapping_is_validated_like_a_file():
    """``engine.score(dict)`` used to fail with ``OSError: File name too long`` (the dict's text taken as a path)."""
    import yaml

    from engine.schema import load_framework, shipped_frameworks

    document = yaml.safe_load(shipped_frameworks()["asem"].read_text(encoding="utf-8"))
    kept = copy.deepcopy(document)
    assert load_framework(document).digest == load_framework("asem").digest
    assert document == kept  # the caller's dict is not changed
    document["nodes"][0]["weight"] = -1
    with pytest.raises(SchemaError):
        load_framework(document)
    with pytest.raises(SchemaError,
                       match="a framework must be a file path, a shipped framework's name, a mapping or a Framework,"):
        load_framework(42)
    with pytest.raises(SchemaError, match="no framework file or shipped framework named"):
        load_framework("x" * 5000)  # longer than a file name may be
