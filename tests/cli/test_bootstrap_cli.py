"""``cityrank bootstrap``: the three modes on shipped frameworks (few replicates), files written, and
a bad invocation's exit code and message."""

from __future__ import annotations

import json

import polars as pl
import pytest

from engine.cli import main


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(("argv", "mode", "printed"), [
    (["-f", "regional-ai-2023", "-r", "ai_firms_synthetic", "--mode", "records"], "records",
     "record-level Poisson bootstrap of 4,311 records"),
    (["-f", "regional-ai-2023", "--mode", "units"], "units", "unit bootstrap (31 units drawn per replicate)"),
    (["-f", "regional-ai-2023", "--mode", "noise"], "noise", "measurement-error bootstrap (24 indicators)"),
    (["-f", "asem", "--mode", "units"], "units", "unit bootstrap"),
], ids=["records", "units", "noise", "asem-units"])
def test_bootstrap_modes_write_their_files(capsys, tmp_path, argv, mode, printed):
    out = tmp_path / mode
    code, stdout, stderr = _run(capsys, ["bootstrap", *argv, "-n", "256", "--seed", "3", "--block-size", "256",
                                         "-q", "--out", str(out)])
    assert code == 0, stderr
    assert printed in stdout and "256 replicates" in stdout
    assert "least stable units" in stdout and f"to {out}" in stdout
    for name in ("units.parquet", "acceptability.parquet", "rank_shift.parquet", "manifest.json"):
        assert (out / name).is_file(), name
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["mode"] == mode and manifest["replicates"] == 256 and manifest["seed"] == 3
    units = pl.read_parquet(out / "units.parquet")
    assert {"median_rank", "q05_rank", "q95_rank", "p_same_tier"} <= set(units.columns)
    assert any(c.startswith("cs_") for c in units.columns) == (mode != "units")


def test_records_mode_prints_the_confidence_set_and_the_synthetic_note(capsys, tmp_path):
    code, stdout, _ = _run(capsys, ["bootstrap", "-f", "regional-ai-2023", "-r", "ai_firms_synthetic", "-n", "256",
                                    "--seed", "1", "--block-size", "256", "-q", "--top", "3"])
    assert code == 0
    assert "SYNTHETIC" in stdout
    assert "90% confidence set for the top 5" in stdout


def test_combined_study_prints_variance_shares(capsys, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("mode: units\nperturb:\n  weights:\n    - {depth: 1, noise: 0.25}\n", encoding="utf-8")
    code, stdout, stderr = _run(capsys, ["bootstrap", "-f", "asem", "--spec", str(spec), "-n", "256", "--seed", "2",
                                         "--block-size", "256", "-q", "-o", str(tmp_path / "out")])
    assert code == 0, stderr
    assert "share of rank variance: perturbations" in stdout
    assert (tmp_path / "out" / "variance_shares.parquet").is_file()


def test_records_mode_without_records_fails_with_a_clear_message(capsys):
    code, _, stderr = _run(capsys, ["bootstrap", "-f", "regional-ai-2023", "--mode", "records", "-n", "16", "-q"])
    assert code == 2
    assert stderr.startswith("cityrank: error:")
    assert "mode records needs the record-level table" in stderr and "--records" in stderr


def test_unknown_records_file_and_missing_mode_fail_with_exit_code_2(capsys, tmp_path):
    code, _, stderr = _run(capsys, ["bootstrap", "-f", "regional-ai-2023", "-r", str(tmp_path / "none.csv"), "-q"])
    assert code == 2 and "no records file or shipped dataset named" in stderr
    code, _, stderr = _run(capsys, ["bootstrap", "-f", "asem", "-n", "16", "-q"])
    assert code == 2 and "gives no mode" in stderr


def test_bad_mode_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bootstrap", "-f", "asem", "--mode", "rows"])
    assert exc.value.code == 2
    assert "invalid choice: 'rows'" in capsys.readouterr().err
