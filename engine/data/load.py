"""Load CSV, Parquet, Arrow IPC and Excel files into Polars."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..errors import DataError, preview
from ..machine import available_bytes, format_bytes, memory_check_enabled
from ..resources import shipped_datasets

__all__ = ["Dataset", "check_memory_for", "estimate_bytes", "load_data", "read_table", "suggest"]

#: Bytes per row and column assumed for a text column of a Parquet/IPC file (numbers take 8).
TEXT_BYTES = 32
#: Float64 arrays of n_units rows the pipeline holds at its peak, per indicator and per node: the
#: stage arrays (raw; denominators and denominated when an indicator has a denominator, imputed and
#: treated copies when a stage changes the values; the normalised values are the scores' indicator
#: columns) and the node arrays (scores, float32 ranks, the output table's scores and Int32 ranks).
#: 10^6 units x 25 indicators (39 nodes, no denominator): about 2.2 GiB estimated with the table,
#: 1.9 GB measured (docs/performance.md).
PER_INDICATOR, PER_NODE = 5, 3

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


#: Cells read as missing in the data columns (the unit, label and group columns keep them as text).
NULL_VALUES = ["", "NA", "NaN", "nan", "null"]
#: Encodings tried in turn when none is given: UTF-8 (a byte-order mark is dropped), then GB18030
#: (a superset of GBK and GB2312, what Excel on a Chinese Windows writes as "CSV").
_ENCODINGS = ("utf-8", "gb18030")
#: First bytes of each Excel container: xlsx/xlsm are zip files, xls an OLE compound document.
_MAGIC = {".xlsx": b"PK\x03\x04", ".xlsm": b"PK\x03\x04", ".xls": b"\xd0\xcf\x11\xe0"}
_INTEGER_ID = r"^-?[1-9][0-9]{0,17}$|^0$"


def suggest(name: str, candidates: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``candidates``, or ``""``."""
    close = difflib.get_close_matches(name, [str(c) for c in candidates], n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _decode(data: bytes, path: Path, encoding: str | None) -> tuple[bytes, str]:
    """The file's bytes as UTF-8 and the encoding they were read in (given, or detected)."""
    if encoding is not None:
        try:
            return data.decode(encoding).encode("utf-8"), encoding
        except LookupError:
            raise DataError(f"unknown encoding {encoding!r}", path=str(path),
                            fix="use a Python codec name, e.g. utf-8, gb18030, gbk, big5, latin-1") from None
        except UnicodeDecodeError as exc:
            raise DataError(f"the file is not valid {encoding} text (byte {exc.start}: {exc.reason})",
                            path=str(path), fix="give the file's real encoding, or leave it out to detect it") from None
    for candidate in _ENCODINGS:
        try:
            text = data.decode(candidate)
        except UnicodeDecodeError:
            continue
        if candidate == "utf-8":
            return data, "utf-8-sig" if text.startswith("\ufeff") else "utf-8"
        if _looks_chinese(text):
            return text.encode("utf-8"), candidate
    raise DataError("cannot read the file: it is not UTF-8 text, and read as GB18030/GBK it does not give Chinese "
                    "text either", path=str(path),
                    fix="give its encoding (--encoding / `encoding=`, e.g. latin-1, cp1252, big5), or save it as UTF-8")


def _looks_chinese(text: str, sample: int = 65_536) -> bool:
    """Most non-ASCII characters are common Chinese (GB2312) ones: Latin-1 or cp1252 bytes also
    decode as GB18030, but into rare characters (``Zürich`` → ``Z黵ich``)."""
    rare = common = 0
    for ch in text[:sample]:
        if ord(ch) > 127:
            try:
                ch.encode("gb2312")
                common += 1
            except UnicodeEncodeError:
                rare += 1
    return common >= rare


def read_table(path: str | Path, *, sheet: str | None = None, encoding: str | None = None, skip_rows: int = 0,
               text_columns: Iterable[str] = (), meta: dict | None = None) -> pl.DataFrame:
    """Read a file into a Polars DataFrame, choosing the reader by extension.

    CSV files are read as UTF-8 or, failing that, GB18030 (GBK) unless ``encoding`` is given;
    ``skip_rows`` title rows above the header are skipped (CSV and Excel).  ``text_columns``
    (unit id, label, groups) are read as text in which only empty cells are missing, so ids such
    as ``NA`` or ``null`` stay ids.  The encoding read is stored in ``meta["encoding"]``.
    """
    path = Path(path)
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"unsupported file type {path.suffix!r}", path=str(path),
                        fix=f"use one of {', '.join(sorted(_READERS))}")
    if not path.is_file():
        raise DataError("file not found", path=str(path), fix="check the path")
    if skip_rows < 0:
        raise DataError(f"skip_rows must be >= 0, got {skip_rows}", path=str(path),
                        fix="give the number of title rows above the header")
    text_columns = list(dict.fromkeys(text_columns))
    meta = meta if meta is not None else {}
    try:
        if kind == "csv":
            data, meta["encoding"] = _decode(path.read_bytes(), path, encoding)
            options = {"separator": "\t" if path.suffix.lower() == ".tsv" else ",", "skip_rows": skip_rows}
            table = pl.read_csv(data, infer_schema_length=None, null_values=NULL_VALUES, **options)
            header = [c.lstrip("\ufeff") for c in table.columns]
            table = table.rename(dict(zip(table.columns, header, strict=True)))
            wanted = sorted(header.index(c) for c in text_columns if c in header)
            if wanted:  # the same columns again, as text with only empty cells missing
                text = pl.read_csv(data, infer_schema=False, columns=wanted, **options)
                table = table.with_columns(_as_id(text.to_series(k)).alias(header[i]) for k, i in enumerate(wanted))
        elif kind == "parquet":
            table = pl.read_parquet(path)
        elif kind == "ipc":
            table = pl.read_ipc(path)
        else:
            magic = _MAGIC[path.suffix.lower()]
            with open(path, "rb") as handle:
                start = handle.read(len(magic))
            if start != magic:
                looks = "text (a CSV file?)" if _is_text(path) else "another format"
                raise DataError(f"the file is named {path.suffix} but is not an Excel workbook: it looks like {looks}",
                                path=str(path), fix="give it the extension of its real format (e.g. .csv), "
                                "or save it from Excel as a workbook")
            table = _read_excel(path, sheet, skip_rows)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        title = "; if title rows sit above the header, skip them with --skip-rows N" \
            if kind in ("csv", "excel") and not skip_rows else ""
        raise DataError(f"cannot read the file: {exc}", path=str(path),
                        fix=f"check that the file is a valid {kind} file{title}") from exc
    # A UTF-8 byte-order mark can survive in the first header.
    first = table.columns[0] if table.columns else ""
    if first.startswith("\ufeff"):
        table = table.rename({first: first.lstrip("\ufeff")})
    return table


