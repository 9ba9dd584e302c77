"""Normalisation kernels on (n_units, n_cols) float64 arrays, one parameter per column.

One implementation of every formula, :func:`normalise_column`: statistics fitted on a weighted
sample (each unit counted ``count`` times), applied to every unit.  The pipeline's kernels (one per
method, named as in the registry :mod:`engine.methods`) call it column by column with every count
1; the bootstrap kernel calls it with a resample's multiplicities.

Policies (shared with the twins in :mod:`engine.kernels.reference`): non-finite inputs are
missing (NaN out, excluded from the column statistics); ``fill[j]`` is written for every present
unit when the statistic a method divides by is zero (constant column, single unit, max = 0).
Directions are applied by the caller (``x * direction``, COINr's convention), so every kernel
treats larger as better.
"""

from __future__ import annotations

import math

import numpy as np

from ..methods import (
    BORDA,
    DISTANCE_TO_MAX,
    DISTANCE_TO_TARGET,
    EXPONENTIAL,
    FRACTION_OF_MAX,
    GOALPOSTS,
    MINMAX,
    PERCENTILE,
    RANK,
    ZSCORE,
)
from ._jit import jit

__all__ = ["minmax", "zscore", "rank", "borda", "percentile", "fraction_of_max", "distance_to_max",
           "distance_to_target", "goalposts", "exponential", "normalise_column"]


@jit
def normalise_column(code, x, count, p0, p1, p2, cap, out):
    """Normalise one directed indicator column ``x`` (n_units,) into ``out``, every statistic
    fitted on the units with ``count > 0`` (see :func:`normalise_sorted`, which this calls without
    a known order)."""
    return normalise_sorted(code, x, count, np.empty(0, np.int64), p0, p1, p2, cap, out)


