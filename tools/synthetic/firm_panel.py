"""SYNTHETIC two-edition firm panel (2022, 2023) for the paired record bootstrap of a rank change.

No record-level panel of AI firms is public.  :func:`generate_ai_firm_panel` makes one from the
synthetic firm table :func:`tools.synthetic.firms.generate_ai_firms` (edition 2023, unchanged) by
inventing the year before:

- most firms persist (the same ``firm_id`` in both editions); in every city a share of the 2023
  firms entered that year (absent in 2022), more in the cities that grew more; about 5 % of the
  2022 firms left (only in 2022: ids after the 2023 ones, modelled on a 2023 firm of the same city);
- a 2022 firm's values are its 2023 values shrunk by its city's growth ``g`` (one draw per city,
  ``N(0.15, 0.25)``) and a firm-level noise: valuation × ``exp(−g + 0.25 ε)``, patents × ``U(0.7, 1)``
  (patents accumulate), financing events, technology-enabling and investment relations Poisson
  with means × ``exp(−g)``, financing amount = events × the firm's 2023 amount per event (× noise);
  5 % of the listed firms were not listed yet.

Everything is drawn from ``numpy.random.default_rng([seed, 2022])`` after the 2023 table of
``generate_ai_firms(seed)``, so a seed fixes both editions.  The numbers are illustrations, not data.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .firms import FLOAT_DECIMALS, generate_ai_firms
from .provinces import firm_indicators

__all__ = ["EDITIONS", "generate_ai_firm_panel", "firm_panel_indicators"]

#: The two editions: the invented year before, and the synthetic firm table's own year.
EDITIONS = (2022, 2023)
#: Share of the 2022 firms that left before 2023.
LEFT_SHARE = 0.05


def _year_before(rng: np.random.Generator, firms: pl.DataFrame, growth: np.ndarray) -> dict[str, np.ndarray]:
    """2022 values of ``firms`` (2023 rows) whose cities grew by ``growth`` (one value per row)."""
    n = firms.height
    events = firms["financing_events"].to_numpy()
    amount = firms["financing_amount_100m_yuan"].to_numpy()
    per_event = np.where(events > 0, amount / np.maximum(events, 1), 1.0) * np.exp(0.3 * rng.standard_normal(n))
    shrink = np.exp(-growth)
    events_before = rng.poisson(events * shrink + 0.05).astype(np.int64)
    return {
        "listed": firms["listed"].to_numpy() & (rng.random(n) > 0.05),
        "patents": np.floor(firms["patents"].to_numpy() * rng.uniform(0.7, 1.0, n)).astype(np.int64),
        "valuation_100m_yuan": np.round(np.maximum(firms["valuation_100m_yuan"].to_numpy() * shrink
                                                   * np.exp(0.25 * rng.standard_normal(n)), 0.1),
                                        FLOAT_DECIMALS["valuation_100m_yuan"]),
        "financing_events": events_before,
        "financing_amount_100m_yuan": np.round(events_before * per_event, FLOAT_DECIMALS["financing_amount_100m_yuan"]),
        "tech_cooperation": rng.poisson(firms["tech_cooperation"].to_numpy() * shrink).astype(np.int64),
        "investment_relations": rng.poisson(firms["investment_relations"].to_numpy() * shrink).astype(np.int64),
    }


def generate_ai_firm_panel(seed: int = 2024) -> pl.DataFrame:
    """A SYNTHETIC record-level panel: the firms of editions 2022 and 2023, one row per firm and year.

    Columns: ``firm_id``, ``year`` (2022 or 2023), then the columns of
    :func:`tools.synthetic.firms.generate_ai_firms`.  Edition 2023 is ``generate_ai_firms(seed)``
    row for row; edition 2022 is invented as the module docstring says.  Rows are sorted by year,
    then firm id.
    """
    current = generate_ai_firms(seed)
    rng = np.random.default_rng([seed, EDITIONS[0]])
    cities = sorted(set(current["city"].to_list()))
    city_growth = dict(zip(cities, rng.normal(0.15, 0.25, len(cities)), strict=True))
    growth = np.array([city_growth[c] for c in current["city"].to_list()])
    entered = rng.random(current.height) < np.clip(0.04 + 0.3 * np.maximum(growth, 0.0), 0.0, 0.4)
    persisting = current.filter(pl.Series(~entered))
    n_left = round(LEFT_SHARE * persisting.height / (1 - LEFT_SHARE))
    template = current[np.sort(rng.choice(current.height, n_left, replace=False)).tolist()]
    left = template.with_columns(pl.Series("firm_id", [f"AI{current.height + k:04d}" for k in range(1, n_left + 1)]))
    before = pl.concat([persisting, left])
    before_growth = np.array([city_growth[c] for c in before["city"].to_list()])
    before = before.with_columns(pl.Series(name, values, dtype=before.schema[name])
                                 for name, values in _year_before(rng, before, before_growth).items())
    editions = [table.with_columns(pl.lit(year, pl.Int64).alias("year")).select("firm_id", "year", *current.columns[1:])
                for year, table in zip(EDITIONS, (before, current), strict=True)]
    return pl.concat(editions).sort("year", "firm_id")


def firm_panel_indicators(panel: pl.DataFrame) -> pl.DataFrame:
    """The eight firm-derived city indicators of ``ai-firms-2023`` per city and year of a firm panel
    (:func:`tools.synthetic.provinces.firm_indicators` of each edition): columns ``city``,
    ``province``, ``year``, then the indicators; rows by year, then as ``firm_indicators`` sorts them."""
    return pl.concat([firm_indicators(panel.filter(pl.col("year") == year).drop("year"), "city")
                      .with_columns(pl.lit(year, pl.Int64).alias("year")).select("city", "province", "year",
                                                                                  pl.exclude("city", "province",
                                                                                             "year"))
                      for year in sorted(set(panel["year"].to_list()))])
