"""The ai-city-2024 framework (seed 000) and its SYNTHETIC default data.

The shipped CSV must be exactly what the generator makes with the default seed; the data must be
heavy-tailed, tied to real city size and consistent with the figures the report publishes; and
scoring the framework on it must give the report's shape: Beijing 1, then Shenzhen and Shanghai,
then a steep drop (published: 1.0000, 0.7449, 0.6266, 0.3194, 0.3092, ...).  Nothing here reads
outside the repository.
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy.stats import spearmanr

import engine
from engine.resources import DATASET_DIR
from tools.synthetic import cities, generate_ai_cities

SHIPPED = DATASET_DIR / "ai_cities_synthetic.csv"
BEIJING, SHANGHAI, SHENZHEN = "110100", "310100", "440300"
GUANGZHOU, HANGZHOU = "440100", "330100"
#: The report's composite top 10 (section 二.1), scaled so that the top city is 1.
PUBLISHED_TOP10 = [1.0000, 0.7449, 0.6266, 0.3194, 0.3092, 0.3059, 0.2849, 0.2669, 0.2612, 0.2397]
PUBLISHED_TOP10_NAMES = ["北京市", "深圳市", "上海市", "广州市", "杭州市",
                         "西安市", "南京市", "成都市", "武汉市", "苏州市"]


@pytest.fixture(scope="module")
def shipped() -> pl.DataFrame:
    # A plain read (only the code column forced to text), independent of cities.read_ai_cities.
    return pl.read_csv(SHIPPED, schema_overrides={"admin_code_6": pl.String})


@pytest.fixture(scope="module")
def framework() -> engine.Framework:
    return engine.load_framework("ai-city-2024")


@pytest.fixture(scope="module")
def result(framework) -> engine.ScoreResult:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return engine.score(framework)  # the framework's default dataset: the shipped CSV


def value(table: pl.DataFrame, code: str, column: str):
    return table.filter(pl.col("admin_code_6") == code)[column].item()


# ---------------------------------------------------------------------------------------------
# reproducibility
# ---------------------------------------------------------------------------------------------

def test_default_seed_reproduces_the_shipped_csv_exactly(shipped):
    generated = generate_ai_cities()
    assert_frame_equal(generated, shipped, check_exact=True)
    assert generated.equals(shipped)
    assert_frame_equal(cities.read_ai_cities(), shipped, check_exact=True)


def test_floats_are_rounded_so_the_csv_round_trips(shipped):
    for column in cities.FLOAT_COLUMNS:
        values = shipped[column].to_numpy()
        assert np.array_equal(values, np.round(values, cities.DECIMALS)), column


def test_another_seed_gives_another_table_and_the_same_seed_the_same(shipped):
    other = generate_ai_cities(seed=7)
    assert other.columns == shipped.columns
    assert other["admin_code_6"].to_list() == shipped["admin_code_6"].to_list()
    assert not other.equals(shipped)
    changed = [c for c in cities.COMPONENT_COLUMNS if not other[c].equals(shipped[c])]
    assert len(changed) >= 25
    assert generate_ai_cities(seed=7).equals(other)


def test_generator_leaves_the_global_random_state_alone():
    before = np.random.get_state()
    generate_ai_cities(seed=11)
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]


def test_generator_reads_only_shipped_files():
    for path in (cities.PREFECTURES_FILE, cities.COVARIATES_FILE, cities.OUTPUT_FILE):
        assert path.parent == DATASET_DIR and path.is_file()


# ---------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------

def test_units_are_the_337_official_prefecture_level_divisions(shipped):
    assert shipped.height == 337
    assert shipped["admin_code_6"].n_unique() == 337
    official = cities.load_prefectures()
    assert shipped["admin_code_6"].to_list() == official["admin_code_6"].to_list()
    assert shipped["name_zh"].to_list() == official["name_zh"].to_list()
    assert shipped["name_en"].null_count() == 40  # the divisions outside the yearbook


def test_columns_cover_the_framework_and_say_synthetic(shipped, framework):
    assert tuple(shipped.columns) == cities.COLUMNS
    assert set(framework.columns) == set(cities.COMPONENT_COLUMNS)
    assert len(framework.columns) >= 28
    assert shipped["synthetic"].dtype == pl.Boolean and shipped["synthetic"].all()
    numeric = shipped.select(cities.COMPONENT_COLUMNS)
    assert numeric.null_count().sum_horizontal().item() == 0
    assert all(shipped[c].min() >= 0 for c in cities.COMPONENT_COLUMNS)
    doc = (DATASET_DIR / "ai_cities_synthetic.md").read_text(encoding="utf-8")
    assert doc.splitlines()[0].startswith("SYNTHETIC")
    assert framework.data["synthetic"] is True and "SYNTHETIC" in framework.description


def test_counts_are_consistent_with_each_other(shipped):
    layers = shipped["ai_firms_base_layer"] + shipped["ai_firms_technology_layer"] + shipped[
        "ai_firms_application_layer"]
    assert (layers == shipped["ai_firms_total"]).all()
    for part in ("ai_firms_new_2023", "ai_listed_firms", "ai_hightech_firms", "ai_firms_revenue_over_100m"):
        assert (shipped[part] <= shipped["ai_firms_total"]).all(), part
    assert (shipped["ai_rd_top500_firms"] <= shipped["ai_listed_firms"]).all()
    no_listed = shipped.filter(pl.col("ai_listed_firms") == 0)
    assert (no_listed["ai_listed_market_cap_100m_yuan"] == 0).all()
    assert (no_listed["ai_listed_rd_staff"] == 0).all()
    no_events = shipped.filter(pl.col("ai_financing_events") == 0)
    assert (no_events["ai_financing_amount_100m_yuan"] == 0).all()


def test_heavy_tails_most_cities_near_zero(shipped):
    firms = shipped["ai_firms_total"].to_numpy().astype(float)
    assert firms.max() > 50 * np.median(firms)
    assert np.mean(firms < 0.01 * firms.max()) > 0.40  # "near zero": below 1 % of the largest city
    assert 1000 < np.sort(firms)[-10] < firms.max()  # thousands for the largest cities
    for column in ("ai_listed_firms", "ai_unicorns", "ai_first_class_universities", "ai_patent_citations"):
        assert shipped[column].median() < 0.01 * shipped[column].max(), column


def test_correlated_with_real_city_size(shipped):
    yearbook = pl.read_csv(DATASET_DIR / "ccsy2024_cities.csv", schema_overrides={"admin_code_6": pl.String},
                           infer_schema_length=None)
    joined = shipped.join(yearbook, on="admin_code_6").drop_nulls("gdp_100m_yuan")
    assert joined.height == 296  # 297 yearbook cities, 三沙市 has no GDP
    rho = spearmanr(joined["ai_firms_total"], joined["gdp_100m_yuan"]).statistic
    assert rho > 0.5
    for column in ("ai_listed_firms", "ai_valid_invention_patents", "ai_financing_events"):
        assert spearmanr(joined[column], joined["gdp_100m_yuan"]).statistic > 0.5, column


# Figures the report prints, set exactly in the table (see ai_cities_synthetic.md).
PUBLISHED_VALUES = [
    (BEIJING, "ai_first_class_universities", 14),
    ("610100", "ai_first_class_universities", 11),  # 西安
    ("510100", "ai_first_class_universities", 10),  # 成都
    ("420100", "ai_first_class_universities", 10),  # 武汉
    (BEIJING, "ai_open_innovation_platforms", 2),
    ("510100", "ai_open_innovation_platforms", 2),
    (SHANGHAI, "ai_open_innovation_platforms", 0),
    (BEIJING, "ai_firms_total", 13067),
    (BEIJING, "ai_firms_technology_layer", 961),
    (SHENZHEN, "ai_firms_base_layer", 8546),
    (SHENZHEN, "ai_firms_application_layer", 14018),
    ("610100", "ai_firms_new_2023", 3260),
    (BEIJING, "ai_listed_firms", 481),
    (BEIJING, "ai_unicorns", 58),
    (SHANGHAI, "ai_unicorns", 41),
    (SHENZHEN, "ai_unicorns", 22),
    (BEIJING, "ai_rd_top500_firms", 81),
    (SHENZHEN, "ai_rd_top500_firms", 62),
    (SHANGHAI, "ai_rd_top500_firms", 56),
    (SHENZHEN, "ai_pct_applications", 134300),
    (SHANGHAI, "ai_pct_applications", 60700),
    (BEIJING, "ai_patent_citations", 17200),
    (BEIJING, "ai_registered_capital_100m_yuan", 115463.0),
    (SHENZHEN, "ai_firms_revenue_over_100m", 2907),
    (BEIJING, "ai_listed_market_cap_100m_yuan", 177300.0),
    (BEIJING, "ai_financing_amount_100m_yuan", 7060.0),
    (SHANGHAI, "ai_financing_amount_100m_yuan", 4388.0),
    (SHANGHAI, "ai_financing_events", 2931),
    (SHENZHEN, "ai_financing_events", 2882),
    (HANGZHOU, "ai_financing_events", 1561),
    (SHENZHEN, "ai_listed_rd_staff", 318800),
    (BEIJING, "ai_listed_rd_staff", 267900),
    (BEIJING, "ai_insured_workers", 5692000),
    (BEIJING, "jd_smart_purchasing_index", 10194.0),
    ("445100", "jd_smart_preference_index", 3459.0),  # 潮州
]


@pytest.mark.parametrize(("code", "column", "expected"), PUBLISHED_VALUES,
                         ids=[f"{code}-{column}" for code, column, _ in PUBLISHED_VALUES])
def test_published_value(shipped, code, column, expected):
    assert value(shipped, code, column) == expected


# Leaders the report names, in order (ties not involved).
PUBLISHED_LEADERS = [
    ("ai_firms_total", [SHENZHEN, BEIJING, SHANGHAI]),
    ("ai_firms_base_layer", [SHENZHEN, "610100"]),
    ("ai_firms_technology_layer", [SHENZHEN, BEIJING, SHANGHAI]),
    ("ai_firms_application_layer", [SHENZHEN, BEIJING, SHANGHAI]),
    ("ai_firms_new_2023", ["610100", "610400", SHENZHEN, GUANGZHOU]),
    ("ai_listed_firms", [BEIJING, SHENZHEN, SHANGHAI]),
    ("ai_hightech_firms", [BEIJING, SHENZHEN, SHANGHAI]),
    ("ai_unicorns", [BEIJING, SHANGHAI, SHENZHEN]),
    ("ai_valid_invention_patents", [BEIJING, SHENZHEN, SHANGHAI]),
    ("ai_pct_applications", [SHENZHEN, BEIJING, SHANGHAI]),
    ("ai_patent_citations", [BEIJING, SHENZHEN, SHANGHAI]),
    ("ai_registered_capital_100m_yuan", [BEIJING, SHANGHAI, SHENZHEN, GUANGZHOU]),
    ("ai_firms_revenue_over_100m", [SHENZHEN, BEIJING, SHANGHAI]),
    ("ai_listed_market_cap_100m_yuan", [BEIJING, SHENZHEN, SHANGHAI, HANGZHOU]),
    ("ai_financing_amount_100m_yuan", [BEIJING, SHANGHAI, SHENZHEN]),
    ("ai_financing_events", [BEIJING, SHANGHAI, SHENZHEN, HANGZHOU]),
    ("ai_listed_rd_staff", [SHENZHEN, BEIJING, SHANGHAI]),
    ("ai_insured_workers", [BEIJING, SHANGHAI, "610100"]),
    ("jd_smart_purchasing_index", [BEIJING, SHANGHAI, SHENZHEN]),
    ("jd_smart_preference_index", ["445100", "370100", "532900"]),  # 潮州, 济南, 大理州
    ("policy_cat1_guiding_count", [SHANGHAI, BEIJING, HANGZHOU]),
    ("policy_cat2_outline_count", ["500100", BEIJING, "370300"]),  # 重庆, 北京, 淄博
    ("policy_cat3_rules_count", [SHANGHAI, "510100", "330400"]),  # 上海, 成都, 嘉兴
    ("policy_cat4_opinions_count", [GUANGZHOU, SHANGHAI, BEIJING]),
]


@pytest.mark.parametrize(("column", "leaders"), PUBLISHED_LEADERS, ids=[c for c, _ in PUBLISHED_LEADERS])
def test_published_leaders(shipped, column, leaders):
    top = shipped.sort(column, descending=True, maintain_order=True)["admin_code_6"].head(len(leaders)).to_list()
    assert top == leaders
    values = [value(shipped, code, column) for code in leaders]
    assert values == sorted(values, reverse=True) and len(set(values)) == len(values)


def test_published_counts_of_cities(shipped):
    assert (shipped["ai_first_class_universities"] > 0).sum() == 84
    assert (shipped["ai_open_innovation_platforms"] > 0).sum() == 23
    assert (shipped["ai_firms_total"] > 10000).sum() == 3
    assert (shipped["ai_firms_base_layer"] > 5000).sum() >= 5
    assert (shipped["ai_insured_workers"] > 1_000_000).sum() == 3
    shares = shipped["ai_financing_amount_100m_yuan"].sort(descending=True)
    assert shares.head(3).sum() > 0.5 * shares.sum()  # the top 3 hold more than half


def test_sub_composites_follow_the_report(shipped, framework):
    policy = framework.node("ai_policy_index").components
    parks = framework.node("ai_parks_index").components
    scored = shipped.with_columns(
        policy=sum(pl.col(c) * w for c, w in policy.items()),
        parks=sum(pl.col(c) * w for c, w in parks.items()),
    )
    assert scored.sort("policy", descending=True)["admin_code_6"].head(3).to_list() == [SHANGHAI, BEIJING, "500100"]
    assert scored.sort("parks", descending=True)["admin_code_6"].head(3).to_list() == [SHENZHEN, SHANGHAI, BEIJING]
    assert value(scored, BEIJING, "parks") == pytest.approx(16.0)
    assert value(scored, "510100", "parks") == pytest.approx(3.0)
    bands = scored.select(list(parks)).sum()
    assert bands[next(iter(parks))].item() < 0.1 * bands.sum_horizontal().item()  # most parks < 10 % coverage


# ---------------------------------------------------------------------------------------------
# the framework
# ---------------------------------------------------------------------------------------------

def test_framework_validates_against_its_dataset(framework, shipped):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert engine.validate("ai-city-2024", "ai_cities_synthetic") is not None
        assert engine.validate(framework, shipped) is framework
    assert framework.id == "ai-city-2024"
    assert framework.labels["zh"].startswith("中国人工智能城市竞争力排行研究报告")
    assert framework.labels["en"]
    assert "钛媒体" in framework.source and "2024" in framework.source
    assert framework.data["unit"] == "admin_code_6" and framework.data["unit_label"] == "name_zh"
    assert list(framework.data["groups"]) == ["province_name_zh"]
    assert framework.data["dataset"] == "ai_cities_synthetic"


def test_framework_structure_is_the_reports(framework):
    root = framework.root
    dimensions = [framework.node(c) for c in root.children]
    assert [d.labels["zh"] for d in dimensions] == ["要素储备", "发展潜能", "效益产出", "城市渗透"]
    subs = [framework.node(s) for d in dimensions for s in d.children]
    assert [s.labels["zh"] for s in subs] == ["政策机制", "基础设施", "人才积累与吸引", "企业规模", "创新活力",
                                               "专利成果", "经济绩效", "融资环境", "民众参与度"]
    assert [len(s.children) for s in subs] == [1, 3, 2, 5, 4, 3, 3, 2, 2]
    assert len(framework.indicators) == 25
    for ind in framework.indicators:
        assert ind.labels.get("zh") and ind.labels.get("en") and ind.unit and ind.direction == 1
        assert ind.normalisation.name == "minmax" and list(ind.normalisation["range"]) == [0, 1]
        assert ind.treatment.name == "none" and ind.imputation.name == "none"
        for column in ind.source_columns:
            assert column == column.lower() and " " not in column
    assert all(a.aggregation.name == "arithmetic" for a in framework.aggregates)
    assert framework.rescale.name == "top"
    assert framework.tiers is not None and framework.tiers["k"] == 5


def test_sub_composite_weights(framework):
    policy = framework.node("ai_policy_index")
    parks = framework.node("ai_parks_index")
    assert policy.column is None and list(policy.components.values()) == [0.4, 0.3, 0.2, 0.1]
    assert parks.column is None and list(parks.components.values()) == [0.55, 0.25, 0.15, 0.05]
    bands = list(parks.components)
    assert "over10" in bands[0] and "under3" in bands[-1]


def test_equal_indicator_weights(framework):
    weights = framework.effective_weights()
    assert len(weights) == 25
    assert all(w == pytest.approx(1 / 25, rel=1e-12) for w in weights.values())
    assert sum(weights.values()) == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# scoring reproduces the report's shape
# ---------------------------------------------------------------------------------------------

def test_scoring_the_shipped_data(result):
    table = result.table
    assert table.height == 337
    assert result.recipe["data"]["synthetic"] is True
    scores = table["ai_city_index"].to_list()
    names = table["name_zh"].to_list()
    assert scores[0] == 1.0 and names[0] == "北京市"
    assert set(names[:3]) == {"北京市", "深圳市", "上海市"}
    # the steep drop after the top three
    assert scores[2] > 0.5
    assert scores[3] < 0.45
    assert scores[2] - scores[3] > 0.15
    assert table["admin_code_6"][3] in (int(GUANGZHOU), int(HANGZHOU))
    # the published profile, roughly
    for ours, published in zip(scores[:10], PUBLISHED_TOP10, strict=True):
        assert ours == pytest.approx(published, abs=0.08)
    assert len(set(names[:10]) & set(PUBLISHED_TOP10_NAMES)) >= 8
    # most cities far behind
    assert np.median(scores) < 0.1


def test_five_tiers(result):
    tiers = result.table["ai_city_index_tier"]
    assert sorted(tiers.unique().to_list()) == [1, 2, 3, 4, 5]
    by_tier = result.table.group_by("ai_city_index_tier").agg(pl.col("name_zh")).sort("ai_city_index_tier")
    assert by_tier["name_zh"][0].to_list() == ["北京市"]  # the report: Beijing alone in tier 1
    assert sorted(by_tier["name_zh"][1].to_list()) == sorted(["深圳市", "上海市"])  # Shenzhen, Shanghai in tier 2
    assert by_tier["name_zh"][4].len() > 200  # the report: 200+ cities in tier 5
