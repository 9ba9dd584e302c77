"""SYNTHETIC firm-level table of Chinese core AI firms, calibrated to the published shares of seed 004.

Seed 004 (中国新一代人工智能发展战略研究院, 《中国新一代人工智能产业发展 2024》) describes 4,311 core AI
firms only through shares; no firm-level data are public.  :func:`generate_ai_firms` draws one row
per firm whose *counts* reproduce every published share exactly up to rounding (largest-remainder
allocation of the published percentages, so each share is within 0.05 percentage points):

- province: Beijing 29.04 %, Guangdong 21.90 %, Shanghai 13.99 %, Zhejiang 8.21 %, Jiangsu 8.00 %;
  Anhui 1.53 % and Tianjin + Hebei 1.56 % follow from the economic-circle shares of the same report
  (Yangtze delta 31.73 %, Beijing–Tianjin–Hebei 30.6 %); the published top-10 order (… Shandong,
  Sichuan, Hubei, Fujian, Anhui) is kept; the other provinces get a heavy tail chosen here (every one
  of the 31 has at least one firm);
- technology layer: base 9.93 % (428), technology 28.60 % (1,233), application 61.47 % (2,650);
- listed: 15.59 % (672);
- patents per firm in bands <200 / 200–400 / 400–600 / 600–800 / 800–1000 / >1000:
  51.36 / 12.22 / 6.94 / 4.52 / 3.11 / 21.85 %;
- technology-enabling relations by province: the shares of seed 004 table 6 (Beijing 36.21 %,
  Guangdong 29.96 %, …; the 11 provinces outside its top 20 share the remaining 0.33 %).

Everything else (cities within provinces, valuations, financing, investment relations, which firm
is in which layer/band) is invented: plausible, heavy-tailed and correlated through a latent firm
size, but not data.  Only ``numpy.random.default_rng(seed)`` is used, so a seed fixes the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

__all__ = [
    "CITY_SPLITS",
    "ECONOMIC_CIRCLES",
    "LAYER_SHARES",
    "LISTED_SHARE",
    "PATENT_BANDS",
    "PROVINCES",
    "PROVINCE_EN",
    "PROVINCE_FIRM_SHARES",
    "PUBLISHED_PROVINCE_SHARES",
    "TECH_ENABLING_SHARES",
    "TECH_ENABLING_TOTAL",
    "generate_ai_firms",
    "largest_remainder",
    "patent_band",
]

#: The 31 provincial-level divisions of mainland China, official names, in the statistical order.
PROVINCES: tuple[str, ...] = (
    "北京市", "天津市", "河北省", "山西省", "内蒙古自治区", "辽宁省", "吉林省", "黑龙江省", "上海市",
    "江苏省", "浙江省", "安徽省", "福建省", "江西省", "山东省", "河南省", "湖北省", "湖南省", "广东省",
    "广西壮族自治区", "海南省", "重庆市", "四川省", "贵州省", "云南省", "西藏自治区", "陕西省", "甘肃省",
    "青海省", "宁夏回族自治区", "新疆维吾尔自治区",
)
PROVINCE_EN: Mapping[str, str] = dict(zip(PROVINCES, (
    "Beijing", "Tianjin", "Hebei", "Shanxi", "Inner Mongolia", "Liaoning", "Jilin", "Heilongjiang", "Shanghai",
    "Jiangsu", "Zhejiang", "Anhui", "Fujian", "Jiangxi", "Shandong", "Henan", "Hubei", "Hunan", "Guangdong",
    "Guangxi", "Hainan", "Chongqing", "Sichuan", "Guizhou", "Yunnan", "Tibet", "Shaanxi", "Gansu",
    "Qinghai", "Ningxia", "Xinjiang",
), strict=True))

#: The four economic circles of seed 001 (section 3); other provinces belong to none.
ECONOMIC_CIRCLES: Mapping[str, tuple[str, ...]] = {
    "长三角": ("上海市", "江苏省", "浙江省", "安徽省"),
    "京津冀": ("北京市", "天津市", "河北省"),
    "珠三角": ("广东省",),
    "川渝": ("四川省", "重庆市"),
}

#: Shares (%) of firms by province published in seed 004 (top five).
PUBLISHED_PROVINCE_SHARES: Mapping[str, float] = {
    "北京市": 29.04, "广东省": 21.90, "上海市": 13.99, "浙江省": 8.21, "江苏省": 8.00,
}

#: Target share (%) of firms in every province (sums to 100).  Published: the top five.  Derived
#: from seed 004's circle shares: Anhui = 31.73 − 13.99 − 8.21 − 8.00 = 1.53; Tianjin + Hebei =
#: 30.6 − 29.04 = 1.56.  The rest is this module's heavy-tailed assumption, ordered as the report's
#: top ten (Shandong, Sichuan, Hubei, Fujian above Anhui).
PROVINCE_FIRM_SHARES: Mapping[str, float] = {
    **PUBLISHED_PROVINCE_SHARES,
    "山东省": 3.00, "四川省": 2.05, "湖北省": 1.85, "福建省": 1.70, "安徽省": 1.53,
    "湖南省": 1.20, "天津市": 1.16, "陕西省": 0.95, "辽宁省": 0.90, "重庆市": 0.75, "河南省": 0.70,
    "江西省": 0.45, "河北省": 0.40, "吉林省": 0.35, "黑龙江省": 0.35, "贵州省": 0.30,
    "广西壮族自治区": 0.28, "山西省": 0.22, "云南省": 0.20, "海南省": 0.18, "新疆维吾尔自治区": 0.10,
    "内蒙古自治区": 0.08, "甘肃省": 0.06, "宁夏回族自治区": 0.05, "青海省": 0.03, "西藏自治区": 0.02,
}

#: Technology layers (stored English codes) and their published shares (%) in seed 004.
LAYER_SHARES: Mapping[str, float] = {"base": 9.93, "technology": 28.60, "application": 61.47}
#: Published share (%) of listed firms (672 of 4,311).
LISTED_SHARE = 15.59
#: Patents-per-firm bands ``(label, lowest, highest or None, published share %)``; integers, both
#: ends inclusive: <200 is 0–199, 200–400 is 200–399, …, 800–1000 is 800–1000, >1000 is ≥ 1001.
PATENT_BANDS: tuple[tuple[str, int, int | None, float], ...] = (
    ("<200", 0, 199, 51.36),
    ("200-400", 200, 399, 12.22),
    ("400-600", 400, 599, 6.94),
    ("600-800", 600, 799, 4.52),
    ("800-1000", 800, 1000, 3.11),
    (">1000", 1001, None, 21.85),
)

#: Shares (%) of technology-enabling relations by province, seed 004 table 6 (top 20).
TECH_ENABLING_SHARES: Mapping[str, float] = {
    "北京市": 36.21, "广东省": 29.96, "浙江省": 10.08, "上海市": 8.93, "江苏省": 3.94, "山东省": 2.03,
    "安徽省": 1.98, "福建省": 1.15, "湖北省": 1.15, "四川省": 0.90, "天津市": 0.66, "辽宁省": 0.61,
    "贵州省": 0.50, "重庆市": 0.48, "湖南省": 0.43, "陕西省": 0.18, "河北省": 0.16, "河南省": 0.14,
    "黑龙江省": 0.10, "山西省": 0.08,
}
#: Total technology-enabling relations of all firms — an assumption of this module (seed 004's
#: 2023 value network has 91,158 edges of all kinds; roughly half are taken as enabling relations).
TECH_ENABLING_TOTAL = 45_000

#: Cities of each province and the share (%) of the province's firms in each (assumed; shaped on
#: seed 001/004: Shenzhen about half of Guangdong, Hangzhou most of Zhejiang, Nanjing and Suzhou most
#: of Jiangsu, Chengdu ~70 % of Sichuan–Chongqing).  One-city provinces hold their capital only.
CITY_SPLITS: Mapping[str, tuple[tuple[str, float], ...]] = {
    "北京市": (("北京市", 100.0),),
    "天津市": (("天津市", 100.0),),
    "上海市": (("上海市", 100.0),),
    "重庆市": (("重庆市", 100.0),),
    "广东省": (("深圳市", 50.5), ("广州市", 30.0), ("珠海市", 5.0), ("东莞市", 5.0), ("佛山市", 4.5),
              ("惠州市", 2.5), ("中山市", 2.5)),
    "浙江省": (("杭州市", 76.0), ("宁波市", 10.0), ("嘉兴市", 4.0), ("温州市", 4.0), ("绍兴市", 3.0),
              ("金华市", 3.0)),
    "江苏省": (("南京市", 40.0), ("苏州市", 36.0), ("无锡市", 11.0), ("常州市", 6.0), ("南通市", 4.0),
              ("徐州市", 3.0)),
    "山东省": (("济南市", 42.0), ("青岛市", 43.0), ("烟台市", 8.0), ("潍坊市", 7.0)),
    "四川省": (("成都市", 93.0), ("绵阳市", 7.0)),
    "湖北省": (("武汉市", 92.0), ("宜昌市", 4.0), ("襄阳市", 4.0)),
    "福建省": (("厦门市", 46.0), ("福州市", 44.0), ("泉州市", 10.0)),
    "安徽省": (("合肥市", 88.0), ("芜湖市", 12.0)),
    "湖南省": (("长沙市", 90.0), ("株洲市", 10.0)),
    "陕西省": (("西安市", 100.0),),
    "辽宁省": (("沈阳市", 52.0), ("大连市", 48.0)),
    "河南省": (("郑州市", 88.0), ("洛阳市", 12.0)),
    "江西省": (("南昌市", 100.0),),
    "河北省": (("石家庄市", 45.0), ("保定市", 30.0), ("廊坊市", 25.0)),
    "吉林省": (("长春市", 100.0),),
    "黑龙江省": (("哈尔滨市", 100.0),),
    "贵州省": (("贵阳市", 100.0),),
    "广西壮族自治区": (("南宁市", 100.0),),
    "山西省": (("太原市", 100.0),),
    "云南省": (("昆明市", 100.0),),
    "海南省": (("海口市", 100.0),),
    "新疆维吾尔自治区": (("乌鲁木齐市", 100.0),),
    "内蒙古自治区": (("呼和浩特市", 100.0),),
    "甘肃省": (("兰州市", 100.0),),
    "宁夏回族自治区": (("银川市", 100.0),),
    "青海省": (("西宁市", 100.0),),
    "西藏自治区": (("拉萨市", 100.0),),
}

# Latent province effects (assumed): firm size, patent intensity (seed 004: Guangdong holds 47.82 %
# and Shandong 6.24 % of all patents; seed 001 ranks Guangdong then Shandong first on mean patents),
# capital-market access (seed 001: Beijing first on all capital indicators, then Guangdong and
# Shanghai), and propensity for base/technology-layer firms (seed 001: Beijing first, the Pearl River
# delta application-oriented).
_SIZE = {"北京市": 0.20, "广东省": 0.30, "上海市": 0.15, "浙江省": 0.15, "江苏省": 0.05}
_PATENTS = {"广东省": 1.10, "山东省": 1.30, "湖南省": 0.45, "辽宁省": 0.45, "北京市": -0.2, "上海市": -0.15,
            "浙江省": 0.05, "安徽省": 0.25, "四川省": 0.10, "湖北省": 0.10, "福建省": 0.10}
_CAPITAL = {"北京市": 0.55, "上海市": 0.40, "广东省": 0.30, "浙江省": 0.30, "江苏省": 0.20, "天津市": 0.25,
            "福建省": 0.10, "山东省": 0.0, "湖北省": 0.0, "安徽省": 0.0}
_UPSTREAM = {"北京市": 0.45, "上海市": 0.30, "江苏省": 0.15, "浙江省": 0.10, "安徽省": 0.15, "广东省": -0.15}
_DEFAULT_PATENTS, _DEFAULT_CAPITAL = -0.2, -0.35

#: Decimal places of the float columns (so that the CSV round-trips exactly).
FLOAT_DECIMALS = {"valuation_100m_yuan": 2, "financing_amount_100m_yuan": 2}


def largest_remainder(shares: Sequence[float], total: int) -> np.ndarray:
    """Integer counts summing to ``total`` in proportion to ``shares`` (Hamilton's method).

    Every entry gets the floor of its quota; the units left over go to the largest fractional
    parts, ties to the earlier entry.  Each count is within 1 of its quota."""
    weights = np.asarray(shares, dtype=float)
    if total < 0 or weights.ndim != 1 or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError("shares must be non-negative with a positive sum, total >= 0")
    quota = weights / weights.sum() * total
    counts = np.floor(quota).astype(np.int64)
    left = int(total - counts.sum())
    order = np.argsort(-(quota - counts), kind="stable")
    counts[order[:left]] += 1
    return counts


def patent_band(patents: pl.Expr) -> pl.Expr:
    """Label of the patents-per-firm band (see :data:`PATENT_BANDS`) of each value, e.g.
    ``firms.select(patent_band(pl.col("patents")))``; negative or missing values give null."""
    expr = pl.when(patents < 0).then(pl.lit(None, pl.String))
    for label, lo, hi, _ in PATENT_BANDS:
        expr = expr.when(patents <= hi if hi is not None else patents >= lo).then(pl.lit(label))
    return expr.otherwise(pl.lit(None, pl.String))


def _top_k(rng: np.random.Generator, log_weight: np.ndarray, k: int) -> np.ndarray:
    """Indices of a weighted sample of ``k`` items without replacement (Gumbel top-k)."""
    keys = log_weight + rng.gumbel(size=log_weight.shape)
    return np.argsort(-keys, kind="stable")[:k]


def _effect(provinces: np.ndarray, table: Mapping[str, float], default: float = 0.0) -> np.ndarray:
    return np.array([table.get(p, default) for p in provinces])


def generate_ai_firms(seed: int = 2024, n_firms: int = 4311) -> pl.DataFrame:
    """A SYNTHETIC table of ``n_firms`` core AI firms (default: seed 004's 4,311), one row per firm.

    Columns: ``firm_id`` (``AI0001`` …), ``province`` and ``city`` (official Chinese names),
    ``layer`` (``base``/``technology``/``application``), ``listed`` (bool), ``patents`` (int),
    ``valuation_100m_yuan`` (valuation or market value, 亿元, 2 dp), ``financing_events`` (int),
    ``financing_amount_100m_yuan`` (亿元, 2 dp; 0 without financing), ``tech_cooperation`` (int,
    technology-enabling relations), ``investment_relations`` (int).

    Province, layer, listing and patent-band counts are exact largest-remainder allocations of the
    published shares (see the module docstring); the rest is drawn from ``default_rng(seed)``.
    """
    if n_firms < 1:
        raise ValueError("n_firms must be positive")
    rng = np.random.default_rng(seed)

    # -- where: exact counts by province, then by city ---------------------------------------
    prov_counts = largest_remainder([PROVINCE_FIRM_SHARES[p] for p in PROVINCES], n_firms)
    if n_firms >= len(PROVINCES):  # every province gets a firm, taken from the one most above its quota
        quota = np.array([PROVINCE_FIRM_SHARES[p] for p in PROVINCES]) / 100 * n_firms
        for k in np.flatnonzero(prov_counts == 0):
            surplus = np.where(prov_counts > 1, prov_counts - quota, -np.inf)
            prov_counts[int(np.argmax(surplus))] -= 1
            prov_counts[k] = 1
    province_list: list[str] = []
    city_list: list[str] = []
    for prov, count in zip(PROVINCES, prov_counts, strict=True):
        cities = CITY_SPLITS[prov]
        for (city, _), c in zip(cities, largest_remainder([s for _, s in cities], int(count)), strict=True):
            province_list += [prov] * int(c)
            city_list += [city] * int(c)
    order = rng.permutation(n_firms)
    province = np.array(province_list, dtype=object)[order]
    city = np.array(city_list, dtype=object)[order]

    # -- latent firm size, then layer and listing (exact counts, weighted without replacement) --
    size = rng.standard_normal(n_firms) + _effect(province, _SIZE)
    layer_counts = largest_remainder(list(LAYER_SHARES.values()), n_firms)
    layer = np.full(n_firms, "application", dtype=object)
    upstream = _effect(province, _UPSTREAM)
    base = _top_k(rng, 0.5 * size + upstream, int(layer_counts[0]))
    layer[base] = "base"
    rest = np.flatnonzero(layer == "application")
    tech = rest[_top_k(rng, 0.3 * size[rest] + 0.8 * upstream[rest], int(layer_counts[1]))]
    layer[tech] = "technology"
    is_base, is_tech = layer == "base", layer == "technology"

    n_listed = int(largest_remainder([LISTED_SHARE, 100.0 - LISTED_SHARE], n_firms)[0])
    listed = np.zeros(n_firms, dtype=bool)
    listed[_top_k(rng, 1.2 * size + 0.6 * is_base + 0.2 * is_tech, n_listed)] = True

    # -- patents: bands by a latent patent score (exact band counts), values within the band ---
    band_counts = largest_remainder([b[3] for b in PATENT_BANDS], n_firms)
    score = (0.9 * size + 0.8 * is_base + 0.9 * listed + _effect(province, _PATENTS, _DEFAULT_PATENTS)
             + 0.8 * rng.standard_normal(n_firms))
    ranked = np.argsort(-score, kind="stable")  # best first: the >1000 band is filled first
    patents = np.empty(n_firms, dtype=np.int64)
    start = 0
    for (_, lo, hi, _), count in zip(reversed(PATENT_BANDS), reversed(band_counts.tolist()), strict=True):
        members = ranked[start:start + count]
        start += count
        if hi is None:  # heavy Pareto tail above 1000, largest values to the highest scores
            values = np.sort(1001 + np.floor(1000 * (rng.pareto(1.3, count)))).astype(np.int64)[::-1]
            patents[members] = np.minimum(values, 200_000)
        elif lo == 0:  # skewed towards few patents
            patents[members] = np.floor(200 * rng.random(count) ** 1.6).astype(np.int64)
        else:
            patents[members] = rng.integers(lo, hi + 1, count)

    # -- money: valuation, financing, investment ----------------------------------------------
    capital = _effect(province, _CAPITAL, _DEFAULT_CAPITAL)
    valuation = np.exp(1.3 + 0.9 * size + 1.5 * listed + 0.4 * is_base + 0.3 * capital
                       + 0.6 * rng.standard_normal(n_firms))
    valuation = np.round(np.maximum(valuation, 0.1), FLOAT_DECIMALS["valuation_100m_yuan"])
    rate = np.exp(0.7 + 0.35 * size + 0.9 * capital) * rng.gamma(1.5, 1 / 1.5, n_firms)
    financing_events = rng.poisson(rate).astype(np.int64)
    per_event = np.exp(-0.4 + 0.6 * size + 0.9 * capital + 0.3 * listed + 0.9 * rng.standard_normal(n_firms))
    financing_amount = np.round(financing_events * per_event, FLOAT_DECIMALS["financing_amount_100m_yuan"])
    inv_rate = np.exp(-0.6 + 0.8 * size + 0.9 * listed + 0.8 * capital) * rng.gamma(0.8, 1 / 0.8, n_firms)
    investment_relations = rng.poisson(inv_rate).astype(np.int64)

    # -- technology-enabling relations: province totals from seed 004 table 6 ------------------
    outside = [p for p in PROVINCES if p not in TECH_ENABLING_SHARES]
    rest_share = 100.0 - sum(TECH_ENABLING_SHARES.values())
    rest_weights = np.array([prov_counts[PROVINCES.index(p)] for p in outside], float)
    shares = {**TECH_ENABLING_SHARES, **dict(zip(outside, rest_share * rest_weights / rest_weights.sum(), strict=True))}
    total = round(TECH_ENABLING_TOTAL * n_firms / 4311)
    prov_totals = largest_remainder([shares[p] for p in PROVINCES], total)
    propensity = np.exp(1.3 * size + 1.0 * is_base + 0.6 * is_tech + 0.5 * listed) * rng.gamma(0.5, 2.0, n_firms)
    tech_cooperation = np.zeros(n_firms, dtype=np.int64)
    for prov, prov_total in zip(PROVINCES, prov_totals, strict=True):
        members = np.flatnonzero(province == prov)
        if members.size:
            weights = propensity[members] / propensity[members].sum()
            tech_cooperation[members] = rng.multinomial(int(prov_total), weights)

    return pl.DataFrame({
        "firm_id": [f"AI{k:04d}" for k in range(1, n_firms + 1)],
        "province": province.tolist(),
        "city": city.tolist(),
        "layer": layer.tolist(),
        "listed": listed,
        "patents": patents,
        "valuation_100m_yuan": valuation,
        "financing_events": financing_events,
        "financing_amount_100m_yuan": financing_amount,
        "tech_cooperation": tech_cooperation,
        "investment_relations": investment_relations,
    }, schema={
        "firm_id": pl.String, "province": pl.String, "city": pl.String, "layer": pl.String,
        "listed": pl.Boolean, "patents": pl.Int64, "valuation_100m_yuan": pl.Float64,
        "financing_events": pl.Int64, "financing_amount_100m_yuan": pl.Float64,
        "tech_cooperation": pl.Int64, "investment_relations": pl.Int64,
    })
