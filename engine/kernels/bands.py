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

The ranks themselves come from :func:`rank_batch` in this mode: a one-pass bucket sort (a bucket
per unit or more, so that a bucket holds one or two scores) instead of 32-bit packed keys, whose
quantisation has only 32 − log2(n) bits, so at 10⁵ units most keys share their quantised part
with a neighbour and have to be re-ranked on the floats.

Ranks are int64 (n_replicates, n_targets, n_units), 0 = missing.  Every count is an integer, so
states add up exactly in any grouping.  The readable twins are :func:`engine.kernels.reference.count_bands`
and :func:`engine.kernels.reference.count_windows`.
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
def bucket_ranks(score, counts, sorted_score, sorted_unit, rank):
    """Descending competition ranks of ``score`` into ``rank`` (int64; ties share the smallest rank,
    non-finite → 0), by one bucket-sort pass: unit i goes to bucket
    ``floor((hi/2 − s_i/2) · L / (hi/2 − lo/2))`` of L + 1 = ``counts.shape[0] − 1`` buckets over the
    row's finite range (every step rounds monotonically, so a larger score never lands in a later
    bucket; missing scores go to the last, extra, bucket), then each bucket is sorted descending on
    the floats (insertion, or NumPy's sort above :data:`INSERTION_LIMIT`) and ranks are read off in
    order.  ``counts`` (L + 2,), ``sorted_score`` (n,), ``sorted_unit`` (n,) are scratch (``counts``
    may be int32: it counts at most n units)."""
    n = score.shape[0]
    missing = counts.shape[0] - 1
    levels = float(missing - 1)
    lo, hi = finite_range(score)
    half_hi = hi * 0.5
    span = half_hi - lo * 0.5
    scale = levels / span if span > 0.0 else 0.0
    if not np.isfinite(scale):
        scale = 0.0
    counts[:] = 0
    for i in range(n):  # rank holds each unit's bucket until the ranks are written
        v = score[i]
        b = missing
        if v - v == 0.0:
            x = (half_hi - v * 0.5) * scale
            if not (x < levels):
                x = levels
            if not (x > 0.0):
                x = 0.0
            b = np.int64(x)
        rank[i] = b
        counts[b] += 1
    total = 0
    for b in range(missing + 1):
        c = counts[b]
        counts[b] = total
        total += c
    for i in range(n):
        b = rank[i]
        p = counts[b]
        sorted_score[p] = score[i]
        sorted_unit[p] = i
        counts[b] = p + 1  # ends as the bucket's end
    start = 0
    for b in range(missing):
        stop = counts[b]
        if stop - start > INSERTION_LIMIT:
            order = np.argsort(-sorted_score[start:stop])
            values = sorted_score[start:stop].copy()
            units = sorted_unit[start:stop].copy()
            for k in range(stop - start):
                sorted_score[start + k] = values[order[k]]
                sorted_unit[start + k] = units[order[k]]
        else:
            for k in range(start + 1, stop):
                v = sorted_score[k]
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
        rank[sorted_unit[p]] = 0


@jit
def rank_batch(scores, moments, ranks):
    """Ranks (:func:`bucket_ranks`) of every row of ``scores`` (m, n_targets, n_units) into
    ``ranks`` (int64, same shape), and the score moments of the ranked units added to
    ``moments[t, unit] += (s, s²)`` replicate by replicate in order — the same float additions as
    :func:`engine.kernels.montecarlo.montecarlo_accumulate`, so a run's moments do not depend on
    which of the two ranked it."""
    n = scores.shape[2]
    counts = np.empty(max(n, 1) + 1, np.int32)  # a bucket per unit (and one for missing scores)
    sorted_score = np.empty(n, np.float64)
    sorted_unit = np.empty(n, np.int64)
    for r in range(scores.shape[0]):
        for t in range(scores.shape[1]):
            row = scores[r, t]
            out = ranks[r, t]
            bucket_ranks(row, counts, sorted_score, sorted_unit, out)
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
