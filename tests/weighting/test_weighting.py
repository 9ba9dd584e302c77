"""engine.weighting: AHP, entropy, CRITIC, PCA and equal weights against published values and oracles.

Sources of the expected values (the project reference notes, REFERENCES.md §3–4):
- §3 AHP: Saaty's drinks matrix, the leader and car examples (principal eigenvector, λmax, CI, CR).
- §4 objective weights: the 5×4 matrix whose entropy and CRITIC weights pymcdm, scikit-criteria and
  pyDecision agree on to 1e-8; the OECD/JRC Handbook (2008) §6.1 factor-analysis procedure.
PCA is also checked against an analytic oracle: data whose sample correlation matrix is exactly a
chosen block matrix, for which eigenvalues, rotated loadings and weights have closed forms.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from engine.errors import DataError, EngineWarning, SchemaError
from engine.weighting import (
    CR_THRESHOLD,
    RANDOM_INDEX,
    AHPConsistencyWarning,
    AHPResult,
    _varimax,
    ahp,
    critic,
    entropy,
    equal,
    pca,
)

# ============================================================================ reference data

#: REFERENCES §3: Saaty's drinks (coffee, wine, tea, beer, soda, milk, water)
DRINKS = [
    [1, 9, 5, 2, 1, 1, 1 / 2],
    [1 / 9, 1, 1 / 3, 1 / 9, 1 / 9, 1 / 9, 1 / 9],
    [1 / 5, 3, 1, 1 / 3, 1 / 4, 1 / 3, 1 / 9],
    [1 / 2, 9, 3, 1, 1 / 2, 1, 1 / 3],
    [1, 9, 4, 2, 1, 2, 1 / 2],
    [1, 9, 3, 1, 1 / 2, 1, 1 / 3],
    [2, 9, 9, 3, 2, 3, 1],
]
DRINKS_PRINCIPAL = [0.1775, 0.0191, 0.0418, 0.1164, 0.1896, 0.1288, 0.3268]
DRINKS_GEOMETRIC = [0.1787, 0.0185, 0.0422, 0.1165, 0.1911, 0.1286, 0.3243]


def _from_upper(upper: dict[tuple[int, int], float], n: int) -> list[list[float]]:
    """A reciprocal matrix from its upper-triangle judgements."""
    a = [[1.0] * n for _ in range(n)]
    for (i, j), v in upper.items():
        a[i][j], a[j][i] = v, 1 / v
    return a


#: REFERENCES §3: Experience, Education, Charisma, Age
LEADER = _from_upper({(0, 1): 4, (0, 2): 3, (0, 3): 7, (1, 2): 1 / 3, (1, 3): 3, (2, 3): 5}, 4)
#: REFERENCES §3: Cost, Safety, Style, Capacity
CAR = _from_upper({(0, 1): 3, (0, 2): 7, (0, 3): 3, (1, 2): 9, (1, 3): 1, (2, 3): 1 / 7}, 4)

#: REFERENCES §4: 5 units × 4 benefit indicators
X54 = np.array([[7, 9, 9, 8], [8, 7, 8, 7], [9, 6, 8, 9], [6, 7, 8, 6], [7, 8, 6, 7]], dtype=float)
X54_ENTROPY = [0.258176, 0.258176, 0.225471, 0.258176]
X54_CRITIC = [0.245706, 0.334836, 0.227957, 0.191501]


# ============================================================================ random index tables

def test_random_index_tables_are_the_published_ones():
    assert list(RANDOM_INDEX) == ["saaty", "alonso_lamata"]
    saaty = [0, 0, 0.52, 0.89, 1.11, 1.25, 1.35, 1.40, 1.45, 1.49]
    alonso_lamata = [0, 0, 0.5245, 0.8815, 1.1086, 1.2479, 1.3417, 1.4056, 1.4499, 1.4854]
    assert RANDOM_INDEX["saaty"] == dict(enumerate(saaty, start=1))
    assert RANDOM_INDEX["alonso_lamata"] == dict(enumerate(alonso_lamata, start=1))


# ============================================================================ AHP: worked examples

def test_ahp_drinks_principal_eigenvector_saaty():
    res = ahp(DRINKS)
    assert isinstance(res, AHPResult)
    assert_allclose(res.weights, DRINKS_PRINCIPAL, atol=5e-5, rtol=0)
    assert math.fsum(res.weights) == pytest.approx(1.0, abs=1e-15)
    assert round(res.lambda_max, 5) == 7.17663
    assert res.ci == pytest.approx(0.029438, abs=5e-7)
    assert round(res.cr, 4) == 0.0218
    assert (res.random_index, res.method, res.table) == (1.35, "principal", "saaty")
    assert res.cr == res.ci / 1.35


def test_ahp_drinks_alonso_lamata_table():
    res = ahp(DRINKS, random_index="alonso_lamata")
    assert_allclose(res.weights, DRINKS_PRINCIPAL, atol=5e-5, rtol=0)
    assert round(res.cr, 4) == 0.0219
    assert (res.random_index, res.table) == (1.3417, "alonso_lamata")


def test_ahp_drinks_row_geometric_mean():
    res = ahp(DRINKS, eigenvector="geometric_mean")
    assert_allclose(res.weights, DRINKS_GEOMETRIC, atol=5e-5, rtol=0)
    assert res.method == "geometric_mean"
    # λmax = mean((A w)_i / w_i) for these weights, computed here independently
    a, w = np.array(DRINKS), res.weights
    assert res.lambda_max == pytest.approx(np.mean(a @ w / w), rel=1e-14)
    assert res.ci == pytest.approx((res.lambda_max - 7) / 6, rel=1e-12)
    # row geometric means are close to, but not, the principal eigenvector
    assert not np.allclose(res.weights, ahp(DRINKS).weights, atol=1e-4)


@pytest.mark.parametrize(("matrix", "weights", "lambda_max"), [
    (LEADER, [0.5476, 0.1266, 0.2699, 0.0559], 4.11842),
    (CAR, [0.5101, 0.2344, 0.0405, 0.2151], 4.19924),
], ids=["leader", "car"])
def test_ahp_worked_examples(matrix, weights, lambda_max):
    res = ahp(matrix)
    assert_allclose(res.weights, weights, atol=5e-5, rtol=0)
    assert round(res.lambda_max, 5) == lambda_max
    assert res.cr == pytest.approx((lambda_max - 4) / 3 / 0.89, abs=1e-5)
    assert res.cr < CR_THRESHOLD


@pytest.mark.parametrize("eigenvector", ["principal", "geometric_mean"])
def test_ahp_consistent_matrix_gives_exact_weights_and_zero_cr(eigenvector):
    # powers of two: every a_ij = w_i / w_j is exact, so the weights are known exactly
    w = np.array([0.5, 0.25, 0.125, 0.0625, 0.0625])
    res = ahp(w[:, None] / w[None, :], eigenvector=eigenvector)
    assert_allclose(res.weights, w, rtol=1e-14, atol=0)
    assert res.lambda_max == pytest.approx(5.0, rel=1e-14)
    assert res.ci >= 0.0 and res.cr >= 0.0
    assert res.cr < 1e-12


@pytest.mark.parametrize("table", ["saaty", "alonso_lamata"])
@pytest.mark.parametrize(("matrix", "weights"), [([[1.0]], [1.0]), ([[1, 3], [1 / 3, 1]], [0.75, 0.25])])
def test_ahp_orders_one_and_two_are_consistent(matrix, weights, table):
    res = ahp(matrix, random_index=table)
    assert_allclose(res.weights, weights, rtol=1e-14)
    assert (res.ci, res.cr, res.random_index) == (0.0, 0.0, 0.0)


def test_ahp_permuting_children_permutes_weights():
    a = np.array(DRINKS)
    perm = np.array([6, 2, 0, 5, 1, 4, 3])
    res, permuted = ahp(a), ahp(a[np.ix_(perm, perm)])
    assert_allclose(permuted.weights, res.weights[perm], rtol=1e-12)
    assert permuted.cr == pytest.approx(res.cr, rel=1e-12)


def test_ahp_result_is_frozen():
    res = ahp(LEADER)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.cr = 0.0  # type: ignore[misc]


# ============================================================================ AHP: inconsistency warning

INTRANSITIVE = [[1, 9, 1 / 9], [1 / 9, 1, 9], [9, 1 / 9, 1]]   # a > b > c > a


def test_ahp_inconsistent_matrix_warns_with_cr_threshold_and_fix():
    assert issubclass(AHPConsistencyWarning, EngineWarning)
    with pytest.warns(AHPConsistencyWarning, match=r"CR = \d+\.\d{4} is at or above the threshold 0\.1") as caught:
        res = ahp(INTRANSITIVE)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "Fix: revise the comparisons" in message and "CR < 0.1" in message
    assert "matrix[" in message                       # names a judgement to revisit
    assert caught[0].filename == __file__              # stacklevel=2: points at the caller
    assert res.cr >= CR_THRESHOLD
    assert_allclose(res.weights, [1 / 3] * 3, rtol=1e-12)   # a cyclic matrix is symmetric in its items


def test_ahp_warning_names_the_most_inconsistent_judgement():
    # consistent 4×4 from w = (8, 4, 2, 1) with one judgement reversed: a[0][3] = 1/8 instead of 8
    w = np.array([8.0, 4.0, 2.0, 1.0])
    a = w[:, None] / w[None, :]
    a[0, 3], a[3, 0] = 1 / 8, 8.0
    with pytest.warns(AHPConsistencyWarning, match=r"matrix\[(0\]\[3|3\]\[0)\]"):
        ahp(a)


def test_ahp_warns_just_above_the_threshold_and_not_below():
    with pytest.warns(AHPConsistencyWarning, match=r"CR = 0\.1037 "):
        res = ahp([[1, 3, 4], [1 / 3, 1, 1 / 2], [1 / 4, 2, 1]])
    assert 0.1 <= res.cr < 0.104
    assert 0.07 < ahp(CAR).cr < 0.1                    # no warning: filterwarnings = error would fail here


def test_ahp_geometric_mean_inconsistency_also_warns():
    with pytest.warns(AHPConsistencyWarning, match="CR = "):
        res = ahp(INTRANSITIVE, eigenvector="geometric_mean", random_index="alonso_lamata")
    assert res.cr >= CR_THRESHOLD


# ============================================================================ AHP: invalid input

@pytest.mark.parametrize(("matrix", "match"), [
    ([[1, 2, 3], [0.5, 1, 2]], r"must be square and non-empty, got shape \(2, 3\)"),
    ([[1, 2], [0.5]], "square matrix of numbers"),
    ([[1, "a"], [1, 1]], "square matrix of numbers"),
    ([], r"must be square and non-empty, got shape \(0,\)"),
    ([1, 2, 3], r"must be square and non-empty, got shape \(3,\)"),
    ([[1, 0], [0, 1]], r"finite positive entries; 2 do not, at \(row, column\) \(0, 1\), \(1, 0\)"),
    ([[1, -3], [-1 / 3, 1]], r"finite positive entries; 2 do not.*-3\.0"),
    ([[1, np.nan], [1, 1]], "finite positive entries; 1 do not"),
    ([[1, np.inf], [0, 1]], "finite positive entries; 2 do not"),
    ([[2, 1], [1, 1]], r"1 on the diagonal; rows 0 have 2\.0"),
    ([[1, 3], [3, 1]], r"not reciprocal .* at 1 pair\(s\): \[0\]\[1\] = 3 vs \[1\]\[0\] = 3"),
    ([[1, 3, 2], [1 / 3, 1, 2], [1 / 2, 1 / 3, 1]], r"not reciprocal .*\[1\]\[2\] = 2 vs \[2\]\[1\] = 0\.333"),
    (np.ones((11, 11)), r"'saaty' random index table covers n = 1…10, but the AHP matrix is 11×11"),
])
def test_ahp_invalid_matrix_raises_schema_error(matrix, match):
    with pytest.raises(SchemaError, match=match) as info:
        ahp(matrix)
    assert isinstance(info.value, ValueError)
    assert "Fix:" in str(info.value)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"eigenvector": "power"}, r"unknown AHP eigenvector method 'power'.*'principal', 'geometric_mean'"),
    ({"random_index": "dd"}, r"unknown AHP random index table 'dd'.*'saaty', 'alonso_lamata'"),
])
def test_ahp_unknown_method_or_table_raises(kwargs, match):
    with pytest.raises(SchemaError, match=match):
        ahp(LEADER, **kwargs)


def test_ahp_accepts_rounded_reciprocals_like_the_schema():
    # 0.33 * 3 = 0.99: within the schema's rtol 1e-2; the matrix is used as given
    res = ahp([[1, 3, 0.5], [0.33, 1, 0.2], [2, 5, 1]])
    assert res.weights.sum() == pytest.approx(1.0)
    assert res.weights[2] > res.weights[0] > res.weights[1]


# ============================================================================ AHP: property

positive_weights = st.lists(st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False),
                            min_size=1, max_size=10)


@given(w=positive_weights, eigenvector=st.sampled_from(["principal", "geometric_mean"]),
       table=st.sampled_from(["saaty", "alonso_lamata"]))
def test_ahp_of_a_consistent_matrix_recovers_the_weights(w, eigenvector, table):
    w = np.array(w)
    res = ahp(w[:, None] / w[None, :], eigenvector=eigenvector, random_index=table)
    assert_allclose(res.weights, w / w.sum(), rtol=1e-9, atol=0)
    assert res.lambda_max == pytest.approx(len(w), rel=1e-9)
    assert 0.0 <= res.cr < 1e-12


# ============================================================================ entropy and CRITIC

def test_entropy_reference_matrix():
    assert_allclose(entropy(X54), X54_ENTROPY, atol=1e-6, rtol=0)


def test_critic_reference_matrix():
    assert_allclose(critic(X54), X54_CRITIC, atol=1e-6, rtol=0)


def test_entropy_by_hand():
    # column 0: p = (1/4, 3/4), e = −(¼ ln ¼ + ¾ ln ¾)/ln 2; column 1: p = (1/3, 2/3)
    x = np.array([[1.0, 1.0], [3.0, 2.0]])
    d = [1 + (0.25 * math.log(0.25) + 0.75 * math.log(0.75)) / math.log(2),
         1 + (math.log(1 / 3) / 3 + 2 / 3 * math.log(2 / 3)) / math.log(2)]
    assert_allclose(entropy(x), np.array(d) / sum(d), rtol=1e-14)


def test_critic_sample_or_population_sd_gives_the_same_weights():
    """The sd convention is a common factor of every C_j; an independent ddof=1 computation agrees."""
    z = (X54 - X54.min(0)) / (X54.max(0) - X54.min(0))
    r = np.corrcoef(z, rowvar=False)
    c = z.std(axis=0, ddof=1) * (1 - r).sum(axis=1)
    assert_allclose(critic(X54), c / c.sum(), rtol=1e-12)


@pytest.mark.parametrize("method", [entropy, critic], ids=["entropy", "critic"])
@pytest.mark.parametrize("factor", [1e-3, 7.5, 1e4])
def test_weights_invariant_to_scaling_a_column(method, factor):
    scaled = X54.copy()
    scaled[:, 2] *= factor
    assert_allclose(method(scaled), method(X54), rtol=1e-12, atol=0)


def test_critic_invariant_to_shifting_a_column_but_entropy_is_not():
    shifted = X54.copy()
    shifted[:, 1] += 100.0
    assert_allclose(critic(shifted), critic(X54), rtol=1e-12)
    assert not np.allclose(entropy(shifted), entropy(X54), rtol=1e-3)


@pytest.mark.parametrize("method", [entropy, critic], ids=["entropy", "critic"])
def test_weights_invariant_to_permuting_units(method):
    perm = [3, 0, 4, 2, 1]
    assert_allclose(method(X54[perm]), method(X54), rtol=1e-12, atol=0)


@pytest.mark.parametrize("method", [entropy, critic, lambda x: pca(x)[0]], ids=["entropy", "critic", "pca"])
def test_rows_with_missing_values_are_dropped(method):
    with_missing = np.vstack([X54[:2], [np.nan, 1.0, 2.0, 3.0], X54[2:], [5.0, 5.0, 5.0, np.nan]])
    assert_array_equal(method(with_missing), method(X54))


@pytest.mark.parametrize("method", [entropy, critic, lambda x: pca(x)[0]], ids=["entropy", "critic", "pca"])
def test_data_driven_weights_sum_to_one_and_are_non_negative(method):
    rng = np.random.default_rng(11)
    x = rng.uniform(0, 100, size=(40, 6))
    w = method(x)
    assert w.shape == (6,) and w.dtype == np.float64
    assert w.sum() == pytest.approx(1.0, abs=1e-14)
    assert (w >= 0).all()


# --- degenerate columns: the documented policies

@pytest.mark.parametrize("column", [np.full(5, 4.0), np.zeros(5)], ids=["constant", "all-zero"])
def test_entropy_constant_column_gets_zero_weight(column):
    x = np.column_stack([X54[:, :2], column, X54[:, 2:]])
    w = entropy(x)
    assert w[2] == 0.0
    assert_allclose(np.delete(w, 2), entropy(X54), rtol=1e-12)


def test_entropy_all_columns_constant_gives_equal_weights():
    x = np.column_stack([np.full(4, 2.0), np.zeros(4), np.full(4, 0.5)])
    assert_array_equal(entropy(x), equal(3))


def test_critic_constant_column_gets_zero_weight_and_leaves_the_others_unchanged():
    x = np.column_stack([X54[:, :1], np.full(5, -3.0), X54[:, 1:]])
    w = critic(x)
    assert w[1] == 0.0
    assert_allclose(np.delete(w, 1), critic(X54), rtol=1e-12)


@pytest.mark.parametrize(("x", "expected"), [
    (np.column_stack([np.full(3, 1.0), np.full(3, 2.0)]), [0.5, 0.5]),                    # all constant
    (np.column_stack([np.full(3, 1.0), [1.0, 2.0, 4.0], np.zeros(3)]), [0.0, 1.0, 0.0]),  # one informative
    (np.column_stack([[1.0, 2.0, 4.0], [10.0, 20.0, 40.0], np.ones(3)]), [0.5, 0.5, 0.0]),  # r = 1
], ids=["all-constant", "single-informative", "perfectly-correlated"])
def test_critic_zero_information_falls_back_to_equal_weights_over_informative_columns(x, expected):
    assert_allclose(critic(x), expected, rtol=1e-12, atol=1e-15)


# --- errors

@pytest.mark.parametrize("method", [entropy, critic, pca], ids=["entropy", "critic", "pca"])
@pytest.mark.parametrize(("x", "match"), [
    (np.array([1.0, 2.0, 3.0]), r"2-D \(n_units, n_children\) matrix .* got shape \(3,\)"),
    (np.zeros((4, 0)), r"got shape \(4, 0\)"),
    (np.array([[1.0, np.inf], [2.0, 3.0]]), r"±inf in column\(s\) 1"),
    (np.array([[1.0, 2.0], [np.nan, 3.0], [4.0, np.nan]]), "at least 2 units with every child present, got 1 of 3"),
    ([["a", "b"], ["c", "d"]], "numeric"),
])
def test_data_driven_methods_reject_unusable_scores(method, x, match):
    with pytest.raises(DataError, match=match) as info:
        method(x)
    assert "Fix:" in str(info.value)


def test_entropy_rejects_negative_scores():
    x = X54.copy()
    x[1, 3] = -2.5
    with pytest.raises(DataError, match=r"non-negative scores; column\(s\) 3 have negative values, e.g. -2\.5"):
        entropy(x)
    assert critic(x).sum() == pytest.approx(1.0)   # CRITIC min-max normalises: any sign is fine


# ============================================================================ PCA / factor analysis

def _two_factor_data() -> np.ndarray:
    """200 units, indicators 0–2 driven by latent f1, 3–5 by f2 (loadings 1, 0.8, 0.6; noise sd 0.5)."""
    rng = np.random.default_rng(7)
    latent = rng.standard_normal((200, 2))
    columns = [latent[:, f] * a + 0.5 * rng.standard_normal(200) for f in (0, 1) for a in (1.0, 0.8, 0.6)]
    return np.column_stack(columns)


def _with_correlation(correlation: np.ndarray, n_units: int = 50, seed: int = 3) -> np.ndarray:
    """Data whose sample correlation matrix is exactly ``correlation`` (up to rounding).

    Centred random columns are orthonormalised (QR keeps them centred), so ``Qᵀ Q = I``; then
    ``X = Q Cᵀ`` with ``C Cᵀ = correlation`` has ``Xᵀ X = correlation`` and unit column norms."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_units, correlation.shape[0]))
    q, _ = np.linalg.qr(z - z.mean(axis=0))
    return q @ np.linalg.cholesky(correlation).T * 10.0 + 50.0


