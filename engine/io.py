"""Output files: checked before any work, written atomically (temporary file in the target folder,
then one rename), readable by colleagues and by Excel.

A crash or an error while writing never leaves a half-written result under the final name.
Written files get the permissions of the umask (as ``open()`` would give them, e.g. 0644 under
umask 022), not the 0600 of the temporary file.  An output path that is a symbolic link is written
through: the file it points to is replaced and the link stays.  Failures to write are
:class:`DataError`\\ s naming the path (exit status 2 in the CLI).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from .errors import DataError

__all__ = ["ANALYSIS_FORMATS", "TABLE_FORMATS", "atomic_write", "check_output", "settings_table", "with_unit_names",
           "write_json", "write_table", "write_tables"]

TABLE_FORMATS = (".parquet", ".csv", ".xlsx", ".arrow", ".ipc")
#: Formats of the several tables of an analysis (``format=``): Parquet or CSV files in a folder,
#: or one Excel workbook (a ``.xlsx`` output path, or ``results.xlsx`` in the folder).
ANALYSIS_FORMATS = ("parquet", "csv", "xlsx")
#: Excel's sheet size.
EXCEL_MAX_ROWS, EXCEL_MAX_COLUMNS = 1_048_576, 16_384
#: Cells of an analysis table above which it goes to Parquet beside the workbook instead of a sheet
#: (the acceptability table grows with units²; a sheet of 10^6 cells is slow and memory-hungry to write).
EXCEL_MAX_CELLS = 2_000_000
#: Fill colour of imputed cells in Excel output (light yellow).
IMPUTED_FILL = "#FFEB9C"
INTEGER_TYPES = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)


def _umask() -> int:
    """The process's umask, read without changing it where the system shows it (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (briefly visible to other threads)
    os.umask(mask)
    return mask


