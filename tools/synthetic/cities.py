"""SYNTHETIC city data for the ``ai-city-2024`` framework (China AI City Competitiveness 2024).

The report behind ``ai-city-2024`` (seed 000) publishes its method and a handful of figures but
not its city data.  :func:`generate_ai_cities` makes a deterministic stand-in: one row per
prefecture-level division of ``engine/datasets/china_prefectures.csv`` (337 units) with every
data column the framework reads (31 columns: 25 indicators, two of them sums of 4 components),
plus ``synthetic = True``.  Nothing here is observed AI data.

How the values are made (details and every calibration target: ``ai_cities_synthetic.md``):

1. **Covariates.**  Five real city covariates from the China City Statistical Yearbook 2024
   (``engine/datasets/ccsy2024_cities.csv``): GDP, resident population, invention patents granted,
   higher-education students and national high-tech enterprises.  Missing cells of yearbook
   cities are filled by a log-log regression on GDP; the 40 divisions the yearbook does not cover
   (and 三沙市, which has no GDP) take the median of their province's *smaller* yearbook cities
   (GDP at or below the province median).
2. **Latent AI capacity.**  ``kappa = sum_c w_c * log(x_c / x_c[Beijing]) - HUB_GAP + SD_CITY * e``
   with ``e ~ N(0, 1)`` per city; the three national AI hubs (Beijing, Shanghai, Shenzhen) are set
   to ``kappa = 0``.  ``HUB_GAP`` is the calibrated distance between the hubs and everyone else
   that reproduces the report's steep drop after the top three.
3. **Indicators.**  Heavy-tailed draws around ``level = ref * exp(b * kappa + tau * eta)``
   (``eta ~ N(0, 1)`` per city and indicator): Poisson counts (lognormal-Poisson, so small cities
   get zeros), amounts rounded to 2 decimals.  Related columns are built from each other (AI firm
   layers split the firm total, market capitalisation and R&D staff exist only with listed firms,
   financing amount only with financing events, ...).
4. **Published facts.**  Values the report prints are set exactly (e.g. Beijing's 14 AI
   first-class universities, 13,067 AI firms, 481 listed AI companies); the orders it states are
   imposed by swapping values between cities (the distribution of a column is unchanged), and
   where only the leaders are named the other cities are squashed below them, order-preserving.

Only ``numpy.random.default_rng(seed)`` is used; no global random state.  The same seed gives the
same table with the same NumPy version (NumPy does not promise identical streams across
versions).  Regenerate the shipped file with
``python -c "from tools.synthetic.cities import write_ai_cities; write_ai_cities()"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from engine.resources import DATASET_DIR

__all__ = [
    "COLUMNS",
    "COMPONENT_COLUMNS",
    "COVARIATES",
    "COVARIATES_FILE",
    "DEFAULT_SEED",
    "OUTPUT_FILE",
    "PREFECTURES_FILE",
    "ai_capacity",
    "generate_ai_cities",
    "load_covariates",
    "load_prefectures",
    "read_ai_cities",
    "write_ai_cities",
]

DEFAULT_SEED = 2024
PREFECTURES_FILE = DATASET_DIR / "china_prefectures.csv"
COVARIATES_FILE = DATASET_DIR / "ccsy2024_cities.csv"
OUTPUT_FILE = DATASET_DIR / "ai_cities_synthetic.csv"

#: Real covariates (CCSY 2024 column → weight in the latent AI capacity).
COVARIATES: dict[str, float] = {
    "gdp_100m_yuan": 0.25,
    "invention_patents_granted": 0.30,
    "hightech_enterprises_national": 0.20,
    "hei_students": 0.15,
    "pop_resident_10k_filled": 0.10,  # resident population; 沈阳市's blank = GDP / GDP per capita
}
#: The three national AI hubs (the report's top three), by 6-digit code.
HUBS = {"110100": "北京市", "310100": "上海市", "440300": "深圳市"}
#: The report's third tier (17 cities), in its order (the first 7 are its ranks 4-10).
TIER3 = {"440100": "广州市", "330100": "杭州市", "610100": "西安市", "320100": "南京市", "510100": "成都市",
         "420100": "武汉市", "320500": "苏州市", "340100": "合肥市", "120100": "天津市", "500100": "重庆市",
         "430100": "长沙市", "410100": "郑州市", "370200": "青岛市", "370100": "济南市", "330200": "宁波市",
         "210100": "沈阳市", "350100": "福州市"}
HUB_GAP = 0.25  #: Log-capacity distance between the hubs and a city with Beijing's covariates.
SD_CITY = 0.25  #: Sd of the city-level AI-specific factor (common to all indicators).
XIAN_QUALITY_GAP = 0.8  #: Xi'an's capacity deficit on the quality indicators (see the generator).

ID_COLUMNS = ("admin_code_6", "name_zh", "name_en", "province_name_zh")
#: Every data column of ai-city-2024, in framework order (components expanded).
COMPONENT_COLUMNS = (
    "policy_cat1_guiding_count", "policy_cat2_outline_count", "policy_cat3_rules_count",
    "policy_cat4_opinions_count",
    "ai_parks_coverage_over10_count", "ai_parks_coverage_5to10_count", "ai_parks_coverage_3to5_count",
    "ai_parks_coverage_under3_count",
    "ai_first_class_universities", "ai_open_innovation_platforms",
    "ai_listed_rd_staff", "ai_insured_workers",
    "ai_firms_total", "ai_firms_new_2023", "ai_firms_base_layer", "ai_firms_technology_layer",
    "ai_firms_application_layer",
    "ai_listed_firms", "ai_hightech_firms", "ai_unicorns", "ai_rd_top500_firms",
    "ai_valid_invention_patents", "ai_pct_applications", "ai_patent_citations",
    "ai_registered_capital_100m_yuan", "ai_firms_revenue_over_100m", "ai_listed_market_cap_100m_yuan",
    "ai_financing_amount_100m_yuan", "ai_financing_events",
    "jd_smart_purchasing_index", "jd_smart_preference_index",
)
FLOAT_COLUMNS = ("ai_registered_capital_100m_yuan", "ai_listed_market_cap_100m_yuan",
                 "ai_financing_amount_100m_yuan", "jd_smart_purchasing_index", "jd_smart_preference_index")
DECIMALS = 2  #: Every float column is rounded to this many decimals (exact CSV round trip).
COLUMNS = (*ID_COLUMNS, *COMPONENT_COLUMNS, "synthetic")

PARK_WEIGHTS = np.array([0.55, 0.25, 0.15, 0.05])  #: AI-park coverage bands >10 %, 5-10 %, 3-5 %, <3 %.
POLICY_WEIGHTS = np.array([0.4, 0.3, 0.2, 0.1])  #: Policy categories 1-4.

# Cities named by the report (6-digit codes of the official list).
BEIJING, SHANGHAI, SHENZHEN = "110100", "310100", "440300"
GUANGZHOU, HANGZHOU, XIAN, CHENGDU, WUHAN = "440100", "330100", "610100", "510100", "420100"
CHONGQING, ZIBO, JIAXING, XIANYANG = "500100", "370300", "330400", "610400"
CHAOZHOU, JINAN, DALI = "445100", "370100", "532900"  # 大理市 is in 大理白族自治州 (532900)


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------

def load_prefectures(path: str | Path = PREFECTURES_FILE) -> pl.DataFrame:
    """The 337 prefecture-level divisions (codes as strings)."""
    return pl.read_csv(path, schema_overrides={"admin_code_6": pl.String, "nbs_code_4": pl.String,
                                               "legacy_code": pl.String})


def load_covariates(prefectures: pl.DataFrame | None = None,
                    path: str | Path = COVARIATES_FILE) -> pl.DataFrame:
    """Real covariates for every division, imputed where the yearbook has none.

    Returns ``admin_code_6``, ``province_name_zh``, the :data:`COVARIATES` columns (float, all
    present and > 0) and ``covariates_imputed`` (how many of the five were imputed)."""
    pref = load_prefectures() if prefectures is None else prefectures
    book = pl.read_csv(path, schema_overrides={"admin_code_6": pl.String}, infer_schema_length=None)
    names = list(COVARIATES)
    table = pref.select("admin_code_6", "province_name_zh").join(
        book.select("admin_code_6", *names), on="admin_code_6", how="left", maintain_order="left")
    values = {c: table[c].cast(pl.Float64).to_numpy().astype(float).copy() for c in names}
    imputed = np.zeros(table.height, np.int64)
    gdp = values["gdp_100m_yuan"]
    # 1. yearbook cities with a GDP: log-log regression of the missing covariate on GDP
    for c in names:
        x = values[c]
        fit = np.isfinite(x) & np.isfinite(gdp)
        slope, intercept = np.polyfit(np.log(gdp[fit]), np.log(x[fit]), 1)
        fill = ~np.isfinite(x) & np.isfinite(gdp)
        x[fill] = np.exp(intercept + slope * np.log(gdp[fill]))
        imputed += fill
    # 2. no GDP (outside the yearbook, or 三沙市): median of the province's smaller cities
    province = table["province_name_zh"].to_numpy()
    known = np.isfinite(gdp)
    fill_rows = np.flatnonzero(~known)
    for row in fill_rows:
        same = known & (province == province[row])
        smaller = same & (gdp <= np.median(gdp[same]))
        for c in names:
            values[c][row] = float(np.median(values[c][smaller]))
        imputed[row] = len(names)
    return table.select("admin_code_6", "province_name_zh").with_columns(
        *(pl.Series(c, values[c]) for c in names), pl.Series("covariates_imputed", imputed))


def ai_capacity(covariates: pl.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Latent log AI capacity per division (hubs 0, everyone else about -HUB_GAP and below)."""
    codes = covariates["admin_code_6"].to_list()
    beijing = codes.index(BEIJING)
    ell = np.zeros(covariates.height)
    for c, w in COVARIATES.items():
        x = covariates[c].to_numpy()
        ell += w * (np.log(x) - np.log(x[beijing]))
    kappa = ell - HUB_GAP + SD_CITY * rng.standard_normal(covariates.height)
    hubs = np.isin(codes, list(HUBS))
    kappa[hubs] = 0.0
    # The report's tier-3 cities take the 17 highest capacities below the hubs, in its order
    # (a permutation of kappa values: the distribution is unchanged).
    tier3 = [codes.index(code) for code in TIER3]
    order = [k for k in np.argsort(-kappa, kind="stable") if not hubs[k]]
    top = order[: len(tier3)]
    intruders = [k for k in top if k not in tier3]
    outsiders = sorted((k for k in tier3 if k not in top), key=lambda k: -kappa[k])
    kappa[intruders], kappa[outsiders] = kappa[outsiders], kappa[intruders]
    kappa[tier3] = np.sort(kappa[tier3])[::-1]
    return kappa