def _block_correlation(sizes_and_rho: list[tuple[int, float]]) -> np.ndarray:
    k = sum(size for size, _ in sizes_and_rho)
    r, start = np.eye(k), 0
    for size, rho in sizes_and_rho:
        block = slice(start, start + size)
        r[block, block] = (1 - rho) * np.eye(size) + rho
        start += size
    return r


def test_pca_two_clear_factors():
    x = _two_factor_data()
    w, details = pca(x)
    assert w.sum() == pytest.approx(1.0, abs=1e-14)
    assert (w > 0).all()
    assert details["retained"] == 2
    factor = details["factor"]
    assert len(set(factor[:3])) == 1 and len(set(factor[3:])) == 1 and factor[0] != factor[3]
    loadings = details["rotated_loadings"]
    assert loadings.shape == (6, 2)
    assert (np.abs(loadings[:3, factor[0]]) > 0.8).all() and (np.abs(loadings[:3, factor[3]]) < 0.15).all()
    assert (np.abs(loadings[3:, factor[3]]) > 0.8).all() and (np.abs(loadings[3:, factor[0]]) < 0.15).all()
    # stronger indicators weigh more within a factor
    assert w[0] > w[1] > w[2] and w[3] > w[4] > w[5]
    assert details["cumulative"] == pytest.approx(details["eigenvalues"][:2].sum() / 6)
    assert details["cumulative"] > 0.6


