"""Trajectories: every period of a panel scored with one framework, and what changed between periods."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .. import __version__
from ..display import ResultShape, manifest_summary
from ..errors import DataError, DataQualityWarning
from ..groups import compare_editions
from ..pipeline import RANK_SUFFIX, ScoreResult, score
from ..schema import Framework
from .load import Panel, load_panel, period_years

__all__ = ["Trajectories", "score_panel"]

#: Status of a unit between two periods (:meth:`Trajectories.change`).
_STATUS = {"both": "both", "new": "entered", "dropped": "left"}


@dataclass(frozen=True, repr=False)
class Trajectories(ResultShape):
    """Scores and ranks of every unit and node in every period of a panel (:func:`score_panel`)."""

    panel: Panel
    framework: Framework  #: The framework every period was scored with (normalisation as chosen).
    results: dict[Any, ScoreResult]  #: period -> the period's scores.
    manifest: dict[str, Any]

    @property
    def periods(self) -> tuple:
        return self.panel.periods

    @property
    def index_id(self) -> str:
        return self.framework.root.id

    @property
    def units(self) -> pl.DataFrame:
        """One row per unit and period: unit [, label, groups], period, then every node's score and rank."""
        unit, period = self.panel.unit, self.panel.period
        dtype = self.panel.table[period].dtype
        tables = [result.table.with_columns(pl.lit(p, dtype=dtype).alias(period)) for p, result in self.results.items()]
        table = pl.concat(tables, how="diagonal_relaxed")
        first = [unit, *([self.panel.label] if self.panel.label else []), *self.panel.groups, period]
        return table.select(*first, pl.exclude(first))

    def change(self, a: Any, b: Any, node: str | None = None) -> pl.DataFrame:
        """Rank and score change of every unit from period ``a`` to ``b`` (``node``: default the index).

        ``rank_change`` = rank in ``a`` − rank in ``b`` (positive: moved up); ``status`` is
        ``both``, ``entered`` (only in ``b``) or ``left`` (only in ``a``): no unit is dropped silently."""
        node = self._node(node)
        old, new = (self.results[self.panel.check_period(p)] for p in (a, b))
        table = compare_editions(old.table, new.table, self.panel.unit, node)
        table = table.with_columns(pl.col("status").replace_strict(_STATUS)).rename(
            {"rank_old": f"rank_{a}", "rank_new": f"rank_{b}", "score_old": f"score_{a}", "score_new": f"score_{b}"})
        return self._named(table)

    def trends(self, node: str | None = None) -> pl.DataFrame:
        """Per unit, over the periods it has a score in: ``n_periods``, ``first``/``last`` period, the
        score and rank then, ``cagr`` = (last / first)^(1 / years) − 1 (null when a score is <= 0 or
        there is a single period), ``slope`` of the score per year and ``rank_slope`` (least squares;
        negative rank slope = moving up), and ``missing`` = the periods between first and last
        the unit is absent from (or has no score in)."""
        node = self._node(node)
        unit, period = self.panel.unit, self.panel.period
        long = (self.units.select(unit, period, pl.col(node).alias("score"), pl.col(f"{node}{RANK_SUFFIX}")
                                  .alias("rank")).filter(pl.col("score").is_not_null()).sort(unit, period))
        position = {p: k for k, p in enumerate(self.periods)}
        years = dict(zip(self.periods, period_years(self.periods).tolist(), strict=True))
        rows = []
        for (uid,), group in long.group_by(unit, maintain_order=True):
            when = group[period].to_list()
            t = np.array([years[p] for p in when])
            score_, rank_ = group["score"].to_numpy(), group["rank"].to_numpy().astype(np.float64)
            span = t[-1] - t[0]
            cagr = (score_[-1] / score_[0]) ** (1.0 / span) - 1.0 if span > 0 and score_[0] > 0 and score_[-1] > 0 \
                else None
            slope, rank_slope = (_slope(t, score_), _slope(t, rank_)) if len(t) > 1 else (None, None)
            gaps = [str(p) for p in self.periods[position[when[0]]:position[when[-1]] + 1] if p not in set(when)]
            rows.append((uid, len(when), when[0], when[-1], float(score_[0]), float(score_[-1]), int(rank_[0]),
                         int(rank_[-1]), cagr, slope, rank_slope, ", ".join(gaps)))
        schema = {unit: long[unit].dtype, "n_periods": pl.Int64, "first": long[period].dtype,
                  "last": long[period].dtype, "score_first": pl.Float64, "score_last": pl.Float64,
                  "rank_first": pl.Int64, "rank_last": pl.Int64, "cagr": pl.Float64, "slope": pl.Float64,
                  "rank_slope": pl.Float64, "missing": pl.String}
        return self._named(pl.DataFrame(rows, schema=schema, orient="row"))

    @property
    def events(self) -> pl.DataFrame:
        """Units that entered or left the panel: ``period``, ``unit``, ``event`` (``entered``: present in
        this period, not in the previous one; ``left``: present in the previous one, not in this)."""
        unit, period = self.panel.unit, self.panel.period
        rows = [(b, u, event) for a, b in zip(self.periods, self.periods[1:], strict=False)
                for event, found in (("entered", self.panel.entered(a, b)), ("left", self.panel.left(a, b)))
                for u in found]
        return pl.DataFrame(rows, schema={period: self.panel.table[period].dtype, unit: self.panel.table[unit].dtype,
                                          "event": pl.String}, orient="row")

    def _node(self, node: str | None) -> str:
        node = node or self.index_id
        if node not in self.framework.node_ids:
            raise DataError(f"unknown node {node!r}", node=node, path=self.framework.path,
                            fix=f"choose one of {', '.join(self.framework.node_ids[-5:])} (the framework's node ids)")
        return node

    def _named(self, table: pl.DataFrame) -> pl.DataFrame:
        """``table`` with the units' display name (if the panel has one) after the unit id."""
        label, unit = self.panel.label, self.panel.unit
        if not label:
            return table
        names = self.panel.table.select(unit, label).unique(unit, keep="last", maintain_order=True)
        joined = table.join(names, on=unit, how="left", maintain_order="left")
        return joined.select(unit, label, pl.exclude(unit, label))

    def summary(self) -> dict[str, Any]:
        periods = self.periods
        return {**manifest_summary(self.manifest), "periods": f"{periods[0]}–{periods[-1]} ({len(periods)})",
                "normalisation": self.manifest["normalisation"]}

    def output_tables(self) -> dict[str, pl.DataFrame]:
        """``units`` (every unit, period and node), ``trends`` and ``events`` of the index, and the change
        between consecutive periods (``changes``: one block per pair, ``from``/``to`` columns); written
        with the manifest by :meth:`write` (a folder of Parquet or CSV files, or one ``.xlsx``)."""
        changes = [self.change(a, b).rename({f"rank_{a}": "rank_from", f"rank_{b}": "rank_to",
                                             f"score_{a}": "score_from", f"score_{b}": "score_to"})
                   .select(pl.lit(str(a)).alias("from"), pl.lit(str(b)).alias("to"), pl.all())
                   for a, b in zip(self.periods, self.periods[1:], strict=False)]
        return {"units": self.units, "trends": self.trends(), "events": self.events, "changes": pl.concat(changes)}


