"""Large-n mode of the bootstrap (issue 19 item 2): the two passes of engine.analysis.largen over the
bootstrap's replicates — exact median/5 %/95 % ranks, decile bands, bit-identical across threads,
chunks and block sizes, O(units × bins) memory."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from engine.analysis import memory
from engine.analysis.bootstrap import bootstrap
from engine.analysis.design import ParameterMap, n_columns, replicate_uniforms
from engine.analysis.memory import band_bytes, estimate_bytes
from engine.analysis.resampling import evaluate, replicate_draws
from engine.errors import DataError, SchemaError
from engine.schema import framework_from_dict
from tests.analysis.conftest import assert_quantiles_and_deciles_of_raw_ranks, city_data, city_framework
from tests.analysis.test_largen import SHARED

N = 2048


def _run(data, spec=None, **options):
    options = {"replicates": N, "seed": 5, "block_size": 256, **options}
    return bootstrap(framework_from_dict(city_framework()), data, spec=spec or {"mode": "units"}, **options)


def raw_ranks(result, n: int) -> np.ndarray:
    """Ranks (n, n_targets, n_units) of the run's replicates 0 .. n − 1, replayed through the
    bootstrap's own kernel call (units² mode's path)."""
    bp = result.problem
    factors = list(bp.factors)
    params = ParameterMap(factors, bp.problem)(replicate_uniforms(5, 0, n, n_columns(factors)))
    return evaluate(bp, params, replicate_draws(bp, 5, 0, n), n, 1, keep_ranks=True, count=False)[5]


@pytest.mark.parametrize(("data_args", "spec"), [
    ({}, {"mode": "units"}),
    ({"ties": True}, {"mode": "units"}),
    ({"missing": 0.2}, {"mode": "noise", "noise": {"default": {"relative": 0.2}}}),
    ({}, {"mode": "units", "perturb": {"weights": [{"depth": 1, "noise": 0.25}]}}),
], ids=["units", "ties", "noise-missing", "combined"])
def test_large_n_bootstrap_equals_the_exact_histograms_and_numpy_quantiles(data_args, spec):
    """Forced into large-n mode with 3 coarse bins on 60 units: every statistic both modes have equals
    the units² histograms' (float for float), and median/q05/q95 equal numpy.quantile of the raw
    ranks (type 7); decile probabilities equal the raw ranks' shares."""
    data = city_data(n_units=60, **data_args)
    exact = _run(data, spec)
    large = _run(data, spec, large_n_above=0, rank_bins=3)
    assert large.manifest["large_n"]["passes"] == 2 and exact.manifest.get("large_n") is None
    target = large.target_ids[0]
    assert_frame_equal(large.statistics.units[target].select(SHARED), exact.statistics.units[target].select(SHARED))
    assert_quantiles_and_deciles_of_raw_ranks(large.statistics.units[target], raw_ranks(large, N)[:, 0],
                                              large.problem.problem.units, N)
    assert large.confidence is None and large.shares == {}


def test_large_n_bootstrap_is_bit_identical_across_threads_chunks_and_block_sizes():
    data = city_data(n_units=50)
    spec = {"mode": "units", "perturb": {"weights": [{"depth": 1, "noise": 0.25}]}}
    base = _run(data, spec, replicates=3000, block_size=1024, threads=1, large_n_above=0, rank_bins=4)
    for options in ({"threads": 2}, {"threads": 2, "chunk_blocks": 1}, {"block_size": 256, "threads": 2},
                    {"backend": "serial", "block_size": 2048}):
        options = {"block_size": 1024, **options}
        other = _run(data, spec, replicates=3000, large_n_above=0, rank_bins=4, **options)
        assert_frame_equal(other.units, base.units)
        assert other.statistics.acceptability["Index"].equals(base.statistics.acceptability["Index"])


def test_large_n_bootstrap_lanes_split_a_chunk_bit_identically_and_equal_numpy_quantiles(monkeypatch):
    """Threads split a chunk's RNG blocks over lanes (issue 19.2: before, one lane per process): 1 and 2
    threads in one chunk of 4 RNG blocks are bit-identical, the chunk ran on 2 lanes, the memory check
    counted 2 lanes, and the 5 %, 50 %, 95 % ranks equal numpy.quantile of the raw ranks (decile shares:
    the raw ranks')."""
    from engine.analysis import bootstrap as driver
    from engine.analysis import resampling

    data = city_data(n_units=40)
    options = {"replicates": 4096, "block_size": 1024, "large_n_above": 0, "rank_bins": 4, "chunk_blocks": 4}
    one = _run(data, threads=1, **options)
    lanes, checked = [], []
    real = resampling.in_lanes
    monkeypatch.setattr(resampling, "in_lanes", lambda fn, n, **kw: lanes.append(n) or real(fn, n, **kw))
    monkeypatch.setattr(driver, "check_memory", lambda *args, **kw: checked.append(args[3]))
    two = _run(data, threads=2, **options)
    assert lanes == [2, 2] and checked == [2]  # both passes' one chunk on 2 lanes
    assert_frame_equal(two.units, one.units)
    assert two.statistics.acceptability["Index"].equals(one.statistics.acceptability["Index"])
    assert_quantiles_and_deciles_of_raw_ranks(two.units, raw_ranks(one, 4096)[:, 0], one.problem.problem.units, 4096)


@pytest.mark.parametrize(("mode", "sizes"), [("units", {"n_units": 37, "m_units": 29}),
                                            ("records", {"n_units": 5, "n_records": 333}),
                                            ("noise", {"n_units": 7, "n_noisy": 3})])