def test_pca_analytic_oracle_two_blocks():
    """Blocks of 3 (ρ = 0.6) and 2 (ρ = 0.5): eigenvalues 2.2, 1.5, 0.5, 0.4, 0.4.

    The unrotated loadings already have simple structure (√(2.2/3) on factor 1 for block A,
    √(1.5/2) on factor 2 for block B, 0 elsewhere), which varimax keeps; scaled squared loadings
    are 1/3 and 1/2, factor shares 2.2/3.7 and 1.5/3.7, so w_A = (1/3)(2.2/3.7) and
    w_B = (1/2)(1.5/3.7), which already sum to 1."""
    x = _with_correlation(_block_correlation([(3, 0.6), (2, 0.5)]))
    w, details = pca(x)
    assert_allclose(details["eigenvalues"], [2.2, 1.5, 0.5, 0.4, 0.4], rtol=1e-12)
    assert details["retained"] == 2
    assert_allclose(details["cumulative"], 3.7 / 5, rtol=1e-12)
    assert_array_equal(details["factor"], [0, 0, 0, 1, 1])
    expected_loadings = np.zeros((5, 2))
    expected_loadings[:3, 0] = math.sqrt(2.2 / 3)
    expected_loadings[3:, 1] = math.sqrt(1.5 / 2)
    assert_allclose(details["rotated_loadings"], expected_loadings, atol=1e-12)
    assert_allclose(details["factor_share"], [2.2 / 3.7, 1.5 / 3.7], rtol=1e-12)
    assert_allclose(w, [2.2 / 3.7 / 3] * 3 + [1.5 / 3.7 / 2] * 2, rtol=1e-12)


