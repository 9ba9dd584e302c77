"""The shipped panel china_city_panel_2004_2012 with its framework: it loads with the warnings its
SOURCE problems call for (docs: engine/datasets/china_city_panel_2004_2012.md), and scores per year."""

from __future__ import annotations

import re
import warnings

import polars as pl
import pytest

import engine
from engine.errors import DataQualityWarning, ImputationWarning
from engine.panel import load_panel, score_panel

FRAMEWORK = "china-city-development-2004-2012"


@pytest.fixture(scope="module")
def loaded():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        panel = load_panel(FRAMEWORK)
    return panel, [(w.category, str(w.message)) for w in caught]


def test_the_shipped_panel_is_unbalanced(loaded):
    panel, _ = loaded
    assert panel.periods == tuple(range(2004, 2013))
    assert (len(panel.units_in(2011)), len(panel.units_in(2012))) == (157, 263)
    assert panel.table[panel.unit].n_unique() == 286  # 287 names, 毫州市 merged into 亳州市
    assert len(panel.entered(2011, 2012)) == 263 - 157 + len(panel.left(2011, 2012))


def test_the_known_problems_are_flagged_not_ranked_on_silently(loaded):
    _, caught = loaded
    quality = [text for category, text in caught if category is DataQualityWarning]
    assert "unit ids renamed by the framework's data.aliases (old or misspelt names): '毫州市 -> 亳州市 (2005)', " \
           "'思茅市 -> 普洱市 (2012)'" in quality
    assert ("zeros read as missing (data.zero_missing: 0 means not reported) in 2 column(s): 'fdi_10k_usd': 61 of "
            "1989 rows; 'garbage_treatment_pct': 185 of 1989 rows") in quality
    by_node = {re.match(r"node '(\w+)'", text).group(1): text for text in quality if text.startswith("node")}
    assert set(by_node) == {"gdp_pc", "fiscal_share", "waste_treatment", "green_cover"}
    # impossible percentages by unit and year
    assert "'北海市 @ 2011=362'" in by_node["waste_treatment"]
    assert "5 value(s) outside the plausible range [0, 100]" in by_node["green_cover"]
    assert "'东莞市 @ 2009=386.64'" in by_node["green_cover"]
    # populations ten times too large, seen through GDP per resident
    assert "'娄底市 @ 2011=763.41', '孝感市 @ 2011=999.02'" in by_node["gdp_pc"]
    assert "'合肥市 @ 2012=1.63066'" in by_node["fiscal_share"]
    imputation = [text for category, text in caught if category is ImputationWarning]
    assert imputation == ["series imputation left values missing (no earlier observation of the unit) in: "
                          "fdi_10k_usd (29), garbage_treatment_pct (134)"]


def test_a_year_scored_without_the_panel_loader_is_refused():
    """Outside load_panel the zeros of fdi_10k_usd are not read as missing: the log treatment refuses them."""
    with pytest.raises(engine.DataError, match=r"node 'fdi_pc' / column 'fdi_10k_usd': log treatment needs values > 0"):
        engine.score(FRAMEWORK, pl.read_csv(engine.shipped_datasets()["china_city_panel_2004_2012"]).filter(
            pl.col("year") == 2012))


@pytest.mark.parametrize("normalisation", ["period", "panel"])
def test_every_year_scores(loaded, normalisation):
    panel, _ = loaded
    result = score_panel(panel, normalisation=normalisation)
    units = result.units
    assert units.group_by("year").len().sort("year")["len"].to_list() == [267, 261, 258, 213, 215, 180, 175,
                                                                          157, 263]
    change = result.change(2011, 2012)
    assert change.filter(pl.col("status") == "entered").height == len(panel.entered(2011, 2012))
    assert change.filter(pl.col("status") == "left").height == len(panel.left(2011, 2012))
    if normalisation == "panel":
        assert units["Index"].min() >= 0.0 and units["Index"].max() <= 100.0


def test_the_whole_panel_scored_as_one_edition_points_to_the_panel_commands():
    with pytest.raises(engine.DataError, match=r"duplicate unit ids: these are panel data, one row per unit and "
                                               r"'year'.*cityrank trajectories"):
        engine.score(FRAMEWORK)