# ---------------------------------------------------------------------------------------------
# helpers on one column (rows are units in file order)
# ---------------------------------------------------------------------------------------------

class _Column:
    """A column being built, with the rows whose values are fixed (published or chosen)."""

    def __init__(self, values: np.ndarray, row: dict[str, int], integer: bool):
        self.v = np.asarray(values, float).copy()
        self.row = row
        self.integer = integer
        self.fixed = np.zeros(len(self.v), bool)

    def set(self, values: dict[str, float]) -> _Column:
        for code, value in values.items():
            self.v[self.row[code]] = value
            self.fixed[self.row[code]] = True
        return self

    def below(self, limit: float, knee: float = 0.6) -> _Column:
        """Squash the free rows into [0, limit): identity below ``knee * limit``, then an
        order-preserving exponential approach to the limit."""
        lo = knee * limit
        span = limit - lo
        m = ~self.fixed & (self.v > lo)
        self.v[m] = lo + span * (1.0 - np.exp(-(self.v[m] - lo) / span))
        if self.integer:
            self.v[m] = np.minimum(np.floor(self.v[m]), np.ceil(limit) - 1)
        return self

    def place(self, ranks: dict[str, int]) -> _Column:
        """Give each named (free) city the value at that rank of the whole column (1 = largest),
        by swapping with the free city holding it; the column's values are only permuted."""
        order = np.sort(self.v)[::-1]
        for code, rank in sorted(ranks.items(), key=lambda item: item[1]):
            target = order[rank - 1]
            r = self.row[code]
            holders = np.flatnonzero(~self.fixed & (self.v == target))
            j = holders[0] if r not in holders else r
            self.v[r], self.v[j] = self.v[j], self.v[r]
            self.fixed[r] = True
        return self

    def values(self) -> np.ndarray:
        return np.round(self.v) if self.integer else np.round(self.v, DECIMALS)