def test_pca_retention_needs_eigenvalue_above_one_and_share_above_ten_percent():
    # 12 indicators: a block of 4 (ρ = 0.7, λ = 3.1, 25.8%), a block of 2 (ρ = 0.1, λ = 1.1 > 1 but
    # only 9.2% of the variance) and 6 independent ones (λ = 1): only the first factor qualifies
    x = _with_correlation(_block_correlation([(4, 0.7), (2, 0.1)] + [(1, 0.0)] * 6))
    w, details = pca(x)
    assert_allclose(details["eigenvalues"][:2], [3.1, 1.1], rtol=1e-12)
    assert details["retained"] == 1
    assert_allclose(w[:4], 0.25, rtol=1e-10)
    assert_allclose(w[4:], 0.0, atol=1e-12)


def test_pca_assigns_by_largest_loading_not_by_largest_scaled_loading():
    """A 'bridge' indicator loads more on the big factor (5 indicators) than on the small one (2),
    but its scaled squared loading is larger on the small factor: the Handbook groups it by loading."""
    generating = np.zeros((8, 2))
    generating[:5, 0], generating[5:7, 1], generating[7] = 0.85, 0.85, [0.6, 0.45]
    correlation = generating @ generating.T
    np.fill_diagonal(correlation, 1.0)
    w, details = pca(_with_correlation(correlation))
    assert details["retained"] == 2
    assert_array_equal(details["factor"], [0, 0, 0, 0, 0, 1, 1, 0])
    squared = details["rotated_loadings"] ** 2
    scaled = squared / squared.sum(axis=0)
    assert squared[7, 0] > squared[7, 1] and scaled[7, 0] < scaled[7, 1]   # the case that matters
    expected = scaled[np.arange(8), details["factor"]] * details["factor_share"][details["factor"]]
    assert_allclose(w, expected / expected.sum(), rtol=1e-12)


