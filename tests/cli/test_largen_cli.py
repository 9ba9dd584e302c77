"""``cityrank uncertainty --large-n-above / --rank-bins`` (issue 19 item 2)."""

from __future__ import annotations

import json

import polars as pl

from engine.cli import main


def test_large_n_flags_reach_the_run_and_the_manifest(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["uncertainty", "-f", "asem", "-n", "512", "--seed", "3", "--large-n-above", "10", "--rank-bins", "4",
                 "-o", str(out), "-q"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["large_n"]["above"] == 10 and manifest["large_n"]["passes"] == 2
    units = pl.read_parquet(out / "units.parquet")
    assert {"median_rank", "q05_rank", "q95_rank", "p_top10", "p_decile_1", "pct_rank_median",
            "p_same_decile"} <= set(units.columns)
    assert pl.read_parquet(out / "acceptability.parquet").columns[:3] == ["nominal_decile", "units", "decile_1"]


def test_a_negative_threshold_is_refused_by_the_cli(capsys):
    assert main(["uncertainty", "-f", "asem", "-n", "256", "--large-n-above", "-1", "-q"]) == 2
    assert "large_n_above must be a whole number of units >= 0, got -1" in capsys.readouterr().err
