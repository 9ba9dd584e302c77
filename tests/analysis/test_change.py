"""Paired Monte Carlo of rank changes (engine.change): exactness, pairing, determinism, bad inputs."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import engine
from engine.analysis.change import change, change_statistics
from engine.analysis.design import ParameterMap, n_columns, replicate_uniforms
from engine.analysis.problem import evaluate_ranks
from engine.analysis.spec import load_spec, resolve_factors
from engine.analysis.uncertainty import uncertainty
from engine.display import ResultShape
from engine.errors import DataError, SchemaError
from engine.groups import compare_editions
from engine.panel import load_panel
from engine.pipeline import score
from engine.schema import framework_from_dict
from tests.analysis.conftest import city_data, city_framework

SPEC = {"weights": [{"depth": 1, "noise": 0.25}, {"depth": 2, "noise": 0.25}, {"depth": 3, "noise": 0.25}]}


@pytest.fixture(scope="module")
def fw():
    return framework_from_dict(city_framework())


@pytest.fixture(scope="module")
def periods():
    """Two editions of 40 units: every value moves a little; c001 left, c999 entered."""
    before = city_data(n_units=40)
    rng = np.random.default_rng(8)
    after = before.with_columns(pl.col(f"x{j}") * pl.Series(rng.uniform(0.8, 1.25, 40)) for j in range(6))
    after = pl.concat([after.filter(pl.col("unit") != "c001"),
                       after.head(1).with_columns(pl.lit("c999").alias("unit"))])
    return {2011: before, 2012: after}


@pytest.fixture(scope="module")
def reference_run(fw, periods):
    return change(fw, periods, start=2011, end=2012, spec=SPEC, n_replicates=8192, seed=7, block_size=2048,
                  threads=2)


def test_zero_perturbation_reproduces_the_plain_rank_change(fw, periods):
    """Noise 0: every paired replicate is the nominal pair, so the whole distribution sits on the
    plain rank change of `cityrank compare` (median = q05 = q95 = change, P(improved) 0 or 1)."""
    run = change(fw, periods, start=2011, end=2012, spec={"weights": [{"depth": 1, "noise": 0.0}]},
                 n_replicates=3000, seed=1, block_size=1024)
    plain = compare_editions(score(fw, periods[2011]).table, score(fw, periods[2012]).table, "unit", "Index")
    both = run.units.filter(pl.col("status") == "both").join(plain, on="unit")
    assert both.height == 39
    assert both["change"].to_list() == both["rank_change"].to_list()
    assert (both["change"] != 0).any()
    for column in ("median_change", "q05_change", "q95_change", "mean_change"):
        np.testing.assert_array_equal(both[column].to_numpy(), both["change"].to_numpy().astype(float))
    np.testing.assert_array_equal(both["p_improved"].to_numpy(), (both["change"] > 0).to_numpy().astype(float))
    np.testing.assert_array_equal(both["p_worsened"].to_numpy(), (both["change"] < 0).to_numpy().astype(float))
    assert (both["robust"] == (both["change"] != 0)).all()
    assert run.manifest["replicates"] == 3000


def _stable_data() -> tuple[pl.DataFrame, pl.DataFrame]:
    """T is best and B worst in every indicator in both periods (so minmax normalises every
    unchanged value identically); X and Y are unchanged and trade places with the weights (X is
    ahead on x0, Y on x1); P and Q are below X and Y in every indicator and swap between periods."""
    rows = {"T": [1.0] * 6, "X": [0.8, 0.3, 0.5, 0.5, 0.5, 0.5], "Y": [0.3, 0.75, 0.5, 0.5, 0.5, 0.5],
            "B": [0.0] * 6}
    before = {**rows, "P": [0.25] * 6, "Q": [0.1] * 6}
    after = {**rows, "P": [0.1] * 6, "Q": [0.25] * 6}

    def table(values):
        return pl.DataFrame({"unit": list(values), **{f"x{j}": [v[j] for v in values.values()] for j in range(6)}})

    return table(before), table(after)


def test_an_unchanged_unit_with_unchanged_neighbours_never_moves(fw):
    """X's data and that of every unit it can meet did not change: in each paired replicate its
    rank is the same in both periods, so P(improved) = P(worsened) = 0, although its rank varies
    from replicate to replicate (unpaired draws would show changes)."""
    before, after = _stable_data()
    run = change(fw, (before, after), spec=SPEC, n_replicates=4096, seed=3, block_size=1024)
    x = run.units.filter(pl.col("unit") == "X").row(0, named=True)
    assert (x["p_improved"], x["p_worsened"], x["p_same"]) == (0.0, 0.0, 1.0)
    alone = uncertainty(fw, before, SPEC, replicates=4096, seed=3, block_size=1024).units
    x_alone = alone.filter(pl.col("unit") == "X").row(0, named=True)
    assert x_alone["best_rank"] < x_alone["worst_rank"]  # X's rank does move between replicates
    p = run.units.filter(pl.col("unit") == "P").row(0, named=True)
    assert p["p_worsened"] == 1.0 and p["change"] == -1  # P fell below Q whatever the weights


METHODS = {**SPEC, "normalisation": {"choices": [{"method": "minmax", "range": [1, 100]}, "rank"]},
           "aggregation": [{"depth": 1, "choices": ["arithmetic", "geometric"]}], "exclusion": True}


@pytest.mark.parametrize("spec", [SPEC, METHODS], ids=["weights", "methods"])
def test_paired_histogram_equals_per_replicate_ranks_of_each_period(fw, periods, spec):
    """Independent check of the pairing: the same design rows mapped for each period (weights, and
    the normalisation, aggregation and excluded indicator) and ranked by the fused kernel
    (evaluate_ranks) give the same histogram."""
    n = 1500
    run = change(fw, periods, start=2011, end=2012, spec=spec, n_replicates=n, seed=7, block_size=1024)
    pair = run.pair
    factors = resolve_factors(load_spec(spec), fw)
    u = replicate_uniforms(7, 0, n, n_columns(factors))
    ranks = []
    for problem in (pair.before, pair.after):
        p = ParameterMap(factors, problem)(u)
        ranks.append(evaluate_ranks(problem, p.node_weight, p.variant, p.agg_code, p.excluded)[:, 0, :])
    a, b = ranks[0][:, pair.rows_from], ranks[1][:, pair.rows_to]
    offset = max(pair.before.n_units, pair.after.n_units) - 1
    expected = np.zeros((len(pair.common), 2 * (offset + 1)), np.int64)
    for i in range(len(pair.common)):
        np.add.at(expected[i], a[:, i] - b[:, i] + offset, 1)
    for i, unit in enumerate(pair.common):
        row = run.distribution.filter(pl.col("unit") == unit)
        hist = np.zeros_like(expected[i])
        hist[row["change"].to_numpy() + offset] = row["replicates"].to_numpy()
        np.testing.assert_array_equal(hist, expected[i], err_msg=str(unit))
    assert len(pair.common) == 39 and expected[:, offset].sum() < expected.sum()  # some units do move


@pytest.mark.parametrize("options", [
    {"backend": "serial"},
    {"threads": 1},
    {"threads": 2, "chunk_blocks": 1},
    {"threads": 2, "chunk_blocks": 3},
    {"block_size": 1024},
    {"block_size": 8192},
    {"block_size": 256, "chunk_blocks": 5},
])
def test_results_are_identical_for_any_threads_chunks_and_block_size(fw, periods, reference_run, options):
    options = {"block_size": 2048, **options}
    run = change(fw, periods, start=2011, end=2012, spec=SPEC, n_replicates=8192, seed=7, **options)
    assert run.units.equals(reference_run.units)
    assert run.distribution.equals(reference_run.distribution)


@pytest.mark.dask
def test_dask_cluster_equals_in_process(fw, periods, reference_run, dask_client):
    run = change(fw, periods, start=2011, end=2012, spec=SPEC, n_replicates=8192, seed=7, block_size=2048,
                 backend="dask", client=dask_client, chunk_blocks=1)
    assert run.manifest["backend"] == "dask" and run.manifest["workers"] == 2
    assert run.units.equals(reference_run.units)
    assert run.distribution.equals(reference_run.distribution)


def test_entered_and_left_units_are_reported(reference_run):
    units = reference_run.units
    entered = units.filter(pl.col("status") == "entered").row(0, named=True)
    left = units.filter(pl.col("status") == "left").row(0, named=True)
    assert entered["unit"] == "c999" and entered["rank_to"] is not None and entered["rank_from"] is None
    assert entered["p_improved"] is None and entered["change"] is None
    assert left["unit"] == "c001" and left["rank_from"] is not None and left["rank_to"] is None
    assert units.height == 41 and units.filter(pl.col("status") == "both").height == 39
    assert reference_run.manifest["units"] | {"robust": 0} == {"common": 39, "entered": ["c999"], "left": ["c001"],
                                                              "robust": 0}


def test_common_units_rank_only_the_units_present_in_both_periods(fw, periods):
    """units="common" is the run on both periods restricted to their common units (the same tables),
    with the units that entered or left still listed, without a rank."""
    run = change(fw, periods, start=2011, end=2012, spec=SPEC, n_replicates=2048, seed=7, units="common")
    common = set(periods[2011]["unit"]) & set(periods[2012]["unit"])
    alone = change(fw, {k: v.filter(pl.col("unit").is_in(list(common))) for k, v in periods.items()}, start=2011,
                   end=2012, spec=SPEC, n_replicates=2048, seed=7)
    both = run.units.filter(pl.col("status") == "both")
    assert both.equals(alone.units) and run.distribution.equals(alone.distribution)
    assert both["rank_from"].max() == both["rank_to"].max() == 39
    others = run.units.filter(pl.col("status") != "both")
    assert others.select("unit", "status", "rank_from", "rank_to").rows() == [("c999", "entered", None, None),
                                                                           ("c001", "left", None, None)]
    assert run.manifest["units_ranked"] == "common" and run.manifest["units"]["entered"] == ["c999"]


def test_statistics_are_consistent(reference_run):
    both = reference_run.units.filter(pl.col("status") == "both")
    total = both["p_improved"] + both["p_same"] + both["p_worsened"] + both["p_missing"]
    np.testing.assert_allclose(total.to_numpy(), 1.0)
    assert (both["p_improved_3"] <= both["p_improved"]).all() and (both["p_improved_10"] <= both["p_improved_5"]).all()
    assert (both["q05_change"] <= both["median_change"]).all() and (both["median_change"] <= both["q95_change"]).all()
    robust = (both["q05_change"] > 0) | (both["q95_change"] < 0)
    assert both["robust"].to_list() == robust.to_list() and robust.any() and not robust.all()
    assert reference_run.robust["robust"].all()


def test_change_statistics_hand_computed():
    """n = 3 (columns: change −2 … +2, no rank): changes 0 ×2, +1, +2 and one replicate without a rank."""
    hist = np.array([[0, 0, 2, 1, 1, 1]], np.int64)
    stats = change_statistics(hist, places=(1, 2))
    assert stats["median_change"][0] == 0.5 and stats["mean_change"][0] == 0.75
    assert stats["p_improved"][0] == 2 / 5 and stats["p_improved_2"][0] == 1 / 5 and stats["p_same"][0] == 2 / 5
    assert stats["p_missing"][0] == 1 / 5 and stats["p_worsened"][0] == 0.0
    assert stats["q05_change"][0] == 0.0 and not stats["robust"][0]


def test_write_repr_and_manifest(reference_run, tmp_path):
    assert isinstance(reference_run, ResultShape) and isinstance(reference_run, engine.ChangeResult)
    out = reference_run.write(tmp_path / "run")
    assert sorted(p.name for p in out.iterdir()) == ["distribution.parquet", "manifest.json", "units.parquet"]
    assert pl.read_parquet(out / "units.parquet").equals(reference_run.units)
    text = repr(reference_run)
    assert text.startswith("ChangeResult (framework mini") and "periods 2011 → 2012" in text
    assert "<strong>ChangeResult</strong>" in reference_run._repr_html_()
    assert reference_run.manifest["kind"] == "change" and reference_run.manifest["seed"] == 7


def _panel(fw, periods):
    table = pl.concat([t.with_columns(pl.lit(year).alias("year")) for year, t in periods.items()])
    return load_panel(fw, table, period="year")


def test_panel_input_with_period_or_panel_normalisation(fw, periods, reference_run):
    panel = _panel(fw, periods)
    run = change(None, panel, start=2011, end=2012, spec=SPEC, n_replicates=8192, seed=7, block_size=2048)
    assert run.units.equals(reference_run.units)
    fixed = change(fw, panel, start="2011", end=2012, spec=SPEC, n_replicates=2048, seed=7, normalisation="panel")
    assert fixed.manifest["normalisation"] == "panel" and fixed.units.height == 41


def test_confirm_gets_the_estimate_and_can_stop_the_run(fw, periods):
    seen = []

    def confirm(estimate):
        seen.append(estimate)
        raise KeyboardInterrupt  # what the CLI's "no" does (an error)

    with pytest.raises(KeyboardInterrupt):
        change(fw, periods, start=2011, end=2012, n_replicates=10**6, seed=1, confirm=confirm)
    assert [e["stage"] for e in seen] == ["start"] and seen[0]["replicates"] == 10**6 and seen[0]["seconds"] > 0


def test_a_run_that_would_not_fit_in_memory_is_refused_before_the_replicates(fw, periods, monkeypatch):
    import engine.analysis.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 1000)
    with pytest.raises(DataError, match=r"change of 40 units \(\d lane\(s\)\) needs about .* MiB of memory"):
        change(fw, periods, start=2011, end=2012, n_replicates=1024)


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda fw, d: change(fw, d, start=2010, end=2012), DataError, r"start period 2010 is not among the periods"),
    (lambda fw, d: change(fw, d, start=2011, end=2011), SchemaError, r"same period 2011"),
    (lambda fw, d: change(fw, d, start=2011, end=2012, normalisation="panel"), SchemaError, r"needs a panel"),
    (lambda fw, d: change(fw, d, start=2011, end=2012, normalisation="global"), SchemaError, r"'period' or 'panel'"),
    (lambda fw, d: change(fw, d, start=2011, end=2012, node="nope"), SchemaError, r"unknown node 'nope'"),
    (lambda fw, d: change(fw, d, start=2011, end=2012, units="some"), SchemaError, r"'all' or 'common'"),
    (lambda fw, d: change(None, d, start=2011, end=2012), SchemaError, r"no framework given"),
    (lambda fw, d: change(fw, (d[2011], d[2012].with_columns(pl.col("unit") + "_new")), units="common"), DataError,
     r"no unit is present in both periods"),
    (lambda fw, d: change(fw, d, start=2011, end=2012, block_size=1000), SchemaError, r"multiple or a divisor"),
    (lambda fw, d: change(fw, d, start=2011, end=2012, threads=0), SchemaError, r"threads must be"),
    (lambda fw, d: change(fw, d[2011], start=2011, end=2012), SchemaError, r"expected a panel"),
    (lambda fw, d: change(fw, (d[2011], d[2012].with_columns(pl.col("unit") + "_new"))), DataError,
     r"no unit is present in both periods"),
    (lambda fw, d: change(fw, _panel(fw, d), start=2009, end=2012), DataError,
     r"start period 2009 is not in the panel"),
    (lambda fw, d: change(framework_from_dict(city_framework(id="other")), _panel(fw, d), start=2011, end=2012),
     SchemaError, r"panel was loaded for framework 'mini'"),
])
def test_bad_inputs_raise_typed_errors(fw, periods, call, error, match):
    with pytest.raises(error, match=match):
        call(fw, periods)
