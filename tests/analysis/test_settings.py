"""Pipeline settings and weight vectors as uncertain factors (issue 16.10): a factor that cannot
matter changes nothing (Monte Carlo) and gets exactly 0 (Sobol); a factor that matters moves the
ranks as plain pipeline runs with each of its values predict; threads do not change a bit."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import engine
from engine.analysis import problem as problem_module
from engine.analysis.design import replicate_uniforms
from engine.analysis.sensitivity import sensitivity
from engine.analysis.spec import apply_settings, load_spec, resolve_factors
from engine.analysis.uncertainty import uncertainty
from engine.errors import DataError, ImputationWarning, MissingRankWarning, SchemaError
from engine.schema import framework_from_dict
from tests.analysis.conftest import city_data, city_framework


def framework(treated: str = "x0", screening: float | None = None, **extra):
    """The miniature index with COINr's skew/kurtosis treatment on one indicator."""
    document = city_framework(**extra)
    for node in document["nodes"]:
        if node["id"] == treated:
            node["treatment"] = {"method": "skew_kurtosis"}
    if screening is not None:
        document["screening"] = {"min_coverage": screening}
    return framework_from_dict(document)


def tame_data(n_units: int = 40) -> pl.DataFrame:
    """x0 evenly spread (no outlier: the treatment never acts on it); x1 uniform but for one far
    outlier (winsorising one point fixes it; without, the treatment takes logs)."""
    data = city_data(n_units)
    x1 = np.random.default_rng(1).uniform(1.0, 9.0, n_units)
    x1[0] = 400.0
    return data.with_columns(pl.Series("x0", np.linspace(1.0, 9.0, n_units)), pl.Series("x1", x1))


def index_ranks(result, units: list | None = None) -> np.ndarray:
    """The index's ranks of a pipeline run as the analyses count them (0 = no rank), in the order
    of ``units`` (default: the run's own units); a unit the run does not rank gets 0."""
    stages = result.stages
    ranks = np.nan_to_num(stages.ranks[:, -1]).astype(np.int64)
    if units is None:
        return ranks
    own = dict(zip(stages.inputs.units.filter(pl.Series(stages.kept)).to_list(), ranks.tolist(), strict=True))
    return np.array([own.get(u, 0) for u in units], np.int64)


def expected_acceptability(runs: list[np.ndarray], choice: np.ndarray) -> np.ndarray:
    """P(rank = r) (units × (ranks + missing)) when replicate i is plain pipeline run ``choice[i]``."""
    n_units = len(runs[0])
    counts = np.zeros((n_units, n_units + 1), np.int64)
    for k, ranks in enumerate(runs):
        column = np.where(ranks > 0, ranks - 1, n_units)
        counts[np.arange(n_units), column] += np.count_nonzero(choice == k)
    return counts / len(choice)


def acceptability(result) -> np.ndarray:
    """P(rank = r) and P(no rank) of every unit, in the order of the problem's units."""
    table = result.statistics.acceptability[result.problem.target_ids[0]].join(
        result.units.select("unit", "p_missing"), on="unit")
    order = pl.DataFrame({"unit": result.problem.units})
    return order.join(table, on="unit", how="left", maintain_order="left").drop("unit").to_numpy()


def test_a_setting_that_cannot_matter_leaves_the_distribution_unchanged():
    """winmax of an indicator without outliers: every value gives the nominal data, so the run
    equals one whose third design column drives nothing (a zero-noise weight)."""
    fw, data = framework("x0"), tame_data()
    placeholder = uncertainty(fw, data, {"weights": [{"depth": 1, "noise": 0.3}, {"nodes": ["x5"], "noise": 0.0}]},
                              replicates=2048, seed=4)
    varied = uncertainty(fw, data, {"weights": [{"depth": 1, "noise": 0.3}],
                                    "settings": [{"setting": "treatment.winmax", "range": [1, 5]}]},
                         replicates=2048, seed=4)
    assert varied.manifest["factors"][-1] == "setting:treatment.winmax"
    assert varied.problem.zt.shape[0] == 1 + 5
    assert varied.units.equals(placeholder.units)
    assert varied.statistics.acceptability["Index"].equals(placeholder.statistics.acceptability["Index"])
    # a weighting method that gives the same shares (equal weights of two children weighted 1, 1)
    equal = uncertainty(fw, data, {"weights": [{"depth": 1, "noise": 0.3}], "settings": [
        {"setting": "weighting.method", "nodes": ["S1"], "values": ["manual", "equal"]}]}, replicates=2048, seed=4)
    assert equal.manifest["factors"][-1] == "setting:weighting.method:S1"
    assert equal.units.equals(placeholder.units)
    # vectors that are all the nominal weights: the same again
    same = uncertainty(fw, data, {"weights": [{"depth": 1, "noise": 0.3}], "weight_sets": [{"S1": 1, "S2": 1}] * 3},
                       replicates=2048, seed=4)
    assert same.manifest["factors"][-1] == "weight_sets"
    assert same.units.equals(placeholder.units)