def test_pca_keeps_the_first_factor_when_none_qualifies():
    x = _with_correlation(np.eye(4))          # every eigenvalue is 1 (up to rounding)
    w, details = pca(x)
    assert_allclose(details["eigenvalues"], 1.0, rtol=1e-12)
    assert details["retained"] == 1
    assert details["rotated_loadings"].shape == (4, 1)
    assert w.sum() == pytest.approx(1.0)


def test_pca_invariant_to_permuting_units():
    x = _two_factor_data()
    perm = np.random.default_rng(5).permutation(x.shape[0])
    w, details = pca(x)
    w_perm, details_perm = pca(x[perm])
    assert_allclose(w_perm, w, rtol=1e-10, atol=0)
    assert_allclose(details_perm["rotated_loadings"], details["rotated_loadings"], atol=1e-10)
    assert_array_equal(details_perm["factor"], details["factor"])


def test_pca_invariant_to_positive_affine_change_of_a_column():
    x = _two_factor_data()
    changed = x.copy()
    changed[:, 4] = changed[:, 4] * 250.0 + 3.0
    assert_allclose(pca(changed)[0], pca(x)[0], rtol=1e-9)


def test_pca_constant_column_gets_zero_weight_and_leaves_the_others_unchanged():
    x = _two_factor_data()
    with_constant = np.column_stack([x[:, :2], np.full(x.shape[0], 7.0), x[:, 2:]])
    w, details = pca(with_constant)
    assert w[2] == 0.0 and details["factor"][2] == -1
    assert details["constant"].tolist() == [False, False, True, False, False, False, False]
    assert_allclose(np.delete(w, 2), pca(x)[0], rtol=1e-12)
    assert_array_equal(details["rotated_loadings"][2], 0.0)