def _target(path: Path) -> Path:
    """Where a write to ``path`` lands: a symbolic link is followed to its target."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _cannot_write(exc: OSError, path: Path) -> DataError:
    return DataError(f"cannot write the output ({exc.strerror or exc})", path=str(path),
                     fix="choose a path in a folder you can write to (and with free space)")


def atomic_write(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` then move the temporary file to ``path`` in one rename.

    The file gets mode ``0o666 & ~umask``; a symbolic link at ``path`` is written through.
    An ``OSError`` (no permission, disk full, …) becomes a :class:`DataError` naming the path."""
    path = Path(path)
    target = _target(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _cannot_write(exc, path) from exc
    os.close(fd)
    try:
        writer(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _cannot_write(exc, path) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_output(path: str | Path, kind: str = "file", *, inputs: Iterable[Any] = ()) -> Path:
    """Refuse, before any work, an output path that cannot be written.

    ``kind`` is ``"file"`` (one table: a format of :data:`TABLE_FORMATS`), ``"folder"``, or
    ``"tables"`` (the several tables of an analysis: a folder, or one ``.xlsx`` workbook).  Refused
    with a :class:`DataError` naming the path and the fix: a file where a folder is expected or the
    reverse, a parent that is a file, a place where no file can be created (no permission, a
    read-only or virtual file system such as ``/proc``), and an output file that is one of
    ``inputs`` (same path or same file through a link: writing would destroy the input).  Entries
    of ``inputs`` that are not existing files (shipped names, DataFrames, None) are ignored.
    Returns the path."""
    given = Path(path)
    target = Path(os.path.realpath(given))
    if kind == "tables":
        suffix = given.suffix.lower()
        if suffix == ".xlsx" and target.is_dir():
            raise DataError("the output path is a folder, but its .xlsx ending asks for one workbook",
                            path=str(given), fix="give a new name for the workbook, or a folder name without .xlsx "
                            "(earlier builds made folders named *.xlsx: rename one to resume it)")
        if suffix in TABLE_FORMATS and suffix != ".xlsx":
            raise DataError(f"an analysis writes several tables, not one {suffix} file", path=str(given),
                            fix="give a folder (the tables are written in it; --format csv for CSV files) "
                                "or a .xlsx file (one workbook, a sheet per table)")
        kind = "file" if suffix == ".xlsx" else "folder"
    if kind == "file":
        if target.is_dir():
            raise DataError("the output path is a folder, a file is expected", path=str(given),
                            fix=f"give a file name, e.g. {given / 'results.parquet'}")
        if given.suffix.lower() not in TABLE_FORMATS:
            raise DataError(f"unsupported output format {given.suffix.lower()!r}", path=str(given),
                            fix=f"use one of {', '.join(TABLE_FORMATS)}")
        for item in inputs:
            if isinstance(item, (str, Path)) and Path(item).is_file() and (
                    Path(os.path.realpath(item)) == target or (target.exists() and os.path.samefile(item, target))):
                raise DataError("the output file is an input of this run; writing it would destroy the input",
                                path=str(given), fix="choose another output file name")
    elif kind == "folder":
        if target.exists() and not target.is_dir():
            raise DataError("the output path is a file, a folder is expected", path=str(given),
                            fix="choose a folder name (it is created), or a .xlsx file for one workbook")
    else:
        raise ValueError(f"kind must be 'file', 'folder' or 'tables', not {kind!r}")
    base = target if kind == "folder" else target.parent
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise DataError(f"{str(base)!r} in the output path is a file, not a folder", path=str(given),
                        fix="choose an output path whose parent folders are folders")
    try:  # the only reliable test (permissions, ACLs, read-only mounts, /proc): create a file there
        fd, probe = tempfile.mkstemp(prefix=".cityrank-check-", dir=base)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise DataError(f"cannot create files in {str(base)!r} ({exc.strerror or exc})", path=str(given),
                        fix="choose a folder you can write to") from exc
    return given


def write_json(path: str | Path, document: Any) -> Path:
    """Write JSON atomically (UTF-8, indented, non-ASCII kept)."""
    text = json.dumps(document, indent=2, ensure_ascii=False, default=str)
    return atomic_write(path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def settings_table(document: Mapping[str, Any], nested: tuple[str, ...] = ("stages",)) -> pl.DataFrame:
    """A recipe or manifest as one row per setting: ``section``, ``key`` (a dotted path) and
    ``value`` (text; lists of plain values as JSON).  The sections are the top-level keys (``run``
    for top-level plain values), and for a key in ``nested`` (the recipe's ``stages``) the keys
    below it (one section per stage)."""
    rows: list[tuple[str, str, str]] = []

    def walk(section: str, prefix: str, value: Any) -> None:
        if isinstance(value, Mapping) and value:
            for key, item in value.items():
                walk(section, f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, (list, tuple)) and any(isinstance(v, (Mapping, list, tuple)) for v in value):
            for k, item in enumerate(value):
                walk(section, f"{prefix}.{k}" if prefix else str(k), item)
        else:
            rows.append((section, prefix, _scalar(value)))

    for key, value in document.items():
        if key in nested and isinstance(value, Mapping):
            for section, item in value.items():
                walk(f"{key}.{section}", "", item)
        elif isinstance(value, Mapping):
            walk(str(key), "", value)
        else:  # top-level plain values (a manifest's kind, seed, replicates, …)
            walk("run", str(key), value)
    return pl.DataFrame(rows, schema={"section": pl.String, "key": pl.String, "value": pl.String}, orient="row")


def with_unit_names(table: pl.DataFrame, names: pl.DataFrame | None, on: str = "unit") -> pl.DataFrame:
    """``table`` with the display-name and group columns of ``names`` (unit id first, as text)
    placed right after its ``on`` column (matched as text; columns it already has are skipped)."""
    if names is None or on not in table.columns:
        return table
    extra = [c for c in names.columns[1:] if c not in table.columns]
    if not extra:
        return table
    key = "__cityrank_unit"
    lookup = names.select(pl.col(names.columns[0]).cast(pl.String).alias(key), *extra).unique(key, keep="first")
    joined = table.with_columns(pl.col(on).cast(pl.String).alias(key)).join(lookup, on=key, how="left",
                                                                          maintain_order="left").drop(key)
    at = table.columns.index(on) + 1
    return joined.select([*table.columns[:at], *extra, *table.columns[at:]])


def _decimals(values: pl.Series) -> int:
    """Decimals shown for a float column: about three significant digits of its largest value,
    at least 2 and at most 6."""
    largest = values.abs().max()
    if largest is None or not math.isfinite(largest) or largest == 0:
        return 2
    return min(6, max(2, 2 - math.floor(math.log10(largest))))


def _sheet_names(names: Iterable[str]) -> list[str]:
    """Valid, distinct Excel sheet names (at most 31 characters, none of ``[]:*?/\\``)."""
    used: list[str] = []
    for name in names:
        clean = "".join("_" if ch in "[]:*?/\\" else ch for ch in name)[:31] or "sheet"
        candidate, k = clean, 2
        while candidate.lower() in (u.lower() for u in used):
            candidate = f"{clean[:28]}~{k}"
            k += 1
        used.append(candidate)
    return used


def _settings_sheet(workbook: Any, name: str, document: Mapping[str, Any]) -> None:
    rows = settings_table(document)
    rows.write_excel(workbook=workbook, worksheet=name, autofit=True, table_style="Table Style Light 1")
    sheet = workbook.get_worksheet_by_name(name)
    sheet.ignore_errors({"number_stored_as_text": f"C1:C{rows.height + 1}"})
    sheet.set_column(2, 2, 60)


def _table_sheet(workbook: Any, name: str, table: pl.DataFrame, *, headers: Mapping[str, str] | None = None,
                 marked: pl.DataFrame | None = None, notes: Mapping[str, str] | None = None) -> None:
    """One table on one sheet: floats shown rounded (the cells keep full precision), headers
    optionally renamed, the cells where ``marked`` (bool columns named as in ``table``) is true
    shaded, and a comment on the header of every column in ``notes``."""
    floats = [c for c, t in table.schema.items() if t.is_float()]
    table = table.with_columns(pl.col(floats).fill_nan(None))  # NaN (undefined) → empty cell; xlsxwriter refuses NaN
    formats = {c: "0." + "0" * _decimals(table[c]) for c in floats}
    shown = table.rename(dict(headers)) if headers else table
    rename = dict(headers or {})
    shown.write_excel(workbook=workbook, worksheet=name, autofit=table.height * table.width <= 200_000,
                      column_formats={rename.get(c, c): f for c, f in formats.items()},
                      dtype_formats={INTEGER_TYPES: "0"},  # codes and ranks: no thousands separator
                      table_style="Table Style Light 1", freeze_panes=(1, 1))
    sheet = workbook.get_worksheet_by_name(name)
    for column, note in (notes or {}).items():
        sheet.write_comment(0, table.columns.index(column), note)
    if marked is None:
        return
    styles: dict[str, Any] = {}
    for column in marked.columns:
        rows = marked[column].arg_true().to_list()
        if column not in table.columns or not rows:
            continue
        c = table.columns.index(column)
        style = formats.get(column, "General")
        if style not in styles:
            styles[style] = workbook.add_format({"num_format": style, "bg_color": IMPUTED_FILL})
        values = table[column]
        for r in rows:
            value = values[r]
            if value is None:
                sheet.write_blank(r + 1, c, None, styles[style])
            else:
                sheet.write_number(r + 1, c, value, styles[style])


def write_table(table: pl.DataFrame, path: str | Path, *, metadata: dict[str, Any] | None = None,
                bom: bool = True, headers: Mapping[str, str] | None = None, marked: pl.DataFrame | None = None,
                notes: Mapping[str, str] | None = None, sheets: Mapping[str, pl.DataFrame] | None = None) -> Path:
    """Write a table as Parquet, CSV, Excel or Arrow IPC (by extension), atomically.

    ``metadata`` (e.g. the recipe) goes into the Parquet/Arrow schema metadata under
    ``cityrank``, into a sheet ``recipe`` of an Excel file (one row per setting:
    :func:`settings_table`), and into a sidecar ``<file>.recipe.json`` next to a CSV file.
    CSV is UTF-8 with a byte-order mark (``bom=True``) so that Excel reads non-ASCII names right.
    Excel only: ``headers`` renames columns for display, ``marked`` shades cells (see
    :func:`_table_sheet`), ``notes`` comments headers, ``sheets`` are further sheets (name → table)
    placed after the data.  Floats are shown rounded to about three significant digits; the cells
    keep full precision.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise DataError(f"unsupported output format {suffix!r}", path=str(path),
                        fix=f"use one of {', '.join(TABLE_FORMATS)}")
    text = json.dumps(metadata or {}, ensure_ascii=False, default=str)
    if suffix in (".parquet", ".arrow", ".ipc"):
        import pyarrow as pa
        import pyarrow.feather as feather
        import pyarrow.parquet as pq

        arrow = table.to_arrow()
        arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), b"cityrank": text.encode()})
        if suffix == ".parquet":
            # dictionary pages for text columns only: numbers (scores, ranks) are mostly distinct, so their
            # dictionaries overflow and are thrown away (10^6 units: 2.2 s of CPU instead of 0.8, a larger file)
            words = [f.name for f in arrow.schema if any(
                is_text(f.type) for is_text in (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view))]
            return atomic_write(path, lambda tmp: pq.write_table(arrow, tmp, use_dictionary=words))
        return atomic_write(path, lambda tmp: feather.write_feather(arrow, tmp, compression="uncompressed"))
    if suffix == ".csv":
        written = atomic_write(path, lambda tmp: table.write_csv(tmp, include_bom=bom))
        if metadata is not None:
            write_json(path.with_name(path.name + ".recipe.json"), metadata)
        return written
    _check_sheet_size("scores", table)

    def excel(tmp: Path) -> None:
        import xlsxwriter

        names = _sheet_names(["scores", *(sheets or {}), "recipe"])
        with xlsxwriter.Workbook(str(tmp)) as workbook:
            _table_sheet(workbook, names[0], table, headers=headers, marked=marked, notes=notes)
            for name, extra in zip(names[1:], (sheets or {}).values(), strict=False):
                extra.write_excel(workbook=workbook, worksheet=name, autofit=True, table_style="Table Style Light 1")
            _settings_sheet(workbook, names[-1], metadata or {})

    return atomic_write(path, excel)


def _check_sheet_size(name: str, table: pl.DataFrame) -> None:
    if table.height + 1 > EXCEL_MAX_ROWS or table.width > EXCEL_MAX_COLUMNS:
        raise DataError(f"table {name!r} ({table.height:,} rows × {table.width:,} columns) does not fit an Excel "
                        f"sheet ({EXCEL_MAX_ROWS:,} rows × {EXCEL_MAX_COLUMNS:,} columns)", path=None,
                        fix="write Parquet or CSV instead (a .parquet/.csv path, or a folder with --format csv)")


def write_tables(tables: Mapping[str, pl.DataFrame], out: str | Path, *, manifest: Mapping[str, Any],
                 format: str | None = None) -> Path:
    """Write the tables of an analysis and its manifest, each file atomically.

    ``out`` ending in ``.xlsx``: one workbook, a sheet per table (in order) and a ``manifest``
    sheet (one row per setting).  Otherwise ``out`` is a folder: ``<name>.parquet`` (default, the
    manifest also in each file's schema metadata) or ``<name>.csv`` (UTF-8 with a byte-order mark)
    per table, or one workbook ``results.xlsx`` (``format="xlsx"``), and ``manifest.json``.
    A table too large for an Excel sheet, or of more than :data:`EXCEL_MAX_CELLS` cells, is written
    as Parquet beside the workbook (``<workbook stem>.<name>.parquet``) and its sheet says so."""
    out = Path(out)
    workbook_path = out if out.suffix.lower() == ".xlsx" else None
    if format is not None and format not in ANALYSIS_FORMATS:
        raise DataError(f"unknown output format {format!r}", path=str(out),
                        fix=f"use one of {', '.join(ANALYSIS_FORMATS)}")
    if workbook_path is not None and format not in (None, "xlsx"):
        raise DataError(f"a .xlsx output path cannot hold {format} tables", path=str(out),
                        fix=f"give a folder for --format {format}, or leave --format out")
    format = "xlsx" if workbook_path is not None else (format or "parquet")
    if format == "xlsx":
        if workbook_path is None:
            workbook_path = out / "results.xlsx"
            write_json(out / "manifest.json", manifest)
        _write_workbook(tables, workbook_path, manifest)
        return out
    for name, table in tables.items():
        if format == "csv":
            write_table(table, out / f"{name}.csv")
        else:
            write_table(table, out / f"{name}.parquet", metadata=dict(manifest))
    write_json(out / "manifest.json", manifest)
    return out


def _write_workbook(tables: Mapping[str, pl.DataFrame], path: Path, manifest: Mapping[str, Any]) -> None:
    names = _sheet_names([*tables, "manifest"])
    too_large = {}
    for name, table in tables.items():
        try:
            _check_sheet_size(name, table)
            fits = table.height * table.width <= EXCEL_MAX_CELLS
        except DataError:
            fits = False
        if not fits:
            too_large[name] = path.with_name(f"{path.stem}.{name}.parquet")
            write_table(table, too_large[name], metadata=dict(manifest))

    def excel(tmp: Path) -> None:
        import xlsxwriter

        with xlsxwriter.Workbook(str(tmp)) as workbook:
            for sheet, (name, table) in zip(names, tables.items(), strict=False):
                if name in too_large:
                    workbook.add_worksheet(sheet).write_string(
                        0, 0, f"{table.height:,} rows × {table.width:,} columns: too large for a sheet; "
                              f"written to {too_large[name].name}")
                else:
                    _table_sheet(workbook, sheet, table)
            _settings_sheet(workbook, names[-1], manifest)

    atomic_write(path, excel)