def test_a_setting_that_matters_moves_ranks_as_plain_runs_predict():
    """winmax 0 or 1 on an indicator with one far outlier: each replicate ranks as the plain
    pipeline with that winmax does, in the proportions the design draws."""
    fw, data = framework("x1"), tame_data()
    spec = {"settings": [{"setting": "treatment.winmax", "values": [0, 1]}]}
    run = uncertainty(fw, data, spec, replicates=1024, seed=9)
    factor = resolve_factors(load_spec(spec), fw)[0]
    runs = [index_ranks(engine.score(apply_settings(fw, [(factor, v)]), data), run.problem.units) for v in (0, 1)]
    assert not np.array_equal(runs[0], runs[1])  # the two values rank differently
    choice = np.minimum((replicate_uniforms(9, 0, 1024, 1)[:, 0] * 2).astype(np.int64), 1)
    assert 0 < choice.sum() < 1024
    np.testing.assert_array_equal(acceptability(run), expected_acceptability(runs, choice))
    assert run.manifest["nominal_matches_pipeline"]


def test_a_screening_threshold_changes_which_units_are_ranked():
    """A looser threshold keeps more units: the analysis ranks every unit some variant keeps, and
    a unit is unranked exactly in the replicates whose threshold drops it."""
    fw = framework("x0", screening=0.8, data={"unit": "unit", "unit_label": "name"})
    data = city_data(30, missing=0.15, seed=5)
    data = data.with_columns(("City " + pl.col("unit")).alias("name"))
    spec = {"settings": [{"setting": "screening.min_coverage", "values": [0.8, 0.5]}]}
    nominal = engine.score(fw, data)
    with pytest.warns(MissingRankWarning, match="7 unit.s. have no nominal rank either"):
        run = uncertainty(fw, data, spec, replicates=1024, seed=2)
    factor = resolve_factors(load_spec(spec), fw)[0]
    loose = engine.score(apply_settings(fw, [(factor, 0.5)]), data)
    assert len(run.problem.units) == loose.table.height > nominal.table.height
    assert sorted(run.problem.units) == sorted(loose.table["unit"].to_list())
    runs = [index_ranks(nominal, run.problem.units), index_ranks(loose, run.problem.units)]
    choice = np.minimum((replicate_uniforms(2, 0, 1024, 1)[:, 0] * 2).astype(np.int64), 1)
    np.testing.assert_array_equal(acceptability(run), expected_acceptability(runs, choice))
    assert run.manifest["nominal_matches_pipeline"]
    dropped = run.units.filter(pl.col("unit").is_in(sorted(set(run.problem.units) - set(nominal.table["unit"]))))
    assert dropped.height > 0 and dropped["nominal_rank"].is_null().all()
    names = run.problem.unit_names()  # the names of every unit ranked, screened out nominally or not
    assert set(run.problem.units) <= set(names["unit"]) and names.columns == ["unit", "name"]
    shown = run.output_tables()["units"].filter(pl.col("unit").is_in(dropped["unit"]))["name"]
    assert shown.to_list() == [f"City {u}" for u in dropped["unit"]]


