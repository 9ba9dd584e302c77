"""Tier kernel: exact optimal one-dimensional classification (Fisher–Jenks natural breaks).

``jenks(sorted_values, k, out)`` splits sorted scores into ``k`` contiguous classes with the least
total within-class sum of squared deviations, by exact dynamic programming.  The twin is
:func:`engine.kernels.reference.jenks`; validation, missing scores and tier numbering live in
:mod:`engine.tiers`.

Policies (identical in both homes):

* **Ties are never split.**  The DP runs over the distinct values weighted by their multiplicity, so
  a class boundary always falls between two different values and equal scores share a class.  (In
  exact arithmetic an optimal partition never splits a run of equal values when ``k`` is at most the
  number of distinct values, so this loses no optimum; it only rules out floating-point accidents.)
* **k larger than the number of distinct values ``d``:** every distinct value is its own class
  (total 0) and the ``k - d`` breaks left over repeat the maximum, i.e. the top classes are empty.
  :func:`engine.tiers.tier_breaks` never asks for more than ``d`` classes.
* **Equal totals:** among partitions whose computed totals are equal (``==`` in float64), the one
  whose highest class starts latest is chosen, then, within that, the one whose second-highest class
  starts latest, and so on: the lexicographically highest breaks, read from the top.  E.g. [0, 1, 2]
  with k = 2 gives {0, 1} {2}, not {0} {1, 2} (both cost 0.5).
"""

from __future__ import annotations

import numpy as np

from ._jit import jit

__all__ = ["jenks"]


@jit
def jenks(sorted_values, k, out):
    """Fisher–Jenks natural breaks of ``sorted_values`` (n,) into ``k`` classes, written to ``out`` (k + 1,).

    Formula: minimise ``sum_c sum_{x in class c} (x - mean_c)^2`` over partitions of the sorted
    values into ``k`` contiguous classes.  With the distinct values ``v_0 < … < v_{d-1}`` (counts
    ``w_t``) and ``SS(i, j)`` the weighted within-class sum of squares of ``v_i … v_j``::

        best[0][j] = SS(0, j)
        best[c][j] = min_{c <= i <= j} best[c - 1][i - 1] + SS(i, j)      (c = 1 … K - 1)

    with ``K = min(k, d)``; the last class of ``best[c][j]`` starts at the arg-min ``i`` (the largest
    one on equal totals), and backtracking from ``best[K - 1][d - 1]`` gives the classes.  Time
    O(n + K d^2), memory O(n + K d).

    ``SS(i, j)`` for every ``i <= j`` comes from one pass of West's weighted update (Welford's
    algorithm with weights) from ``v_j`` down to ``v_i``, which keeps a class of equal values at
    exactly 0 and avoids the cancellation of ``sum x^2 - (sum x)^2 / n``::

        weight += w_t;  delta = v_t - mean;  mean += delta * w_t / weight;  ss += w_t * delta * (v_t - mean)

    Parameters
    ----------
    sorted_values : float64 (n,), ascending, finite, n >= 1 (not checked: NaN would be taken as a
        distinct value each time).  Magnitudes must be small enough for their squares not to overflow.
    k : int >= 1, number of classes.
    out : float64 (k + 1,).  Receives ``min, upper bound of class 1, …, upper bound of class k``
        (the last real upper bound is the max; see the module notes for k > d).  Class ``c``
        (1-based, lowest first) holds the values in ``(out[c - 1], out[c]]``, class 1 also ``out[0]``.

    Returns ``out``.

    Sources: W. D. Fisher (1958) "On grouping for maximum homogeneity", JASA 53:789–798; G. F. Jenks
    (1977) "Optimal data classification for choropleth maps"; H. Wang & M. Song (2011)
    "Ckmeans.1d.dp", R Journal 3(2):29–33; D. H. D. West (1979) CACM 22:532–535 (weighted update).
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

    best = np.empty((n_classes, d), np.float64)  # best[c, j] defined for j >= c
    first = np.zeros((n_classes, d), np.int64)  # start of the last class of best[c, j]
    ss = np.empty(d, np.float64)  # ss[i] = SS(i, j) for the current j, i <= j
    for j in range(d):
        weight = 0.0
        mean = 0.0
        total_ss = 0.0
        for i in range(j, -1, -1):
            w = counts[i]
            v = distinct[i]
            weight += w
            delta = v - mean
            mean += delta * w / weight
            total_ss += w * delta * (v - mean)
            ss[i] = total_ss
        best[0, j] = ss[0]
        for c in range(1, min(n_classes, j + 1)):
            lowest = np.inf
            start = j
            # descending i with a strict '<': on equal totals the latest start wins
            for i in range(j, c - 1, -1):
                candidate = best[c - 1, i - 1] + ss[i]
                if candidate < lowest:
                    lowest = candidate
                    start = i
            best[c, j] = lowest
            first[c, j] = start

    out[0] = distinct[0]
    end = d - 1
    for c in range(n_classes - 1, 0, -1):
        out[c + 1] = distinct[end]
        end = first[c, end] - 1
    out[1] = distinct[end]
    for c in range(n_classes + 1, k + 1):
        out[c] = distinct[d - 1]
    return out
