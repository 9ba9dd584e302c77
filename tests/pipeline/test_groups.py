"""Group aggregation and edition comparison."""

from __future__ import annotations

import polars as pl
import pytest

import engine
from engine.errors import DataError
from engine.groups import aggregate_groups, compare_editions

# Seed 001 (regional AI index 2023), published provincial composite scores (REFERENCES §6) and
# its four economic circles.
PROVINCES = pl.DataFrame({
    "province": ["上海", "江苏", "浙江", "安徽", "北京", "天津", "河北", "广东", "四川", "重庆", "山东"],
    "composite": [36.09, 28.45, 29.20, 13.19, 81.57, 9.80, 6.45, 73.56, 13.68, 9.02, 20.0],
    "circle": ["长三角"] * 4 + ["京津冀"] * 3 + ["珠三角"] + ["川渝"] * 2 + [None],
})


def test_economic_circle_totals_reproduce_seed_001():
    circles = aggregate_groups(PROVINCES, "circle", ["composite"], how="sum")
    totals = dict(zip(circles["circle"].to_list(), circles["composite"].to_list()))
    assert totals["长三角"] == pytest.approx(106.93, abs=1e-9)
    assert totals["京津冀"] == pytest.approx(97.82, abs=1e-9)  # published 97.83: rounded provincial scores
    assert round(totals["京津冀"], 1) == round(97.83, 1)
    assert totals["珠三角"] == pytest.approx(73.56, abs=1e-9)
    assert totals["川渝"] == pytest.approx(22.70, abs=1e-9)
    assert circles["circle"].to_list() == ["长三角", "京津冀", "珠三角", "川渝"]  # by rank; 山东 has no circle
    assert circles["composite_rank"].to_list() == [1, 2, 3, 4]
    assert circles["n_units"].to_list() == [4, 3, 1, 2]


def test_groups_are_ranked_by_the_ranking_kernel_ties_share_and_missing_gets_no_rank():
    """Descending competition ranks (ties share the minimum) from engine.kernels.rank; a group whose
    aggregate is missing (null, or NaN from a NaN score) gets no rank instead of rank 1 (Polars
    ranks NaN above every number)."""
    table = pl.DataFrame({"g": ["a", "b", "c", "d", "e"], "x": [2.0, 5.0, 2.0, None, float("nan")]})
    ranked = aggregate_groups(table, "g", ["x"], how="mean")
    assert dict(zip(ranked["g"].to_list(), ranked["x_rank"].to_list(), strict=True)) == {
        "b": 1, "a": 2, "c": 2, "d": None, "e": None}
    assert ranked["x_rank"].dtype == pl.Int32


def test_group_mean_of_asem_by_eurasia(asem_result):
    means = aggregate_groups(asem_result.table, "EurAsia_group", ["Index", "Conn"], how="mean")
    europe = asem_result.table.filter(pl.col("EurAsia_group") == "Europe")["Index"].mean()
    assert means.filter(pl.col("EurAsia_group") == "Europe")["Index"].item() == pytest.approx(europe)
    assert means["Index_rank"].to_list() == [1, 2]


def test_group_errors_name_the_problem(asem_result):
    with pytest.raises(DataError, match="unknown group aggregation 'avg'"):
        aggregate_groups(asem_result.table, "EurAsia_group", ["Index"], how="avg")
    with pytest.raises(DataError, match="not in the table") as info:
        aggregate_groups(asem_result.table, "continent", ["Index"])
    assert info.value.column == "continent"


def test_compare_editions_reports_rank_changes(asem_result, asem_document):
    # A second "edition": the same framework on data where one country's value changed and one is gone.
    data = engine.load_data("asem", framework=asem_result.framework).table
    data = data.with_columns(pl.when(pl.col("uCode") == "RUS").then(pl.col("CPI") * 2).otherwise(pl.col("CPI"))
                             .alias("CPI")).filter(pl.col("uCode") != "CHE")
    new = engine.score(asem_result.framework, data)
    table = compare_editions(asem_result.table, new.table, "uCode", "Index")
    row = table.filter(pl.col("uCode") == "NLD").row(0, named=True)
    assert (row["rank_old"], row["rank_new"], row["rank_change"], row["status"]) == (2, 1, 1, "both")
    assert table.filter(pl.col("uCode") == "CHE")["status"].item() == "dropped"
    assert table.height == 51
    with pytest.raises(DataError, match="lacks column"):
        compare_editions(asem_result.table, new.table, "uCode", "NoSuchNode")
