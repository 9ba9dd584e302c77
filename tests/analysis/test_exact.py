"""ExactSum: exact sums of float64 arrays, the same bits in any order or grouping (issue 21.5, 21.8)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from engine.analysis.exact import ExactSum


def _exact(column) -> float:
    """The correctly rounded sum of exact rationals (an independent oracle)."""
    return float(sum((Fraction(v) for v in column), Fraction(0)))


def _values(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((300, 6)) * np.exp(rng.uniform(-690, 690, (300, 6)))
    x[:5, 0] = [5e-324, -5e-324, 2.2250738585072014e-308, 0.0, -0.0]  # subnormals, the smallest normal, zeros
    x[:3, 1] = [1.7e308, 1.7e308, -1.7e308]  # a partial sum beyond the float range, back inside
    x[:, 2] = rng.random(300) * 100  # scores
    x[:, 3] = x[:, 2] ** 2
    x[:, 4] = 0.0
    x[:4, 4] = [1.0, 1e-16, 1e-16, -1.0]  # rounding that a float sum loses
    return x


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_sum_is_the_correctly_rounded_sum_in_any_order_and_grouping(seed):
    x = _values(seed)
    total = ExactSum.of(x)
    np.testing.assert_array_equal(total.value(), [_exact(x[:, j]) for j in range(x.shape[1])])
    assert total.value()[4] == 2e-16 and total.is_normalised()
    rng = np.random.default_rng(seed + 10)
    shuffled = ExactSum.of(x[rng.permutation(len(x))])
    parts = ExactSum.zeros((6,))
    for piece in np.array_split(x, 7):
        part = ExactSum.of(piece[::-1])
        parts += part
    assert shuffled == total and parts == total


def test_non_finite_values_do_not_depend_on_the_order():
    for column, want in (([np.inf, 1.0, 2.0], np.inf), ([1.0, -np.inf], -np.inf), ([np.inf, -np.inf, 1.0], np.nan),
                         ([np.nan, 1.0], np.nan)):
        for order in (column, column[::-1]):
            got = ExactSum.of(np.array(order)[:, None]).value()[0]
            assert got == want or (np.isnan(want) and np.isnan(got))
    big = ExactSum.of(np.array([[1.7e308], [1.7e308]])).value()[0]
    assert big == np.inf  # a finite sum beyond the float range rounds to inf


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="rows of 3 values added to an exact sum of shape"):
        ExactSum.zeros((2,)).add(np.zeros((1, 3)))
    total = ExactSum.zeros((2,))
    with pytest.raises(ValueError, match="cannot be added"):
        total += ExactSum.zeros((3,))


def test_carries_past_the_limbs_in_use_and_through_the_sign_limb():
    """The carry walk visits only the limbs in use; a carry out of the highest one in use lands in a
    zero limb (and stops there), and sums that change sign run through the signed last limb."""
    top = 2.0**63 - 2.0**10  # 53 one-bits: doubling it carries out of its highest limb
    cases = [[top] * 4, [top, -top / 2, 2.0**-1000, -(2.0**-1000)], [-1.0, 1e-300, -1e-300, 0.5],
             [-(2.0**1000), 2.0**1000, 2.0**-1074]]
    for column in cases:
        parts = ExactSum.zeros((1,))
        for v in column:  # one value per part: every merge carries
            parts += ExactSum.of(np.array([[v]]))
        assert parts.value()[0] == _exact(column) and parts.is_normalised()
        assert parts == ExactSum.of(np.array(column)[:, None])


@pytest.mark.parametrize("seed", [0, 1])
def test_pickling_keeps_only_the_limbs_in_use_and_loses_nothing(seed):
    """Dask moves states between processes by pickle: only the limbs in use travel, and the sum
    that arrives is the same, merges the same and reads the same."""
    import pickle

    x = _values(seed)
    total = ExactSum.of(x)
    back = pickle.loads(pickle.dumps(total))
    assert back == total and back.limbs.shape == total.limbs.shape and back.is_normalised()
    np.testing.assert_array_equal(back.value(), total.value())
    back += ExactSum.of(x)
    assert back == ExactSum.of(np.concatenate([x, x]))
    scores = ExactSum.of(np.random.default_rng(seed).random((64, 1000, 2)))
    assert len(pickle.dumps(scores)) < scores.limbs.nbytes / 8  # scores in [0, 1) use a few of the 68 limbs
    empty = ExactSum.zeros((3,))
    assert pickle.loads(pickle.dumps(empty)) == empty
