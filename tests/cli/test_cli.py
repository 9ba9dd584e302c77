"""The console script: every command, exit codes, and one-paragraph errors."""

from __future__ import annotations

import polars as pl
import pytest

from engine.cli import main


def test_demo_prints_both_city_rankings_and_the_least_stable_units(capsys, tmp_path):
    report = tmp_path / "demo.html"
    assert main(["demo", "--top", "3", "--replicates", "4096", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert f"Report (one HTML file, works offline): {report}" in out and report.stat().st_size > 500_000
    assert "REAL data" in out and "297 cities" in out and "杭州市" in out
    assert "SYNTHETIC data" in out and "337 cities" in out and "北京市" in out and "tier" in out
    assert "4,096 replicates" in out and "least stable units" in out


def test_score_asem_prints_coinr_example(capsys):
    assert main(["score", "-f", "asem", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "CHE" in out and "Switzerland" in out and "68.3837" in out


def test_uncertainty_command_writes_tables(tmp_path, capsys):
    out = tmp_path / "mc"
    assert main(["uncertainty", "-f", "asem", "-n", "2048", "--seed", "3", "--block-size", "1024", "-q",
                 "-o", str(out), "--top", "3"]) == 0
    text = capsys.readouterr().out
    assert "2,048 replicates" in text and "least stable units" in text
    names = {p.name for p in out.iterdir()}
    assert names >= {"units.parquet", "acceptability.parquet", "rank_shift.parquet", "manifest.json"}
    assert not names & {"chunks", "run.json", ".lock"}  # checkpoints removed after success (--keep-checkpoints)


def test_frameworks_and_datasets_list_shipped_items(capsys):
    assert main(["frameworks"]) == 0
    assert "asem:" in capsys.readouterr().out
    assert main(["datasets"]) == 0
    assert "asem: asem.csv" in capsys.readouterr().out


def test_validate_ok(capsys):
    assert main(["validate", "-f", "asem", "-d", "asem"]) == 0
    assert capsys.readouterr().out.startswith("ok: framework 'asem'")


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".xlsx"])
def test_score_writes_the_output(tmp_path, capsys, suffix):
    out = tmp_path / f"r{suffix}"
    assert main(["score", "-f", "asem", "-o", str(out), "--top", "2", "--node", "Sust"]) == 0
    assert out.exists() and "wrote 51 units × 60 nodes" in capsys.readouterr().out


def test_bad_input_exits_2_with_one_paragraph(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    pl.DataFrame({"uCode": ["A", "A"], "LPI": [1.0, 2.0]}).write_csv(bad)
    assert main(["score", "-f", "asem", "-d", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cityrank: error:") and "duplicate unit ids" in err and "Fix:" in err
    assert err.count("\n") == 1


def test_unknown_framework_exits_2(capsys):
    assert main(["validate", "-f", "no-such-framework"]) == 2
    assert "no framework file or shipped framework named 'no-such-framework'" in capsys.readouterr().err
