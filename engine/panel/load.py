"""Panel data: the same units observed in several periods (editions), checked once and served per period.

:func:`load_panel` reads one table with a unit and a period column, or one file per edition, and
checks the whole panel before any work: duplicate unit-periods, a period with a single unit, a
unit column whose type changes between files, a period column that is not integer- or date-like.
It then applies what the framework's ``data`` section declares (``aliases``: old or misspelt unit
ids renamed; ``zero_missing``: columns in which 0 means "not reported"), fills the gaps of the
indicators imputed from the unit's own series (``locf``, ``interpolate``) and validates the whole
panel at once, so that implausible values are reported by unit *and* period.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ..data import Dataset, load_data, prepare
from ..data.load import read_table
from ..errors import DataError, DataQualityWarning, EngineWarning, ImputationWarning, SchemaError, preview
from ..schema import DATA_DRIVEN_WEIGHTING, Framework, framework_from_dict, load_framework
from ..stages.impute import SERIES_METHODS, fill_series

__all__ = ["NORMALISATIONS", "Panel", "check_normalisation", "load_edition", "load_panel", "period_years",
           "said_by_load_panel"]

#: The two ways of normalising a panel: each period on its own, or with parameters fitted on all periods.
NORMALISATIONS = ("period", "panel")
#: Normalisation methods with a fixed-parameter form (goalposts) that ``normalisation="panel"`` fits
#: on the whole panel; ``goalposts`` is fixed already.
_PANEL_FORMS = ("minmax", "distance_to_max", "fraction_of_max", "distance_to_target", "goalposts")


def check_normalisation(normalisation: Any, path: str | None = None) -> str:
    """``normalisation`` if it is one of :data:`NORMALISATIONS`, else a SchemaError naming them."""
    if normalisation not in NORMALISATIONS:
        raise SchemaError(f"unknown normalisation {normalisation!r}: normalisation must be one of "
                          f"{' or '.join(map(repr, NORMALISATIONS))}", path=path,
                          fix="'period': each period normalised on its own; 'panel': parameters fitted on the "
                          "whole panel")
    return normalisation


@contextmanager
def said_by_load_panel() -> Iterator[None]:
    """Score periods of a loaded panel in this context: :func:`load_panel` said their implausible
    values already, by unit and period, so a period's own check of them (:class:`DataQualityWarning`)
    is not said again."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        yield


def period_years(periods: Sequence[Any]) -> np.ndarray:
    """Periods as years on a continuous scale: an integer period is a year; a date is its year plus
    the elapsed fraction (days / 365.25), for interpolation, slopes and growth rates."""
    out = []
    for p in periods:
        if isinstance(p, dt.date):
            p = p.date() if isinstance(p, dt.datetime) else p
            out.append(p.year + (p - dt.date(p.year, 1, 1)).days / 365.25)
        else:
            out.append(float(p))
    return np.asarray(out, np.float64)


