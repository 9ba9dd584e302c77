"""The Monte Carlo kernels (scores → sort → accumulate) against their readable twins, over an edge catalogue.

Every accumulator must be bit-identical: rank histograms, rank-shift histograms, pairwise counts
and per-block score moments (the kernel and the twin add the same floats in the same order)."""

from __future__ import annotations

import threading
from unittest import mock

import numpy as np
import pytest

import engine
from engine.analysis import montecarlo as mc_analysis
from engine.analysis.design import ParameterMap, map_parameters, n_columns, replicate_uniforms
from engine.analysis.exact import ExactSum
from engine.analysis.montecarlo import run_chunk, run_design, split_call
from engine.analysis.problem import build_problem, evaluate_ranks, kernel_design, kernel_targets, kernel_tree
from engine.analysis.spec import load_spec, resolve_factors
from engine.kernels import montecarlo as mc
from engine.kernels import reference
from engine.schema import framework_from_dict
from tests.analysis.conftest import city_data, city_framework

WEIGHTS = [{"depth": 1, "noise": 0.25}, {"depth": 2, "noise": 0.25}, {"depth": 3, "noise": 0.25}]
CASES = {
    "weights only (linear path)": ({}, {"weights": WEIGHTS, "pairs": ["c000", "c001", "c002"]}, {}),
    "missing values (tree path)": ({}, {"weights": WEIGHTS}, {"missing": 0.15}),
    "ties between units": ({}, {"weights": WEIGHTS, "pairs": ["c000", "c001"]}, {"ties": True}),
    "one unit": ({}, {"weights": WEIGHTS}, {"n_units": 1}),
    "two units": ({}, {"weights": WEIGHTS}, {"n_units": 2}),
    "dirichlet and ranges": ({}, {"weights": [{"depth": 1, "dirichlet": 5},
                                              {"nodes": ["x0", "x3"], "range": [0.1, 3]}]}, {}),
    "method alternatives": ({}, {"weights": WEIGHTS, "normalisation": {"choices": ["minmax", "rank", "zscore"]},
                                 "aggregation": [{"depth": 2, "choices": ["arithmetic", "geometric", "harmonic"]},
                                                 {"depth": 0,
                                                  "choices": ["arithmetic", {"method": "generalised", "p": 2}]}],
                                 "exclusion": True}, {}),
    "copeland and coverage": ({"defaults": {"min_coverage": 0.6}},
                              {"weights": WEIGHTS, "aggregation": [{"depth": 1, "choices": ["arithmetic", "copeland"]}],
                               "exclusion": True}, {"missing": 0.1}),
    "treatment switch": ({"defaults": {"treatment": {"method": "skew_kurtosis"}}},
                         {"weights": WEIGHTS, "treatment": True, "targets": ["Index", "D1"]}, {}),
}


def resolve_unchecked(spec, framework):
    """resolve_factors without the refusal of impossible method combinations (issue 15 item 2): some
    cases keep zscore under geometric/harmonic means on purpose, so that the kernels' policy for a
    negative component (a missing score) stays compared with the twins'."""
    with mock.patch("engine.analysis.spec._check_combinations"):
        return resolve_factors(spec, framework)


def _case(case, n, seed, block):
    """(problem, factors, parameters, kernel arguments up to the targets) of a CASES entry with n
    replicates (CASES itself is left as it is)."""
    framework_extra, spec_doc, data_args = CASES[case]
    data_args = dict(data_args)
    n_units = data_args.pop("n_units", 40)
    framework = framework_from_dict(city_framework(**framework_extra))
    data = city_data(n_units=n_units, **data_args)
    spec = load_spec(spec_doc, replicates=n, seed=seed, block_size=block)
    if n_units == 1:
        with pytest.warns(engine.ConstantIndicatorWarning):
            nominal = engine.score(framework, data)
    else:
        nominal = engine.score(framework, data)
    factors = resolve_unchecked(spec, framework)
    problem = build_problem(nominal, spec, factors)
    p = map_parameters(replicate_uniforms(seed, 0, n, n_columns(factors)), factors, problem)
    args = (problem.zt, problem.linear_variant, kernel_tree(problem), kernel_design(p), kernel_targets(problem))
    return problem, factors, p, args


def _twin_chain(problem, args, block):
    """The twins' Monte Carlo path: scores and keys, then the accumulators (the keys need no sort:
    the accumulate twin ranks from the scores)."""
    scores, keys = reference.montecarlo_scores(*args)
    return reference.montecarlo_accumulate(scores, keys, problem.nominal_rank, problem.pair_units, block)


