"""Pipeline composition: stage stopping, restarts, recipe, kernel/twin equality end to end."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

import engine
from engine.data import prepare
from engine.pipeline import STAGES
from engine.schema import framework_from_dict


def tiny_document(**defaults) -> dict:
    """Index -> {A: (x1, x2), B: (x3)} over 5 units; hand-checkable."""
    return {
        "id": "tiny", "labels": {"en": "Tiny"}, "defaults": defaults,
        "data": {"unit": "unit"},
        "nodes": [
            {"id": "Index", "labels": {"en": "Index"}},
            {"id": "A", "parent": "Index", "labels": {"en": "A"}, "weight": 3},
            {"id": "B", "parent": "Index", "labels": {"en": "B"}, "weight": 1},
            {"id": "x1", "parent": "A", "labels": {"en": "x1"}, "column": "x1"},
            {"id": "x2", "parent": "A", "labels": {"en": "x2"}, "column": "x2", "direction": -1},
            {"id": "x3", "parent": "B", "labels": {"en": "x3"}, "column": "x3"},
        ],
    }


TINY = pl.DataFrame({"unit": ["a", "b", "c", "d", "e"], "x1": [0.0, 1, 2, 3, 4], "x2": [4.0, 3, 2, 1, 0],
                     "x3": [10.0, 30, 20, 20, None]})


def test_tiny_index_by_hand():
    result = engine.score(framework_from_dict(tiny_document()), TINY)
    t = result.table.sort("unit")
    # x1 and x2 (reversed) both normalise to 0, 25, 50, 75, 100; x3 -> 0, 100, 50, 50, missing.
    assert t["A"].to_list() == [0.0, 25.0, 50.0, 75.0, 100.0]
    assert t["B"].to_list() == [0.0, 100.0, 50.0, 50.0, None]
    # Index = 0.75 A + 0.25 B; unit e has no B, so its weights renormalise to A alone.
    assert t["Index"].to_list() == [0.0, 43.75, 50.0, 68.75, 100.0]
    assert t["Index_rank"].to_list() == [5, 4, 3, 2, 1]
    assert t["B_rank"].to_list() == [4, 1, 2, 2, None]  # competition ranking: 1, 2, 2, 4


def test_every_stage_can_stop_and_later_stages_are_absent(asem_framework):
    inputs = prepare(asem_framework, engine.pipeline.as_dataset(asem_framework, None))
    fields = ["denominated", "imputed", "kept", "treated", "normalised", "scores", "scores", "ranks"]
    for k, stage in enumerate(STAGES):
        stages = engine.run_stages(asem_framework, inputs, up_to=stage)
        assert getattr(stages, fields[k]) is not None
        if k + 1 < len(STAGES) and fields[k + 1] != fields[k]:
            assert getattr(stages, fields[k + 1]) is None
    with pytest.raises(ValueError, match="up_to must be one of"):
        engine.run_stages(asem_framework, inputs, up_to="bake")


def test_reference_twins_give_the_same_result_end_to_end(asem_framework, asem_result):
    twin = engine.score(asem_framework, use_reference=True)
    np.testing.assert_allclose(twin.stages.scores, asem_result.stages.scores, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(twin.stages.ranks, asem_result.stages.ranks)


def test_reaggregate_equals_a_full_run_with_the_same_weights(asem_framework, asem_result):
    weights = {"Conn": 2.0, "Physical": 0.5, "LPI": 3.0}
    restarted = asem_result.reaggregate(set=weights)
    full = engine.score(asem_framework, weights=weights)
    np.testing.assert_array_equal(restarted.stages.scores, full.stages.scores)
    assert restarted.table.equals(full.table)
    assert restarted.recipe["stages"]["aggregate"]["Index"]["weights"] == {"Conn": 2 / 3, "Sust": 1 / 3}


def test_results_are_reproducible_bit_for_bit(asem_framework, asem_result):
    again = engine.score(asem_framework)
    assert again.table.equals(asem_result.table)
    assert again.recipe == asem_result.recipe


def test_recipe_records_every_stage(asem_result):
    recipe = asem_result.recipe
    assert set(recipe["stages"]) == set(STAGES)
    assert recipe["framework"]["id"] == "asem" and len(recipe["framework"]["digest"]) == 64
    assert recipe["engine"]["version"] == engine.__version__
    assert recipe["stages"]["impute"]["filled"]["ConSpeed"] == 8
    assert recipe["stages"]["treat"]["applied"]["Bord"]["winsorised"] == 3
    json.dumps(recipe)  # serialisable


def test_rescale_top_and_x100(asem_document):
    asem_document["rescale"] = {"method": "top"}
    top = engine.score(framework_from_dict(asem_document)).table
    assert top["Index"].max() == 1.0 and top["Conn"].max() != 1.0
    asem_document["rescale"] = {"method": "x100", "scope": "aggregates"}
    x100 = engine.score(framework_from_dict(asem_document)).table
    assert x100["Conn"].max() > 100


def test_mixed_aggregation_methods_per_node(asem_document):
    """Different nodes of one level may use different methods; ranks stay a valid ranking."""
    for node in asem_document["nodes"]:
        if node["id"] == "Physical":
            node["aggregation"] = {"method": "geometric"}
        elif node["id"] == "Social":
            node["aggregation"] = {"method": "copeland"}
        elif node["id"] == "Environ":
            node["aggregation"] = {"method": "generalised", "p": 2}
    result = engine.score(framework_from_dict(asem_document))
    twin = engine.score(framework_from_dict(asem_document), use_reference=True)
    np.testing.assert_allclose(result.stages.scores, twin.stages.scores, rtol=1e-12, atol=1e-12)
    assert result.table["Social"].min() < 0  # Copeland scores are wins - losses


def test_min_coverage_makes_scores_missing():
    doc = tiny_document(min_coverage=1.0)
    result = engine.score(framework_from_dict(doc), TINY)
    row = result.table.filter(pl.col("unit") == "e").row(0, named=True)
    assert row["B"] is None and row["Index"] is None and row["Index_rank"] is None


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".xlsx", ".arrow"])
def test_write_result_round_trips(asem_result, tmp_path, suffix):
    # Excel headers are node labels by default; ids give back the table's column names
    path = asem_result.write(tmp_path / f"scores{suffix}", **({"labels": "id"} if suffix == ".xlsx" else {}))
    back = engine.load_data(path, unit="uCode").table
    assert back["uCode"].to_list() == asem_result.table["uCode"].to_list()
    np.testing.assert_allclose(back["Index"].to_numpy(), asem_result.table["Index"].to_numpy(), rtol=1e-12)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    if suffix == ".parquet":
        recipe = json.loads(pq.read_schema(path).metadata[b"cityrank"])
        assert recipe["framework"]["id"] == "asem"


def test_stages_without_imputation_or_treatment_share_one_array():
    """Scoring at scale (issue 19.1): a stage that changes nothing keeps its input instead of a copy
    (10^6 units x 25 indicators: 200 MB each), and the result is the same."""
    stages = engine.score("imd-2019").stages  # no imputation, no treatment, no screening
    assert stages.imputed is stages.denominated and stages.records["impute"]["filled"] == {}
    assert stages.kept.all() and stages.treated is stages.imputed and stages.records["treat"]["applied"] == {}
    treated = engine.score("hdi").stages  # one log treatment: a new array
    assert treated.treated is not treated.imputed and treated.records["treat"]["applied"]


def test_result_rows_are_best_first_missing_last_ties_in_input_order():
    table = pl.DataFrame({"unit": list("abcde"), "v": [1.0, None, 3.0, 1.0, 3.0]})
    framework = framework_from_dict({"id": "t", "labels": {"en": "t"}, "data": {"unit": "unit"},
                                     "defaults": {"normalisation": {"method": "rank"}},
                                     "nodes": [{"id": "idx", "labels": {"en": "i"}},
                                               {"id": "v", "parent": "idx", "labels": {"en": "v"}, "column": "v"}]})
    result = engine.score(framework, table)
    assert result.table["unit"].to_list() == ["c", "e", "a", "d", "b"]
    assert result.table["idx_rank"].to_list() == [1, 1, 3, 3, None]


def test_shown_is_the_table_itself_when_it_is_best_first_and_sorts_it_otherwise():
    """repr shows the table best first: score builds it in that order, so shown() returns it without
    a sort (10^6 units: no 0.5 GB copy for a repr); a table in another order is sorted, ties and
    unranked units as the stable sort puts them."""
    from dataclasses import replace

    result = engine.score("asem")
    assert result.shown() is result.table
    rank = f"{result.index_id}_rank"
    shuffled = replace(result, table=result.table.sample(fraction=1.0, shuffle=True, seed=3))
    assert shuffled.shown() is not shuffled.table
    assert shuffled.shown().equals(shuffled.table.sort(rank, nulls_last=True, maintain_order=True))
    assert shuffled.shown()[rank].to_list() == result.table[rank].to_list()
