"""Paired record bootstrap of rank changes (engine.change, mode records): pairing by record id, an
independent NumPy reference, the degenerate case, determinism, the shipped firm panel, bad inputs."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import engine
from engine.analysis.bootstrap_spec import poisson_thresholds, sampling_draws
from engine.analysis.change import change
from engine.errors import DataError, SchemaError
from engine.panel import load_panel
from engine.schema import framework_from_dict

#: Two record-derived indicators: a unit's number of records and the sum of their values.
FRAMEWORK = {"id": "firms-mini", "labels": {"en": "Firms"}, "data": {"unit": "unit", "period": "year"},
             "nodes": [{"id": "Index", "labels": {"en": "Index"}},
                       {"id": "n", "parent": "Index", "labels": {"en": "records"}, "column": "n"},
                       {"id": "total", "parent": "Index", "labels": {"en": "total"}, "column": "total"}]}
SPEC = {"mode": "records", "records": {"unit": "unit", "indicators": {"n": {"stat": "count"},
                                                                      "total": {"stat": "sum", "column": "value"}}}}


@pytest.fixture(scope="module")
def fw():
    return framework_from_dict(FRAMEWORK)


def _records(seed: int = 4) -> pl.DataFrame:
    """12 units with 4-9 records each in 2011; in 2012 about 85 % of the records persist (same id,
    value changed by -2..+2), the others left, and new records entered."""
    rng = np.random.default_rng(seed)
    units = [f"u{i:02d}" for i in range(12)]
    before = [(f"r{k:03d}", u, int(rng.integers(1, 20))) for u in units for k in [0] * int(rng.integers(4, 10))]
    before = [(f"r{k:03d}", u, v) for k, (_, u, v) in enumerate(before)]
    after = [(i, u, max(1, v + int(rng.integers(-2, 3)))) for i, u, v in before if rng.random() < 0.85]
    after += [(f"r{len(before) + k:03d}", units[int(rng.integers(0, 12))], int(rng.integers(1, 20)))
              for k in range(8)]
    return pl.concat([pl.DataFrame({"id": [r[0] for r in rows], "unit": [r[1] for r in rows],
                                    "value": [r[2] for r in rows], "year": [year] * len(rows)})
                      for year, rows in ((2011, before), (2012, after))])


def _unit_table(records: pl.DataFrame) -> pl.DataFrame:
    return (records.group_by("year", "unit").agg(pl.len().cast(pl.Int64).alias("n"),
                                                 pl.col("value").sum().cast(pl.Float64).alias("total"))
            .sort("year", "unit"))


@pytest.fixture(scope="module")
def records():
    return _records()


@pytest.fixture(scope="module")
def panel(fw, records):
    return load_panel(fw, _unit_table(records))


@pytest.fixture(scope="module")
def reference_run(panel, records):
    return change(None, panel, start=2011, end=2012, spec=SPEC, records=records, record_id="id", n_replicates=4096,
                  seed=7, block_size=1024, threads=2)


def test_identical_records_in_both_periods_never_move(fw, records):
    """Every unit's records are the same in both periods (same ids, same values): with the pairing
    by id each replicate gives both periods the same weights, so every rank change is 0
    (P(improved) = P(worsened) = 0) although ranks vary between replicates; the same records drawn
    independently per period (no id) do move."""
    same = records.filter(pl.col("year") == 2011)
    both = pl.concat([same, same.with_columns(pl.lit(2012, pl.Int64).alias("year"))])
    panel = load_panel(fw, _unit_table(both))
    paired = change(None, panel, start=2011, end=2012, spec=SPEC, records=both, record_id="id", n_replicates=2048,
                    seed=3)
    units = paired.units
    assert units.height == 12 and (units["change"] == 0).all()
    assert (units["p_same"] == 1.0).all() and (units["p_improved"] == 0.0).all() and not units["robust"].any()
    assert paired.distribution["change"].unique().to_list() == [0]
    alone = engine.bootstrap(fw, panel.dataset(2011), SPEC, records=same, replicates=2048, seed=3).units
    assert (alone["best_rank"] < alone["worst_rank"]).any()  # the ranks do move between replicates
    unpaired = change(None, panel, start=2011, end=2012, spec=SPEC, records=both, n_replicates=2048, seed=3)
    assert (unpaired.units["p_improved"] > 0).any() and (unpaired.units["p_worsened"] > 0).any()
    assert paired.manifest["records"]["persisting"] == same.height and unpaired.manifest["records"]["persisting"] == 0


def _competition_ranks(scores: np.ndarray) -> np.ndarray:
    return np.array([1 + int((scores > s).sum()) for s in scores])


def test_paired_histogram_equals_a_numpy_reference(fw, panel, records):
    """Independent reference over 64 replicates: one uniform per record id (sorted union of both
    periods' ids, the bootstrap's stream), Poisson weights by inverting P(W <= k), the indicators
    summed per unit, each period's table scored by the pipeline (engine.score) and ranked, the
    changes counted: the same histogram, count for count."""
    n, seed = 64, 11
    run = change(None, panel, start=2011, end=2012, spec=SPEC, records=records, record_id="id", n_replicates=n,
                 seed=seed, block_size=64)
    periods = [records.filter(pl.col("year") == y) for y in (2011, 2012)]
    keys = sorted(set(periods[0]["id"]) | set(periods[1]["id"]))
    uniform = sampling_draws(seed, 0, n, "records", n_records=len(keys), n_units=0).record_uniform
    thresholds = poisson_thresholds(1.0)
    units = sorted(set(records["unit"]))
    hist = {u: {} for u in units}
    for r in range(n):
        ranks = []
        for rows in periods:
            weight = (uniform[r, [keys.index(k) for k in rows["id"]]][:, None] >= thresholds[None, :]).sum(axis=1)
            table = (rows.with_columns(pl.Series("w", weight)).group_by("unit")
                     .agg(pl.col("w").sum().cast(pl.Float64).alias("n"),
                          (pl.col("w") * pl.col("value")).sum().cast(pl.Float64).alias("total")).sort("unit"))
            scores = engine.score(fw, table).table.sort("unit")["Index"].to_numpy()
            ranks.append(dict(zip(units, _competition_ranks(scores), strict=True)))
        for u in units:
            d = int(ranks[0][u] - ranks[1][u])
            hist[u][d] = hist[u].get(d, 0) + 1
    got = {u: dict(zip(*run.distribution.filter(pl.col("unit") == u).select("change", "replicates")
                       .to_numpy().T.tolist(), strict=True)) for u in units}
    assert got == hist
    assert sum(c for u in units for d, c in hist[u].items() if d != 0) > 0  # ranks do change


def test_a_persisting_record_draws_the_same_uniform_in_both_periods(reference_run, records):
    """PairedRecords.draws: a record id in both periods gets the same uniform (so the same Poisson
    weight) in both; records in one period only, or all records without an id, draw their own."""
    pair = reference_run.pair.records
    first, second = pair.draws(7, 1024, 2048)
    ids = [sorted(records.filter(pl.col("year") == y)["id"].to_list()) for y in (2011, 2012)]
    common = sorted(set(ids[0]) & set(ids[1]))
    assert 0 < len(common) < min(len(ids[0]), len(ids[1]))
    for k in common:
        np.testing.assert_array_equal(first.record_uniform[:, ids[0].index(k)],
                                      second.record_uniform[:, ids[1].index(k)])
    only = [i for i, k in enumerate(ids[1]) if k not in common]
    assert not np.array_equal(second.record_uniform[:, only], first.record_uniform[:, :len(only)])
    assert pair.n_keys == len(set(ids[0]) | set(ids[1]))
    assert reference_run.manifest["records"]["persisting"] == len(common)


def test_manifest_and_repr_say_how_records_were_paired(reference_run, panel, records):
    m = reference_run.manifest
    assert m["mode"] == "records" and m["records"]["record_id"] == "id" and m["records"]["period_column"] == "year"
    assert m["records"]["poisson_rate"] == {"from": 1.0, "to": 1.0} and m["records"]["derived"] == ["n", "total"]
    assert "records, paired by 'id'" in repr(reference_run)
    unpaired = change(None, panel, start=2011, end=2012, spec=SPEC, records=records, n_replicates=64, block_size=64)
    assert "records, unpaired" in repr(unpaired) and unpaired.manifest["records"]["pairing"].startswith("none")


def test_periods_without_a_panel_take_the_records_period_column(fw, records, reference_run):
    tables = {year: t.drop("year") for (year,), t in _unit_table(records).group_by("year")}
    run = change(fw, tables, start=2011, end=2012, spec=SPEC, records=records.rename({"year": "period"}),
                 record_id="id", n_replicates=4096, seed=7, block_size=1024)
    assert run.units.equals(reference_run.units) and run.distribution.equals(reference_run.distribution)
    with pytest.raises(DataError, match=r"the records have no period column 'period'"):
        change(fw, tables, start=2011, end=2012, spec=SPEC, records=records, n_replicates=64, block_size=64)


def test_row_order_of_the_records_does_not_matter(panel, records, reference_run):
    shuffled = records.sample(fraction=1.0, shuffle=True, seed=2)
    run = change(None, panel, start=2011, end=2012, spec=SPEC, records=shuffled, record_id="id", n_replicates=4096,
                 seed=7, block_size=1024)
    assert run.units.equals(reference_run.units) and run.distribution.equals(reference_run.distribution)


@pytest.mark.parametrize("options", [
    {"threads": 1},
    {"backend": "serial"},
    {"threads": 2, "chunk_blocks": 1},
    {"block_size": 256, "chunk_blocks": 3},
    {"block_size": 4096},
])
def test_results_are_identical_for_any_threads_chunks_and_block_size(panel, records, reference_run, options):
    options = {"block_size": 1024, **options}
    run = change(None, panel, start=2011, end=2012, spec=SPEC, records=records, record_id="id", n_replicates=4096,
                 seed=7, **options)
    assert run.units.equals(reference_run.units) and run.distribution.equals(reference_run.distribution)


@pytest.mark.dask
def test_dask_cluster_equals_in_process(panel, records, reference_run, dask_client):
    run = change(None, panel, start=2011, end=2012, spec=SPEC, records=records, record_id="id",
                 n_replicates=4096, seed=7, block_size=1024, backend="dask", client=dask_client, chunk_blocks=1)
    assert run.manifest["backend"] == "dask"
    assert run.units.equals(reference_run.units) and run.distribution.equals(reference_run.distribution)


def test_perturbations_of_the_spec_apply_one_design_row_to_both_periods(panel, records):
    """A spec with a perturb section: identical records and data in both periods, so a replicate's
    change is 0 only if the weights drawn are the same in both periods (they are)."""
    same = records.filter(pl.col("year") == 2011)
    both = pl.concat([same, same.with_columns(pl.lit(2012, pl.Int64).alias("year"))])
    spec = {**SPEC, "perturb": {"weights": [{"depth": 1, "noise": 0.5}]}}
    run = change(None, load_panel(panel.source_framework, _unit_table(both)), start=2011, end=2012, spec=spec,
                 records=both, record_id="id", n_replicates=1024, seed=4)
    assert (run.units["p_same"] == 1.0).all() and run.manifest["factors"]


@pytest.mark.parametrize("units", ["all", "common"])
def test_a_unit_that_left_with_its_records(fw, records, units):
    """u03 and its records are gone in 2012: it is listed as left; with units="common" its 2011
    records are left out with it (not refused as records of an unknown unit)."""
    gone = records.filter(~((pl.col("unit") == "u03") & (pl.col("year") == 2012)))
    panel = load_panel(fw, _unit_table(gone))
    run = change(None, panel, start=2011, end=2012, spec=SPEC, records=gone, record_id="id", n_replicates=256,
                 block_size=256, units=units, normalisation="panel")
    left = run.units.filter(pl.col("status") == "left")
    assert left["unit"].to_list() == ["u03"] and run.manifest["units"]["common"] == 11
    assert (left["rank_from"].is_null().all()) == (units == "common")
    n_u03 = records.filter((pl.col("unit") == "u03") & (pl.col("year") == 2011)).height
    expected = records.filter(pl.col("year") == 2011).height - (n_u03 if units == "common" else 0)
    assert run.manifest["records"]["n_records"]["from"] == expected


def test_shipped_synthetic_firm_panel():
    """The shipped firm panel and its city panel (both SYNTHETIC): both periods' record derivations
    reproduce the city tables (checked before any replicate), firms are paired by id."""
    panel = load_panel("ai-firms-2023", "ai_firm_cities_panel_synthetic", period="year")
    run = change(None, panel, start=2022, end=2023, records="ai_firms_panel_synthetic", record_id="firm_id",
                 n_replicates=1024, seed=1)
    records = run.manifest["records"]
    assert run.manifest["mode"] == "records" and records["n_records"] == {"from": 4016, "to": 4311}
    assert records["persisting"] == 3815 and records["keys"] == 4512 and len(records["derived"]) == 8
    assert run.manifest["units"]["common"] == 61 and run.units["p_improved"].is_not_null().all()


@pytest.mark.parametrize(("edit", "kwargs", "error", "match"), [
    (lambda r: r.drop("year"), {}, DataError, r"column 'year': the records have no period column 'year'"),
    (lambda r: r.filter(pl.col("year") == 2011), {}, DataError, r"the records have no row for period 2012"),
    (lambda r: r.with_columns(pl.when(pl.col("id") == "r005").then(pl.lit("nowhere")).otherwise(pl.col("unit"))
                              .alias("unit")), {}, DataError,
     r"records of period 2011: records name 1 unit\(s\) that are not in the data: 'nowhere'"),
    (lambda r: r.with_columns(pl.col("value") * 2), {}, DataError,
     r"records of period 2011: indicator 'total' of unit 'u00' is"),
    (lambda r: r, {"record_id": "firm"}, DataError, r"the records have no record id column 'firm'"),
    (lambda r: pl.concat([r, r.head(1)]), {}, DataError, r"record ids repeat within period 2011: 'r000'"),
    (lambda r: r.with_columns(pl.when(pl.col("id") == "r001").then(None).otherwise(pl.col("id")).alias("id")), {},
     DataError, r"1 record\(s\) of period 2011 have no id"),
    (lambda r: r, {"mode": "montecarlo"}, SchemaError, r"records are resampled in mode 'records' only"),
    (lambda r: None, {"mode": "records"}, SchemaError, r"mode 'records' needs the record-level table"),
    (lambda r: r, {"mode": "units"}, SchemaError, r"mode must be 'montecarlo' or 'records', got 'units'"),
    (lambda r: r, {"spec": None}, SchemaError, r"framework 'firms-mini' ships none"),
    (lambda r: "nowhere.csv", {}, DataError, r"no records file or shipped dataset named 'nowhere.csv'"),
])
def test_bad_record_inputs_raise_typed_errors(panel, records, edit, kwargs, error, match):
    options = {"spec": SPEC, "record_id": "id", **kwargs}
    with pytest.raises(error, match=match):
        change(None, panel, start=2011, end=2012, records=edit(records), n_replicates=64, block_size=64, **options)
