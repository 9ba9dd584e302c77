"""Validate a dataset against a framework and extract the arrays the pipeline works on.

Every check runs before any computation; the first failure raises a :class:`DataError` that names
the column (and node), the offending units with their values, and the fix.
"""

from __future__ import annotations

import re
import warnings
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
import polars as pl

from ..blocks import over_blocks
from ..errors import DataError, DataQualityWarning, preview
from ..schema import Framework, Indicator
from .load import Dataset, suggest

__all__ = ["Inputs", "numeric_column", "prepare"]


@dataclass(frozen=True)
class Inputs:
    """Validated arrays for one (framework, dataset) pair; rows are units, in file order."""

    units: pl.Series  #: Unit ids (original dtype).
    labels: pl.Series | None  #: Display names, if the dataset has a label column.
    raw: np.ndarray  #: float64 (n_units, n_indicators), NaN = missing; columns in framework order.
    #: float64 (n_units, n_indicators); 1.0 where an indicator has none (when none has one: a read-only
    #: broadcast of 1.0 that takes no memory).
    denominators: np.ndarray
    groups: dict[str, np.ndarray]  #: group column -> int64 codes (n_units,), -1 = missing.
    group_names: dict[str, list[str]]  #: group column -> the value behind each code.

    @property
    def n_units(self) -> int:
        return self.raw.shape[0]


def numeric_column(table: pl.DataFrame, column: str, unit: str, node: str | None) -> np.ndarray:
    """The column as float64 (NaN for missing), or a DataError naming the non-numeric cells."""
    series = table[column]
    if series.dtype.is_nested():
        raise DataError(f"nested values ({series.dtype}) where numbers are expected", node=node, column=column,
                        fix="flatten the column into one number per unit")
    if series.dtype == pl.Null:
        return np.full(table.height, np.nan)
    if series.dtype.is_numeric() or series.dtype == pl.Boolean:
        values = series.cast(pl.Float64).to_numpy().astype(np.float64, copy=True)
    else:
        cleaned = series.cast(pl.String).str.strip_chars()
        converted = cleaned.cast(pl.Float64, strict=False)
        bad = table.filter(converted.is_null() & cleaned.is_not_null() & (cleaned != ""))
        if bad.height:
            cells = [f"{u}={v!r}" for u, v in zip(bad[unit].to_list(), bad[column].to_list())]
            raise DataError(f"non-numeric values: {preview(cells)}", node=node, column=column,
                            fix="correct those cells or leave them empty (empty = missing)")
        values = converted.to_numpy().astype(np.float64, copy=True)
    infinite = np.isinf(values)
    if infinite.any():
        units = table[unit].filter(pl.Series(infinite)).to_list()
        raise DataError("infinite values", node=node, column=column, units=units,
                        fix="replace them with finite numbers or leave them empty (missing)")
    return values