def test_pca_all_constant_gives_equal_weights():
    w, details = pca(np.ones((5, 3)))
    assert_array_equal(w, equal(3))
    assert details["retained"] == 0 and details["factor"].tolist() == [-1, -1, -1]


def _three_factor_data() -> np.ndarray:
    """300 units, 9 indicators mixing 3 latent variables with cross-loadings."""
    rng = np.random.default_rng(7)
    latent = rng.standard_normal((300, 3))
    mix = np.array([[1.0, 0.4, 0.0], [0.9, 0.0, 0.3], [0.8, 0.2, 0.2], [0.1, 1.0, 0.0], [0.3, 0.8, 0.1],
                    [0.0, 0.7, 0.4], [0.2, 0.0, 1.0], [0.0, 0.3, 0.9], [0.4, 0.1, 0.7]])
    return latent @ mix.T + 0.4 * rng.standard_normal((300, 9))


def _pairs_data() -> np.ndarray:
    """30 units, 6 indicators in three correlated pairs (one pair negatively)."""
    x = np.random.default_rng(1).standard_normal((30, 6))
    x[:, 1] += x[:, 0]
    x[:, 3] += 0.8 * x[:, 2]
    x[:, 5] -= x[:, 4]
    return x


@pytest.mark.parametrize("make", [lambda: X54, _two_factor_data, _three_factor_data, _pairs_data],
                         ids=["reference", "two-factor", "three-factor", "pairs"])
