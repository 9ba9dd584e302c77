"""Monte Carlo engine: determinism, an independent NumPy check, exact statistics, specs."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import engine
from engine.analysis.montecarlo import ChunkState, quantile_from_counts, run_design, summarise
from engine.analysis.uncertainty import _design_parameters, uncertainty
from engine.errors import SchemaError
from engine.schema import framework_from_dict
from tests.analysis.conftest import city_data, city_framework

SPEC = {"weights": [{"depth": 1, "noise": 0.25}, {"depth": 2, "noise": 0.25}, {"depth": 3, "noise": 0.25}],
        "pairs": ["c000", "c001", "c002"], "top_k": [1, 5]}


@pytest.fixture(scope="module")
def mini_fw():
    return framework_from_dict(city_framework())


@pytest.fixture(scope="module")
def mini_data():
    return city_data(n_units=60)


@pytest.fixture(scope="module")
def reference_run(mini_fw, mini_data):
    return uncertainty(mini_fw, mini_data, SPEC, replicates=8192, seed=7, block_size=2048, threads=2)


@pytest.mark.parametrize("options", [
    {"backend": "serial"},
    {"threads": 1},
    {"threads": 2, "chunk_blocks": 1},
    {"threads": 2, "chunk_blocks": 3},
    {"block_size": 1024},
    {"block_size": 4096},
    {"block_size": 8192},
])
def test_results_are_bit_identical_for_any_threads_chunks_and_block_size(mini_fw, mini_data, reference_run, options):
    options = {"block_size": 2048, **options}
    run = uncertainty(mini_fw, mini_data, SPEC, replicates=8192, seed=7, **options)
    assert run.units.equals(reference_run.units)
    for target in run.statistics.acceptability:
        assert run.statistics.acceptability[target].equals(reference_run.statistics.acceptability[target])
        assert run.statistics.pairs[target].equals(reference_run.statistics.pairs[target])
        assert run.statistics.rank_shift[target].equals(reference_run.statistics.rank_shift[target])


@pytest.mark.parametrize("options", [{"block_size": 256}, {"block_size": 512}, {"block_size": 64, "chunk_blocks": 3},
                                     {"block_size": 512, "chunk_blocks": 1, "backend": "serial"}])
def test_small_blocks_give_identical_results(mini_fw, mini_data, reference_run, options):
    """Blocks smaller than the RNG block draw the same replicates, and the score moments are still
    summed per RNG block of 1,024 (a chunk of fewer is made whole), so every table is identical
    (issue 21.8: score_mean/score_sd differed in the last bits)."""
    run = uncertainty(mini_fw, mini_data, SPEC, replicates=8192, seed=7, **options)
    assert list(run.statistics.units) == list(reference_run.statistics.units) != []  # the loop compares something
    for target in run.statistics.units:
        for table in ("units", "acceptability", "pairs", "rank_shift"):
            got, want = getattr(run.statistics, table)[target], getattr(reference_run.statistics, table)[target]
            for column in want.columns:
                np.testing.assert_array_equal(got[column].to_numpy(), want[column].to_numpy(), err_msg=column)


def test_merging_moments_in_any_order_gives_the_same_bits(reference_run):
    """Score moments are exact sums: merging chunk states in any order or grouping (as Dask's tree
    reduction or a resume does) gives the same bits, and each total is the correctly rounded sum
    of the per-block sums (math.fsum)."""
    import math

    problem = reference_run.problem
    rng = np.random.default_rng(2)
    blocks = rng.standard_normal((12, len(problem.targets), problem.n_units, 2)) * 10.0 ** rng.integers(-3, 4, 12)[
        :, None, None, None]
    states = []
    for b in range(12):
        s = ChunkState.empty(problem)
        s.moments.add(blocks[b:b + 1])
        s.blocks = {b}
        states.append(s)
    forward = ChunkState.empty(problem)
    for s in states:
        forward.absorb(s)
    backward = states[11].copy()
    for s in states[10::-1]:
        backward.absorb(s)
    tree = states[0].merge(states[1]).merge(states[2].merge(states[3]))
    for k in range(4, 12, 4):
        tree = tree.merge(states[k + 2].merge(states[k + 3]).merge(states[k].merge(states[k + 1])))
    np.testing.assert_array_equal(forward.score_moments(), backward.score_moments())
    np.testing.assert_array_equal(forward.score_moments(), tree.score_moments())
    want = np.array([math.fsum(blocks[:, t, u, k]) for t in range(blocks.shape[1]) for u in range(blocks.shape[2])
                     for k in range(2)]).reshape(blocks.shape[1:])
    np.testing.assert_array_equal(forward.score_moments(), want)


def test_exact_replicate_count_and_seed_matters(mini_fw, mini_data):
    a = uncertainty(mini_fw, mini_data, SPEC, replicates=3000, seed=7, block_size=1024)
    assert a.manifest["replicates"] == 3000
    b = uncertainty(mini_fw, mini_data, SPEC, replicates=3000, seed=8, block_size=1024)
    assert not a.units.equals(b.units)
    prefix = uncertainty(mini_fw, mini_data, SPEC, replicates=2048, seed=7, block_size=1024)
    assert prefix.manifest["replicates"] == 2048 and not prefix.units.equals(a.units)


def test_explicit_design_equals_an_independent_numpy_computation(mini_fw, mini_data):
    """Same draws, computed by plain NumPy: effective weights, scores, competition ranks, histogram."""
    rng = np.random.default_rng(5)
    nominal = engine.score(mini_fw, mini_data)
    ids = mini_fw.node_ids
    n = 2000
    design = rng.uniform(0.5, 1.5, (n, len(ids)))
    result = uncertainty(mini_fw, mini_data, {}, design=design, block_size=1000)
    # Plain NumPy: local weights within parents, effective indicator weights, Σ_j W_j z_j in
    # indicator order (the kernel's order), then ranks and counts.
    z = nominal.stages.normalised  # (units, indicators)
    n_ind = len(mini_fw.indicators)
    parent = {node.id: node.parent for node in (*mini_fw.indicators, *mini_fw.aggregates)}
    children = {a.id: a.children for a in mini_fw.aggregates}
    col = {node: k for k, node in enumerate(ids)}
    counts = np.zeros((z.shape[0], z.shape[0]), np.int64)
    for r in range(n):
        w = design[r]
        eff = np.ones(n_ind)
        for j, ind in enumerate(mini_fw.indicators):
            node = ind.id
            while parent[node] is not None:
                siblings = children[parent[node]]
                eff[j] *= w[col[node]] / sum(w[col[s]] for s in siblings)
                node = parent[node]
        score = np.zeros(z.shape[0])
        for j in range(n_ind):
            score += eff[j] * z[:, j]
        ranks = 1 + (score[None, :] > score[:, None]).sum(axis=1)
        counts[np.arange(z.shape[0]), ranks - 1] += 1
    np.testing.assert_array_equal(result.statistics.acceptability["Index"].drop("unit").to_numpy() * n, counts)


def test_histogram_statistics_equal_numpy_on_the_raw_ranks(mini_fw, mini_data):
    nominal = engine.score(mini_fw, mini_data)
    spec = engine.analysis.spec.load_spec(SPEC, replicates=1000, seed=1, block_size=1000)
    from engine.analysis.problem import build_problem
    from engine.analysis.spec import resolve_factors

    factors = resolve_factors(spec, mini_fw)
    problem = build_problem(nominal, spec, factors)
    rng = np.random.default_rng(9)
    params = _design_parameters(problem, rng.uniform(0.2, 2.0, (1000, len(mini_fw.node_ids))))
    state, shift, ranks = run_design(problem, params, 1000, keep_ranks=True)
    table = summarise(problem, state, (1, 5)).units["Index"]
    raw = ranks[:, 0, :]
    for i, unit in enumerate(problem.units):
        row = table.filter(pl.col("unit") == unit).row(0, named=True)
        q05, q50, q95 = np.quantile(raw[:, i], [0.05, 0.5, 0.95])
        assert (row["q05_rank"], row["median_rank"], row["q95_rank"]) == (q05, q50, q95)
        assert row["mean_rank"] == pytest.approx(raw[:, i].mean(), rel=1e-12)
        assert row["rank_sd"] == pytest.approx(raw[:, i].std(), rel=1e-9, abs=1e-12)
        assert row["p_top5"] == (raw[:, i] <= 5).mean()
        assert row["best_rank"] == raw[:, i].min() and row["worst_rank"] == raw[:, i].max()
    nominal_ranks = problem.nominal_rank[0]
    np.testing.assert_allclose(shift[:, 0], np.abs(raw - nominal_ranks).mean(axis=1), rtol=1e-15)


@pytest.mark.parametrize("q", [0.0, 0.05, 0.25, 0.5, 0.9, 0.95, 1.0])
def test_quantile_from_counts_equals_numpy(q):
    rng = np.random.default_rng(2)
    sample = rng.integers(1, 12, 57)
    counts = np.bincount(sample, minlength=12)[1:]
    assert quantile_from_counts(counts, q) == np.quantile(sample, q)


@pytest.mark.parametrize("q", [0.0, 0.05, 0.5, 0.95, 1.0])
def test_quantile_from_counts_row_by_row_equals_numpy(q):
    """The 2-D form (one row per unit, as summarise uses it) gives each row's numpy.quantile, and
    NaN for a row with no count (a unit never ranked)."""
    rng = np.random.default_rng(3)
    samples = [rng.integers(1, 9, size) for size in (1, 2, 57, 200)]
    counts = np.stack([np.bincount(x, minlength=9)[1:] for x in samples] + [np.zeros(8, np.int64)])
    got = quantile_from_counts(counts, q)
    assert got.shape == (5,) and np.isnan(got[-1])
    assert got[:-1].tolist() == [np.quantile(x, q) for x in samples]
    assert got[:-1].tolist() == [quantile_from_counts(c, q) for c in counts[:-1]]


def test_absorb_is_merge_in_place(reference_run):
    """absorb adds another state into this one's own arrays — the same totals as merge — and
    leaves the other state (and a copy's source) untouched; a block counted twice is refused."""
    problem = reference_run.problem
    rng = np.random.default_rng(4)

    def state(blocks, extra):
        s = ChunkState.empty(problem)
        s.hist[...] = rng.integers(0, 5, s.hist.shape)
        s.shift_hist[...] = rng.integers(0, 5, s.shift_hist.shape)
        s.moments.add(rng.random((len(blocks), len(problem.targets), problem.n_units, 2)))
        s.blocks |= set(blocks)
        s.extra.update(extra)
        return s

    a = state([0, 1], {"x": np.arange(3)})
    b = state([2], {"x": np.ones(3, np.int64), "y": np.full(2, 7)})
    merged = a.merge(b)
    before_a, before_b = a.hist.copy(), b.hist.copy()
    target = a.copy()
    assert target.absorb(b) is target
    np.testing.assert_array_equal(target.hist, merged.hist)
    np.testing.assert_array_equal(target.shift_hist, merged.shift_hist)
    assert target.blocks == merged.blocks and target.moments == merged.moments
    assert target.extra["x"].tolist() == [1, 2, 3] and target.extra["y"].tolist() == [7, 7]
    target.absorb(state([3], {"y": np.ones(2, np.int64)}))
    assert b.extra["y"].tolist() == [7, 7]  # an array taken from another state is copied, not shared
    np.testing.assert_array_equal(a.hist, before_a)
    np.testing.assert_array_equal(b.hist, before_b)
    with pytest.raises(ValueError, match="blocks counted twice"):
        target.absorb(state([1], {}))


def test_summary_of_a_unit_never_ranked(reference_run):
    """A unit without a rank in every replicate: no rank statistics (NaN, best/worst 0), P(missing)
    1; a unit always at rank 2: every rank statistic 2."""
    problem = reference_run.problem
    n_u = problem.n_units
    state = ChunkState.empty(problem)
    state.hist[:, 0, n_u] = 10  # unit 0: 10 replicates, never ranked
    state.hist[:, 1:, 1] = 10  # every other unit at rank 2
    state.moments.add(np.ones((1, len(problem.targets), n_u, 2)))
    units = summarise(problem, state).units[problem.target_ids[0]]
    never = units.filter(pl.col("unit") == problem.units[0]).row(0, named=True)
    assert never["p_missing"] == 1.0 and never["best_rank"] == 0 and never["worst_rank"] == 0
    for column in ("mean_rank", "median_rank", "q05_rank", "q95_rank", "rank_sd"):
        assert np.isnan(never[column]), column
    other = units.filter(pl.col("unit") == problem.units[1]).row(0, named=True)
    assert (other["median_rank"], other["q05_rank"], other["q95_rank"], other["best_rank"], other["worst_rank"],
            other["mean_rank"], other["rank_sd"], other["p_missing"]) == (2, 2, 2, 2, 2, 2, 0, 0)


def test_pairwise_probabilities_are_complementary(reference_run):
    pairs = reference_run.statistics.pairs["Index"]
    ab = pairs.filter((pl.col("unit_a") == "c000") & (pl.col("unit_b") == "c001"))["p_a_ahead_of_b"].item()
    ba = pairs.filter((pl.col("unit_a") == "c001") & (pl.col("unit_b") == "c000"))["p_a_ahead_of_b"].item()
    assert 0 <= ab <= 1 and ab + ba == pytest.approx(1.0)  # no ties in this data


def test_probabilities_and_acceptability_are_consistent(reference_run):
    units = reference_run.units
    accept = reference_run.statistics.acceptability["Index"]
    np.testing.assert_allclose(accept.drop("unit").to_numpy().sum(axis=1), 1.0)
    np.testing.assert_allclose(accept.drop("unit").to_numpy().sum(axis=0), 1.0)
    assert units["p_top1"].sum() == pytest.approx(1.0)
    assert ((units["p_same_tier"] >= 0) & (units["p_same_tier"] <= 1)).all()
    assert (units["q05_rank"] <= units["median_rank"]).all() and (units["median_rank"] <= units["q95_rank"]).all()


def test_zero_noise_reproduces_the_nominal_ranking(mini_fw, mini_data):
    run = uncertainty(mini_fw, mini_data, {"weights": [{"depth": 1, "noise": 0.0}]},
                      replicates=64, seed=1, block_size=64)
    nominal = engine.score(mini_fw, mini_data)
    ranks = dict(zip(nominal.table["unit"].to_list(), nominal.table["Index_rank"].to_list()))
    assert all(row["median_rank"] == ranks[row["unit"]] for row in run.units.iter_rows(named=True))
    assert run.manifest["rank_shift"]["Index"]["max"] == 0.0
    assert run.manifest["nominal_matches_pipeline"]


def test_default_spec_is_noise_on_every_weight(mini_fw, mini_data):
    run = uncertainty(mini_fw, mini_data, None, replicates=1024, seed=3, block_size=1024)
    assert run.manifest["spec"]["weights"] == [{"depth": d, "noise": 0.25} for d in (1, 2, 3)]


@pytest.mark.parametrize(("spec", "match"), [
    ({"weights": [{"depth": 1}]}, "exactly one of `noise`, `dirichlet`, `range`"),
    ({"weights": [{"nodes": ["nope"], "noise": 0.1}]}, "unknown or unsuitable node"),
    ({"weights": [{"depth": 1, "noise": 0.1}, {"nodes": ["D1"], "noise": 0.2}]}, "varied by two rules"),
    ({"weights": [{"nodes": ["S1"], "dirichlet": 3}]}, "whole sibling groups"),
    ({"weights": [{"depth": 1, "noise": 1.5}]}, "invalid uncertainty specification"),
    ({"treatment": True}, "varies nothing"),
    ({"normalisation": {"choices": ["goalposts"]}}, "cannot be a global"),
    ({"pairs": ["zzz"]}, "unknown unit"),
    ({"targets": ["x0"]}, "not an aggregate"),
    ({"replicates": 10, "block_size": 3000}, "multiple or a divisor of 1024"),
])
def test_bad_specs_fail_before_any_replicate(mini_fw, mini_data, spec, match):
    with pytest.raises(SchemaError, match=match):
        uncertainty(mini_fw, mini_data, spec, replicates=spec.pop("replicates", 64), seed=1,
                    block_size=spec.pop("block_size", 64))
