"""Imputation of missing indicator values, and unit screening by data availability."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ImputationWarning, SchemaError
from ..schema import Indicator

__all__ = ["SERIES_METHODS", "fill_series", "impute", "screen"]

#: Imputation methods that use the unit's own series over time (panel data, :mod:`engine.panel`).
SERIES_METHODS = ("locf", "interpolate")


def fill_series(values: np.ndarray, times: np.ndarray, method: str) -> np.ndarray:
    """One unit's series (values in time order, NaN = missing) with its gaps filled.

    ``locf``: the last observation carried forward; ``interpolate``: linear in ``times`` between
    the observations before and after, ``v0 + (v1 - v0)·(t - t0)/(t1 - t0)``.  Values before the
    first observation (and, for ``interpolate``, after the last) stay missing: there is nothing to
    carry or to interpolate between."""
    values = np.asarray(values, np.float64)
    present = np.flatnonzero(~np.isnan(values))
    out = values.copy()
    if present.size == 0:
        return out
    if method == "locf":
        last = np.maximum.accumulate(np.where(~np.isnan(values), np.arange(values.size), -1))
        out = np.where(last >= 0, values[np.maximum(last, 0)], np.nan)
    elif method == "interpolate":
        inside = (np.arange(values.size) > present[0]) & (np.arange(values.size) < present[-1])
        times = np.asarray(times, np.float64)
        out[inside] = np.interp(times[inside], times[present], values[present])
    else:
        raise ValueError(f"not a series imputation method: {method!r}")
    return out


def _fill(column: np.ndarray, statistic) -> np.ndarray:
    present = column[~np.isnan(column)]
    value = statistic(present) if present.size else np.nan
    return np.where(np.isnan(column), value, column)


def impute(x: np.ndarray, indicators: tuple[Indicator, ...], groups: dict[str, np.ndarray]
           ) -> tuple[np.ndarray, dict[str, int]]:
    """Fill missing values per indicator; returns the new array and the count filled per indicator.

    Methods: ``mean``/``median`` of the indicator's column; ``group_mean``/``group_median`` of
    the column within the unit's group (COINr ``i_mean_grp``).  A value stays missing when its
    whole group is missing for that indicator, or when the unit has no group (with an
    :class:`ImputationWarning`).
    """
    series = {ind.id: ind.imputation.name for ind in indicators if ind.imputation.name in SERIES_METHODS}
    if series:
        first = next(iter(series))
        raise SchemaError(f"imputation {series[first]!r} uses the unit's own series over time, which one table of "
                          f"units does not have ({len(series)} indicator(s) use it)", node=first, path=None,
                          fix="score panel data (engine.panel.score_panel, cityrank trajectories --panel), or "
                          "choose mean/median/group_mean/group_median for a single edition")
    if all(ind.imputation.name == "none" for ind in indicators):
        return x, {}  # nothing to fill: no copy (10^6 units x 25 indicators: 200 MB)
    out = np.array(x, dtype=np.float64, copy=True)
    filled: dict[str, int] = {}
    left: list[str] = []
    for j, ind in enumerate(indicators):
        name = ind.imputation.name
        column = out[:, j]
        before = int(np.isnan(column).sum())
        if name == "none" or before == 0:
            continue
        statistic = np.mean if name.endswith("mean") else np.median
        if name in ("mean", "median"):
            column[:] = _fill(column, statistic)
        else:
            codes = groups[ind.imputation.params["group"]]
            for code in np.unique(codes[codes >= 0]):
                rows = codes == code
                column[rows] = _fill(column[rows], statistic)
        after = int(np.isnan(column).sum())
        filled[ind.id] = before - after
        if after:
            left.append(f"{ind.id} ({after})")
    if left:
        warnings.warn(f"imputation left values missing (whole group missing, or no group) in: {', '.join(left)}",
                      ImputationWarning, stacklevel=2)
    return out, filled


def screen(x: np.ndarray, min_coverage: float | None) -> np.ndarray:
    """Boolean mask of the units kept: share of present indicator values >= ``min_coverage``
    (COINr ``Screen(unit_screen = "byNA")``: a unit is dropped when strictly below)."""
    if min_coverage is None:
        return np.ones(x.shape[0], dtype=bool)
    coverage = (~np.isnan(x)).sum(axis=1) / x.shape[1]
    return coverage >= min_coverage