def prepare(framework: Framework, dataset: Dataset, *, pool: Executor | None = None) -> Inputs:
    """Check ``dataset`` against ``framework`` and return the validated :class:`Inputs`.

    ``pool``: threads that copy the checked columns into the matrix, a block of rows each.

    Raises
    ------
    DataError
        Missing unit ids, duplicate units, missing or non-numeric columns, infinite values, an
        all-missing indicator, a zero denominator, values a method cannot take (log of
        non-positive values, fraction of max of negative values), or a constant indicator under
        the ``error`` policy.
    """
    table, unit = dataset.table, dataset.unit
    if unit not in table.columns:
        raise DataError("unit id column not found", column=unit, path=dataset.source,
                        fix=f"choose one of {preview(table.columns, 8)}")
    ids = table[unit]
    if ids.null_count():
        rows = [i + 1 for i, v in enumerate(ids.is_null().to_list()) if v]
        raise DataError(f"unit id missing in data row(s) {preview(rows)}", column=unit, path=dataset.source,
                        fix="give every row a unit id or remove those rows")
    # a count of distinct ids first (10^6 ids: twice as fast as marking the duplicated ones)
    duplicated = [] if ids.n_unique() == ids.len() else \
        ids.filter(ids.is_duplicated()).unique(maintain_order=True).to_list()
    if duplicated:
        period = framework.data.get("period")
        if period in table.columns:  # a panel framework given all its periods at once
            raise DataError(f"duplicate unit ids: these are panel data, one row per unit and {period!r}", column=unit,
                            units=duplicated, path=dataset.source,
                            fix="score every period with cityrank trajectories (engine.panel.score_panel), audit "
                            "one with cityrank audit --edition PERIOD (engine.audit(..., edition=)), or score one "
                            "with engine.panel.load_panel(...).dataset(period)")
        raise DataError("duplicate unit ids", column=unit, units=duplicated, path=dataset.source,
                        fix="keep one row per unit (aggregate or deduplicate first)")
    if table.height == 0:
        raise DataError("the data have no rows", path=dataset.source, fix="check the file")

    missing = [(ind.id, c) for ind in framework.indicators for c in (*ind.source_columns, ind.denominator)
               if c is not None and c not in table.columns]
    if missing:
        node, column = missing[0]
        raise DataError(f"column not found in the data{suggest(column, table.columns)} ({len(missing)} missing in "
                        f"all: {preview([c for _, c in missing])})", node=node, column=column, path=dataset.source,
                        fix="rename the data column or change `column`/`denominator` in the framework")

    n_units, n_ind = table.height, len(framework.indicators)
    raw = np.empty((n_units, n_ind), np.float64)
    if any(ind.denominator for ind in framework.indicators):
        denominators = np.ones((n_units, n_ind), np.float64)
    else:  # 10^6 units x 25 indicators: 200 MB of ones spared
        denominators = np.broadcast_to(np.float64(1.0), (n_units, n_ind))
    cache: dict[str, np.ndarray] = {}

    def column_values(column: str, node: str) -> np.ndarray:
        if column not in cache:
            cache[column] = numeric_column(table, column, unit, node)
        return cache[column]

    columns = []
    for j, ind in enumerate(framework.indicators):
        # checks on the contiguous column; the matrix is filled at the end, a block of rows at a time
        if ind.components:
            column = sum(w * column_values(c, ind.id) for c, w in ind.components.items())
        else:
            column = column_values(ind.column, ind.id)
        if np.isnan(column).all():
            raise DataError("the indicator has no value for any unit", node=ind.id,
                            column=", ".join(ind.source_columns),
                            fix="fill the column or remove the indicator from the framework")
        columns.append(column)
        d = 1.0
        if ind.denominator:
            d = column_values(ind.denominator, ind.id)
            zero = d == 0
            if zero.any():
                raise DataError(f"zero denominator {ind.denominator!r}", node=ind.id, column=ind.denominator,
                                units=ids.filter(pl.Series(zero)).to_list(),
                                fix="correct the denominator or leave it empty (the indicator becomes missing)")
            denominators[:, j] = d
        # x / 1 * 1 is x: no temporaries for an indicator without denominator or scale factor
        values = column if ind.denominator is None and ind.scale_factor == 1 else column / d * ind.scale_factor
        _check_domain(framework, j, values, ids)
        _check_plausible(ind, values, ids)

    def fill(start: int, stop: int) -> None:  # rows start … stop − 1 of every column
        for j, column in enumerate(columns):
            raw[start:stop, j] = column[start:stop]

    over_blocks(n_units, fill, pool)
    groups: dict[str, np.ndarray] = {}
    names: dict[str, list[str]] = {}
    wanted = list(dataset.groups) + [ind.imputation.params["group"] for ind in framework.indicators
                                     if "group" in ind.imputation.params]
    for g in dict.fromkeys(wanted):
        if g not in table.columns:
            raise DataError("group column not found", column=g, path=dataset.source,
                            fix="add the column or change the imputation group / --groups")
        values = table[g].cast(pl.String)
        uniques = values.drop_nulls().unique(maintain_order=True).to_list()
        lookup = {v: k for k, v in enumerate(uniques)}
        groups[g] = values.replace_strict(lookup, default=-1, return_dtype=pl.Int64).fill_null(-1).to_numpy()
        names[g] = uniques
    labels = table[dataset.label] if dataset.label else None
    return Inputs(units=ids, labels=labels, raw=raw, denominators=denominators, groups=groups, group_names=names)