def _plain_mapping(u, factors, problem):
    """The documented mapping written plainly, factor by factor (every weight starts nominal):
    noise w (1 + φ (2U − 1)); range lo + U (hi − lo); Dirichlet(c · w) by the inverse gamma CDF,
    rescaled to the group's nominal total; choices floor(U k); exclusion floor(U (n + 1)) − 1."""
    from scipy.special import gammaincinv

    n = u.shape[0]
    nominal = problem.nominal_weight
    weight = np.tile(nominal, (n, 1))
    codes = np.tile(problem.base_codes, (n, 1))
    excluded = np.full(n, -1, np.int64)
    norm = np.zeros(n, np.int64)
    treatment = np.ones(n, np.int64) if problem.has_treatment_variants else np.zeros(n, np.int64)
    for f in factors:
        col = u[:, f.column:f.column + f.width]
        if f.kind == "noise":
            k = problem.position[f.nodes[0]]
            weight[:, k] = nominal[k] * (1.0 + f.params["noise"] * (2.0 * col[:, 0] - 1.0))
        elif f.kind == "range":
            lo, hi = f.params["range"]
            weight[:, problem.position[f.nodes[0]]] = lo + col[:, 0] * (hi - lo)
        elif f.kind == "dirichlet":
            ks = [problem.position[m] for m in f.nodes]
            shape = f.params["concentration"] * nominal[ks] / nominal[ks].sum()
            g = np.maximum(gammaincinv(shape[None, :], np.clip(col, 1e-300, 1.0 - 1e-16)), 1e-300)
            weight[:, ks] = g / g.sum(axis=1, keepdims=True) * nominal[ks].sum()
        elif f.kind == "normalisation":
            k = len(f.params["choices"])
            norm = np.minimum((col[:, 0] * k).astype(np.int64), k - 1)
        elif f.kind == "aggregation":
            k = len(f.params["codes"])
            chosen = np.asarray(f.params["codes"], np.int64)[np.minimum((col[:, 0] * k).astype(np.int64), k - 1)]
            for node in f.nodes:
                codes[:, problem.aggregate_index[node]] = chosen
        elif f.kind == "exclusion":
            m = problem.n_indicators + 1
            excluded = np.minimum((col[:, 0] * m).astype(np.int64), m - 1) - 1
        elif f.kind == "treatment":
            treatment = (col[:, 0] < 0.5).astype(np.int64)
    return weight, problem.variant_index(treatment, norm), codes, excluded


@pytest.mark.parametrize("case", list(CASES))
def test_parameter_map_is_the_plain_mapping_and_reusable(case):
    """A ParameterMap set up once and called block by block gives, for every factor kind, the rows
    of the plain factor-by-factor mapping (weights no factor sets stay nominal)."""
    problem, factors, _, _ = _case(case, 64, 3, 16)
    u = replicate_uniforms(3, 0, 64, n_columns(factors))
    expected = _plain_mapping(u, factors, problem)
    mapping = ParameterMap(factors, problem)
    for lo, hi in ((0, 16), (16, 48), (48, 64), (64, 64)):
        part = mapping(u[lo:hi])
        for got, want in zip((part.node_weight, part.variant, part.agg_code, part.excluded), expected, strict=True):
            np.testing.assert_array_equal(got, want[lo:hi])
            assert got.dtype == want.dtype
    np.testing.assert_array_equal(map_parameters(u, factors, problem).node_weight, expected[0])


@pytest.mark.parametrize("case", list(CASES))
def test_kernel_equals_twin(case):
    block, blocks = 16, 4
    problem, factors, _, args = _case(case, block * blocks, 11, block)
    state = run_chunk(problem, factors, 11, 0, blocks, block, n_lanes=2)
    hist, shift_hist, pairs, moments, _, _ = _twin_chain(problem, args, block * blocks)
    np.testing.assert_array_equal(state.hist, hist)
    np.testing.assert_array_equal(state.shift_hist[:, :shift_hist.shape[1]], shift_hist[:, :state.shift_hist.shape[1]])
    np.testing.assert_array_equal(state.pair_count, pairs)
    # the moments are summed per RNG block (here the chunk's 64 replicates, in order), whatever the work block
    np.testing.assert_array_equal(state.score_moments(), moments[0])
    counted = state.hist[:, :, :-1].sum() + state.hist[:, :, -1].sum()
    assert counted == block * blocks * problem.n_units * len(problem.targets)


