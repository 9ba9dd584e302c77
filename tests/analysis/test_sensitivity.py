"""Sobol analysis of a composite indicator: per-unit sums = array estimator, determinism, coherence."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import engine
from engine.analysis import sobol
from engine.analysis.design import n_columns
from engine.analysis.problem import build_problem
from engine.analysis.sensitivity import _batch, _evaluate, _indices_from_sums, factor_groups, sensitivity
from engine.analysis.spec import load_spec, resolve_factors
from engine.errors import SchemaError

SPEC = {"weights": [{"depth": 1, "noise": 0.25}, {"depth": 2, "noise": 0.25}],
        "aggregation": [{"depth": 0, "choices": ["arithmetic", "geometric"]}],
        "groups": {"pillar_weights": ["weight:Physical", "weight:ConEcFin", "weight:Political", "weight:Instit",
                                      "weight:P2P", "weight:Environ", "weight:Social", "weight:SusEcFin"]}}


@pytest.fixture(scope="module")
def asem_run():
    return sensitivity("asem", spec=SPEC, base_samples=1024, seed=3, n_boot=100)


def test_groups_and_evaluation_count(asem_run):
    m = asem_run.manifest
    assert set(m["groups"]) == {"pillar_weights", "weight:Conn", "weight:Sust", "aggregation:depth0"}
    assert m["evaluations"] == 1024 * (4 + 2)
    assert asem_run.unit_rank.height == 51 * 4 and asem_run.unit_score.height == 51 * 4


def test_per_unit_sums_equal_the_array_estimator():
    """The batch-wise mergeable sums give the same indices as estimate() on the full arrays."""
    nominal = engine.score("asem")
    spec = load_spec(SPEC, seed=5)
    factors = resolve_factors(spec, nominal.framework)
    problem = build_problem(nominal, spec, factors)
    groups = factor_groups(factors, dict(spec.groups))
    n, g = 256, len(groups)
    a, b = sobol.sobol_design(n, n_columns(factors), 5)
    parts = [_batch(problem, factors, a[lo:lo + 64], b[lo:lo + 64], groups) for lo in range(0, n, 64)]
    first, total = _indices_from_sums([p["rank"] for p in parts], n, g)
    matrices = [a, b]
    for _, columns in groups:
        ab = a.copy()
        ab[:, columns] = b[:, columns]
        matrices.append(ab)
    ranks, _, _ = _evaluate(problem, factors, np.concatenate(matrices))
    reference = sobol.estimate(ranks[:n], ranks[n:2 * n], ranks[2 * n:].reshape(g, n, -1))
    np.testing.assert_allclose(first, reference.first, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(total, reference.total, rtol=1e-9, atol=1e-12)


def test_results_are_bit_identical_for_1_and_2_threads(asem_run):
    one = sensitivity("asem", spec=SPEC, base_samples=1024, seed=3, n_boot=100, threads=1)
    assert (one.manifest["backend"], one.manifest["threads"]) == ("threads", 1)
    assert one.indices.equals(asem_run.indices)
    assert one.unit_rank.equals(asem_run.unit_rank) and one.unit_score.equals(asem_run.unit_score)


def test_indices_are_coherent_at_the_recommended_n(asem_run):
    t = asem_run.indices
    assert (t["first"] <= t["total_hi"]).all()  # S_i <= ST_i within the intervals
    assert t["first"].sum() <= 1.0 + 0.05
    assert ((t["first_lo"] <= t["first"]) & (t["first"] <= t["first_hi"])).all()
    # the pillar weights, moved together, matter more than the two sub-index weights
    total = dict(zip(t["group"].to_list(), t["total"].to_list()))
    assert total["pillar_weights"] > total["weight:Conn"]


def test_a_factor_that_cannot_matter_gets_exactly_zero():
    spec = {"weights": [{"depth": 1, "noise": 0.25}, {"nodes": ["LPI"], "noise": 0.0}]}
    run = sensitivity("asem", spec=spec, base_samples=256, seed=1, n_boot=50)
    row = run.indices.filter(pl.col("group") == "weight:LPI").row(0, named=True)
    assert (row["first"], row["total"], row["first_lo"], row["first_hi"]) == (0.0, 0.0, 0.0, 0.0)
    dead = run.unit_rank.filter(pl.col("group") == "weight:LPI")
    assert (dead["first"] == 0.0).all() and (dead["total"] == 0.0).all()


def test_bad_arguments_fail_early():
    with pytest.raises(SchemaError, match="base_samples must be at least 2"):
        sensitivity("asem", base_samples=1)
    with pytest.raises(SchemaError, match="in two groups"):
        sensitivity("asem", spec={"weights": [{"depth": 1, "noise": 0.2}],
                                  "groups": {"a": ["weight:Conn"], "b": ["weight:Conn"]}}, base_samples=16)


@pytest.mark.dask
def test_dask_workers_give_bit_identical_indices(asem_run):
    run = sensitivity("asem", spec=SPEC, base_samples=1024, seed=3, n_boot=100, workers=2)
    assert (run.manifest["backend"], run.manifest["workers"]) == ("dask", 2)  # workers alone select Dask
    assert run.indices.equals(asem_run.indices)
    assert run.unit_rank.equals(asem_run.unit_rank) and run.unit_score.equals(asem_run.unit_score)


def test_cli_sensitivity_writes_tables(tmp_path, capsys):
    from engine.cli import main

    out = tmp_path / "sens"
    assert main(["sensitivity", "-f", "asem", "-N", "256", "--seed", "2", "--bootstrap", "20", "-q",
                 "-o", str(out)]) == 0
    text = capsys.readouterr().out
    # default spec: noise on every weight, analysed by level (3 groups: depths 1, 2, 3)
    assert "1,280 evaluations" in text and "weights:depth1" in text and "weights:depth3" in text
    assert {p.name for p in out.iterdir()} == {"indices.parquet", "unit_rank_indices.parquet",
                                               "unit_score_indices.parquet", "manifest.json"}


def test_second_order_indices_of_the_rank_shift(asem_run):
    run = sensitivity("asem", spec=SPEC, base_samples=1024, seed=3, n_boot=100, second_order=True)
    assert run.manifest["evaluations"] == 1024 * (2 * 4 + 2)
    assert run.second.height == 4 * 3 // 2
    # the same A, B and AB_i evaluations: per-unit indices do not change; R_S indices shift only
    # through the centring (which pools the BA_i outputs, as SALib does)
    assert run.unit_rank.equals(asem_run.unit_rank)
    np.testing.assert_allclose(run.indices["total"], asem_run.indices["total"], atol=0.02)
    values = run.second["second"].to_numpy()
    assert np.isfinite(values).all() and (np.abs(values) < 1).all()


def test_a_small_memory_budget_gives_bit_identical_indices(asem_run, monkeypatch):
    """Forced to evaluate 3 base samples (18 rows) at a time instead of a batch's 512 (3 does not
    divide 512): the same indices and per-unit indices, bit for bit, and no evaluation was larger."""
    from engine.analysis import memory
    from engine.analysis import sensitivity as module

    per_sample = memory.sobol_sample_bytes(51, 1, 4)
    assert memory.sobol_sub_batch(51, 1, 4) == 512
    monkeypatch.setattr(memory, "SOBOL_EVALUATION_BYTES", 3 * per_sample + 1)
    assert memory.sobol_sub_batch(51, 1, 4) == 3
    rows = []

    def evaluate(problem, factors, u, n_lanes=None):
        rows.append(len(u))
        return _evaluate(problem, factors, u, n_lanes)

    monkeypatch.setattr(module, "_evaluate", evaluate)
    small = sensitivity("asem", spec=SPEC, base_samples=1024, seed=3, n_boot=100)
    assert max(rows) == 3 * 6 and sum(rows) == 1024 * 6
    assert small.indices.equals(asem_run.indices)
    assert small.unit_rank.equals(asem_run.unit_rank) and small.unit_score.equals(asem_run.unit_score)


def test_bucket_ranks_equal_the_packed_key_path():
    """_evaluate ranks with the bucket sort (rank_batch): the same ranks, scores and R_S, bit for bit,
    as the Monte Carlo's packed-key path it replaced, with ties and missing values, on 1 and 2 lanes."""
    from engine.analysis.design import map_parameters
    from engine.analysis.montecarlo import split_call
    from engine.schema import framework_from_dict
    from tests.analysis.conftest import city_data, city_framework

    nominal = engine.score(framework_from_dict(city_framework(defaults={"min_coverage": 0.6})),
                           city_data(n_units=300, missing=0.1, ties=True))
    spec = load_spec({"weights": [{"depth": 1, "noise": 0.5}], "exclusion": True,
                      "aggregation": [{"depth": 0, "choices": ["arithmetic", "geometric"]}]}, seed=1)
    factors = resolve_factors(spec, nominal.framework)
    problem = build_problem(nominal, spec, factors)
    u = np.random.default_rng(0).random((40, n_columns(factors)))
    *_, scores, shift, ranks = split_call(problem, map_parameters(u, factors, problem), 40, 1, keep=True,
                                          count=False)
    assert (ranks == 0).any() and (ranks[:, 0, 0] == ranks[:, 0, 1]).all()  # missing ranks, ties
    for lanes in (1, 2):
        got_ranks, got_scores, got_shift = _evaluate(problem, factors, u, lanes)
        np.testing.assert_array_equal(got_ranks, ranks[:, 0].astype(np.float64))
        np.testing.assert_array_equal(got_scores, scores[:, 0])
        np.testing.assert_array_equal(got_shift, shift[:, 0])