def _check_domain(framework: Framework, j: int, values: np.ndarray, ids: pl.Series) -> None:
    ind = framework.indicators[j]
    if ind.treatment.name != "log" and ind.normalisation.name != "fraction_of_max" and \
            framework.constant_indicator != "error":
        return  # nothing to check (10^6 units x 25 indicators: 0.4 s of copies spared)
    present = values[np.isfinite(values)]
    if ind.treatment.name == "log" and (present <= 0).any():
        bad = ids.filter(pl.Series(np.isfinite(values) & (values <= 0))).to_list()
        raise DataError("log treatment needs values > 0", node=ind.id, column=", ".join(ind.source_columns), units=bad,
                        fix="use treatment skew_kurtosis (its log shifts the values) or none")
    if ind.normalisation.name == "fraction_of_max" and (present * ind.direction < 0).any():
        bad = ids.filter(pl.Series(np.isfinite(values) & (values * ind.direction < 0))).to_list()
        raise DataError("fraction_of_max needs values >= 0 after applying the direction"
                        + (" (direction -1 makes them negative)" if ind.direction < 0 else ""),
                        node=ind.id, column=", ".join(ind.source_columns), units=bad,
                        fix="use minmax or distance_to_max for this indicator")
    if framework.constant_indicator == "error" and present.size and present.min() == present.max():  # O(n), no sort
        raise DataError(f"constant indicator (every unit has {float(present[0])!r})", node=ind.id,
                        column=", ".join(ind.source_columns),
                        fix="remove the indicator, or set defaults.constant_indicator to midpoint or missing")


#: A unit that says "percent", and words that make a percentage a change (which may be negative).
_PERCENT = re.compile(r"^\s*(%|percent|per cent|pct|百分)", re.IGNORECASE)
_CHANGE = re.compile(r"grow|chang|increase|decrease|delta|yoy|增长|增速|变化|变动", re.IGNORECASE)
#: Units that count things (never negative), e.g. "persons", "Number", "patents per firm", "firms (家)".
_COUNT = re.compile(r"^\s*(number|count|persons?|people|firms?|compan(y|ies)|enterprises?|patents?|pieces?|"
                    r"universit(y|ies)|institutes?|events?|papers?)\b|\bnumber of\b|^[^A-Za-z]*[个件人家所项张户]",
                    re.IGNORECASE)


def plausible_range(ind: Indicator) -> tuple[float | None, float | None, str] | None:
    """The range an indicator's value should lie in, and why: the declared ``range``; else [0, 100]
    for a percentage (its ``unit``, or a ``*_pct``/``*_percent`` column read as it is), [-100, open]
    for a percentage change; [0, open] for a count unit; else None (not checked)."""
    if ind.range is not None:
        return (*ind.range, "the range the framework declares")
    unit = ind.unit or ""
    as_is = ind.components is None and ind.denominator is None and ind.scale_factor == 1.0
    named = as_is and re.search(r"(_pct|_percent)$", ind.column or "", re.IGNORECASE)
    if _PERCENT.search(unit) or named:
        why = f"unit {unit!r}" if _PERCENT.search(unit) else f"column {ind.column!r} ends in a percent suffix"
        if _CHANGE.search(" ".join([ind.id, *ind.source_columns, unit, ind.labels.get("en", "")])):
            return -100.0, None, f"a percentage change ({why})"
        return 0.0, 100.0, f"a percentage ({why})"
    if _COUNT.search(unit):
        return 0.0, None, f"a count (unit {unit!r})"
    return None


def _check_plausible(ind: Indicator, values: np.ndarray, ids: pl.Series) -> None:
    """Warn (DataQualityWarning) about values outside :func:`plausible_range`, naming the units."""
    rule = plausible_range(ind)
    if rule is None:
        return
    lo, hi, why = rule
    outside = np.zeros(values.shape, bool)
    if lo is not None:
        outside |= values < lo
    if hi is not None:
        outside |= values > hi
    if not outside.any():
        return
    cells = [f"{u}={v:g}" for u, v in zip(ids.filter(pl.Series(outside)).to_list(), values[outside], strict=True)]
    shown = f"[{'open' if lo is None else f'{lo:g}'}, {'open' if hi is None else f'{hi:g}'}]"
    warnings.warn(
        f"node {ind.id!r} / column {', '.join(ind.source_columns)!r}: {len(cells)} value(s) outside the plausible "
        f"range {shown} of {why}: {preview(cells)}. Check those cells (a unit or decimal-point error?); if the "
        "values are right, declare the indicator's `range: [low, high]` (null = open) in the framework",
        DataQualityWarning, stacklevel=3)
