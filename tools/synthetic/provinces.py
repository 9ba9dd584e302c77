"""SYNTHETIC province table for the ``regional-ai-2023`` framework (seed 001's 24 indicators).

Eight indicators are computed from the synthetic firm table (:mod:`tools.synthetic.firms`) with
Polars group-bys (:func:`firm_indicators`); the other sixteen (AI universities and non-university
institutes with their papers and patents, international study/work experience, international
technology relations, conferences, alliances, parks, policies) are drawn here: heavy-tailed and
correlated with the province's firm count.  Count indicators are allocated exactly (largest
remainder) from the 2023 sample sizes of seed 001 table 1 (438 AI universities, 307 institutes,
967 alliances, 2,318 conferences, 775 policies, 3,507 parks).  None of it is data.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .firms import ECONOMIC_CIRCLES, PROVINCE_EN, PROVINCES, generate_ai_firms, largest_remainder

__all__ = [
    "FIRM_INDICATORS",
    "SAMPLE_TOTALS",
    "economic_circle",
    "firm_indicators",
    "generate_regional_ai_provinces",
]

#: The firm-derived indicator columns of regional-ai-2023, in framework order.
FIRM_INDICATORS: tuple[str, ...] = (
    "firm_count",
    "firm_mean_valuation_100m_yuan",
    "firm_mean_patents",
    "base_tech_firm_count",
    "tech_enabling_relations",
    "financing_relations",
    "financing_amount_100m_yuan",
    "investment_relations",
)

#: 2023 sample sizes of seed 001 table 1, used as the national totals of the count indicators.
SAMPLE_TOTALS = {
    "ai_university_count": 438,
    "institute_count": 307,
    "industry_alliance_count": 967,
    "conference_count": 2318,
    "policy_count": 775,
    "industrial_park_count": 3507,
}

#: Decimal places of the float columns of the province table (so that the CSV round-trips).
_DECIMALS = 4


def economic_circle(province: str) -> str | None:
    """The seed-001 economic circle (长三角, 京津冀, 珠三角, 川渝) of a province, or None."""
    for circle, members in ECONOMIC_CIRCLES.items():
        if province in members:
            return circle
    return None


def firm_indicators(firms: pl.DataFrame, by: str = "province") -> pl.DataFrame:
    """The firm-derived indicators of regional-ai-2023 per ``by`` (``"province"`` or ``"city"``).

    Columns: ``by`` (and ``province`` when ``by="city"``), ``firm_count`` (firms),
    ``firm_mean_valuation_100m_yuan`` (mean valuation/market value, 亿元), ``firm_mean_patents``,
    ``base_tech_firm_count`` (base- and technology-layer firms), ``tech_enabling_relations`` (Σ
    technology-enabling relations), ``financing_relations`` (Σ financing events),
    ``financing_amount_100m_yuan`` (Σ financing, 亿元), ``investment_relations`` (Σ).  Rows are
    sorted by firm count (descending), then name.  Units without firms do not appear.
    """
    if by not in ("province", "city"):
        raise ValueError(f"by must be 'province' or 'city', not {by!r}")
    keys = ["province", "city"] if by == "city" else ["province"]
    table = firms.group_by(keys).agg(
        pl.len().cast(pl.Int64).alias("firm_count"),
        pl.col("valuation_100m_yuan").mean().alias("firm_mean_valuation_100m_yuan"),
        pl.col("patents").mean().alias("firm_mean_patents"),
        pl.col("layer").is_in(["base", "technology"]).sum().cast(pl.Int64).alias("base_tech_firm_count"),
        pl.col("tech_cooperation").sum().cast(pl.Int64).alias("tech_enabling_relations"),
        pl.col("financing_events").sum().cast(pl.Int64).alias("financing_relations"),
        pl.col("financing_amount_100m_yuan").sum().alias("financing_amount_100m_yuan"),
        pl.col("investment_relations").sum().cast(pl.Int64).alias("investment_relations"),
    )
    front = [by, *(["province"] if by == "city" else [])]
    return (table.select(*front, *FIRM_INDICATORS)
            .sort(["firm_count", by], descending=[True, False]))


def _allocate(rng: np.random.Generator, size: np.ndarray, total: int, slope: float, noise: float,
              minimum: int = 0) -> np.ndarray:
    """Exact counts summing to ``total`` with weights exp(slope·size + noise·ε)."""
    weights = np.exp(slope * size + noise * rng.standard_normal(size.shape))
    counts = largest_remainder(weights, total - minimum * len(size)) + minimum
    return counts.astype(np.int64)


def _lognormal(rng: np.random.Generator, size: np.ndarray, median: float, slope: float, noise: float
               ) -> np.ndarray:
    return median * np.exp(slope * size + noise * rng.standard_normal(size.shape))


def generate_regional_ai_provinces(seed: int = 2024) -> pl.DataFrame:
    """SYNTHETIC values of all 24 regional-ai-2023 indicators for the 31 provinces.

    The firm-derived indicators are :func:`firm_indicators` of ``generate_ai_firms(seed)``; the
    others are drawn from ``numpy.random.default_rng([seed, 1])``.  Columns: ``province``
    (official Chinese name, unit id), ``province_en``, ``economic_circle`` (长三角/京津冀/珠三角/川渝
    or null), then the indicator columns in framework order.  Floats are rounded to 4 decimals.
    """
    firms = generate_ai_firms(seed)
    base = pl.DataFrame({
        "province": list(PROVINCES),
        "province_en": [PROVINCE_EN[p] for p in PROVINCES],
        "economic_circle": [economic_circle(p) for p in PROVINCES],
    }, schema={"province": pl.String, "province_en": pl.String, "economic_circle": pl.String})
    table = base.join(firm_indicators(firms, "province"), on="province", how="left", maintain_order="left")
    if table["firm_count"].null_count():
        raise ValueError("every province needs at least one firm")

    rng = np.random.default_rng([seed, 1])
    firm_count = table["firm_count"].to_numpy().astype(float)
    log_count = np.log(firm_count)
    size = (log_count - log_count.mean()) / log_count.std()  # standardised log firm count
    enabling = table["tech_enabling_relations"].to_numpy().astype(float)

    universities = _allocate(rng, size, SAMPLE_TOTALS["ai_university_count"], 0.6, 0.4, minimum=1)
    institutes = _allocate(rng, size, SAMPLE_TOTALS["institute_count"], 1.1, 0.6)
    has_institute = institutes > 0
    columns = {
        "ai_university_count": universities,
        "university_mean_domestic_papers": _lognormal(rng, size, 60.0, 0.30, 0.30),
        "university_mean_international_papers": _lognormal(rng, size, 45.0, 0.40, 0.35),
        "university_mean_patents": _lognormal(rng, size, 30.0, 0.35, 0.40),
        "institute_count": institutes,
        # a province without institutes has no papers or patents from them (0, as the report's
        # totals over an empty sample), not a missing value
        "institute_mean_domestic_papers": np.where(has_institute, _lognormal(rng, size, 40.0, 0.3, 0.5), 0.0),
        "institute_mean_international_papers": np.where(has_institute, _lognormal(rng, size, 35.0, 0.4, 0.5), 0.0),
        "institute_mean_patents": np.where(has_institute, _lognormal(rng, size, 25.0, 0.4, 0.6), 0.0),
        # founders and core staff with earlier study/work abroad; international technology relations
        "international_study_experience": rng.poisson(firm_count * _lognormal(rng, size, 0.30, 0.25, 0.30)),
        "international_work_experience": rng.poisson(firm_count * _lognormal(rng, size, 0.20, 0.30, 0.30)),
        "international_tech_input_relations": rng.poisson(firm_count ** 1.15 * _lognormal(rng, size, 0.10, 0.0, 0.5)),
        "international_tech_enabling_relations": rng.poisson(enabling * _lognormal(rng, size, 0.02, 0.0, 0.5)),
        "conference_count": _allocate(rng, size, SAMPLE_TOTALS["conference_count"], 0.9, 0.5),
        "industry_alliance_count": _allocate(rng, size, SAMPLE_TOTALS["industry_alliance_count"], 0.7, 0.5),
        "industrial_park_count": _allocate(rng, size, SAMPLE_TOTALS["industrial_park_count"], 0.6, 0.5),
        "policy_count": _allocate(rng, size, SAMPLE_TOTALS["policy_count"], 0.3, 0.5),
    }
    extra = pl.DataFrame({
        name: (pl.Series(name, np.round(values, _DECIMALS)) if values.dtype.kind == "f"
               else pl.Series(name, values.astype(np.int64)))
        for name, values in columns.items()
    })
    table = pl.concat([table, extra], how="horizontal").with_columns(
        pl.col(pl.Float64).round(_DECIMALS),
    )
    return table.select(
        "province", "province_en", "economic_circle",
        "firm_count", "firm_mean_valuation_100m_yuan", "firm_mean_patents", "base_tech_firm_count",
        "tech_enabling_relations",
        "ai_university_count", "university_mean_domestic_papers", "university_mean_international_papers",
        "university_mean_patents", "institute_count", "institute_mean_domestic_papers",
        "institute_mean_international_papers", "institute_mean_patents",
        "financing_relations", "financing_amount_100m_yuan", "investment_relations",
        "international_study_experience", "international_work_experience",
        "international_tech_input_relations", "international_tech_enabling_relations",
        "conference_count", "industry_alliance_count", "industrial_park_count", "policy_count",
    )
