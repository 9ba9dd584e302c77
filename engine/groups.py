"""Group aggregation (provinces → regions, cities → provinces) and edition comparison.

Both work on result tables (``ScoreResult.table``) or any Polars table with the same columns.
Groups are ranked by the engine's ranking kernel (:mod:`engine.kernels.rank`): a missing or
non-finite aggregate gets no rank.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from .errors import DataError, preview
from .stages.rank import rank as rank_stage

__all__ = ["aggregate_groups", "compare_editions"]

_HOW = {"sum": pl.Expr.sum, "mean": pl.Expr.mean, "median": pl.Expr.median, "max": pl.Expr.max, "min": pl.Expr.min}


def aggregate_groups(table: pl.DataFrame, group: str, columns: Sequence[str], *, how: str = "sum") -> pl.DataFrame:
    """Aggregate unit scores by a group column, then rank the groups.

    Parameters
    ----------
    table
        One row per unit, with ``group`` and the score ``columns``.
    group
        The group column (e.g. ``province`` or an economic-circle column); units whose group is
        missing are left out.
    columns
        Score columns to aggregate (e.g. the index and its dimensions).
    how
        ``sum`` (e.g. an economic circle's total, as seed 001 publishes), ``mean``, ``median``,
        ``max`` or ``min``.

    Returns
    -------
    polars.DataFrame
        ``group``, ``n_units``, then per column its aggregate and ``<column>_rank`` (descending,
        ties share the minimum rank), sorted by the first column's rank.

    Raises
    ------
    DataError
        Unknown ``how`` or missing columns.
    """
    if how not in _HOW:
        raise DataError(f"unknown group aggregation {how!r}", fix=f"use one of {', '.join(_HOW)}")
    missing = [c for c in (group, *columns) if c not in table.columns]
    if missing:
        raise DataError(f"column(s) {preview(missing)} not in the table", column=missing[0],
                        fix=f"choose among {preview(table.columns, 10)}")
    grouped = (table.filter(pl.col(group).is_not_null())
               .group_by(group, maintain_order=True)
               .agg(pl.len().alias("n_units"), *[_HOW[how](pl.col(c)).alias(c) for c in columns]))
    values = grouped.select(pl.col(c).cast(pl.Float64) for c in columns).to_numpy()  # null → NaN
    ranked = rank_stage(values)  # the ranking kernel: descending competition ranks, missing stays missing
    ranks = [pl.Series(f"{c}_rank", ranked[:, k]).fill_nan(None).cast(pl.Int32) for k, c in enumerate(columns)]
    ordered = [group, "n_units", *[x for c in columns for x in (c, f"{c}_rank")]]
    return grouped.with_columns(ranks).select(ordered).sort(f"{columns[0]}_rank", nulls_last=True,
                                                             maintain_order=True)


def compare_editions(old: pl.DataFrame, new: pl.DataFrame, unit: str, node: str) -> pl.DataFrame:
    """Rank and score change of every unit between two editions of a ranking.

    ``old`` and ``new`` are result tables of the same framework (e.g. two data years).  Returns
    ``unit``, ``rank_old``, ``rank_new``, ``rank_change`` (= rank_old − rank_new: positive means
    the unit moved up), ``score_old``, ``score_new``, ``score_change`` and ``status`` (``both``,
    ``new`` = only in the new edition, ``dropped`` = only in the old one), sorted by the new rank.
    """
    for name, table in (("old", old), ("new", new)):
        missing = [c for c in (unit, node, f"{node}_rank") if c not in table.columns]
        if missing:
            raise DataError(f"the {name} edition lacks column(s) {preview(missing)}", column=missing[0],
                            fix="compare result tables of the same framework (cityrank score output)")

    def pick(table: pl.DataFrame, suffix: str) -> pl.DataFrame:
        return table.select(pl.col(unit), pl.col(f"{node}_rank").alias(f"rank_{suffix}"),
                            pl.col(node).alias(f"score_{suffix}"))

    joined = pick(old, "old").join(pick(new, "new"), on=unit, how="full", coalesce=True)
    return (joined.with_columns(
        (pl.col("rank_old") - pl.col("rank_new")).alias("rank_change"),
        (pl.col("score_new") - pl.col("score_old")).alias("score_change"),
        pl.when(pl.col("rank_old").is_null() & pl.col("score_old").is_null()).then(pl.lit("new"))
        .when(pl.col("rank_new").is_null() & pl.col("score_new").is_null()).then(pl.lit("dropped"))
        .otherwise(pl.lit("both")).alias("status"))
        .select(unit, "rank_old", "rank_new", "rank_change", "score_old", "score_new", "score_change", "status")
        .sort("rank_new", nulls_last=True, maintain_order=True))
