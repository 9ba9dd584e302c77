"""Audit section "weights": optimised weights against closed forms, the written framework file, the rank
changes, unreachable targets and bad input."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import engine
from engine.audit import optimise_weights
from engine.errors import SchemaError
from engine.schema import framework_from_dict

CHINA = "china-city-innovation-2023"


def flat(k: int, *, columns=None) -> engine.Framework:
    nodes = [{"id": "Index", "labels": {"en": "Index"}}]
    nodes += [{"id": f"x{i}", "parent": "Index", "labels": {"en": f"x{i}"}, "column": (columns or {}).get(i, f"x{i}")}
              for i in range(k)]
    return framework_from_dict({"id": "flat", "labels": {"en": "Flat"}, "data": {"unit": "unit"}, "nodes": nodes})


def correlated(n: int, seed: int) -> pl.DataFrame:
    """Three positively correlated indicators of different spread (after minmax too)."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=n)
    x0 = common + 0.5 * rng.normal(size=n)
    x1 = common + 1.5 * rng.normal(size=n)
    x2 = np.exp(0.6 * (common + rng.normal(size=n)))  # skewed: a smaller spread after minmax
    return pl.DataFrame({"unit": [f"u{i}" for i in range(n)], "x0": x0, "x1": x1, "x2": x2})


def covariance(result: engine.ScoreResult) -> np.ndarray:
    return np.cov(result.stages.normalised, rowvar=False)


def test_balance_of_correlations_solves_the_linear_equations():
    # y = z w (arithmetic): r_c = (C w)_c / sqrt(C_cc w'Cw).  Equal r_c <=> (C w)_c / sqrt(C_cc) equal for
    # every c: with sum w = 1, a linear system solved here by hand with NumPy.
    result = engine.score(flat(3), correlated(400, seed=1))
    c = covariance(result)
    scaled = c / np.sqrt(np.diag(c))[:, None]  # rows (C w)_c / sqrt(C_cc)
    system = np.vstack([scaled[0] - scaled[1], scaled[0] - scaled[2], np.ones(3)])
    exact = np.linalg.solve(system, [0.0, 0.0, 1.0])
    found = optimise_weights(result, objective="balance", measure="correlation")
    table = found.components
    assert table["weight_after"].to_list() == pytest.approx(exact, abs=2e-3)
    assert table["share_after"].to_list() == pytest.approx([1 / 3] * 3, abs=1e-4)
    assert table["gap"][0] < 1e-4 and found.flags == []


def test_infomax_of_correlations_is_the_first_principal_component_scaled_by_spread():
    # max sum r_c^2 = max v'R R v / v'R v with v = D^(1/2) w: the top eigenvector e of the correlation
    # matrix R, so w is proportional to e_c / sd_c.
    result = engine.score(flat(3), correlated(400, seed=2))
    c = covariance(result)
    sd = np.sqrt(np.diag(c))
    eigenvalues, vectors = np.linalg.eigh(c / np.outer(sd, sd))
    top = np.abs(vectors[:, -1])
    exact = (top / sd) / (top / sd).sum()
    found = optimise_weights(result, objective="infomax", measure="correlation")
    assert found.components["weight_after"].to_list() == pytest.approx(exact, abs=2e-3)
    assert (found.components["measure_after"] ** 2).sum() == pytest.approx(eigenvalues[-1], abs=1e-5)


def test_balance_of_importance_equalises_the_correlation_ratios():
    result = engine.score(flat(3), correlated(400, seed=3))
    found = optimise_weights(result)  # balance, importance, equal targets
    assert found.components["share_before"].to_list() != pytest.approx([1 / 3] * 3, abs=0.02)
    assert found.components["share_after"].to_list() == pytest.approx([1 / 3] * 3, abs=0.02)
    targets = {"Index": {"x0": 1, "x1": 2, "x2": 1}}
    found = optimise_weights(result, targets=targets)
    assert found.components["target"].to_list() == [0.25, 0.5, 0.25]
    assert found.components["share_after"].to_list() == pytest.approx([0.25, 0.5, 0.25], abs=0.02)


def test_the_written_framework_reproduces_the_reported_rank_changes(tmp_path):
    result = engine.score(CHINA)
    found = optimise_weights(result, ["Human", "Index"], objective="infomax")
    path = found.write(tmp_path / "infomax.yaml")
    reloaded = engine.load_framework(path)
    assert reloaded.node_ids == result.framework.node_ids
    for node, weight in found.weights.items():
        assert reloaded.node(node).weight == weight
    # infomax drops edu_exp_share (nearly uncorrelated with Human); a file needs weights > 0: 1e-6
    assert found.weights["edu_exp_share"] == 1e-6
    assert set(found.weights) == {"hei_students_pc", "edu_exp_share", "library_pc", "Inputs", "Outputs", "Human",
                                  "Economy"}
    rescored = engine.score(reloaded, result.dataset)
    unit = result.dataset.unit
    expected = dict(zip(rescored.table[unit], rescored.table["Index_rank"], strict=True))
    ranks = found.ranks
    assert dict(zip(ranks[unit], ranks["new_rank"], strict=True)) == expected
    assert (ranks["shift"] == ranks["rank"] - ranks["new_rank"]).all()
    assert ranks["shift"].abs().sum() > 0
    assert found.yaml().startswith("# Weights of Human, Index optimised by cityrank audit (infomax")


