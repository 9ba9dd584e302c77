"""A report of the demo framework (real Chinese city names) with every analysis, built once."""

from __future__ import annotations

import polars as pl
import pytest

import engine
from engine.report import build

FRAMEWORK = "china-city-innovation-2023"


@pytest.fixture(scope="session")
def analyses(tmp_path_factory) -> dict:
    """Small runs of the three analyses, as result objects and as written folders."""
    root = tmp_path_factory.mktemp("analyses")
    runs = {"uncertainty": engine.uncertainty(FRAMEWORK, replicates=1024, seed=7),
            "sensitivity": engine.sensitivity(FRAMEWORK, base_samples=32, n_boot=20, seed=7),
            "bootstrap": engine.bootstrap(FRAMEWORK, mode="units", replicates=256, seed=7)}
    folders = {kind: run.write(root / kind) for kind, run in runs.items()}
    return {"runs": runs, "folders": folders}


@pytest.fixture(scope="session")
def demo_report(analyses, tmp_path_factory):
    """(Report, path of its HTML file)."""
    fw = engine.load_framework(FRAMEWORK)
    data = engine.load_data("ccsy2024_cities", framework=fw).table
    previous = data.with_columns(pl.col("patents_granted") * (0.8 + 0.4 * (pl.int_range(pl.len()) % 7) / 6))
    report = build(FRAMEWORK, previous=previous, **analyses["runs"])
    return report, report.write(tmp_path_factory.mktemp("report") / "report.html")


def large_table(n_units: int, seed: int = 1) -> pl.DataFrame:
    """SYNTHETIC data of ``n_units`` cities for the demo framework: rows of the yearbook data drawn
    with replacement, every count and amount times the city's log-normal size (sd 0.3) and a log-normal
    noise (sd 0.1), new codes and names."""
    import numpy as np

    fw = engine.load_framework(FRAMEWORK)
    table = engine.load_data("ccsy2024_cities", framework=fw).table
    rng = np.random.default_rng(seed)
    rows = table[rng.integers(0, table.height, n_units)]
    numeric = [c for c, t in rows.schema.items() if t.is_float() and not c.endswith("_pct")]
    size = np.exp(rng.normal(0.0, 0.3, n_units))  # one size per city, so that shares stay plausible
    factors = {c: pl.Series(size * np.exp(rng.normal(0.0, 0.1, n_units))) for c in numeric}
    return rows.with_columns(
        *[pl.col(c) * factors[c] for c in numeric],
        admin_code_6=pl.int_range(100_000, 100_000 + n_units, dtype=pl.Int64),
        city_zh=pl.format("{}{}", pl.col("city_zh"), pl.int_range(n_units).cast(pl.String)))
