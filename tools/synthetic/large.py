"""A large SYNTHETIC table for scaling runs: ``n`` units with the columns of ``ai_cities_synthetic``.

Each unit copies a random row of the shipped 337-city table and multiplies every numeric column by
log-normal noise (sd 0.3 on the log scale), so that ``ai-city-2024`` (25 indicators, with
denominators and components) scores it unchanged; unit ids ``u0000001`` …, labels ``unit 1`` ….
Vectorised (NumPy/Polars, no loop over units)::

    python -m tools.synthetic.large 1000000 /tmp/large.parquet
    cityrank score -f ai-city-2024 -d /tmp/large.parquet -o /tmp/large_scores.parquet
"""

from __future__ import annotations

import sys

import numpy as np
import polars as pl

from engine.resources import DATASET_DIR


def generate_large(n: int, seed: int = 2024) -> pl.DataFrame:
    """``n`` synthetic units (see the module notes)."""
    base = pl.read_csv(DATASET_DIR / "ai_cities_synthetic.csv", infer_schema_length=None)
    rng = np.random.default_rng(seed)
    rows = base[rng.integers(0, base.height, n)]
    numeric = [c for c, t in rows.schema.items() if t.is_numeric() and c != "admin_code_6"]
    noise = {c: rows[c].cast(pl.Float64) * np.exp(rng.normal(0.0, 0.3, n)) for c in numeric}
    width = len(str(n))
    ids = pl.Series("admin_code_6", np.arange(1, n + 1)).cast(pl.String).str.zfill(width)
    return rows.with_columns(("u" + ids).alias("admin_code_6"),
                             ("unit " + pl.Series(np.arange(1, n + 1)).cast(pl.String)).alias("name_zh"),
                             *[s.alias(c) for c, s in noise.items()])


if __name__ == "__main__":
    size, target = int(sys.argv[1]), sys.argv[2]
    generate_large(size).write_parquet(target)
    print(f"wrote {size:,} units to {target}")