def test_pca_is_deterministic_and_canonically_signed_and_ordered(make):
    x = make()
    w, details = pca(x)
    w2, details2 = pca(x.copy())
    assert_array_equal(w, w2)
    loadings = details["rotated_loadings"]
    assert_array_equal(loadings, details2["rotated_loadings"])
    assert details["retained"] >= 2
    # sign convention: each factor's largest-magnitude loading is positive; factors by variance
    assert (loadings[np.argmax(np.abs(loadings), axis=0), range(loadings.shape[1])] > 0).all()
    variance = (loadings**2).sum(axis=0)
    assert (np.diff(variance) <= 0).all()


# --- varimax against a naive twin

def _varimax_pairwise(loadings: np.ndarray) -> np.ndarray:
    """Kaiser's (1958) original algorithm: sweeps of planar rotations of factor pairs, each by the
    angle that maximises the (row-normalised) varimax criterion of that pair,
    tan 4φ = (D − 2AB/k) / (C − (A² − B²)/k) with u = x² − y², v = 2xy, A = Σu, B = Σv,
    C = Σ(u² − v²), D = 2Σuv."""
    scale = np.sqrt((loadings**2).sum(axis=1))
    h = loadings / scale[:, None]
    k, q = h.shape
    for _ in range(1000):
        largest = 0.0
        for j in range(q - 1):
            for m in range(j + 1, q):
                x, y = h[:, j].copy(), h[:, m].copy()
                u, v = x**2 - y**2, 2 * x * y
                a, b, c, d = u.sum(), v.sum(), (u**2 - v**2).sum(), 2 * (u * v).sum()
                phi = math.atan2(d - 2 * a * b / k, c - (a**2 - b**2) / k) / 4
                h[:, j] = x * math.cos(phi) + y * math.sin(phi)
                h[:, m] = -x * math.sin(phi) + y * math.cos(phi)
                largest = max(largest, abs(phi))
        if largest < 1e-15:
            break
    return h * scale[:, None]


