"""The result of an audit: named tables, a table of flags, the settings, and a short verdict."""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..display import ResultShape
from ..errors import preview

__all__ = ["FLAG_SCHEMA", "AuditResult", "flag"]

#: Columns of :attr:`AuditResult.flags` (``units``: the units concerned, comma-separated, first 5 and a count).
FLAG_SCHEMA = {"section": pl.String, "level": pl.String, "node": pl.String, "column": pl.String,
               "units": pl.String, "message": pl.String}
LEVELS = ("warning", "note")


def flag(section: str, level: str, message: str, *, node: str | None = None, column: str | None = None,
         units: Iterable[object] | None = None) -> dict[str, Any]:
    """One row of the flags table.  ``level``: ``"warning"`` (look at it before trusting the index)
    or ``"note"`` (worth knowing); ``node``: the node concerned, ``column``: a data column or a
    second node (the other member of a pair), ``units``: the units concerned."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    units = list(units) if units is not None else []
    return {"section": section, "level": level, "node": node, "column": column,
            "units": preview(units).replace("'", "") if units else None, "message": message}


def flags_frame(rows: Iterable[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=FLAG_SCHEMA, orient="row")


@dataclass(frozen=True, eq=False)
class AuditResult(ResultShape):
    """Tables and flags of a statistical audit (see ``docs/audit.md``).

    ``tables`` are named ``<section>_<name>`` (e.g. ``structure_correlations``); ``flags`` has one
    row per finding (columns :data:`FLAG_SCHEMA`); ``recipe`` holds the score recipe and the audit
    settings (the manifest written with the tables)."""

    tables: dict[str, pl.DataFrame]  #: Name → table, in section order.
    flags: pl.DataFrame  #: section, level ("warning"/"note"), node, column, units, message.
    recipe: dict[str, Any]  #: Score recipe (``score``) and audit settings (``audit``).
    score: Any = field(default=None, repr=False)  #: The :class:`engine.ScoreResult` audited.

    def __getitem__(self, name: str) -> pl.DataFrame:
        return self.tables[name]

    @property
    def units(self) -> pl.DataFrame:
        """The per-unit table: the data section's ``data_availability_units`` (unit, indicators
        available, availability overall and under every aggregate); no rows when the data section
        was not run."""
        return self.tables.get("data_availability_units", pl.DataFrame(schema={"unit": pl.String}))

    @property
    def manifest(self) -> dict[str, Any]:
        """What was run: :attr:`recipe` (written with the tables)."""
        return self.recipe

    @property
    def warnings(self) -> pl.DataFrame:
        return self.flags.filter(pl.col("level") == "warning")

    def verdict(self, limit: int = 20) -> str:
        """A short text: what was audited, how many warnings and notes, and the warnings (then the
        notes) one line each, at most ``limit`` lines."""
        audit = self.recipe.get("audit", {})
        n_warn = self.warnings.height
        n_note = self.flags.height - n_warn
        head = (f"audit of {audit.get('framework', '?')!r} on {audit.get('n_units', '?')} units "
                f"({', '.join(audit.get('sections', []))}): {n_warn} warning(s), {n_note} note(s)")
        if audit.get("skipped"):
            head += f"; not available: {', '.join(audit['skipped'])}"
        lines = [head]
        ordered = self.flags.with_row_index("_order").sort(pl.col("level") != "warning", "_order")
        for row in ordered.head(limit).iter_rows(named=True):
            where = " / ".join(v for v in (row["node"], row["column"]) if v)
            lines.append(f"  {row['level']} [{row['section']}] {where + ': ' if where else ''}{row['message']}")
        if self.flags.height > limit:
            lines.append(f"  … {self.flags.height - limit} more in the flags table")
        return "\n".join(lines)

    def write(self, path: str | Path, format: str | None = None) -> Path:
        """Write every table and the flags (table ``flags``) with the manifest: a folder of Parquet
        files (default) or CSV files (``format="csv"``), or one workbook (a ``.xlsx`` path, or
        ``format="xlsx"``); see :func:`engine.io.write_tables`."""
        from ..io import atomic_write, check_output, write_tables

        check_output(path, "tables")
        out = write_tables({**self.tables, "flags": self.flags}, path, manifest=self.recipe, format=format)
        # the weights section's optimised frameworks also as ready-to-use files: framework_<objective>.yaml
        # in the folder (beside a workbook: <workbook stem>.framework_<objective>.yaml)
        for objective, text in self.tables.get("weights_frameworks", pl.DataFrame(
                schema={"objective": pl.String, "framework": pl.String})).iter_rows():
            name = f"framework_{objective}.yaml"
            target = out.parent / f"{out.stem}.{name}" if out.suffix.lower() == ".xlsx" else out / name
            atomic_write(target, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
        return out

    def __repr__(self) -> str:
        shapes = ", ".join(f"{name} ({t.height}×{t.width})" for name, t in self.tables.items())
        return f"AuditResult\n{self.verdict()}\ntables: {shapes}"

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{html.escape(name)}</td><td>{t.height}</td><td>{t.width}</td></tr>"
                       for name, t in self.tables.items())
        return (f"<pre>{html.escape(self.verdict())}</pre><table><tr><th>table</th><th>rows</th><th>columns</th></tr>"
                f"{rows}</table>")
