"""Imputation from the unit's own series (locf, interpolate): hand-computed values; refused outside a panel."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import engine
from engine.errors import ImputationWarning, SchemaError
from engine.panel import load_panel
from engine.stages.impute import fill_series

from .conftest import toy_framework

NAN = np.nan
YEARS = np.array([2010.0, 2011.0, 2013.0, 2014.0, 2015.0])  # 2012 is not a period of this series


def test_last_observation_carried_forward_by_hand():
    values = np.array([NAN, 2.0, NAN, 8.0, NAN])
    np.testing.assert_array_equal(fill_series(values, YEARS, "locf"), [NAN, 2.0, 2.0, 8.0, 8.0])


def test_linear_interpolation_in_time_by_hand():
    # 2013 lies 2/3 of the way from 2011 (2) to 2014 (8): 2 + 6 * 2/3 = 6; nothing after 2014 to interpolate to
    values = np.array([NAN, 2.0, NAN, 8.0, NAN])
    np.testing.assert_allclose(fill_series(values, YEARS, "interpolate"), [NAN, 2.0, 6.0, 8.0, NAN], rtol=0,
                               atol=1e-12)


def test_a_series_without_observations_stays_missing():
    for method in ("locf", "interpolate"):
        assert np.isnan(fill_series(np.full(3, NAN), YEARS[:3], method)).all()
    with pytest.raises(ValueError, match="not a series imputation method: 'mean'"):
        fill_series(np.ones(2), YEARS[:2], "mean")


def _gappy(table):
    """y misses a in 2011; x misses a in 2010 (nothing before it to carry)."""
    missing = (((pl.col("city") == "y") & (pl.col("year") == 2011))
               | ((pl.col("city") == "x") & (pl.col("year") == 2010)))
    return table.with_columns(pl.when(missing).then(None).otherwise(pl.col("a")).alias("a"))


@pytest.mark.parametrize(("method", "y_2011"), [("locf", 2.0), ("interpolate", 2.0)])
def test_the_panel_fills_each_units_series(table, method, y_2011):
    # y: a = 2 (2010), missing (2011), 2 (2012): both methods give 2; x stays missing in 2010 (warned)
    with pytest.warns(ImputationWarning, match=r"series imputation left values missing .* in: a \(1\)"):
        panel = load_panel(toy_framework(imputation={"method": method}), _gappy(table))
    rows = panel.table.filter(pl.col("city") == "y").sort("year")
    assert rows["a"].to_list() == [2.0, y_2011, 2.0]
    assert panel.notes["imputed"]["a"] == {"method": method, "filled": 1, "left": 1}
    # the framework to score with has nothing left to impute from a series
    assert {i.imputation.name for i in panel.framework().indicators} == {"none"}


def test_interpolation_uses_the_period_values(table):
    data = _gappy(table).with_columns(pl.when((pl.col("city") == "z") & (pl.col("year") == 2011)).then(None)
                                      .otherwise(pl.col("a")).alias("a"))
    with pytest.warns(ImputationWarning):
        panel = load_panel(toy_framework(imputation={"method": "interpolate"}), data)
    # z: 3 (2010), missing, 9 (2012) -> 6
    assert panel.table.filter(pl.col("city") == "z").sort("year")["a"].to_list() == [3.0, 6.0, 9.0]


def test_series_imputation_is_refused_for_a_single_table(table):
    with pytest.raises(SchemaError, match=r"node 'a'.*imputation 'locf' uses the unit's own series .* "
                                          r"\(2 indicator\(s\) use it\)"):
        engine.score(toy_framework(imputation={"method": "locf"}), table.filter(pl.col("year") == 2010))
