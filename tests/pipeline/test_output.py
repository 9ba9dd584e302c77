"""Output files colleagues can use: permissions, links, Excel workbooks (labels, number formats,
imputed cells, a readable recipe), CSV for Excel, and the analysis tables with names and groups."""

from __future__ import annotations

import json
import os
import re
import stat
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

import engine
from engine.analysis.bootstrap import bootstrap
from engine.analysis.sensitivity import sensitivity
from engine.analysis.uncertainty import uncertainty
from engine.errors import DataError
from engine.io import atomic_write, settings_table, write_json, write_table, write_tables

CITY = "china-city-innovation-2023"


@pytest.fixture(scope="module")
def city_result() -> engine.ScoreResult:
    return engine.score(CITY)


@pytest.fixture(scope="module")
def city_run() -> engine.analysis.uncertainty.UncertaintyResult:
    return uncertainty(CITY, replicates=2048, seed=5, block_size=1024)


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it."""
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_parquet_dictionary_encodes_text_columns_only_and_reads_back_identically(tmp_path):
    """Scores and ranks are mostly distinct: dictionary pages for them overflow and cost time (10^6
    units: 2.2 s of CPU instead of 0.8); text columns keep them."""
    table = pl.DataFrame({"unit": ["a", "b", "c", "d"], "group": ["x", "x", None, "y"], "score": [0.5, None, 1.5, -0.0],
                          "rank": pl.Series([2, None, 1, 3], dtype=pl.Int32), "flag": [True, False, None, True]})
    path = write_table(table, tmp_path / "t.parquet", metadata={"run": 1})
    columns = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {columns.column(i).path_in_schema: columns.column(i).encodings for i in range(columns.num_columns)}
    assert {c for c, e in encodings.items() if any("DICTIONARY" in x for x in e)} == {"unit", "group"}
    back = pl.read_parquet(path)
    assert back.equals(table) and back.schema == table.schema
    assert np.signbit(back["score"][3])


# ------------------------------------------------------------------------------ permissions, links

@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    table = pl.DataFrame({"unit": ["a", "b"], "x": [1.0, 2.0]})
    for name in ("t.parquet", "t.csv", "t.xlsx", "t.arrow"):
        write_table(table, tmp_path / "new" / name, metadata={"run": 1})
        assert mode(tmp_path / "new" / name) == expected, name
    assert mode(tmp_path / "new" / "t.csv.recipe.json") == expected
    assert mode(tmp_path / "new") == 0o777 & ~mask  # the folder it created


def test_analysis_folder_and_files_follow_the_umask(tmp_path, umask, city_run):
    umask(0o022)
    folder = city_run.write(tmp_path / "out" / "mc")
    assert mode(tmp_path / "out") == 0o755 and mode(folder) == 0o755
    assert {mode(p) for p in folder.iterdir()} == {0o644}


def test_a_symlink_output_is_written_through_to_its_target(tmp_path):
    target = tmp_path / "real" / "scores.parquet"
    target.parent.mkdir()
    target.write_bytes(b"old")
    link = tmp_path / "scores.parquet"
    link.symlink_to(target)
    table = pl.DataFrame({"unit": ["a"], "x": [1.5]})
    assert write_table(table, link) == link
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert pl.read_parquet(target).equals(table)
    assert sorted(os.listdir(target.parent)) == ["scores.parquet"]  # no temporary file left


def test_an_os_error_while_writing_is_a_data_error_naming_the_path(tmp_path):
    def full(tmp: Path) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(DataError, match=r"cannot write the output \(No space left on device\)") as info:
        atomic_write(tmp_path / "x.json", full)
    assert info.value.path == str(tmp_path / "x.json") and os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------ score → Excel

def sheet_xml(path: Path, name: str) -> str:
    """The XML of sheet ``name`` of a workbook."""
    with zipfile.ZipFile(path) as z:
        workbook = z.read("xl/workbook.xml").decode()
        rels = z.read("xl/_rels/workbook.xml.rels").decode()
        rid = re.search(rf'<sheet name="{re.escape(name)}" sheetId="\d+" r:id="(rId\d+)"', workbook).group(1)
        target = re.search(rf'<Relationship Id="{rid}" [^>]*Target="([^"]+)"', rels).group(1)
        return z.read(f"xl/{target.lstrip('/').removeprefix('xl/')}").decode()


def cell_style(path: Path, sheet: str, ref: str) -> dict[str, str]:
    """Number format and fill colour of one cell (``ref`` like ``B7``)."""
    xml = sheet_xml(path, sheet)
    found = re.search(rf'<c r="{ref}"(?: s="(\d+)")?', xml)
    index = int(found.group(1) or 0)
    with zipfile.ZipFile(path) as z:
        styles = z.read("xl/styles.xml").decode()
    formats = dict(re.findall(r'<numFmt numFmtId="(\d+)" formatCode="([^"]*)"', styles))
    fills = re.findall(r"<fill>(.*?)</fill>", re.search(r"<fills[^>]*>(.*?)</fills>", styles).group(1))
    xf = re.findall(r"<xf [^>]*?/?>", re.search(r"<cellXfs[^>]*>(.*?)</cellXfs>", styles).group(1))[index]
    fmt = re.search(r'numFmtId="(\d+)"', xf).group(1)
    fill = fills[int(re.search(r'fillId="(\d+)"', xf).group(1))]
    colour = re.search(r'fgColor rgb="([0-9A-F]+)"', fill)
    return {"format": formats.get(fmt, fmt), "fill": colour.group(1) if colour else ""}


def ref(row: int, column: int) -> str:
    letters = ""
    column += 1
    while column:
        column, rest = divmod(column - 1, 26)
        letters = chr(65 + rest) + letters
    return f"{letters}{row + 1}"


def test_excel_headers_are_the_labels_and_a_sheet_maps_them_to_ids(tmp_path, city_result):
    path = city_result.write(tmp_path / "scores.xlsx")
    sheets = pl.read_excel(path, sheet_id=0)
    assert list(sheets) == ["scores", "columns", "recipe"]
    scores, columns = sheets["scores"], sheets["columns"]
    fw = city_result.framework
    assert scores.columns[:5] == ["admin_code_6", "city_zh", "province_zh", fw.root.labels["en"],
                                  fw.root.labels["en"] + " (rank)"]
    assert columns["column"].to_list() == city_result.table.columns
    assert columns["header"].to_list() == scores.columns
    row = columns.filter(pl.col("column") == "gdp_pc_rank").row(0, named=True)
    assert row["node"] == "gdp_pc" and row["what"] == "rank"
    assert row["header"] == fw.node("gdp_pc").labels["en"] + " (rank)"
    tier = columns.filter(pl.col("column") == "Index_tier").row(0, named=True)
    assert tier["header"] == fw.root.labels["en"] + " (tier)" and tier["what"] == "tier"
    assert scores["city_zh"].to_list() == city_result.table["city_zh"].to_list()
    # full precision in the cells (xlsxwriter writes 16 significant digits; Excel keeps 15)
    np.testing.assert_allclose(scores[fw.root.labels["en"]].to_numpy(), city_result.table["Index"].to_numpy(),
                               rtol=1e-15)


def test_excel_labels_in_chinese_or_ids(tmp_path, city_result):
    fw = city_result.framework
    zh = pl.read_excel(city_result.write(tmp_path / "zh.xlsx", labels="zh"), sheet_name="scores")
    assert fw.root.labels["zh"] in zh.columns and fw.root.labels["zh"] + "（排名）" in zh.columns
    ids = pl.read_excel(city_result.write(tmp_path / "id.xlsx", labels="id"), sheet_name="scores")
    assert ids.columns == city_result.table.columns


def test_excel_labels_fall_back_to_english_and_stay_distinct(tmp_path, asem_result):
    # ASEM has no Chinese labels
    zh = pl.read_excel(asem_result.write(tmp_path / "zh.xlsx", labels="zh"), sheet_name="scores")
    assert asem_result.framework.root.labels["en"] in zh.columns
    assert len(set(zh.columns)) == len(zh.columns) == asem_result.table.width


def test_excel_rounds_for_display_only(tmp_path, city_result):
    path = city_result.write(tmp_path / "scores.xlsx")
    columns = city_result.table.columns
    assert cell_style(path, "scores", ref(1, columns.index("Index")))["format"] == "0.00"  # scores 0-100
    assert cell_style(path, "scores", ref(1, columns.index("Index_rank")))["format"] == "0"
    assert cell_style(path, "scores", ref(1, columns.index("admin_code_6")))["format"] == "0"  # no 330,100
    back = pl.read_excel(path, sheet_name="scores")
    value = back[city_result.framework.root.labels["en"]][0]
    assert value == pytest.approx(city_result.table["Index"][0], rel=1e-15) and round(value, 2) != value


def test_excel_shades_imputed_cells_and_notes_them(tmp_path, city_result):
    imputed = city_result.imputed_cells()
    filled = city_result.recipe["stages"]["impute"]["filled"]
    assert {c: int(imputed[c].sum()) for c in imputed.columns[1:] if imputed[c].any()} == filled
    path = city_result.write(tmp_path / "scores.xlsx")
    columns = city_result.table.columns
    row = int(imputed["tech_contract_pc"].arg_true()[0])
    for column in ("tech_contract_pc", "tech_contract_pc_rank"):
        assert cell_style(path, "scores", ref(row + 1, columns.index(column)))["fill"] == "FFFFEB9C"
    clean = int((~imputed["tech_contract_pc"]).arg_true()[0])
    assert cell_style(path, "scores", ref(clean + 1, columns.index("tech_contract_pc")))["fill"] == ""
    with zipfile.ZipFile(path) as z:
        comments = z.read("xl/comments1.xml").decode()
    header = ref(0, columns.index("tech_contract_pc"))
    assert re.search(rf'<comment ref="{header}".*?7 imputed value\(s\) \(group_median within province_zh\)',
                     comments)


def test_excel_recipe_sheet_has_one_row_per_setting(tmp_path, city_result):
    recipe = pl.read_excel(city_result.write(tmp_path / "scores.xlsx"), sheet_name="recipe")
    assert recipe.columns == ["section", "key", "value"]
    expected = settings_table(json.loads(json.dumps(city_result.recipe, default=str)))
    assert recipe.height == expected.height
    rows = {(r["section"], r["key"]): r["value"] for r in recipe.iter_rows(named=True)}
    assert rows[("framework", "id")] == CITY
    assert rows[("stages.impute", "methods.gdp_pc.method")] == "group_median"
    assert rows[("stages.normalise", "methods.gdp_pc.range")] == "[0, 100]"
    assert not any(v in ("{", "}", "[", "]") for v in recipe["value"].to_list())  # no JSON spread over rows


def test_a_table_too_large_for_a_sheet_is_refused_before_writing(tmp_path, monkeypatch):
    monkeypatch.setattr("engine.io.EXCEL_MAX_ROWS", 3)
    with pytest.raises(DataError, match=r"table 'scores' \(4 rows × 1 columns\) does not fit an Excel sheet"):
        write_table(pl.DataFrame({"x": [1, 2, 3, 4]}), tmp_path / "big.xlsx")
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------ CSV for Excel

def test_csv_has_a_byte_order_mark_unless_asked_not_to(tmp_path, city_result):
    with_bom = city_result.write(tmp_path / "bom.csv")
    assert with_bom.read_bytes().startswith(b"\xef\xbb\xbfadmin_code_6,city_zh")
    back = engine.load_data(with_bom, unit="admin_code_6").table
    assert back.columns == city_result.table.columns and back["city_zh"][0] == city_result.table["city_zh"][0]
    plain = city_result.write(tmp_path / "plain.csv", bom=False)
    assert plain.read_bytes().startswith(b"admin_code_6,")


# ------------------------------------------------------------------------------ inputs are not outputs

def test_score_result_refuses_to_overwrite_its_data_file(tmp_path):
    data = tmp_path / "asem.csv"
    data.write_bytes(engine.shipped_datasets()["asem"].read_bytes())
    result = engine.score("asem", data)
    before = data.read_bytes()
    with pytest.raises(DataError, match="the output file is an input of this run") as info:
        result.write(data)
    assert info.value.path == str(data) and data.read_bytes() == before
    link = tmp_path / "link.csv"
    link.symlink_to(data)
    with pytest.raises(DataError, match="the output file is an input of this run"):
        result.write(link)
    os.link(data, tmp_path / "hard.csv")  # the same file under another name
    with pytest.raises(DataError, match="the output file is an input of this run"):
        result.write(tmp_path / "hard.csv")
    assert data.read_bytes() == before


def test_score_result_refuses_a_folder_as_output_file(tmp_path, asem_result):
    with pytest.raises(DataError, match="the output path is a folder, a file is expected"):
        asem_result.write(tmp_path)


# ------------------------------------------------------------------------------ analysis tables

def test_uncertainty_workbook_has_a_sheet_per_table_with_names_and_groups(tmp_path, city_run):
    path = city_run.write(tmp_path / "results.xlsx")
    assert path.is_file() and os.listdir(tmp_path) == ["results.xlsx"]  # a file, not a folder
    sheets = pl.read_excel(path, sheet_id=0)
    assert list(sheets) == ["units", "acceptability", "rank_shift", "manifest"]
    units = sheets["units"]
    assert units.columns[:4] == ["unit", "city_zh", "province_zh", "nominal_score"]
    first = units.row(0, named=True)
    names = city_run.problem.result.table.select("admin_code_6", "city_zh", "province_zh")
    row = names.filter(pl.col("admin_code_6") == first["unit"]).row(0, named=True)
    assert (first["city_zh"], first["province_zh"]) == (row["city_zh"], row["province_zh"]) == ("杭州市", "浙江省")
    assert units["median_rank"].to_list() == city_run.units["median_rank"].to_list()
    assert sheets["acceptability"].columns[:4] == ["unit", "city_zh", "province_zh", "rank_1"]
    manifest = {(r["section"], r["key"]): r["value"] for r in sheets["manifest"].iter_rows(named=True)}
    assert manifest[("run", "kind")] == "uncertainty" and manifest[("run", "replicates")] == "2048"


@pytest.mark.parametrize("fmt", ["parquet", "csv", "xlsx"])
def test_uncertainty_folder_formats(tmp_path, city_run, fmt):
    folder = city_run.write(tmp_path / "out", format=fmt)
    files = sorted(os.listdir(folder))
    if fmt == "xlsx":
        assert files == ["manifest.json", "results.xlsx"]
        units = pl.read_excel(folder / "results.xlsx", sheet_name="units")
    else:
        assert files == sorted(["manifest.json", *(f"{t}.{fmt}" for t in ("units", "acceptability", "rank_shift"))])
        units = pl.read_parquet(folder / "units.parquet") if fmt == "parquet" else pl.read_csv(folder / "units.csv")
    assert units.columns[:3] == ["unit", "city_zh", "province_zh"] and "杭州市" in units["city_zh"].to_list()
    if fmt == "csv":
        assert (folder / "units.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    if fmt == "parquet":
        assert json.loads(pq.read_schema(folder / "acceptability.parquet").metadata[b"cityrank"])["seed"] == 5


def test_uncertainty_writes_a_workbook_when_out_ends_in_xlsx(tmp_path):
    path = tmp_path / "mc.xlsx"
    uncertainty("asem", replicates=1024, seed=1, block_size=1024, out=path)
    assert path.is_file() and sorted(os.listdir(tmp_path)) == ["mc.xlsx"]  # no checkpoint folder
    assert pl.read_excel(path, sheet_name="units")["unit"].len() == 51
    with pytest.raises(DataError, match=r"cannot resume into a \.xlsx output"):
        uncertainty("asem", replicates=1024, seed=1, block_size=1024, out=path, resume=True)


def test_sensitivity_and_bootstrap_tables_carry_names(tmp_path):
    sens = sensitivity(CITY, base_samples=8, seed=1, n_boot=10, out=tmp_path / "s.xlsx")
    sheets = pl.read_excel(tmp_path / "s.xlsx", sheet_id=0)
    assert list(sheets) == ["indices", "unit_rank_indices", "unit_score_indices", "manifest"]
    assert sheets["unit_rank_indices"].columns[:4] == ["unit", "city_zh", "province_zh", "group"]
    np.testing.assert_allclose(sheets["unit_rank_indices"]["first"].to_numpy(), sens.unit_rank["first"].to_numpy(),
                               rtol=1e-15)
    boot = bootstrap("regional-ai-2023", records="ai_firms_synthetic", replicates=256, seed=3, block_size=256,
                     out=tmp_path / "b", out_format="csv")
    units = pl.read_csv(tmp_path / "b" / "units.csv")
    label = boot.problem.problem.result.dataset.label
    assert label and units.columns[1] == label and units.height == boot.units.height
    assert json.loads((tmp_path / "b" / "manifest.json").read_text(encoding="utf-8"))["kind"] == "bootstrap"


def test_workbook_sheet_names_are_valid_and_distinct(tmp_path):
    tables = {"units_a_very_long_target_name_of_forty_chars": pl.DataFrame({"x": [1.0]}),
              "units_a_very_long_target_name_of_forty_chars_too": pl.DataFrame({"x": [2.0]}),
              "odd/name?": pl.DataFrame({"x": [3.0]})}
    write_tables(tables, tmp_path / "t.xlsx", manifest={"kind": "test"})
    names = list(pl.read_excel(tmp_path / "t.xlsx", sheet_id=0))
    assert names == ["units_a_very_long_target_name_o", "units_a_very_long_target_nam~2", "odd_name_", "manifest"]


@pytest.mark.parametrize("limit", ["EXCEL_MAX_ROWS", "EXCEL_MAX_CELLS"])
def test_a_table_too_large_for_a_sheet_goes_beside_the_workbook(tmp_path, monkeypatch, limit):
    monkeypatch.setattr(f"engine.io.{limit}", 3)
    big = pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    write_tables({"small": big.head(1), "big": big}, tmp_path / "t.xlsx", manifest={"kind": "test"})
    assert sorted(os.listdir(tmp_path)) == ["t.big.parquet", "t.xlsx"]
    assert pl.read_parquet(tmp_path / "t.big.parquet").equals(big)
    note = pl.read_excel(tmp_path / "t.xlsx", sheet_name="big", has_header=False).item()
    assert "too large for a sheet; written to t.big.parquet" in note
    assert pl.read_excel(tmp_path / "t.xlsx", sheet_name="small")["x"].to_list() == [1.0]


@pytest.mark.parametrize("analysis", ["uncertainty", "sensitivity", "bootstrap"])
def test_analyses_check_the_output_before_any_work(tmp_path, monkeypatch, analysis):
    def computed(*args, **kwargs):
        raise AssertionError("the run started")

    module = {"uncertainty": "engine.analysis.uncertainty", "sensitivity": "engine.analysis.sensitivity",
              "bootstrap": "engine.analysis.bootstrap"}[analysis]
    monkeypatch.setattr(f"{module}.score", computed)
    call = {"uncertainty": uncertainty, "sensitivity": sensitivity, "bootstrap": bootstrap}[analysis]
    existing = tmp_path / "file"
    existing.write_text("x")
    with pytest.raises(DataError, match="the output path is a file, a folder is expected"):
        call("asem", out=existing)
    with pytest.raises(DataError, match=r"an analysis writes several tables, not one \.parquet file"):
        call("asem", out=tmp_path / "r.parquet")
    with pytest.raises(DataError, match="in the output path is a file, not a folder"):
        call("asem", out=existing / "sub")
    spec = tmp_path / "spec.xlsx"
    write_json(spec, {})  # an input file that the output would overwrite
    with pytest.raises(DataError, match="the output file is an input of this run"):
        call("asem", spec=spec, out=spec)


def test_write_tables_refuses_conflicting_formats(tmp_path):
    with pytest.raises(DataError, match="unknown output format 'json'"):
        write_tables({"t": pl.DataFrame({"x": [1]})}, tmp_path / "out", manifest={}, format="json")
    with pytest.raises(DataError, match=r"a \.xlsx output path cannot hold csv tables"):
        write_tables({"t": pl.DataFrame({"x": [1]})}, tmp_path / "out.xlsx", manifest={}, format="csv")
    assert os.listdir(tmp_path) == []


def test_imputed_cells_follow_the_table_rows(city_result):
    imputed = city_result.imputed_cells()
    assert imputed["admin_code_6"].to_list() == city_result.table["admin_code_6"].to_list()
    raw = city_result.dataset.table
    j = [i.id for i in city_result.framework.indicators].index("tech_contract_pc")
    missing = set(city_result.stages.inputs.units.filter(pl.Series(np.isnan(city_result.stages.denominated[:, j])))
                  .to_list())
    assert set(imputed.filter(pl.col("tech_contract_pc"))["admin_code_6"].to_list()) == missing
    assert raw.height == city_result.table.height
