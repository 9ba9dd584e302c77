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

Ranks are int64 (n_replicates, n_targets, n_units), 0 = missing.  Every count is an integer, so
states add up exactly in any grouping.  The readable twins are :func:`engine.kernels.reference.count_bands`
and :func:`engine.kernels.reference.count_windows`.
"""

from __future__ import annotations

from ._jit import jit

__all__ = ["count_bands", "count_windows"]


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
    n_units = ranks.shape[2]
    missing = coarse.shape[2] - 1
    for r in range(ranks.shape[0]):
        for t in range(ranks.shape[1]):
            total = 0
            for i in range(n_units):
                k = ranks[r, t, i]
                if k > 0:
                    coarse[t, i, bin_of_rank[k - 1]] += 1
                    rank_sums[t, i, 0] += k
                    rank_sums[t, i, 1] += k * k
                    extremes[t, i, 0] = min(extremes[t, i, 0], k)
                    extremes[t, i, 1] = max(extremes[t, i, 1], k)
                    nominal = nominal_rank[t, i]
                    if nominal > 0:
                        total += abs(k - nominal)
                else:
                    coarse[t, i, missing] += 1
            shift_hist[t, total // n_units] += 1
            shift_sum[t] += total


@jit
def count_windows(ranks, window_start, width, acc):
    """Pass-2 counts of ``ranks`` (m, n_targets, n_units) into ``acc = (fine, above)``: for every
    unit and wanted quantile q, ``fine[t, unit, q, rank − start] += 1`` when ``start ≤ rank <
    start + width`` (``start = window_start[t, unit, q]``), and ``above[t, unit, q]`` = the smallest
    rank ≥ start + width (starts at n_units + 1).  Missing ranks are not counted."""
    fine, above = acc
    for r in range(ranks.shape[0]):
        for t in range(ranks.shape[1]):
            for i in range(ranks.shape[2]):
                k = ranks[r, t, i]
                if k == 0:
                    continue
                for q in range(window_start.shape[2]):
                    d = k - window_start[t, i, q]
                    if d >= width:
                        above[t, i, q] = min(above[t, i, q], k)
                    elif d >= 0:
                        fine[t, i, q, d] += 1
