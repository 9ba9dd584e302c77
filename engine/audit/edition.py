"""The audit of one edition of a panel: the period's audit plus what loading the panel found.

``engine.audit(framework, panel, edition=2012)`` / ``cityrank audit -f F --edition 2012`` loads the
panel (:func:`engine.panel.load_panel`: aliases, zeros read as missing, series imputation, the
plausible ranges of every cell named ``unit @ period``), audits the period scored with
:meth:`Panel.framework`, and puts the panel's findings first among the ``data`` flags, so that a
rate above 100 % in any year is in the audit's flags rather than only in a console warning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import polars as pl

from ..errors import preview
from ..panel import Panel, load_edition, said_by_load_panel
from .result import AuditResult, flag, flags_frame

__all__ = ["audit_edition", "panel_flags"]

SECTION = "data"


def panel_flags(panel: Panel) -> list[dict[str, Any]]:
    """The flags of what loading ``panel`` did (:attr:`Panel.notes`): renamed ids, zeros read as
    missing, implausible values (by unit and period) and what series imputation filled."""
    notes = panel.notes
    flags = []
    if notes.get("aliases"):
        shown = [f"{old} -> {new} ({', '.join(map(str, when))})" for old, (new, when) in notes["aliases"].items()]
        flags.append(flag(SECTION, "warning", f"panel: unit ids renamed by data.aliases: {preview(shown, 10)}",
                          units=[new for new, _ in notes["aliases"].values()]))
    for column, count in (notes.get("zero_missing") or {}).items():
        flags.append(flag(SECTION, "warning", f"panel: {count} zeros of {column!r} read as missing "
                          "(data.zero_missing: 0 means not reported)", column=column))
    for message in notes.get("implausible") or ():
        flags.append(flag(SECTION, "warning", f"panel: {message}"))
    for column, done in (notes.get("imputed") or {}).items():
        if not done["filled"] and not done["left"]:
            continue
        left = f", {done['left']} left missing (no earlier observation)" if done["left"] else ""
        flags.append(flag(SECTION, "note", f"panel: {done['filled']} values of {column!r} filled from the unit's "
                          f"own series ({done['method']}){left}", column=column))
    return flags


def audit_edition(framework, data, edition: Any, *, normalisation: str = "period", sections: Iterable[str],
                  options: Mapping[str, Any] | None = None, period: str | None = None, unit: str | None = None,
                  **load_kwargs: Any) -> AuditResult:
    """Audit period ``edition`` of the panel ``data`` (see the module docstring); ``period`` and
    ``unit`` name the panel's columns (default: the framework's ``data.period`` and ``data.unit``)."""
    from . import audit

    panel, edition_framework, dataset = load_edition(framework, data, edition, normalisation, period=period,
                                                     unit=unit, **load_kwargs)
    with said_by_load_panel():
        result = audit(edition_framework, dataset, sections=sections, options=options)
    found = panel_flags(panel)
    recipe = {**result.recipe, "panel": {"edition": str(edition), "periods": [str(p) for p in panel.periods],
                                         "period_column": panel.period, "normalisation": normalisation,
                                         "flags": len(found)}}
    flags = pl.concat([flags_frame(found), result.flags]) if found else result.flags
    return replace(result, flags=flags, recipe=recipe)
