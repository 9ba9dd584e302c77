"""load_panel: every bad panel is refused before any work, with the offending units/periods named."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from engine.errors import DataError, DataQualityWarning, SchemaError
from engine.panel import load_panel, period_years

from .conftest import toy_framework


def test_a_panel_serves_each_period(framework, table):
    panel = load_panel(framework, table)
    assert panel.periods == (2010, 2011, 2012)
    assert panel.units_in(2011) == ["x", "y", "z"]
    data = panel.dataset(2012)
    assert data.unit == "city" and data.table["a"].to_list() == [1.0, 2.0, 9.0]


def test_entered_and_left(framework, table):
    panel = load_panel(framework, table.filter(~((pl.col("city") == "x") & (pl.col("year") == 2012)))
                       .vstack(pl.DataFrame({"city": ["w"], "year": [2012], "a": [1.0], "b": [1.0]})))
    assert panel.entered(2011, 2012) == ["w"]
    assert panel.left(2011, 2012) == ["x"]
    assert panel.entered(2010, 2011) == [] == panel.left(2010, 2011)


def test_duplicate_unit_periods_are_named(framework, table):
    with pytest.raises(DataError, match=r"duplicate unit-period rows: 'y @ 2011'") as err:
        load_panel(framework, pl.concat([table, table.filter((pl.col("city") == "y") & (pl.col("year") == 2011))]))
    assert err.value.units == ["y"]


def test_a_period_with_one_unit_is_refused(framework, table):
    lonely = pl.DataFrame({"city": ["x"], "year": [2013], "a": [1.0], "b": [1.0]})
    with pytest.raises(DataError, match=r"period\(s\) 2013 have a single unit"):
        load_panel(framework, pl.concat([table, lonely]))


def test_a_single_period_is_not_a_panel(framework, table):
    with pytest.raises(DataError, match="at least two periods; the data have 1"):
        load_panel(framework, table.filter(pl.col("year") == 2010))


def test_a_period_column_that_is_not_integer_or_date(framework, table):
    with pytest.raises(DataError, match=r"period column must hold integers .* not String .*'2010a'"):
        load_panel(framework, table.with_columns(pl.col("year").cast(pl.String) + "a"))
    with pytest.raises(DataError, match=r"not Float64"):
        load_panel(framework, table.with_columns(pl.col("year") + 0.5))


def test_period_columns_of_text_years_and_dates_are_read(framework, table):
    assert load_panel(framework, table.with_columns(pl.col("year").cast(pl.String))).periods == (2010, 2011, 2012)
    dated = table.with_columns(pl.date(pl.col("year"), 12, 31).alias("year"))
    assert load_panel(framework, dated).periods[0] == dt.date(2010, 12, 31)
    assert period_years([dt.date(2011, 1, 1), 2012]).tolist() == [2011.0, 2012.0]


def test_missing_unit_or_period_values(framework, table):
    with pytest.raises(DataError, match=r"period missing in data row\(s\) 2"):
        load_panel(framework, table.with_columns(pl.when(pl.int_range(9) == 1).then(None)
                                                 .otherwise(pl.col("year")).alias("year")))
    with pytest.raises(DataError, match="no period column given"):
        load_panel(toy_framework(data={"unit": "city"}), table)
    with pytest.raises(DataError, match="column 'when': column not found"):
        load_panel(framework, table, period="when")


def test_unknown_period_asked_for(framework, table):
    panel = load_panel(framework, table)
    for ask in (panel.dataset, panel.units_in):
        with pytest.raises(DataError, match=r"unknown period 2020; the panel has 2010, 2011, 2012"):
            ask(2020)
    with pytest.raises(DataError, match="unknown period 1999"):
        panel.entered(1999, 2010)


def _write(tmp_path, table, year, ids):
    path = tmp_path / f"data_{year}.csv"
    table.filter(pl.col("year") == year).drop("year").with_columns(pl.Series("city", ids)).write_csv(path)
    return path


def test_one_file_per_period(framework, table, tmp_path):
    files = {y: _write(tmp_path, table, y, ["x", "y", "z"]) for y in (2010, 2011, 2012)}
    panel = load_panel(framework, files=files)
    assert panel.periods == (2010, 2011, 2012) and panel.period == "year"
    assert panel.dataset(2011).table["a"].to_list() == [1.0, 4.0, 5.0]


def test_a_unit_column_that_changes_type_between_files(framework, table, tmp_path):
    files = {2010: _write(tmp_path, table, 2010, ["1", "2", "3"]), 2011: _write(tmp_path, table, 2011, ["x", "y", "z"])}
    with pytest.raises(DataError, match=r"unit column changes type between files \(.*data_2010.csv: Int64', "
                                        r".*data_2011.csv: String'"):
        load_panel(framework, files=files)


def test_a_column_that_is_a_date_in_one_file_and_a_number_in_another(framework, table, tmp_path):
    """Stacking used to turn the dates into day counts (2010-06-30 -> 14790.0) silently."""
    import datetime as dt

    files = {}
    for year, surveyed in ((2010, [dt.date(2010, 6, 30)] * 3), (2011, [20110630.0] * 3)):
        files[year] = tmp_path / f"data_{year}.parquet"
        (table.filter(pl.col("year") == year).drop("year").with_columns(pl.Series("city", ["x", "y", "z"]),
                                                                      pl.Series("surveyed", surveyed))
         .write_parquet(files[year]))
    with pytest.raises(DataError, match=r"date or time in some files and not in others \(.*data_2010.parquet: Date"
                                        r"', .*data_2011.parquet: Float64'") as err:
        load_panel(framework, files=files)
    assert err.value.column == "surveyed" and "same way in every file" in err.value.fix


def test_files_and_data_together_are_refused(framework, table, tmp_path):
    with pytest.raises(DataError, match=r"either data .* or files"):
        load_panel(framework, table, files={2010: tmp_path / "a.csv"})
    with pytest.raises(DataError, match=r"period \(1,\) of file .* is not an integer or a date"):
        load_panel(framework, files={(1,): tmp_path / "a.csv"})


def test_unknown_normalisation_and_methods_without_a_panel_form(table):
    panel = load_panel(toy_framework(), table)
    with pytest.raises(SchemaError, match="normalisation must be one of"):
        panel.framework("global")
    ranked = load_panel(toy_framework(normalisation={"method": "zscore"}), table)
    with pytest.raises(SchemaError, match=r"no fixed-parameter \(panel\) form of the normalisation of 'a \(zscore "
                                          r"depends on the other units of its period\)'"):
        ranked.framework("panel")
    shifted = load_panel(toy_framework(normalisation={"method": "minmax", "range": [1, 100]}), table)
    with pytest.raises(SchemaError, match=r"minmax range \[1, 100\] does not start at 0"):
        shifted.framework("panel")


def test_what_the_framework_declares_about_the_data(table):
    framework = toy_framework(data={"unit": "city", "period": "year", "zero_missing": ["a", "c"]})
    with pytest.raises(DataError, match=r"data.zero_missing names column\(s\) not in the data: 'c'"):
        load_panel(framework, table)
    framework = toy_framework(data={"unit": "city", "period": "year", "zero_missing": ["b"],
                                    "aliases": {"old_y": "y"}})
    renamed = table.with_columns(pl.when((pl.col("city") == "y") & (pl.col("year") == 2010)).then(pl.lit("old_y"))
                                 .otherwise(pl.col("city")).alias("city"))
    with pytest.warns(DataQualityWarning) as caught:
        panel = load_panel(framework, renamed)
    messages = [str(w.message) for w in caught]
    assert "unit ids renamed by the framework's data.aliases (old or misspelt names): 'old_y -> y (2010)'" in messages
    assert "zeros read as missing (data.zero_missing: 0 means not reported) in 1 column(s): 'b': 1 of 9 rows" \
        in messages
    assert panel.units_in(2010) == ["x", "y", "z"] and panel.notes["zero_missing"] == {"b": 1}
    assert panel.table.filter((pl.col("city") == "z") & (pl.col("year") == 2012))["b"].item() is None
    # an alias that makes two rows of one period collide is a duplicate
    with pytest.raises(DataError, match=r"duplicate unit-period rows: 'y @ 2010'.*check data.aliases"):
        with pytest.warns(DataQualityWarning):
            load_panel(framework, pl.concat([table, table.filter(pl.col("city") == "y").with_columns(
                pl.lit("old_y").alias("city"))]))


def test_implausible_values_are_reported_by_unit_and_period(table):
    framework = toy_framework(range=[0, 4])
    with pytest.warns(DataQualityWarning, match=r"node 'a' .* 2 value\(s\) outside the plausible range \[0, 4\] "
                                                r".*'z @ 2011=5', 'z @ 2012=9'"):
        panel = load_panel(framework, table)
    assert len(panel.notes["implausible"]) == 1


def test_files_that_lack_the_unit_column_or_already_have_the_period(framework, table, tmp_path):
    path = tmp_path / "a.csv"
    table.rename({"city": "town"}).drop("year").write_csv(path)
    with pytest.raises(DataError, match="column 'city': unit column not found; the file has 'town'"):
        load_panel(framework, files={2010: path, 2011: path})
    table.write_csv(path)
    with pytest.raises(DataError, match="the file already has a column named 'year'"):
        load_panel(framework, files={2010: path, 2011: path})
    with pytest.raises(DataError, match="no unit id column given"):
        load_panel(toy_framework(data={"period": "year"}), files={2010: path})
    with pytest.raises(DataError, match="no files given"):
        load_panel(framework, files={})


def test_files_whose_columns_do_not_stack(framework, table, tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    table.filter(pl.col("year") == 2010).drop("year").write_csv(first)
    table.filter(pl.col("year") == 2011).drop("year").with_columns(pl.lit("x").alias("a")).write_csv(second)
    with pytest.raises(DataError, match=r"node 'a' / column 'a': non-numeric values: \"x @ 2011='x'\""):
        load_panel(framework, files={2010: first, 2011: second})
    nested = tmp_path / "b.parquet"
    table.filter(pl.col("year") == 2011).drop("year").with_columns(pl.lit([1.0]).alias("a")).write_parquet(nested)
    with pytest.raises(DataError, match=r"the files do not stack into one table: .*supertype"):
        load_panel(framework, files={2010: first, 2011: nested})


def test_no_data_and_no_default_dataset(framework):
    with pytest.raises(DataError, match="no data given and the framework names no default dataset"):
        load_panel(framework)


def test_panel_normalisation_refuses_other_steps_fitted_per_period(table):
    from engine.schema import framework_from_dict

    from .conftest import DOCUMENT

    winsorised = load_panel(toy_framework(treatment={"method": "skew_kurtosis"}), table)
    with pytest.raises(SchemaError, match=r"node 'a'.*normalisation 'panel' promises scores comparable over time, "
                                          r"but these steps are fitted on each period's own data: 'a: treatment "
                                          r"skew_kurtosis \(winsorised on the values of each period\)'"):
        winsorised.framework("panel")
    assert winsorised.framework("period").indicators[0].treatment.name == "skew_kurtosis"
    nodes = [{**n, "weighting": {"method": "entropy"}} if n["id"] == "index" else n for n in DOCUMENT["nodes"]]
    fitted = framework_from_dict({**DOCUMENT, "nodes": nodes, "rescale": {"method": "top"}})
    with pytest.raises(SchemaError, match=r"'index: entropy weights \(from the data of each period\)', 'index: "
                                          r"rescale top \(divides by the best score of each period\)'"):
        load_panel(fitted, table).framework("panel")