def test_lanes_kept_across_chunks_give_each_chunk_its_own_statistics():
    """Lanes (threads and accumulators) reused from chunk to chunk are zeroed for every chunk:
    each chunk's statistics equal those of lanes made for it alone — including a last chunk with
    fewer blocks than lanes, and lanes that do not fit the call (another block size), which
    run_chunk replaces by its own."""
    block = 16
    problem, factors, _, _ = _case("weights only (linear path)", block * 7, 9, block)
    with mc_analysis.Lanes(problem, 2, block) as lanes:
        for first, stop in ((0, 3), (3, 6), (6, 7)):
            kept = run_chunk(problem, factors, 9, first, stop, block, n_lanes=2, lanes=lanes)
            fresh = run_chunk(problem, factors, 9, first, stop, block, n_lanes=2)
            np.testing.assert_array_equal(kept.hist, fresh.hist)
            np.testing.assert_array_equal(kept.shift_hist, fresh.shift_hist)
            assert kept.blocks == fresh.blocks and kept.n_replicates == (stop - first) * block
            assert kept.moments == fresh.moments
        assert not lanes.fits(problem, 3, block)
        other = run_chunk(problem, factors, 9, 0, 2, 2 * block, n_lanes=2, lanes=lanes)
        np.testing.assert_array_equal(other.hist, run_chunk(problem, factors, 9, 0, 2, 2 * block, n_lanes=2).hist)


def test_a_failing_lane_stops_the_chunk_and_leaves_the_lanes_reusable(monkeypatch):
    """A lane that raises makes the other lanes stop taking blocks; run_chunk raises only once
    every lane has stopped, so kept lanes give the next chunk exactly its own statistics."""
    block = 1024  # an RNG block: lanes take moment blocks (RNG blocks)
    problem, factors, _, _ = _case("weights only (linear path)", block * 40, 4, block)
    run_block = mc_analysis._Lane.run_block
    done = []

    def failing(self, params, moments):
        if not done:
            done.append("failed")
            raise RuntimeError("lane failure")
        run_block(self, params, moments)
        done.append("block")

    with mc_analysis.Lanes(problem, 2, block) as lanes:
        monkeypatch.setattr(mc_analysis._Lane, "run_block", failing)
        with pytest.raises(RuntimeError, match="lane failure"):
            run_chunk(problem, factors, 4, 0, 40, block, n_lanes=2, lanes=lanes)
        assert len(done) < 40  # the other lane stopped early
        monkeypatch.setattr(mc_analysis._Lane, "run_block", run_block)
        after = run_chunk(problem, factors, 4, 0, 10, block, n_lanes=2, lanes=lanes)
    fresh = run_chunk(problem, factors, 4, 0, 10, block, n_lanes=2)
    assert after.n_replicates == 10 * block
    np.testing.assert_array_equal(after.hist, fresh.hist)
    np.testing.assert_array_equal(after.shift_hist, fresh.shift_hist)
    assert not lanes.fits(problem, 2, block)  # closed lanes are not reused


def test_blocks_taken_unevenly_by_lanes_change_nothing(monkeypatch):
    """Lanes take the next free block as they finish one: a lane held up takes fewer blocks, and
    the statistics are still those of one lane doing every block."""
    block, blocks = 1024, 12  # RNG blocks: lanes take moment blocks (RNG blocks)
    problem, factors, _, _ = _case("weights only (linear path)", block * blocks, 5, block)
    one = run_chunk(problem, factors, 5, 0, blocks, block, n_lanes=1)
    run_block = mc_analysis._Lane.run_block
    taken: dict[str, int] = {}  # thread -> blocks it did
    lock = threading.Lock()
    others_done = threading.Event()

    def uneven(self, params, moments):
        name = threading.current_thread().name
        with lock:
            held_up = not taken  # the first lane to start a block waits for the other to do the rest
            taken[name] = taken.get(name, 0) + 1
        if held_up:
            others_done.wait(10.0)
        run_block(self, params, moments)
        with lock:
            if sum(taken.values()) == blocks:
                others_done.set()

    monkeypatch.setattr(mc_analysis._Lane, "run_block", uneven)
    two = run_chunk(problem, factors, 5, 0, blocks, block, n_lanes=2)
    assert sorted(taken.values()) == [1, blocks - 1]
    np.testing.assert_array_equal(two.hist, one.hist)
    np.testing.assert_array_equal(two.shift_hist, one.shift_hist)
    np.testing.assert_array_equal(two.pair_count, one.pair_count)
    assert two.moments == one.moments


