"""score_panel / Trajectories on the 3-period toy panel, checked by hand (tests/panel/conftest.py)."""

from __future__ import annotations

import json

import polars as pl
import pytest

import engine
from engine.display import ResultShape
from engine.errors import ConstantIndicatorWarning, DataError
from engine.panel import Trajectories, load_panel, score_panel
from engine.schema import framework_from_dict

from .conftest import DOCUMENT

Y_2010_PANEL = (12.5 + 100 / 3) / 2  # a: (2-1)/(9-1)*100, b: (3-2)/(3-0)*100 (less is better)


def _index(trajectories, city, year):
    units = trajectories.units
    return units.filter((pl.col("city") == city) & (pl.col("year") == year))["index"].item()


def test_scores_and_ranks_per_period_by_hand(framework, table):
    result = score_panel(framework, table)
    units = result.units
    assert units.columns[:2] == ["city", "year"] and units.height == 9 and units["year"].dtype == pl.Int64
    # 2011: a = 1, 4, 5 -> 0, 75, 100; b = 3, 1, 1 (less is better) -> 0, 100, 100
    y2011 = units.filter((pl.col("city") == "y") & (pl.col("year") == 2011)).row(0, named=True)
    assert (y2011["a"], y2011["b"], y2011["index"], y2011["index_rank"]) == (75.0, 100.0, 87.5, 2)
    assert _index(result, "y", 2010) == 50.0


def test_panel_normalisation_keeps_the_score_of_unchanged_data(framework, table):
    """y has the same data in 2010 and 2012: the same score under "panel", not under "period"."""
    panel = score_panel(framework, table, normalisation="panel")
    assert _index(panel, "y", 2010) == _index(panel, "y", 2012) == pytest.approx(Y_2010_PANEL, abs=1e-12)
    assert _index(panel, "z", 2012) == 100.0 and _index(panel, "x", 2011) == 0.0
    per_period = score_panel(framework, table, normalisation="period")
    assert _index(per_period, "y", 2010) == 50.0 != _index(per_period, "y", 2012)
    assert panel.manifest["normalisation_parameters"]["a"] == {"method": "goalposts", "scale": 100.0,
                                                               "goalposts": [1.0, 9.0]}
    assert panel.manifest["normalisation_parameters"]["b"]["goalposts"] == [0.0, 3.0]


def test_change_between_two_periods_by_hand(framework, table):
    result = score_panel(framework, table)
    change = result.change(2011, 2012).sort("city")
    assert change.columns == ["city", "rank_2011", "rank_2012", "rank_change", "score_2011", "score_2012",
                              "score_change", "status"]
    assert change["score_change"].to_list() == pytest.approx([0.0, (12.5 + 100 / 3) / 2 - 87.5, 0.0])
    assert change["rank_change"].to_list() == [0, 0, 0] and set(change["status"]) == {"both"}
    with pytest.raises(DataError, match="unknown period 2013"):
        result.change(2011, 2013)
    with pytest.raises(DataError, match="unknown node 'c'"):
        result.change(2011, 2012, node="c")


def test_trends_by_hand(framework, table):
    trends = score_panel(framework, table).trends().sort("city")
    x, y, z = trends.iter_rows(named=True)
    assert x["cagr"] is None and x["slope"] == 0.0  # score 0: no growth rate
    y_2012 = (12.5 + 100 / 3) / 2
    assert y["slope"] == pytest.approx((y_2012 - 50.0) / 2)  # least squares over 2010, 2011, 2012
    assert y["cagr"] == pytest.approx((y_2012 / 50.0) ** 0.5 - 1)
    assert (z["cagr"], z["slope"], z["rank_slope"], z["n_periods"], z["first"], z["last"]) == (0.0, 0.0, 0.0, 3,
                                                                                              2010, 2012)


def test_units_that_enter_and_leave_are_reported(framework, table):
    gone = table.filter(~((pl.col("city") == "x") & (pl.col("year") == 2011)))
    with pytest.warns(ConstantIndicatorWarning, match="year 2011: constant indicator"):  # b = 1, 1 without x
        result = score_panel(framework, gone)
    assert result.events.rows() == [(2011, "x", "left"), (2012, "x", "entered")]
    assert result.change(2010, 2011).filter(pl.col("city") == "x")["status"].item() == "left"
    assert result.change(2011, 2012).filter(pl.col("city") == "x")["status"].item() == "entered"
    x = result.trends().filter(pl.col("city") == "x").row(0, named=True)
    assert (x["n_periods"], x["missing"]) == (2, "2011")


def test_a_loaded_panel_is_scored_and_written(framework, table, tmp_path):
    result = score_panel(load_panel(framework, table))
    assert isinstance(result, ResultShape) and engine.score_panel is score_panel and engine.Trajectories is Trajectories
    assert "Trajectories (framework toy-panel, units 3, periods 2010–2012 (3), normalisation period)" in repr(result)
    assert "<strong>Trajectories</strong>" in result._repr_html_()
    out = result.write(tmp_path / "out", format="csv")
    assert sorted(p.name for p in out.iterdir()) == ["changes.csv", "events.csv", "manifest.json", "trends.csv",
                                                     "units.csv"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["periods"] == ["2010", "2011", "2012"] and manifest["units_per_period"]["2011"] == 3
    changes = pl.read_csv(out / "changes.csv")
    assert changes.height == 6 and changes["from"].unique().sort().to_list() == [2010, 2011]


A = [1.0, 2, 3, 1, 4, 5, 1, 2, 9]  # a over the panel, rows as in the toy table (x, y, z per year)
B = [3.0, 2, 1, 3, 1, 1, 3, 2, 0]  # b (less is better)


@pytest.mark.parametrize(("method", "a_expected", "b_expected"), [
    ({"method": "minmax", "range": [0, 10]}, [(v - 1) / 8 * 10 for v in A], [(3 - v) / 3 * 10 for v in B]),
    ({"method": "distance_to_max"}, [(v - 1) / 8 for v in A], [(3 - v) / 3 for v in B]),
    ({"method": "distance_to_target", "target": 6}, [min(1.0, (v - 1) / 5) for v in A], None),
    ({"method": "fraction_of_max", "scale": 100}, [v / 9 * 100 for v in A], None),
])
def test_panel_normalisation_is_the_method_fitted_on_the_pooled_panel(table, method, a_expected, b_expected):
    """Under "panel" each method's statistics come from every period at once: the formula on the pooled values."""
    # a gets the method; b too, unless the method needs more-is-better values (b keeps minmax then)
    nodes = [{**n, "normalisation": method} if n["id"] == "a" or (n["id"] == "b" and b_expected) else n
             for n in DOCUMENT["nodes"]]
    framework = framework_from_dict({**DOCUMENT, "nodes": nodes})
    units = score_panel(framework, table, normalisation="panel").units.sort("year", "city")
    assert units["a"].to_list() == pytest.approx(a_expected, abs=1e-12)
    if b_expected is not None:
        assert units["b"].to_list() == pytest.approx(b_expected, abs=1e-12)