@dataclass(frozen=True)
class Panel:
    """A validated panel: one row per unit and period, for one framework.

    Build it with :func:`load_panel`.  ``table`` holds the data as scored (aliases applied, zeros
    that mean missing set to missing, series imputation filled)."""

    table: pl.DataFrame  #: Every row: unit, period, label, groups and the data columns.
    unit: str  #: Unit id column.
    period: str  #: Period column (integers, e.g. years, or dates).
    source_framework: Framework  #: The framework as given (series imputation methods included).
    label: str | None = None
    groups: tuple[str, ...] = ()
    source: str | None = None  #: Where the data came from (path, shipped name, or the files).
    #: What loading did: ``aliases`` (old id -> [id, periods]), ``zero_missing`` (column -> count),
    #: ``imputed`` (indicator -> {method, filled, left}), ``implausible`` (warning texts).
    notes: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def periods(self) -> tuple:
        """The periods, in time order (found once per panel: the table does not change)."""
        return tuple(self.table[self.period].unique().sort().to_list())

    def check_period(self, period: Any, name: str | None = None) -> Any:
        """The panel's period ``period`` (or whose text is ``period``, as a command line gives it:
        ``"2012"`` for 2012), else a DataError naming the periods it has (and ``name``, e.g.
        ``"start"``, the role of the period asked for)."""
        if period in self.periods:
            return period
        by_text = {str(p): p for p in self.periods}
        if str(period) in by_text:
            return by_text[str(period)]
        what = f"unknown period {period!r}; the panel" if name is None else \
            f"{name} period {period!r} is not in the panel, which"
        raise DataError(f"{what} has {preview(self.periods, 12)}", column=self.period, path=self.source,
                        fix="ask for one of those periods")

    def units_in(self, period: Any) -> list:
        """Unit ids present in ``period`` (in data order)."""
        return self._rows(self.check_period(period))[self.unit].to_list()

    def _rows(self, period: Any) -> pl.DataFrame:
        """The rows of ``period``, a period checked already (:meth:`check_period`)."""
        return self.table.filter(pl.col(self.period) == period)

    def dataset(self, period: Any) -> Dataset:
        """The rows of ``period`` as a :class:`~engine.data.Dataset` (what :func:`engine.score` takes
        with :meth:`framework`)."""
        period = self.check_period(period)
        return Dataset(table=self._rows(period), unit=self.unit, groups=self.groups, label=self.label,
                       source=f"{self.source} [{self.period} = {period}]", meta={"panel_period": period})

    def entered(self, a: Any, b: Any) -> list:
        """Units present in period ``b`` but not in ``a``."""
        before = set(self.units_in(a))
        return [u for u in self.units_in(b) if u not in before]

    def left(self, a: Any, b: Any) -> list:
        """Units present in period ``a`` but not in ``b``."""
        after = set(self.units_in(b))
        return [u for u in self.units_in(a) if u not in after]

    def framework(self, normalisation: str = "period") -> Framework:
        """The framework to score each period with.

        Indicators imputed from the unit's series (``locf``/``interpolate``) were filled by
        :func:`load_panel`; here their imputation is ``none``.  ``normalisation="period"``
        normalises every period on its own (scores compare units within a period);
        ``"panel"`` fixes each indicator's normalisation parameters on the whole panel, so that a
        unit with unchanged data keeps its normalised values in every period (COINr's panel
        goalposts): ``minmax`` with output range [0, s] and ``distance_to_max`` become
        ``goalposts`` at the panel's minimum and maximum (of the treated values);
        ``fraction_of_max`` goalposts [0, panel max]; ``distance_to_target`` (capped) goalposts
        [panel min, target]; ``goalposts`` stay.  ``zscore``, ``rank``, ``borda``,
        ``percentile``, an uncapped target and a minmax range not starting at 0 have no
        fixed-parameter form among the methods and are refused (:class:`SchemaError`).
        Steps fitted on each period's own data would break the comparison and are refused under
        ``"panel"`` too: ``skew_kurtosis`` treatment, data-driven weights (entropy, critic, pca) and
        ``rescale: top``.  Mean/median imputation still uses the period's units."""
        check_normalisation(normalisation, path=self.source_framework.path)
        document = _plain_document(self.source_framework.document)
        nodes = {n["id"]: n for n in document["nodes"]}
        for ind in self.source_framework.indicators:
            if ind.imputation.name in SERIES_METHODS:
                nodes[ind.id]["imputation"] = {"method": "none"}
        if normalisation == "panel":
            refused = [f"{i.id} ({_why_no_panel_form(i)})" for i in self.source_framework.indicators
                       if _why_no_panel_form(i)]
            if refused:
                raise SchemaError(f"no fixed-parameter (panel) form of the normalisation of {preview(refused)}",
                                  node=refused[0].split(" ")[0], path=self.source_framework.path,
                                  fix="use minmax (range [0, s]), goalposts, distance_to_max, fraction_of_max or a "
                                  "capped distance_to_target for those indicators, or normalisation='period'")
            _check_fixed_elsewhere(self.source_framework)
            low, high = self._treated_range(framework_from_dict(document, path=self.source_framework.path))
            for j, ind in enumerate(self.source_framework.indicators):
                posts = _panel_goalposts(ind, low[j], high[j])
                if posts is not None:
                    nodes[ind.id]["normalisation"] = posts
        framework = framework_from_dict(document, path=self.source_framework.path)
        return framework

    def _treated_range(self, framework: Framework) -> tuple[np.ndarray, np.ndarray]:
        """Per indicator, the smallest and largest treated value over every period (NaN if none)."""
        from ..pipeline import run_stages

        treated = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", EngineWarning)  # said by load_panel, or by scoring each period
            for period in self.periods:
                treated.append(run_stages(framework, self.dataset(period), up_to="treat").treated)
        stacked = np.vstack(treated)
        finite = np.where(np.isfinite(stacked), stacked, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: NaN
            return np.nanmin(finite, axis=0), np.nanmax(finite, axis=0)


def _plain_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """A mutable deep copy of a framework document (mappings and lists as plain dicts/lists)."""
    if isinstance(document, Mapping):
        return {k: _plain_document(v) for k, v in document.items()}
    if isinstance(document, list | tuple):
        return [_plain_document(v) for v in document]
    return document


def _check_fixed_elsewhere(framework: Framework) -> None:
    """Refuse, for panel normalisation, the other steps fitted on each period's own data: scores would
    not compare over time although the normalisation does."""
    fitted = [f"{i.id}: treatment skew_kurtosis (winsorised on the values of each period)" for i in framework.indicators
              if i.treatment.name == "skew_kurtosis"]
    fitted += [f"{a.id}: {a.weighting.name} weights (from the data of each period)" for a in framework.aggregates
               if a.weighting.name in DATA_DRIVEN_WEIGHTING]
    if framework.rescale.name == "top":
        fitted.append(f"{framework.root.id}: rescale top (divides by the best score of each period)")
    if fitted:
        raise SchemaError(f"normalisation 'panel' promises scores comparable over time, but these steps are fitted on "
                          f"each period's own data: {preview(fitted)}", node=fitted[0].split(":")[0],
                          path=framework.path, fix="use fixed forms (treatment log or none, manual/equal weights, "
                          "rescale none or x100), or normalisation='period'")


def _why_no_panel_form(ind) -> str | None:
    method = ind.normalisation
    if method.name not in _PANEL_FORMS:
        return f"{method.name} depends on the other units of its period"
    if method.name == "minmax" and float(method["range"][0]) != 0.0:
        return f"minmax range {list(method['range'])} does not start at 0"
    if method.name == "distance_to_target" and not method["cap"]:
        return "distance_to_target without cap"
    return None


def _panel_goalposts(ind, low: float, high: float) -> dict[str, Any] | None:
    """The goalposts normalisation reproducing the indicator's method with parameters fixed on the
    panel's treated values ``[low, high]`` (in the indicator's own direction), or None to keep it."""
    method = ind.normalisation
    if method.name == "goalposts" or not (np.isfinite(low) and np.isfinite(high)) or low == high:
        return None  # fixed already, or constant over the whole panel: the constant policy applies as per period
    if method.name == "minmax":
        scale = float(method["range"][1])
    else:
        scale = float(method["scale"])
    if method.name == "fraction_of_max":  # x / max in the directed values
        posts = [0.0, high] if ind.direction > 0 else [0.0, low]
    elif method.name == "distance_to_target":
        target = float(method["target"])
        posts = [low if ind.direction > 0 else high, target]
    else:
        posts = [low, high]
    return {"method": "goalposts", "goalposts": [float(p) for p in posts], "scale": scale}


def _period_values(series: pl.Series, column: str, origin: str | None) -> pl.Series:
    """The period column as integers or dates, or a DataError."""
    dtype = series.dtype
    if dtype.is_integer() or dtype in (pl.Date, pl.Datetime):
        return series
    if dtype.is_float():
        present = series.drop_nulls()
        if present.len() and (present == present.round(0)).all():
            return series.cast(pl.Int64)
    if dtype == pl.String:
        as_int = series.str.strip_chars().cast(pl.Int64, strict=False)
        if as_int.null_count() == series.null_count():
            return as_int
        as_date = series.str.strip_chars().str.to_date(strict=False)
        if as_date.null_count() == series.null_count():
            return as_date
    bad = series.drop_nulls().unique(maintain_order=True).head(5).to_list()
    raise DataError(f"the period column must hold integers (e.g. years) or dates, not {dtype} (values {preview(bad)})",
                    column=column, path=origin,
                    fix="give a column of years (2011) or ISO dates (2011-12-31) as the period")


def _check_dates_stay_dates(tables: Sequence[pl.DataFrame], paths: Sequence[str | Path]) -> None:
    """Refuse a column that is a date or time in one file and not in another: stacking would turn
    the dates into day counts (2020-01-01 -> 18262.0) without a word.  Integers beside floats and
    numbers beside text are left to stacking and the usual checks of numeric columns."""
    for column in dict.fromkeys(c for t in tables for c in t.columns):
        kinds = {str(path): t[column].dtype for t, path in zip(tables, paths, strict=True) if column in t.columns}
        temporal = {path for path, dtype in kinds.items() if dtype.is_temporal()}
        if temporal and (len(temporal) < len(kinds) or len(set(kinds.values())) > 1):
            shown = [f"{path}: {dtype}" for path, dtype in kinds.items()]
            raise DataError(f"column is a date or time in some files and not in others ({preview(shown)})",
                            column=column, fix="write the column the same way in every file (all dates, or all "
                                               "numbers)")


def _read_files(files: Mapping[Any, str | Path], unit: str, period: str, label: str | None,
                groups: Sequence[str]) -> pl.DataFrame:
    """One table from one file per period, with the period column added; the unit column must have
    one type in every file."""
    if not files:
        raise DataError("no files given", fix="pass files={period: path, ...} with at least two periods")
    tables, types = [], {}
    for key, path in files.items():
        if isinstance(key, bool) or not isinstance(key, int | dt.date | str):
            raise DataError(f"period {key!r} of file {str(path)!r} is not an integer or a date", path=str(path),
                            fix="key the files by year (2011) or date")
        table = read_table(path, text_columns=[c for c in (unit, label, *groups) if c])
        if unit not in table.columns:
            raise DataError(f"unit column not found; the file has {preview(table.columns, 8)}", column=unit,
                            path=str(path), fix="name the unit column of every file the same")
        if period in table.columns:
            raise DataError(f"the file already has a column named {period!r}", column=period, path=str(path),
                            fix="give another period column name, or pass the data as one table with its period column")
        types[str(path)] = table[unit].dtype
        tables.append(table.with_columns(pl.lit(key).alias(period)))
    if len(set(types.values())) > 1:
        shown = [f"{path}: {dtype}" for path, dtype in types.items()]
        raise DataError(f"the unit column changes type between files ({preview(shown)})", column=unit,
                        fix="write the unit ids the same way in every file (all codes as text, or all as integers)")
    _check_dates_stay_dates(tables, list(files.values()))
    try:
        return pl.concat(tables, how="diagonal_relaxed")
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"the files do not stack into one table: {exc}",
                        fix="give every column the same type in every file") from exc