@pytest.mark.parametrize("scores", [
    [3.0, 1.0, 2.0],
    [1.0, 1.0, 0.5, 1.0],                      # ties share the minimum rank
    [np.nan, 2.0, np.nan, 5.0],                # missing -> 0, not counted
    [0.0, -0.0, -1.0, 1e-300, -1e-300],        # signed zeros tie; tiny magnitudes order correctly
    [np.inf, -np.inf, 1.0],                    # non-finite = missing
    [1e300, -1e300, 0.0, 7.5, 7.5 + 1e-13],    # huge range; near-equal but distinct
    list(np.linspace(0, 1, 300)),              # many keys sharing their 32-bit prefix
])
def test_radix_ranks_equal_competition_ranks(scores):
    score = np.asarray(scores, np.float64)
    n = len(score)
    rank = np.empty(n, np.int64)
    mc.rank_scores(score, np.empty(n, np.uint64), np.empty(n, np.uint32), np.empty(n, np.int64),
                   np.empty(n, np.int64), np.zeros((4, 256), np.int64), rank)
    expected = reference.rank_desc(score[:, None])[:, 0]
    np.testing.assert_array_equal(rank, np.nan_to_num(expected, nan=0.0).astype(np.int64))


SPLIT_EDGE_ROWS = [
    [3.0, 1.0, 2.0],
    [1.0, 1.0, 0.5, 1.0],                      # ties share the minimum rank
    [np.nan, 2.0, np.nan, 5.0],                # missing -> 0, not counted
    [2.0, np.nan, 1.0],                        # a lone missing score (not in a run)
    [np.nan],                                  # one unit, missing
    [4.0],                                     # one unit
    [np.nan, np.nan, np.nan],                  # all missing
    [7.0] * 5,                                 # constant: one run, all rank 1
    [0.0, -0.0, -1.0, 1e-300, -1e-300],        # signed zeros tie; tiny magnitudes order correctly
    [np.inf, -np.inf, 1.0],                    # non-finite = missing
    [np.inf, 3.0, 3.0, -np.inf, np.nan, 2.0],  # non-finite and ties
    [1e308, -1e308, 0.0, 7.5, 7.5 + 1e-13],    # range beyond the float maximum; near-equal but distinct
    [1e-310, 2e-310, -1e-310, 0.0],            # subnormal range (the scale overflows)
    list(np.linspace(0, 1, 300)),
    [*np.linspace(0, 1e-9, 200), 1e6],   # one outlier: the rest share quantised values
    list(np.random.default_rng(3).integers(0, 5, 400).astype(float)),  # many ties, 9 index bits
    [5.0, 5.0, 3.0, 2.0, 1.0],                 # one run, at the start only
    [5.0, 4.0, 3.0, 1.0, 1.0],                 # one run, at the end only
    [5.0, 5.0, 4.0, 4.0, 3.0],                 # adjacent runs
    [5.0, 5.0, 4.0, 1.0, 1.0],                 # runs at both ends, a gap between
    [1.0, 1.0 + 1e-13, 1.0, 0.5],              # a near-tie run re-ordered on the floats
    [2.0, 1.0, 1.0, np.nan, np.nan],           # a finite run next to the missing run
    [1.0, 1.0, np.nan],                        # a finite run and a lone missing score
    list(np.random.default_rng(4).integers(0, 9, 64).astype(float)),  # 6 index bits, full
    list(np.random.default_rng(5).integers(0, 9, 65).astype(float)),  # 7 index bits
]


def _accumulate_row_like_twin(score, keys):
    """montecarlo_accumulate on one replicate (one row of scores and its packed keys, sorted here;
    nominal ranks 1..n, the first three units as pairs); asserts every accumulator equals the twin's
    and returns the kernel's outputs."""
    n = len(score)
    scores, sorted_keys = score[None, None, :], np.sort(keys)[None, None, :]
    nominal = np.arange(1, n + 1, dtype=np.int64)[None, :]
    pairs = np.arange(min(n, 3), dtype=np.int64)
    out = (np.zeros((1, n, n + 1), np.int64), np.zeros((1, mc.shift_bins(n)), np.int64),
           np.zeros((1, len(pairs), len(pairs)), np.int64), np.zeros((1, 1, n, 2)), np.zeros((1, 1)),
           np.zeros((1, 1, n), np.int64))
    mc.montecarlo_accumulate(scores, sorted_keys, nominal, pairs, 1, mc.Accumulators(*out))
    twin = reference.montecarlo_accumulate(scores, sorted_keys, nominal, pairs, 1)
    for kernel_out, twin_out in zip(out, twin):
        np.testing.assert_array_equal(kernel_out, twin_out)
    return out


