"""One sibling renormalisation in the Python layer (Framework.local_weights): the compiled tree the
kernels aggregate with, the effective (global) weights and ScoreResult.effective_weights all use
the same shares, bit for bit."""

from __future__ import annotations

import numpy as np
import polars as pl

import engine
from engine.schema import framework_from_dict


def _flat(n_children: int, weight: float) -> dict:
    nodes = [{"id": "Index", "labels": {"en": "Index"}}]
    nodes += [{"id": f"x{j}", "parent": "Index", "labels": {"en": f"x{j}"}, "column": f"x{j}", "weight": weight}
              for j in range(n_children)]
    return {"id": "flat", "labels": {"en": "Flat"}, "data": {"unit": "unit"}, "nodes": nodes}


def test_reported_shares_are_the_shares_the_scores_use():
    """Nine siblings of weight 0.1: NumPy's sum of the nine (0.9) is not Python's left-to-right sum
    (0.8999999999999999), so two homes of the formula reported shares an ulp away from the ones the
    aggregation used."""
    fw = framework_from_dict(_flat(9, 0.1))
    rng = np.random.default_rng(1)
    data = pl.DataFrame({"unit": [f"u{i}" for i in range(5)], **{f"x{j}": rng.random(5) + 1 for j in range(9)}})
    result = engine.score(fw, data)
    used = fw.compile(result.stages.weights).child_weight
    local = fw.local_weights(result.stages.weights)
    assert [local[f"x{j}"] for j in range(9)] == used.tolist()
    table = result.effective_weights
    assert table["local"].to_list() == used.tolist()
    assert table["global"].to_list() == used.tolist()
    assert list(fw.effective_weights(result.stages.weights).values()) == used.tolist()


def test_siblings_that_all_weigh_zero_have_no_share():
    fw = framework_from_dict(_flat(2, 1.0))
    local = fw.local_weights({"x0": 0.0, "x1": 0.0})
    assert np.isnan(local["x0"]) and np.isnan(local["x1"])
    assert fw.local_weights({"x0": 1.0, "x1": 3.0}) == {"x0": 0.25, "x1": 0.75}
