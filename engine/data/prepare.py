"""Validate a dataset against a framework and extract the arrays the pipeline works on.

Every check runs before any computation; the first failure raises a :class:`DataError` that names
the column (and node), the offending units with their values, and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ..errors import DataError, preview
from ..schema import Framework
from .load import Dataset

__all__ = ["Inputs", "prepare"]


@dataclass(frozen=True)
class Inputs:
    """Validated arrays for one (framework, dataset) pair; rows are units, in file order."""

    units: pl.Series  #: Unit ids (original dtype).
    labels: pl.Series | None  #: Display names, if the dataset has a label column.
    raw: np.ndarray  #: float64 (n_units, n_indicators), NaN = missing; columns in framework order.
    denominators: np.ndarray  #: float64 (n_units, n_indicators); 1.0 where an indicator has none.
    groups: dict[str, np.ndarray]  #: group column -> int64 codes (n_units,), -1 = missing.
    group_names: dict[str, list[str]]  #: group column -> the value behind each code.

    @property
    def n_units(self) -> int:
        return self.raw.shape[0]


def _numeric_column(table: pl.DataFrame, column: str, unit: str, node: str | None) -> np.ndarray:
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
    infinite = ~np.isfinite(values) & ~np.isnan(values)
    if infinite.any():
        units = table[unit].filter(pl.Series(infinite)).to_list()
        raise DataError("infinite values", node=node, column=column, units=units,
                        fix="replace them with finite numbers or leave them empty (missing)")
    return values


def prepare(framework: Framework, dataset: Dataset) -> Inputs:
    """Check ``dataset`` against ``framework`` and return the validated :class:`Inputs`.

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
    duplicated = ids.filter(ids.is_duplicated()).unique(maintain_order=True).to_list()
    if duplicated:
        raise DataError("duplicate unit ids", column=unit, units=duplicated, path=dataset.source,
                        fix="keep one row per unit (aggregate or deduplicate first)")
    if table.height == 0:
        raise DataError("the data have no rows", path=dataset.source, fix="check the file")

    missing = [(ind.id, c) for ind in framework.indicators for c in (*ind.source_columns, ind.denominator)
               if c is not None and c not in table.columns]
    if missing:
        node, column = missing[0]
        raise DataError(f"column not found in the data ({len(missing)} missing in all: "
                        f"{preview([c for _, c in missing])})", node=node, column=column, path=dataset.source,
                        fix="rename the data column or change `column`/`denominator` in the framework")

    n_units, n_ind = table.height, len(framework.indicators)
    raw = np.empty((n_units, n_ind), np.float64)
    denominators = np.ones((n_units, n_ind), np.float64)
    cache: dict[str, np.ndarray] = {}

    def column_values(column: str, node: str) -> np.ndarray:
        if column not in cache:
            cache[column] = _numeric_column(table, column, unit, node)
        return cache[column]

    for j, ind in enumerate(framework.indicators):
        if ind.components:
            raw[:, j] = sum(w * column_values(c, ind.id) for c, w in ind.components.items())
        else:
            raw[:, j] = column_values(ind.column, ind.id)
        if np.isnan(raw[:, j]).all():
            raise DataError("the indicator has no value for any unit", node=ind.id,
                            column=", ".join(ind.source_columns),
                            fix="fill the column or remove the indicator from the framework")
        if ind.denominator:
            d = column_values(ind.denominator, ind.id)
            zero = d == 0
            if zero.any():
                raise DataError(f"zero denominator {ind.denominator!r}", node=ind.id, column=ind.denominator,
                                units=ids.filter(pl.Series(zero)).to_list(),
                                fix="correct the denominator or leave it empty (the indicator becomes missing)")
            denominators[:, j] = d
        _check_domain(framework, j, raw[:, j] / denominators[:, j] * ind.scale_factor, ids)

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
        groups[g] = np.array([lookup.get(v, -1) if v is not None else -1 for v in values.to_list()], np.int64)
        names[g] = uniques
    labels = table[dataset.label] if dataset.label else None
    return Inputs(units=ids, labels=labels, raw=np.ascontiguousarray(raw),
                  denominators=np.ascontiguousarray(denominators), groups=groups, group_names=names)


def _check_domain(framework: Framework, j: int, values: np.ndarray, ids: pl.Series) -> None:
    ind = framework.indicators[j]
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
    if framework.constant_indicator == "error" and len(np.unique(present)) == 1:
        raise DataError(f"constant indicator (every unit has {float(present[0])!r})", node=ind.id,
                        column=", ".join(ind.source_columns),
                        fix="remove the indicator, or set defaults.constant_indicator to midpoint or missing")