@pytest.mark.parametrize("row", SPLIT_EDGE_ROWS, ids=range(len(SPLIT_EDGE_ROWS)))
def test_packed_32_bit_keys_give_exact_competition_ranks(row):
    """pack_keys → NumPy sort → montecarlo_accumulate gives exact competition ranks (ties share the
    minimum rank, NaN and ±inf are missing = 0) on the edge catalogue, the keys equal the twin's,
    and their quantised part never increases with the score."""
    score = np.asarray(row, np.float64)
    n = len(score)
    bits = mc.index_bits(n)
    keys = np.empty(n, np.uint32)
    mc.pack_keys(score, bits, keys)
    np.testing.assert_array_equal(keys, reference._pack_keys([float(v) for v in score], bits))
    q = keys >> np.uint32(bits)
    finite = np.isfinite(score)
    assert (q[~finite] == 2 ** (32 - bits) - 1).all() and (q[finite] < 2 ** (32 - bits) - 1).all()
    by_score = np.argsort(-np.where(finite, score, -np.inf), kind="stable")
    fin = by_score[finite[by_score]]
    assert (np.diff(q[fin].astype(np.int64)) >= 0).all()
    out = _accumulate_row_like_twin(score, keys)
    expected = np.nan_to_num(reference.rank_desc(score[:, None])[:, 0], nan=0.0).astype(np.int64)
    np.testing.assert_array_equal(out[5][0, 0], expected)


def _finite_bounds(score):
    finite = score[np.isfinite(score)]
    return (finite.min(), finite.max()) if len(finite) else (0.0, 1.0)


@pytest.mark.parametrize("bounds", ["inner", "outer", "huge", "none", "inverted", "point"])
@pytest.mark.parametrize("row", SPLIT_EDGE_ROWS, ids=range(len(SPLIT_EDGE_ROWS)))
def test_keys_quantised_against_any_range_give_exact_ranks(row, bounds):
    """pack_keys_between (the linear replicates' keys, quantised against the variant's range rather
    than the row's) with a range narrower than the scores (clamped at both ends), wider, huge, empty
    (inf, −inf), inverted or a single point: the keys equal the twin's, never increase with the
    score, and the ranks are still exact — both through the distinct-keys path and the run path."""
    score = np.asarray(row, np.float64)
    n = len(score)
    lo, hi = (float(v) for v in _finite_bounds(score))  # Python floats: overflow to ±inf silently
    lo, hi = {"inner": (0.7 * lo + 0.3 * hi, 0.3 * lo + 0.7 * hi), "outer": (2 * lo - hi - 1.0, 2 * hi - lo + 1.0),
              "huge": (-1e300, 1e300), "none": (np.inf, -np.inf), "inverted": (hi, lo),
              "point": (lo, lo)}[bounds]
    bits = mc.index_bits(n)
    keys = np.empty(n, np.uint32)
    mc.pack_keys_between(score, bits, lo, hi, keys)
    np.testing.assert_array_equal(keys, reference._pack_keys([float(v) for v in score], bits, (lo, hi)))
    q = keys >> np.uint32(bits)
    finite = np.isfinite(score)
    by_score = np.argsort(-np.where(finite, score, -np.inf), kind="stable")
    assert (np.diff(q[by_score[finite[by_score]]].astype(np.int64)) >= 0).all()
    assert (q[~finite] == 2 ** (32 - bits) - 1).all()
    _accumulate_row_like_twin(score, keys)


def test_rank_shift_of_tied_ranks_fits_its_histogram():
    """Competition ranks with ties are not a permutation, so S = Σ |rank − nominal| can exceed the
    n²/2 of permutations: ranks 1, 1, 1, 1, 5 against nominal 5, 4, 3, 2, 1 give S = 14 > 12.  It is
    counted in its own bin for each of two targets (it used to land in the next target's bin 0),
    like the twin."""
    n = 5
    score = np.array([1.0, 1.0, 1.0, 1.0, 0.0])
    scores = np.stack([score, score])[None]  # (1 replicate, 2 targets, 5 units)
    keys = np.empty((1, 2, n), np.uint32)
    for t in range(2):
        mc.pack_keys(score, mc.index_bits(n), keys[0, t])
    keys.sort(axis=2)
    nominal = np.array([[5, 4, 3, 2, 1], [1, 2, 3, 4, 5]], np.int64)
    pairs = np.zeros(0, np.int64)
    out = (np.zeros((2, n, n + 1), np.int64), np.zeros((2, mc.shift_bins(n)), np.int64), np.zeros((2, 0, 0), np.int64),
           np.zeros((1, 2, n, 2)), np.zeros((1, 2)), np.zeros((1, 2, n), np.int64))
    mc.montecarlo_accumulate(scores, keys, nominal, pairs, 1, mc.Accumulators(*out))
    assert mc.shift_bins(n) == 21
    assert np.flatnonzero(out[1][0]).tolist() == [14] and np.flatnonzero(out[1][1]).tolist() == [6]  # 0+1+2+3+0
    np.testing.assert_array_equal(out[4], [[14 / 5, 6 / 5]])
    twin = reference.montecarlo_accumulate(scores, keys, nominal, pairs, 1)
    for kernel_out, twin_out in zip(out, twin):
        np.testing.assert_array_equal(kernel_out, twin_out)


