"""Atomic output files: write to a temporary file in the target folder, then rename.

A crash or an error while writing never leaves a half-written result under the final name.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from .errors import DataError

__all__ = ["atomic_write", "write_table", "write_json", "TABLE_FORMATS"]

TABLE_FORMATS = (".parquet", ".csv", ".xlsx", ".arrow", ".ipc")


def atomic_write(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` then move the temporary file to ``path`` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, document: Any) -> Path:
    """Write JSON atomically (UTF-8, indented, non-ASCII kept)."""
    text = json.dumps(document, indent=2, ensure_ascii=False, default=str)
    return atomic_write(path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


def write_table(table: pl.DataFrame, path: str | Path, *, metadata: dict[str, Any] | None = None) -> Path:
    """Write a table as Parquet, CSV, Excel or Arrow IPC (by extension), atomically.

    ``metadata`` (e.g. the recipe) goes into the Parquet/Arrow schema metadata under
    ``cityrank``, into a second sheet ``recipe`` of an Excel file, and into a sidecar
    ``<file>.recipe.json`` next to a CSV file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise DataError(f"unsupported output format {suffix!r}", path=str(path),
                        fix=f"use one of {', '.join(TABLE_FORMATS)}")
    text = json.dumps(metadata or {}, ensure_ascii=False, default=str)
    if suffix in (".parquet", ".arrow", ".ipc"):
        import pyarrow.feather as feather
        import pyarrow.parquet as pq

        arrow = table.to_arrow()
        arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), b"cityrank": text.encode()})
        if suffix == ".parquet":
            return atomic_write(path, lambda tmp: pq.write_table(arrow, tmp))
        return atomic_write(path, lambda tmp: feather.write_feather(arrow, tmp, compression="uncompressed"))
    if suffix == ".csv":
        written = atomic_write(path, lambda tmp: table.write_csv(tmp))
        if metadata is not None:
            write_json(path.with_name(path.name + ".recipe.json"), metadata)
        return written

    def excel(tmp: Path) -> None:
        import xlsxwriter

        with xlsxwriter.Workbook(str(tmp)) as workbook:
            table.write_excel(workbook=workbook, worksheet="scores")
            sheet = workbook.add_worksheet("recipe")
            for row, line in enumerate(json.dumps(metadata or {}, indent=1, ensure_ascii=False,
                                                  default=str).splitlines()):
                sheet.write_string(row, 0, line)

    return atomic_write(path, excel)