def load_panel(framework: Framework | str | Path, data: Dataset | pl.DataFrame | str | Path | None = None, *,
               period: str | None = None, unit: str | None = None,
               files: Mapping[Any, str | Path] | None = None) -> Panel:
    """Load and check panel data for ``framework``.

    Parameters
    ----------
    framework
        A :class:`Framework`, a shipped framework's name or a framework file.
    data
        One table with a unit and a period column: a :class:`Dataset`, a DataFrame, a file or a
        shipped dataset's name (default: the framework's ``data.dataset``).  Leave it out with ``files``.
    period
        The period column (integers such as years, or dates); default ``data.period`` of the
        framework; with ``files``, the name given to the added column (default ``"period"``).
    unit
        The unit id column (default: the framework's ``data.unit``).
    files
        One file per period instead of ``data``: ``{2011: "cities_2011.csv", 2012: ...}``.

    Raises
    ------
    DataError
        A missing unit or period column, a period column that is neither integer nor date, a
        missing unit id or period, a unit column that changes type between files, duplicate
        unit-periods (named), a period with a single unit, fewer than two periods, and every
        check of :func:`engine.data.prepare` on the whole panel (cells named ``unit @ period``).
    SchemaError
        An invalid framework.

    Warns
    -----
    DataQualityWarning
        Unit ids renamed by ``data.aliases``; zeros read as missing by ``data.zero_missing``
        (column and count); values outside an indicator's plausible range, by unit and period.
    ImputationWarning
        Series imputation (``locf``/``interpolate``) that left values missing (before a unit's
        first observation).
    """
    framework = load_framework(framework)
    hints = dict(framework.data)
    if files is not None:
        if data is not None:
            raise DataError("give either data (one table) or files (one per period), not both",
                            fix="drop one of them")
        unit = unit or hints.get("unit")
        if unit is None:
            raise DataError("no unit id column given", fix="pass unit=, or set data.unit in the framework")
        period = period or hints.get("period") or "period"
        label = hints.get("unit_label")
        groups = tuple(hints.get("groups", ()))
        table = _read_files(files, unit, period, label, groups)
        label = label if label in table.columns and label != unit else None
        groups = tuple(g for g in groups if g in table.columns and g not in (unit, label))
        origin = ", ".join(str(p) for p in files.values())
    else:
        if data is None:
            data = hints.get("dataset")
            if data is None:
                raise DataError("no data given and the framework names no default dataset",
                                fix="pass the panel table (data=) or one file per period (files=)")
        dataset = data if isinstance(data, Dataset) else load_data(data, framework=framework, unit=unit)
        table, unit, label, groups = dataset.table, unit or dataset.unit, dataset.label, dataset.groups
        origin = dataset.source
        period = period or hints.get("period")
        if period is None:
            raise DataError("no period column given", path=origin,
                            fix="pass period= (cityrank --period COLUMN), or set data.period in the framework")
    for column in (unit, period):
        if column not in table.columns:
            raise DataError(f"column not found; the data have {preview(table.columns, 8)}", column=column,
                            path=origin, fix="check the column names (they are case-sensitive)")
    table = table.with_columns(_period_values(table[period], period, origin))
    for column, what in ((unit, "unit id"), (period, "period")):
        if table[column].null_count():
            rows = (np.flatnonzero(table[column].is_null().to_numpy()) + 1).tolist()
            raise DataError(f"{what} missing in data row(s) {preview(rows)}", column=column, path=origin,
                            fix=f"give every row a {what} or remove those rows")
    notes: dict[str, Any] = {}
    table = _apply_aliases(table, unit, period, hints.get("aliases") or {}, notes)
    _check_shape(table, unit, period, origin)
    table = _zeros_to_missing(table, unit, period, hints.get("zero_missing") or (), notes)
    table = _fill_series(table, framework, unit, period, notes)
    # every data check of a single edition, on the whole panel at once: cells are named "unit @ period"
    key = "__panel_unit_period__"
    whole = table.with_columns(pl.concat_str(pl.col(unit).cast(pl.String), pl.lit(" @ "),
                                             pl.col(period).cast(pl.String)).alias(key))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepare(framework, Dataset(table=whole, unit=key, groups=groups, source=origin))
    for warning in caught:
        if issubclass(warning.category, DataQualityWarning):
            notes.setdefault("implausible", []).append(str(warning.message))
        warnings.warn(warning.message, warning.category, stacklevel=2)
    return Panel(table=table, unit=unit, period=period, source_framework=framework, label=label, groups=groups,
                 source=origin, notes=notes)


