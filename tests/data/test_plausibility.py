"""Plausible-range checks on data values (issue 15 item 3) and AHP consistency in ``validate``
(issue 15 item 10)."""

from __future__ import annotations

import warnings
from typing import Any

import polars as pl
import pytest

import engine
from engine import DataQualityWarning
from engine.cli import main
from engine.data import load_data, prepare
from engine.data.prepare import plausible_range
from engine.schema import framework_from_dict
from engine.weighting import AHPConsistencyWarning


def framework(**indicator: Any):
    """Index ``idx`` over one indicator ``x`` (column ``x``) with the given keys, and ``y``."""
    return framework_from_dict({
        "id": "plausible", "labels": {"en": "Plausible"}, "data": {"unit": "unit"},
        "nodes": [
            {"id": "idx", "labels": {"en": "Index"}},
            {"id": "x", "parent": "idx", "labels": {"en": "X"}, "column": "x", **indicator},
            {"id": "y", "parent": "idx", "labels": {"en": "Y"}, "column": "y"},
        ],
    })


def data(x: list[float], name: str = "x") -> pl.DataFrame:
    return pl.DataFrame({"unit": ["NA", "B", "C", "D"][: len(x)], name: x, "y": [1.0, 2.0, 3.0, 4.0][: len(x)]})


def no_warning(fw, table) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        engine.validate(fw, table)


# ---------------------------------------------------------------------------------------------- rules


@pytest.mark.parametrize(("keys", "expected"), [
    ({"unit": "Percent"}, (0.0, 100.0)),
    ({"unit": "%"}, (0.0, 100.0)),
    ({"unit": "percent of local general public budget expenditure"}, (0.0, 100.0)),
    ({"unit": "Percent", "labels": {"en": "GDP growth"}}, (-100.0, None)),
    ({"unit": "%", "column": "x_change"}, (-100.0, None)),
    ({"column": "urbanization_rate_pct"}, (0.0, 100.0)),
    ({"column": "urbanization_rate_pct", "denominator": "y"}, None),  # the value is no longer the column
    ({"unit": "Number"}, (0.0, None)),
    ({"unit": "persons"}, (0.0, None)),
    ({"unit": "patents per firm"}, (0.0, None)),
    ({"unit": "firms (家)"}, (0.0, None)),
    ({"unit": "个"}, (0.0, None)),
    ({"unit": "yuan per resident"}, None),
    ({"unit": "Score"}, None),
    ({"unit": "Percent", "range": [0, None]}, (0.0, None)),
    ({"unit": "yuan", "range": [None, 5]}, (None, 5.0)),
])
def test_plausible_range_rules(keys, expected):
    rule = plausible_range(framework(**keys).indicators[0])
    assert (rule[:2] if rule else None) == expected


# ------------------------------------------------------------------------------------------- warnings


def test_a_percentage_100_times_too_large_is_flagged_with_unit_and_column():
    # the shape of 岳阳市's 6239 for 62.39 % (issue 15 item 3)
    fw = framework(column="urbanization_rate_pct")
    table = data([62.51, 6239.0, 87.83, 24.59], name="urbanization_rate_pct")
    with pytest.warns(DataQualityWarning, match=r"node 'x' / column 'urbanization_rate_pct': 1 value\(s\) outside "
                      r"the plausible range \[0, 100\] of a percentage .*'B=6239'") as caught:
        engine.validate(fw, table)
    assert len(caught) == 1 and "declare the indicator's `range: [low, high]`" in str(caught[0].message)
    assert caught[0].filename.endswith("__init__.py")  # points at the caller of prepare, not at prepare


def test_negative_percentage_and_negative_count_are_flagged():
    with pytest.warns(DataQualityWarning, match=r"\[0, 100\] of a percentage \(unit 'Percent'\): 'NA=-0.5'"):
        engine.validate(framework(unit="Percent"), data([-0.5, 2.0, 3.0, 4.0]))
    with pytest.warns(DataQualityWarning, match=r"\[0, open\] of a count \(unit 'persons'\): 'C=-3'"):
        engine.validate(framework(unit="persons"), data([1.0, 2.0, -3.0, 4.0]))


def test_declared_range_is_used_and_can_open_an_end():
    with pytest.warns(DataQualityWarning, match=r"\[1, 3\] of the range the framework declares: 'NA=0\.5', 'D=4'"):
        engine.validate(framework(range=[1, 3]), data([0.5, 2.0, 3.0, 4.0]))
    no_warning(framework(unit="Percent", range=[0, None]), data([1.0, 2.0, 230.0, 4.0]))  # debt, % of GDP
    no_warning(framework(unit="Percent", labels={"en": "GDP growth"}), data([-3.0, 2.0, 3.0, 4.0]))


def test_denominated_value_is_checked():
    fw = framework(unit="percent of budget", denominator="y", scale_factor=100)
    with pytest.warns(DataQualityWarning, match=r"'D=125'"):
        engine.validate(fw, data([0.5, 1.0, 1.5, 5.0]))


