"""Small problems for the analysis tests (seeded, built at fixture time, not import time)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from engine.schema import framework_from_dict


def city_framework(n_indicators: int = 6, **extra) -> dict:
    """Index -> 2 dimensions -> 3 sub-dimensions -> indicators x0.. (a miniature city index)."""
    nodes = [{"id": "Index", "labels": {"en": "Index"}},
             {"id": "D1", "parent": "Index", "labels": {"en": "D1"}},
             {"id": "D2", "parent": "Index", "labels": {"en": "D2"}, "weight": 2},
             {"id": "S1", "parent": "D1", "labels": {"en": "S1"}},
             {"id": "S2", "parent": "D1", "labels": {"en": "S2"}},
             {"id": "S3", "parent": "D2", "labels": {"en": "S3"}}]
    parents = ["S1", "S2", "S3"]
    for j in range(n_indicators):
        nodes.append({"id": f"x{j}", "parent": parents[j % 3], "labels": {"en": f"x{j}"}, "column": f"x{j}"})
    return {"id": "mini", "labels": {"en": "Mini"}, "data": {"unit": "unit"}, "nodes": nodes, **extra}


def city_data(n_units: int = 40, n_indicators: int = 6, seed: int = 3, missing: float = 0.0,
              ties: bool = False) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.lognormal(0.0, 1.0, (n_units, n_indicators))
    if ties:
        values[1] = values[0]  # two identical units tie in every replicate
        values[:, 2] = np.round(values[:, 2])
    if missing:
        values[rng.random(values.shape) < missing] = np.nan
    return pl.DataFrame({"unit": [f"c{i:03d}" for i in range(n_units)],
                         **{f"x{j}": values[:, j] for j in range(n_indicators)}})


@pytest.fixture
def mini():
    return framework_from_dict(city_framework()), city_data()


@pytest.fixture(scope="module")
def dask_client():
    """A real loopback cluster: two single-threaded worker processes on 127.0.0.1, dashboard off."""
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=":0")
    client = Client(cluster)
    client.wait_for_workers(2, timeout=60)
    yield client
    client.close()
    cluster.close()


def assert_quantiles_and_deciles_of_raw_ranks(units: pl.DataFrame, raw: np.ndarray, unit_ids, n: int) -> None:
    """Every unit's median/q05/q95 rank equals numpy.quantile of its raw ranks (n replicates, rows of
    ``raw`` (n, n_units) in the order of ``unit_ids``; 0 = no rank), its P(decile d) the raw
    ranks' share in decile d, and its percentile median rank (where the table has one) is
    (median - 1) / (units - 1); returns nothing, asserts per unit."""
    from engine.analysis.largen import decile_of

    by_unit = {u: i for i, u in enumerate(unit_ids)}
    for row in units.iter_rows(named=True):
        ranks = raw[:, by_unit[row["unit"]]]
        ranks = ranks[ranks > 0]
        if len(ranks) == 0:
            assert row["median_rank"] is None or np.isnan(row["median_rank"])
            continue
        assert [row["q05_rank"], row["median_rank"], row["q95_rank"]] == list(np.quantile(ranks, [0.05, 0.5, 0.95]))
        if "pct_rank_median" in row:
            assert row["pct_rank_median"] == (row["median_rank"] - 1) / max(len(unit_ids) - 1, 1)
        deciles = decile_of(ranks, len(unit_ids))
        assert [row[f"p_decile_{d}"] for d in range(1, 11)] == [np.count_nonzero(deciles == d) / n
                                                                  for d in range(1, 11)]
