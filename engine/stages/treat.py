"""Denomination and outlier treatment.

The ``skew_kurtosis`` treatment is COINr's default (``Treat``: ``winsorise`` then ``log_CT``,
``check_SkewKurt``), reproduced step for step:

* an indicator fails when ``|skew| >= skew_threshold`` AND ``excess kurtosis >= kurtosis_threshold``
  (sample skewness G1 and excess kurtosis G2, the e1071 "type 2" / Excel formulas);
* while it fails and fewer than ``winmax`` points are winsorised: if skew >= 0 every point equal to
  the current maximum is set to the largest remaining value (else the minimum to the smallest
  remaining); the count is the size of the last winsorised set on each side (so ties count);
* if it still fails, the *original* values are replaced by ``log(x - min + 0.01 (max - min))``.
"""

from __future__ import annotations

import numpy as np

from ..schema import Indicator

__all__ = ["denominate", "treat", "skewness", "kurtosis", "treat_column"]


def denominate(raw: np.ndarray, denominators: np.ndarray, scale_factor: np.ndarray) -> np.ndarray:
    """``x / (denominator / scale_factor)`` (COINr ``Denominate``); indicators without a
    denominator have denominator 1 and scale factor 1.  When every denominator and scale factor is
    1, ``raw`` itself is returned (``x / (1 / 1)`` is ``x``, bit for bit: no copy)."""
    # prepare's read-only broadcast of 1.0 (no indicator has a denominator) is known by its strides: no
    # scan of a (n_units, n_indicators) comparison (10^6 x 25: 24 ms)
    ones = denominators.strides == (0, 0) and denominators.size and denominators.flat[0] == 1.0
    if np.all(np.asarray(scale_factor) == 1.0) and (ones or np.all(denominators == 1.0)):
        return raw
    return raw / (denominators / scale_factor)


def skewness(x: np.ndarray) -> float:
    """Sample skewness G1 (bias-adjusted, e1071 type 2) of the present values; NaN if n < 3."""
    x = x[~np.isnan(x)]
    n = x.size
    if n < 3:
        return np.nan
    d = x - x.mean()
    m2 = np.sum(d**2)
    if m2 == 0:
        return np.nan
    return float(np.sqrt(n) * np.sum(d**3) / m2**1.5 * np.sqrt(n * (n - 1)) / (n - 2))


def kurtosis(x: np.ndarray) -> float:
    """Sample excess kurtosis G2 (e1071 type 2) of the present values; NaN if n < 4."""
    x = x[~np.isnan(x)]
    n = x.size
    if n < 4:
        return np.nan
    d = x - x.mean()
    m2 = np.sum(d**2)
    if m2 == 0:
        return np.nan
    r = n * np.sum(d**4) / m2**2
    return float(((n + 1) * (r - 3) + 6) * (n - 1) / ((n - 2) * (n - 3)))


def _passes(x: np.ndarray, skew_threshold: float, kurtosis_threshold: float) -> bool | None:
    s, k = skewness(x), kurtosis(x)
    if np.isnan(s) or np.isnan(k):
        return None
    return bool(abs(s) < skew_threshold or k < kurtosis_threshold)


def treat_column(x: np.ndarray, winmax: int, skew_threshold: float, kurtosis_threshold: float
                 ) -> tuple[np.ndarray, dict]:
    """Apply the skew/kurtosis rule to one column; returns the values and what was done."""
    record = {"skew": skewness(x), "kurtosis": kurtosis(x), "winsorised": 0, "log": False}
    passing = _passes(x, skew_threshold, kurtosis_threshold)
    if passing is None or passing:
        record["passed"] = passing
        return x, record
    y = x.copy()
    high: np.ndarray = np.empty(0, np.int64)
    low: np.ndarray = np.empty(0, np.int64)
    count = 0
    while not passing and count < winmax:
        present = ~np.isnan(y)
        if skewness(y) >= 0:
            top = np.nanmax(y)
            high = np.flatnonzero(present & (y == top))
            rest = y[present & (y != top)]
            if rest.size == 0:
                break
            y[high] = rest.max()
        else:
            bottom = np.nanmin(y)
            low = np.flatnonzero(present & (y == bottom))
            rest = y[present & (y != bottom)]
            if rest.size == 0:
                break
            y[low] = rest.min()
        count = high.size + low.size
        passing = bool(_passes(y, skew_threshold, kurtosis_threshold))
    record["winsorised"] = int(count)
    if not passing:
        lo, hi = np.nanmin(x), np.nanmax(x)
        y = np.log(x - lo + 0.01 * (hi - lo))
        record["log"] = True
        passing = bool(_passes(y, skew_threshold, kurtosis_threshold))
    record.update(skew_after=skewness(y), kurtosis_after=kurtosis(y), passed=passing)
    return y, record


def treat(x: np.ndarray, indicators: tuple[Indicator, ...]) -> tuple[np.ndarray, dict[str, dict]]:
    """Apply each indicator's treatment (``none``, ``log`` or ``skew_kurtosis``) to its column.

    Returns the treated array and, per treated indicator, a record of what was done
    (skew/kurtosis before and after, points winsorised, whether the log was taken).  Without any
    treatment ``x`` itself is returned (no copy)."""
    if all(ind.treatment.name == "none" for ind in indicators):
        return x, {}
    out = np.array(x, dtype=np.float64, copy=True)
    records: dict[str, dict] = {}
    for j, ind in enumerate(indicators):
        method = ind.treatment
        if method.name == "log":
            out[:, j] = np.log(out[:, j])
            records[ind.id] = {"log": True}
        elif method.name == "skew_kurtosis":
            out[:, j], rec = treat_column(out[:, j], int(method["winmax"]), float(method["skew_threshold"]),
                                          float(method["kurtosis_threshold"]))
            if rec["winsorised"] or rec["log"]:
                records[ind.id] = rec
    return out, records