@jit
def normalise_sorted(code, x, count, order, p0, p1, p2, cap, out):
    """Normalise one directed indicator column ``x`` (n_units,) into ``out``, every statistic
    fitted on the *sample*: the units with ``count > 0`` and a finite value, each counted
    ``count`` times.  Every unit with a finite value gets a normalised value (units outside the
    sample included; they may fall outside the method's range); non-finite → NaN.

    With ``count`` all 1 this is the stage's kernel of the same method (which calls it):

    * minmax ``(v − min)/(max − min)·(p1 − p0) + p0`` (constant → ``p2``);
    * zscore ``(v − m)/s·p1 + p0`` with m = Σc·x/Σc, s² = Σc·(x − m)²/(Σc − 1) (constant or Σc < 2 → ``p2``);
    * rank ``1 + Σ{c_k : x_k < v}`` (ascending competition rank against the sample; ``p0 = 1``: ties
      averaged, ``Σ{c_k : x_k < v} + (Σ{c_k : x_k = v} + 1)/2``); borda = rank − 1 (ties at the minimum);
    * percentile ``(rank − 1)/(Σc − 1)·p0`` (Σc = 1 → ``p1``);
    * fraction_of_max ``v/max·p0`` (max = 0 → ``p1``); distance_to_max ``(1 − (max − v)/(max − min))·p0``
      (constant → ``p1``); distance_to_target(target p0, scale p1, ``cap``); goalposts (p0, p1, scale p2);
    * exponential (c = p0): ``−c ln(1 − R (1 − e^(−100/c)))`` with ``R`` = the ties-averaged rank / Σc,
      in (0, 1] (the English Indices of Deprivation's transformation, IoD2019 Technical Report App. F;
      a unit outside the sample and above all of it has R capped at 1).

    A sample without any finite value gives NaN everywhere.

    ``order``: the units with a finite value of ``x`` by ascending value (ties by unit index:
    ``argsort(x, kind="stable")`` without the non-finite), or empty.  When a caller fits the same
    column on many samples (the bootstrap: every replicate's multiplicities) it passes the order,
    computed once: the sample's min and max are then its first and last drawn unit (a few steps
    instead of a pass over every unit whose ``count > 0`` test the CPU cannot predict), the total
    is summed only for the methods that read it, and rank-based methods need no sort.  The same
    floats either way (the same sums in the same order).  With an order, counts must be >= 0 (an
    undrawn unit's zero terms are added instead of branched around).
    """
    n = x.shape[0]
    sorted_in = order.shape[0] > 0
    total = 0.0
    low = np.inf
    high = -np.inf
    if sorted_in:
        first = 0
        while first < order.shape[0] and not count[order[first]] > 0.0:
            first += 1
        if first < order.shape[0]:
            last = order.shape[0] - 1
            while not count[order[last]] > 0.0:
                last -= 1
            low = x[order[first]]
            high = x[order[last]]
            total = 1.0  # some unit is drawn; the exact total below for the methods that read it
            if code == ZSCORE or code == PERCENTILE or code == EXPONENTIAL:
                total = 0.0
                for i in range(n):
                    if np.isfinite(x[i]):
                        total += count[i]  # an undrawn unit adds +0.0 (counts are >= 0)
    else:
        for i in range(n):
            if count[i] > 0.0 and np.isfinite(x[i]):
                total += count[i]
                if x[i] < low:
                    low = x[i]
                if x[i] > high:
                    high = x[i]
    if total == 0.0 and code != GOALPOSTS:
        out[:] = np.nan
        return out
    centre = 0.0
    spread = 0.0
    ordered = np.empty(0, np.float64)
    below = np.zeros(1, np.float64)
    if code == ZSCORE and sorted_in:
        # The same sums without a branch on the draw (counts are >= 0): an undrawn unit adds +0.0,
        # which changes no sum (its squared term is selected away: 0 · inf would be NaN).
        s = 0.0
        for i in range(n):
            if np.isfinite(x[i]):
                s += count[i] * x[i]
        centre = s / total
        if total > 1.0 and high > low:
            squares = 0.0
            for i in range(n):
                if np.isfinite(x[i]):
                    d = x[i] - centre
                    term = count[i] * (d * d)
                    squares += term if count[i] > 0.0 else 0.0
            spread = np.sqrt(squares / (total - 1.0))
    elif code == ZSCORE:
        s = 0.0
        for i in range(n):
            if count[i] > 0.0 and np.isfinite(x[i]):
                s += count[i] * x[i]
        centre = s / total
        if total > 1.0 and high > low:
            squares = 0.0
            for i in range(n):
                if count[i] > 0.0 and np.isfinite(x[i]):
                    d = x[i] - centre
                    squares += count[i] * (d * d)
            spread = np.sqrt(squares / (total - 1.0))
    ranked = code == RANK or code == BORDA or code == PERCENTILE or code == EXPONENTIAL
    average = code == EXPONENTIAL or (code == RANK and p0 == 1.0)
    below_of = np.empty(0, np.float64)
    upto_of = np.empty(0, np.float64)
    if ranked and sorted_in:
        # One walk over the units in ascending order, run of equal values by run: Σ weights of the
        # sample values < v and ≤ v for every unit (the sums below[] and the searches give: the same
        # additions in the same order), O(n) instead of a sort and a binary search per unit.
        below_of = np.empty(n, np.float64)
        upto_of = np.empty(n, np.float64)
        cumulative = 0.0
        k = 0
        while k < order.shape[0]:
            v = x[order[k]]
            stop = k + 1
            while stop < order.shape[0] and x[order[stop]] == v:
                stop += 1
            upto = cumulative
            for q in range(k, stop):
                if count[order[q]] > 0.0:
                    upto += count[order[q]]
            for q in range(k, stop):
                below_of[order[q]] = cumulative
                upto_of[order[q]] = upto
            cumulative = upto
            k = stop
    elif ranked:
        m = 0
        for i in range(n):
            if count[i] > 0.0 and np.isfinite(x[i]):
                m += 1
        values = np.empty(m, np.float64)
        weights = np.empty(m, np.float64)
        m = 0
        for i in range(n):
            if count[i] > 0.0 and np.isfinite(x[i]):
                values[m] = x[i]
                weights[m] = count[i]
                m += 1
        ranking = np.argsort(values, kind="mergesort")
        ordered = values[ranking]
        below = np.zeros(m + 1, np.float64)  # below[p] = Σ weights of the p smallest sample values
        for p in range(m):
            below[p + 1] = below[p] + weights[ranking[p]]
    for i in range(n):
        v = x[i]
        if not np.isfinite(v):
            out[i] = np.nan
        elif code == MINMAX:
            out[i] = p2 if high == low else (v - low) / (high - low) * (p1 - p0) + p0
        elif code == ZSCORE:
            out[i] = p2 if spread == 0.0 else (v - centre) / spread * p1 + p0
        elif ranked and average:
            lo = below_of[i] if sorted_in else below[np.searchsorted(ordered, v)]  # Σ weights of sample values < v
            upto = upto_of[i] if sorted_in else below[np.searchsorted(ordered, v, side="right")]  # ... ≤ v
            position = lo + (upto - lo + 1.0) / 2.0
            if code == RANK:
                out[i] = position
            else:  # EXPONENTIAL: R = position / Σc in (0, 1]
                # −c ln(1 − R (1 − e^(−100/c))), written (1 − R) + R e^(−100/c): no cancellation at R = 1
                r = min(position / total, 1.0)  # a unit outside the sample above all of it: R = 1
                out[i] = -p0 * math.log((1.0 - r) + r * math.exp(-100.0 / p0))
        elif ranked:
            position = 1.0 + (below_of[i] if sorted_in else below[np.searchsorted(ordered, v)])  # 1 + Σ w below v
            if code == RANK:
                out[i] = position
            elif code == BORDA:
                out[i] = position - 1.0
            elif total == 1.0:
                out[i] = p1
            else:
                out[i] = (position - 1.0) / (total - 1.0) * p0
        elif code == FRACTION_OF_MAX:
            out[i] = p1 if high == 0.0 else v / high * p0
        elif code == DISTANCE_TO_MAX:
            out[i] = p1 if high == low else (1.0 - (high - v) / (high - low)) * p0
        elif code == DISTANCE_TO_TARGET:
            if p0 <= low:
                out[i] = p1
            else:
                d = 1.0 - (p0 - v) / (p0 - low)
                if cap and d > 1.0:
                    d = 1.0
                out[i] = d * p1
        else:  # GOALPOSTS
            d = (v - p0) / (p1 - p0)
            out[i] = min(1.0, max(0.0, d)) * p2
    return out


