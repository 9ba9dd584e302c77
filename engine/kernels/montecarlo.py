"""The Monte Carlo kernels: per replicate, weights → scores of the target nodes → ranks →
integer statistics.  One path: :func:`montecarlo_scores` (scores and packed sort keys) → NumPy
sorts the keys → :func:`montecarlo_accumulate` (ranks and statistics), see "split hot path" below;
:mod:`engine.analysis.montecarlo` runs it for random runs, explicit designs and nominal ranks.

Layout: normalised indicator values are stored transposed, ``zt[variant, indicator, unit]``, so
that the score loops run over units (contiguous, vectorised by LLVM without reassociation).

Per replicate ``r`` (all inputs precomputed by :mod:`engine.analysis.design`):

* ``node_weight[r]`` raw weights of every node (indicators first, then aggregates in post-order),
  renormalised here within each parent; ``excluded[r]`` (−1 = none) gets weight 0;
* ``variant[r]`` picks the normalised matrix (normalisation × treatment alternative);
* ``agg_code[r, a]`` is the aggregation method of aggregate ``a`` (codes of
  :mod:`engine.kernels.aggregate`).

Scores: when the replicate's tree is entirely arithmetic, has no coverage threshold and its
variant has no missing value, a target's score is ``Σ_j W_j z_j`` with the effective weights
``W_j`` (products of local weights from indicator j up to the target), summed over j in
indicator order; otherwise the tree is evaluated node by node with the aggregation kernels'
policies.  Ranks: descending competition ranks (ties share the minimum rank, missing = 0), from
sorted packed keys (:func:`engine.kernels.rank.sorted_ranks`).

Accumulated (integers are exact and mergeable in any order; float moments are per block):

* ``hist[t, unit, rank - 1]`` (column ``n_units`` counts replicates where the unit has no
  rank);
* ``shift_hist[t, S]`` (:func:`shift_bins` bins): S = Σ_units |rank − nominal rank| over
  units ranked in both, so the mean absolute rank shift R_S = S / n_ranked; ``shift_out[r, t]`` =
  R_S of replicate r;
* ``pair_count[t, a, b]``: replicates where selected unit a is ranked strictly ahead of b;
* ``moments[block, t, unit, 0|1]``: Σ score and Σ score² over the block's replicates;
* optionally ``ranks_out[r, t, unit]`` (for the Sobol estimators, chunk-local).

The readable twins are :func:`engine.kernels.reference.montecarlo_scores` and
:func:`engine.kernels.reference.montecarlo_accumulate`.  The per-replicate pieces of the former
fused kernel (:func:`score_rank_accumulate`, :func:`step_buffers`, radix ranks
:func:`engine.kernels.rank.rank_scores`) stay because the bootstrap kernel
(:func:`engine.kernels.bootstrap.bootstrap_blocks`) runs them, inside its own prange over lanes.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..methods import ARITHMETIC, COPELAND, GENERALISED, GEOMETRIC
from ._jit import jit
from .aggregate import copeland, mean_term, mean_value
from .rank import finite_range, index_bits, pack_keys, pack_keys_between, rank_scores, sorted_ranks

__all__ = ["montecarlo_scores", "montecarlo_accumulate", "noise_weights"]  # and the bundles
# Tree, Design, Targets, Accumulators (named tuples, not kernels)


#: The flattened aggregation tree (:meth:`engine.schema.Framework.compile` order) and its coverage rules.
Tree = namedtuple("Tree", "child_ptr child_idx param min_coverage any_coverage")
#: Per-replicate parameters (:class:`engine.analysis.design.Parameters`).
Design = namedtuple("Design", "node_weight variant agg_code excluded")
#: The target nodes, their nominal ranks and the units whose pairwise order is counted.
Targets = namedtuple("Targets", "targets nominal_rank pair_units")
#: The accumulators a run writes (see the module docstring), ``ranks_out`` empty when not wanted.
Accumulators = namedtuple("Accumulators", "hist shift_hist pair_count moments shift_out ranks_out")


def shift_bins(n_units: int) -> int:
    """Bins of a rank-shift histogram: S = Σ |rank − nominal rank| over at most n_units units, each
    term at most n_units − 1 (competition ranks with ties are not a permutation, so S can exceed
    the n²/2 bound of permutations: ranks 1, 1, 1, 1, 5 against 5, 4, 3, 2, 1 give 14 > 5²/2)."""
    return n_units * max(n_units - 1, 0) + 1


@jit
def noise_weights(u, columns, nodes, phi, nominal, out):
    """Relative uniform noise on node weights, for design rows ``u`` (n, columns):
    ``out[r, nodes[k]] = nominal[nodes[k]] · (1 + phi[k] (2 u[r, columns[k]] − 1))`` — the float
    operations of the NumPy expression, in its order, without its temporaries (and without the GIL)."""
    for r in range(u.shape[0]):
        for k in range(nodes.shape[0]):
            node = nodes[k]
            out[r, node] = nominal[node] * (1.0 + phi[k] * (2.0 * u[r, columns[k]] - 1.0))


@jit
def local_weights(node_weight, excluded, child_ptr, child_idx, out):
    """Sibling-normalised weights of every node (root weight 1); an excluded indicator gets 0."""
    n_indicators = node_weight.shape[0] - (child_ptr.shape[0] - 1)
    out[:] = 0.0
    out[node_weight.shape[0] - 1] = 1.0
    for a in range(child_ptr.shape[0] - 1):
        total = 0.0
        for c in range(child_ptr[a], child_ptr[a + 1]):
            node = child_idx[c]
            if node != excluded:
                total += node_weight[node]
        for c in range(child_ptr[a], child_ptr[a + 1]):
            node = child_idx[c]
            if node != excluded and total > 0.0:
                out[node] = node_weight[node] / total
    return n_indicators


@jit
def effective_weights(local, child_ptr, child_idx, target, n_indicators, eff):
    """eff[j] = product of local weights from node j up to ``target`` (0 outside its subtree)."""
    eff[:] = 0.0
    eff[target] = 1.0
    for a in range(child_ptr.shape[0] - 2, -1, -1):  # reverse post-order: parents before children
        node = n_indicators + a
        if eff[node] == 0.0:
            continue
        for c in range(child_ptr[a], child_ptr[a + 1]):
            eff[child_idx[c]] = eff[node] * local[child_idx[c]]


@jit
def _add4(out, zt, a, j0, b, j1, c, j2, d, j3):
    """out[i] = (((out[i] + a zt[j0, i]) + b zt[j1, i]) + c zt[j2, i]) + d zt[j3, i]: four terms of the
    sum in one pass (the same float operations in the same order as four passes, a quarter of the
    loads and stores of ``out``; rows indexed in the 2-D array, which LLVM vectorises better than
    row views)."""
    for i in range(out.shape[0]):
        out[i] = (((out[i] + a * zt[j0, i]) + b * zt[j1, i]) + c * zt[j2, i]) + d * zt[j3, i]


@jit
def linear_scores(zt, eff, n_indicators, out):
    """out[i] = Σ_j eff[j] zt[j, i], j in indicator order (vectorised over units), zero weights skipped.

    Readable form: ``out[:] = 0; for j: if eff[j] != 0: out += eff[j] * zt[j]``.  The terms are added
    four non-zero weights per pass over the units (:func:`_add4`), which gives the same floats."""
    out[:] = 0.0
    j0 = j1 = j2 = 0
    held = 0
    for j in range(n_indicators):
        if eff[j] == 0.0:
            continue
        if held == 0:
            j0 = j
        elif held == 1:
            j1 = j
        elif held == 2:
            j2 = j
        else:
            _add4(out, zt, eff[j0], j0, eff[j1], j1, eff[j2], j2, eff[j], j)
            held = -1
        held += 1
    for k in range(held):  # the last 0-3 terms, one pass each
        j = j0 if k == 0 else (j1 if k == 1 else j2)
        w = eff[j]
        for i in range(out.shape[0]):
            out[i] += w * zt[j, i]


@jit
def _children_finite(zt, values, local, child_idx, start, stop):
    """Whether every (non-excluded) child of a node has a value for every unit."""
    n_indicators = zt.shape[0]
    for c in range(start, stop):
        node = child_idx[c]
        if local[node] == 0.0:
            continue
        src = zt[node] if node < n_indicators else values[node]
        for i in range(src.shape[0]):
            if not np.isfinite(src[i]):
                return False
    return True


@jit
def _complete_node(zt, values, local, child_idx, start, stop, code, row):
    """Arithmetic or geometric node whose children all have values (and no coverage threshold):
    the same float operations per unit as the general loop, but child-outer / unit-inner so that
    the loops run over contiguous rows."""
    n_indicators = zt.shape[0]
    n_units = row.shape[0]
    num = np.zeros(n_units)
    den = 0.0
    zero = np.zeros(n_units, np.bool_)
    negative = np.zeros(n_units, np.bool_)
    for c in range(start, stop):
        node = child_idx[c]
        w = local[node]
        if w == 0.0:
            continue  # excluded
        src = zt[node] if node < n_indicators else values[node]
        if code == ARITHMETIC:
            for i in range(n_units):
                num[i] = mean_term(ARITHMETIC, 0.0, 1.0, w, src[i], num[i], 0.0)[0]
        else:
            for i in range(n_units):
                v = src[i]
                if v < 0.0:
                    negative[i] = True
                elif v == 0.0:
                    zero[i] = True
                else:
                    num[i] = mean_term(GEOMETRIC, 0.0, 1.0, w, v, num[i], 0.0)[0]
        den += w
    for i in range(n_units):
        if den == 0.0:
            row[i] = np.nan
        elif code == ARITHMETIC:
            row[i] = mean_value(ARITHMETIC, 0.0, 1.0, num[i], den)
        elif negative[i]:
            row[i] = np.nan
        elif zero[i]:
            row[i] = 0.0
        else:
            row[i] = mean_value(GEOMETRIC, 0.0, 1.0, num[i], den)


@jit
def tree_scores(zt, local, child_ptr, child_idx, codes, param, min_coverage, values, complete):
    """Evaluate every aggregate node into ``values[n_indicators + a]`` (rows = nodes, columns = units).
    ``complete``: the variant has no missing value and no node has a coverage threshold."""
    n_indicators = zt.shape[0]
    n_units = zt.shape[1]
    for a in range(child_ptr.shape[0] - 1):
        row = values[n_indicators + a]
        start = child_ptr[a]
        stop = child_ptr[a + 1]
        code = codes[a]
        if code == COPELAND:
            kept = 0
            for c in range(start, stop):
                if local[child_idx[c]] != 0.0:
                    kept += 1
            block = np.empty((n_units, kept), np.float64)
            w = np.empty(kept, np.float64)
            k = 0
            for c in range(start, stop):
                node = child_idx[c]
                if local[node] == 0.0:
                    continue  # excluded
                w[k] = local[node]
                for i in range(n_units):
                    block[i, k] = zt[node, i] if node < n_indicators else values[node, i]
                k += 1
            copeland(block, w, min_coverage[a], row)
            continue
        p = param[a]
        if complete and (code == ARITHMETIC or code == GEOMETRIC) and _children_finite(zt, values, local, child_idx,
                                                                                start, stop):
            _complete_node(zt, values, local, child_idx, start, stop, code, row)
            continue
        for i in range(n_units):
            top = 0.0 if p > 0.0 else np.inf  # power-mean scale: max (p > 0) or min (p < 0)
            if code == GENERALISED and p != 0.0:
                for c in range(start, stop):
                    node = child_idx[c]
                    if local[node] != 0.0:
                        v = zt[node, i] if node < n_indicators else values[node, i]
                        if np.isfinite(v) and ((p > 0.0 and v > top) or (p < 0.0 and v < top)):
                            top = v
            count = 0
            used = 0
            negative = False
            zero = False
            num = 0.0
            den = 0.0
            for c in range(start, stop):
                node = child_idx[c]
                w = local[node]
                if w == 0.0:
                    continue  # excluded: not a component at all
                used += 1
                v = zt[node, i] if node < n_indicators else values[node, i]
                if not np.isfinite(v):
                    continue
                count += 1
                # the formulas of engine.kernels.aggregate (the arithmetic mean's code a constant: no dispatch)
                if code == ARITHMETIC:
                    num, den = mean_term(ARITHMETIC, 0.0, 1.0, w, v, num, den)
                elif v < 0.0:
                    negative = True  # the mean is missing: its sums are not needed
                elif v == 0.0 and (code != GENERALISED or p <= 0.0):
                    zero = True  # the mean is 0: its sums are not needed
                else:
                    num, den = mean_term(code, p, top, w, v, num, den)
            if count == 0 or count / used < min_coverage[a]:
                row[i] = np.nan
            elif negative:
                row[i] = np.nan
            elif zero:
                row[i] = 0.0
            elif code == GENERALISED and p != 0.0 and top == 0.0:
                row[i] = 0.0
            else:
                row[i] = mean_value(code, p, top, num, den)


@jit
def is_linear(variant_complete, any_coverage, codes):
    """A replicate's target scores are plain weighted sums when its variant has no missing value,
    no node has a coverage threshold and every node aggregates arithmetically."""
    if not variant_complete or any_coverage:
        return False
    for code in codes:
        if code != ARITHMETIC:
            return False
    return True


@jit
def accumulate_replicate(score, rank, nominal_rank, pair_units, hist, shift_hist, pair_count, moments,
                         shift_row, t, ranks_out, r):
    """Add one replicate's ranks of one target to the accumulators (slices for that lane/target):
    the rank histogram (last column = no rank), Σ score and Σ score² of the block, the histogram of
    the total absolute rank shift, R_S of the replicate, the pairwise "ahead" counts, and the raw
    ranks when ``ranks_out`` is not empty.  A ``hist`` or ``shift_hist`` with no rows is not
    counted (an analysis that does not output it passes an empty one, see
    :func:`engine.analysis.montecarlo.accumulators`)."""
    n_units = score.shape[0]
    count = hist.shape[0] > 0
    total = 0
    ranked = 0
    for i in range(n_units):
        ri = rank[i]
        if ri > 0:
            if count:
                hist[i, ri - 1] += 1
            s = score[i]
            moments[i, 0] += s
            moments[i, 1] += s * s
            if nominal_rank[i] > 0:
                total += abs(ri - nominal_rank[i])
                ranked += 1
        elif count:
            hist[i, n_units] += 1
    if shift_hist.shape[0] > 0:
        shift_hist[total] += 1
    shift_row[t] = total / ranked if ranked > 0 else np.nan
    for pa in range(pair_units.shape[0]):
        ra = rank[pair_units[pa]]
        if ra == 0:
            continue
        for pb in range(pair_units.shape[0]):
            rb = rank[pair_units[pb]]
            if rb > 0 and ra < rb:
                pair_count[pa, pb] += 1
    if ranks_out.shape[0] > 0:
        for i in range(n_units):
            ranks_out[r, t, i] = rank[i]


@jit
def step_buffers(n_nodes, n_units):
    """Scratch buffers of :func:`score_rank_accumulate` for one lane: ``values, eff, score, key,
    prefix, order, spare, counts, rank``."""
    return (np.empty((n_nodes, n_units), np.float64), np.empty(n_nodes, np.float64), np.empty(n_units, np.float64),
            np.empty(n_units, np.uint64), np.empty(n_units, np.uint32), np.empty(n_units, np.int64),
            np.empty(n_units, np.int64), np.zeros((4, 256), np.int64), np.empty(n_units, np.int64))


@jit
def score_rank_accumulate(z, local, linear, tree_complete, child_ptr, child_idx, codes, param, min_coverage, targets,
                          nominal_rank, pair_units, hist, shift_hist, pair_count, moments, shift_row, ranks_out, r,
                          scores_out, values, eff, score, key, prefix, order, spare, counts, rank):
    """One replicate of the fused bootstrap kernel (:func:`engine.kernels.bootstrap.bootstrap_blocks`,
    which resamples, normalises, scores and ranks in one prange over lanes, so it cannot use the
    split path's NumPy sort between two kernels) once its local weights are known: the score
    of every target (weighted sums of ``z`` when ``linear``, else the tree), its radix-sort ranks,
    and :func:`accumulate_replicate` into the lane's ``hist``, ``shift_hist``, ``pair_count`` and
    the block's ``moments`` (target axis first); the scores go to ``scores_out[r]`` unless it is
    empty.  The remaining arguments are scratch buffers."""
    n_indicators = z.shape[0]
    if not linear:
        tree_scores(z, local, child_ptr, child_idx, codes, param, min_coverage, values, tree_complete)
    for t in range(targets.shape[0]):
        if linear:
            effective_weights(local, child_ptr, child_idx, targets[t], n_indicators, eff)
            linear_scores(z, eff, n_indicators, score)
        else:
            score[:] = values[targets[t]]
        rank_scores(score, key, prefix, order, spare, counts, rank)
        accumulate_replicate(score, rank, nominal_rank[t], pair_units, hist[t], shift_hist[t], pair_count[t],
                             moments[t], shift_row, t, ranks_out, r)
        if scores_out.shape[0] > 0:
            scores_out[r, t, :] = score


# ----------------------------------------------------------------------------- split hot path
#
# The bootstrap's fused step above ranks with a scalar radix sort (engine.kernels.rank.rank_scores).
# NumPy's vectorised sort is faster, and faster again on 32-bit than on 64-bit integers, so the Monte
# Carlo path is:
# montecarlo_scores (scores + packed 32-bit sort keys, engine.kernels.rank.pack_keys) → NumPy sorts
# the keys → montecarlo_accumulate (ranks by engine.kernels.rank.sorted_ranks, and statistics).
# These two kernels are single-lane and release the GIL: engine.analysis.montecarlo runs one chain
# per lane thread, so that one lane's NumPy sort overlaps the other lane's kernels.  The bootstrap's
# radix ranks and these give the same integers and floats (tests compare both with the twins).  Any
# number of quantisation bits gives exact ranks (runs of equal quantised parts are re-ranked on the
# floats); fewer bits (more units) only make such runs longer.


@jit
def variant_range(z):
    """Smallest and largest finite value of a normalised matrix (indicators × units).  A weighted
    arithmetic mean with non-negative weights lies between them, so it is the quantisation range
    of the keys of linear replicates (no pass over each replicate's scores)."""
    lo = np.inf
    hi = -np.inf
    for j in range(z.shape[0]):
        a, b = finite_range(z[j])
        lo = min(lo, a)
        hi = max(hi, b)
    return lo, hi


@jit
def chunk_local_weights(node_weight, excluded, r0, m, child_ptr, child_idx, raw, local, total):
    """:func:`local_weights` of replicates r0 .. r0 + m − 1 at once, node-major (``local[node, k]``
    for replicate r0 + k), so that every sum and division runs over the replicates (vectorised):
    the same floats (a parent's total adds its children in order, an excluded child adds +0.0,
    which never changes a total of non-negative weights)."""
    n_nodes = node_weight.shape[1]
    for node in range(n_nodes):
        for k in range(m):
            raw[node, k] = node_weight[r0 + k, node]
    for node in range(n_nodes - 1):
        for k in range(m):
            local[node, k] = 0.0
    for k in range(m):
        local[n_nodes - 1, k] = 1.0
    for a in range(child_ptr.shape[0] - 1):
        for k in range(m):
            total[k] = 0.0
        for c in range(child_ptr[a], child_ptr[a + 1]):
            node = child_idx[c]
            for k in range(m):
                total[k] += raw[node, k] if excluded[r0 + k] != node else 0.0
        for c in range(child_ptr[a], child_ptr[a + 1]):
            node = child_idx[c]
            for k in range(m):
                kept = excluded[r0 + k] != node and total[k] > 0.0
                local[node, k] = raw[node, k] / total[k] if kept else 0.0


@jit
def chunk_effective_weights(local, m, child_ptr, child_idx, target, n_indicators, eff):
    """:func:`effective_weights` of m replicates at once, node-major like :func:`chunk_local_weights`
    (a child of a parent weighing zero — outside the target's subtree, or under a zero weight —
    stays at 0, whatever its local weight: 0 × inf or 0 × NaN would not be 0)."""
    for node in range(eff.shape[0]):
        for k in range(m):
            eff[node, k] = 0.0
    for k in range(m):
        eff[target, k] = 1.0
    # reverse post-order from the target down (parents before children; nodes after the target in
    # post-order are outside its subtree and must not overwrite its 1)
    for a in range(target - n_indicators, -1, -1):
        node = n_indicators + a
        for c in range(child_ptr[a], child_ptr[a + 1]):
            child = child_idx[c]
            for k in range(m):  # a parent weighing zero leaves its children at 0 (as effective_weights)
                parent = eff[node, k]
                eff[child, k] = parent * local[child, k] if parent != 0.0 else 0.0


@jit
def _add4x4(out, r, t, zt, eff, k, j0, j1, j2, j3):
    """Four terms of the weighted sums of four replicates r .. r + 3 (weights ``eff[j, k .. k + 3]``)
    in one pass over the units:
    ``out[r + q, t, i] = (((out[r + q, t, i] + eff[j0, k + q] zt[j0, i]) + … ) + eff[j3, k + q] zt[j3, i]``
    — each replicate's float operations in the order of :func:`linear_scores`, with each row of
    ``zt`` loaded once for the four replicates (a quarter of the matrix traffic)."""
    a0, a1, a2, a3 = eff[j0, k], eff[j1, k], eff[j2, k], eff[j3, k]
    b0, b1, b2, b3 = eff[j0, k + 1], eff[j1, k + 1], eff[j2, k + 1], eff[j3, k + 1]
    c0, c1, c2, c3 = eff[j0, k + 2], eff[j1, k + 2], eff[j2, k + 2], eff[j3, k + 2]
    d0, d1, d2, d3 = eff[j0, k + 3], eff[j1, k + 3], eff[j2, k + 3], eff[j3, k + 3]
    for i in range(out.shape[2]):
        x0, x1, x2, x3 = zt[j0, i], zt[j1, i], zt[j2, i], zt[j3, i]
        out[r, t, i] = (((out[r, t, i] + a0 * x0) + a1 * x1) + a2 * x2) + a3 * x3
        out[r + 1, t, i] = (((out[r + 1, t, i] + b0 * x0) + b1 * x1) + b2 * x2) + b3 * x3
        out[r + 2, t, i] = (((out[r + 2, t, i] + c0 * x0) + c1 * x1) + c2 * x2) + c3 * x3
        out[r + 3, t, i] = (((out[r + 3, t, i] + d0 * x0) + d1 * x1) + d2 * x2) + d3 * x3


@jit
def same_support(eff, k, n_indicators):
    """Whether the weight columns k .. k + 3 of ``eff[indicator, replicate]`` are zero on the same
    indicators."""
    for j in range(n_indicators):
        nonzero = eff[j, k] != 0.0
        if (eff[j, k + 1] != 0.0) != nonzero or (eff[j, k + 2] != 0.0) != nonzero or \
                (eff[j, k + 3] != 0.0) != nonzero:
            return False
    return True


@jit
def linear_scores4(zt, eff, k, n_indicators, out, r, t, columns):
    """:func:`linear_scores` of replicates r .. r + 3 (weights ``eff[:, k .. k + 3]``, scores into
    ``out[r .. r + 3, t]``), which share their zero weights (:func:`same_support`): the same
    non-zero terms in the same order, four replicates and four terms per pass over the units
    (:func:`_add4x4`), then the last 0-3 terms one pass each — the same floats as four calls of
    :func:`linear_scores`."""
    used = 0
    for j in range(n_indicators):
        if eff[j, k] != 0.0:
            columns[used] = j
            used += 1
    for q in range(4):
        out[r + q, t, :] = 0.0
    whole = used - used % 4
    for c in range(0, whole, 4):
        _add4x4(out, r, t, zt, eff, k, columns[c], columns[c + 1], columns[c + 2], columns[c + 3])
    for c in range(whole, used):
        j = columns[c]
        for q in range(4):
            w = eff[j, k + q]
            for i in range(out.shape[2]):
                out[r + q, t, i] += w * zt[j, i]


#: Replicates whose effective weights are held at once in :func:`montecarlo_scores`.
SCORE_CHUNK = 64


@jit
def montecarlo_scores(zt, linear_variant, tree, design, targets, scores_out, keys_out):
    """Scores (n, n_targets, n_units) of every replicate and their packed 32-bit sort keys
    (``keys_out`` is uint32): quantised against the variant's range (:func:`variant_range`) for
    linear replicates, against the row's own range (:func:`pack_keys`) otherwise.

    Replicates are taken ``SCORE_CHUNK`` at a time: first their weights, all at once
    (:func:`chunk_local_weights`, :func:`chunk_effective_weights`), and the tree of the non-linear
    ones, then the weighted sums of the linear ones, four replicates at a time when
    four neighbours share their variant and their zero weights (:func:`linear_scores4`), one at a
    time otherwise (:func:`linear_scores`) — the same floats either way.

    One lane (no threads of its own, releases the GIL): :mod:`engine.analysis.montecarlo` runs
    one call per lane thread on disjoint replicates; every replicate's result depends only on its
    own parameters."""
    child_ptr, child_idx, param, min_coverage, any_coverage = tree
    node_weight, variant, agg_code, excluded = design
    target_nodes = targets.targets
    n = node_weight.shape[0]
    n_nodes = node_weight.shape[1]
    n_units = zt.shape[2]
    n_indicators = zt.shape[1]
    n_targets = target_nodes.shape[0]
    bits = index_bits(n_units)
    raw = np.empty((n_nodes, SCORE_CHUNK), np.float64)
    local = np.empty((n_nodes, SCORE_CHUNK), np.float64)
    total = np.empty(SCORE_CHUNK, np.float64)
    effs = np.empty((n_targets, n_nodes, SCORE_CHUNK), np.float64)
    one_local = np.empty(n_nodes, np.float64)
    one_eff = np.empty(n_indicators, np.float64)
    linear = np.empty(SCORE_CHUNK, np.bool_)
    columns = np.empty(n_indicators, np.int64)
    values = np.empty((n_nodes, n_units), np.float64)
    ranges = np.full((zt.shape[0], 2), np.nan)  # variant_range of each variant, when first needed
    for r0 in range(0, n, SCORE_CHUNK):
        m = min(SCORE_CHUNK, n - r0)
        chunk_local_weights(node_weight, excluded, r0, m, child_ptr, child_idx, raw, local, total)
        for t in range(n_targets):
            chunk_effective_weights(local, m, child_ptr, child_idx, target_nodes[t], n_indicators, effs[t])
        for k in range(m):
            r = r0 + k
            v = variant[r]
            linear[k] = is_linear(linear_variant[v], any_coverage, agg_code[r])
            if linear[k]:
                if np.isnan(ranges[v, 0]):
                    ranges[v, 0], ranges[v, 1] = variant_range(zt[v])
            else:
                for node in range(n_nodes):
                    one_local[node] = local[node, k]
                tree_scores(zt[v], one_local, child_ptr, child_idx, agg_code[r], param, min_coverage, values,
                            linear_variant[v] and not any_coverage)
                for t in range(n_targets):
                    scores_out[r, t, :] = values[target_nodes[t]]
                    pack_keys(scores_out[r, t], bits, keys_out[r, t])
        for t in range(n_targets):
            eff = effs[t]
            k = 0
            while k < m:
                if not linear[k]:
                    k += 1
                    continue
                v = variant[r0 + k]
                if k + 4 <= m and linear[k + 1] and linear[k + 2] and linear[k + 3] and \
                        variant[r0 + k + 1] == v and variant[r0 + k + 2] == v and variant[r0 + k + 3] == v and \
                        same_support(eff, k, n_indicators):
                    linear_scores4(zt[v], eff, k, n_indicators, scores_out, r0 + k, t, columns)
                    k += 4
                else:
                    for j in range(n_indicators):
                        one_eff[j] = eff[j, k]
                    linear_scores(zt[v], one_eff, n_indicators, scores_out[r0 + k, t])
                    k += 1
            for k in range(m):
                if linear[k]:
                    v = variant[r0 + k]
                    pack_keys_between(scores_out[r0 + k, t], bits, ranges[v, 0], ranges[v, 1], keys_out[r0 + k, t])


@jit
def accumulate_ranked(score, rank, nominal_rank, n_ranked, pair_units, hist, shift_hist, pair_count, sums,
                      shift_row, t, ranks_out, r):
    """:func:`accumulate_replicate` when every unit has a rank (:func:`sorted_ranks` returned
    True): the counts unit by unit (the histogram's rows in address order), R_S in a vectorised
    pass (an integer; ``n_ranked`` = units with a nominal rank) and the moments, each loop without
    a branch on missing ranks.  ``sums`` is (2, n_units): Σ score, Σ score² (the same float
    additions as ``moments[i, 0|1]``, in one loop over contiguous rows).  Empty ``hist`` /
    ``shift_hist``: not counted, as in :func:`accumulate_replicate`."""
    n_units = score.shape[0]
    if hist.shape[0] > 0:
        for i in range(n_units):  # unsigned indices: no negative-index wrap-around (every rank is ≥ 1 here)
            hist[np.uint64(i), np.uint64(rank[i] - 1)] += 1
    total = 0
    for i in range(n_units):
        nominal = nominal_rank[i]
        total += abs(rank[i] - nominal) if nominal > 0 else 0
    for i in range(n_units):
        s = score[i]
        sums[0, i] += s
        sums[1, i] += s * s
    if shift_hist.shape[0] > 0:
        shift_hist[total] += 1
    shift_row[t] = total / n_ranked if n_ranked > 0 else np.nan
    for pa in range(pair_units.shape[0]):
        ra = rank[pair_units[pa]]
        for pb in range(pair_units.shape[0]):
            if ra < rank[pair_units[pb]]:
                pair_count[pa, pb] += 1
    if ranks_out.shape[0] > 0:
        for i in range(n_units):
            ranks_out[r, t, i] = rank[i]


@jit
def montecarlo_accumulate(scores, keys, nominal_rank, pair_units, block_size, acc):
    """Ranks from sorted packed keys, then the accumulators of the module docstring for
    one lane (``hist``, ``shift_hist``, ``pair_count`` without the lane axis), block by block
    (``moments[b]`` sums replicates ``b·block_size …`` in order).  ``keys`` (n, n_targets,
    n_units) are :func:`pack_keys` keys, each row sorted ascending.

    Exact ranks come from :func:`sorted_ranks`; replicates whose units all have one (nearly all)
    are counted by :func:`accumulate_ranked` (no branch on missing ranks), the others by
    :func:`accumulate_replicate`.  A block's score moments are summed in a (2, n_units) buffer per
    target and copied back at the block's end (the same additions in the same order).

    One lane (no threads of its own, releases the GIL), like :func:`montecarlo_scores`."""
    hist, shift_hist, pair_count, moments, shift_out, ranks_out = acc
    n_replicates = scores.shape[0]
    n_targets = scores.shape[1]
    n_units = scores.shape[2]
    bits = index_bits(n_units)
    order = np.empty(n_units, np.int64)
    rank = np.empty(n_units, np.int64)
    sums = np.empty((2, n_units))
    for b in range(n_replicates // block_size):
        for t in range(n_targets):  # targets outer: each target's views are made once per block
            for i in range(n_units):
                sums[0, i] = moments[b, t, i, 0]
                sums[1, i] = moments[b, t, i, 1]
            nominal, lane_hist, lane_shift, lane_pairs = nominal_rank[t], hist[t], shift_hist[t], pair_count[t]
            n_ranked = 0
            for i in range(n_units):
                n_ranked += nominal[i] > 0
            for r in range(b * block_size, (b + 1) * block_size):
                score = scores[r, t]
                if sorted_ranks(score, keys[r, t], bits, order, rank):
                    accumulate_ranked(score, rank, nominal, n_ranked, pair_units, lane_hist, lane_shift, lane_pairs,
                                      sums, shift_out[r], t, ranks_out, r)
                else:
                    accumulate_replicate(score, rank, nominal, pair_units, lane_hist, lane_shift, lane_pairs, sums.T,
                                         shift_out[r], t, ranks_out, r)
            for i in range(n_units):
                moments[b, t, i, 0] = sums[0, i]
                moments[b, t, i, 1] = sums[1, i]
