"""Output paths on the command line: checked before any work (exit 2, one paragraph naming the
path, no traceback), never an input file; Excel and CSV meant for colleagues."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import engine
from engine.cli import main


@pytest.fixture
def place(tmp_path, monkeypatch) -> Path:
    """A working folder with a data file, a plain file and a folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_bytes(engine.shipped_datasets()["asem"].read_bytes())
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "adir").mkdir()
    return tmp_path


def refused(capsys, argv: list[str], match: str, path: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cityrank: error: {path}:") and match in err and "Fix:" in err, err
    assert "Traceback" not in err and err.count("\n") == 1


UNC = ["uncertainty", "-f", "asem", "-n", "1024", "-q"]
SENS = ["sensitivity", "-f", "asem", "-N", "8", "-q"]
BOOT = ["bootstrap", "-f", "asem", "--mode", "units", "-n", "256", "-q"]


@pytest.mark.parametrize(("argv", "match", "path"), [
    (["score", "-f", "asem", "-o", "adir"], "the output path is a folder, a file is expected", "adir"),
    (["score", "-f", "asem", "-o", "/proc/x.xlsx"], "cannot create files in '/proc'", "/proc/x.xlsx"),
    (["score", "-f", "asem", "-o", "afile/x.xlsx"], "in the output path is a file, not a folder", "afile/x.xlsx"),
    (["score", "-f", "asem", "-o", "x.txt"], "unsupported output format '.txt'", "x.txt"),
    (["groups", "-f", "asem", "--by", "EurAsia_group", "-o", "adir"], "a file is expected", "adir"),
    (["compare", "-f", "asem", "--old", "data.csv", "--new", "data.csv", "-o", "afile/c.csv"],
     "is a file, not a folder", "afile/c.csv"),
    ([*UNC, "-o", "afile"], "the output path is a file, a folder is expected", "afile"),
    ([*UNC, "--resume", "afile"], "the output path is a file, a folder is expected", "afile"),
    ([*UNC, "-o", "r.parquet"], "an analysis writes several tables, not one .parquet file", "r.parquet"),
    ([*UNC, "-o", "/proc/mc"], "cannot create files in '/proc'", "/proc/mc"),
    ([*SENS, "-o", "afile"], "a folder is expected", "afile"),
    ([*SENS, "-o", "afile/s.xlsx"], "is a file, not a folder", "afile/s.xlsx"),
    ([*BOOT, "-o", "afile"], "a folder is expected", "afile"),
    ([*BOOT, "-o", "r.csv"], "an analysis writes several tables, not one .csv file", "r.csv"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_unusable_output_paths_exit_2_before_any_work(place, capsys, argv, match, path):
    refused(capsys, argv, match, path)


@pytest.mark.parametrize("argv", [
    ["score", "-f", "asem", "-d", "data.csv", "-o", "data.csv"],
    ["groups", "-f", "asem", "-d", "data.csv", "--by", "EurAsia_group", "-o", "data.csv"],
    ["compare", "-f", "asem", "--old", "data.csv", "--new", "data.csv", "-o", "data.csv"],
    ["score", "-f", "asem", "-d", "data.csv", "-o", "link.csv"],
], ids=["score", "groups", "compare", "through-a-link"])
def test_the_output_is_never_an_input_file(place, capsys, argv):
    (place / "link.csv").symlink_to(place / "data.csv")
    before = (place / "data.csv").read_bytes()
    refused(capsys, argv, "the output file is an input of this run; writing it would destroy the input", argv[-1])
    assert (place / "data.csv").read_bytes() == before


def test_the_framework_file_is_an_input_too(place, capsys):
    framework = place / "fw.xlsx"  # a framework file with an output-like name
    framework.write_bytes(Path(engine.load_framework("asem").path).read_bytes())
    refused(capsys, ["score", "-f", str(framework), "-o", str(framework)], "is an input of this run", str(framework))


def test_no_traceback_from_the_console_script(place):
    """The installed entry point, as a user runs it (the cases of issue 21.9)."""
    for argv, path in ((["score", "-f", "asem", "-o", "adir"], "adir"),
                       (["uncertainty", "-f", "asem", "-n", "1024", "-o", "afile"], "afile")):
        done = subprocess.run([sys.executable, "-c", "import sys; from engine.cli import main; sys.exit(main())",
                               *argv], capture_output=True, text=True, cwd=place, timeout=300)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and f"cityrank: error: {path}:" in done.stderr


def test_score_excel_with_chinese_labels_and_csv_with_bom(place, capsys):
    assert main(["score", "-f", "china-city-innovation-2023", "-o", "s.xlsx", "--labels", "zh", "--top", "1"]) == 0
    scores = pl.read_excel(place / "s.xlsx", sheet_name="scores")
    assert "城市创新与经济实力" in scores.columns and "杭州市" in scores["city_zh"].to_list()
    assert main(["score", "-f", "china-city-innovation-2023", "-o", "s.csv", "--top", "1"]) == 0
    assert (place / "s.csv").read_bytes().startswith("\ufeffadmin_code_6".encode())
    assert main(["score", "-f", "china-city-innovation-2023", "-o", "n.csv", "--no-bom", "--top", "1"]) == 0
    assert (place / "n.csv").read_bytes().startswith(b"admin_code_6")
    capsys.readouterr()


def test_uncertainty_xlsx_output_is_one_workbook(place, capsys):
    assert main(["uncertainty", "-f", "china-city-innovation-2023", "-n", "1024", "--seed", "2", "-q", "--top", "1",
                 "-o", "results.xlsx"]) == 0
    assert "wrote the tables to results.xlsx (one sheet per table" in capsys.readouterr().out
    assert (place / "results.xlsx").is_file()
    sheets = pl.read_excel(place / "results.xlsx", sheet_id=0)
    assert list(sheets) == ["units", "acceptability", "rank_shift", "manifest"]
    assert sheets["units"].columns[:3] == ["unit", "city_zh", "province_zh"]
    assert "北京市" in sheets["units"]["city_zh"].to_list()


def test_sensitivity_csv_folder(place, capsys):
    assert main([*SENS, "--seed", "1", "-o", "sens", "--format", "csv"]) == 0
    assert "wrote the tables (csv files) and manifest.json to sens" in capsys.readouterr().out
    assert sorted(os.listdir(place / "sens")) == ["indices.csv", "manifest.json", "unit_rank_indices.csv",
                                                 "unit_score_indices.csv"]
    ranks = pl.read_csv(place / "sens" / "unit_rank_indices.csv")
    assert ranks.columns[:3] == ["unit", "uName", "EurAsia_group"] and "Austria" in ranks["uName"].to_list()


def test_groups_and_compare_write_excel_with_a_readable_recipe(place, capsys):
    assert main(["groups", "-f", "asem", "--by", "EurAsia_group", "-o", "g.xlsx"]) == 0
    sheets = pl.read_excel(place / "g.xlsx", sheet_id=0)
    assert list(sheets) == ["scores", "recipe"] and sheets["scores"].height == 2
    recipe = {(r["section"], r["key"]): r["value"] for r in sheets["recipe"].iter_rows(named=True)}
    assert recipe[("groups", "by")] == "EurAsia_group" and recipe[("framework", "id")] == "asem"
    assert main(["compare", "-f", "asem", "--old", "data.csv", "--new", "data.csv", "-o", "c.xlsx"]) == 0
    recipe = pl.read_excel(place / "c.xlsx", sheet_name="recipe")
    assert {"old", "new"} <= set(recipe["section"].to_list())
    assert (place / "data.csv").read_bytes() == engine.shipped_datasets()["asem"].read_bytes()
    capsys.readouterr()