def test_imputation_and_denominator_settings_build_their_variants():
    document = city_framework()
    for node in document["nodes"]:
        if node["id"] == "x2":
            node["denominator"] = "pop"
    fw = framework_from_dict(document)
    data = city_data(30, missing=0.1, seed=8).with_columns(pl.Series("pop", np.linspace(1.0, 4.0, 30)))
    spec = {"settings": [{"setting": "imputation.method", "values": ["mean", "median"]},
                         {"setting": "denomination.enabled", "values": [True, False]}]}
    run = uncertainty(fw, data, spec, replicates=1024, seed=3)
    assert run.problem.zt.shape[0] == 1 + 4 and run.problem.setting_levels == (2, 2)
    factors = resolve_factors(load_spec(spec), fw)
    # variant 1 + 2 a + b: imputation value a, denominators value b (last fastest); check one against the pipeline
    plain = engine.score(apply_settings(fw, [(factors[0], "median"), (factors[1], False)]), data)
    np.testing.assert_array_equal(run.problem.zt[1 + 2 * 1 + 1].T, plain.stages.normalised)
    assert not np.array_equal(run.problem.zt[1], run.problem.zt[4])


def test_a_normalisation_parameter_is_a_setting():
    """minmax onto [0, 100] or [1, 100] for two indicators: each variant is the plain pipeline's
    normalised data with that range, and under a geometric index the choice moves ranks."""
    document = city_framework()
    document["nodes"][0]["aggregation"] = {"method": "geometric"}
    fw, data = framework_from_dict(document), tame_data()
    spec = {"settings": [{"setting": "normalisation.range", "values": [[1, 100], [10, 100]],
                          "indicators": ["x2", "x4"]}]}
    run = uncertainty(fw, data, spec, replicates=1024, seed=1)
    factor = resolve_factors(load_spec(spec), fw)[0]
    assert factor.name == "setting:normalisation.range:x2+x4"
    plain = [engine.score(apply_settings(fw, [(factor, v)]), data) for v in ([1, 100], [10, 100])]
    for k, result in enumerate(plain):
        np.testing.assert_array_equal(run.problem.zt[1 + k].T, result.stages.normalised)
    runs = [index_ranks(result, run.problem.units) for result in plain]
    assert not np.array_equal(runs[0], runs[1])
    choice = np.minimum((replicate_uniforms(1, 0, 1024, 1)[:, 0] * 2).astype(np.int64), 1)
    np.testing.assert_array_equal(acceptability(run), expected_acceptability(runs, choice))


def test_a_warning_of_the_variants_is_given_once():
    """Both imputation variants leave x3 missing in a region without any x3 value: one
    ImputationWarning naming the first variant, not one per variant."""
    fw = framework_from_dict(city_framework(data={"unit": "unit", "groups": ["region"]}))
    data = city_data(30, seed=4).with_columns(pl.Series("region", ["a", "b", "c"] * 10))
    data = data.with_columns(pl.when(pl.col("region") == "b").then(None).otherwise(pl.col("x3")).alias("x3"))
    spec = {"settings": [{"setting": "imputation.method", "indicators": ["x3"],
                          "values": [{"method": "group_mean", "group": "region"},
                                     {"method": "group_median", "group": "region"}]}]}
    with pytest.warns(ImputationWarning) as record:
        run = uncertainty(fw, data, spec, replicates=1024, seed=1)
    messages = [str(w.message) for w in record if w.category is ImputationWarning]
    assert len(messages) == 1
    assert messages[0].endswith("(uncertainty variant imputation.method = {'method': 'group_mean', 'group': 'region'})")
    assert run.problem.zt.shape[0] == 3


def test_a_weighting_method_is_a_setting():
    """manual, equal or entropy weights below the index and S1: each replicate ranks as the plain
    pipeline with that weighting (entropy from the nominal normalised data, as the pipeline)."""
    fw, data = framework("x0"), tame_data()
    values = ["manual", "equal", "entropy"]
    spec = {"settings": [{"setting": "weighting.method", "nodes": ["Index", "S1"], "values": values}]}
    run = uncertainty(fw, data, spec, replicates=1024, seed=3)
    factor = resolve_factors(load_spec(spec), fw)[0]
    assert factor.name == "setting:weighting.method:Index+S1" and run.problem.zt.shape[0] == 1  # no data variant
    runs = [index_ranks(engine.score(apply_settings(fw, [(factor, v)]), data), run.problem.units) for v in values]
    assert len({tuple(r) for r in runs}) == 3
    choice = np.minimum((replicate_uniforms(3, 0, 1024, 1)[:, 0] * 3).astype(np.int64), 2)
    np.testing.assert_array_equal(acceptability(run), expected_acceptability(runs, choice))


