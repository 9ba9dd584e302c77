"""How results show themselves: a short summary and the head of their per-unit table, as text (``repr``)
and as HTML (Jupyter's ``_repr_html_``).  Every result class calls these two functions, so the
analyses look alike."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

import polars as pl

__all__ = ["manifest_summary", "result_html", "result_text"]

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
