"""Paired rank change: the ranks of the same replicate in two periods → a histogram of rank changes.

A paired replicate applies one set of weights and method choices to both periods; the scores of
each period come from :func:`engine.kernels.montecarlo.montecarlo_scores` (with their packed keys,
each row sorted ascending).  Per unit present in both periods the change is
``rank_from − rank_to`` (positive = moved up), an integer in ``[−(n − 1), n − 1]`` with
``n = max(n_units_from, n_units_to)``: counted in an integer histogram (exact, mergeable in any
order), never held per replicate.

The readable twin is :func:`engine.kernels.reference.rank_change`.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit
from .rank import index_bits, sorted_ranks

__all__ = ["rank_change"]


@jit
def rank_change(scores_from, keys_from, scores_to, keys_to, rows_from, rows_to, out):
    """Count the rank change of every common unit in every replicate into ``out``.

    ``scores_*`` (n_replicates, n_units of the period) float64 and ``keys_*`` their packed uint32
    keys (:func:`engine.kernels.rank.pack_keys`), each row sorted ascending; ``rows_from[i]`` and
    ``rows_to[i]`` are common unit i's rows in each period.  Ranks are descending competition
    ranks (ties share the minimum rank; a missing score has none), exact (:func:`sorted_ranks`).

    ``out`` int64 (n_common, 2 n): ``out[i, d + n − 1]`` counts replicates where unit i's change
    ``d = rank_from − rank_to``; the last column counts replicates where it has no rank in one of
    the periods.  One lane (no threads of its own, releases the GIL).

    Readable form of the counting: ``out[i, rank_from[rows_from[i]] − rank_to[rows_to[i]] + n − 1] += 1``;
    when both periods hold exactly the common units in the same rows (the usual panel) the row
    look-ups are skipped."""
    n_replicates = scores_from.shape[0]
    n_from = scores_from.shape[1]
    n_to = scores_to.shape[1]
    offset = max(n_from, n_to) - 1
    no_rank = out.shape[1] - 1
    bits_from = index_bits(n_from)
    bits_to = index_bits(n_to)
    order_from = np.empty(n_from, np.int64)
    order_to = np.empty(n_to, np.int64)
    rank_from = np.empty(n_from, np.int64)
    rank_to = np.empty(n_to, np.int64)
    n_common = rows_from.shape[0]
    aligned = n_common == n_from and n_common == n_to  # the common unit i is row i in both periods
    for i in range(n_common):
        aligned = aligned and rows_from[i] == i and rows_to[i] == i
    for r in range(n_replicates):
        complete_from = sorted_ranks(scores_from[r], keys_from[r], bits_from, order_from, rank_from)
        complete_to = sorted_ranks(scores_to[r], keys_to[r], bits_to, order_to, rank_to)
        # Every unit ranked (nearly always): no branch on missing ranks, and unsigned indices (every
        # column a − b + n − 1 is >= 0 here), so no negative-index wrap-around either.
        if complete_from and complete_to and aligned:
            for i in range(n_common):
                out[np.uint64(i), np.uint64(rank_from[i] - rank_to[i] + offset)] += 1
        elif complete_from and complete_to:
            for i in range(n_common):
                a = rank_from[np.uint64(rows_from[i])]
                b = rank_to[np.uint64(rows_to[i])]
                out[np.uint64(i), np.uint64(a - b + offset)] += 1
        else:
            for i in range(n_common):
                a = rank_from[rows_from[i]]
                b = rank_to[rows_to[i]]
                if a > 0 and b > 0:
                    out[i, a - b + offset] += 1
                else:
                    out[i, no_rank] += 1
