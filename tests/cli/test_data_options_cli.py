"""CLI data options for the input habits of issue 15 item 9 and hostile files of issue 21 item 6."""

from __future__ import annotations

import polars as pl
import pytest
import yaml

from engine.cli import main

FRAMEWORK = {
    "id": "tiny", "labels": {"en": "Tiny"}, "data": {"unit": "代码", "unit_label": "城市"},
    "nodes": [
        {"id": "指数", "labels": {"en": "Index"}},
        {"id": "经济", "parent": "指数", "labels": {"en": "Economy"}, "column": "gdp"},
        {"id": "人口", "parent": "指数", "labels": {"en": "Population"}, "column": "pop"},
    ],
}
ROWS = "代码,城市,gdp,pop\nNA,北京市,43761,2186\n430600,岳阳市,4842,499\n310100,上海市,47219,2487\n"


@pytest.fixture
def files(tmp_path):
    framework = tmp_path / "tiny.yaml"
    framework.write_text(yaml.safe_dump(FRAMEWORK, allow_unicode=True), encoding="utf-8")
    data = tmp_path / "年鉴.csv"
    data.write_bytes(("2-1 城市数据（标题行）\n" + ROWS).encode("gbk"))
    return framework, data


def test_score_reads_gbk_with_title_rows_and_says_so(files, capsys):
    framework, data = files
    assert main(["score", "-f", str(framework), "-d", str(data), "--skip-rows", "1"]) == 0
    out = capsys.readouterr().out
    assert f"note: read {data} as gb18030 text (not UTF-8)" in out
    assert "上海市" in out and "NA" in out  # the unit id NA is an id, not a missing value


def test_encoding_option_is_passed_through(files, capsys):
    framework, data = files
    assert main(["validate", "-f", str(framework), "-d", str(data), "--skip-rows", "1", "--encoding", "gbk"]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["validate", "-f", str(framework), "-d", str(data), "--skip-rows", "1", "--encoding", "utf-8"]) == 2
    assert "the file is not valid utf-8 text" in capsys.readouterr().err


def test_without_skip_rows_the_message_names_the_option(files, capsys):
    framework, data = files
    assert main(["validate", "-f", str(framework), "-d", str(data)]) == 2
    err = capsys.readouterr().err
    assert "--skip-rows N" in err and "Traceback" not in err


def test_wrong_sheet_lists_the_sheets(tmp_path, files, capsys):
    framework, _ = files
    book = tmp_path / "book.xlsx"
    pl.read_csv(ROWS.encode(), schema_overrides={"代码": pl.String}).write_excel(book, worksheet="数据")
    assert main(["validate", "-f", str(framework), "-d", str(book), "--sheet", "Sheet1"]) == 2
    assert "no sheet named 'Sheet1'; the workbook has '数据'" in capsys.readouterr().err
    assert main(["validate", "-f", str(framework), "-d", str(book), "--sheet", "数据"]) == 0


def test_renamed_csv_is_a_clear_error(tmp_path, files, capsys):
    framework, data = files
    fake = tmp_path / "data.xlsx"
    fake.write_bytes(data.read_bytes())
    assert main(["validate", "-f", str(framework), "-d", str(fake)]) == 2
    err = capsys.readouterr().err
    assert "is named .xlsx but is not an Excel workbook: it looks like text" in err and "EOCD" not in err


def test_alias_bomb_and_deep_json_exit_2_without_traceback(tmp_path, capsys):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text('a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
        f"{x}: &{x} [{','.join([f'*{p}'] * 9)}]\n" for p, x in zip("abcdefgh", "bcdefghi", strict=True)),
        encoding="utf-8")
    assert main(["validate", "-f", str(bomb)]) == 2
    assert "refused as an alias bomb" in capsys.readouterr().err
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    assert main(["validate", "-f", str(deep)]) == 2
    err = capsys.readouterr().err
    assert "nested more than 100 levels deep" in err and "RecursionError" not in err
    assert main(["uncertainty", "-f", "asem", "-s", str(bomb), "-n", "1024", "-q"]) == 2
    assert "refused as an alias bomb" in capsys.readouterr().err