@jit
def _columns(code, x, p0, p1, p2, cap, out):
    """:func:`normalise_column` of every column of ``x`` with every count 1 (parameters per column).

    :func:`normalise_column` gets contiguous column buffers and the code as a plain int64, so it is
    compiled once for every method and for the bootstrap kernel (a strided ``x[:, j]`` or the
    wrapper's literal code would compile it again for each: JIT time a first run pays)."""
    n = x.shape[0]
    method = np.int64(code)  # not the Literal[int] of the wrapper's constant
    ones = np.ones(n)
    column = np.empty(n)
    result = np.empty(n)
    for j in range(x.shape[1]):
        for i in range(n):
            column[i] = x[i, j]
        normalise_column(method, column, ones, p0[j], p1[j], p2[j], cap[j], result)
        for i in range(n):
            out[i, j] = result[i]
    return out


@jit
def _none(x):
    """Placeholder parameters of a method that takes fewer than three (never read)."""
    return np.zeros(x.shape[1])


@jit
def minmax(x, lo, hi, fill, out):
    """(x - min) / (max - min) * (hi - lo) + lo per column; constant column -> fill."""
    return _columns(MINMAX, x, lo, hi, fill, np.zeros(x.shape[1], np.bool_), out)


@jit
def zscore(x, mean, sd, fill, out):
    """(x - mean(x)) / sd(x) * sd + mean, sample sd (n - 1); constant column or n < 2 -> fill.

    Constancy is decided on the values (min == max), not on the rounded sd, which need not be 0
    for a constant column (0.1, 0.1, 0.1 has a rounded mean of 0.10000000000000002)."""
    return _columns(ZSCORE, x, mean, sd, fill, np.zeros(x.shape[1], np.bool_), out)


@jit
def rank(x, ties, out):
    """Ascending rank per column (smallest = 1); ties share the minimum (``ties[j] = 0``, competition
    rank 1, 2, 2, 4) or the average of their positions (``ties[j] = 1``: 1, 2.5, 2.5, 4)."""
    return _columns(RANK, x, ties, _none(x), _none(x), np.zeros(x.shape[1], np.bool_), out)


@jit
def borda(x, out):
    """Borda score per column: ascending rank - 1."""
    return _columns(BORDA, x, _none(x), _none(x), _none(x), np.zeros(x.shape[1], np.bool_), out)


@jit
def percentile(x, scale, fill, out):
    """Percentile rank (rank - 1) / (n - 1) * scale; a single present unit -> fill."""
    return _columns(PERCENTILE, x, scale, fill, _none(x), np.zeros(x.shape[1], np.bool_), out)


@jit
def fraction_of_max(x, scale, fill, out):
    """x / max(x) * scale per column; max = 0 -> fill (inputs are validated >= 0)."""
    return _columns(FRACTION_OF_MAX, x, scale, fill, _none(x), np.zeros(x.shape[1], np.bool_), out)


@jit
def distance_to_max(x, scale, fill, out):
    """(1 - (max - x) / (max - min)) * scale per column; constant column -> fill."""
    return _columns(DISTANCE_TO_MAX, x, scale, fill, _none(x), np.zeros(x.shape[1], np.bool_), out)


@jit
def distance_to_target(x, target, scale, cap, out):
    """(1 - (target - x) / (target - min)) * scale, capped at scale where cap[j].

    When no unit falls short of the target (target <= min), every unit has reached it and gets
    ``scale`` (the formula's denominator would be <= 0 and reverse the order)."""
    return _columns(DISTANCE_TO_TARGET, x, target, scale, _none(x), cap, out)


@jit
def goalposts(x, lo, hi, scale, out):
    """clamp((x - lo) / (hi - lo), 0, 1) * scale per column."""
    return _columns(GOALPOSTS, x, lo, hi, scale, np.zeros(x.shape[1], np.bool_), out)


@jit
def exponential(x, c, out):
    """Exponential rank transformation of the English Indices of Deprivation (IoD2019 Technical
    Report, App. F), per column: ``−c ln(1 − R (1 − e^(−100/c)))`` with ``R = rank / n`` in (0, 1],
    the ascending rank with ties averaged (R = 1/n for the lowest value, 1 for the highest), n the
    number of present units.  Output in (0, 100]: the highest value gets 100; c = 23 puts about 10 %
    of the units above 50.  A constant column gives every unit the value of R = (n + 1)/(2n)."""
    return _columns(EXPONENTIAL, x, c, _none(x), _none(x), np.zeros(x.shape[1], np.bool_), out)
