"""A small hand-checkable framework and data set for the audit tests.

Index -> A (x1, x2, x3), B (x4: one component).  Eight units in two regions."""

from __future__ import annotations

import polars as pl

from engine.schema import framework_from_dict


def document(**x4) -> dict:
    return {
        "id": "tiny-audit", "labels": {"en": "Tiny audit"}, "data": {"unit": "unit", "groups": ["region"]},
        "defaults": {"imputation": {"method": "none"}},
        "nodes": [
            {"id": "Index", "labels": {"en": "Index"}},
            {"id": "A", "parent": "Index", "labels": {"en": "A"}},
            {"id": "B", "parent": "Index", "labels": {"en": "B"}},
            {"id": "x1", "parent": "A", "labels": {"en": "x1"}, "column": "x1"},
            {"id": "x2", "parent": "A", "labels": {"en": "x2"}, "column": "x2"},
            {"id": "x3", "parent": "A", "labels": {"en": "x3"}, "column": "x3"},
            {"id": "x4", "parent": "B", "labels": {"en": "x4"}, "column": "x4", **x4},
        ],
    }


def framework(**x4):
    return framework_from_dict(document(**x4))


#: x2 = 2 x1 + 1 (redundant with x1), x3 = reversed x1 with a twist (negative), x4 unrelated; one missing x3.
TABLE = pl.DataFrame({
    "unit": ["a", "b", "c", "d", "e", "f", "g", "h"],
    "region": ["N", "N", "N", "N", "S", "S", "S", "S"],
    "x1": [1.0, 2, 3, 4, 5, 6, 7, 8],
    "x2": [3.0, 5, 7, 9, 11, 13, 15, 17],
    "x3": [8.0, 6, 7, 5, 4, 3, 1, None],
    "x4": [0.0, 0, 5, 1, 0, 4, 2, 3],
})
