"""Scoring many units: the stages' columns spread over threads give the same result as one thread,
bit for bit (scores, ranks, tiers, the output table)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import engine
from engine.blocks import ROW_BLOCK
from engine.errors import SchemaError
from engine.kernels import aggregate as aggregate_kernels
from engine.kernels import rank as rank_kernels
from engine.kernels import reference
from engine.pipeline import best_first
from engine.stages import aggregate, normalise, rank, rank_dtype, rescale
from tools.synthetic.large import generate_large


@pytest.fixture(scope="module")
def large():
    table = generate_large(20_000, seed=7)
    # ties (equal scores share a rank and a tier) and missing values (ranked last, no tier)
    gaps = pl.Series(np.arange(table.height) % 97 == 0)
    return table.with_columns(pl.col("ai_valid_invention_patents").clip(upper_bound=50.0),
                              pl.when(gaps).then(None).otherwise(pl.col("ai_firms_total")).alias("ai_firms_total"))


def same_arrays(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a), np.signbit(b))


@pytest.mark.parametrize("framework", ["ai-city-2024", "asem", "imd-2019"])
def test_scores_do_not_depend_on_the_thread_count(framework, large):
    data = large if framework == "ai-city-2024" else None
    one, two = (engine.score(framework, data, threads=t) for t in (1, 2))
    assert one.table.equals(two.table) and one.table.schema == two.table.schema
    for name in ("normalised", "scores", "ranks", "tiers"):
        assert same_arrays(getattr(one.stages, name), getattr(two.stages, name)), name
    assert one.recipe == two.recipe


def test_threaded_ranks_equal_the_kernel_and_the_twin(large):
    scores = engine.score("ai-city-2024", large, threads=1).stages.scores
    with engine.pipeline.thread_pool(2) as pool:
        ranked = rank(scores, pool=pool)
    np.testing.assert_array_equal(ranked, rank_kernels.rank_desc(scores, np.empty_like(scores)))
    with engine.pipeline.thread_pool(2) as pool:  # the twin is O(n²): a slice
        np.testing.assert_array_equal(rank(scores[:300], pool=pool), reference.rank_desc(scores[:300]))


def test_stage_ranks_are_float32_up_to_2_24_units_with_the_float64_values(large):
    """Ranks 1 … n are exact in float32 up to 2^24 units: the pipeline stores them in half the memory
    (10^6 units × 39 nodes: 156 MB, not 312), column-major, the same values as float64 ranking."""
    assert rank_dtype(1) == rank_dtype(2**24) == np.float32
    assert rank_dtype(2**24 + 1) == np.float64
    assert float(np.float32(2**24)) == 2**24 and float(np.float32(2**24 + 1)) != 2**24 + 1  # why the bound
    result = engine.score("ai-city-2024", large, threads=2)
    ranks = result.stages.ranks
    assert ranks.dtype == np.float32 and ranks.flags.f_contiguous
    wide = rank(result.stages.scores)
    assert wide.dtype == np.float64 and np.isnan(wide).any()
    np.testing.assert_array_equal(ranks.astype(np.float64), wide)
    small = result.stages.scores[:300]
    np.testing.assert_array_equal(rank(small, use_reference=True, dtype=np.float32), rank(small, dtype=np.float32))
    assert rank(small, use_reference=True, dtype=np.float32).dtype == np.float32


def test_the_normalised_values_are_held_once_in_the_scores(large):
    """The indicators' columns of the scores are the normalised values: the stages keep them once
    (10^6 units × 25 indicators: 200 MB), also after reaggregate (which then holds no view of the
    previous scores); the values are those of the normalise stage."""
    result = engine.score("ai-city-2024", large, threads=2)
    fw, stages = result.framework, result.stages
    alone = engine.run_stages(fw, stages.inputs, up_to="normalise").normalised
    assert np.shares_memory(stages.normalised, stages.scores) and not np.shares_memory(alone, stages.scores)
    assert same_arrays(stages.normalised, alone)
    again = result.reaggregate(scale={fw.root.children[0]: 2.0}).stages
    assert np.shares_memory(again.normalised, again.scores) and not np.shares_memory(again.normalised, stages.scores)
    assert same_arrays(again.normalised, alone) and not same_arrays(again.scores, stages.scores)


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_a_thread_count_below_one_is_refused(threads):
    with pytest.raises(SchemaError, match="threads must be a whole number of at least 1"):
        engine.score("asem", threads=threads)


def test_the_constant_check_in_one_pass_takes_only_finite_values():
    """normalise finds constant columns by a NaN-ignoring min and max over all rows at once; a
    column whose min or max is infinite gets the exact test on its finite values."""
    fw = engine.load_framework("asem")
    inds = fw.indicators[:5]
    x = np.arange(1.0, 4 * len(inds) + 1).reshape(4, len(inds))
    x[:, 0] = [np.inf, 2.0, 2.0, np.nan]  # finite values all 2: constant
    x[:, 1] = np.nan  # no value: not constant
    x[:, 2] = [-np.inf, 1.0, 3.0, 3.0]  # two finite values
    x[:, 3] = [-0.0, 0.0, 0.0, 0.0]  # -0.0 == 0.0: constant
    with pytest.warns(engine.errors.ConstantIndicatorWarning) as caught:
        out = normalise(x, inds, "missing")
    named = " ".join(str(w.message) for w in caught)
    assert inds[0].id in named and inds[3].id in named
    assert inds[1].id not in named and inds[2].id not in named and inds[4].id not in named
    assert out.flags.c_contiguous and out.shape == x.shape


def test_without_denominators_no_matrix_of_ones_and_no_denominated_copy():
    """10^6 units x 25 indicators: 400 MB spared (the ones and the copy x / (1 / 1))."""
    plain = engine.score("imd-2019").stages  # no denominator, every scale factor 1
    assert plain.inputs.denominators.strides == (0, 0) and np.all(plain.inputs.denominators == 1.0)
    assert plain.denominated is plain.inputs.raw
    fw = engine.load_framework("asem")
    assert any(ind.denominator or ind.scale_factor != 1 for ind in fw.indicators)
    stages = engine.score(fw).stages
    assert stages.denominated is not stages.inputs.raw
    scale = np.array([i.scale_factor for i in fw.indicators])
    assert same_arrays(stages.denominated, stages.inputs.raw / (stages.inputs.denominators / scale))


def test_aggregation_in_row_blocks_and_threads_equals_one_pass(large):
    """More units than a block: blocks in two threads give the floats of one kernel call over all
    rows (and the twin on a slice)."""
    stages = engine.score("ai-city-2024", large, threads=1).stages
    fw = engine.load_framework("ai-city-2024")
    tree = fw.compile(stages.weights)
    assert stages.normalised.shape[0] > ROW_BLOCK
    with engine.pipeline.thread_pool(2) as pool:
        blocked = aggregate(stages.normalised, tree, pool=pool)
    whole = np.empty_like(blocked)
    whole[:, : tree.n_indicators], whole[:, tree.n_indicators:] = stages.normalised, np.nan
    args = (tree.child_ptr, tree.child_idx, tree.child_weight, tree.method, tree.param, tree.min_coverage)
    assert same_arrays(blocked, aggregate_kernels.aggregate_tree(whole, *args))
    assert same_arrays(blocked[:200], reference.aggregate_tree(whole[:200], *args))


def test_rescale_in_place_gives_the_copy_s_floats():
    for name in ("ai-city-2024", "asem", "hdi"):
        result = engine.score(name)
        fw, stages = result.framework, result.stages
        aggregated = aggregate(stages.normalised, fw.compile(stages.weights))
        copied = rescale(aggregated, fw, stages.weights)
        assert same_arrays(copied, stages.scores)
        assert same_arrays(rescale(aggregated, fw, stages.weights, copy=False), copied)


@pytest.mark.parametrize("ranks", [[], [np.nan], [1.0], [3.0, 1.0, np.nan, 1.0, 3.0, np.nan, 5.0, 6.0, 3.0],
                                   [np.nan, np.nan, 2.0, 1.0], list(np.arange(1000.0, 0.0, -1.0))])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_best_first_is_the_stable_argsort_of_the_ranks(ranks, dtype):
    ranks = np.array(ranks, dtype=dtype)
    np.testing.assert_array_equal(best_first(ranks), np.argsort(ranks, kind="stable"))


def test_the_output_table_equals_its_plain_construction(large):
    """The table built from stable-argsort order, whole-row gathers and Polars casts (how it was built
    before the block gathers and packed-key order): the same columns, values, nulls and dtypes."""
    result = engine.score("ai-city-2024", large, threads=2)
    fw, ds, stages = result.framework, result.dataset, result.stages
    root = fw.node_ids.index(fw.root.id)
    perm = np.argsort(stages.ranks[:, root], kind="stable")
    columns = {c: ds.table[c].filter(pl.Series(stages.kept)).gather(perm) for c in (ds.unit, ds.label, *ds.groups)}
    scores, ranks = stages.scores[perm], stages.ranks[perm]
    order = [n for n in result.table.columns if n in fw.node_ids]
    for node in order:
        k = fw.node_ids.index(node)
        columns[node] = pl.Series(node, scores[:, k]).fill_nan(None)
        columns[node + "_rank"] = pl.Series(node + "_rank", ranks[:, k]).fill_nan(None).cast(pl.Int32)
    tier = f"{fw.tiers['node']}_tier"
    columns[tier] = pl.Series(tier, stages.tiers[perm]).replace(0, None).cast(pl.Int32)
    plain = pl.DataFrame(columns)
    assert result.table.equals(plain) and result.table.schema == plain.schema
