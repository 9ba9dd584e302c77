"""`cityrank change`: paired Monte Carlo of rank changes between two periods of a panel file."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import yaml

from engine.cli import main
from tests.analysis.conftest import city_data, city_framework


@pytest.fixture
def panel_files(tmp_path):
    framework = tmp_path / "mini.yaml"
    framework.write_text(yaml.safe_dump(city_framework(data={"unit": "unit", "period": "year"})), encoding="utf-8")
    before = city_data(n_units=30)
    rng = np.random.default_rng(2)
    after = before.with_columns(pl.col(f"x{j}") * pl.Series(rng.uniform(0.7, 1.4, 30)) for j in range(6))
    table = pl.concat([before.with_columns(pl.lit(2011).alias("year")),
                       after.filter(pl.col("unit") != "c004").with_columns(pl.lit(2012).alias("year"))])
    panel = tmp_path / "panel.csv"
    table.write_csv(panel)
    return framework, panel


def test_change_prints_robust_changes_and_writes_tables(panel_files, tmp_path, capsys):
    framework, panel = panel_files
    out = tmp_path / "out"
    assert main(["change", "-f", str(framework), "--panel", str(panel), "--from", "2011", "--to", "2012",
                 "-n", "4096", "--seed", "5", "--block-size", "1024", "-q", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "4,096 paired replicates" in text and "29 units in both periods, 0 entered, 1 left" in text
    assert "robust rank changes" in text and "left: c004" in text
    units = pl.read_parquet(out / "units.parquet")
    assert units.height == 30 and units.filter(pl.col("status") == "left")["unit"].to_list() == ["c004"]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["kind"] == "change" and manifest["periods"] == {"from": 2011, "to": 2012}
    assert (out / "distribution.parquet").exists()


def test_change_refuses_a_period_not_in_the_panel(panel_files, capsys):
    framework, panel = panel_files
    assert main(["change", "-f", str(framework), "--panel", str(panel), "--from", "2010", "--to", "2012",
                 "-n", "1024", "-q"]) == 2
    assert "start period '2010' is not in the panel" in capsys.readouterr().err


def test_change_with_records_runs_the_paired_record_bootstrap(tmp_path, capsys):
    """The shipped SYNTHETIC firm panel: --records resamples the firms of both editions, paired by firm id."""
    out = tmp_path / "out"
    assert main(["change", "-f", "ai-firms-2023", "--panel", "ai_firm_cities_panel_synthetic", "--period", "year",
                 "--from", "2022", "--to", "2023", "--records", "ai_firms_panel_synthetic", "--record-id", "firm_id",
                 "-n", "2048", "--seed", "1", "-q", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "paired record bootstrap of 4,016 + 4,311 records; pairing by record id 'firm_id'" in text
    assert "(3,815 records in both periods)" in text and "2,048 paired replicates" in text
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["mode"] == "records" and manifest["records"]["record_id"] == "firm_id"
    assert pl.read_parquet(out / "units.parquet").height == 61


def test_change_with_records_refuses_an_unknown_record_id_column(capsys):
    assert main(["change", "-f", "ai-firms-2023", "--panel", "ai_firm_cities_panel_synthetic", "--period", "year",
                 "--from", "2022", "--to", "2023", "--records", "ai_firms_panel_synthetic", "--record-id", "firm",
                 "-n", "1024", "-q"]) == 2
    assert "the records have no record id column 'firm'" in capsys.readouterr().err
