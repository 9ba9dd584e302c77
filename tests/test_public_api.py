"""The public API (issue 16.5): every analysis from ``import engine``, results of one shape."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

import engine


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
    table = result.units if kind != "SensitivityResult" else result.unit_rank
    assert isinstance(table, pl.DataFrame) and table.height >= 51
    text = repr(result)
    assert text.startswith(f"{kind} (framework asem, units 51,") and "seed 3" in text
    assert str(table["unit"][0]) in text and "more rows" in text
    html = result._repr_html_()
    assert html.startswith(f"<div><p><strong>{kind}</strong>") and "<table" in html and str(table["unit"][0]) in html
    written = result.write(tmp_path / "out")
    assert (written / "manifest.json").exists()


def test_confidence_sets_show_a_summary_and_their_table():
    sets = engine.rank_confidence_sets(np.array([3.0, 2.0, 1.0, 0.0]), np.array([0.1, 0.1, 2.0, 2.0]),
                                       units=("a", "b", "c", "d"), seed=1, n_draws=200)
    text = repr(sets)
    assert text.startswith("ConfidenceSets (units 4, level 0.9, stepdown True, draws 200)")
    assert "ci_lower" in text and "│ a" in text
    assert "<table" in sets._repr_html_() and "more rows" not in text


def test_import_engine_leaves_the_analyses_for_first_use():
    """``import engine`` (every cityrank command) does not pay for the analyses' imports (SciPy's
    statistics, the Monte Carlo modules); the first ``engine.uncertainty`` does."""
    code = ("import sys, engine; loaded = [m for m in sys.modules if m.startswith('engine.analysis.')]; "
            "assert loaded == [], loaded; "
            "scipy = [m for m in ('scipy.stats', 'scipy.optimize', 'scipy.interpolate') if m in sys.modules]; "
            "assert scipy == [], scipy; engine.uncertainty; assert 'engine.analysis.uncertainty' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
