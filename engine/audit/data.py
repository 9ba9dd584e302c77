"""Audit section "data": availability, zeros, unique values, skewness/kurtosis outliers, plausible
ranges, and the correlation of every indicator with every denominator (COINr ``get_stats``,
``get_data_avail``, ``get_denom_corr``).  See docs/audit.md for the definitions."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from ..data.load import suggest
from ..data.prepare import numeric_column, plausible_range
from ..errors import SchemaError
from ..stages import kurtosis, skewness
from .result import flag
from .structure import check_stage, indicators_below, pair_statistics

__all__ = ["OPTIONS", "section"]

#: Option → default (COINr ``get_stats``: t_skew, t_kurt, t_avail, t_zero, t_unq; ``get_denom_corr``: cor_thresh).
OPTIONS: dict[str, Any] = {
    "data_stage": "denominated",  #: values checked: raw | denominated (default) | treated | normalised
    "skew": 2.0,  #: outlier flag when |skewness| > skew ...
    "kurtosis": 3.5,  #: ... and excess kurtosis > kurtosis
    "min_availability": 0.65,  #: indicator or unit availability below this is flagged
    "max_zeros": 0.5,  #: share of zeros above this is flagged
    "min_unique": 0.5,  #: share of distinct values below this is flagged
    "denominator_correlation": 0.6,  #: |r| of an indicator with a denominator above this is flagged
    "denominators": (),  #: further data columns to treat as denominators (besides the framework's)
}
SECTION = "data"


def check(options: dict[str, Any]) -> None:
    """Refuse bad options before scoring."""
    check_stage(options["data_stage"], "data_stage")
    if isinstance(options["denominators"], str):
        options["denominators"] = [options["denominators"]]


def _denominators(options: dict[str, Any], framework) -> list[str]:
    return list(dict.fromkeys([*(i.denominator for i in framework.indicators if i.denominator),
                               *options["denominators"]]))


def check_data(options: dict[str, Any], framework, dataset) -> None:
    """Refuse, before scoring, a ``denominators`` column the data do not have."""
    for name in _denominators(options, framework):
        if name not in dataset.table.columns:
            raise SchemaError(f"denominator column {name!r} not found in the data", node=None,
                              fix="choose data columns for the denominators option"
                              f"{suggest(name, dataset.table.columns)}")


def stage_values(result, stage: str) -> tuple[np.ndarray, pl.Series]:
    """The indicator values (n_units, n_indicators) of a pipeline stage and the unit ids of its rows:
    ``raw``/``denominated`` hold every unit of the data (missing values as read), ``treated`` and
    ``normalised`` the units kept by screening (after imputation)."""
    st = result.stages
    units = st.inputs.units
    if stage in ("raw", "denominated"):
        return (st.inputs.raw if stage == "raw" else st.denominated), units
    return (st.treated if stage == "treated" else st.normalised), units.filter(pl.Series(st.kept))


def _availability(result, x: np.ndarray, units: pl.Series, threshold: float) -> tuple[dict, list]:
    fw, inputs = result.framework, result.stages.inputs
    present = ~np.isnan(x)
    flags = []
    per_unit = {"unit": units, "n_available": present.sum(axis=1), "availability": present.mean(axis=1)}
    for agg in fw.aggregates:
        cols = indicators_below(fw, agg.id)
        per_unit[f"availability_{agg.id}"] = present[:, cols].mean(axis=1)
    by_unit = pl.DataFrame(per_unit)
    low = by_unit.filter(pl.col("availability") < threshold)
    if low.height:
        flags.append(flag(SECTION, "warning", f"{low.height} unit(s) have less than {threshold:.0%} of the indicator "
                          "values", units=low["unit"].cast(pl.String).to_list()))
    rows = []
    for name, codes in inputs.groups.items():
        if codes.shape[0] != x.shape[0]:
            codes = codes[result.stages.kept]
        for code, value in [*enumerate(inputs.group_names[name]), (-1, None)]:
            members = codes == code
            if not members.any():
                continue
            share = present[members].mean(axis=0)
            j = int(np.argmin(share))
            rows.append({"group": name, "value": value, "n_units": int(members.sum()),
                         "availability": float(present[members].mean()),
                         "lowest_indicator": fw.indicators[j].id, "lowest_availability": float(share[j])})
    by_group = pl.DataFrame(rows, schema={"group": pl.String, "value": pl.String, "n_units": pl.Int64,
                                          "availability": pl.Float64, "lowest_indicator": pl.String,
                                          "lowest_availability": pl.Float64})
    return {"availability_units": by_unit, "availability_groups": by_group}, flags


def _indicator_stats(result, x: np.ndarray, units: pl.Series, opts: dict) -> tuple[pl.DataFrame, list]:
    fw = result.framework
    rows, flags = [], []
    for j, ind in enumerate(fw.indicators):
        col = x[:, j]
        present = ~np.isnan(col)
        values = col[present]
        n = values.size
        unique = int(np.unique(values).size)
        skew, kurt = skewness(col), kurtosis(col)
        outlier = bool(abs(skew) > opts["skew"] and kurt > opts["kurtosis"])
        row = {"indicator": ind.id, "parent": ind.parent, "n_units": col.size, "n_available": n,
               "availability": n / col.size, "min": np.min(values) if n else np.nan,
               "max": np.max(values) if n else np.nan, "mean": np.mean(values) if n else np.nan,
               "median": np.median(values) if n else np.nan, "sd": np.std(values, ddof=1) if n > 1 else np.nan,
               "zeros": int((values == 0).sum()), "zero_share": float((values == 0).mean()) if n else np.nan,
               "unique": unique, "unique_share": unique / n if n else np.nan, "skewness": skew, "kurtosis": kurt,
               "outlier": outlier, "outside_range": 0}
        column = ", ".join(ind.source_columns)
        if row["availability"] < opts["min_availability"]:
            flags.append(flag(SECTION, "warning", f"only {row['availability']:.0%} of the units have a value",
                              node=ind.id, column=column))
        if n and row["zero_share"] > opts["max_zeros"]:
            flags.append(flag(SECTION, "note", f"{row['zero_share']:.0%} of the values are zero", node=ind.id,
                              column=column))
        if unique == 1:
            flags.append(flag(SECTION, "warning", f"constant indicator (every unit has {values[0]:g}): it cannot "
                              "separate units and its correlations are undefined", node=ind.id, column=column))
        elif n and row["unique_share"] < opts["min_unique"]:
            flags.append(flag(SECTION, "note", f"only {unique} distinct values among {n} ({row['unique_share']:.0%})",
                              node=ind.id, column=column))
        if outlier:
            flags.append(flag(SECTION, "warning", f"outliers: skewness {skew:.2f} and kurtosis {kurt:.2f} exceed "
                              f"|{opts['skew']:g}| and {opts['kurtosis']:g}"
                              + (" (the framework treats it)" if ind.treatment.name != "none" else ""),
                              node=ind.id, column=column))
        rule = plausible_range(ind)  # of the value the framework defines: denominated and scaled
        if rule is not None and (opts["data_stage"] == "denominated" or
                                 (opts["data_stage"] == "raw" and ind.denominator is None)):
            lo, hi, why = rule
            outside = present & (((col < lo) if lo is not None else False) | ((col > hi) if hi is not None else False))
            row["outside_range"] = int(outside.sum())
            if outside.any():
                shown = f"[{'open' if lo is None else f'{lo:g}'}, {'open' if hi is None else f'{hi:g}'}]"
                flags.append(flag(SECTION, "warning", f"{int(outside.sum())} value(s) outside the plausible range "
                                  f"{shown} of {why}", node=ind.id, column=column,
                                  units=units.filter(pl.Series(outside)).cast(pl.String).to_list()))
        rows.append(row)
    return pl.DataFrame(rows), flags


def _denominator_correlations(result, opts: dict) -> tuple[pl.DataFrame, list]:
    """Pearson and Spearman correlations of every indicator (as the index uses it: denominated and
    scaled, before imputation, times its direction) with every denominator column (the framework's
    and ``denominators``)."""
    fw, dataset = result.framework, result.dataset
    names = _denominators(opts, fw)
    rows, flags = [], []
    for name in names:
        d = numeric_column(dataset.table, name, dataset.unit, None)
        for j, ind in enumerate(fw.indicators):
            stats = pair_statistics(result.stages.denominated[:, j] * ind.direction, d)
            rows.append({"indicator": ind.id, "denominator": name, "denominated": ind.denominator == name, **stats})
            r = stats["pearson"]
            if np.isfinite(r) and abs(r) > opts["denominator_correlation"]:
                flags.append(flag(SECTION, "note", f"correlates with denominator {name!r} (r = {r:.2f}): the "
                                  "indicator may measure size rather than performance", node=ind.id, column=name))
    schema = {"indicator": pl.String, "denominator": pl.String, "denominated": pl.Boolean, "n": pl.Int64,
              "pearson": pl.Float64, "pearson_p": pl.Float64, "spearman": pl.Float64, "spearman_p": pl.Float64}
    return pl.DataFrame(rows, schema=schema), flags


def section(result, options: dict[str, Any]) -> tuple[dict[str, pl.DataFrame], list[dict]]:
    """Tables ``availability_units``, ``availability_groups``, ``indicators``, ``denominators`` and
    the flags of the data section."""
    x, units = stage_values(result, options["data_stage"])
    tables, flags = _availability(result, x, units, options["min_availability"])
    tables["indicators"], more = _indicator_stats(result, x, units, options)
    flags += more
    tables["denominators"], more = _denominator_correlations(result, options)
    return tables, flags + more