def load_edition(framework: Framework | str | Path, data: Dataset | pl.DataFrame | str | Path | None, edition: Any,
                 normalisation: str = "period", *, period: str | None = None, unit: str | None = None,
                 **rest: Any) -> tuple[Panel, Framework, Dataset]:
    """One period of panel data, as ``cityrank audit/report --edition`` score it: ``(panel, framework,
    dataset)``, the panel (:func:`load_panel`, ``period``/``unit`` naming its columns), the framework
    to score the period with (:meth:`Panel.framework` with ``normalisation``) and the period's rows.

    Raises
    ------
    SchemaError
        An unknown ``normalisation``, or any other loading option (``rest``: groups, label, sheet,
        encoding, skip_rows), which the panel's own loading does not take; both before any work.
    DataError
        As :func:`load_panel`; an ``edition`` not in the panel (before the framework is fitted).
    """
    check_normalisation(normalisation)
    if rest:
        raise SchemaError(f"option(s) {', '.join(sorted(rest))} do not apply to an edition of a panel",
                          fix="leave them out: the panel framework's data section names its groups and label; only "
                          "period= and unit= (cityrank --period, --unit) choose the panel's columns")
    panel = load_panel(framework, data, period=period, unit=unit)
    dataset = panel.dataset(edition)
    return panel, panel.framework(normalisation), dataset


