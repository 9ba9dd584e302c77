"""A 3-city, 3-year toy panel (2010-2012) and its two-indicator framework (b: less is better)."""

from __future__ import annotations

import polars as pl
import pytest

from engine.schema import framework_from_dict

DOCUMENT = {"id": "toy-panel", "labels": {"en": "Toy panel"}, "data": {"unit": "city", "period": "year"},
            "nodes": [{"id": "index", "labels": {"en": "Index"}},
                      {"id": "a", "parent": "index", "column": "a", "labels": {"en": "A"}},
                      {"id": "b", "parent": "index", "column": "b", "direction": -1, "labels": {"en": "B"}}]}


def toy_framework(data=None, **indicator_keys):
    """The toy framework, ``indicator_keys`` set on both indicators (e.g. imputation), ``data`` replacing
    its data section."""
    nodes = [{**n, **(indicator_keys if "column" in n else {})} for n in DOCUMENT["nodes"]]
    return framework_from_dict({**DOCUMENT, "nodes": nodes, "data": data or DOCUMENT["data"]})


@pytest.fixture
def framework():
    return toy_framework()


@pytest.fixture
def table():
    """y has the same data in 2010 and 2012; x is the worst unit every year."""
    return pl.DataFrame({"city": ["x", "y", "z"] * 3, "year": [2010] * 3 + [2011] * 3 + [2012] * 3,
                         "a": [1.0, 2, 3, 1, 4, 5, 1, 2, 9], "b": [3.0, 2, 1, 3, 1, 1, 3, 2, 0]})