@pytest.mark.dask
def test_dask_workers_give_the_same_tables(expert_sets):
    fw, data = framework("x1"), tame_data()
    spec = {"weight_sets": expert_sets, "settings": [{"setting": "treatment.winmax", "values": [0, 1, 2]}]}
    local = uncertainty(fw, data, spec, replicates=4096, seed=5, threads=2)
    dask = uncertainty(fw, data, spec, replicates=4096, seed=5, backend="dask", workers=2)
    assert dask.manifest["backend"] == "dask"
    assert dask.units.equals(local.units)


@pytest.fixture(scope="module")
def expert_sets():
    return [{"D1": 1.0, "D2": 1.0, "S1": 3.0}, {"D1": 4.0, "D2": 1.0, "S2": 0.5}]


def test_weight_sets_mix_the_rankings_of_each_vector(expert_sets):
    fw, data = framework("x0"), tame_data()
    run = uncertainty(fw, data, {"weight_sets": expert_sets}, replicates=1024, seed=6)
    nominal = engine.score(fw, data)
    runs = [index_ranks(nominal.reaggregate(set=w), run.problem.units) for w in expert_sets]
    assert not np.array_equal(runs[0], runs[1])
    choice = np.minimum((replicate_uniforms(6, 0, 1024, 1)[:, 0] * 2).astype(np.int64), 1)
    np.testing.assert_array_equal(acceptability(run), expected_acceptability(runs, choice))


def test_identical_weight_sets_give_one_ranking(expert_sets):
    fw, data = framework("x0"), tame_data()
    run = uncertainty(fw, data, {"weight_sets": [expert_sets[1]] * 3}, replicates=1024, seed=6)
    expected = index_ranks(engine.score(fw, data).reaggregate(set=expert_sets[1]), run.units["unit"].to_list())
    assert not np.array_equal(expected, run.units["nominal_rank"].to_numpy())
    np.testing.assert_array_equal(run.units["best_rank"].to_numpy(), expected)
    np.testing.assert_array_equal(run.units["worst_rank"].to_numpy(), expected)


def test_factors_that_cannot_matter_get_exactly_zero_sobol_indices(expert_sets):
    fw, data = framework("x0"), tame_data()
    spec = {"weights": [{"depth": 1, "noise": 0.3}], "weight_sets": [{"S1": 3.0, "S2": 0.5}] * 2,
            "settings": [{"setting": "treatment.winmax", "range": [1, 5]}]}
    run = sensitivity(fw, data, spec, base_samples=256, seed=2, n_boot=50, confidence=0.9)
    for group in ("weight_sets", "setting:treatment.winmax"):
        row = run.indices.filter(pl.col("group") == group).row(0, named=True)
        assert (row["first"], row["total"], row["first_lo"], row["first_hi"]) == (0.0, 0.0, 0.0, 0.0)
        dead = run.unit_rank.filter(pl.col("group") == group)
        assert (dead["first"] == 0.0).all() and (dead["total"] == 0.0).all()
    live = run.indices.filter(pl.col("group") == "weight:D1").row(0, named=True)
    assert live["total"] > 0
    assert run.manifest["bootstrap"]["confidence"] == 0.9


def test_a_setting_that_matters_gets_a_positive_sobol_index():
    fw, data = framework("x1"), tame_data()
    spec = {"weights": [{"depth": 1, "noise": 0.1}], "settings": [{"setting": "treatment.winmax", "values": [0, 1]}]}
    run = sensitivity(fw, data, spec, base_samples=256, seed=2, n_boot=50)
    row = run.indices.filter(pl.col("group") == "setting:treatment.winmax").row(0, named=True)
    assert row["total"] > 0
    assert run.manifest["bootstrap"]["confidence"] == 0.95


