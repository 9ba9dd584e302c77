"""Load CSV, Parquet, Arrow IPC and Excel files into Polars."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..errors import DataError, preview
from ..resources import shipped_datasets

__all__ = ["Dataset", "load_data", "read_table"]

_READERS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".arrow": "ipc", ".ipc": "ipc", ".feather": "ipc",
    ".xlsx": "excel", ".xls": "excel", ".xlsm": "excel",
}


@dataclass(frozen=True)
class Dataset:
    """A table of units with their id column and optional group columns."""

    table: pl.DataFrame  #: One row per unit.
    unit: str  #: Unit id column (unique, no missing values — checked by :func:`engine.data.prepare`).
    groups: tuple[str, ...] = ()  #: Group columns (e.g. province), for group imputation/aggregation.
    label: str | None = None  #: Optional display-name column.
    source: str | None = None  #: Where the table came from (path or shipped name).
    meta: dict = field(default_factory=dict)  #: Free metadata (e.g. ``{"synthetic": True}``).


def read_table(path: str | Path, *, sheet: str | None = None) -> pl.DataFrame:
    """Read a file into a Polars DataFrame, choosing the reader by extension."""
    path = Path(path)
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"unsupported file type {path.suffix!r}", path=str(path),
                        fix=f"use one of {', '.join(sorted(_READERS))}")
    if not path.is_file():
        raise DataError("file not found", path=str(path), fix="check the path")
    try:
        if kind == "csv":
            table = pl.read_csv(path, infer_schema_length=None, separator="\t" if path.suffix.lower() == ".tsv" else ",",
                                null_values=["", "NA", "NaN", "nan", "null"])
        elif kind == "parquet":
            table = pl.read_parquet(path)
        elif kind == "ipc":
            table = pl.read_ipc(path)
        else:
            try:
                table = pl.read_excel(path, sheet_name=sheet) if sheet else pl.read_excel(path)
            except (pl.exceptions.PolarsError, OSError, ValueError):
                raise
            except Exception as exc:  # fastexcel's CalamineError & co. are not PolarsErrors
                raise ValueError(str(exc)) from exc
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise DataError(f"cannot read the file: {exc}", path=str(path),
                        fix="check that the file is a valid " + kind + " file") from exc
    # A UTF-8 byte-order mark can survive in the first header.
    first = table.columns[0] if table.columns else ""
    if first.startswith("\ufeff"):
        table = table.rename({first: first.lstrip("\ufeff")})
    return table


def load_data(
    source: str | Path | pl.DataFrame,
    *,
    unit: str | None = None,
    groups: tuple[str, ...] | list[str] | None = None,
    label: str | None = None,
    sheet: str | None = None,
    framework=None,
) -> Dataset:
    """Load a data file (or wrap a DataFrame) as a :class:`Dataset`.

    Parameters
    ----------
    source
        Path to a CSV/Parquet/Arrow IPC/Excel file, the name of a shipped dataset, or a DataFrame.
    unit, groups, label
        Unit id column, group columns and display-name column; default to the framework's
        ``data`` hints when a framework is given.
    sheet
        Excel sheet name (default: the first sheet).

    Raises
    ------
    DataError
        Unreadable file, unknown dataset name, or a named column that does not exist.
    """
    hints = dict(framework.data) if framework is not None else {}
    unit = unit or hints.get("unit")
    # Columns named explicitly must exist; the framework's hints are used when the data have them.
    optional = set()
    if groups is None:
        groups = tuple(hints.get("groups", ()))
        optional.update(groups)
    groups = tuple(groups)
    if label is None and hints.get("unit_label"):
        label = hints["unit_label"]
        optional.add(label)
    if label == unit:
        label = None
    groups = tuple(g for g in groups if g not in (unit, label))
    meta: dict = {}
    if isinstance(source, pl.DataFrame):
        table, origin = source, "<DataFrame>"
    else:
        text = str(source)
        path = Path(text)
        if not path.exists() and text in shipped_datasets():
            path = shipped_datasets()[text]
            if hints.get("dataset") == text and hints.get("synthetic"):
                meta["synthetic"] = True
        elif not path.exists():
            raise DataError(f"no data file or shipped dataset named {text!r}", path=text,
                            fix=f"give a path, or one of the shipped datasets: {', '.join(shipped_datasets())}")
        table, origin = read_table(path, sheet=sheet), str(path)
    if unit is None:
        raise DataError("no unit id column given", path=origin,
                        fix="pass --unit COLUMN (or `unit=`), or set data.unit in the framework")
    groups = tuple(g for g in groups if g in table.columns or g not in optional)
    if label is not None and label in optional and label not in table.columns:
        label = None
    missing = [c for c in (unit, *groups, *([label] if label else [])) if c not in table.columns]
    if missing:
        raise DataError(f"column(s) {preview(missing)} not found; the file has {preview(table.columns, 8)}",
                        column=missing[0], path=origin, fix="check the column names (they are case-sensitive)")
    return Dataset(table=table, unit=unit, groups=groups, label=label, source=origin, meta=meta)