def _slope(t: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope Σ(t − t̄)(y − ȳ) / Σ(t − t̄)² (exactly 0 for a series that comes back to its value
    symmetrically, unlike a fitted polynomial)."""
    dt = t - t.mean()
    return float((dt * (y - y.mean())).sum() / (dt * dt).sum())


def score_panel(framework: Framework | str | Path | Panel, data=None, *, normalisation: str = "period",
                period: str | None = None, unit: str | None = None, files=None) -> Trajectories:
    """Score every period of a panel with one framework.

    ``framework`` is a framework (name, file or :class:`Framework`) and ``data``/``period``/``unit``/
    ``files`` are read by :func:`load_panel`; or ``framework`` is a loaded :class:`Panel`.
    ``normalisation``: ``"period"`` (each period on its own) or ``"panel"`` (parameters fitted on
    every period, so scores compare over time: :meth:`Panel.framework`).

    Implausible values were reported once by :func:`load_panel` (by unit and period); scoring a
    period does not repeat them.
    """
    panel = framework if isinstance(framework, Panel) else load_panel(framework, data, period=period, unit=unit,
                                                                      files=files)
    scored = panel.framework(normalisation)
    results = {}
    for p in panel.periods:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results[p] = score(scored, panel.dataset(p))
        for warning in caught:  # said once per period, with the period; implausible values: said by load_panel
            if not issubclass(warning.category, DataQualityWarning):
                warnings.warn(f"{panel.period} {p}: {warning.message}", warning.category, stacklevel=2)
    counts = {str(p): r.table.height for p, r in results.items()}
    manifest = {
        "analysis": "trajectories", "engine": __version__,
        "framework": {"id": scored.id, "digest": scored.digest, "path": scored.path},
        "data": {"source": panel.source, "unit": panel.unit, "period": panel.period,
                 "n_units": panel.table[panel.unit].n_unique(), "n_rows": panel.table.height},
        "periods": [str(p) for p in panel.periods], "units_per_period": counts, "normalisation": normalisation,
        "normalisation_parameters": {i.id: i.normalisation.to_dict() for i in scored.indicators}
        if normalisation == "panel" else None,
        "panel_notes": panel.notes,
    }
    return Trajectories(panel=panel, framework=scored, results=results, manifest=manifest)