def test_confidence_level_from_the_spec_and_the_keyword():
    fw, data = framework("x0"), tame_data()
    spec = {"weights": [{"depth": 1, "noise": 0.3}], "confidence": 0.9}
    wide = sensitivity(fw, data, {**spec, "confidence": 0.99}, base_samples=128, seed=1, n_boot=100)
    narrow = sensitivity(fw, data, spec, base_samples=128, seed=1, n_boot=100)
    assert narrow.manifest["bootstrap"]["confidence"] == 0.9
    assert (narrow.indices["total_hi"] - narrow.indices["total_lo"] <=
            wide.indices["total_hi"] - wide.indices["total_lo"]).all()
    keyword = sensitivity(fw, data, {**spec, "confidence": 0.99}, base_samples=128, seed=1, n_boot=100,
                          confidence=0.9)
    assert keyword.indices.equals(narrow.indices)
    with pytest.raises(SchemaError, match=r"confidence must lie strictly between 0 and 1, got 1\.5"):
        sensitivity(fw, data, spec, base_samples=128, confidence=1.5)
    with pytest.raises(SchemaError, match="invalid uncertainty specification at confidence"):
        load_spec({"confidence": 1.0})


def test_cli_sensitivity_confidence(tmp_path, capsys):
    from engine.cli import main

    assert main(["sensitivity", "-f", "asem", "-N", "64", "--seed", "1", "--bootstrap", "20", "--confidence", "0.9",
                 "-q"]) == 0
    out = capsys.readouterr().out
    assert "(90% bootstrap intervals)" in out and "90% interval" in out and "95%" not in out


def test_results_are_bit_identical_for_1_and_2_threads(expert_sets):
    fw, data = framework("x1"), tame_data()
    spec = {"weights": [{"nodes": ["x0", "x3"], "noise": 0.2}], "weight_sets": expert_sets,
            "settings": [{"setting": "treatment.winmax", "values": [0, 1, 2]},
                         {"setting": "treatment.skew_threshold", "range": [1.5, 2.5], "levels": 3}]}
    one = uncertainty(fw, data, spec, replicates=4096, seed=5, threads=1, block_size=1024)
    two = uncertainty(fw, data, spec, replicates=4096, seed=5, threads=2, block_size=4096)
    assert one.units.equals(two.units)
    assert one.problem.zt.shape[0] == 1 + 9
    sobol_one = sensitivity(fw, data, spec, base_samples=128, seed=5, n_boot=20, threads=1)
    sobol_two = sensitivity(fw, data, spec, base_samples=128, seed=5, n_boot=20, threads=2)
    assert sobol_one.indices.equals(sobol_two.indices) and sobol_one.unit_rank.equals(sobol_two.unit_rank)


@pytest.mark.parametrize("spec, match", [
    ({"settings": [{"setting": "treatment.bogus", "values": [1]}]}, "unknown setting 'treatment.bogus'"),
    ({"settings": [{"setting": "treatment.winmax", "values": [1], "range": [1, 2]}]}, "exactly one of `values`"),
    ({"settings": [{"setting": "treatment.winmax"}]}, "exactly one of `values` or `range`"),
    ({"settings": [{"setting": "treatment.skew_threshold", "range": [1.5, 2.5]}]}, "of non-integers needs `levels`"),
    ({"settings": [{"setting": "treatment.winmax", "values": [1], "levels": 3}]}, "`levels` goes with `range`"),
    ({"settings": [{"setting": "treatment.winmax", "range": [5, 1]}]}, r"range \[5, 1\] must have low < high"),
    ({"settings": [{"setting": "screening.min_coverage", "values": [0.5], "indicators": ["x0"]}]},
     "screening.min_coverage does not apply to indicators"),
    ({"settings": [{"setting": "weighting.method", "values": ["equal"], "indicators": ["x0"]}]},
     "weighting.method does not apply to indicators"),
    ({"settings": [{"setting": "treatment.winmax", "values": [1], "nodes": ["S1"]}]},
     "`nodes` selects the aggregates of weighting.method, not of treatment.winmax"),
    ({"settings": [{"setting": "denomination.enabled", "values": ["yes", "no"]}]},
     "denomination.enabled takes true or false, got \\['yes', 'no'\\]"),
    ({"normalisation": {"choices": ["minmax", "rank"]},
      "settings": [{"setting": "normalisation.range", "values": [[0, 100], [1, 100]]}]},
     "cannot be varied together with normalisation.choices"),
])
def test_bad_setting_rules_are_refused_when_loaded(spec, match):
    with pytest.raises(SchemaError, match=match):
        load_spec(spec)


