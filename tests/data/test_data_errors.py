"""Every ``raise DataError`` of engine/data/*.py and engine/io.py, plus the readers and writers.

Each error test checks the message (``match=``) and that the structured attributes (``.column``,
``.node``, ``.units``, ``.path``) name the offender and ``.fix`` says what to do.  Known engine bugs
are ``xfail(strict=True)`` with the reason spelled out.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from numpy.testing import assert_array_equal
from polars.testing import assert_frame_equal

import engine
from engine.data import Dataset, load_data, prepare
from engine.data.load import read_table
from engine.errors import ConstantIndicatorWarning, DataError, EngineError
from engine.io import atomic_write, write_table
from engine.schema import Framework, framework_from_dict

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def framework_document() -> dict[str, Any]:
    """Index ``idx`` over ``a`` (column a) and ``b`` (column b per pop, scale factor 10)."""
    return {
        "id": "tiny",
        "labels": {"en": "Tiny"},
        "data": {"unit": "unit", "unit_label": "name", "groups": ["region"]},
        "nodes": [
            {"id": "idx", "labels": {"en": "Index"}},
            {"id": "a", "parent": "idx", "labels": {"en": "A"}, "column": "a"},
            {"id": "b", "parent": "idx", "labels": {"en": "B"}, "column": "b", "denominator": "pop",
             "scale_factor": 10},
        ],
    }


def make_framework(**node_updates: dict[str, Any]) -> Framework:
    """The helper framework with some nodes updated, e.g. ``make_framework(a={"direction": -1})``."""
    document = framework_document()
    for node in document["nodes"]:
        node.update(node_updates.get(node["id"], {}))
    return framework_from_dict(document)


def table() -> pl.DataFrame:
    """Four units; every float is exactly representable, so every reader round-trips it."""
    return pl.DataFrame({
        "unit": ["u1", "u2", "u3", "u4"],
        "name": ["One", "Two", "Three", "Four"],
        "region": ["N", "N", "S", "S"],
        "a": [1.5, None, 3.25, -4.75],
        "b": [0.5, 2.5, 3.125, 7.5],
        "pop": [10.5, 20.25, 40.5, 80.75],
    })


def with_column(name: str, values: list[Any], dtype: Any = None) -> pl.DataFrame:
    return table().with_columns(pl.Series(name, values, dtype=dtype))


def expect_data_error(call, match: str, **attributes: Any) -> DataError:
    """``call()`` raises a DataError matching ``match`` whose attributes equal ``attributes``."""
    with pytest.raises(DataError, match=match) as info:
        call()
    err = info.value
    for key, value in attributes.items():
        assert getattr(err, key) == value, f"{key}: {getattr(err, key)!r} != {value!r}"
    assert err.fix, "every DataError carries a fix"
    text = str(err)
    assert "Fix:" in text
    if err.node is not None:
        assert f"node {err.node!r}" in text
    if err.column is not None:
        assert f"column {err.column!r}" in text
    if err.units:
        assert "Units: " + ", ".join(repr(u) for u in err.units[:5]) in text
    return err


def validate(framework: Framework, data: pl.DataFrame, **load: Any):
    return lambda: engine.validate(framework, data, **load)


def files_in(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# ---------------------------------------------------------------------------------------------
# the error class and the helpers
# ---------------------------------------------------------------------------------------------


def test_data_error_is_a_value_error_and_an_engine_error():
    assert issubclass(DataError, ValueError) and issubclass(DataError, EngineError)
    err = DataError("bad", node="a", column="col", units=list("pqrstuv"), path="f.csv", fix="fix it")
    assert isinstance(err, ValueError)
    assert str(err) == ("f.csv: node 'a' / column 'col': bad. Units: 'p', 'q', 'r', 's', 't', … (7 in all). "
                        "Fix: fix it.")


def test_helper_table_validates_and_scores():
    framework = make_framework()
    inputs = prepare(framework, load_data(table(), framework=framework))
    assert inputs.units.to_list() == ["u1", "u2", "u3", "u4"]
    assert_array_equal(inputs.raw, np.array([[1.5, 0.5], [np.nan, 2.5], [3.25, 3.125], [-4.75, 7.5]]))
    assert_array_equal(inputs.denominators[:, 1], [10.5, 20.25, 40.5, 80.75])
    assert engine.score(framework, table()).table.height == 4


# ---------------------------------------------------------------------------------------------
# engine/data/load.py
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".docx", ".json", ""])
def test_unsupported_extension(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    path.write_text("unit,a\nu1,1\n", encoding="utf-8")
    err = expect_data_error(lambda: load_data(path, unit="unit"), rf"unsupported file type '{suffix}'",
                            path=str(path), node=None, column=None)
    for known in (".csv", ".parquet", ".arrow", ".xlsx"):
        assert known in err.fix


def test_unsupported_extension_is_checked_before_existence(tmp_path):
    path = tmp_path / "missing.docx"
    expect_data_error(lambda: read_table(path), r"unsupported file type '.docx'", path=str(path))


def test_file_not_found(tmp_path):
    path = tmp_path / "missing.csv"
    err = expect_data_error(lambda: read_table(path), r"file not found", path=str(path))
    assert "path" in err.fix


def test_folder_named_like_a_data_file(tmp_path):
    folder = tmp_path / "data.csv"
    folder.mkdir()
    expect_data_error(lambda: load_data(folder, unit="unit"), r"file not found", path=str(folder))


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("garbage.parquet", b"this is not a parquet file" * 4, "parquet"),
        ("footer.parquet", b"PAR1 truncated PAR1", "parquet"),
        ("garbage.arrow", b"this is not arrow" * 4, "ipc"),
        ("garbage.feather", b"ARROW1" + b"junk" * 8, "ipc"),
        ("empty.csv", b"", "csv"),
    ],
)
def test_unreadable_file(tmp_path, name, content, kind):
    path = tmp_path / name
    path.write_bytes(content)
    err = expect_data_error(lambda: load_data(path, unit="unit"), r"cannot read the file: ", path=str(path))
    title = "; if title rows sit above the header, skip them with --skip-rows N" if kind == "csv" else ""
    assert err.fix == f"check that the file is a valid {kind} file{title}"
    assert isinstance(err.__cause__, Exception), "the reader's exception is chained"


NOT_UTF8_NOR_CHINESE = r"cannot read the file: it is not UTF-8 text, and read as GB18030/GBK it does not give Chinese"


def test_latin1_csv_is_not_mistaken_for_gbk(tmp_path):
    # Latin-1 bytes also decode as GB18030 (Zürich -> Z黵ich): refused, asking for the encoding ...
    path = tmp_path / "latin1.csv"
    path.write_bytes("unit,a\nZürich,1\nGenève,2\n".encode("latin-1"))
    err = expect_data_error(lambda: load_data(path, unit="unit"), NOT_UTF8_NOR_CHINESE, path=str(path))
    assert "--encoding" in err.fix
    # ... which then reads it
    dataset = load_data(path, unit="unit", encoding="latin-1")
    assert dataset.table["unit"].to_list() == ["Zürich", "Genève"] and dataset.meta["encoding"] == "latin-1"


@pytest.mark.parametrize(("name", "content", "looks"), [
    ("garbage.xlsx", b"this is not a spreadsheet" * 4, "text"),
    ("garbage.xls", b"this is not a spreadsheet" * 4, "text"),
    ("binary.xlsx", bytes(range(256)) * 2, "another format"),
])
def test_file_named_excel_that_is_not_a_workbook(tmp_path, name, content, looks):
    # Sniffed from the first bytes (was a raw "Zip error ... EOCD" from the Excel reader).
    path = tmp_path / name
    path.write_bytes(content)
    err = expect_data_error(lambda: load_data(path, unit="unit"),
                            rf"the file is named \.xls[x]? but is not an Excel workbook: it looks like {looks}",
                            path=str(path))
    assert "real format" in err.fix


def test_corrupt_workbook_with_the_right_magic_bytes(tmp_path):
    path = tmp_path / "truncated.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"junk" * 16)
    err = expect_data_error(lambda: load_data(path, unit="unit"), r"cannot read the file: ", path=str(path))
    assert err.fix.startswith("check that the file is a valid excel file")


@pytest.mark.parametrize("name", ["no_such_dataset", "asem.csv"])
def test_unknown_dataset_name(name):
    err = expect_data_error(lambda: load_data(name, unit="unit"),
                            rf"no data file or shipped dataset named '{re.escape(name)}'", path=name)
    for shipped in engine.shipped_datasets():
        assert shipped in err.fix


def test_missing_data_file_path(tmp_path):
    path = tmp_path / "missing.parquet"
    expect_data_error(lambda: load_data(path, unit="unit"), r"no data file or shipped dataset named",
                      path=str(path))


def test_no_unit_column_given():
    err = expect_data_error(lambda: load_data(table()), r"no unit id column given", path="<DataFrame>")
    assert "--unit" in err.fix and "data.unit" in err.fix


def test_no_unit_column_given_by_framework_without_data_hints():
    document = framework_document()
    del document["data"]
    framework = framework_from_dict(document)
    expect_data_error(lambda: engine.score(framework, table()), r"no unit id column given")


def test_unit_column_missing():
    err = expect_data_error(lambda: load_data(table(), unit="city"),
                            r"column\(s\) 'city' not found; the file has 'unit', 'name', 'region', 'a'",
                            column="city", path="<DataFrame>")
    assert "case-sensitive" in err.fix


def test_unit_column_missing_from_framework_hint():
    data = table().rename({"unit": "Unit"})
    expect_data_error(validate(make_framework(), data), r"column\(s\) 'unit' not found", column="unit")


@pytest.mark.parametrize(
    ("load", "missing"),
    [({"groups": ["province"]}, "province"), ({"groups": ["region", "country"]}, "country"),
     ({"label": "city_name"}, "city_name")],
    ids=["group", "second-group", "label"],
)
def test_named_group_or_label_column_missing(load, missing):
    expect_data_error(lambda: load_data(table(), unit="unit", **load), rf"column\(s\) '{missing}' not found",
                      column=missing)


def test_hinted_group_and_label_columns_are_optional():
    data = table().drop("region", "name")
    dataset = load_data(data, framework=make_framework())
    assert dataset.groups == () and dataset.label is None


# ---------------------------------------------------------------------------------------------
# engine/data/prepare.py
# ---------------------------------------------------------------------------------------------


def test_unit_column_not_found_in_a_hand_made_dataset():
    dataset = Dataset(table=table(), unit="city", source="hand.csv")
    err = expect_data_error(lambda: prepare(make_framework(), dataset), r"unit id column not found",
                            column="city", path="hand.csv")
    assert "'unit'" in err.fix


def test_unit_ids_missing():
    data = with_column("unit", ["u1", None, "u3", None])
    err = expect_data_error(validate(make_framework(), data), r"unit id missing in data row\(s\) 2, 4",
                            column="unit")
    assert "unit id" in err.fix


def test_duplicate_unit_ids_are_listed():
    data = pl.concat([table(), table().slice(1, 2), table().slice(2, 1)])
    expect_data_error(validate(make_framework(), data), r"duplicate unit ids", column="unit", units=["u2", "u3"])


def test_many_duplicate_unit_ids_are_previewed():
    data = pl.DataFrame({"unit": [f"u{k}" for k in range(8)] * 2, "a": [1.0] * 16, "b": [2.0] * 16,
                         "pop": [1.0] * 16})
    err = expect_data_error(validate(make_framework(), data), r"duplicate unit ids", column="unit")
    assert err.units == [f"u{k}" for k in range(8)]
    assert "(8 in all)" in str(err)


def test_numeric_unit_ids_duplicated():
    data = with_column("unit", [7, 8, 7, 9])
    expect_data_error(validate(make_framework(), data), r"duplicate unit ids", units=[7])


def test_no_rows():
    expect_data_error(validate(make_framework(), table().clear()), r"the data have no rows", path="<DataFrame>")


def test_indicator_column_missing():
    data = table().drop("a")
    err = expect_data_error(validate(make_framework(), data), r"column not found in the data \(1 missing in all: 'a'\)",
                            node="a", column="a")
    assert "`column`/`denominator`" in err.fix


def test_denominator_column_missing():
    data = table().drop("pop")
    expect_data_error(validate(make_framework(), data), r"column not found in the data \(1 missing in all: 'pop'\)",
                      node="b", column="pop")


def test_several_columns_missing_are_counted():
    data = table().drop("a", "b", "pop")
    expect_data_error(validate(make_framework(), data), r"\(3 missing in all: 'a', 'b', 'pop'\)",
                      node="a", column="a")


def test_component_column_missing():
    document = framework_document()
    del document["nodes"][1]["column"]
    document["nodes"][1]["components"] = {"a": 0.5, "a_extra": 0.5}
    framework = framework_from_dict(document)
    expect_data_error(validate(framework, table()), r"1 missing in all: 'a_extra'", node="a", column="a_extra")


def test_non_numeric_cells_are_listed_with_their_units():
    data = with_column("a", ["1.5", "n/a", " 3 ", "four"])
    err = expect_data_error(validate(make_framework(), data), r"non-numeric values: \"u2='n/a'\", \"u4='four'\"",
                            node="a", column="a")
    assert "empty" in err.fix


def test_non_numeric_denominator():
    data = with_column("pop", ["10", "20", "many", "40"])
    expect_data_error(validate(make_framework(), data), r"non-numeric values: \"u3='many'\"", node="b",
                      column="pop")


def test_non_numeric_cells_from_csv(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("unit,a,b,pop\nu1,1,2,3\nu2,x,2,3\nu3,,2,3\nu4,NA,2,3\n", encoding="utf-8")
    err = expect_data_error(validate(make_framework(), path), r"non-numeric values", node="a", column="a")
    assert "u2='x'" in err.message and "u3" not in err.message and "u4" not in err.message


def test_numeric_text_and_empty_cells_are_accepted():
    data = with_column("a", ["1.5", "", " 3.25 ", None])
    inputs = prepare(make_framework(), load_data(data, framework=make_framework()))
    assert_array_equal(inputs.raw[:, 0], [1.5, np.nan, 3.25, np.nan])


@pytest.mark.parametrize(
    ("values", "units"),
    [([1.0, np.inf, 2.0, 3.0], ["u2"]), ([-np.inf, 1.0, 2.0, np.inf], ["u1", "u4"])],
    ids=["+inf", "-inf-and-+inf"],
)
def test_infinite_values(values, units):
    data = with_column("a", values)
    err = expect_data_error(validate(make_framework(), data), r"infinite values", node="a", column="a", units=units)
    assert "finite" in err.fix


def test_infinite_values_from_csv_text(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("unit,a,b,pop\nu1,1,2,inf\nu2,2,2,3\nu3,3,2,-inf\n", encoding="utf-8")
    expect_data_error(validate(make_framework(), path), r"infinite values", node="b", column="pop",
                      units=["u1", "u3"])


@pytest.mark.parametrize(
    "column",
    [pl.Series("a", [None] * 4, dtype=pl.Float64), pl.Series("a", [None] * 4, dtype=pl.Null),
     pl.Series("a", ["", " ", None, ""], dtype=pl.String), pl.Series("a", [np.nan] * 4)],
    ids=["float-nulls", "null-dtype", "empty-strings", "nan"],
)
def test_indicator_without_any_value(column):
    data = table().with_columns(column)
    err = expect_data_error(validate(make_framework(), data), r"the indicator has no value for any unit",
                            node="a", column="a")
    assert "remove the indicator" in err.fix


def test_zero_denominator_lists_the_units():
    data = with_column("pop", [10.0, 0.0, -0.0, 5.0])
    err = expect_data_error(validate(make_framework(), data), r"zero denominator 'pop'", node="b", column="pop",
                            units=["u2", "u3"])
    assert "leave it empty" in err.fix


def test_missing_denominator_is_allowed():
    data = with_column("pop", [10.0, None, 20.0, 5.0])
    inputs = prepare(make_framework(), load_data(data, framework=make_framework()))
    assert np.isnan(inputs.denominators[1, 1])


def test_log_treatment_with_non_positive_values():
    framework = make_framework(a={"treatment": {"method": "log"}})
    data = with_column("a", [1.0, 0.0, None, -2.0])
    err = expect_data_error(validate(framework, data), r"log treatment needs values > 0", node="a", column="a",
                            units=["u2", "u4"])
    assert "skew_kurtosis" in err.fix


def test_log_treatment_checks_denominated_values():
    # b / pop * 10 is negative for u3 only
    framework = make_framework(b={"treatment": {"method": "log"}})
    data = with_column("pop", [1.0, 2.0, -3.0, 4.0])
    expect_data_error(validate(framework, data), r"log treatment needs values > 0", node="b", column="b",
                      units=["u3"])


def test_fraction_of_max_with_direction_minus_one():
    framework = make_framework(b={"direction": -1, "normalisation": {"method": "fraction_of_max"}})
    err = expect_data_error(validate(framework, table()),
                            r"fraction_of_max needs values >= 0 after applying the direction "
                            r"\(direction -1 makes them negative\)",
                            node="b", column="b", units=["u1", "u2", "u3", "u4"])
    assert "minmax" in err.fix


def test_fraction_of_max_with_negative_values():
    framework = make_framework(a={"normalisation": {"method": "fraction_of_max"}})
    err = expect_data_error(validate(framework, table()), r"fraction_of_max needs values >= 0", node="a",
                            column="a", units=["u4"])
    assert "direction -1" not in err.message


def test_constant_indicator_under_error_policy():
    document = framework_document()
    document["defaults"] = {"constant_indicator": "error"}
    framework = framework_from_dict(document)
    data = with_column("a", [2.5, 2.5, None, 2.5])
    err = expect_data_error(validate(framework, data), r"constant indicator \(every unit has ", node="a",
                            column="a")
    assert "midpoint or missing" in err.fix


def test_constant_component_sum_under_error_policy():
    document = framework_document()
    document["defaults"] = {"constant_indicator": "error"}
    del document["nodes"][1]["column"]
    document["nodes"][1]["components"] = {"x": 1, "y": 1}
    framework = framework_from_dict(document)
    data = table().with_columns(x=pl.Series([1.0, 2.0, 3.0, 4.0]), y=pl.Series([4.0, 3.0, 2.0, 1.0]))
    expect_data_error(validate(framework, data), r"constant indicator \(every unit has ", node="a",
                      column="x, y")


def test_constant_indicator_message_shows_the_plain_value():
    document = framework_document()
    document["defaults"] = {"constant_indicator": "error"}
    data = with_column("a", [2.5, 2.5, None, 2.5])
    with pytest.raises(DataError, match=r"constant indicator \(every unit has 2\.5\)"):
        engine.validate(framework_from_dict(document), data)


@pytest.mark.parametrize("policy", ["midpoint", "missing"])
def test_constant_indicator_warns_under_other_policies(policy):
    document = framework_document()
    document["defaults"] = {"constant_indicator": policy}
    framework = framework_from_dict(document)
    data = with_column("a", [2.5, 2.5, 2.5, 2.5])
    with pytest.warns(ConstantIndicatorWarning, match=rf"constant indicator\(s\) a: policy '{policy}' applied"):
        result = engine.score(framework, data)
    expected = [50.0] * 4 if policy == "midpoint" else [None] * 4
    assert result.table.sort("unit")["a"].to_list() == expected


@pytest.mark.parametrize(("normalisation", "values", "warning", "expected"), [
    ({"method": "goalposts", "goalposts": [0, 10]}, [2.5] * 4, None, [0.25] * 4),  # fixed: no policy
    ({"method": "distance_to_target", "target": 10}, [2.5] * 4, "every unit ties", [0.0] * 4),  # (x - min) / ...
    ({"method": "rank"}, [2.5] * 4, "every unit ties", [1.0] * 4),
    ({"method": "fraction_of_max"}, [2.5] * 4, "every unit ties", [1.0] * 4),
    ({"method": "fraction_of_max"}, [0.0] * 4, "policy 'midpoint' applied", [0.5] * 4),  # x / 0
    ({"method": "distance_to_max"}, [2.5] * 4, "policy 'midpoint' applied", [0.5] * 4),
    ({"method": "percentile"}, [2.5] * 4, "every unit ties", [0.0] * 4),
    ({"method": "percentile"}, [2.5, None, None, None], "policy 'midpoint' applied", [0.5, None, None, None]),
])
def test_constant_indicator_warning_names_what_really_happens(normalisation, values, warning, expected):
    """The policy acts only where a fitted parameter is degenerate (it said "midpoint" under goalposts)."""
    framework = make_framework(a={"normalisation": normalisation})
    data = with_column("a", values)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = engine.score(framework, data)
    messages = [str(w.message) for w in caught if issubclass(w.category, ConstantIndicatorWarning)]
    assert len(messages) == (0 if warning is None else 1), messages
    if warning is not None:
        assert messages[0].startswith("constant indicator(s) a: ") and warning in messages[0]
    assert result.table.sort("unit")["a"].to_list() == pytest.approx(expected)


def test_imputation_group_column_missing():
    document = framework_document()
    document["defaults"] = {"imputation": {"method": "group_mean", "group": "region"}}
    framework = framework_from_dict(document)
    data = table().drop("region")  # the hinted group is optional for load_data ...
    err = expect_data_error(validate(framework, data), r"group column not found", column="region")
    assert "imputation group" in err.fix  # ... but the imputation needs it


def test_nested_column_is_a_data_error():
    data = with_column("a", [[1.0], [2.0], [3.0], [4.0]])
    expect_data_error(validate(make_framework(), data), r"nested values .* where numbers are expected", node="a",
                      column="a")


# ---------------------------------------------------------------------------------------------
# readers: the same table from every format
# ---------------------------------------------------------------------------------------------


def write_source(data: pl.DataFrame, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        data.write_csv(path)
    elif suffix == ".tsv":
        data.write_csv(path, separator="\t")
    elif suffix in (".parquet", ".pq"):
        data.write_parquet(path)
    elif suffix in (".arrow", ".ipc", ".feather"):
        data.write_ipc(path)
    else:
        data.write_excel(path)


@pytest.mark.parametrize("name", ["data.csv", "data.tsv", "data.txt", "data.parquet", "data.pq", "data.arrow",
                                  "data.ipc", "data.feather", "data.xlsx", "DATA.CSV", "data.Parquet"])
def test_every_format_reads_the_same_table(tmp_path, name):
    path = tmp_path / name
    write_source(table(), path)
    framework = make_framework()
    dataset = load_data(path, framework=framework)
    assert dataset.source == str(path)
    assert (dataset.unit, dataset.groups, dataset.label) == ("unit", ("region",), "name")
    assert_frame_equal(dataset.table, table())
    expected = prepare(framework, load_data(table(), framework=framework))
    inputs = prepare(framework, dataset)
    assert_array_equal(inputs.raw, expected.raw)
    assert_array_equal(inputs.denominators, expected.denominators)
    assert inputs.units.to_list() == expected.units.to_list()


def test_uppercase_tsv_suffix(tmp_path):
    path = tmp_path / "DATA.TSV"
    write_source(table(), path.with_suffix(".tsv"))
    path.with_suffix(".tsv").rename(path)
    assert_frame_equal(load_data(path, unit="unit").table, table())


def test_excel_sheet_by_name(tmp_path):
    import xlsxwriter

    path = tmp_path / "book.xlsx"
    with xlsxwriter.Workbook(str(path)) as workbook:
        pl.DataFrame({"x": ["ignore"]}).write_excel(workbook=workbook, worksheet="notes")
        table().write_excel(workbook=workbook, worksheet="data")
    assert_frame_equal(load_data(path, unit="unit", sheet="data").table, table())
    assert load_data(path, unit="x").table.columns == ["x"]  # default: the first sheet


def test_csv_with_utf8_bom_header(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + table().write_csv().encode("utf-8"))
    dataset = load_data(path, framework=make_framework())
    assert dataset.table.columns[0] == "unit"
    assert_frame_equal(dataset.table, table())
    assert engine.score(make_framework(), path).table.height == 4


def test_bom_header_from_another_reader_is_stripped(tmp_path):
    path = tmp_path / "bom.parquet"
    table().rename({"unit": "\ufeffunit"}).write_parquet(path)
    assert read_table(path).columns[0] == "unit"


def test_shipped_dataset_by_name():
    framework = engine.load_framework("asem")
    dataset = load_data("asem", framework=framework)
    assert dataset.source == str(engine.shipped_datasets()["asem"])
    assert dataset.table.height == 51


# ---------------------------------------------------------------------------------------------
# engine/io.py: atomic writers
# ---------------------------------------------------------------------------------------------

RECIPE = {"engine": {"name": "cityrank"}, "framework": {"id": "tiny"}, "note": "Zürich – 北京"}


@pytest.mark.parametrize("name", ["scores.json", "scores.xls", "scores.tsv", "scores"])
def test_unsupported_output_format(tmp_path, name):
    path = tmp_path / name
    suffix = Path(name).suffix
    err = expect_data_error(lambda: write_table(table(), path, metadata=RECIPE),
                            rf"unsupported output format '{re.escape(suffix)}'", path=str(path))
    for known in (".parquet", ".csv", ".xlsx", ".arrow"):
        assert known in err.fix
    assert files_in(tmp_path) == []


def test_write_parquet_with_recipe(tmp_path):
    path = write_table(table(), tmp_path / "scores.parquet", metadata=RECIPE)
    assert path == tmp_path / "scores.parquet"
    assert files_in(tmp_path) == ["scores.parquet"]
    metadata = pq.read_schema(path).metadata
    assert json.loads(metadata[b"cityrank"].decode()) == RECIPE
    assert_frame_equal(pl.read_parquet(path), table())


@pytest.mark.parametrize("suffix", [".arrow", ".ipc"])
def test_write_arrow_with_recipe(tmp_path, suffix):
    path = write_table(table(), tmp_path / f"scores{suffix}", metadata=RECIPE)
    assert files_in(tmp_path) == [f"scores{suffix}"]
    arrow = feather.read_table(path)
    assert json.loads(arrow.schema.metadata[b"cityrank"].decode()) == RECIPE
    assert_frame_equal(pl.from_arrow(arrow), table())
    assert_frame_equal(load_data(path, unit="unit").table, table())


def test_write_csv_with_recipe_sidecar(tmp_path):
    path = write_table(table(), tmp_path / "scores.csv", metadata=RECIPE)
    assert files_in(tmp_path) == ["scores.csv", "scores.csv.recipe.json"]
    assert json.loads((tmp_path / "scores.csv.recipe.json").read_text(encoding="utf-8")) == RECIPE
    assert_frame_equal(pl.read_csv(path), table())


def test_write_csv_without_metadata_has_no_sidecar(tmp_path):
    write_table(table(), tmp_path / "scores.csv")
    assert files_in(tmp_path) == ["scores.csv"]


def test_write_excel_with_recipe_sheet(tmp_path):
    path = write_table(table(), tmp_path / "scores.xlsx", metadata=RECIPE)
    assert files_in(tmp_path) == ["scores.xlsx"]
    assert_frame_equal(pl.read_excel(path, sheet_name="scores"), table())
    recipe = pl.read_excel(path, sheet_name="recipe")  # one row per setting
    assert recipe.rows() == [("engine", "name", "cityrank"), ("framework", "id", "tiny"),
                             ("run", "note", "Zürich – 北京")]


@pytest.mark.parametrize(("make", "kind", "match"), [
    (lambda p: p.mkdir(), "file", "the output path is a folder, a file is expected"),
    (lambda p: p.write_text("x"), "folder", "the output path is a file, a folder is expected"),
    (lambda p: p.write_text("x"), "tables", "the output path is a file, a folder is expected"),
    (lambda p: p.mkdir(), "tables.xlsx", "the output path is a folder, but its .xlsx ending asks for one workbook"),
    (lambda p: None, "tables.csv", "an analysis writes several tables, not one .csv file"),
    (lambda p: p.parent.write_text("x"), "under-a-file", "in the output path is a file, not a folder"),
    (lambda p: None, "proc", "cannot create files in '/proc'"),
    (lambda p: None, "unsupported", "unsupported output format '.json'"),
    (lambda p: p.write_text("x"), "input",
     "the output file is an input of this run; writing it would destroy the input"),
])
def test_check_output_refuses_unusable_paths(tmp_path, make, kind, match):
    from engine.io import check_output

    path = {"under-a-file": tmp_path / "up" / "x.csv", "proc": Path("/proc/cityrank/x.csv"),
            "tables.csv": tmp_path / "r.csv", "unsupported": tmp_path / "r.json", "folder": tmp_path / "out",
            "tables.xlsx": tmp_path / "r.xlsx",
            "tables": tmp_path / "out"}.get(kind, tmp_path / "out.csv")
    make(path)
    kind = {"under-a-file": "file", "proc": "file", "tables.csv": "tables", "tables.xlsx": "tables",
            "unsupported": "file", "input": "file"}.get(kind, kind)
    expect_data_error(lambda: check_output(path, kind, inputs=[None, "asem", tmp_path / "out.csv"]), re.escape(match),
                      path=str(path))


def test_check_output_accepts_new_and_existing_places(tmp_path):
    from engine.io import check_output

    (tmp_path / "old.parquet").write_text("x")
    for path, kind in ((tmp_path / "new" / "deeper" / "s.xlsx", "file"), (tmp_path / "old.parquet", "file"),
                       (tmp_path, "folder"), (tmp_path / "new", "tables"), (tmp_path / "r.xlsx", "tables")):
        assert check_output(path, kind, inputs=[tmp_path / "data.csv"]) == path
    assert files_in(tmp_path) == ["old.parquet"]  # nothing created, no probe left


def test_write_tables_format_errors(tmp_path):
    from engine.io import write_tables

    one = {"t": table()}
    expect_data_error(lambda: write_tables(one, tmp_path / "out", manifest={}, format="json"),
                      "unknown output format 'json'", path=str(tmp_path / "out"))
    expect_data_error(lambda: write_tables(one, tmp_path / "o.xlsx", manifest={}, format="csv"),
                      r"a \.xlsx output path cannot hold csv tables", path=str(tmp_path / "o.xlsx"))


def test_excel_sheet_size_is_checked(tmp_path, monkeypatch):
    monkeypatch.setattr("engine.io.EXCEL_MAX_COLUMNS", 3)
    expect_data_error(lambda: write_table(table(), tmp_path / "s.xlsx"),
                      r"table 'scores' \(4 rows × 6 columns\) does not fit an Excel sheet", path=None)


def test_write_creates_the_folder_and_replaces_an_existing_file(tmp_path):
    path = tmp_path / "new" / "scores.parquet"
    write_table(table().head(1), path, metadata={"run": 1})
    write_table(table(), path, metadata={"run": 2})
    assert files_in(path.parent) == ["scores.parquet"]
    assert pl.read_parquet(path).height == 4
    assert json.loads(pq.read_schema(path).metadata[b"cityrank"]) == {"run": 2}


def test_score_result_write_carries_the_recipe(tmp_path):
    result = engine.score(make_framework(), table())
    path = result.write(tmp_path / "out.parquet")
    recipe = json.loads(pq.read_schema(path).metadata[b"cityrank"])
    assert recipe["framework"]["id"] == "tiny"
    assert recipe["framework"]["digest"] == make_framework().digest
    assert_frame_equal(pl.read_parquet(path), result.table)


class WriterFailed(Exception):
    pass


def partial_writer(tmp: Path) -> None:
    tmp.write_bytes(b"half a file")
    raise WriterFailed("disk full")


def test_atomic_write_success(tmp_path):
    target = tmp_path / "out.txt"
    seen: list[Path] = []

    def writer(tmp: Path) -> None:
        seen.append(tmp)
        assert tmp.parent == tmp_path and tmp != target  # a temporary file in the same folder
        tmp.write_text("done", encoding="utf-8")

    assert atomic_write(target, writer) == target
    assert target.read_text(encoding="utf-8") == "done"
    assert files_in(tmp_path) == ["out.txt"] and not seen[0].exists()


def test_failing_writer_leaves_no_file_and_no_temp_file(tmp_path):
    with pytest.raises(WriterFailed, match="disk full"):
        atomic_write(tmp_path / "out.parquet", partial_writer)
    assert files_in(tmp_path) == []


def test_failing_writer_keeps_the_previous_file(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("previous", encoding="utf-8")
    with pytest.raises(WriterFailed):
        atomic_write(target, partial_writer)
    assert files_in(tmp_path) == ["out.csv"]
    assert target.read_text(encoding="utf-8") == "previous"


def test_interrupted_writer_leaves_no_temp_file(tmp_path):
    def interrupted(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "out.xlsx", interrupted)
    assert files_in(tmp_path) == []


def test_failing_table_writer_leaves_no_table_and_no_temp_file(tmp_path):
    nested = table().with_columns(pl.Series("a", [[1.0], [2.0], [3.0], [4.0]]))  # CSV cannot hold lists
    with pytest.raises(pl.exceptions.ComputeError):
        write_table(nested, tmp_path / "scores.csv")
    assert files_in(tmp_path) == []


def test_failing_csv_writer_leaves_no_sidecar(tmp_path):
    nested = table().with_columns(pl.Series("a", [[1.0], [2.0], [3.0], [4.0]]))
    with pytest.raises(pl.exceptions.ComputeError):
        write_table(nested, tmp_path / "scores.csv", metadata=RECIPE)
    assert files_in(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# input habits: GBK files, title rows, sheets, misspelt columns, ids that look like "missing"
# (issue 15 item 9, issue 21 item 10)
# ---------------------------------------------------------------------------------------------

GBK_TEXT = "城市代码,城市,省份,人口\n110100,北京市,北京市,2186\n430600,岳阳市,湖南省,499\n"


def test_gbk_csv_is_detected_and_recorded(tmp_path):
    # was: "invalid utf-8 sequence ... check that the file is a valid csv file"
    path = tmp_path / "城市.csv"
    path.write_bytes(GBK_TEXT.encode("gbk"))
    dataset = load_data(path, unit="城市代码", label="城市", groups=["省份"])
    assert dataset.meta["encoding"] == "gb18030"
    assert dataset.table["城市"].to_list() == ["北京市", "岳阳市"]
    assert dataset.table["人口"].to_list() == [2186, 499]
    assert dataset.table["城市代码"].to_list() == [110100, 430600]  # plain integers stay integers


def test_utf8_files_record_their_encoding(tmp_path):
    plain, bom = tmp_path / "plain.csv", tmp_path / "bom.csv"
    plain.write_bytes(GBK_TEXT.encode("utf-8"))
    bom.write_bytes(GBK_TEXT.encode("utf-8-sig"))
    assert load_data(plain, unit="城市代码").meta["encoding"] == "utf-8"
    with_bom = load_data(bom, unit="城市代码")
    assert with_bom.meta["encoding"] == "utf-8-sig" and with_bom.table.columns[0] == "城市代码"


def test_given_encoding_is_used_and_checked(tmp_path):
    path = tmp_path / "big5.csv"
    path.write_bytes("unit,a\n臺北,1\n".encode("big5"))
    assert load_data(path, unit="unit", encoding="big5").table["unit"].to_list() == ["臺北"]
    expect_data_error(lambda: load_data(path, unit="unit", encoding="no-such-codec"),
                      r"unknown encoding 'no-such-codec'", path=str(path))
    err = expect_data_error(lambda: load_data(path, unit="unit", encoding="utf-8"),
                            r"the file is not valid utf-8 text \(byte 7", path=str(path))
    assert "leave it out to detect it" in err.fix


def test_gbk_csv_scores_and_the_recipe_says_how_it_was_read(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes("unit,name,region,a,b,pop\n甲,一,北,1.5,0.5,10.5\n乙,二,北,2,2.5,20.25\n丙,三,南,3.25,3.125,40.5\n"
                     .encode("gbk"))
    result = engine.score(make_framework(), path)
    assert result.recipe["data"]["encoding"] == "gb18030"
    assert sorted(result.table["unit"].to_list()) == sorted(["甲", "乙", "丙"])


def test_title_rows_above_the_header_csv(tmp_path):
    path = tmp_path / "yearbook.csv"
    path.write_bytes(("2-1 人口数\n单位：万人,,,\n" + GBK_TEXT).encode("gbk"))
    err = expect_data_error(lambda: load_data(path, unit="城市代码"), r"cannot read the file: ", path=str(path))
    assert err.fix.endswith("skip them with --skip-rows N")
    dataset = load_data(path, unit="城市代码", skip_rows=2)
    assert dataset.table.columns == ["城市代码", "城市", "省份", "人口"] and dataset.meta["skip_rows"] == 2
    expect_data_error(lambda: load_data(path, unit="城市代码", skip_rows=-1), r"skip_rows must be >= 0, got -1",
                      path=str(path))


def test_skip_rows_from_the_framework_data_section(tmp_path):
    path = tmp_path / "titled.csv"
    path.write_text("Tiny table, 2023\n" + table().write_csv(), encoding="utf-8")
    document = framework_document()
    document["data"]["skip_rows"] = 1
    framework = framework_from_dict(document)
    assert load_data(path, framework=framework).table.height == 4
    expect_data_error(lambda: load_data(path, framework=framework, skip_rows=0), r"cannot read the file: ",
                      path=str(path))  # the argument wins over the framework's data.skip_rows
    assert engine.score(framework, path).recipe["data"]["skip_rows"] == 1


def test_title_row_without_extra_fields_names_skip_rows_in_the_column_error(tmp_path):
    path = tmp_path / "titled.csv"
    path.write_text("A title,,,,,\n" + table().write_csv(), encoding="utf-8")  # as many fields: a wrong header
    err = expect_data_error(lambda: load_data(path, unit="unit"), r"column\(s\) 'unit' not found", column="unit")
    assert err.fix.endswith("pass --skip-rows N")


def excel_file(path: Path, rows: list[list[Any]], sheet: str = "数据", title: int = 0) -> Path:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path))
    sheet_ = workbook.add_worksheet(sheet)
    for r in range(title):
        sheet_.write_row(r, 0, [f"title line {r + 1}"])
    for r, row in enumerate(rows):
        sheet_.write_row(r + title, 0, row)
    workbook.add_worksheet("说明")
    workbook.close()
    return path


def test_excel_title_rows_and_a_wrong_sheet_name(tmp_path):
    rows = [["unit", "a"], ["u1", 1.5], ["u2", 2.5]]
    path = excel_file(tmp_path / "book.xlsx", rows, title=2)
    assert load_data(path, unit="unit", sheet="数据", skip_rows=2).table["a"].to_list() == [1.5, 2.5]
    err = expect_data_error(lambda: load_data(path, unit="unit", sheet="数"),
                            r"no sheet named '数' \(did you mean '数据'\?\); the workbook has '数据', '说明'",
                            path=str(path))
    assert "--sheet" in err.fix


def test_misspelt_columns_get_a_suggestion(tmp_path):
    err = expect_data_error(lambda: load_data(table(), unit="unti"),
                            r"column\(s\) 'unti' not found \(did you mean 'unit'\?\)", column="unti")
    assert "--skip-rows" not in err.fix  # a DataFrame has no title rows
    framework = make_framework(a={"column": "aa"})
    expect_data_error(validate(framework, table().rename({"a": "aa_"})),
                      r"column not found in the data \(did you mean 'aa_'\?\) \(1 missing", node="a", column="aa")


@pytest.mark.parametrize("ids", [["NA", "nan", "null", "NaN"], ["NA", "FRA", "DEU", "None"]])
def test_unit_ids_that_look_missing_are_ids_csv(tmp_path, ids):
    # was: 'unit id missing in data row(s) 1' for Namibia's ISO code NA
    data = table().with_columns(pl.Series("unit", ids), pl.Series("name", ["NA", "nan", "null", "N/A"]),
                                pl.Series("region", ["NA", "NA", "null", "S"]))
    path = tmp_path / "ids.csv"
    data.write_csv(path)
    dataset = load_data(path, framework=make_framework())
    assert dataset.table["unit"].to_list() == ids
    assert dataset.table["name"].to_list() == ["NA", "nan", "null", "N/A"]
    assert dataset.table["region"].to_list() == ["NA", "NA", "null", "S"]
    assert dataset.table["a"].null_count() == 1  # in data columns "NA" & co. still mean missing
    result = engine.score(make_framework(), dataset)
    assert sorted(result.table["unit"].to_list()) == sorted(ids) and result.table["idx"].null_count() == 0


def test_unit_ids_that_look_missing_are_ids_excel(tmp_path):
    rows = [["unit", "name", "region", "a", "b", "pop"]] + [
        [u, u, "N", 1.5 + k, 0.5 + k, 10.5] for k, u in enumerate(["NA", "nan", "null", "NaN"])]
    path = excel_file(tmp_path / "ids.xlsx", rows)
    result = engine.score(make_framework(), path)
    assert sorted(result.table["unit"].to_list()) == sorted(["NA", "nan", "null", "NaN"])


def test_an_empty_unit_id_is_still_missing(tmp_path):
    path = tmp_path / "empty_id.csv"
    table().with_columns(pl.Series("unit", ["u1", None, "u3", "u4"])).write_csv(path)
    expect_data_error(validate(make_framework(), path), r"unit id missing in data row\(s\) 2", column="unit")


def test_ids_with_leading_zeros_keep_them(tmp_path):
    path = tmp_path / "fips.csv"
    table().with_columns(pl.Series("unit", ["01001", "01003", "02013", "10001"])).write_csv(path)
    assert load_data(path, unit="unit").table["unit"].to_list() == ["01001", "01003", "02013", "10001"]


def test_a_panel_given_as_one_edition_is_refused():
    """A panel framework's table (data.period) scored as one edition points to the panel commands."""
    with pytest.raises(DataError, match="duplicate unit ids: these are panel data, one row per unit and 'year'"):
        engine.score("china-city-development-2004-2012")


