"""The one shape of cityrank's results: a per-unit Polars table ``.units``, a ``.manifest`` (what was
run, seed included), ``.write(out, format=...)`` (every file atomic) and a short summary with the
head of the per-unit table as text (``repr``) and as HTML (Jupyter's ``_repr_html_``).

:class:`ResultShape` is the home of this shape: every result class derives from it, so the analyses
look and write alike."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

import polars as pl

from .io import check_output, write_tables

__all__ = ["ResultShape", "manifest_summary", "result_html", "result_text"]

ROWS = 5  #: Rows of the per-unit table shown.


def manifest_summary(manifest: Mapping[str, Any] | None) -> dict[str, Any]:
    """The facts a reader wants first, from a run's manifest: framework, units, replicates, seed, time."""
    manifest = manifest or {}
    framework = manifest.get("framework")
    data = manifest.get("data") or {}
    facts = {
        "framework": framework.get("id") if isinstance(framework, Mapping) else framework,
        "units": data.get("n_units") if isinstance(data, Mapping) else None,
        "mode": manifest.get("mode"),
        "replicates": manifest.get("replicates"),
        "base samples": manifest.get("base_samples"),
        "evaluations": manifest.get("evaluations"),
        "seed": manifest.get("seed"),
        "wall time": f"{manifest['wall_time_s']:.2f} s" if isinstance(manifest.get("wall_time_s"), float) else None,
    }
    return {key: value for key, value in facts.items() if value is not None}


def _facts_text(facts: Mapping[str, Any]) -> str:
    return ", ".join(f"{key} {value:,}" if isinstance(value, int) and not isinstance(value, bool) else f"{key} {value}"
                     for key, value in facts.items())


def result_text(title: str, facts: Mapping[str, Any], table: pl.DataFrame, rows: int = ROWS) -> str:
    """``Title (facts)`` then the first ``rows`` rows of ``table`` (a readable ``repr``)."""
    with pl.Config(tbl_rows=rows, tbl_cols=8, fmt_str_lengths=24):
        head = repr(table.head(rows))
    more = f"\n… {table.height - rows:,} more rows: .units" if table.height > rows else ""
    return f"{title} ({_facts_text(facts)})\n{head}{more}"


def result_html(title: str, facts: Mapping[str, Any], table: pl.DataFrame, rows: int = ROWS) -> str:
    """The same as :func:`result_text` as an HTML fragment (Jupyter)."""
    return (f"<div><p><strong>{escape(title)}</strong> — {escape(_facts_text(facts))}</p>"
            f"{table.head(rows)._repr_html_()}"
            f"<p>{table.height:,} rows × {table.width} columns; all of them: <code>.units</code></p></div>")


class ResultShape:
    """Mixin of every result class: ``repr``/``_repr_html_`` and ``write`` from three members.

    A subclass provides ``units`` (its per-unit Polars table), ``manifest`` (a JSON-serialisable
    dict) and ``output_tables()`` (name → table, the files :meth:`write` makes); it may override
    ``summary()`` (the facts shown before the table, default :func:`manifest_summary`) and
    ``shown()`` (the table shown, default ``units``).  A dataclass subclass must say
    ``@dataclass(repr=False)``, or the dataclass ``repr`` replaces this one."""

    units: pl.DataFrame
    manifest: dict[str, Any]

    def output_tables(self) -> dict[str, pl.DataFrame]:
        """The tables :meth:`write` writes (name → table); default: ``units`` alone."""
        return {"units": self.units}

    def summary(self) -> dict[str, Any]:
        """The facts shown before the table (framework, units, replicates, seed, ...)."""
        return manifest_summary(self.manifest)

    def shown(self) -> pl.DataFrame:
        """The table whose head ``repr`` shows."""
        return self.units

    def write(self, out: str | Path, *, format: str | None = None) -> Path:
        """Write :meth:`output_tables` and the manifest, each file atomically: a folder of Parquet
        (default) or CSV files (``format="csv"``) with ``manifest.json``, or one Excel workbook
        (``out`` ending in ``.xlsx``, or ``results.xlsx`` in the folder with ``format="xlsx"``).  An
        output path that cannot be written is refused before anything is written (``DataError``,
        :func:`engine.io.check_output`).  Returns ``out``."""
        check_output(out, "tables")
        return write_tables(self.output_tables(), out, manifest=self.manifest, format=format)

    def __repr__(self) -> str:
        return result_text(type(self).__name__, self.summary(), self.shown())

    def _repr_html_(self) -> str:
        return result_html(type(self).__name__, self.summary(), self.shown())
