"""Large-n counting kernels: rank statistics in O(units × bins) memory instead of units².

A replicate's ranks (from the one Monte Carlo path, :func:`engine.kernels.montecarlo.montecarlo_accumulate`
with ``ranks_out``) are counted twice over a run (:mod:`engine.analysis.largen`):

* pass 1, :func:`count_bands`: per unit, a histogram over coarse rank bins (``bin_of_rank[rank − 1]``;
  the bins' edges include the decile, top-k and tier edges, so band probabilities are exact), the
  exact integer sums Σ rank and Σ rank², the best and worst rank, and the total absolute rank shift
  S = Σ |rank − nominal rank| (its histogram in bins of ``n_units``, and its exact sum);
* pass 2, :func:`count_windows`: the very same replicates again; per unit and wanted quantile, the
  exact ranks inside a window of ``width`` ranks from ``window_start`` (the bin that holds the
  quantile's order statistic, found from pass 1), and the smallest rank beyond the window.

The ranks themselves come from :func:`rank_batch` in this mode: a two-level bucket sort (equal
cells of the score range, then as many buckets in each cell as it holds units, so that a crowded
part of the range gets more buckets and a bucket holds one or two scores) instead of 32-bit packed
keys, whose quantisation has only 32 − log2(n) bits, so at 10⁵ units most keys share their
quantised part with a neighbour and have to be re-ranked on the floats.

Ranks are int64 or int32 (n_replicates, n_targets, n_units), 0 = missing (Σ rank² is summed in
int64).  Every count is an integer, so states add up exactly in any grouping.  The readable twins
are :func:`engine.kernels.reference.rank_batch`, :func:`engine.kernels.reference.count_bands` and
:func:`engine.kernels.reference.count_windows`.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit
from .rank import finite_range

__all__ = ["rank_batch", "count_bands", "count_windows"]  # bucket_ranks is rank_batch's per-row building block

#: Buckets above which a bucket is sorted by NumPy's sort instead of by insertion (a crowd of
#: near-equal scores would make insertion quadratic).
INSERTION_LIMIT = 32


@jit
def _sort_crowd(sorted_score, sorted_unit, start, stop):
    """Positions ``start .. stop − 1`` sorted by descending score (NumPy's sort), units alongside."""
    order = np.argsort(-sorted_score[start:stop])
    values = sorted_score[start:stop].copy()
    units = sorted_unit[start:stop].copy()
    for k in range(stop - start):
        sorted_score[start + k] = values[order[k]]
        sorted_unit[start + k] = units[order[k]]


@jit
def _level(v, half_hi, scale, levels):
    """Where a finite score falls on ``[0, levels]``: (hi/2 − v/2) · scale, clamped; every step rounds
    monotonically, so a larger score never gets a larger level."""
    x = (half_hi - v * 0.5) * scale
    if not (x < levels):
        x = levels
    if not (x > 0.0):
        x = 0.0
    return x


@jit
def bucket_ranks(score, cells, counts, slot, cell_score, cell_unit, sorted_score, sorted_unit, rank):
    """Descending competition ranks of ``score`` into ``rank`` (ties share the smallest rank,
    non-finite → 0) by a two-level bucket sort:

    1. G = ``cells.shape[0] − 2`` equal cells over the row's finite range (missing scores in cell G):
       cell ``floor(level)`` of :func:`_level` on [0, G − 1]; units are moved into cell order
       (``cell_score``, ``cell_unit``: G write streams instead of n random writes);
    2. each cell of s units is bucket-sorted on its own in s buckets (bucket
       ``floor((level − cell) · s)``, so a crowded part of the range gets as many buckets as it has
       units), its buckets sorted descending on the floats (insertion, or NumPy's sort above
       :data:`INSERTION_LIMIT`), all in cache;
    3. ranks are read off in order (a rank changes where the float changes).

    Both levels are monotone in the score (a larger score never lands in a later cell or bucket),
    so the order is exact.  Scratch: ``cells`` (G + 2,), ``counts`` (n + 1,), ``slot`` (n,) int32;
    ``cell_score``, ``sorted_score`` (n,) float64; ``cell_unit``, ``sorted_unit`` (n,) int32."""
    n = score.shape[0]
    g = cells.shape[0] - 2
    levels = float(g - 1)
    lo, hi = finite_range(score)
    half_hi = hi * 0.5
    span = half_hi - lo * 0.5
    scale = levels / span if span > 0.0 else 0.0
    if not np.isfinite(scale):
        scale = 0.0
    cells[:] = 0
    for i in range(n):
        v = score[i]
        c = g
        if v - v == 0.0:
            c = np.int64(_level(v, half_hi, scale, levels))
        slot[i] = c
        cells[c] += 1
    total = 0
    for c in range(g + 1):
        k = cells[c]
        cells[c] = total
        total += k
    for i in range(n):
        c = slot[i]
        p = cells[c]
        cell_score[p] = score[i]
        cell_unit[p] = i
        cells[c] = p + 1  # ends as the cell's end
    start = 0
    for c in range(g):
        stop = cells[c]
        s = stop - start
        if s == 1:
            sorted_score[start] = cell_score[start]
            sorted_unit[start] = cell_unit[start]
        elif s > 1:
            counts[:s] = 0
            for p in range(start, stop):
                j = np.int64((_level(cell_score[p], half_hi, scale, levels) - c) * s)
                j = min(j, s - 1)
                slot[p] = j
                counts[j] += 1
            crowded = False
            at = start
            for j in range(s):
                k = counts[j]
                crowded |= k > INSERTION_LIMIT
                counts[j] = at
                at += k
            for p in range(start, stop):
                j = slot[p]
                q = counts[j]
                sorted_score[q] = cell_score[p]
                sorted_unit[q] = cell_unit[p]
                counts[j] = q + 1  # ends as the bucket's end
            if crowded:
                first = start
                for j in range(s):
                    if counts[j] - first > INSERTION_LIMIT:
                        _sort_crowd(sorted_score, sorted_unit, first, counts[j])
                    first = counts[j]
            for k in range(start + 1, stop):  # one insertion pass: only a bucket's own units are out of order
                v = sorted_score[k]
                if sorted_score[k - 1] < v:
                    unit = sorted_unit[k]
                    m = k - 1
                    while m >= start and sorted_score[m] < v:
                        sorted_score[m + 1] = sorted_score[m]
                        sorted_unit[m + 1] = sorted_unit[m]
                        m -= 1
                    sorted_score[m + 1] = v
                    sorted_unit[m + 1] = unit
        start = stop
    current = 0
    for p in range(start):
        if p == 0 or sorted_score[p] != sorted_score[p - 1]:
            current = p + 1
        rank[sorted_unit[p]] = current
    for p in range(start, n):
        rank[cell_unit[p]] = 0


@jit
def _cell_count(n_units):
    """Cells of :func:`bucket_ranks`' first level: about 32 units a cell, at most 4,096 (their
    counters stay in the L1 cache)."""
    return max(1, min(4096, n_units // 32))


@jit
def rank_batch(scores, moments, ranks):
    """Ranks (:func:`bucket_ranks`) of every row of ``scores`` (m, n_targets, n_units) into
    ``ranks`` (int64 or int32, same shape), and the score moments of the ranked units added to
    ``moments[t, unit] += (s, s²)`` replicate by replicate in order — the same float additions as
    :func:`engine.kernels.montecarlo.montecarlo_accumulate`, so a run's moments do not depend on
    which of the two ranked it."""
    n = scores.shape[2]
    cells = np.empty(_cell_count(n) + 2, np.int32)
    counts = np.empty(n + 1, np.int32)
    slot = np.empty(n, np.int32)
    cell_score, sorted_score = np.empty(n, np.float64), np.empty(n, np.float64)
    cell_unit, sorted_unit = np.empty(n, np.int32), np.empty(n, np.int32)
    for r in range(scores.shape[0]):
        for t in range(scores.shape[1]):
            row = scores[r, t]
            out = ranks[r, t]
            bucket_ranks(row, cells, counts, slot, cell_score, cell_unit, sorted_score, sorted_unit, out)
            for i in range(n):
                if out[i] > 0:
                    s = row[i]
                    moments[t, i, 0] += s
                    moments[t, i, 1] += s * s


@jit
def count_bands(ranks, nominal_rank, bin_of_rank, acc):
    """Pass-1 counts of ``ranks`` (m, n_targets, n_units) into ``acc = (coarse, rank_sums, extremes,
    shift_hist, shift_sum)``:

    * ``coarse[t, unit, bin_of_rank[rank − 1]] += 1``; its last column counts missing ranks;
    * ``rank_sums[t, unit] += (rank, rank²)``;
    * ``extremes[t, unit] = (min rank, max rank)`` (start at (n_units + 1, 0));
    * S = Σ_units |rank − nominal rank| over units ranked in both: ``shift_hist[t, S // n_units] += 1``,
      ``shift_sum[t] += S``.
    """
    coarse, rank_sums, extremes, shift_hist, shift_sum = acc
    n_replicates, n_units = ranks.shape[0], ranks.shape[2]
    missing = coarse.shape[2] - 1
    totals = np.empty(n_replicates, np.int64)
    for t in range(ranks.shape[1]):
        totals[:] = 0
        for i in range(n_units):  # units outer: a unit's counters stay in cache over the batch's replicates
            nominal = nominal_rank[t, i]
            row = coarse[t, i]
            sum1, sum2 = rank_sums[t, i, 0], rank_sums[t, i, 1]
            best, worst = extremes[t, i, 0], extremes[t, i, 1]
            for r in range(n_replicates):
                k = ranks[r, t, i]
                if k > 0:
                    row[bin_of_rank[k - 1]] += 1
                    sum1 += k
                    sum2 += k * k
                    best = min(best, k)
                    worst = max(worst, k)
                    if nominal > 0:
                        totals[r] += abs(k - nominal)
                else:
                    row[missing] += 1
            rank_sums[t, i, 0], rank_sums[t, i, 1] = sum1, sum2
            extremes[t, i, 0], extremes[t, i, 1] = best, worst
        for r in range(n_replicates):
            shift_hist[t, totals[r] // n_units] += 1
            shift_sum[t] += totals[r]


@jit
def count_windows(ranks, window_start, width, acc):
    """Pass-2 counts of ``ranks`` (m, n_targets, n_units) into ``acc = (fine, above)``: for every
    unit and wanted quantile q, ``fine[t, unit, q, rank − start] += 1`` when ``start ≤ rank <
    start + width`` (``start = window_start[t, unit, q]``), and ``above[t, unit, q]`` = the smallest
    rank ≥ start + width (starts at n_units + 1).  Missing ranks are not counted."""
    fine, above = acc
    for t in range(ranks.shape[1]):
        for i in range(ranks.shape[2]):  # units outer, as in count_bands
            for q in range(window_start.shape[2]):
                start = window_start[t, i, q]
                row = fine[t, i, q]
                beyond = above[t, i, q]
                for r in range(ranks.shape[0]):
                    k = ranks[r, t, i]
                    d = k - start
                    if k == 0:
                        continue
                    if d >= width:
                        beyond = min(beyond, k)
                    elif d >= 0:
                        row[d] += 1
                above[t, i, q] = beyond