# ---------------------------------------------------------------------------------------------
# guard: every raise in the modules has a test in this file
# ---------------------------------------------------------------------------------------------


def raise_messages(source: str, error: str) -> list[str]:
    """The literal part (placeholders and regex metacharacters cut out) of every raise's message."""
    found = []
    for match in re.finditer(rf"raise {error}\(\s*((?:f?\"[^\"]*\"\s*)+|f?'[^']*')", source):
        literal = re.sub(r"(?<=\")\s*f?\"", "", match.group(1))  # join implicit concatenation
        parts = re.split(r"\{[^}]*\}|[()\[\]*.+?\\|^$\"]|\bf\"", literal)
        found.append(max((p.strip() for p in parts), key=len))
    return found


def test_every_data_error_raise_is_covered():
    root = Path(engine.__file__).parent
    this = Path(__file__).read_text(encoding="utf-8")
    messages = []
    for path in (*sorted((root / "data").glob("*.py")), root / "io.py"):
        source = path.read_text(encoding="utf-8")
        found = raise_messages(source, "DataError")
        assert len(found) == source.count("raise DataError("), f"could not parse every raise in {path.name}"
        messages += found
    assert len(messages) >= 20
    uncovered = [m for m in messages if m not in this]
    assert not uncovered, f"raise DataError without a test: {uncovered}"