@pytest.mark.parametrize("spec, match, node", [
    ({"settings": [{"setting": "treatment.winmax", "values": [1], "indicators": ["nope"]}]},
     "names unknown indicator", "nope"),
    ({"settings": [{"setting": "treatment.winmax", "values": [1], "indicators": ["x2"]}]},
     "does not apply to 'x2': it has treatment 'none', which takes no 'winmax'", "x2"),
    ({"settings": [{"setting": "denomination.enabled", "values": [True, False]}]}, "applies to no indicator", None),
    ({"settings": [{"setting": "treatment.winmax", "values": [1, 2]},
                   {"setting": "treatment.method", "values": ["none", "log"], "indicators": ["x0", "x1"]}]},
     "the treatment of x0 is varied by two settings", "x0"),
    ({"settings": [{"setting": "treatment.winmax", "values": [3, "many"]}]}, "treatment.winmax = 'many': ", "x0"),
    ({"settings": [{"setting": "imputation.method", "values": ["mean", "group_mean"]}]},
     "imputation.method = 'group_mean': ", "x0"),
    ({"settings": [{"setting": "weighting.method", "values": ["equal"], "nodes": ["S1", "x0"]}]},
     "names node.s. that are not aggregates: 'x0'", "x0"),
    ({"weights": [{"nodes": ["x3"], "noise": 0.2}],
      "settings": [{"setting": "weighting.method", "values": ["manual", "equal"], "nodes": ["S1"]}]},
     "reweights a node whose weight a weight rule or weight set varies", "x3"),
    ({"settings": [{"setting": "weighting.method", "values": ["equal", "ahp"], "nodes": ["S1"]}]},
     "weighting.method = 'ahp': ", "S1"),
    ({"weight_sets": [{"D1": 1.0}, {"Dx": 2.0}]}, r"weight_sets\[1\] names unknown or unsuitable node", "Dx"),
    ({"weight_sets": [{"Index": 1.0}]}, "names unknown or unsuitable node", "Index"),
    ({"weight_sets": [{"D1": 1.0, "S1": -2.0}]}, "the weight of 'S1' is -2.0; weights must be finite", "S1"),
    ({"weight_sets": [{"D1": 0, "D2": 0}]}, "gives every child of 'Index' weight 0", "Index"),
    ({"weights": [{"nodes": ["D2"], "noise": 0.2}], "weight_sets": [{"D1": 1.0, "D2": 3.0}]},
     "sets the weight of a node a weight rule varies", "D2"),
])
def test_bad_factors_are_refused_naming_the_node(spec, match, node):
    fw = framework("x0")
    with pytest.raises(SchemaError, match=match) as err:
        resolve_factors(load_spec(spec), fw)
    assert err.value.node == node


def test_too_many_variants_are_refused_before_any_is_built(monkeypatch):
    fw, data = framework("x0"), tame_data()
    monkeypatch.setattr(problem_module, "run_stages", None)  # building a variant would fail loudly
    spec = {"treatment": True, "settings": [{"setting": "treatment.winmax", "range": [1, 100]},
                                            {"setting": "treatment.skew_threshold", "range": [1, 3], "levels": 50}]}
    with pytest.raises(SchemaError, match=r"the upstream factors treatment \(2\) × setting:treatment.winmax \(100\) × "
                       r"setting:treatment.skew_threshold \(50\) make 10,001 normalised data sets"):
        uncertainty(fw, data, spec, replicates=64)


def test_a_variant_the_data_cannot_take_is_a_data_error():
    fw = framework("x0")
    data = tame_data().with_columns(pl.col("x2") - 2.0)  # negative values: fraction_of_max cannot take them
    spec = {"settings": [{"setting": "normalisation.method", "values": ["minmax", "fraction_of_max"],
                          "indicators": ["x2"]}]}
    with pytest.raises(DataError, match=r"uncertainty variant \(normalisation.method = 'fraction_of_max'\): "
                       "fraction_of_max needs values >= 0"):
        uncertainty(fw, data, spec, replicates=64)


def test_bootstrap_perturbations_do_not_take_settings():
    from engine.analysis.bootstrap_spec import load_bootstrap_spec

    with pytest.raises(SchemaError, match="perturb takes weights, normalisation, aggregation and exclusion"):
        load_bootstrap_spec({"mode": "units", "perturb": {"settings": [{"setting": "treatment.winmax",
                                                                        "values": [1, 2]}]}})
