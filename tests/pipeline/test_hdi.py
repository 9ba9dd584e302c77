"""Independent check against UNDP: the shipped `hdi` framework reproduces the published HDI 2022.

The expected values are UNDP's own published ``hdi_2022`` (3 decimals) and ``hdi_rank_2022``, shipped
unchanged next to the components in ``engine/datasets/hdi_2022.csv`` (HDR 2023/24 composite indices
time series; see engine/datasets/README.md).  Only the shipped dataset is read here.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import polars as pl
import pytest

import engine
from engine.schema import framework_from_dict

N_PUBLISHED = 193  # 195 countries and territories; Korea DPR and Monaco have no HDI 2022
NO_HDI = {"PRK", "MCO"}


@pytest.fixture(scope="module")
def published() -> pl.DataFrame:
    table = pl.read_csv(engine.shipped_datasets()["hdi_2022"], infer_schema_length=None)
    return table.select("iso3", "hdi_2022", "hdi_rank_2022")


@pytest.fixture(scope="module")
def result() -> engine.ScoreResult:
    return engine.score("hdi")


@pytest.fixture(scope="module")
def joined(result, published) -> pl.DataFrame:
    table = result.table.select("iso3", "HDI", "HDI_rank").join(published, on="iso3", how="full", coalesce=True)
    assert table.height == 195, "every country of the dataset is scored (no screening)"
    return table


def test_framework_validates_against_its_dataset():
    framework = engine.validate("hdi", "hdi_2022")
    assert framework.id == "hdi" and framework.labels["zh"] == "人类发展指数"
    assert framework.root.id == "HDI"
    assert framework.root.aggregation.name == "geometric" and framework.root.min_coverage == 1
    education = framework.node("Education")
    assert education.aggregation.name == "arithmetic" and education.min_coverage == 1
    assert education.children == ("eys", "mys")
    assert framework.root.children == ("Health", "Education", "Income")
    posts = {i.id: list(i.normalisation["goalposts"]) for i in framework.indicators}
    assert posts == {"Health": [20, 85], "eys": [0, 18], "mys": [0, 15],
                     "Income": [math.log(100), math.log(75000)]}
    assert {i.id: i.treatment.name for i in framework.indicators} == {
        "Health": "none", "eys": "none", "mys": "none", "Income": "log"}
    assert {i.id: i.imputation.name for i in framework.indicators} == dict.fromkeys(posts, "none")
    assert framework.screening is None
    assert framework.effective_weights() == pytest.approx(
        {"Health": 1 / 3, "eys": 1 / 6, "mys": 1 / 6, "Income": 1 / 3})


def test_hdi_2022_equals_published_to_3_decimals_for_all_193_countries(joined):
    have = joined.filter(pl.col("hdi_2022").is_not_null())
    assert have.height == N_PUBLISHED
    mismatches = [(iso3, score, hdi) for iso3, score, hdi in have.select("iso3", "HDI", "hdi_2022").iter_rows()
                  if score is None or round(score, 3) != hdi]
    assert mismatches == []
    # unrounded, every score lies within half a unit of the third decimal
    assert (have["HDI"] - have["hdi_2022"]).abs().max() <= 0.0005


def test_countries_without_published_hdi_get_no_score(joined, result):
    missing = joined.filter(pl.col("hdi_2022").is_null())
    assert set(missing["iso3"]) == NO_HDI
    assert missing["HDI"].null_count() == missing.height
    assert missing["HDI_rank"].null_count() == missing.height
    # they are scored where they have data (life expectancy), not screened out
    rows = result.table.filter(pl.col("iso3").is_in(list(NO_HDI)))
    assert rows["Health"].null_count() == 0


def test_published_ranks_are_the_ranks_of_the_rounded_scores(joined):
    # UNDP ranks the HDI rounded to 3 decimals; equal rounded values share a rank.
    have = joined.filter(pl.col("hdi_2022").is_not_null()).with_columns(
        mine=pl.col("HDI").map_elements(lambda s: round(s, 3), return_dtype=pl.Float64)
        .rank("min", descending=True).cast(pl.Int64))
    top = have.filter(pl.col("hdi_rank_2022") <= 10)
    assert top.height == 11  # two countries share rank 10
    assert dict(zip(top["iso3"], top["mine"])) == dict(zip(top["iso3"], top["hdi_rank_2022"]))
    assert (have["mine"] == have["hdi_rank_2022"]).all()


def test_top_10_ranking_matches_published(result, published):
    # cityrank ranks the unrounded scores, so it only splits UNDP's ties: its top 11 are UNDP's
    # top 10 (two share rank 10) in an order consistent with UNDP's ranks.
    ranks = dict(zip(published["iso3"], published["hdi_rank_2022"]))
    top = result.top(11)
    assert top["HDI_rank"].to_list() == list(range(1, 12))
    theirs = [ranks[u] for u in top["iso3"]]
    assert theirs == sorted(theirs) and max(theirs) == 10
    assert top["iso3"].to_list()[:4] == ["CHE", "NOR", "ISL", "HKG"]
    for mine, their in zip(top["HDI_rank"], theirs):
        assert their <= mine  # a shared published rank is the first of the places it covers


def test_reference_twins_give_the_same_hdi(result):
    twin = engine.score("hdi", use_reference=True)
    np.testing.assert_allclose(twin.table["HDI"].to_numpy().astype(float),
                               result.table["HDI"].to_numpy().astype(float), rtol=0, atol=1e-12)


def test_without_full_coverage_a_country_missing_components_would_get_an_hdi(result):
    # Why the framework sets min_coverage: 1 — the default renormalises over present children.
    document = copy.deepcopy(dict(result.framework.document))
    for node in document["nodes"]:
        node.pop("min_coverage", None)
    lenient = engine.score(framework_from_dict(document))
    scored = lenient.table.filter(pl.col("iso3").is_in(list(NO_HDI)) & pl.col("HDI").is_not_null())
    assert set(scored["iso3"]) == NO_HDI