def test_ranks_are_those_of_the_written_file_under_a_data_driven_parent(tmp_path):
    # Index weighted by entropy over A and B: optimising A changes A's scores, so scoring the written
    # file recomputes the Index weights; the reported ranks must be the file's.
    nodes = [{"id": "Index", "labels": {"en": "Index"}, "weighting": {"method": "entropy"}},
             {"id": "A", "parent": "Index", "labels": {"en": "A"}},
             {"id": "B", "parent": "Index", "labels": {"en": "B"}}]
    nodes += [{"id": f"x{i}", "parent": "A" if i < 3 else "B", "labels": {"en": f"x{i}"}, "column": f"x{i}"}
              for i in range(5)]
    fw = framework_from_dict({"id": "entropy", "labels": {"en": "E"}, "data": {"unit": "unit"}, "nodes": nodes})
    data = correlated(150, seed=8).with_columns(x3=pl.col("x0") ** 2 + pl.col("x2"), x4=pl.col("x1").abs())
    result = engine.score(fw, data)
    found = optimise_weights(result, ["A"], objective="infomax")
    rescored = engine.score(found.write(tmp_path / "f.yaml"), data)
    assert rescored.stages.weights["A"] != result.stages.weights["A"]  # entropy weights moved with A's scores
    assert dict(zip(found.ranks["unit"], found.ranks["new_rank"], strict=True)) == dict(
        zip(rescored.table["unit"], rescored.table["Index_rank"], strict=True))


def test_unreachable_targets_are_flagged_with_the_node_and_the_gap():
    # x1 = 2 x0 + 1: after minmax both are the same column, so their shares are 1/2 whatever the weights.
    data = correlated(200, seed=4).with_columns(x1=2 * pl.col("x0") + 1)
    result = engine.score(flat(2), data)
    found = optimise_weights(result, targets={"Index": {"x0": 3, "x1": 1}}, measure="correlation")
    assert found.components["gap"][0] == pytest.approx(0.25, abs=1e-9)
    (warning,) = found.flags
    assert warning["node"] == "Index" and warning["level"] == "warning"
    assert "cannot reach its targets" in warning["message"] and "0.250" in warning["message"]


def test_nodes_that_cannot_be_optimised_and_bad_requests():
    from .tiny import TABLE, framework  # B has one component; 8 units

    result = engine.score(framework(), TABLE)
    found = optimise_weights(result, ["B"])
    assert found.weights == {} and found.components.height == 0
    assert found.flags[0]["node"] == "B" and "one component" in found.flags[0]["message"]
    found = optimise_weights(result, ["A"])
    assert "fewer than the 20 the measures need (option min_units)" in found.flags[0]["message"]
    found = optimise_weights(result, ["A"], min_units=5, measure="correlation")  # 7 units with x3: enough now
    assert found.flags == [] and found.components.height == 3
    with pytest.raises(SchemaError, match="weights can only be optimised at an aggregate node"):
        optimise_weights(result, ["x1"])
    with pytest.raises(SchemaError, match="unknown weight objective 'maxent'"):
        optimise_weights(result, objective="maxent")
    with pytest.raises(SchemaError, match="unknown weight measure 'kendall'"):
        optimise_weights(result, measure="kendall")
    with pytest.raises(SchemaError, match="targets must give every component a number >= 0"):
        optimise_weights(result, ["A"], targets={"A": {"x1": 1, "x2": -1, "x3": 1}})
    with pytest.raises(SchemaError, match="targets given for a node that is not optimised"):
        optimise_weights(result, ["A"], targets={"Index": {"A": 1, "B": 1}})
    with pytest.raises(SchemaError, match="weight tolerance must be between 0 and 1"):
        engine.audit("no-such-framework", sections=["weights"], options={"weight_tolerance": 2})


def test_section_through_audit():
    out = engine.audit(CHINA, sections=["weights"], options={"weight_nodes": ["Index"]})
    assert set(out.tables) == {"weights_balance", "weights_infomax", "weights_ranks", "weights_frameworks"}
    assert out["weights_ranks"]["objective"].unique().sort().to_list() == ["balance", "infomax"]
    assert out["weights_ranks"].height == 2 * 297
    text = out["weights_frameworks"].filter(pl.col("objective") == "balance")["framework"][0]
    assert engine.schema.parse_yaml(text)["id"] == CHINA


@pytest.mark.parametrize(("options", "match"), [
    ({"weight_nodes": ["st_exp_pc"]}, "weights can only be optimised at an aggregate node"),
    ({"weight_targets": {"Index": {"Inputs": 1}}}, "targets must give every component a number"),
    ({"weight_targets": [1, 2]}, "weight targets must map nodes to"),
    ({"weight_measure": "kendall"}, "unknown weight measure 'kendall'"),
    ({"min_units": 2}, "audit option min_units = 2 is invalid"),
])
def test_audit_refuses_bad_weight_options_before_scoring(options, match, monkeypatch):
    def no_scoring(*args, **kwargs):
        raise AssertionError("scored")

    monkeypatch.setattr("engine.pipeline.score", no_scoring)
    with pytest.raises(SchemaError, match=match):
        engine.audit(CHINA, sections=["weights"], options=options)


def test_audit_write_puts_the_optimised_frameworks_beside_the_tables(tmp_path):
    out = engine.audit(CHINA, sections=["weights"], options={"weight_nodes": ["Human"]})
    out.write(tmp_path / "audit")
    for objective in ("balance", "infomax"):
        path = tmp_path / "audit" / f"framework_{objective}.yaml"
        ranks = out["weights_ranks"].filter(pl.col("objective") == objective)
        rescored = engine.score(path, out.score.dataset)
        unit = out.score.dataset.unit
        assert dict(zip(ranks[unit], ranks["new_rank"], strict=True)) == dict(
            zip(rescored.table[unit], rescored.table["Index_rank"], strict=True))
    out.write(tmp_path / "audit.xlsx")
    assert engine.load_framework(tmp_path / "audit.framework_balance.yaml").node_ids == out.score.framework.node_ids