def test_sorted_keys_path_equals_general_path():
    """accumulate_ranked (branch-free counting of a replicate whose units all have a rank) gives
    the integers and floats of the general path (sorted_ranks + accumulate_replicate) on many
    random rows: distinct scores, exact ties, near-ties that share their quantised part (runs of 2
    to many keys, at the start, the middle and the end), with a unit that has no nominal rank,
    selected pairs and raw ranks; the ranks are the exact competition ranks and no replicate lands
    in the no-rank column."""
    rng = np.random.default_rng(11)
    n = 57
    bits = mc.index_bits(n)
    mask = np.uint32((1 << bits) - 1)
    nominal = rng.permutation(n).astype(np.int64) + 1
    nominal[5] = 0  # a unit without a nominal rank is not counted in R_S
    pairs = np.array([0, 3, 9, 3], np.int64)
    n_runs = []
    for trial in range(300):
        score = rng.normal(size=n)
        if trial % 3 == 1:
            score = np.round(score, 1)  # exact ties
        elif trial % 3 == 2:  # near-ties: equal quantised parts, distinct floats (and some exact ties)
            score = np.round(score, 1) + rng.integers(0, 3, n) * 1e-12
        if trial % 50 == 7:
            score[:] = 1.0  # one run of every unit
        keys = np.empty(n, np.uint32)
        mc.pack_keys(score, bits, keys)
        keys.sort()
        high = keys >> np.uint32(bits)
        n_runs.append(int((high[1:] == high[:-1]).sum()))
        outs = []
        for path in ("sorted", "general"):
            hist, shift_hist = np.zeros((n, n + 1), np.int64), np.zeros(mc.shift_bins(n), np.int64)
            pair_count, shift_row = np.zeros((4, 4), np.int64), np.zeros(2)
            ranks_out, rank = np.zeros((2, 2, n), np.int64), np.zeros(n, np.int64)
            if path == "sorted":
                sums = np.zeros((2, n))
                assert mc.sorted_ranks(score, keys, bits, np.empty(n, np.int64), rank)
                mc.accumulate_ranked(score, rank, nominal, int((nominal > 0).sum()), pairs, hist, shift_hist,
                                     pair_count, sums, shift_row, 1, ranks_out, 1)
                moments = sums.T
            else:
                moments = np.zeros((n, 2))
                mc.sorted_ranks(score, keys, bits, np.empty(n, np.int64), rank)
                mc.accumulate_replicate(score, rank, nominal, pairs, hist, shift_hist, pair_count, moments,
                                        shift_row, 1, ranks_out, 1)
            outs.append((hist, shift_hist, pair_count, moments, shift_row, ranks_out))
        for a, b in zip(*outs):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(outs[0][5][1, 1], reference._competition_ranks(score))
        assert not outs[0][0][:, n].any()
        assert set(np.int64(keys & mask)) == set(range(n))
    assert min(n_runs) == 0 and max(n_runs) == n - 1 and np.median(n_runs) > 0