def _canonical(loadings: np.ndarray) -> np.ndarray:
    """Columns in descending variance, each with its largest-magnitude entry positive."""
    loadings = loadings[:, np.argsort(-(loadings**2).sum(axis=0))]
    pivot = loadings[np.argmax(np.abs(loadings), axis=0), range(loadings.shape[1])]
    return loadings * np.sign(pivot)


def _varimax_criterion(loadings: np.ndarray) -> float:
    h2 = (loadings / np.sqrt((loadings**2).sum(axis=1))[:, None]) ** 2
    return float(((h2**2).mean(axis=0) - h2.mean(axis=0) ** 2).sum())


def test_varimax_matches_kaisers_pairwise_algorithm():
    x = _three_factor_data()
    values, vectors = np.linalg.eigh(np.corrcoef(x, rowvar=False))
    loadings = vectors[:, ::-1][:, :3] * np.sqrt(values[::-1][:3])
    rotated = _varimax(loadings)
    assert_allclose(_canonical(rotated), _canonical(_varimax_pairwise(loadings)), atol=1e-10)
    # an orthogonal rotation: communalities unchanged; and the criterion does not decrease
    assert_allclose((rotated**2).sum(axis=1), (loadings**2).sum(axis=1), rtol=1e-12)
    assert _varimax_criterion(rotated) > _varimax_criterion(loadings)


# ============================================================================ equal

@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_equal(k):
    w = equal(k)
    assert w.shape == (k,) and w.dtype == np.float64
    assert_array_equal(w, np.full(k, 1 / k))


@pytest.mark.parametrize(("k", "match"), [(0, "at least one child, got k = 0"), (-2, "at least one child"),
                                          (2.5, "integer number of children, got 2.5")])
def test_equal_rejects_bad_counts(k, match):
    with pytest.raises(SchemaError, match=match):
        equal(k)
