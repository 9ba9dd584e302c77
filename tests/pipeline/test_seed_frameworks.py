"""The frameworks rebuilt from the seed reports: regional-ai-2023 (seed 001) and city-ai-2021 (seed 002).

Reference figures (transcribed from the reports, as in the project's REFERENCES §6):
- seed 001 table 2: the AHP weights of the 6 dimensions, 10 sub-dimensions and 24 indicators, each
  printed as a global weight with 4 decimals;
- seed 001 section 2 and table 5: published provincial composite and dimension scores
  (``seed001_published_scores.csv`` beside this file) and economic-circle scores;
- seed 002 table 1: 4 dimensions, 12 sub-dimensions, 23 indicators, no weights.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import engine

HERE = Path(__file__).resolve().parent
PUBLISHED = HERE / "seed001_published_scores.csv"

# seed 001, table 2: node id -> printed (global) weight
DIMENSIONS = {"enterprise": 0.4368, "academic": 0.2127, "capital": 0.1865, "openness": 0.0776,
              "linkage": 0.0512, "government": 0.0352}
SUB_DIMENSIONS = {
    "enterprise_scale": 0.2045, "enterprise_innovation": 0.2323,
    "university": 0.1084, "institute": 0.1042,
    "financing": 0.1383, "investment": 0.0482,
    "human_capital_openness": 0.0294, "technology_openness": 0.0481,
    "linkers": 0.0512,
    "government_response": 0.0352,
}
INDICATORS = {
    "firm_count": 0.1782, "firm_mean_valuation": 0.0263,
    "firm_mean_patents": 0.1304, "base_tech_firms": 0.0629, "tech_enabling": 0.0390,
    "university_count": 0.0607, "university_domestic_papers": 0.0040, "university_international_papers": 0.0146,
    "university_patents": 0.0291,
    "institute_count": 0.0607, "institute_domestic_papers": 0.0072, "institute_international_papers": 0.0072,
    "institute_patents": 0.0291,
    "financing_relations": 0.0195, "financing_amount": 0.1188,
    "investment_relations": 0.0482,
    "international_study": 0.0091, "international_work": 0.0203,
    "international_tech_input": 0.0438, "international_tech_enabling": 0.0043,
    "conferences": 0.0085, "industry_alliances": 0.0427,
    "industrial_parks": 0.0293, "policies": 0.0059,
}
TABLE_2 = {**DIMENSIONS, **SUB_DIMENSIONS, **INDICATORS}
# The printed tree does not add up at two nodes (rounding in the report): node -> (printed weight,
# sum of its printed children).  Everywhere else a node's weight equals the sum of its children's.
PUBLISHED_ROUNDING = {"academic": (0.2127, 0.2126), "openness": (0.0776, 0.0775)}


@pytest.fixture(scope="module")
def regional() -> engine.Framework:
    return engine.load_framework("regional-ai-2023")


@pytest.fixture(scope="module")
def regional_result(regional) -> engine.ScoreResult:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return engine.score(regional)


def dimension_of(framework: engine.Framework, node_id: str) -> str:
    node = framework.node(node_id)
    while node.parent != framework.root.id:
        node = framework.node(node.parent)
    return node.id


# ---------------------------------------------------------------------------------------------
# regional-ai-2023: structure and weights
# ---------------------------------------------------------------------------------------------

def test_regional_framework_validates_with_its_dataset(regional):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert engine.validate(regional, "regional_ai_provinces_synthetic") is regional
    assert regional.id == "regional-ai-2023"
    assert regional.data["synthetic"] is True
    assert regional.data["dataset"] == "regional_ai_provinces_synthetic"
    assert regional.data["unit"] == "province"
    for node in (*regional.indicators, *regional.aggregates):
        assert node.labels.get("en") and node.labels.get("zh"), node.id
    assert "zh" in regional.labels and "en" in regional.labels
    for word in ("AHP", "min-max", "SUM", "MEAN", "SYNTHETIC", "seed 001"):
        assert word in regional.description, word
    for ind in regional.indicators:
        assert ind.normalisation.name == "minmax" and list(ind.normalisation["range"]) == [0.0, 100.0]
        assert ind.direction == 1 and ind.treatment.name == "none" and ind.imputation.name == "none"
    assert {a.aggregation.name for a in regional.aggregates} == {"arithmetic"}
    assert regional.rescale.name == "none"


def test_regional_tree_is_6_10_24(regional):
    root = regional.root
    assert set(root.children) == set(DIMENSIONS) and len(root.children) == 6
    subs = [c for d in root.children for c in regional.node(d).children]
    assert set(subs) == set(SUB_DIMENSIONS) and len(subs) == 10
    assert {i.id for i in regional.indicators} == set(INDICATORS) and len(regional.indicators) == 24
    assert {regional.node(i).parent for i in INDICATORS} == set(SUB_DIMENSIONS)
    assert len(set(regional.columns)) == 24


def test_every_weight_is_the_printed_global_weight(regional):
    for node_id, weight in TABLE_2.items():
        assert regional.node(node_id).weight == weight, node_id


def test_dimension_weights_sum_to_one():
    assert math.fsum(DIMENSIONS.values()) == pytest.approx(1.0, abs=1e-12)
    assert 0.4368 + 0.2127 + 0.1865 + 0.0776 + 0.0512 + 0.0352 == pytest.approx(1.0000, abs=1e-12)


def test_tree_sums(regional):
    assert 0.2045 + 0.2323 == pytest.approx(0.4368, abs=1e-12)  # enterprise
    assert 0.1782 + 0.0263 == pytest.approx(0.2045, abs=1e-12)  # enterprise scale
    assert 0.1304 + 0.0629 + 0.0390 == pytest.approx(0.2323, abs=1e-12)
    for agg in regional.aggregates:
        if agg is regional.root:
            continue
        children = math.fsum(regional.node(c).weight for c in agg.children)
        if agg.id in PUBLISHED_ROUNDING:
            printed, summed = PUBLISHED_ROUNDING[agg.id]
            assert (agg.weight, children) == pytest.approx((printed, summed), abs=1e-12)
            assert abs(agg.weight - children) == pytest.approx(1e-4, abs=1e-12)
        else:
            assert abs(agg.weight - children) <= 5e-5, agg.id
    # the 24 printed indicator weights add up to 0.9998 because of those two nodes
    assert math.fsum(INDICATORS.values()) == pytest.approx(0.9998, abs=1e-12)


def test_global_weights_equal_table_2(regional):
    """Effective global weight = product of sibling-renormalised weights from the root.

    Exactly the printed value (1e-12) wherever the printed tree adds up; under academic and openness
    it is the printed value × (dimension weight / sum of its sub-dimension weights)."""
    effective = regional.effective_weights()
    assert math.fsum(effective.values()) == pytest.approx(1.0, abs=1e-12)
    worst = 0.0
    for ind, printed in INDICATORS.items():
        dim = dimension_of(regional, ind)
        factor = (PUBLISHED_ROUNDING[dim][0] / PUBLISHED_ROUNDING[dim][1]) if dim in PUBLISHED_ROUNDING else 1.0
        assert effective[ind] == pytest.approx(printed * factor, abs=1e-12), ind
        worst = max(worst, abs(effective[ind] - printed))
    exact = [i for i in INDICATORS if dimension_of(regional, i) not in PUBLISHED_ROUNDING]
    assert len(exact) == 12
    for ind in exact:
        assert abs(effective[ind] - INDICATORS[ind]) <= 1e-12, ind
    assert worst == pytest.approx(0.0438 * (0.0776 / 0.0775 - 1), abs=1e-15)  # international tech input
    assert worst < 6e-5


# ---------------------------------------------------------------------------------------------
# regional-ai-2023: scoring the shipped synthetic provinces, report-style scores
# ---------------------------------------------------------------------------------------------

def test_scoring_the_shipped_dataset(regional_result):
    table = regional_result.table
    assert table.height == 31
    assert regional_result.recipe["data"]["synthetic"] is True
    assert table["province"][0] == "北京市" and table["regional_ai_rank"][0] == 1
    assert table["regional_ai"].null_count() == 0
    assert table["economic_circle"].null_count() == 21
    top5 = table.sort("regional_ai_rank")["province"].head(5).to_list()
    assert set(top5) == {"北京市", "广东省", "上海市", "浙江省", "江苏省"}


def _scores(result: engine.ScoreResult) -> tuple[dict[str, np.ndarray], np.ndarray]:
    framework = result.framework
    position = {node: k for k, node in enumerate(framework.node_ids)}
    scores = {node: result.stages.scores[:, k] for node, k in position.items()}
    return scores, result.stages.normalised


def test_composite_is_the_sum_of_report_style_dimension_scores(regional, regional_result):
    """Report dimension score = engine dimension score (a weighted mean, 0–100) × global dimension
    weight; the six add up to the engine's index = the report's composite (weighted sum)."""
    scores, _ = _scores(regional_result)
    report_style = {d: scores[d] * w for d, w in DIMENSIONS.items()}
    total = sum(report_style.values())
    np.testing.assert_allclose(total, scores["regional_ai"], rtol=0, atol=1e-9)
    for d, w in DIMENSIONS.items():  # a report dimension score is at most 100 × its weight
        assert report_style[d].max() <= 100 * w + 1e-9
    # the same through the result table, per province
    row = regional_result.table.row(0, named=True)
    assert sum(row[d] * w for d, w in DIMENSIONS.items()) == pytest.approx(row["regional_ai"], abs=1e-9)


def test_report_formula_by_hand(regional, regional_result):
    """Σ (global weight × min-max × 100) over the indicators, computed here from the raw table."""
    data = pl.read_csv(engine.shipped_datasets()["regional_ai_provinces_synthetic"])
    effective = regional.effective_weights()
    scores, normalised = _scores(regional_result)
    composite_effective = np.zeros(data.height)
    composite_printed = np.zeros(data.height)
    by_dimension = {d: np.zeros(data.height) for d in DIMENSIONS}
    for j, ind in enumerate(regional.indicators):
        x = data[ind.column].to_numpy().astype(float)
        z = (x - x.min()) / (x.max() - x.min()) * 100
        np.testing.assert_allclose(normalised[:, j], z, rtol=0, atol=1e-9)
        composite_effective += effective[ind.id] * z
        composite_printed += INDICATORS[ind.id] * z
        by_dimension[dimension_of(regional, ind.id)] += INDICATORS[ind.id] * z
    np.testing.assert_allclose(composite_effective, scores["regional_ai"], rtol=0, atol=1e-9)
    # with the printed indicator weights (Σ = 0.9998) the composite is lower by at most 0.02 points
    assert np.abs(composite_printed - scores["regional_ai"]).max() <= 0.02 + 1e-9
    for d, w in DIMENSIONS.items():
        gap = np.abs(by_dimension[d] - w * scores[d]).max()
        assert gap <= (0.0101 if d in PUBLISHED_ROUNDING else 1e-9), d


# ---------------------------------------------------------------------------------------------
# seed 001's published scores
# ---------------------------------------------------------------------------------------------

PUBLISHED_DIMENSIONS = ["enterprise", "academic", "capital", "openness", "linkage", "government"]
# table 5: economic circle -> (members, composite, six dimension scores)
CIRCLES = {
    "长三角": (("上海市", "江苏省", "浙江省", "安徽省"), 106.93, (38.58, 36.74, 12.56, 7.53, 7.46, 4.05)),
    "京津冀": (("北京市", "天津市", "河北省"), 97.83, (35.47, 29.27, 19.91, 7.96, 3.83, 1.39)),
    "珠三角": (("广东省",), 73.56, (39.58, 10.76, 8.70, 6.75, 4.61, 3.16)),
    "川渝": (("四川省", "重庆市"), 22.70, (5.63, 13.56, 0.50, 0.39, 1.76, 0.86)),
}


@pytest.fixture(scope="module")
def published() -> pl.DataFrame:
    return pl.read_csv(PUBLISHED)


def test_published_scores_file(published):
    assert published.columns == ["province", "composite", *PUBLISHED_DIMENSIONS]
    assert published["province"].n_unique() == published.height == 21
    assert set(published["province"]) <= set(pl.read_csv(
        engine.shipped_datasets()["regional_ai_provinces_synthetic"])["province"])
    ranked = published.drop_nulls("composite")
    assert ranked.height == 20  # the report gives the composite of its top 20
    assert ranked["composite"].to_list() == sorted(ranked["composite"].to_list(), reverse=True)
    for d in PUBLISHED_DIMENSIONS:  # and the top 10 of every dimension
        assert published[d].drop_nulls().len() == 10, d


def test_published_composite_is_the_sum_of_dimension_scores(published):
    complete = published.drop_nulls()
    # provinces in the top ten of all six dimensions
    assert sorted(complete["province"]) == sorted(["北京市", "广东省", "浙江省", "江苏省", "山东省"])
    for row in published.iter_rows(named=True):
        known = [row[d] for d in PUBLISHED_DIMENSIONS if row[d] is not None]
        if row["composite"] is None:
            continue
        if len(known) == 6:
            assert abs(row["composite"] - sum(known)) <= 0.02 + 1e-9, row["province"]
        else:  # partly published: the known scores cannot exceed the composite
            assert sum(known) <= row["composite"] + 0.02, row["province"]
    beijing = published.filter(pl.col("province") == "北京市").row(0, named=True)
    assert [beijing[d] for d in PUBLISHED_DIMENSIONS] == [31.90, 20.09, 18.65, 7.72, 2.59, 0.62]
    assert sum(beijing[d] for d in PUBLISHED_DIMENSIONS) == pytest.approx(81.57, abs=1e-9)


def test_published_scores_fit_the_weights(published):
    for d in PUBLISHED_DIMENSIONS:
        assert published[d].drop_nulls().max() <= 100 * DIMENSIONS[d] + 0.005, d
    # Beijing leads all three capital indicators, so its capital score is 100 × 0.1865
    assert published.filter(pl.col("province") == "北京市")["capital"].item() == pytest.approx(100 * 0.1865)


def test_economic_circle_scores_are_sums_of_member_provinces(published):
    by_province = {row["province"]: row for row in published.iter_rows(named=True)}
    checked = 0
    for circle, (members, composite, dims) in CIRCLES.items():
        tolerance = 0.005 * (len(members) + 1) + 1e-9  # every published figure is rounded to 0.01
        assert abs(sum(by_province[m]["composite"] for m in members) - composite) <= tolerance, circle
        for d, value in zip(PUBLISHED_DIMENSIONS, dims, strict=True):
            parts = [by_province[m][d] for m in members]
            if None not in parts:
                assert abs(sum(parts) - value) <= tolerance, (circle, d)
                checked += 1
    # Yangtze delta: enterprise, capital, openness; Pearl River delta: all six
    assert checked == 9
    # Beijing–Tianjin–Hebei: 81.57 + 9.80 + 6.45 = 97.82, published 97.83 (rounding)
    assert 81.57 + 9.80 + 6.45 == pytest.approx(97.82, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# city-ai-2021 (seed 002)
# ---------------------------------------------------------------------------------------------

SEED_002 = {  # dimension -> sub-dimension -> number of indicators (table 1)
    "environment": {"policy_environment": 1, "economic_environment": 1, "rd_environment": 1,
                    "organisational_environment": 1},
    "resources": {"funding_support": 3, "computing_support": 1, "carrier_support": 2},
    "knowledge": {"knowledge_reserve": 3, "research_output": 3},
    "outcomes": {"enterprise_scale": 3, "innovation_development": 3, "industry_coverage": 1},
}


@pytest.fixture(scope="module")
def city() -> engine.Framework:
    return engine.load_framework("city-ai-2021")


def test_city_framework_is_4_12_23_with_equal_weights(city):
    assert city.id == "city-ai-2021"
    root = city.root
    assert list(root.children) == list(SEED_002)
    structure = {d: {s: len(city.node(s).children) for s in city.node(d).children} for d in root.children}
    assert structure == SEED_002
    assert sum(len(v) for v in structure.values()) == 12
    assert len(city.indicators) == 23 and len(set(city.columns)) == 23
    for node in (*city.indicators, *city.aggregates):
        assert node.labels.get("en") and node.labels.get("zh"), node.id
        assert node.weight == 1.0, node.id
    assert "EQUAL WEIGHTS" in city.description and "seed 002" in city.description
    assert "dataset" not in city.data  # the report's data are not available
    effective = city.effective_weights()
    for ind in city.indicators:
        sub = city.node(ind.parent)
        dim = city.node(sub.parent)
        assert effective[ind.id] == pytest.approx(1 / 4 / len(dim.children) / len(sub.children), abs=1e-15)


def test_city_framework_scores_a_table():
    city = engine.load_framework("city-ai-2021")
    rng = np.random.default_rng(2021)
    names = ["北京", "深圳", "上海", "广州", "杭州", "苏州", "武汉", "成都", "青岛", "南京", "天津", "西安",
             "重庆", "合肥", "济南", "长沙", "郑州", "厦门", "沈阳", "大连"]
    # values in (1, 99): plausible for every indicator, percentages included (the range check warns otherwise)
    table = pl.DataFrame({"city": names, **{c: rng.uniform(1, 99, len(names)) for c in city.columns}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = engine.score(city, table)
    assert result.table.height == 20
    scores, _ = _scores(result)
    dims = list(SEED_002)
    np.testing.assert_allclose(np.mean([scores[d] for d in dims], axis=0), scores["city_ai"], rtol=0, atol=1e-9)
