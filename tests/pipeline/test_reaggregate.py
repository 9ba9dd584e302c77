"""ScoreResult.reaggregate(set=…/scale=…) and the effective weights it reports (issue 15.16)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import engine
from engine.errors import SchemaError


def test_a_plain_mapping_is_refused_as_ambiguous(asem_result):
    with pytest.raises(SchemaError, match=r"reaggregate\(\{node: value\}\) is ambiguous \(replace the weight, or "
                       r"multiply it\).*set=\{node: weight\}.*scale=\{node: factor\}") as info:
        asem_result.reaggregate({"Environ": 2.0})
    assert info.value.node == "Environ"


def test_scale_multiplies_and_set_replaces(asem_framework, asem_result):
    before = asem_result.stages.weights["Environ"]
    doubled = asem_result.reaggregate(scale={"Environ": 2.0})
    assert doubled.stages.weights["Environ"] == 2 * before
    replaced = asem_result.reaggregate(set={"Environ": 2 * before})
    assert replaced.table.equals(doubled.table)
    full = engine.score(asem_framework, weights={"Environ": 2 * before})
    np.testing.assert_array_equal(doubled.stages.scores, full.stages.scores)
    assert doubled.recipe["stages"]["reaggregate"] == {"set": {}, "scale": {"Environ": 2.0},
                                                       "previous": {"Environ": before},
                                                       "weights": {"Environ": 2 * before}}


def test_effective_weights_after_the_change(asem_result):
    table = asem_result.effective_weights
    assert table.columns == ["node", "parent", "weight", "local", "global"]
    environ = table.row(by_predicate=pl.col("node") == "Environ", named=True)
    siblings = table.filter(table["parent"] == environ["parent"])
    assert siblings["local"].sum() == pytest.approx(1.0)
    doubled = asem_result.reaggregate(scale={"Environ": 2.0}).effective_weights
    after = doubled.row(by_predicate=pl.col("node") == "Environ", named=True)
    n = siblings.height  # equal sibling weights: w / n → 2w / (n + 1)
    assert environ["local"] == pytest.approx(1 / n) and after["local"] == pytest.approx(2 / (n + 1))
    indicators = doubled.filter(doubled["node"].is_in([i.id for i in asem_result.framework.indicators]))
    assert indicators["global"].sum() == pytest.approx(1.0)
    assert "Environ: 1 -> 2 (share 0.500)" in repr(asem_result.reaggregate(scale={"Environ": 2.0}))
    assert repr(asem_result).startswith("ScoreResult (framework asem, units 51, nodes 60)")


def test_bad_set_and_scale_are_refused(asem_result):
    with pytest.raises(SchemaError, match=r"a node's weight is both set and scaled"):
        asem_result.reaggregate(set={"Environ": 1.0}, scale={"Environ": 2.0})
    with pytest.raises(SchemaError, match=r"scale= values must be finite numbers >= 0, got \{'Environ': -1\.0\}"):
        asem_result.reaggregate(scale={"Environ": -1.0})
    with pytest.raises(SchemaError, match=r"set= values must be finite numbers >= 0"):
        asem_result.reaggregate(set={"Environ": float("nan")})
    with pytest.raises(SchemaError, match=r"cannot set the weight of an unknown node"):
        asem_result.reaggregate(scale={"Nope": 2.0})


def test_run_stages_accepts_a_loaded_dataset(asem_framework):
    data = engine.load_data("asem", framework=asem_framework)
    stages = engine.run_stages(asem_framework, data, up_to="normalise")
    assert stages.normalised is not None and stages.scores is None