def test_values_in_range_and_unknown_units_do_not_warn():
    no_warning(framework(unit="Percent"), data([0.0, 50.0, 100.0, None]))
    no_warning(framework(unit="yuan"), data([-5.0, 2.0, 3.0, 4.0]))


def test_score_warns_too():
    with pytest.warns(DataQualityWarning, match=r"'B=6239'"):
        engine.score(framework(unit="%"), data([62.5, 6239.0, 87.8, 24.6]))


# ------------------------------------------------------------------------------ the shipped yearbook


def test_shipped_yueyang_urbanisation_rate_is_corrected():
    table = load_data("ccsy2024_cities", unit="admin_code_6").table
    yueyang = table.filter(pl.col("city_zh") == "岳阳市")
    assert yueyang["urbanization_rate_pct"].to_list() == [62.39]  # printed 6239 in table 2-1
    assert table["urbanization_rate_pct"].max() <= 100.0
    # a framework that reads the column is now clean (the old value warned and squeezed every city)
    fw = framework_from_dict({
        "id": "urban", "labels": {"en": "Urban"}, "data": {"unit": "admin_code_6"},
        "nodes": [{"id": "idx", "labels": {"en": "Index"}},
                  {"id": "urban", "parent": "idx", "labels": {"en": "U"}, "column": "urbanization_rate_pct",
                   "unit": "%"},
                  {"id": "gdp", "parent": "idx", "labels": {"en": "G"}, "column": "gdp_per_capita_yuan"}]})
    dataset = load_data("ccsy2024_cities", framework=fw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inputs = prepare(fw, dataset)
    assert inputs.raw[:, 0].max() == 100.0
    bad = dataset.table.with_columns(
        pl.when(pl.col("city_zh") == "岳阳市").then(6239.0).otherwise(pl.col("urbanization_rate_pct"))
        .alias("urbanization_rate_pct"))
    with pytest.warns(DataQualityWarning, match=r"'430600=6239'"):
        prepare(fw, engine.Dataset(table=bad, unit="admin_code_6"))


# ------------------------------------------------------------------------------------ AHP in validate

AHP = {
    "id": "ahp", "labels": {"en": "AHP"}, "data": {"unit": "unit"},
    "nodes": [
        {"id": "idx", "labels": {"en": "Index"},
         "weighting": {"method": "ahp", "order": ["经济", "创新", "环境"],
                       "matrix": [[1, 9, 1 / 9], [1 / 9, 1, 9], [9, 1 / 9, 1]]}},
        {"id": "经济", "parent": "idx", "labels": {"en": "Economy"}, "column": "a"},
        {"id": "创新", "parent": "idx", "labels": {"en": "Innovation"}, "column": "b"},
        {"id": "环境", "parent": "idx", "labels": {"en": "Environment"}, "column": "c"},
    ],
}


def test_validate_reports_an_inconsistent_ahp_matrix_by_node_ids():
    # was: validate said "ok … valid" and only score warned, naming matrix[i][j]
    fw = framework_from_dict(AHP)
    with pytest.warns(AHPConsistencyWarning, match=r"node 'idx': AHP consistency ratio CR = 6\.8\d+ .* "
                      r"'经济' vs '环境' = 0\.111111 \(matrix\[0\]\[2\]\)") as caught:
        engine.validate(fw)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "'经济' vs '创新' = 9" in message and "'创新' vs '环境' = 9" in message


def test_validate_is_silent_for_a_consistent_ahp_matrix():
    document = {**AHP, "nodes": [{**AHP["nodes"][0], "weighting": {
        "method": "ahp", "matrix": [[1, 2, 4], [0.5, 1, 2], [0.25, 0.5, 1]]}}, *AHP["nodes"][1:]]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        engine.validate(framework_from_dict(document))


def test_cli_validate_prints_the_warnings_and_says_so(tmp_path, capsys):
    import yaml

    path = tmp_path / "ahp.yaml"
    path.write_text(yaml.safe_dump(AHP, allow_unicode=True), encoding="utf-8")
    csv = tmp_path / "d.csv"
    csv.write_bytes("unit,a,b,c\nNA,1,62.39,5\nB,2,6239,7\nC,3,80,9\n".encode("gbk"))
    fw = {**AHP, "nodes": [*AHP["nodes"][:2], {**AHP["nodes"][2], "unit": "%"}, AHP["nodes"][3]]}
    path.write_text(yaml.safe_dump(fw, allow_unicode=True), encoding="utf-8")
    assert main(["validate", "-f", str(path), "-d", str(csv)]) == 0
    out, err = capsys.readouterr()
    assert "valid, with 2 warning(s) above" in out
    assert "cityrank: warning: node 'idx': AHP consistency ratio" in err and "'经济' vs '环境'" in err
    assert "cityrank: warning: node '创新' / column 'b': 1 value(s) outside" in err and "'B=6239'" in err
