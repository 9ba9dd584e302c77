"""The public API (issue 16.5): every analysis from ``import engine``, results of one shape."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

import engine
from engine.display import ResultShape
from engine.errors import DataError


def test_all_lists_exactly_what_the_package_exports():
    assert len(set(engine.__all__)) == len(engine.__all__)
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name
    for name in ("uncertainty", "sensitivity", "bootstrap", "rank_confidence_sets", "UncertaintyResult",
                 "SensitivityResult", "BootstrapResult", "ConfidenceSets", "Stages"):
        assert name in engine.__all__, name


@pytest.fixture(scope="module")
def results():
    return {
        "UncertaintyResult": engine.uncertainty("asem", replicates=64, seed=3, block_size=32),
        "BootstrapResult": engine.bootstrap("asem", mode="units", replicates=32, seed=3, block_size=16),
        "SensitivityResult": engine.sensitivity("asem", base_samples=8, seed=3, n_boot=10),
    }


@pytest.mark.parametrize("kind", ["UncertaintyResult", "BootstrapResult", "SensitivityResult"])
def test_analysis_results_share_one_shape(results, kind, tmp_path):
    result = results[kind]
    assert type(result).__name__ == kind and isinstance(result, getattr(engine, kind))
    assert result.manifest["seed"] == 3 and result.manifest["framework"]["id"] == "asem"
    json.dumps(result.manifest, default=str)
    assert isinstance(result, ResultShape)
    table = result.units
    assert isinstance(table, pl.DataFrame) and table.height == 51 and table["unit"].n_unique() == 51
    text = repr(result)
    assert text.startswith(f"{kind} (framework asem, units 51,") and "seed 3" in text
    assert str(table["unit"][0]) in text and "more rows" in text
    html = result._repr_html_()
    assert html.startswith(f"<div><p><strong>{kind}</strong>") and "<table" in html and str(table["unit"][0]) in html
    written = result.write(tmp_path / "out")
    assert json.loads((written / "manifest.json").read_text(encoding="utf-8"))["seed"] == 3
    assert sorted(p.stem for p in written.glob("*.parquet")) == sorted(result.output_tables())
    result.write(tmp_path / "csv", format="csv")
    assert (tmp_path / "csv" / f"{next(iter(result.output_tables()))}.csv").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="a file"):  # checked before anything is written
        result.write(tmp_path / "file" / "out")


def test_sensitivity_units_name_each_units_rank_driver(results):
    """``SensitivityResult.units``: one row per unit, the group with the largest total-order index of
    its rank and that index, the same numbers as the long ``unit_rank`` table."""
    result = results["SensitivityResult"]
    units, long = result.units, result.unit_rank
    groups = result.indices["group"].to_list()
    assert units.columns == ["unit", "driver", "driver_total", *[f"total_{g}" for g in groups],
                             *[f"first_{g}" for g in groups]]
    assert units["unit"].to_list() == long["unit"].unique(maintain_order=True).to_list()
    for row in units.head(10).iter_rows(named=True):
        mine = long.filter(pl.col("unit") == row["unit"])
        best = mine.sort("total", descending=True, maintain_order=True).row(0, named=True)
        assert row["driver_total"] == best["total"]
        assert row["driver"] == (best["group"] if best["total"] > 0 else None)
        for g in groups:
            assert row[f"first_{g}"] == mine.filter(pl.col("group") == g)["first"].item()
    assert units["driver"].drop_nulls().len() > 0  # weight noise moves some ranks


def test_a_unit_whose_rank_never_moves_has_no_driver():
    result = engine.SensitivityResult(
        indices=pl.DataFrame({"group": ["a", "b"], "first": [0.0, 0.0], "first_lo": [0.0, 0.0],
                              "first_hi": [0.0, 0.0], "total": [0.0, 0.5], "total_lo": [0.0, 0.0],
                              "total_hi": [0.0, 1.0]}),
        unit_rank=pl.DataFrame({"unit": ["x", "y"] * 2, "group": ["a", "a", "b", "b"], "first": [0.0, 0.1, 0.0, 0.7],
                                "total": [0.0, 0.2, 0.0, 0.9]}),
        unit_score=pl.DataFrame(), manifest={})
    assert result.units.select("unit", "driver", "driver_total").rows() == [("x", None, 0.0), ("y", "b", 0.9)]


def test_score_result_has_the_shape_too(tmp_path):
    result = engine.score("asem")
    assert isinstance(result, ResultShape) and result.units is result.table and result.manifest is result.recipe
    best = result.top(1)[result.dataset.unit].item()
    text = repr(result)
    assert text.startswith("ScoreResult (framework asem, units 51, nodes 60)") and "more rows" in text
    assert text.index(f"{best}") < text.index("more rows")  # shown best first
    assert result._repr_html_().startswith("<div><p><strong>ScoreResult</strong>")
    folder = result.write(tmp_path / "scores", format="parquet")  # format given: the analyses' folder
    assert pl.read_parquet(folder / "units.parquet").equals(result.table)
    assert json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["framework"]["id"] == "asem"
    assert pl.read_csv(result.write(tmp_path / "s", format="csv") / "units.csv").height == 51
    assert pl.read_parquet(result.write(tmp_path / "one.parquet")).equals(result.table)  # one file, as before


def test_audit_result_has_units_and_manifest():
    result = engine.audit("asem", sections=["data"])
    assert isinstance(result, ResultShape) and result.manifest is result.recipe
    assert result.units.height == 51 and "availability" in result.units.columns
    assert engine.audit("asem", sections=["structure"]).units.columns == ["unit"]


def test_confidence_sets_show_a_summary_and_their_table():
    sets = engine.rank_confidence_sets(np.array([3.0, 2.0, 1.0, 0.0]), np.array([0.1, 0.1, 2.0, 2.0]),
                                       units=("a", "b", "c", "d"), seed=1, n_draws=200)
    text = repr(sets)
    assert text.startswith("ConfidenceSets (units 4, level 0.9, stepdown True, draws 200)")
    assert "ci_lower" in text and "│ a" in text
    assert "<table" in sets._repr_html_() and "more rows" not in text
    assert isinstance(sets, ResultShape) and sets.units.equals(sets.table()) and sets.labels == ("a", "b", "c", "d")


def test_confidence_sets_write_their_table_and_manifest(tmp_path):
    sets = engine.rank_confidence_sets([3.0, 2.0, 1.0], [0.5, 0.5, 0.5], n_draws=100, seed=7, top_k=1)
    assert sets.manifest["seed"] == 7 and sets.manifest["level"] == 0.9 and sets.manifest["top_k"] == 1
    out = sets.write(tmp_path / "cs", format="csv")
    assert pl.read_csv(out / "units.csv")["ci_lower"].to_list() == sets.lower.tolist()
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["kind"] == "rank_confidence_sets"
    fresh = engine.rank_confidence_sets([3.0, 2.0, 1.0], [0.5, 0.5, 0.5], n_draws=100, seed=None)
    again = engine.rank_confidence_sets([3.0, 2.0, 1.0], [0.5, 0.5, 0.5], n_draws=100, seed=fresh.manifest["seed"])
    assert isinstance(fresh.manifest["seed"], int)
    assert fresh.marginal_critical_values.tolist() == again.marginal_critical_values.tolist()


def test_import_engine_leaves_the_analyses_for_first_use():
    """``import engine`` (every cityrank command) does not pay for the analyses' imports (SciPy's
    statistics, the Monte Carlo modules); the first ``engine.uncertainty`` does."""
    code = ("import sys, engine; loaded = [m for m in sys.modules if m.startswith('engine.analysis.')]; "
            "assert loaded == [], loaded; "
            "scipy = [m for m in ('scipy.stats', 'scipy.optimize', 'scipy.interpolate') if m in sys.modules]; "
            "assert scipy == [], scipy; engine.uncertainty; assert 'engine.analysis.uncertainty' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