def _level(rng: np.random.Generator, kappa: np.ndarray, ref: float, b: float, tau: float) -> np.ndarray:
    """``ref * exp(b * kappa + tau * eta)``, eta ~ N(0, 1) per city."""
    return ref * np.exp(b * kappa + tau * rng.standard_normal(len(kappa)))


def _counts(rng: np.random.Generator, kappa: np.ndarray, ref: float, b: float, tau: float) -> np.ndarray:
    """Lognormal-Poisson counts around :func:`_level`."""
    return rng.poisson(_level(rng, kappa, ref, b, tau)).astype(float)


# ---------------------------------------------------------------------------------------------
# the generator
# ---------------------------------------------------------------------------------------------

def generate_ai_cities(seed: int = DEFAULT_SEED) -> pl.DataFrame:
    """Generate the SYNTHETIC ai-city-2024 table (337 rows, deterministic in ``seed``).

    Columns: ``admin_code_6`` (string), ``name_zh``, ``name_en`` (CCSY spelling, null for the 40
    divisions outside the yearbook), ``province_name_zh``, the 31 :data:`COMPONENT_COLUMNS`
    (Int64 counts; Float64 amounts and indices rounded to :data:`DECIMALS`) and ``synthetic``.
    """
    rng = np.random.default_rng(seed)
    pref = load_prefectures()
    cov = load_covariates(pref)
    codes = pref["admin_code_6"].to_list()
    row = {code: k for k, code in enumerate(codes)}
    n = len(codes)
    kappa = ai_capacity(cov, rng)
    hei = cov["hei_students"].to_numpy()
    gdp = cov["gdp_100m_yuan"].to_numpy()
    out: dict[str, np.ndarray] = {}

    def col(values, integer=True) -> _Column:
        return _Column(values, row, integer)

    # -- policy: 4 categories of AI policy documents, 1999 - Jan 2024 -------------------------
    # The report ranks the weighted total Shanghai, Beijing, Chongqing and each category's top 3:
    # 1 Shanghai, Beijing, Hangzhou; 2 Chongqing, Beijing, Zibo; 3 Shanghai, Chengdu, Jiaxing;
    # 4 Guangzhou, Shanghai, Beijing; most cities single digits to 100 in category 1.  The values
    # of the named cities are chosen (not published); Chongqing's four counts are chosen so that
    # its weighted total (304.5) beats any city whose counts stay below the category leaders.
    cat1 = col(_counts(rng, kappa, 900, 1.0, 0.45)).set({SHANGHAI: 1260, BEIJING: 840, HANGZHOU: 610,
                                                         CHONGQING: 600})
    out["policy_cat1_guiding_count"] = cat1.below(600).values()
    cat2 = col(_counts(rng, kappa, 42, 0.8, 0.5)).set({CHONGQING: 58, BEIJING: 44, ZIBO: 31})
    out["policy_cat2_outline_count"] = cat2.below(31).values()
    cat3 = col(_counts(rng, kappa, 150, 0.9, 0.5)).set({SHANGHAI: 188, CHENGDU: 141, JIAXING: 104,
                                                        CHONGQING: 103})
    out["policy_cat3_rules_count"] = cat3.below(103).values()
    cat4 = col(_counts(rng, kappa, 250, 0.9, 0.5)).set({GUANGZHOU: 312, SHANGHAI: 287, BEIJING: 266,
                                                        CHONGQING: 265})
    out["policy_cat4_opinions_count"] = cat4.below(265).values()

    # -- AI parks by AI-firm coverage band ----------------------------------------------------
    # Report: Shenzhen 1st, Shanghai 2nd, Beijing 3rd with a weighted count of 16; Chengdu 3
    # (tied 10th); most parks below 10 % coverage.  Beijing's and Chengdu's band counts are
    # chosen to give exactly 16 and 3; Shenzhen's and Shanghai's to lead.
    total_parks = _counts(rng, kappa, 150, 1.2, 0.4)
    shares = rng.dirichlet(8.0 * np.array([0.07, 0.18, 0.21, 0.54]), size=n)
    bands = np.array([rng.multinomial(int(t), s) for t, s in zip(total_parks, shares, strict=True)], float)
    fixed_parks = {SHENZHEN: (12, 26, 30, 70), SHANGHAI: (10, 24, 28, 64), BEIJING: (8, 20, 24, 60),
                   CHENGDU: (2, 4, 3, 9)}
    free = np.ones(n, bool)
    for code, counts in fixed_parks.items():
        bands[row[code]] = counts
        free[row[code]] = False
    weighted = bands @ PARK_WEIGHTS
    squashed = col(weighted, integer=False)
    squashed.fixed = ~free
    target = squashed.below(16.0).v
    shrink = free & (weighted > target)
    bands[shrink] = np.floor(bands[shrink] * (target[shrink] / weighted[shrink])[:, None])
    for k, name in enumerate(("ai_parks_coverage_over10_count", "ai_parks_coverage_5to10_count",
                              "ai_parks_coverage_3to5_count", "ai_parks_coverage_under3_count")):
        out[name] = bands[:, k]

    # -- AI first-class universities: 84 cities have one; Beijing 14, Xi'an 11, Chengdu and
    # Wuhan 10 (published); Shanghai tied 6th (8 chosen; one other city gets 9, the rest <= 8).
    unis = np.zeros(n)
    anchors = {BEIJING: 14, XIAN: 11, CHENGDU: 10, WUHAN: 10, SHANGHAI: 8}
    score = np.log(hei) + 0.5 * rng.standard_normal(n)
    lam = 4.0 * (hei / np.quantile(hei, 0.99)) ** 1.2
    extra = rng.poisson(lam).astype(float)
    candidates = np.array([k for k in np.argsort(-score, kind="stable") if codes[k] not in anchors])
    chosen = candidates[: 84 - len(anchors)]
    unis[chosen] = 1.0 + np.minimum(extra[chosen], 7.0)
    unis[chosen[np.argmax(lam[chosen])]] = 9.0
    out["ai_first_class_universities"] = col(unis).set(anchors).values()

    # -- national new-generation AI open innovation platforms: 23 cities; Beijing and Chengdu 2,
    # Shanghai none (published); 21 others drawn with probability ~ capacity.
    platforms = np.zeros(n)
    pool = np.array([k for k in range(n) if codes[k] not in (BEIJING, CHENGDU, SHANGHAI)])
    p = np.exp(1.5 * kappa[pool])
    picked = rng.choice(pool, size=21, replace=False, p=p / p.sum())
    platforms[picked] = 1.0
    out["ai_open_innovation_platforms"] = col(platforms).set({BEIJING: 2, CHENGDU: 2}).values()

    # -- AI firms by layer (Jan 2024) -----------------------------------------------------------
    # Total ~ capacity; split into base/technology/application layers by Dirichlet shares.
    # Published: Beijing 13,067 firms and 961 technology-layer firms; Shenzhen 8,546 base-layer
    # (35.8 % of its firms, hence 23,871 in all) and 14,018 application-layer firms; three cities
    # above 10,000 (Shenzhen, Beijing, Shanghai); base layer: Shenzhen 1st, Xi'an 2nd, top 5 all
    # above 5,000; Xi'an 13th in the technology and 15th in the application layer.
    # Only three cities have more than 10,000 AI firms: the other totals are squashed below 10,000.
    firms = col(_counts(rng, kappa, 20000, 1.2, 0.45)).set({SHENZHEN: 23871, BEIJING: 13067, SHANGHAI: 11442})
    firms = firms.below(10000).values()
    layer_shares = rng.dirichlet(12.0 * np.array([0.40, 0.08, 0.52]), size=n)
    layers = np.array([rng.multinomial(int(t), s) for t, s in zip(firms, layer_shares, strict=True)], float)
    base = col(layers[:, 0]).set({SHENZHEN: 8546, XIAN: 6480, BEIJING: 5300, SHANGHAI: 5120}).below(5120)
    fifth = np.flatnonzero(~base.fixed)[np.argmax(base.v[~base.fixed])]
    base.v[fifth] = max(base.v[fifth], 5040.0)  # the report: the top 5 all have more than 5,000
    tech = col(layers[:, 1]).set({SHENZHEN: 1307, BEIJING: 961, SHANGHAI: 742}).below(742).place({XIAN: 13})
    app = col(layers[:, 2]).set({SHENZHEN: 14018, BEIJING: 6806, SHANGHAI: 5580}).below(5580).place({XIAN: 15})
    out["ai_firms_base_layer"] = base.values()
    out["ai_firms_technology_layer"] = tech.values()
    out["ai_firms_application_layer"] = app.values()
    total = out["ai_firms_base_layer"] + out["ai_firms_technology_layer"] + out["ai_firms_application_layer"]
    out["ai_firms_total"] = total
    # New firms in 2023: Xi'an 3,260 (1st), Xianyang 2nd, Shenzhen 3rd, Guangzhou 4th, all > 1,000.
    growth = np.exp(np.log(0.09) + 0.35 * rng.standard_normal(n))
    new = col(np.minimum(rng.poisson(total * growth), total)).set(
        {XIAN: 3260, XIANYANG: 1412, SHENZHEN: 1288, GUANGZHOU: 1107}).below(1107)
    out["ai_firms_new_2023"] = new.values()
    # A city cannot gain more firms in a year than it has: where a named city's new firms exceed
    # half of its total, its application layer is raised so that the total is twice the new firms.
    short = out["ai_firms_new_2023"] * 2 - total
    for code in (XIAN, XIANYANG, SHENZHEN, GUANGZHOU):
        if short[row[code]] > 0:
            out["ai_firms_application_layer"][row[code]] += short[row[code]]
            total[row[code]] += short[row[code]]

    # -- innovation vitality --------------------------------------------------------------------
    # The report: Xi'an's scale is not matched by depth - 4th in enterprise scale but outside the
    # top 10 in innovation vitality, and absent from the top 10 of benefit output.  Its capacity
    # for the quality indicators (innovation, patents, economic performance, financing) is lowered
    # by XIAN_QUALITY_GAP; `quality` is kappa elsewhere.
    quality = kappa.copy()
    quality[row[XIAN]] -= XIAN_QUALITY_GAP
    q = np.exp(quality - kappa)  # multiplies the per-firm rates (1 except for Xi'an)
    # Listed AI companies: Beijing 481 (16.36 % of ~2,940; published), Shenzhen 2nd, Shanghai 3rd.
    listed = col(_counts(rng, quality, 330, 1.3, 0.45)).set({BEIJING: 481, SHENZHEN: 326, SHANGHAI: 271})
    out["ai_listed_firms"] = np.minimum(listed.below(271).values(), total)
    # High-tech AI enterprises: Beijing, Shenzhen, Shanghai lead; 300 cities have some.
    rate = np.exp(np.log(0.16) + 0.4 * rng.standard_normal(n))
    hightech = col(np.minimum(rng.poisson(total * rate * q + 0.6), total))
    out["ai_hightech_firms"] = hightech.set({BEIJING: 2650, SHENZHEN: 2380, SHANGHAI: 1960}).below(1960).values()
    # Unicorns: Beijing 58, Shanghai 41, Shenzhen 22 (published; 47.83 % of ~207 in Beijing+Shanghai).
    unicorns = col(_counts(rng, quality, 22, 1.3, 0.5)).set({BEIJING: 58, SHANGHAI: 41, SHENZHEN: 22})
    out["ai_unicorns"] = unicorns.below(22).values()
    # A-share AI companies in the R&D top 500: Beijing 81, then Shenzhen (81 - 19) and Shanghai
    # (81 - 25), published; a city cannot have more than its listed AI companies.
    top500 = col(_counts(rng, quality, 58, 1.3, 0.45)).set({BEIJING: 81, SHENZHEN: 62, SHANGHAI: 56})
    out["ai_rd_top500_firms"] = np.minimum(top500.below(56).values(), out["ai_listed_firms"])

    # -- patents --------------------------------------------------------------------------------
    # Beijing leads valid invention patents and citations, Shenzhen leads PCT (134,300),
    # Beijing > 100,000 PCT, Shanghai 60,700; Shenzhen > 40,000 valid patents; Beijing more than
    # twice Shanghai on all three; citations Beijing 17,200 (published where a number is given).
    patents_cov = cov["invention_patents_granted"].to_numpy()
    tilt = (np.log(patents_cov) - np.log(patents_cov[row[BEIJING]])) * 0.4
    valid = col(_counts(rng, quality + tilt, 70000, 1.2, 0.45)).set(
        {BEIJING: 95200, SHENZHEN: 41650, SHANGHAI: 38100})
    out["ai_valid_invention_patents"] = valid.below(38100).values()
    pct = col(_counts(rng, quality + tilt, 90000, 1.2, 0.5)).set(
        {SHENZHEN: 134300, BEIJING: 124500, SHANGHAI: 60700})
    out["ai_pct_applications"] = pct.below(60700).values()
    cites = col(_counts(rng, quality + tilt, 12000, 1.3, 0.55)).set({BEIJING: 17200, SHENZHEN: 8420, SHANGHAI: 7630})
    out["ai_patent_citations"] = cites.below(7630).values()

    # -- economic performance -------------------------------------------------------------------
    # Registered capital (100 M yuan): Beijing 115,463 = 37 % of the national total (published);
    # Shanghai 2nd, Shenzhen 3rd, Guangzhou 4th; about 60 % of cities below 100.
    capital = col(total * q * np.exp(np.log(0.8) + 0.6 * rng.standard_normal(n)), integer=False)
    capital.set({BEIJING: 115463, SHANGHAI: 38520, SHENZHEN: 24870}).below(24870).place({GUANGZHOU: 4})
    out["ai_registered_capital_100m_yuan"] = capital.values()
    # Firms with revenue above 100 M yuan: Shenzhen 2,907 (published), far ahead of Beijing and
    # Shanghai; 11 cities have 300 or more.
    revenue = col(np.minimum(rng.poisson(total * q * np.exp(np.log(0.07) + 0.4 * rng.standard_normal(n))), total))
    out["ai_firms_revenue_over_100m"] = revenue.set({SHENZHEN: 2907, BEIJING: 1480, SHANGHAI: 1265}).below(
        1265).values()
    # Market capitalisation of listed AI companies (100 M yuan): Beijing 17.73 trillion yuan,
    # 3x Shenzhen, 4x Shanghai, ~14x Hangzhou (4th) - published ratios; zero without listed firms.
    per_firm = np.exp(np.log(95.0) + 0.8 * rng.standard_normal(n))
    cap = col(out["ai_listed_firms"] * per_firm, integer=False)
    cap.set({BEIJING: 177300, SHENZHEN: 59100, SHANGHAI: 44325, HANGZHOU: 12664}).below(12664)
    out["ai_listed_market_cap_100m_yuan"] = cap.values()

    # -- financing ------------------------------------------------------------------------------
    # Events: Beijing 1st, Shanghai 2,931, Shenzhen 2,882, Hangzhou 1,561 (published; the top 4
    # "fairly fixed").  Amount (100 M yuan): Beijing 7,060 (25 % of the total), Shanghai 4,388
    # (published), Shenzhen 3rd; the top 3 hold more than half.
    events = col(_counts(rng, quality, 3000, 1.2, 0.5)).set(
        {BEIJING: 4860, SHANGHAI: 2931, SHENZHEN: 2882, HANGZHOU: 1561}).below(1561)
    out["ai_financing_events"] = events.values()
    per_event = np.exp(np.log(0.45) + 0.7 * rng.standard_normal(n))
    amount = col(out["ai_financing_events"] * per_event, integer=False)
    out["ai_financing_amount_100m_yuan"] = amount.set({BEIJING: 7060, SHANGHAI: 4388, SHENZHEN: 3045}).below(
        3045).values()

    # -- talent ---------------------------------------------------------------------------------
    # R&D staff of listed AI companies (2022): Shenzhen 318,800, Beijing 267,900 (published;
    # together 41.38 % of the total), Shanghai 40 % of Shenzhen; zero without listed companies.
    staff_per_firm = np.exp(np.log(260.0) + 0.6 * rng.standard_normal(n))
    staff = col(out["ai_listed_firms"] * staff_per_firm).set({SHENZHEN: 318800, BEIJING: 267900, SHANGHAI: 127520})
    out["ai_listed_rd_staff"] = staff.below(127520).values()
    # Insured AI workers (Dec 2022): Beijing 5.692 M (published), Shanghai 2nd and Xi'an 3rd, both
    # above 1 M; Shenzhen 7th.
    insured = col(_counts(rng, kappa, 0.9e6, 1.3, 0.5)).set({BEIJING: 5692000, SHANGHAI: 1863000, XIAN: 1241000})
    out["ai_insured_workers"] = insured.below(1000000).place({SHENZHEN: 7}).values()

    # -- public participation (JD.com, 2023) ----------------------------------------------------
    # Preference index (smart products' share of local spending): Chaozhou 3,459 (published)
    # first, Jinan and Dali next; small differences elsewhere.  Purchasing-power index (share of
    # national smart-product spending): Beijing 10,194 (published), Shanghai, Shenzhen next.
    pref_index = col(np.exp(np.log(1150.0) + 0.12 * kappa + 0.22 * rng.standard_normal(n)), integer=False)
    pref_index.set({CHAOZHOU: 3459}).below(2600).place({JINAN: 2, DALI: 3})
    out["jd_smart_preference_index"] = pref_index.values()
    spend = gdp * out["jd_smart_preference_index"] * np.exp(0.5 * kappa + 0.3 * rng.standard_normal(n))
    purchasing = col(10194.0 * spend / spend[row[BEIJING]], integer=False)
    purchasing.set({BEIJING: 10194, SHANGHAI: 8655, SHENZHEN: 6120}).below(6120)
    out["jd_smart_purchasing_index"] = purchasing.values()

    columns: list[pl.Series] = [
        pref["admin_code_6"], pref["name_zh"],
        pref["name_en_ccsy2024"].cast(pl.String).alias("name_en"), pref["province_name_zh"],
    ]
    for name in COMPONENT_COLUMNS:
        values = out[name]
        if name in FLOAT_COLUMNS:
            columns.append(pl.Series(name, np.round(values.astype(float), DECIMALS), pl.Float64))
        else:
            columns.append(pl.Series(name, np.round(values).astype(np.int64), pl.Int64))
    columns.append(pl.Series("synthetic", [True] * n, pl.Boolean))
    return pl.DataFrame(columns)


def read_ai_cities(path: str | Path = OUTPUT_FILE) -> pl.DataFrame:
    """Read the shipped table with the generator's dtypes (codes as strings)."""
    dtypes = {"admin_code_6": pl.String, "name_zh": pl.String, "name_en": pl.String,
              "province_name_zh": pl.String, "synthetic": pl.Boolean}
    dtypes.update({c: pl.Float64 if c in FLOAT_COLUMNS else pl.Int64 for c in COMPONENT_COLUMNS})
    return pl.read_csv(path, schema_overrides=dtypes)


def write_ai_cities(path: str | Path = OUTPUT_FILE, seed: int = DEFAULT_SEED) -> Path:
    """Generate with ``seed`` and write the CSV (UTF-8, no BOM)."""
    path = Path(path)
    generate_ai_cities(seed).write_csv(path)
    return path
