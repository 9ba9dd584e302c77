"""The shipped real-data framework `china-city-innovation-2023` on the China City Statistical
Yearbook 2024 table `ccsy2024_cities` (297 cities, data for 2023).

Only files inside the repository are read: the shipped CSV, its documentation
(engine/datasets/ccsy2024_cities.md) and the framework.  The expected counts below are those
documented there; the sanity facts are properties that any correct scoring of the real data has.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import polars as pl
import pytest

import engine

NAME = "china-city-innovation-2023"
DATASET = "ccsy2024_cities"
DOC = engine.shipped_datasets()[DATASET].with_suffix(".md")
N_CITIES = 297
BEIJING, SHANGHAI, SHENZHEN, SHENYANG, SANSHA = "110100", "310100", "440300", "210100", "460300"

#: Present (non-missing) values of every data column the framework reads, as documented in
#: ccsy2024_cities.md (297 minus the documented missing count).
PRESENT_COLUMNS = {
    "sci_tech_expenditure_10k_yuan": 296,
    "fiscal_expenditure_10k_yuan": 296,
    "patents_granted": 295,
    "invention_patents_granted": 295,
    "hightech_enterprises_national": 287,
    "tech_contract_turnover_10k_yuan": 290,
    "hei_students": 283,
    "education_expenditure_10k_yuan": 296,
    "library_collections_10k_volumes": 294,
    "gdp_per_capita_yuan": 295,
    "fiscal_revenue_10k_yuan": 296,
    "deposits_10k_yuan": 296,
    "pop_resident_10k_filled": 296,
}
#: Present values of every indicator after division by its denominator (both must be present).
PRESENT_INDICATORS = {
    "st_exp_pc": 296, "st_exp_share": 296,
    "patents_pc": 295, "inv_patents_pc": 295, "hightech_pc": 287, "tech_contract_pc": 290,
    "hei_students_pc": 283, "edu_exp_share": 296, "library_pc": 294,
    "gdp_pc": 295, "fiscal_rev_pc": 296, "deposits_pc": 296,
}
#: The high-tech enterprise count is deliberately not imputed (blank for Shanghai and Shenzhen).
NOT_IMPUTED = {"hightech_pc"}
DIMENSIONS = ("Inputs", "Outputs", "Human", "Economy")


@pytest.fixture(scope="module")
def framework() -> engine.Framework:
    return engine.load_framework(NAME)


@pytest.fixture(scope="module")
def data() -> pl.DataFrame:
    return pl.read_csv(engine.shipped_datasets()[DATASET], infer_schema_length=None)


@pytest.fixture(scope="module")
def result() -> engine.ScoreResult:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no constant indicator, no value left missing by imputation
        return engine.score(NAME)


def code(series: pl.Series) -> list[str]:
    return series.cast(pl.String).to_list()


def documented_missing() -> dict[str, int]:
    """Column -> missing count from the tables of ccsy2024_cities.md (last cell of each row)."""
    counts = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| `(\w+)` \|.*\| (\d+)(?: \([^)]*\))? \|$", line)
        if m:
            counts[m.group(1)] = int(m.group(2))
    return counts


# -- framework and data ----------------------------------------------------------------------------

def test_framework_validates_against_its_dataset(framework):
    assert framework.id == NAME
    assert framework.data["dataset"] == DATASET and framework.data["unit"] == "admin_code_6"
    assert "synthetic" not in framework.data  # real data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert engine.validate(framework, DATASET) is framework
    assert [a.id for a in framework.aggregates] == [*DIMENSIONS, "Index"]
    assert {i.id for i in framework.indicators} == set(PRESENT_INDICATORS)
    assert framework.tiers is not None and framework.tiers["k"] == 5


def test_methods_are_the_documented_ones(framework):
    for ind in framework.indicators:
        assert ind.treatment.name == "skew_kurtosis" and ind.treatment["winmax"] == 5
        assert ind.normalisation.name == "minmax" and list(ind.normalisation["range"]) == [0, 100]
        assert ind.direction == 1 and ind.weight == 1.0 and ind.unit
        if ind.id in NOT_IMPUTED:
            assert ind.imputation.name == "none"
        else:
            assert ind.imputation.name == "group_median" and ind.imputation["group"] == "province_zh"
    for agg in framework.aggregates:
        assert agg.aggregation.name == "arithmetic"
        assert {framework.node(c).weight for c in agg.children} == {1.0}


def test_every_framework_column_has_the_documented_number_of_values(framework, data):
    assert data.height == N_CITIES
    assert set(framework.columns) == set(PRESENT_COLUMNS)
    doc = documented_missing()
    for column, present in PRESENT_COLUMNS.items():
        assert data.height - data[column].null_count() == present, column
        assert doc[column] == N_CITIES - present, f"{column}: ccsy2024_cities.md says {doc[column]} missing"


def test_every_dataset_column_is_documented_with_its_missing_count(data):
    doc = documented_missing()
    assert set(doc) == set(data.columns)
    for column in data.columns:
        assert data[column].null_count() == doc[column], column


def test_identifiers_and_known_source_facts(data):
    codes = code(data["admin_code_6"])
    assert len(set(codes)) == N_CITIES and all(re.fullmatch(r"[1-6]\d{5}", c) for c in codes)
    assert data["city_zh"].n_unique() == N_CITIES and data["province_zh"].n_unique() == 31
    row = {c: dict(zip(data.columns, r)) for c, r in zip(codes, data.iter_rows())}
    assert row[BEIJING]["pop_resident_10k"] == 2186.0 and row[BEIJING]["patents_granted"] == 193973.0
    # blank in the yearbook, not zero
    assert row[SHANGHAI]["hightech_enterprises_national"] is None
    assert row[SHENZHEN]["hightech_enterprises_national"] is None
    # Shenyang's population is blank in table 2-1; the derived denominator is GDP / GDP per capita
    assert row[SHENYANG]["pop_resident_10k"] is None
    implied = row[SHENYANG]["gdp_100m_yuan"] * 1e8 / row[SHENYANG]["gdp_per_capita_yuan"] / 1e4
    assert row[SHENYANG]["pop_resident_10k_filled"] == round(implied, 2)
    # elsewhere the derived column is the yearbook column unchanged
    same = data.filter(pl.col("pop_resident_10k").is_not_null())
    assert same.height == 295 and (same["pop_resident_10k"] == same["pop_resident_10k_filled"]).all()


# -- scoring ---------------------------------------------------------------------------------------

def test_297_cities_are_scored_and_ranked(result):
    table = result.table
    assert table.height == N_CITIES
    assert result.recipe["data"]["n_units"] == N_CITIES and result.recipe["stages"]["screen"]["removed"] == []
    assert result.recipe["data"]["synthetic"] is False
    for node in ("Index", *DIMENSIONS):
        assert table[node].null_count() == 0, node
        ranks = table[f"{node}_rank"]
        assert ranks.null_count() == 0 and ranks.min() == 1 and ranks.max() <= N_CITIES
    assert sorted(table["Index_rank"].to_list()) == list(range(1, N_CITIES + 1))  # no ties


def test_scores_are_within_0_and_100(result, framework):
    for node in framework.node_ids:
        values = result.table[node].drop_nulls()
        assert values.min() >= 0.0 and values.max() <= 100.0, node
    # every indicator spans the whole range (no constant indicator)
    for ind in framework.indicators:
        values = result.table[ind.id].drop_nulls()
        assert values.min() == 0.0 and values.max() == 100.0, ind.id


def test_indicator_values_after_denomination_match_the_documented_counts(result, framework):
    denominated = result.stages.denominated
    for j, ind in enumerate(framework.indicators):
        assert int(np.isfinite(denominated[:, j]).sum()) == PRESENT_INDICATORS[ind.id], ind.id


def test_recipe_lists_the_imputed_counts(result, framework):
    filled = result.recipe["stages"]["impute"]["filled"]
    expected = {i: N_CITIES - n for i, n in PRESENT_INDICATORS.items() if i not in NOT_IMPUTED and n < N_CITIES}
    assert filled == expected
    imputed = result.stages.imputed
    for j, ind in enumerate(framework.indicators):
        missing_after = int(np.isnan(imputed[:, j]).sum())
        assert missing_after == (N_CITIES - PRESENT_INDICATORS[ind.id] if ind.id in NOT_IMPUTED else 0), ind.id
    # the un-imputed indicator stays missing for Shanghai and Shenzhen, who are scored on the others
    table = result.table.with_columns(pl.col("admin_code_6").cast(pl.String))
    big = table.filter(pl.col("admin_code_6").is_in([SHANGHAI, SHENZHEN]))
    assert big["hightech_pc"].null_count() == 2 and big["Outputs"].null_count() == 0


def test_beijing_shanghai_shenzhen_are_in_the_top_10_of_innovation_outputs(result):
    top = code(result.top(10, "Outputs")["admin_code_6"])
    assert {BEIJING, SHANGHAI, SHENZHEN} <= set(top), top


def test_sanity_of_the_real_ranking(result):
    table = result.table.with_columns(pl.col("admin_code_6").cast(pl.String))
    rank = dict(zip(table["admin_code_6"], table["Index_rank"]))
    for city in (BEIJING, SHANGHAI, SHENZHEN):
        assert rank[city] <= 10, city
    # Sansha has (almost) no data: its scores are province medians, not a top city
    assert rank[SANSHA] > 20


def test_scoring_is_reproducible(result):
    again = engine.score(NAME)
    assert again.table.equals(result.table)
    assert again.recipe == result.recipe


def test_tiers_follow_the_index(result):
    assert result.framework.tiers is not None and "Index_tier" in result.table.columns  # the framework asks for them
    table = result.table.sort("Index", descending=True)
    tiers = table["Index_tier"].to_list()
    assert set(tiers) == {1, 2, 3, 4, 5}
    assert tiers == sorted(tiers)  # best scores in tier 1, tiers never interleave
