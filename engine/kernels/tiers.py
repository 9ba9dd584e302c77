"""Tier kernel: exact optimal one-dimensional classification (Fisher–Jenks natural breaks).

``jenks(sorted_values, k, out)`` splits sorted scores into ``k`` contiguous classes with the least
total within-class sum of squared deviations, by exact dynamic programming whose layers are
solved by divide and conquer (O(k d log d) for ``d`` distinct values, instead of the O(k d²) of
the plain DP).  The twin is :func:`engine.kernels.reference.jenks`; validation, missing scores
and tier numbering live in :mod:`engine.tiers`.

Policies (identical in both homes):

* **Ties are never split.**  The DP runs over the distinct values weighted by their multiplicity, so
  a class boundary always falls between two different values and equal scores share a class.  (In
  exact arithmetic an optimal partition never splits a run of equal values when ``k`` is at most the
  number of distinct values, so this loses no optimum; it only rules out floating-point accidents.)
* **k larger than the number of distinct values ``d``:** every distinct value is its own class
  (total 0) and the ``k - d`` breaks left over repeat the maximum, i.e. the top classes are empty.
  :func:`engine.tiers.tier_breaks` never asks for more than ``d`` classes.
* **Equal totals:** among the starts ``i`` of the last class that give equal computed totals
  (``==`` in float64) the latest is taken, layer by layer from the top: the lexicographically
  highest breaks, read from the top.  E.g. [0, 1, 2] with k = 2 gives {0, 1} {2}, not {0} {1, 2}
  (both cost 0.5).
"""

from __future__ import annotations

import numpy as np

from ._jit import jit

__all__ = ["jenks", "quantile_tiers"]

#: Dekker's splitter 2**27 + 1: ``c = SPLIT * a; hi = c - (c - a)`` splits a float64 into two
#: halves of 26 bits whose products are exact.
SPLIT = 134217729.0


@jit
def _two_sum(a, b):
    """``a + b`` as ``(s, e)`` with ``s + e`` exact (Knuth's TwoSum)."""
    s = a + b
    v = s - a
    return s, (a - (s - v)) + (b - v)