@pytest.mark.parametrize("n_weights", range(10))
def test_linear_scores_adds_terms_in_indicator_order(n_weights):
    """linear_scores (four terms per pass) gives the floats of the readable one-term-per-pass sum,
    for any number of non-zero weights (remainders 0-3), skipping zero weights."""
    rng = np.random.default_rng(n_weights)
    zt = rng.normal(size=(12, 37))
    zt[2, 3] = -0.0
    eff = np.zeros(16)
    eff[rng.choice(12, n_weights, replace=False)] = rng.random(n_weights)
    out = np.empty(37)
    mc.linear_scores(zt, eff, 12, out)
    expected = np.zeros(37)
    for j in range(12):
        if eff[j] != 0.0:
            expected += eff[j] * zt[j]
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("n_weights", range(10))
def test_four_replicates_at_a_time_give_the_one_at_a_time_floats(n_weights):
    """linear_scores4 (four replicates sharing their zero weights, four terms per pass) gives
    exactly four calls of linear_scores: remainders 0-3 of terms, signed zeros, and a non-finite
    value on an indicator whose weight is zero (never multiplied, as in the one-at-a-time sum)."""
    rng = np.random.default_rng(100 + n_weights)
    zt = rng.normal(size=(12, 37))
    zt[2, 3] = -0.0
    support = rng.choice(12, n_weights, replace=False)
    eff = np.zeros((6, 12))
    eff[:, support] = rng.random((6, n_weights))
    zero = [j for j in range(12) if j not in support]
    if zero:
        zt[zero[0], 5] = np.inf
    by_indicator = np.ascontiguousarray(eff.T)  # the kernel's layout: eff[indicator, replicate]
    assert mc.same_support(by_indicator, 1, 12)
    out = np.full((6, 2, 37), np.nan)
    mc.linear_scores4(zt, by_indicator, 1, 12, out, 1, 1, np.empty(12, np.int64))
    for r in range(1, 5):
        expected = np.empty(37)
        mc.linear_scores(zt, eff[r], 12, expected)
        np.testing.assert_array_equal(out[r, 1], expected)
    assert np.isnan(out[0]).all() and np.isnan(out[5]).all() and np.isnan(out[1:5, 0]).all()
    if n_weights:
        by_indicator[support[0], 3] = 0.0  # one replicate drops an indicator: not the same support
        assert not mc.same_support(by_indicator, 1, 12)


def test_chunk_weights_equal_one_replicate_at_a_time():
    """chunk_local_weights / chunk_effective_weights (replicates vectorised, node-major) give the
    floats of local_weights / effective_weights per replicate: exclusions, zero weights, a parent
    whose children all weigh zero, an infinite and a negative weight (a NaN local weight outside a
    target's subtree must not leak into it), every target of the tree."""
    framework = framework_from_dict(city_framework())
    nominal = engine.score(framework, city_data(n_units=20))
    spec = load_spec({"weights": WEIGHTS, "exclusion": True}, replicates=13, seed=2, block_size=1)
    factors = resolve_factors(spec, framework)
    problem = build_problem(nominal, spec, factors)
    p = map_parameters(replicate_uniforms(2, 0, 13, n_columns(factors)), factors, problem)
    node_weight = p.node_weight.copy()
    node_weight[:, 0] = 0.0  # an indicator weighing zero in every replicate
    first = problem.child_idx[problem.child_ptr[0]:problem.child_ptr[1]]
    node_weight[4, first] = 0.0  # replicate 4: every child of the first aggregate weighs zero
    node_weight[6, 0] = np.inf  # replicate 6: an infinite weight (NaN local weights for its siblings)
    node_weight[7, 1] = -2.0  # replicate 7: a negative weight
    excluded = p.excluded.copy()
    excluded[5] = 3
    assert (excluded >= 0).any() and (excluded < 0).any()
    n, n_nodes = node_weight.shape
    n_ind = problem.zt.shape[1]
    start = 2
    m = n - start
    raw, local, total = np.empty((n_nodes, 16)), np.empty((n_nodes, 16)), np.empty(16)
    mc.chunk_local_weights(node_weight, excluded, start, m, problem.child_ptr, problem.child_idx, raw, local, total)
    eff = np.empty((n_nodes, 16))
    one_local, one_eff = np.empty(n_nodes), np.empty(n_nodes)
    for target in range(n_nodes):
        mc.chunk_effective_weights(local, m, problem.child_ptr, problem.child_idx, target, n_ind, eff)
        for k in range(m):
            mc.local_weights(node_weight[start + k], excluded[start + k], problem.child_ptr, problem.child_idx,
                             one_local)
            np.testing.assert_array_equal(local[:, k], one_local)
            mc.effective_weights(one_local, problem.child_ptr, problem.child_idx, target, n_ind, one_eff)
            np.testing.assert_array_equal(eff[:, k], one_eff)
            assert np.array_equal(np.signbit(eff[:, k]), np.signbit(one_eff)) or np.isnan(one_eff).any()


@pytest.mark.parametrize("case", ["weights only (linear path)", "method alternatives", "treatment switch"])
@pytest.mark.parametrize("n", [1, 7, 70])
def test_scores_of_any_number_of_replicates_equal_the_twin(case, n):
    """montecarlo_scores over counts that are not multiples of four or of its chunk (and mixed
    variants, exclusions and non-linear replicates inside a chunk): the twin's scores and keys."""
    problem, _, _, args = _case(case, n, 3, 1)
    scores = np.empty((n, len(problem.targets), problem.n_units))
    keys = np.empty(scores.shape, np.uint32)
    mc.montecarlo_scores(*args, scores, keys)
    twin_scores, twin_keys = reference.montecarlo_scores(*args)
    np.testing.assert_array_equal(scores, twin_scores)
    np.testing.assert_array_equal(keys, twin_keys)