def _as_id(values: pl.Series) -> pl.Series:
    """Id text as written; a column of plain integers (no leading zeros, no sign '+') becomes Int64,
    as Polars would infer it, since no digit is lost."""
    present = values.drop_nulls()
    if present.len() and present.str.contains(_INTEGER_ID).all():
        return values.cast(pl.Int64)
    return values


def _is_text(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(4096)
    return b"\0" not in head and any(_decodes(head, e) for e in _ENCODINGS)


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:  # a multi-byte character cut at the end of the sample is fine
        return exc.start >= len(data) - 4
    return True


def _read_excel(path: Path, sheet: str | None, skip_rows: int) -> pl.DataFrame:
    options = {"read_options": {"header_row": skip_rows}} if skip_rows else {}
    try:
        return pl.read_excel(path, sheet_name=sheet, **options) if sheet else pl.read_excel(path, **options)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        if sheet is not None and "sheet" in str(exc):
            import fastexcel

            names = fastexcel.read_excel(path).sheet_names
            raise DataError(f"no sheet named {sheet!r}{suggest(sheet, names)}; the workbook has {preview(names, 20)}",
                            path=str(path), fix="pass one of those names to --sheet / `sheet=`") from None
        raise
    except Exception as exc:  # fastexcel's CalamineError & co. are not PolarsErrors
        raise ValueError(str(exc)) from exc


def estimate_bytes(path: str | Path, framework=None) -> tuple[int, int, int]:
    """(rows, columns, bytes) of reading ``path`` and scoring it with ``framework`` (None: reading
    only), estimated from the file's metadata before anything is read: Parquet and Arrow IPC give
    their row count and schema (8 bytes per number, :data:`TEXT_BYTES` per text cell); a CSV file
    its size and the mean length of its first lines; an Excel workbook 10 times its size."""
    path = Path(path)
    suffix, size = path.suffix.lower(), path.stat().st_size
    kind = _READERS.get(suffix)
    if kind in ("parquet", "ipc"):
        scan = pl.scan_parquet(path) if kind == "parquet" else pl.scan_ipc(path)
        schema = scan.collect_schema()
        rows = int(scan.select(pl.len()).collect().item())
        table = rows * sum(8 if dtype.is_numeric() else TEXT_BYTES for dtype in schema.values())
        columns = len(schema)
    elif kind == "csv":
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
        lines = head.splitlines()
        columns = len(lines[0].split(b"\t" if suffix == ".tsv" else b",")) if lines else 0
        rows = size * max(len(lines) - 1, 1) // max(len(head), 1)
        table = 2 * size  # the decoded text and the table
    else:
        rows, columns, table = 0, 0, 10 * size
    work = 0 if framework is None else rows * 8 * (PER_INDICATOR * len(framework.indicators)
                                                   + PER_NODE * len(framework.node_ids))
    return rows, columns, table + work


def check_memory_for(path: str | Path, framework=None) -> int:
    """Refuse a data file whose reading (and scoring with ``framework``) would not fit in the memory
    available, before it is read (:func:`estimate_bytes`); returns the estimate in bytes.
    ``CITYRANK_MEMORY_CHECK=off`` skips it.

    Raises
    ------
    DataError
        The file's rows and columns, the memory needed and available, and the fix.
    """
    try:
        rows, columns, needed = estimate_bytes(path, framework)
    except (pl.exceptions.PolarsError, OSError, ValueError):
        return 0  # not a readable file of its kind: read_table says why
    available = available_bytes() if memory_check_enabled() else None
    if available is None or needed <= available:
        return needed
    what = f"reading and scoring it with {framework.id!r}" if framework is not None else "reading it"
    raise DataError(f"the data file is too large for the memory available: {what} needs about "
                    f"{format_bytes(needed)} ({rows:,} rows x {columns} columns), but only "
                    f"{format_bytes(available)} is available", path=str(path),
                    fix="score fewer rows (split the file, e.g. by region) or drop unused columns, or run on a "
                    "machine with more memory; CITYRANK_MEMORY_CHECK=off skips this check")


def load_data(
    source: str | Path | pl.DataFrame,
    *,
    unit: str | None = None,
    groups: tuple[str, ...] | list[str] | None = None,
    label: str | None = None,
    sheet: str | None = None,
    encoding: str | None = None,
    skip_rows: int | None = None,
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
    framework
        A :class:`~engine.schema.Framework`, a shipped framework's name or a framework file, whose
        ``data`` section gives the defaults above.
    sheet
        Excel sheet name (default: the first sheet).
    encoding
        Text encoding of a CSV file; by default UTF-8 is tried, then GB18030 (GBK).  The encoding
        read is recorded in ``Dataset.meta["encoding"]`` (and the score recipe).
    skip_rows
        Title rows above the header to skip (CSV and Excel); default: the framework's
        ``data.skip_rows``, else 0.

    Raises
    ------
    DataError
        Unreadable file, unknown dataset name, or a named column that does not exist.
    """
    if isinstance(framework, (str, Path)):  # a shipped framework's name or a framework file
        from ..schema import load_framework

        framework = load_framework(framework)
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
        if skip_rows is None:
            skip_rows = int(hints.get("skip_rows", 0))
        check_memory_for(path, framework)
        table = read_table(path, sheet=sheet, encoding=encoding, skip_rows=skip_rows, meta=meta,
                           text_columns=[c for c in (unit, label, *groups) if c])
        origin = str(path)
        meta.update({"skip_rows": skip_rows} if skip_rows else {}, **({"sheet": sheet} if sheet else {}))
    if unit is None:
        raise DataError("no unit id column given", path=origin,
                        fix="pass --unit COLUMN (or `unit=`), or set data.unit in the framework")
    groups = tuple(g for g in groups if g in table.columns or g not in optional)
    if label is not None and label in optional and label not in table.columns:
        label = None
    missing = [c for c in (unit, *groups, *([label] if label else [])) if c not in table.columns]
    if missing:
        raise DataError(f"column(s) {preview(missing)} not found{suggest(missing[0], table.columns)}; the file "
                        f"has {preview(table.columns, 8)}", column=missing[0], path=origin,
                        fix="check the column names (they are case-sensitive)" + (
                            "; if title rows sit above the header, pass --skip-rows N"
                            if meta.get("encoding") and not skip_rows else ""))
    return Dataset(table=table, unit=unit, groups=groups, label=label, source=origin, meta=meta)