def test_load_data_takes_the_framework_by_name_or_path():
    # was AttributeError: 'str' object has no attribute 'data'
    by_name = load_data("asem", framework="asem")
    by_object = load_data("asem", framework=engine.load_framework("asem"))
    assert by_name.unit == by_object.unit and by_name.table.equals(by_object.table)
    path = engine.load_framework("asem").path
    assert load_data("asem", framework=path).table.equals(by_object.table)


# ---------------------------------------------------------------------------- bad input at scale (issue 19.6)

def test_a_data_file_too_large_for_memory_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from engine.data import load as load_module

    path = tmp_path / "big.parquet"
    units = [f"u{k}" for k in range(1000)]
    pl.DataFrame({"unit": units, "a": np.arange(1000.0), "b": np.ones(1000)}).write_parquet(path)
    fw = make_framework()
    rows, columns, needed = load_module.estimate_bytes(path, fw)
    # 1000 rows: 32 (text) + 8 + 8 bytes each, plus 8 bytes x (arrays per indicator x 2 + per node x 3) of work
    work = 1000 * 8 * (load_module.PER_INDICATOR * 2 + load_module.PER_NODE * 3)
    assert (rows, columns, needed) == (1000, 3, 1000 * 48 + work)
    monkeypatch.setattr(load_module, "available_bytes", lambda: 100_000)
    monkeypatch.setattr(pl, "read_parquet", lambda *a, **k: pytest.fail("the file was read"))
    with pytest.raises(DataError, match=r"the data file is too large for the memory available: reading and scoring it "
                       r"with 'tiny' needs about 0 MiB \(1,000 rows x 3 columns\), but only 0 MiB") as info:
        load_data(path, framework=fw)
    assert info.value.path == str(path) and "CITYRANK_MEMORY_CHECK=off" in info.value.fix
    monkeypatch.setenv("CITYRANK_MEMORY_CHECK", "off")
    assert load_module.check_memory_for(path, fw) == needed  # skipped: no error


def test_csv_memory_estimate_counts_rows_from_the_first_lines(tmp_path):
    from engine.data.load import estimate_bytes

    path = tmp_path / "big.csv"
    pl.DataFrame({"unit": [f"u{k:05d}" for k in range(20_000)], "a": [1.5] * 20_000}).write_csv(path)
    rows, columns, needed = estimate_bytes(path)
    assert columns == 2 and abs(rows - 20_000) < 200 and needed == 2 * path.stat().st_size


@pytest.mark.timeout(120)
def test_duplicate_ids_among_a_million_rows_are_named_in_one_pass():
    n = 1_000_000
    ids = [f"u{k}" for k in range(n)]
    ids[10], ids[500_000], ids[999_999] = "u7", "u123", "u7"  # u7 three times, u123 twice
    data = pl.DataFrame({"unit": ids, "region": ["r"] * n, "a": np.arange(n, dtype=np.float64),
                         "b": np.ones(n)})
    err = expect_data_error(validate(make_framework(), data), r"duplicate unit ids", column="unit",
                            units=["u7", "u123"])
    assert "u7" in str(err) and "u123" in str(err)
