"""Audit section "whatif": removing a node equals scoring a framework file without it through the full
pipeline; zero-weight nodes move nothing; comparing two frameworks; what cannot be removed."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

import engine
from engine.audit import compare_frameworks, what_if
from engine.errors import SchemaError
from engine.schema import framework_from_dict

CHINA = "china-city-innovation-2023"


def without_nodes(framework: engine.Framework, removed: set[str]) -> engine.Framework:
    """The framework document with ``removed`` and everything below them deleted, built again."""
    document = json.loads(json.dumps(dict(framework.document), ensure_ascii=False))
    gone = set(removed)
    while True:
        more = {n["id"] for n in document["nodes"] if n.get("parent") in gone} - gone
        if not more:
            break
        gone |= more
    document["nodes"] = [n for n in document["nodes"] if n["id"] not in gone]
    return framework_from_dict(document)


def index_ranks_by_unit(result: engine.ScoreResult) -> dict:
    return dict(zip(result.table[result.dataset.unit], result.table[result.index_id + "_rank"], strict=True))


@pytest.fixture(scope="module")
def china():
    return engine.score(CHINA)


@pytest.mark.parametrize("removed", ["st_exp_pc", "tech_contract_pc", "edu_exp_share", "Inputs", "Economy"])
def test_removal_equals_the_full_pipeline_on_a_framework_file_without_the_node(china, removed):
    summary, shifts, flags = what_if(china, [removed])
    assert flags == []
    full = engine.score(without_nodes(china.framework, {removed}), china.dataset)
    expected = index_ranks_by_unit(full)
    got = dict(zip(shifts[china.dataset.unit], shifts["new_rank"], strict=True))
    assert got == expected  # every unit, exactly
    base = index_ranks_by_unit(china)
    diff = np.array([abs(base[u] - expected[u]) for u in expected], float)
    assert summary["mean_abs_shift"][0] == pytest.approx(diff.mean(), abs=1e-12)
    assert summary["max_abs_shift"][0] == diff.max()
    assert (shifts["shift"] == shifts["rank"] - shifts["new_rank"]).all()


def test_removal_under_a_geometric_mean_with_zeros_equals_the_file_without_it():
    # minmax puts each indicator's minimum at 0; under a geometric mean a zero component zeroes the
    # parent, so a weight of 0 alone would not remove x1 -- the component list must lose it too.
    nodes = [{"id": "Index", "labels": {"en": "Index"}, "aggregation": {"method": "geometric"}}]
    nodes += [{"id": f"x{i}", "parent": "Index", "labels": {"en": f"x{i}"}, "column": f"x{i}"} for i in range(3)]
    fw = framework_from_dict({"id": "geo", "labels": {"en": "Geo"}, "data": {"unit": "unit"}, "nodes": nodes,
                              "defaults": {"normalisation": {"method": "minmax", "range": [0, 100]}}})
    rng = np.random.default_rng(11)
    data = pl.DataFrame({"unit": [f"u{i}" for i in range(40)], **{f"x{i}": rng.uniform(1, 9, 40) for i in range(3)}})
    result = engine.score(fw, data)
    _, shifts, _ = what_if(result, ["x1"])
    full = engine.score(without_nodes(fw, {"x1"}), data)
    assert dict(zip(shifts["unit"], shifts["new_rank"], strict=True)) == index_ranks_by_unit(full)
    lowest = int(np.argmin(data["x1"].to_numpy()))  # its normalised x1 is 0
    zero_weight = result.reaggregate(set={"x1": 0.0})  # weight 0 only: that unit still scores 0
    assert zero_weight.stages.scores[lowest, -1] == 0.0
    assert full.stages.scores[lowest, -1] > 0.0


def test_a_zero_weight_indicator_moves_nobody():
    nodes = [{"id": "Index", "labels": {"en": "Index"}}]
    nodes += [{"id": f"x{i}", "parent": "Index", "labels": {"en": f"x{i}"}, "column": f"x{i}"} for i in range(3)]
    fw = framework_from_dict({"id": "zero", "labels": {"en": "Zero"}, "data": {"unit": "unit"}, "nodes": nodes})
    rng = np.random.default_rng(4)
    data = pl.DataFrame({"unit": [f"u{i}" for i in range(30)], **{f"x{i}": rng.normal(size=30) for i in range(3)}})
    weighted = engine.score(fw, data).reaggregate(set={"x1": 0.0})  # a file cannot say 0; reaggregate can
    summary, shifts, _ = what_if(weighted)
    row = summary.filter(pl.col("removed") == "x1").row(0, named=True)
    assert row["mean_abs_shift"] == 0.0 and row["units_moved"] == 0 and row["spearman"] == pytest.approx(1.0)
    assert (shifts.filter(pl.col("variant") == "x1")["shift"] == 0).all()
    assert summary.filter(pl.col("removed") != "x1")["mean_abs_shift"].min() > 0


def test_compare_two_frameworks_on_the_same_data(china):
    summary, units = compare_frameworks(china, CHINA)
    assert summary["spearman"][0] == pytest.approx(1.0) and summary["mean_abs_shift"][0] == 0.0
    other = china.reaggregate(set={"Inputs": 3.0})
    summary, units = compare_frameworks(china, other)
    base, new = index_ranks_by_unit(china), index_ranks_by_unit(other)
    unit = china.dataset.unit
    by_unit = {u: s for u, s in zip(units[unit], units["shift"], strict=True)}
    assert by_unit == {u: base[u] - new[u] for u in base}
    scores = china.table.select(unit, china.index_id).join(
        other.table.select(unit, pl.col(other.index_id).alias("other")), on=unit)
    from scipy.stats import spearmanr

    assert summary["spearman"][0] == pytest.approx(spearmanr(scores[china.index_id], scores["other"]).statistic,
                                                    abs=1e-12)
    assert summary["units"][0] == china.table.height
    assert summary["mean_abs_shift"][0] == pytest.approx(np.mean(np.abs(list(by_unit.values()))), abs=1e-12)


def test_what_cannot_be_removed():
    from .tiny import TABLE, framework  # B has one component (x4)

    result = engine.score(framework(), TABLE)
    summary, _, flags = what_if(result)
    assert "x4" not in summary["removed"].to_list()
    assert [(f["node"], f["column"]) for f in flags] == [("x4", "B")]
    assert "only component of 'B'" in flags[0]["message"]
    with pytest.raises(SchemaError, match="cannot remove 'Index' in a what-if: it is the index"):
        what_if(result, ["Index"])
    with pytest.raises(SchemaError, match="cannot remove 'nope' in a what-if: no such node"):
        what_if(result, ["nope"])


def test_section_through_audit_with_a_comparison(tmp_path):
    out = engine.audit(CHINA, sections=["whatif"], options={"compare_with": CHINA})
    assert set(out.tables) == {"whatif_summary", "whatif_shifts", "whatif_compare", "whatif_compare_units"}
    assert out["whatif_summary"].height == 16  # 12 indicators and 4 dimensions
    assert out["whatif_shifts"].height == 16 * 297
    assert out["whatif_compare"]["mean_abs_shift"][0] == 0.0


@pytest.mark.parametrize(("options", "match"), [
    ({"whatif_nodes": ["nope"]}, "cannot remove 'nope' in a what-if: no such node"),
    ({"whatif_nodes": "Inputs"}, "the nodes to remove must be a list of node ids"),
    ({"compare_with": "no-such-framework"}, "no framework file or shipped framework named 'no-such-framework'"),
])
def test_audit_refuses_bad_whatif_options_before_scoring(options, match, monkeypatch):
    def no_scoring(*args, **kwargs):
        raise AssertionError("scored")

    monkeypatch.setattr("engine.pipeline.score", no_scoring)
    with pytest.raises(SchemaError, match=match):
        engine.audit(CHINA, sections=["whatif"], options=options)


def test_data_driven_weights_above_a_removal_are_named():
    nodes = [{"id": "Index", "labels": {"en": "Index"}, "weighting": {"method": "entropy"}},
             {"id": "A", "parent": "Index", "labels": {"en": "A"}},
             {"id": "B", "parent": "Index", "labels": {"en": "B"}}]
    nodes += [{"id": f"x{i}", "parent": "A" if i < 2 else "B", "labels": {"en": f"x{i}"}, "column": f"x{i}"}
              for i in range(4)]
    fw = framework_from_dict({"id": "entropy", "labels": {"en": "E"}, "data": {"unit": "unit"}, "nodes": nodes})
    rng = np.random.default_rng(5)
    data = pl.DataFrame({"unit": [f"u{i}" for i in range(30)], **{f"x{i}": rng.uniform(size=30) for i in range(4)}})
    _, _, flags = what_if(engine.score(fw, data), ["x0", "A"])
    assert [(f["node"], f["column"]) for f in flags] == [("x0", "Index"), ("A", "Index")]
    assert all("weighted by entropy" in f["message"] and "not estimated again" in f["message"] for f in flags)