def _apply_aliases(table: pl.DataFrame, unit: str, period: str, aliases: Mapping[str, str],
                   notes: dict[str, Any]) -> pl.DataFrame:
    ids = table[unit].cast(pl.String)
    found = {old: new for old, new in aliases.items() if (ids == old).any()}
    if not found:
        return table
    renamed = {old: [new, sorted(table.filter(ids == old)[period].to_list())] for old, new in found.items()}
    notes["aliases"] = renamed
    shown = [f"{old} -> {new} ({', '.join(map(str, when))})" for old, (new, when) in renamed.items()]
    warnings.warn(f"unit ids renamed by the framework's data.aliases (old or misspelt names): {preview(shown, 10)}",
                  DataQualityWarning, stacklevel=3)
    return table.with_columns(ids.replace(dict(found)).cast(table[unit].dtype, strict=False).alias(unit))


def _check_shape(table: pl.DataFrame, unit: str, period: str, origin: str | None) -> None:
    pairs = table.select(unit, period)
    duplicated = pairs.filter(pairs.is_duplicated()).unique(maintain_order=True)
    if duplicated.height:
        shown = [f"{u} @ {p}" for u, p in duplicated.iter_rows()]
        raise DataError(f"duplicate unit-period rows: {preview(shown)}", column=unit, path=origin,
                        units=duplicated[unit].to_list(),
                        fix="keep one row per unit and period (a renamed unit may now meet its new name: "
                        "check data.aliases)")
    counts = table.group_by(period).len().sort(period)
    if counts.height < 2:
        raise DataError(f"a panel needs at least two periods; the data have {counts.height}", column=period,
                        path=origin, fix="score a single edition with cityrank score, or add periods")
    single = counts.filter(pl.col("len") < 2)[period].to_list()
    if single:
        raise DataError(f"period(s) {preview(single)} have a single unit: nothing to rank there", column=period,
                        path=origin, fix="remove those periods or add their units")