def test_block_draws_taken_a_few_rows_at_a_time_are_the_blocks_draws(mode, sizes):
    """Large-n lanes draw a sub-batch at a time (no RNG block's 1,024 × units arrays): consecutive takes of
    an RNG block's draws, of odd sizes, are the rows of sampling_draws bit for bit, in every mode."""
    from engine.analysis.bootstrap_spec import BlockDraws, sampling_draws

    whole = sampling_draws(9, 2048, 3072, mode, **sizes)
    stream = BlockDraws(9, 2, mode, **sizes)
    start = 0
    for n in (1, 3, 100, 333, 587):
        part = stream.take(n)
        for name in ("record_uniform", "count", "noise_eps"):
            np.testing.assert_array_equal(getattr(part, name), getattr(whole, name)[start:start + n])
        start += n


def test_bootstrap_bands_of_work_blocks_inside_an_rng_block_add_up_to_the_whole():
    """A chunk that starts inside an RNG block (work blocks of 256) draws that block's earlier replicates
    and skips them: pass-1 counts of blocks [0, 1) + [1, 4) equal those of [0, 4), on 1 and 2 lanes."""
    from engine.analysis.largen import bands
    from engine.analysis.resampling import run_bootstrap_bands

    bp = _run(city_data(n_units=30), replicates=64, large_n_above=0, rank_bins=4).problem
    layout = bands(bp.problem, 4)
    whole = run_bootstrap_bands(bp, 3, 0, 4, 256, 1024, layout)
    parts = run_bootstrap_bands(bp, 3, 0, 1, 256, 1024, layout).absorb(
        run_bootstrap_bands(bp, 3, 1, 4, 256, 1024, layout, n_lanes=2))
    for name in ("coarse", "rank_sums", "extremes", "shift_hist", "shift_sum"):
        np.testing.assert_array_equal(getattr(parts, name), getattr(whole, name))
    assert whole.coarse[0, 0].sum() == 1024


def test_large_n_bootstrap_refusals_come_before_any_work():
    data = city_data(n_units=30)
    with pytest.raises(DataError, match=r"variance shares \(decompose\) are not available in large-n mode "
                                        r"\(30 units\)"):
        _run(data, {"mode": "units", "decompose": True, "perturb": {"weights": [{"depth": 1, "noise": 0.25}]}},
             large_n_above=0)
    with pytest.raises(SchemaError, match="large_n_above must be a whole number of units >= 0"):
        _run(data, large_n_above=-1)
    with pytest.raises(SchemaError, match="rank_bins must be a whole number >= 1"):
        _run(data, large_n_above=0, rank_bins=0)


def test_large_n_bootstrap_memory_is_units_times_bins(monkeypatch):
    """At 10^5 units the units² histograms need ~300 GiB; large-n mode's estimate is O(units × bins):
    the pass states, one lane's ranks (64 MiB) and its sub-batch's draws (64 MiB; drawn as needed, not
    an RNG block's 1.5 GiB at once)."""
    n, bins = 100_000, 548
    pass1, pass2 = band_bytes(n, 1, bins)
    need = estimate_bytes("bootstrap", n, 1, 1, rank_bins=bins)
    assert need == max(4 * pass1, pass1 + 3 * pass2) + 2 * 2**26
    assert need < 2 * 2**30 and estimate_bytes("bootstrap", n, 1, 1) > 300 * need
    # two lanes: a state, a chain and a sub-batch's draws per lane
    assert estimate_bytes("bootstrap", n, 1, 2, rank_bins=bins) == max(5 * pass1, pass1 + 4 * pass2) + 4 * 2**26
    assert need < 2**30  # int32 counts (fewer than 2^31 replicates per state): ~0.9 GiB
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**29)
    with pytest.raises(DataError, match=r"bootstrap of 100,000 units .* \(large-n rank bins per unit, target and "
                                        r"lane\)"):
        memory.check_memory("bootstrap", n, 1, 1, rank_bins=bins)


@pytest.mark.dask
def test_large_n_bootstrap_on_dask_workers_equals_in_process():
    data = city_data(n_units=50)
    local = _run(data, replicates=3000, block_size=1024, threads=1, large_n_above=0, rank_bins=4)
    run = _run(data, replicates=3000, block_size=1024, backend="dask", workers=2, chunk_blocks=1, large_n_above=0,
               rank_bins=4)
    assert run.manifest["backend"] == "dask"
    assert_frame_equal(run.units, local.units)


def test_cli_bootstrap_large_n(tmp_path, capsys):
    from engine.cli import main

    data = tmp_path / "units.csv"
    city_data(n_units=40).write_csv(data)
    fw = tmp_path / "fw.json"
    fw.write_text(json.dumps(city_framework()), encoding="utf-8")
    out = tmp_path / "boot"
    assert main(["bootstrap", "-f", str(fw), "-d", str(data), "--mode", "units", "-n", "1024", "--seed", "1",
                 "--large-n-above", "0", "--rank-bins", "5", "-q", "-o", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["large_n"]["passes"] == 2 and manifest["large_n"]["units"] == 40
    assert "p_decile_1" in pl.read_parquet(out / "units.parquet").columns


def test_large_n_record_bootstrap_equals_the_exact_histograms():
    """Mode records (Poisson weights of 4,311 firms recomputing the indicators of 31 provinces), forced
    into large-n mode: the statistics both modes have are equal; no confidence sets in this mode."""
    options = {"records": "ai_firms_synthetic", "replicates": 2048, "seed": 5, "block_size": 1024, "threads": 2}
    exact = bootstrap("regional-ai-2023", **options)
    large = bootstrap("regional-ai-2023", large_n_above=0, rank_bins=5, **options)
    target = large.target_ids[0]
    assert_frame_equal(large.statistics.units[target].select(SHARED), exact.statistics.units[target].select(SHARED))
    assert exact.confidence is not None and large.confidence is None and large.manifest["confidence"] is None