@jit
def _two_prod(a, b):
    """``a · b`` as ``(p, e)`` with ``p + e`` exact (Dekker's TwoProduct, no FMA)."""
    p = a * b
    c = SPLIT * a
    ah = c - (c - a)
    al = a - ah
    c = SPLIT * b
    bh = c - (c - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


@jit
def _dd_add(ahi, alo, bhi, blo):
    """Double-double sum ``(ahi + alo) + (bhi + blo)``, normalised (relative error ~2⁻¹⁰⁴)."""
    s, e = _two_sum(ahi, bhi)
    e += alo + blo
    hi = s + e
    return hi, e - (hi - s)


@jit
def _prefix_sums(distinct, counts, d, s1, s2):
    """Double-double prefix sums ``s1[t] = Σ_{u<t} w_u v_u`` and ``s2[t] = Σ_{u<t} w_u v_u²``
    ((d + 1, 2) arrays: high and low parts)."""
    s1[0, 0] = s1[0, 1] = s2[0, 0] = s2[0, 1] = 0.0
    for t in range(d):
        w, v = counts[t], distinct[t]
        p, pe = _two_prod(w, v)
        s1[t + 1, 0], s1[t + 1, 1] = _dd_add(s1[t, 0], s1[t, 1], p, pe)
        q, qe = _two_prod(v, v)
        p, pe = _two_prod(w, q)
        pe += w * qe
        s2[t + 1, 0], s2[t + 1, 1] = _dd_add(s2[t, 0], s2[t, 1], p, pe)


@jit
def _within_ss(s1, s2, weight, i, j):
    """``SS(i, j)``: weighted sum of squared deviations from their mean of distinct values
    ``i … j``, as ``S2 − S1² / W`` in double-double (``W = weight[j + 1] − weight[i]``), rounded
    to float64 and clamped at 0; exactly 0 for one distinct value."""
    if i == j:
        return 0.0
    w = weight[j + 1] - weight[i]
    a, ae = _dd_add(s1[j + 1, 0], s1[j + 1, 1], -s1[i, 0], -s1[i, 1])
    b, be = _dd_add(s2[j + 1, 0], s2[j + 1, 1], -s2[i, 0], -s2[i, 1])
    sq, sqe = _two_prod(a, a)
    sqe += 2.0 * a * ae
    q = sq / w  # (sq + sqe) / w in double-double: one correction step
    p, pe = _two_prod(q, w)
    r = ((sq - p) - pe + sqe) / w
    ss, _ = _dd_add(b, be, -q, -r)
    return max(ss, 0.0)


@jit
def jenks(sorted_values, k, out):
    """Fisher–Jenks natural breaks of ``sorted_values`` (n,) into ``k`` classes, written to ``out`` (k + 1,).

    Formula: minimise ``sum_c sum_{x in class c} (x - mean_c)^2`` over partitions of the sorted
    values into ``k`` contiguous classes.  With the distinct values ``v_0 < … < v_{d-1}`` (counts
    ``w_t``) and ``SS(i, j)`` the weighted within-class sum of squares of ``v_i … v_j``::

        best[0][j] = SS(0, j)
        best[c][j] = min_{c <= i <= j} best[c - 1][i - 1] + SS(i, j)      (c = 1 … K - 1)

    with ``K = min(k, d)``; the last class of ``best[c][j]`` starts at the arg-min ``i`` (the largest
    one on equal totals), and backtracking from ``best[K - 1][d - 1]`` gives the classes.

    ``SS`` satisfies the quadrangle inequality ``SS(a, c) + SS(b, d) <= SS(a, d) + SS(b, c)`` for
    ``a <= b <= c <= d``, so the largest arg-min ``first[c][j]`` does not decrease with ``j``: a
    layer is solved by divide and conquer — ``j = mid`` searched over its whole admissible range,
    then the ``j`` below it only up to ``first[c][mid]`` and those above only from it (Grønlund et
    al. 2017).  Each ``SS(i, j)`` is O(1) from double-double prefix sums of ``w v`` and ``w v²``
    (106-bit sums keep ``S2 − S1²/W`` free of the cancellation a float64 version would have for a
    tight class far from 0).  Time O(n + K d log d), memory O(n + K d).

    Parameters
    ----------
    sorted_values : float64 (n,), ascending, finite, n >= 1 (not checked: NaN would be taken as a
        distinct value each time).  ``|value|`` must stay below ~1e145 (Dekker's split of a square).
    k : int >= 1, number of classes.
    out : float64 (k + 1,).  Receives ``min, upper bound of class 1, …, upper bound of class k``
        (the last real upper bound is the max; see the module notes for k > d).  Class ``c``
        (1-based, lowest first) holds the values in ``(out[c - 1], out[c]]``, class 1 also ``out[0]``.

    Returns ``out``.

    Sources: W. D. Fisher (1958) "On grouping for maximum homogeneity", JASA 53:789–798; G. F. Jenks
    (1977) "Optimal data classification for choropleth maps"; H. Wang & M. Song (2011)
    "Ckmeans.1d.dp", R Journal 3(2):29–33; A. Grønlund, K. G. Larsen, A. Mathiasen, J. S. Nielsen,
    S. Schneider & M. Song (2017) "Fast exact k-means, k-medians and Bregman divergence clustering
    in 1D", arXiv:1701.07204; T. J. Dekker (1971) "A floating-point technique for extending the
    available precision", Numer. Math. 18:224–242.
    """
    n = sorted_values.shape[0]
    distinct = np.empty(n, np.float64)
    counts = np.empty(n, np.float64)
    d = 0
    for t in range(n):
        v = sorted_values[t]
        if d > 0 and v == distinct[d - 1]:
            counts[d - 1] += 1.0
        else:
            distinct[d] = v
            counts[d] = 1.0
            d += 1
    n_classes = min(k, d)

    weight = np.empty(d + 1, np.float64)  # weight[t] = units with the t lowest values
    weight[0] = 0.0
    for t in range(d):
        weight[t + 1] = weight[t] + counts[t]
    s1 = np.empty((d + 1, 2), np.float64)
    s2 = np.empty((d + 1, 2), np.float64)
    _prefix_sums(distinct, counts, d, s1, s2)

    best = np.empty((n_classes, d), np.float64)  # best[c, j] defined for j >= c
    first = np.zeros((n_classes, d), np.int64)  # start of the last class of best[c, j]
    for j in range(d):
        best[0, j] = _within_ss(s1, s2, weight, 0, j)
    stack = np.empty((2 * 64 + 2, 4), np.int64)  # pending (j_lo, j_hi, i_lo, i_hi), depth-first
    for c in range(1, n_classes):
        top = 0
        stack[0, 0], stack[0, 1], stack[0, 2], stack[0, 3] = c, d - 1, c, d - 1
        while top >= 0:
            j_lo, j_hi, i_lo, i_hi = stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3]
            top -= 1
            mid = (j_lo + j_hi) // 2
            lowest = np.inf
            start = mid
            # descending i with a strict '<': on equal totals the latest start wins
            for i in range(min(mid, i_hi), max(c, i_lo) - 1, -1):
                candidate = best[c - 1, i - 1] + _within_ss(s1, s2, weight, i, mid)
                if candidate < lowest:
                    lowest = candidate
                    start = i
            best[c, mid] = lowest
            first[c, mid] = start
            if mid + 1 <= j_hi:
                top += 1
                stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3] = mid + 1, j_hi, start, i_hi
            if j_lo <= mid - 1:
                top += 1
                stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3] = j_lo, mid - 1, i_lo, start

    out[0] = distinct[0]
    end = d - 1
    for c in range(n_classes - 1, 0, -1):
        out[c + 1] = distinct[end]
        end = first[c, end] - 1
    out[1] = distinct[end]
    for c in range(n_classes + 1, k + 1):
        out[c] = distinct[d - 1]
    return out


@jit
def quantile_tiers(ranks, k, out):
    """Quantile group of every unit by rank, written to ``out`` (int64, n,): ``ceil(rank · k / n)``
    with ``n`` the number of finite ranks (deciles for k = 10: decile = ceil(rank × 10 / N), as the
    English Indices of Deprivation), computed in integers as ``(rank · k + n − 1) // n``; 0 for a
    missing (NaN) rank.  ``ranks``: float64 (n_units,), descending competition ranks 1 … n (1 = the
    best; ties share the smaller rank, hence the better group).  Returns ``out``."""
    n = 0
    for i in range(ranks.shape[0]):
        if np.isfinite(ranks[i]):
            n += 1
    for i in range(ranks.shape[0]):
        if np.isfinite(ranks[i]):
            out[i] = (np.int64(ranks[i]) * k + n - 1) // n
        else:
            out[i] = 0
    return out
