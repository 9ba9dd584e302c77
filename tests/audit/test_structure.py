"""Audit section "structure": correlations with p-values, flags, Cronbach's alpha, PCA.

Checked against independent values: a published worked example of alpha, hand computations,
NumPy (SVD, ranks) and the t-distribution formula for the p-value of r."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

import engine
from engine.audit.structure import cronbach_alpha, node_values, pair_statistics, pca
from engine.errors import SchemaError

from .tiny import TABLE, framework


def test_alpha_matches_a_published_worked_example():
    # Z. Bobbitt, "How to Calculate Cronbach's Alpha in Python", Statology, 17 Aug 2021: ten customers
    # rate three questions; pingouin.cronbach_alpha gives 0.7734375 ("Cronbach's Alpha turns out to be 0.773").
    items = np.array([[1, 2, 2, 3, 2, 2, 3, 3, 2, 3],
                      [1, 1, 1, 2, 3, 3, 2, 3, 3, 3],
                      [1, 1, 2, 1, 2, 3, 3, 3, 2, 3]], float).T
    alpha, n = cronbach_alpha(items)
    assert n == 10
    assert alpha == pytest.approx(0.7734375, abs=1e-12)


def test_alpha_by_hand_listwise_and_undefined_cases():
    # var(x) = 1, var(y) = 7/3, var(x + y) = 19/3  ->  alpha = 2 (1 - (10/3) / (19/3)) = 18/19.
    items = np.array([[1.0, 2], [2, 3], [3, 5], [9, np.nan]])
    assert cronbach_alpha(items) == (pytest.approx(18 / 19, abs=1e-15), 3)  # the row with a gap is left out
    assert np.isnan(cronbach_alpha(items[:, :1])[0])  # one item: undefined
    assert np.isnan(cronbach_alpha(np.array([[1.0, 2], [2, 1]]))[0])  # constant total


def test_pair_statistics_against_numpy_and_the_t_formula():
    rng = np.random.default_rng(18)
    x = rng.normal(size=40)
    y = 0.5 * x + rng.normal(size=40)
    x[3], y[7] = np.nan, np.nan
    got = pair_statistics(x, y)
    keep = ~(np.isnan(x) | np.isnan(y))
    n = int(keep.sum())
    r = np.corrcoef(x[keep], y[keep])[0, 1]
    rho = np.corrcoef(stats.rankdata(x[keep]), stats.rankdata(y[keep]))[0, 1]
    t = r * np.sqrt((n - 2) / (1 - r**2))
    assert got["n"] == n == 38
    assert got["pearson"] == pytest.approx(r, abs=1e-12)
    assert got["spearman"] == pytest.approx(rho, abs=1e-12)
    assert got["pearson_p"] == pytest.approx(2 * stats.t.sf(abs(t), n - 2), rel=1e-9)


def test_pair_statistics_degenerate_cases_are_nan_not_errors():
    assert np.isnan(pair_statistics(np.ones(5), np.arange(5.0))["pearson"])  # constant side
    two = pair_statistics(np.array([1.0, 2, np.nan]), np.array([5.0, 3, 1]))
    assert two["n"] == 2 and two["pearson"] == -1.0 and np.isnan(two["pearson_p"])  # r defined, p not


def test_pca_against_the_svd_of_standardised_data():
    rng = np.random.default_rng(7)
    base = rng.normal(size=(60, 1))
    items = np.hstack([base + rng.normal(scale=s, size=(60, 1)) for s in (0.3, 0.6, 1.0, 2.0)])
    values, first, n = pca(items)
    z = (items - items.mean(axis=0)) / items.std(axis=0, ddof=1)
    _, singular, vt = np.linalg.svd(z, full_matrices=False)
    assert n == 60
    np.testing.assert_allclose(values, singular**2 / (n - 1), atol=1e-12)
    np.testing.assert_allclose(first, vt[0] * np.sign(vt[0].sum()), atol=1e-12)
    # two identical columns: eigenvalues 2 and 0, PC1 = (1, 1)/sqrt(2)
    values, first, _ = pca(np.array([[1.0, 1], [2, 2], [4, 4]]))
    np.testing.assert_allclose(values, [2, 0], atol=1e-12)
    np.testing.assert_allclose(first, [2**-0.5, 2**-0.5], atol=1e-12)
    with pytest.raises(ValueError, match="constant"):
        pca(np.array([[1.0, 1], [2, 1], [4, 1]]))


def test_tiny_index_correlations_flags_alpha_and_pca():
    result = engine.audit(framework(), TABLE, sections=["structure"])
    corr = result["structure_correlations"]
    values = node_values(result.score, "normalised")
    ids = list(result.score.framework.node_ids)
    # every row equals a direct computation on the pipeline's own normalised values and scores
    for row in corr.iter_rows(named=True):
        a, b = values[:, ids.index(row["node"])], values[:, ids.index(row["other"])]
        keep = ~(np.isnan(a) | np.isnan(b))
        assert row["n"] == keep.sum()
        assert row["pearson"] == pytest.approx(stats.pearsonr(a[keep], b[keep]).statistic, abs=1e-12)
    pair = corr.filter((pl.col("node") == "x1") & (pl.col("other") == "x2")).row(0, named=True)
    assert pair["pearson"] == pytest.approx(1.0) and pair["flag"] == "redundant"
    assert corr.filter((pl.col("node") == "x1") & (pl.col("other") == "x3"))["flag"].item() == "negative"
    assert corr.filter(pl.col("node") == "x3")["n"].min() == 7  # pairwise: h lacks x3 only
    assert set(corr["kind"]) == {"components", "parent", "index"}
    # index rows only below the first level (for A and B the parent is the index)
    assert corr.filter(pl.col("kind") == "index")["node"].to_list() == ["x1", "x2", "x3", "x4"]
    flags = result.flags
    one = flags.filter((pl.col("node") == "B") & pl.col("message").str.contains("component"))
    assert one.height == 1 and "one component ('x4')" in one["message"].item() and one["level"].item() == "warning"
    alpha = result["structure_alpha"]
    assert np.isnan(alpha.filter(pl.col("aggregate") == "B")["alpha"].item())
    a_items = values[:7, :3]  # listwise: unit h has no x3
    assert alpha.filter(pl.col("aggregate") == "A").row(0, named=True)["n_units"] == 7
    assert alpha.filter(pl.col("aggregate") == "A")["alpha"].item() == pytest.approx(cronbach_alpha(a_items)[0])
    eigen = result["structure_pca"].filter(pl.col("aggregate") == "A")
    assert eigen["variance_share"].sum() == pytest.approx(1.0)
    assert eigen["eigenvalue"].sum() == pytest.approx(3.0)  # trace of a 3 × 3 correlation matrix
    assert "structure" in result.verdict() and "redundant" in result.verdict()


def test_constant_indicator_and_too_few_units_are_flagged_by_node():
    table = TABLE.with_columns(x4=pl.lit(2.0))
    with pytest.warns(engine.ConstantIndicatorWarning):
        result = engine.audit(framework(), table, sections=["structure"], options={"structure_stage": "treated"})
    constant = result.flags.filter((pl.col("node") == "x4") & pl.col("message").str.contains("constant"))
    assert constant.height == 1
    two = engine.audit(framework(), TABLE.slice(2, 2), sections=["structure"])
    few = two.flags.filter(pl.col("message").str.contains("too few units"))
    assert {"A", "Index"} <= set(few["node"])
    assert two["structure_correlations"]["pearson_p"].is_nan().all()


def test_more_than_one_eigenvalue_above_one_is_flagged():
    # three indicators 120 degrees apart in the plane of u and v: every pair has r = -1/2, so the
    # correlation matrix has eigenvalues 3/2, 3/2 and 0 (trace 3, rank 2).
    u, v = np.array([1.0, -1, 1, -1]), np.array([1.0, 1, -1, -1])
    table = pl.DataFrame({"unit": list("abcd"), "region": ["N"] * 4, "x1": u, "x2": -u / 2 + np.sqrt(3) / 2 * v,
                          "x3": -u / 2 - np.sqrt(3) / 2 * v, "x4": [1.0, 2, 3, 4]})
    result = engine.audit(framework(), table, sections=["structure"])
    eigen = result["structure_pca"].filter(pl.col("aggregate") == "A")["eigenvalue"]
    np.testing.assert_allclose(eigen, [1.5, 1.5, 0], atol=1e-12)
    flagged = result.flags.filter((pl.col("node") == "A") & pl.col("message").str.contains("not one-dimensional"))
    assert flagged.height == 1 and "2 eigenvalues exceed 1" in flagged["message"].item()


@pytest.mark.parametrize("options, match", [
    ({"structure_stage": "cooked"}, "structure_stage must be one of"),
    ({"weak": 2}, "weak must be a number in"),
    ({"redundant": "high"}, "redundant must be a number in"),
    ({"threshold": 0.5}, r"unknown audit option\(s\) \['threshold'\]"),
])
def test_bad_options_are_refused_before_scoring(options, match):
    with pytest.raises(SchemaError, match=match):
        engine.audit(framework(), "no such data file.csv", sections=["structure"], options=options)


def test_unknown_section_is_refused():
    with pytest.raises(SchemaError, match=r"unknown audit section\(s\) \['coherence'\]"):
        engine.audit(framework(), TABLE, sections=["coherence"])
    with pytest.raises(SchemaError, match="no audit section given"):
        engine.audit(framework(), TABLE, sections=[])


@pytest.mark.parametrize("name", ["china-city-innovation-2023", "asem"])
def test_shipped_frameworks_end_to_end(name):
    result = engine.audit(name, sections=["data", "structure"])
    fw = result.score.framework
    alpha = result["structure_alpha"]
    assert alpha["aggregate"].to_list() == [a.id for a in fw.aggregates]
    multi = alpha.filter(pl.col("n_components") > 1)
    assert multi["alpha"].is_finite().all()
    loadings = result["structure_pca_loadings"]
    assert loadings.height == sum(len(a.children) for a in fw.aggregates if len(a.children) > 1)
    corr = result["structure_correlations"]
    expected = sum(len(a.children) * (len(a.children) - 1) // 2 for a in fw.aggregates)
    assert corr.filter(pl.col("kind") == "components").height == expected
    assert corr["pearson"].is_finite().all()
