"""``cityrank audit``: prints the verdict, writes the tables (read back), bad input exits 2."""

from __future__ import annotations

import json

import polars as pl
import pytest

import engine
from engine.cli import main

from .tiny import TABLE, document


@pytest.fixture
def tiny_files(tmp_path):
    import yaml

    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(document()), encoding="utf-8")
    TABLE.write_csv(tmp_path / "tiny.csv")
    return tmp_path


def test_audit_prints_the_verdict_and_writes_tables_read_back(tiny_files, capsys):
    out = tiny_files / "audit"
    argv = ["audit", "-f", str(tiny_files / "tiny.yaml"), "-d", str(tiny_files / "tiny.csv"),
            "--sections", "data", "structure", "--option", "redundant=0.95", "-o", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "audit of 'tiny-audit' on 8 units (data, structure)" in printed
    assert "redundant correlation with 'x2'" in printed
    assert "one component ('x4')" in printed
    assert f"wrote the tables (parquet files) and manifest.json to {out}" in printed
    api = engine.audit(tiny_files / "tiny.yaml", tiny_files / "tiny.csv", sections=["data", "structure"],
                       options={"redundant": 0.95})
    for name, table in api.tables.items():
        assert pl.read_parquet(out / f"{name}.parquet").equals(table, null_equal=True), name
    assert pl.read_parquet(out / "flags.parquet").equals(api.flags, null_equal=True)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["audit"]["options"]["structure"]["redundant"] == 0.95
    assert manifest["audit"]["sections"] == ["data", "structure"]


def test_audit_csv_and_workbook(tiny_files, capsys):
    base = ["audit", "-f", str(tiny_files / "tiny.yaml"), "-d", str(tiny_files / "tiny.csv"), "--sections", "structure"]
    assert main([*base, "-o", str(tiny_files / "csv"), "--format", "csv"]) == 0
    alpha = pl.read_csv(tiny_files / "csv" / "structure_alpha.csv")
    assert alpha["aggregate"].to_list() == ["A", "B", "Index"]
    assert main([*base, "-o", str(tiny_files / "audit.xlsx")]) == 0
    sheets = pl.read_excel(tiny_files / "audit.xlsx", sheet_id=0)
    assert {"structure_alpha", "flags", "manifest"} <= set(sheets)
    capsys.readouterr()


@pytest.mark.parametrize("argv, match", [
    (["--option", "redundant"], "--option 'redundant' is not NAME=VALUE"),
    (["--option", "colour=red"], r"unknown audit option\(s\) \['colour'\]"),
    (["--option", "structure_stage=final"], "structure_stage must be one of"),
    (["-o", "out.csv"], "an analysis writes several tables, not one .csv file"),
])
def test_bad_input_exits_2_with_one_paragraph(tiny_files, capsys, monkeypatch, argv, match):
    import re

    monkeypatch.chdir(tiny_files)
    code = main(["audit", "-f", "tiny.yaml", "-d", "tiny.csv", "--sections", "data", "structure", *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("cityrank: error:") and re.search(match, err), err
    assert not (tiny_files / "out.csv").exists()


def test_missing_data_file_exits_2(tiny_files, capsys):
    assert main(["audit", "-f", str(tiny_files / "tiny.yaml"), "-d", str(tiny_files / "nope.csv")]) == 2
    assert "nope.csv" in capsys.readouterr().err


def test_shipped_index_from_the_command_line(capsys):
    assert main(["audit", "-f", "china-city-innovation-2023", "--sections", "data", "structure", "--top", "3"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("audit of 'china-city-innovation-2023' on 297 units")
    assert "more in the flags table" in printed


def test_result_display_and_flag_levels():
    from engine.audit import flag

    result = engine.audit(document_framework(), TABLE, sections=["structure"])
    text = repr(result)
    assert text.startswith("AuditResult\naudit of 'tiny-audit'") and "structure_alpha (3×4)" in text
    html = result._repr_html_()
    assert "<pre>" in html and "structure_pca_loadings" in html
    assert result.verdict(limit=1).endswith("… 8 more in the flags table")
    with pytest.raises(ValueError, match="level must be one of"):
        flag("data", "error", "boom")


def document_framework():
    from engine.schema import framework_from_dict

    return framework_from_dict(document())