def _zeros_to_missing(table: pl.DataFrame, unit: str, period: str, columns: Sequence[str],
                      notes: dict[str, Any]) -> pl.DataFrame:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(f"data.zero_missing names column(s) not in the data: {preview(missing)}", column=missing[0],
                        fix="correct data.zero_missing in the framework")
    counts = {c: int((table[c] == 0).sum()) for c in columns}
    counts = {c: n for c, n in counts.items() if n}
    if not counts:
        return table
    notes["zero_missing"] = counts
    warnings.warn(f"zeros read as missing (data.zero_missing: 0 means not reported) in {len(counts)} column(s): "
                  + "; ".join(f"{c!r}: {n} of {table.height} rows" for c, n in counts.items()),
                  DataQualityWarning, stacklevel=3)
    return table.with_columns(pl.when(pl.col(c) == 0).then(None).otherwise(pl.col(c)).alias(c) for c in counts)


def _fill_series(table: pl.DataFrame, framework: Framework, unit: str, period: str,
                 notes: dict[str, Any]) -> pl.DataFrame:
    """Fill the source columns of every series-imputed indicator along each unit's periods."""
    columns = {c: ind.imputation.name for ind in framework.indicators if ind.imputation.name in SERIES_METHODS
               for c in ind.source_columns}
    columns = {c: m for c, m in columns.items() if c in table.columns}
    if not columns:
        return table
    table = table.sort(unit, period, maintain_order=True)
    years = period_years(table[period].to_list())
    starts = np.flatnonzero(np.r_[True, (table[unit] != table[unit].shift(1)).to_numpy()[1:]])
    bounds = np.r_[starts, table.height]
    left, imputed = [], {}
    for column, method in columns.items():
        values = table[column].cast(pl.Float64, strict=False).to_numpy().astype(np.float64, copy=True)
        before = np.isnan(values)
        for a, b in pairwise(bounds):
            values[a:b] = fill_series(values[a:b], years[a:b], method)
        after = np.isnan(values)
        imputed[column] = {"method": method, "filled": int((before & ~after).sum()), "left": int(after.sum())}
        if after.any():
            left.append(f"{column} ({int(after.sum())})")
        table = table.with_columns(pl.Series(column, values))
    notes["imputed"] = imputed
    if left:
        warnings.warn(f"series imputation left values missing (no earlier observation of the unit) in: "
                      f"{', '.join(left)}", ImputationWarning, stacklevel=3)
    return table

