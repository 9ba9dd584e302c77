"""Audit section "importance": the correlation ratio against closed forms and hand computations,
weights from the pipeline, the seeded bootstrap, and the messages for what cannot be estimated."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import engine
from engine.audit import importance
from engine.audit.importance import correlation_ratio
from engine.errors import SchemaError
from engine.schema import framework_from_dict


def flat_framework(weights, normalisation="zscore", **extra) -> engine.Framework:
    """Index of indicators x0, x1, … (weights as given) straight under the index."""
    nodes = [{"id": "Index", "labels": {"en": "Index"}}]
    nodes += [{"id": f"x{i}", "parent": "Index", "labels": {"en": f"x{i}"}, "column": f"x{i}", "weight": w}
              for i, w in enumerate(weights)]
    return framework_from_dict({"id": "flat", "labels": {"en": "Flat"}, "data": {"unit": "unit"},
                                "defaults": {"normalisation": {"method": normalisation}}, "nodes": nodes, **extra})


def normal_table(n: int, k: int, seed: int, sd=None) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    sd = np.ones(k) if sd is None else np.asarray(sd, float)
    x = rng.normal(size=(n, k)) * sd
    return pl.DataFrame({"unit": [f"u{i}" for i in range(n)], **{f"x{j}": x[:, j] for j in range(k)}})


def test_linear_index_of_independent_normals_has_the_closed_form_importance():
    # y = sum w_i x_i, x_i ~ N(0, s_i^2) independent: E[y | x_i] = w_i x_i, so
    # eta_i^2 = w_i^2 s_i^2 / sum_j w_j^2 s_j^2 (Paruolo, Saisana & Saltelli 2013).
    rng = np.random.default_rng(2013)
    n, w, sd = 20_000, np.array([0.5, 0.3, 0.2]), np.array([1.0, 2.0, 0.5])
    x = rng.normal(size=(n, 3)) * sd
    y = x @ w
    exact = w**2 * sd**2 / np.sum(w**2 * sd**2)
    got = np.array([correlation_ratio(x[:, i], y) for i in range(3)])
    # estimator error: sampling (about 2 sqrt(eta^2 (1 - eta^2) / n) < 0.01) plus smoother bias
    np.testing.assert_allclose(got, exact, atol=0.015)
    # and, on the sample itself, a linear E[y|x] gives eta^2 = r^2 up to the smoother's error
    r2 = np.array([np.corrcoef(x[:, i], y)[0, 1] ** 2 for i in range(3)])
    np.testing.assert_allclose(got, r2, atol=0.003)


def test_through_the_pipeline_importance_follows_squared_weights_not_weights():
    # zscore normalisation: every normalised indicator has variance 1, so eta_i^2 = w_i^2 / sum w_j^2
    # = 9/14, 4/14, 1/14 for weights 3, 2, 1 -- not the nominal shares 3/6, 2/6, 1/6.
    result = engine.score(flat_framework([3, 2, 1]), normal_table(4000, 3, seed=7))
    table, flags = importance(result, bootstrap=50, seed=1)
    got = dict(zip(table["node"], table["importance"], strict=True))
    assert got == pytest.approx({"x0": 9 / 14, "x1": 4 / 14, "x2": 1 / 14}, abs=0.03)
    assert table["global"].to_list() == pytest.approx([0.5, 1 / 3, 1 / 6])
    assert table["local"].to_list() == table["global"].to_list()  # flat: local share = global weight
    # x2 carries 1/14 / (14/14) of the importance against a weight share of 1/6 (ratio 0.43 < 1/2)
    assert [f["node"] for f in flags] == ["x2"] and "less than its weight promises" in flags[0]["message"]


def test_nonlinear_dependence_is_caught_where_pearson_sees_nothing():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, 20_000)
    y = x**2 + rng.normal(0, 0.1, x.size)
    exact = (4 / 45) / (4 / 45 + 0.01)  # Var(x^2) = 1/5 - 1/9 for x ~ U(-1, 1)
    assert correlation_ratio(x, y) == pytest.approx(exact, abs=0.01)
    assert np.corrcoef(x, y)[0, 1] ** 2 < 0.001


def test_binary_input_gives_the_between_group_share_exactly():
    # x with two values: E[y | x] is the two group means (a line through them is unpenalised), so
    # eta^2 = n0 n1 / n (m1 - m0)^2 / sum (y - mean)^2, by hand: groups {1, 2, 3} and {4, 6, 8, 10}.
    x = np.array([0.0, 0, 0, 1, 1, 1, 1])
    y = np.array([1.0, 2, 3, 4, 6, 8, 10])
    between = 3 * 4 / 7 * (7 - 2) ** 2  # group means 2 and 7
    total = np.sum((y - y.mean()) ** 2)
    assert correlation_ratio(x, y) == pytest.approx(between / total, abs=1e-9)


def _gcv_spline_eta(x: np.ndarray, y: np.ndarray, segments: int = 12) -> float:
    """The P-spline's η² computed the plain way: for every penalty of the grid, the penalised least
    squares as one augmented least-squares problem ([B; √λ D] a = [y; 0]), the hat matrix's trace
    from a pseudo-inverse, GCV = n RSS / (n − edf)², η² of the fit GCV picks."""
    from scipy.interpolate import BSpline
    from scipy.stats import rankdata

    from engine.audit.importance import LOG_PENALTY

    n = len(x)
    u = (rankdata(x) - 1.0) / (n - 1)
    h = 1.0 / segments
    basis = BSpline.design_matrix(u, np.linspace(-3 * h, 1 + 3 * h, segments + 7), 3, extrapolate=True).toarray()
    difference = np.diff(np.eye(basis.shape[1]), 2, axis=0)
    penalty = difference.T @ difference
    scale = np.trace(basis.T @ basis) / np.trace(penalty)
    centred = y - y.mean()
    best = (np.inf, np.nan)
    for log_penalty in LOG_PENALTY:
        lam = scale * 10.0**log_penalty
        stacked = np.vstack([basis, np.sqrt(lam) * difference])
        coef = np.linalg.lstsq(stacked, np.concatenate([centred, np.zeros(len(difference))]), rcond=None)[0]
        fitted = basis @ coef
        edf = np.trace(basis @ np.linalg.pinv(basis.T @ basis + lam * penalty) @ basis.T)
        gcv = n * np.sum((centred - fitted) ** 2) / (n - edf) ** 2
        if gcv < best[0]:
            best = (gcv, np.sum((fitted - fitted.mean()) ** 2) / np.sum(centred**2))
    return best[1]


@pytest.mark.parametrize("distinct", [2, 3, 5, 16, 200])
def test_inputs_with_few_distinct_values_give_the_plain_computation(distinct):
    """With few distinct x values B'B is singular: the smoother decomposed it with a tiny ridge, and
    the unpenalised directions drowned in rounding (a binary input: η² 0.532 for 0.661, and ASEM's
    binary TIRcon 0.226 in the index for 0.252).  Now it matches the plain computation."""
    rng = np.random.default_rng(distinct)
    x = rng.integers(0, distinct, 300).astype(float)
    y = np.sin(x) + 0.3 * x + rng.normal(0, 0.5, x.size)
    assert correlation_ratio(x, y) == pytest.approx(_gcv_spline_eta(x, y), abs=1e-10)


def test_asem_binary_indicator_importance_is_the_plain_computation():
    result = engine.score("asem")
    fw, stages = result.framework, result.stages
    x = stages.normalised[:, fw.node_ids.index("TIRcon")]
    y = stages.scores[:, -1]
    assert len(np.unique(x)) == 2
    assert correlation_ratio(x, y) == pytest.approx(_gcv_spline_eta(x, y), abs=1e-10)
    assert correlation_ratio(x, y) == pytest.approx(0.2521245, abs=1e-6)


def test_constant_output_is_undefined_and_a_large_offset_loses_nothing():
    x = np.random.default_rng(9).normal(size=200)
    assert np.isnan(correlation_ratio(x, np.full(200, 0.1)))  # 0.1 is not exact: the centred y is rounding noise
    assert correlation_ratio(x, 1e6 + 1e-3 * x) == pytest.approx(correlation_ratio(x, x), abs=1e-6)


def test_table_weights_come_from_the_pipeline_and_the_bootstrap_is_keyed_by_seed():
    result = engine.score("china-city-innovation-2023")
    table, _ = importance(result, bootstrap=40, seed=5)
    weights = result.effective_weights
    assert table["node"].to_list() == weights["node"].to_list()
    assert table["global"].to_list() == weights["global"].to_list()
    assert table["importance"].is_not_null().all()
    assert (table["importance_low"] <= table["importance_high"]).all()
    again, _ = importance(result, bootstrap=40, seed=5)
    assert_frame_equal(table, again)
    other, _ = importance(result, bootstrap=40, seed=6)
    assert other["importance"].to_list() == table["importance"].to_list()  # the estimate does not depend on it
    assert other["importance_low"].to_list() != table["importance_low"].to_list()
    # a dimension directly under the index: its importance in its parent is its importance in the index
    dims = table.filter(pl.col("parent") == "Index")
    assert dims["importance_parent"].to_list() == dims["importance"].to_list()


def test_constant_indicator_and_too_few_units_are_named_not_nan_in_silence():
    data = normal_table(30, 3, seed=2).with_columns(x1=pl.lit(4.0))
    with pytest.warns(engine.ConstantIndicatorWarning):
        result = engine.score(flat_framework([1, 1, 1], normalisation="minmax"), data)
    table, flags = importance(result, bootstrap=0)
    row = table.filter(pl.col("node") == "x1").row(0, named=True)
    assert row["importance"] is None and "constant" in row["note"]
    assert any(f["node"] == "x1" and "constant" in f["message"] and f["level"] == "warning" for f in flags)

    few = engine.score(flat_framework([1, 1]), normal_table(12, 2, seed=3))
    table, flags = importance(few, bootstrap=0)
    assert table["importance"].is_null().all()
    assert {f["node"] for f in flags} == {"x0", "x1"}
    assert all("12 unit(s) with a value, fewer than the 20" in f["message"] for f in flags)


@pytest.mark.parametrize(("option", "value", "match"), [
    ("bootstrap", -1, "bootstrap = -1"), ("segments", 2, "segments = 2"), ("interval", 1.0, "interval = 1.0"),
    ("min_units", 3, "min_units = 3"), ("importance_ratio", 1, "importance_ratio = 1"),
])
def test_bad_options_are_refused_before_any_work(option, value, match):
    with pytest.raises(SchemaError, match=match):
        importance("no-such-framework", **{option: value})  # refused before the framework is even loaded
    with pytest.raises(SchemaError, match=match):
        engine.audit("no-such-framework", sections=["importance"], options={option: value})
