"""The SYNTHETIC firm table (tools.synthetic.firms) and the firm-derived province/city indicators
(tools.synthetic.provinces).

Published shares checked here are those of seed 004 (中国新一代人工智能产业发展 2024; 4,311 core AI
firms), as transcribed in the project's reference notes (REFERENCES §6): provinces, technology
layers, listed firms, patents-per-firm bands, and the technology-enabling shares of its table 6.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.resources import DATASET_DIR
from tools.synthetic.firms import (
    CITY_SPLITS,
    LAYER_SHARES,
    PATENT_BANDS,
    PROVINCE_FIRM_SHARES,
    PROVINCES,
    PUBLISHED_PROVINCE_SHARES,
    TECH_ENABLING_SHARES,
    generate_ai_firms,
    largest_remainder,
    patent_band,
)
from tools.synthetic.provinces import FIRM_INDICATORS, firm_indicators, generate_regional_ai_provinces

FIRMS_CSV = DATASET_DIR / "ai_firms_synthetic.csv"
FIRMS_MD = DATASET_DIR / "ai_firms_synthetic.md"
PROVINCES_CSV = DATASET_DIR / "regional_ai_provinces_synthetic.csv"
PROVINCES_MD = DATASET_DIR / "regional_ai_provinces_synthetic.md"
N = 4311
TOLERANCE_PP = 0.05  # percentage points

COLUMNS = {
    "firm_id": pl.String, "province": pl.String, "city": pl.String, "layer": pl.String, "listed": pl.Boolean,
    "patents": pl.Int64, "valuation_100m_yuan": pl.Float64, "financing_events": pl.Int64,
    "financing_amount_100m_yuan": pl.Float64, "tech_cooperation": pl.Int64, "investment_relations": pl.Int64,
}


@pytest.fixture(scope="module")
def firms() -> pl.DataFrame:
    return generate_ai_firms()


def share(mask: pl.Series | np.ndarray, n: int = N) -> float:
    return float(np.asarray(mask).sum()) / n * 100


# ---------------------------------------------------------------------------------------------
# shape and types
# ---------------------------------------------------------------------------------------------

def test_one_row_per_firm_with_the_documented_columns(firms):
    assert firms.height == N
    assert dict(firms.schema) == COLUMNS
    assert firms["firm_id"].n_unique() == N
    assert firms["firm_id"][0] == "AI0001" and firms["firm_id"][-1] == "AI4311"
    assert firms.null_count().sum_horizontal().item() == 0
    assert set(firms["layer"].unique()) == {"base", "technology", "application"}
    for column in ("patents", "valuation_100m_yuan", "financing_events", "financing_amount_100m_yuan",
                   "tech_cooperation", "investment_relations"):
        assert firms[column].min() >= 0, column
    assert firms["valuation_100m_yuan"].min() > 0


def test_cities_belong_to_their_province(firms):
    pairs = firms.select("province", "city").unique()
    assert pairs["city"].n_unique() == pairs.height  # every city sits in one province
    for province, city in pairs.iter_rows():
        assert city in {c for c, _ in CITY_SPLITS[province]}
    # the municipalities are their own city; the big provinces' AI centres lead them
    for municipality in ("北京市", "上海市", "天津市", "重庆市"):
        assert set(firms.filter(pl.col("province") == municipality)["city"]) == {municipality}
    leaders = (firms.group_by("province", "city").len().sort("len", descending=True)
               .group_by("province", maintain_order=True).first())
    lead = dict(zip(leaders["province"], leaders["city"], strict=True))
    assert lead["广东省"] == "深圳市" and lead["浙江省"] == "杭州市" and lead["四川省"] == "成都市"
    assert lead["湖北省"] == "武汉市" and lead["安徽省"] == "合肥市"


def test_financing_amount_is_zero_without_financing_events(firms):
    assert firms.filter(pl.col("financing_events") == 0)["financing_amount_100m_yuan"].max() == 0.0


# ---------------------------------------------------------------------------------------------
# published shares (seed 004), to 0.05 percentage points
# ---------------------------------------------------------------------------------------------

def test_province_shares_match_seed_004(firms):
    counts = dict(firms.group_by("province").len().iter_rows())
    assert set(counts) == set(PROVINCES)  # all 31 provinces
    assert min(counts.values()) >= 1
    assert sum(counts.values()) == N
    for province, published in PUBLISHED_PROVINCE_SHARES.items():
        assert abs(counts[province] / N * 100 - published) <= TOLERANCE_PP, province
    assert counts["北京市"] == 1252 and counts["广东省"] == 944 and counts["上海市"] == 603
    assert counts["浙江省"] == 354 and counts["江苏省"] == 345
    # derived from the circle shares (Yangtze delta 31.73 %, Beijing-Tianjin-Hebei 30.6 %)
    delta = sum(counts[p] for p in ("上海市", "江苏省", "浙江省", "安徽省")) / N * 100
    jjj = sum(counts[p] for p in ("北京市", "天津市", "河北省")) / N * 100
    assert abs(delta - 31.73) <= TOLERANCE_PP
    assert abs(jjj - 30.6) <= 0.05 + 0.05  # published to one decimal
    assert counts["广东省"] / N * 100 == pytest.approx(21.90, abs=TOLERANCE_PP)  # = Pearl River delta
    # seed 004's order of the top ten provinces
    top10 = [p for p, _ in sorted(counts.items(), key=lambda kv: -kv[1])[:10]]
    assert top10 == ["北京市", "广东省", "上海市", "浙江省", "江苏省", "山东省", "四川省", "湖北省", "福建省", "安徽省"]
    # every target share, not only the published ones, is met by the allocation
    assert sum(PROVINCE_FIRM_SHARES.values()) == pytest.approx(100.0, abs=1e-9)
    for province, target in PROVINCE_FIRM_SHARES.items():
        assert abs(counts[province] / N * 100 - target) <= 100 / N, province


def test_layer_shares_match_seed_004(firms):
    counts = dict(firms.group_by("layer").len().iter_rows())
    assert counts == {"base": 428, "technology": 1233, "application": 2650}  # the published counts
    for layer, published in LAYER_SHARES.items():
        assert abs(counts[layer] / N * 100 - published) <= TOLERANCE_PP
    assert LAYER_SHARES == {"base": 9.93, "technology": 28.60, "application": 61.47}


def test_listed_share_matches_seed_004(firms):
    assert firms["listed"].sum() == 672
    assert abs(share(firms["listed"]) - 15.59) <= TOLERANCE_PP


def test_patent_bands_match_seed_004(firms):
    published = {"<200": 51.36, "200-400": 12.22, "400-600": 6.94, "600-800": 4.52, "800-1000": 3.11,
                 ">1000": 21.85}
    assert {label: pct for label, _, _, pct in PATENT_BANDS} == published
    bands = dict(firms.select(patent_band(pl.col("patents")).alias("band")).group_by("band").len().iter_rows())
    assert set(bands) == set(published)
    for label, pct in published.items():
        assert abs(bands[label] / N * 100 - pct) <= TOLERANCE_PP, label
    assert bands == {"<200": 2214, "200-400": 527, "400-600": 299, "600-800": 195, "800-1000": 134, ">1000": 942}
    # band edges: 199 | 200, 399 | 400, 1000 | 1001
    edges = pl.DataFrame({"p": [0, 199, 200, 399, 400, 599, 600, 799, 800, 1000, 1001, 10**6]})
    labels = edges.select(patent_band(pl.col("p")).alias("band"))["band"].to_list()
    assert labels == ["<200", "<200", "200-400", "200-400", "400-600", "400-600", "600-800", "600-800",
                      "800-1000", "800-1000", ">1000", ">1000"]


def test_base_layer_firms_hold_more_patents_per_firm(firms):
    # seed 004: base-layer firms hold 29.35 % of patents with 9.93 % of firms (calibrated only loosely)
    means = dict(firms.group_by("layer").agg(pl.col("patents").mean()).iter_rows())
    assert means["base"] > 2 * means["technology"] and means["base"] > 2 * means["application"]


def test_tech_enabling_shares_match_seed_004_table_6(firms):
    totals = dict(firms.group_by("province").agg(pl.col("tech_cooperation").sum()).iter_rows())
    grand = sum(totals.values())
    for province, published in TECH_ENABLING_SHARES.items():
        assert abs(totals[province] / grand * 100 - published) <= 0.01, province
    # Beijing, Guangdong, Zhejiang and Shanghai: 85.18 % of all enabling relations (seed 004)
    core = sum(totals[p] for p in ("北京市", "广东省", "浙江省", "上海市")) / grand * 100
    assert core == pytest.approx(85.18, abs=0.01)


def test_heavy_tails(firms):
    for column in ("patents", "valuation_100m_yuan", "tech_cooperation", "financing_amount_100m_yuan"):
        values = firms[column].to_numpy().astype(float)
        assert values.max() > 20 * np.median(values[values > 0]), column


def test_listed_firms_are_larger(firms):
    by_listing = dict(firms.group_by("listed").agg(pl.col("valuation_100m_yuan").median()).iter_rows())
    assert by_listing[True] > 5 * by_listing[False]


# ---------------------------------------------------------------------------------------------
# determinism and the shipped CSV
# ---------------------------------------------------------------------------------------------

def test_regenerating_gives_the_shipped_csv_exactly(firms):
    assert firms.write_csv() == FIRMS_CSV.read_text(encoding="utf-8")
    shipped = pl.read_csv(FIRMS_CSV, schema=COLUMNS)
    assert_frame_equal(shipped, firms, check_exact=True)
    assert_frame_equal(generate_ai_firms(2024), firms, check_exact=True)


def test_another_seed_gives_another_table_with_the_same_shares(firms):
    other = generate_ai_firms(seed=7)
    assert not other.equals(firms)
    assert (other["patents"] != firms["patents"]).any()
    for column in ("province", "layer"):
        assert dict(other[column].value_counts().iter_rows()) == dict(firms[column].value_counts().iter_rows())
    assert other["listed"].sum() == firms["listed"].sum()


def test_other_sizes_keep_the_shares():
    small = generate_ai_firms(seed=1, n_firms=1000)
    assert small.height == 1000
    assert small["province"].n_unique() == 31
    counts = dict(small.group_by("province").len().iter_rows())
    for province, target in PROVINCE_FIRM_SHARES.items():  # within 2 firms of the quota
        assert abs(counts[province] - target / 100 * 1000) < 2, province
    assert abs(small["listed"].mean() * 100 - 15.59) <= 0.1
    with pytest.raises(ValueError, match="n_firms must be positive"):
        generate_ai_firms(n_firms=0)


def test_largest_remainder():
    counts = largest_remainder([29.04, 21.90, 13.99, 8.21, 8.00, 18.86], 4311)
    assert counts.sum() == 4311
    quota = np.array([29.04, 21.90, 13.99, 8.21, 8.00, 18.86]) / 100 * 4311
    assert (np.abs(counts - quota) < 1).all()
    assert largest_remainder([1, 1, 1], 2).tolist() == [1, 1, 0]  # ties go to the earlier entry
    with pytest.raises(ValueError, match="non-negative"):
        largest_remainder([-1, 2], 3)


@pytest.mark.parametrize("doc, csv", [(FIRMS_MD, FIRMS_CSV), (PROVINCES_MD, PROVINCES_CSV)])
def test_dataset_docs_say_synthetic_and_list_every_column(doc: Path, csv: Path):
    text = doc.read_text(encoding="utf-8")
    assert "SYNTHETIC" in text.splitlines()[0]
    for column in pl.read_csv(csv, n_rows=1).columns:
        assert f"`{column}`" in text, column


# ---------------------------------------------------------------------------------------------
# firm-derived indicators (Polars group-bys)
# ---------------------------------------------------------------------------------------------

def test_firm_indicators_per_province_sum_back_to_the_firms(firms):
    table = firm_indicators(firms, "province")
    assert table.columns == ["province", *FIRM_INDICATORS]
    assert table.height == 31
    assert table["firm_count"].sum() == N
    assert table["base_tech_firm_count"].sum() == 428 + 1233
    for column, firm_column in (("tech_enabling_relations", "tech_cooperation"),
                                ("financing_relations", "financing_events"),
                                ("investment_relations", "investment_relations")):
        assert table[column].sum() == firms[firm_column].sum()
    assert table["financing_amount_100m_yuan"].sum() == pytest.approx(firms["financing_amount_100m_yuan"].sum(),
                                                                      rel=1e-12)
    # weighted means of the province means give the national means
    total_patents = (table["firm_mean_patents"] * table["firm_count"]).sum()
    assert total_patents == pytest.approx(firms["patents"].sum(), rel=1e-12)
    assert table["firm_count"].to_list() == sorted(table["firm_count"].to_list(), reverse=True)


def test_firm_indicators_match_a_direct_computation(firms):
    table = firm_indicators(firms, "province")
    row = table.filter(pl.col("province") == "安徽省").row(0, named=True)
    sub = firms.filter(pl.col("province") == "安徽省")
    assert row["firm_count"] == sub.height
    assert row["firm_mean_valuation_100m_yuan"] == pytest.approx(np.mean(sub["valuation_100m_yuan"].to_numpy()))
    assert row["firm_mean_patents"] == pytest.approx(np.mean(sub["patents"].to_numpy()))
    assert row["base_tech_firm_count"] == int((sub["layer"] != "application").sum())
    assert row["tech_enabling_relations"] == sub["tech_cooperation"].sum()


def test_firm_indicators_per_city_sum_back_to_provinces(firms):
    cities = firm_indicators(firms, "city")
    assert cities.columns == ["city", "province", *FIRM_INDICATORS]
    assert cities["firm_count"].sum() == N
    assert cities["city"].n_unique() == cities.height
    provinces = firm_indicators(firms, "province").sort("province")
    summed = (cities.group_by("province")
              .agg(pl.col("firm_count", "base_tech_firm_count", "tech_enabling_relations", "financing_relations",
                          "investment_relations").sum())
              .sort("province"))
    assert_frame_equal(summed, provinces.select(summed.columns))
    shenzhen = cities.filter(pl.col("city") == "深圳市")["firm_count"].item()
    guangdong = provinces.filter(pl.col("province") == "广东省")["firm_count"].item()
    assert 0.45 < shenzhen / guangdong < 0.55  # ~50.5 % as Shenzhen's share of the delta in seed 001


def test_firm_indicators_rejects_other_groupings(firms):
    with pytest.raises(ValueError, match="by must be"):
        firm_indicators(firms, "layer")


# ---------------------------------------------------------------------------------------------
# the province table
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def provinces() -> pl.DataFrame:
    return generate_regional_ai_provinces()


def test_province_table_regenerates_the_shipped_csv(provinces):
    assert provinces.write_csv() == PROVINCES_CSV.read_text(encoding="utf-8")
    shipped = pl.read_csv(PROVINCES_CSV, schema=dict(provinces.schema))
    assert_frame_equal(shipped, provinces, check_exact=True)
    assert not generate_regional_ai_provinces(seed=7).equals(provinces)


def test_province_table_contents(provinces, firms):
    assert provinces["province"].to_list() == list(PROVINCES)
    assert provinces.null_count().drop("economic_circle").sum_horizontal().item() == 0
    circles = {c: sorted(g["province"]) for (c,), g in provinces.group_by("economic_circle") if c is not None}
    assert circles == {"长三角": sorted(["上海市", "江苏省", "浙江省", "安徽省"]),
                       "京津冀": sorted(["北京市", "天津市", "河北省"]),
                       "珠三角": ["广东省"], "川渝": sorted(["四川省", "重庆市"])}
    assert provinces["economic_circle"].null_count() == 31 - 10
    # the firm-derived columns are the (rounded) group-by of the firm table
    derived = firm_indicators(firms, "province")
    joined = provinces.join(derived, on="province", suffix="_firms")
    for column in FIRM_INDICATORS:
        assert np.allclose(joined[column].to_numpy(), joined[f"{column}_firms"].to_numpy(), rtol=0, atol=5e-5)
    # count indicators add up to seed 001's 2023 sample sizes (table 1)
    assert provinces["ai_university_count"].sum() == 438
    assert provinces["institute_count"].sum() == 307
    assert provinces["industry_alliance_count"].sum() == 967
    assert provinces["conference_count"].sum() == 2318
    assert provinces["policy_count"].sum() == 775
    assert provinces["industrial_park_count"].sum() == 3507
    # no institute → no institute papers or patents (0, not missing)
    none = provinces.filter(pl.col("institute_count") == 0)
    assert (none["institute_mean_patents"] == 0).all()
    # correlated with the firm counts, and no indicator is constant
    log_firms = np.log(provinces["firm_count"].to_numpy())
    for column in ("ai_university_count", "institute_count", "conference_count", "international_study_experience",
                   "international_tech_input_relations", "industrial_park_count"):
        values = provinces[column].to_numpy().astype(float)
        assert np.corrcoef(log_firms, np.log1p(values))[0, 1] > 0.4, column
    for column in provinces.columns[3:]:
        assert provinces[column].n_unique() > 1, column
