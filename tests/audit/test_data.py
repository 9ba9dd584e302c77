"""Audit section "data": availability, zeros, unique values, skewness/kurtosis outliers,
plausible ranges, denominator correlations (hand computations and SciPy)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

import engine
from engine.errors import SchemaError

from .tiny import TABLE, framework


def data_audit(fw=None, table=TABLE, **options):
    return engine.audit(fw or framework(), table, sections=["data"], options=options)


def test_availability_by_unit_indicator_and_group_by_hand():
    result = data_audit()
    units = result["data_availability_units"]
    h = units.filter(pl.col("unit") == "h").row(0, named=True)  # h lacks x3
    assert (h["n_available"], h["availability"], h["availability_A"], h["availability_B"]) == (3, 0.75, 2 / 3, 1.0)
    assert units.filter(pl.col("unit") != "h")["availability"].to_list() == [1.0] * 7
    indicators = result["data_indicators"]
    assert indicators.filter(pl.col("indicator") == "x3")["availability"].item() == 7 / 8
    groups = result["data_availability_groups"].sort("value")
    assert groups["value"].to_list() == ["N", "S"] and groups["n_units"].to_list() == [4, 4]
    assert groups["availability"].to_list() == [1.0, 15 / 16]
    south = groups.row(1, named=True)
    assert (south["lowest_indicator"], south["lowest_availability"]) == ("x3", 0.75)
    assert result.flags.height == 0  # nothing below the thresholds
    low = data_audit(min_availability=0.8).flags
    assert low.height == 1 and low["units"].item() == "h" and "less than 80%" in low["message"].item()


def test_zeros_unique_values_and_moments_against_scipy():
    result = data_audit()
    x4 = result["data_indicators"].filter(pl.col("indicator") == "x4").row(0, named=True)
    values = TABLE["x4"].to_numpy()
    assert (x4["zeros"], x4["zero_share"], x4["unique"], x4["unique_share"]) == (3, 3 / 8, 6, 6 / 8)
    assert x4["skewness"] == pytest.approx(stats.skew(values, bias=False), abs=1e-12)
    assert x4["kurtosis"] == pytest.approx(stats.kurtosis(values, bias=False), abs=1e-12)  # excess
    x3 = result["data_indicators"].filter(pl.col("indicator") == "x3").row(0, named=True)
    present = TABLE["x3"].drop_nulls().to_numpy()
    assert x3["skewness"] == pytest.approx(stats.skew(present, bias=False), abs=1e-12)
    assert (x3["min"], x3["max"], x3["median"]) == (1.0, 8.0, 5.0)
    flags = data_audit(max_zeros=0.25, min_unique=0.9).flags
    assert flags.filter(pl.col("message").str.contains("are zero"))["node"].to_list() == ["x4"]
    assert flags.filter(pl.col("message").str.contains("distinct values"))["node"].to_list() == ["x4"]


def test_outlier_flag_uses_the_coinr_rule():
    n = 20
    table = pl.DataFrame({"unit": [f"u{i}" for i in range(n)], "region": ["N"] * n,
                          "x1": np.arange(n, dtype=float), "x2": np.arange(n, dtype=float) ** 2,
                          "x3": np.sin(np.arange(n, dtype=float)), "x4": [*map(float, range(1, n)), 1000.0]})
    result = data_audit(table=table)
    row = result["data_indicators"].filter(pl.col("indicator") == "x4").row(0, named=True)
    assert row["skewness"] > 2 and row["kurtosis"] > 3.5 and row["outlier"]
    outliers = result.flags.filter(pl.col("message").str.starts_with("outliers"))
    assert outliers["node"].to_list() == ["x4"] and outliers["level"].item() == "warning"
    assert not data_audit(table=table, kurtosis=100.0)["data_indicators"]["outlier"].any()


def test_constant_indicator_is_a_warning_naming_it():
    with pytest.warns(engine.ConstantIndicatorWarning):
        flags = data_audit(table=TABLE.with_columns(x4=pl.lit(2.0))).flags
    constant = flags.filter(pl.col("message").str.starts_with("constant indicator"))
    assert constant["node"].to_list() == ["x4"] and constant["column"].item() == "x4"


def test_values_outside_the_plausible_range_are_flagged_with_their_units():
    table = TABLE.with_columns(x4=pl.Series([0.0, 0, 150, 1, 0, 4, 2, 3]))
    with pytest.warns(engine.DataQualityWarning, match="outside the plausible range"):
        result = data_audit(framework(unit="%"), table)
    flagged = result.flags.filter(pl.col("message").str.contains("plausible range"))
    assert flagged["node"].to_list() == ["x4"] and flagged["units"].item() == "c"
    assert "[0, 100]" in flagged["message"].item()
    assert result["data_indicators"].filter(pl.col("indicator") == "x4")["outside_range"].item() == 1


def test_denominator_correlations_against_scipy():
    table = TABLE.with_columns(pop=pl.Series([1.0, 2, 3, 4, 5, 6, 7, 9]), area=pl.Series([3.0, 1, 4, 1, 5, 9, 2, 6]))
    result = data_audit(framework(denominator="pop"), table, denominators=["area"])
    denom = result["data_denominators"]
    assert denom.height == 4 * 2 and denom["denominator"].unique(maintain_order=True).to_list() == ["pop", "area"]
    row = denom.filter((pl.col("indicator") == "x4") & (pl.col("denominator") == "pop")).row(0, named=True)
    x4 = (table["x4"] / table["pop"]).to_numpy()
    expected = stats.pearsonr(x4, table["pop"].to_numpy())
    assert row["denominated"] and row["n"] == 8
    assert row["pearson"] == pytest.approx(expected.statistic, abs=1e-12)
    assert row["pearson_p"] == pytest.approx(expected.pvalue, rel=1e-9)
    x1 = denom.filter((pl.col("indicator") == "x1") & (pl.col("denominator") == "pop")).row(0, named=True)
    assert x1["pearson"] > 0.6  # x1 grows with pop: flagged as possibly measuring size
    flagged = result.flags.filter(pl.col("message").str.contains("correlates with denominator 'pop'"))
    assert "x1" in flagged["node"].to_list()


def test_unknown_denominator_column_and_bad_stage_are_refused():
    with pytest.raises(SchemaError, match="denominator column 'aera' not found in the data"):
        data_audit(denominators=["aera"])
    with pytest.raises(SchemaError, match=r"denominator column 'aera'.*did you mean 'area'"):  # before scoring:
        data_audit(framework(unit="%"), TABLE.with_columns(x4=pl.lit(500.0), area=pl.lit(1.0)),  # no warnings
                   denominators="aera")
    with pytest.raises(SchemaError, match="data_stage must be one of raw, denominated, treated, normalised"):
        engine.audit(framework(), "no such file.csv", sections=["data"], options={"data_stage": "final"})


def test_treated_stage_holds_the_screened_units_only():
    result = data_audit(data_stage="normalised")
    assert result["data_availability_units"].height == 8
    assert result["data_indicators"]["max"].max() == pytest.approx(100.0)
