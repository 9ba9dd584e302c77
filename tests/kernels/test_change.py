"""engine.kernels.change.rank_change against its readable twin (engine.kernels.reference.rank_change)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.kernels import reference
from engine.kernels.change import rank_change
from engine.kernels.rank import index_bits, pack_keys


def _keys(scores: np.ndarray) -> np.ndarray:
    """Packed keys of each row, sorted ascending (what the Monte Carlo path hands the kernel)."""
    keys = np.empty(scores.shape, np.uint32)
    bits = index_bits(scores.shape[1])
    for r in range(scores.shape[0]):
        pack_keys(scores[r], bits, keys[r])
    keys.sort(axis=1)
    return keys


def _case(name: str):
    rng = np.random.default_rng(4)
    if name == "distinct":
        return rng.random((50, 9)), rng.random((50, 9)), np.arange(9), np.arange(9)
    if name == "ties":  # exact ties share the minimum rank in both periods
        return np.round(rng.random((50, 9)) * 3), np.round(rng.random((50, 9)) * 3), np.arange(9), np.arange(9)
    if name == "missing":  # NaN and ±inf have no rank: counted in the last column
        a, b = rng.random((50, 7)), rng.random((50, 7))
        a[rng.random(a.shape) < 0.15] = np.nan
        b[rng.random(b.shape) < 0.1] = np.inf
        b[:, 3] = -np.inf
        return a, b, np.arange(7), np.arange(7)
    if name == "entered_and_left":  # 6 units before, 11 after, 4 of them in both, rows permuted
        return rng.random((40, 6)), rng.random((40, 11)), np.array([5, 0, 2, 3]), np.array([1, 10, 4, 7])
    if name == "one_common":
        return rng.random((20, 3)), rng.random((20, 2)), np.array([2]), np.array([0])
    raise KeyError(name)


@pytest.mark.parametrize("name", ["distinct", "ties", "missing", "entered_and_left", "one_common"])
def test_rank_change_equals_twin(name):
    scores_from, scores_to, rows_from, rows_to = _case(name)
    keys_from, keys_to = _keys(scores_from), _keys(scores_to)
    rows_from, rows_to = rows_from.astype(np.int64), rows_to.astype(np.int64)
    n = max(scores_from.shape[1], scores_to.shape[1])
    out = np.zeros((len(rows_from), 2 * n), np.int64)
    rank_change(scores_from, keys_from, scores_to, keys_to, rows_from, rows_to, out)
    twin = reference.rank_change(scores_from, keys_from, scores_to, keys_to, rows_from, rows_to)
    np.testing.assert_array_equal(out, twin)
    assert (out.sum(axis=1) == scores_from.shape[0]).all()  # every replicate counted once per unit
    if name == "missing":
        assert out[:, -1].sum() > 0


def test_rank_change_hand_computed():
    """Scores (3, 2, 1) then (1, 3, 2): ranks 1, 2, 3 → 3, 1, 2, changes −2, +1, +1 (n = 3: column d + 2)."""
    scores_from = np.array([[3.0, 2.0, 1.0]])
    scores_to = np.array([[1.0, 3.0, 2.0]])
    rows = np.arange(3, dtype=np.int64)
    out = np.zeros((3, 6), np.int64)
    rank_change(scores_from, _keys(scores_from), scores_to, _keys(scores_to), rows, rows, out)
    expected = np.zeros((3, 6), np.int64)
    expected[0, 0] = expected[1, 3] = expected[2, 3] = 1
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("complete", [True, False])
def test_rank_change_same_units_in_other_rows_equals_twin(complete):
    """Both periods hold the same units in different rows (so not the kernel's aligned fast path,
    which skips the row look-ups): the changes are counted through ``rows_from`` / ``rows_to``."""
    rng = np.random.default_rng(8)
    scores_from, scores_to = rng.random((60, 8)), rng.random((60, 8))
    if not complete:
        scores_to[rng.random(scores_to.shape) < 0.1] = np.nan
    rows_from, rows_to = np.arange(8, dtype=np.int64), rng.permutation(8).astype(np.int64)
    out = np.zeros((8, 16), np.int64)
    rank_change(scores_from, _keys(scores_from), scores_to, _keys(scores_to), rows_from, rows_to, out)
    np.testing.assert_array_equal(out, reference.rank_change(scores_from, None, scores_to, None, rows_from, rows_to))
    aligned = np.zeros((8, 16), np.int64)  # the same scores with the "to" rows put in common order
    rank_change(scores_from, _keys(scores_from), scores_to[:, rows_to], _keys(scores_to[:, rows_to]), rows_from,
                rows_from, aligned)
    np.testing.assert_array_equal(aligned, out)
