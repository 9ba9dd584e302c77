"""Normalisation kernels on (n_units, n_cols) float64 arrays, one parameter per column.

Policies (shared with the twins in :mod:`engine.kernels.reference`): non-finite inputs are
missing (NaN out, excluded from the column statistics); ``fill[j]`` is written for every present
unit when the statistic a method divides by is zero (constant column, single unit, max = 0).
Directions are applied by the caller (``x * direction``, COINr's convention), so every kernel
treats larger as better.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit
from .rank import rank_1d

__all__ = ["minmax", "zscore", "rank", "borda", "percentile", "fraction_of_max", "distance_to_max",
           "distance_to_target", "goalposts"]


@jit
def _range(col):
    """(count, min, max) of the finite values of a column."""
    count = 0
    low = np.inf
    high = -np.inf
    for v in col:
        if np.isfinite(v):
            count += 1
            if v < low:
                low = v
            if v > high:
                high = v
    return count, low, high


@jit
def minmax(x, lo, hi, fill, out):
    """(x - min) / (max - min) * (hi - lo) + lo per column; constant column -> fill."""
    for j in range(x.shape[1]):
        count, low, high = _range(x[:, j])
        for i in range(x.shape[0]):
            v = x[i, j]
            if not np.isfinite(v):
                out[i, j] = np.nan
            elif high == low:
                out[i, j] = fill[j]
            else:
                out[i, j] = (v - low) / (high - low) * (hi[j] - lo[j]) + lo[j]
    return out


@jit
def zscore(x, mean, sd, fill, out):
    """(x - mean(x)) / sd(x) * sd + mean, sample sd (n - 1); constant column or n < 2 -> fill.

    Constancy is decided on the values (min == max), not on the rounded sd, which need not be 0
    for a constant column (0.1, 0.1, 0.1 has a rounded mean of 0.10000000000000002)."""
    for j in range(x.shape[1]):
        count, low, high = _range(x[:, j])
        total = 0.0
        for i in range(x.shape[0]):
            if np.isfinite(x[i, j]):
                total += x[i, j]
        centre = total / count if count > 0 else np.nan
        spread = 0.0
        if count > 1 and high > low:
            squares = 0.0
            for i in range(x.shape[0]):
                if np.isfinite(x[i, j]):
                    d = x[i, j] - centre
                    squares += d * d
            spread = np.sqrt(squares / (count - 1))
        for i in range(x.shape[0]):
            v = x[i, j]
            if not np.isfinite(v):
                out[i, j] = np.nan
            elif spread == 0.0:
                out[i, j] = fill[j]
            else:
                out[i, j] = (v - centre) / spread * sd[j] + mean[j]
    return out


@jit
def rank(x, out):
    """Ascending competition rank per column (smallest = 1; ties share the minimum)."""
    for j in range(x.shape[1]):
        rank_1d(x[:, j].copy(), False, out[:, j])
    return out


@jit
def borda(x, out):
    """Borda score per column: ascending rank - 1."""
    rank(x, out)
    for j in range(x.shape[1]):
        for i in range(x.shape[0]):
            out[i, j] -= 1.0
    return out


@jit
def percentile(x, scale, fill, out):
    """Percentile rank (rank - 1) / (n - 1) * scale; a single present unit -> fill."""
    rank(x, out)
    for j in range(x.shape[1]):
        count, low, high = _range(x[:, j])
        for i in range(x.shape[0]):
            if np.isfinite(out[i, j]):
                if count == 1:
                    out[i, j] = fill[j]
                else:
                    out[i, j] = (out[i, j] - 1.0) / (count - 1) * scale[j]
    return out


@jit
def fraction_of_max(x, scale, fill, out):
    """x / max(x) * scale per column; max = 0 -> fill (inputs are validated >= 0)."""
    for j in range(x.shape[1]):
        count, low, high = _range(x[:, j])
        for i in range(x.shape[0]):
            v = x[i, j]
            if not np.isfinite(v):
                out[i, j] = np.nan
            elif high == 0.0:
                out[i, j] = fill[j]
            else:
                out[i, j] = v / high * scale[j]
    return out


@jit
def distance_to_max(x, scale, fill, out):
    """(1 - (max - x) / (max - min)) * scale per column; constant column -> fill."""
    for j in range(x.shape[1]):
        count, low, high = _range(x[:, j])
        for i in range(x.shape[0]):
            v = x[i, j]
            if not np.isfinite(v):
                out[i, j] = np.nan
            elif high == low:
                out[i, j] = fill[j]
            else:
                out[i, j] = (1.0 - (high - v) / (high - low)) * scale[j]
    return out


@jit
def distance_to_target(x, target, scale, cap, out):
    """(1 - (target - x) / (target - min)) * scale, capped at scale where cap[j].

    When no unit falls short of the target (target <= min), every unit has reached it and gets
    ``scale`` (the formula's denominator would be <= 0 and reverse the order)."""
    for j in range(x.shape[1]):
        count, low, high = _range(x[:, j])
        for i in range(x.shape[0]):
            v = x[i, j]
            if not np.isfinite(v):
                out[i, j] = np.nan
            elif target[j] <= low:
                out[i, j] = scale[j]
            else:
                d = 1.0 - (target[j] - v) / (target[j] - low)
                if cap[j] and d > 1.0:
                    d = 1.0
                out[i, j] = d * scale[j]
    return out


@jit
def goalposts(x, lo, hi, scale, out):
    """clamp((x - lo) / (hi - lo), 0, 1) * scale per column."""
    for j in range(x.shape[1]):
        for i in range(x.shape[0]):
            v = x[i, j]
            if not np.isfinite(v):
                out[i, j] = np.nan
            else:
                d = (v - lo[j]) / (hi[j] - lo[j])
                out[i, j] = min(1.0, max(0.0, d)) * scale[j]
    return out