@pytest.mark.parametrize("case", list(CASES))
def test_split_kernels_equal_their_twins(case):
    """montecarlo_scores (scores and packed keys) and montecarlo_accumulate (after NumPy sorts the
    keys) against their twins, and the lane-threaded split path against them."""
    block, n = 8, 32
    problem, _, p, args = _case(case, n, 5, block)
    n_t, n_u, n_p = len(problem.targets), problem.n_units, len(problem.pair_units)
    scores, keys = np.empty((n, n_t, n_u)), np.empty((n, n_t, n_u), np.uint32)
    mc.montecarlo_scores(*args, scores, keys)
    twin_scores, twin_keys = reference.montecarlo_scores(*args)
    np.testing.assert_array_equal(scores, twin_scores)
    np.testing.assert_array_equal(keys, twin_keys)
    keys.sort(axis=-1)
    out = (np.zeros((n_t, n_u, n_u + 1), np.int64), np.zeros((n_t, mc.shift_bins(n_u)), np.int64),
           np.zeros((n_t, n_p, n_p), np.int64), np.zeros((n // block, n_t, n_u, 2)), np.zeros((n, n_t)),
           np.zeros((n, n_t, n_u), np.int64))
    mc.montecarlo_accumulate(scores, keys, problem.nominal_rank, problem.pair_units, block, mc.Accumulators(*out))
    twin = reference.montecarlo_accumulate(scores, keys, problem.nominal_rank, problem.pair_units, block)
    for kernel_out, twin_out in zip(out, twin):
        np.testing.assert_array_equal(kernel_out, twin_out)
    for lanes in (1, 2, 3):  # the lane-threaded fast path of the analysis layer, any number of lanes
        split = split_call(problem, p, block, lanes, keep=True)
        for split_out, twin_out in zip(split[:4] + split[5:], twin):
            np.testing.assert_array_equal(split_out, twin_out)
        np.testing.assert_array_equal(split[4], scores)


@pytest.mark.parametrize("case", list(CASES))
def test_explicit_designs_and_nominal_ranks_equal_the_twins(case):
    """Explicit designs (run_design) and nominal ranks (evaluate_ranks) run the one Monte Carlo
    path (issue 16 item 3: the fused kernel is gone): every accumulator, R_S per replicate and
    every replicate's ranks equal the twins' bit for bit, whatever the number of lanes."""
    block, n = 8, 32
    problem, _, p, args = _case(case, n, 9, block)
    hist, shift_hist, pairs, moments, shift_out, ranks = _twin_chain(problem, args, block)
    for lanes in (1, 3):
        state, shift, kept = run_design(problem, p, block, n_lanes=lanes, keep_ranks=True)
        np.testing.assert_array_equal(state.hist, hist)
        np.testing.assert_array_equal(state.shift_hist, shift_hist)
        np.testing.assert_array_equal(state.pair_count, pairs)
        assert state.moments == ExactSum.of(moments)
        np.testing.assert_array_equal(shift, shift_out)
        np.testing.assert_array_equal(kept, ranks)
    np.testing.assert_array_equal(evaluate_ranks(problem, p.node_weight, p.variant, p.agg_code, p.excluded), ranks)


@pytest.mark.parametrize("phi", [0.0, 0.25, 1.0])
def test_noise_weights_equal_their_twin(phi):
    """noise_weights writes exactly the twin's floats into the listed node columns (any column
    order, zero and negative-free nominal weights, U at the ends of [0, 1)) and leaves the other
    columns alone."""
    rng = np.random.default_rng(4)
    u = rng.random((50, 7))
    u[0, :] = 0.0
    u[1, :] = np.nextafter(1.0, 0.0)
    columns = np.array([6, 0, 3, 2], np.int64)
    nodes = np.array([1, 4, 0, 8], np.int64)
    phis = np.full(4, phi)
    phis[1] = 0.5 * phi
    nominal = np.array([0.3, 1.0, 2.0, 0.0, 1e-300, 7.0, 1.0, 1.0, 0.0])
    out = np.full((50, 9), -1.0)
    mc.noise_weights(u, columns, nodes, phis, nominal, out)
    np.testing.assert_array_equal(out[:, nodes], reference.noise_weights(u, columns, nodes, phis, nominal))
    untouched = np.setdiff1d(np.arange(9), nodes)
    assert (out[:, untouched] == -1.0).all()
    assert (out[:, nodes] >= 0.0).all()  # φ ≤ 1 never makes a weight negative
