"""Statistical audit of an index (issue 18): data, structure, importance, optimised weights, what-if.

``audit(framework, data)`` scores once with :func:`engine.score` and runs each section on the
result.  A section is a module of this package with ``OPTIONS`` (its option names and defaults),
optionally ``check(options)`` and ``check_data(options, framework, dataset)`` (raise before
scoring) and ``section(result, options) -> (tables, flags)``: ``result`` is the
:class:`~engine.ScoreResult` (its ``stages`` hold the raw, treated and normalised arrays),
``options`` the section's options, ``tables`` a dict name → Polars table (stored as
``<section>_<name>``) and ``flags`` a list of :func:`flag` rows.  See ``docs/audit.md``.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import SchemaError

# Standalone analyses (engine.audit.importance(result), ...): after the registry's modules, by name.
from .importance import importance
from .optimise import OptimisedWeights, optimise_weights
from .result import FLAG_SCHEMA, AuditResult, flag, flags_frame
from .whatif import compare_frameworks, what_if

__all__ = ["FLAG_SCHEMA", "SECTIONS", "AuditResult", "OptimisedWeights", "audit", "compare_frameworks", "flag",
           "importance", "optimise_weights", "what_if"]

#: Every section, in order.  A section not yet in :data:`SECTIONS` is skipped (named in the verdict).
KNOWN = ("data", "structure", "importance", "weights", "whatif")
#: Section name → module of this package (one line per section).
SECTIONS: dict[str, str] = {
    "data": "data",
    "structure": "structure",
    "importance": "importance",
    "weights": "optimise",
    "whatif": "whatif",
}


def _modules(sections: Iterable[str]) -> dict[str, Any]:
    sections = list(sections)
    unknown = [s for s in sections if s not in KNOWN]
    if unknown or not sections:
        raise SchemaError(f"unknown audit section(s) {unknown}" if unknown else "no audit section given", node=None,
                          fix=f"choose among {', '.join(KNOWN)}")
    return {s: importlib.import_module(f".{SECTIONS[s]}", __name__) for s in KNOWN if s in sections and s in SECTIONS}


def _options(modules: Mapping[str, Any], options: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Each section's options: its defaults updated by the given ones; a name no section knows is refused."""
    options = dict(options or {})
    known = {name for m in modules.values() for name in m.OPTIONS}
    unknown = sorted(set(options) - known)
    if unknown:
        raise SchemaError(f"unknown audit option(s) {unknown}", node=None,
                          fix=f"the sections run ({', '.join(modules)}) accept: {', '.join(sorted(known))}")
    settings = {s: {**m.OPTIONS, **{k: v for k, v in options.items() if k in m.OPTIONS}} for s, m in modules.items()}
    for name, module in modules.items():
        if hasattr(module, "check"):  # optional: refuse bad values before scoring
            module.check(settings[name])
    return settings


def audit(framework, data=None, *, sections: Iterable[str] = KNOWN, options: Mapping[str, Any] | None = None,
          edition: Any = None, normalisation: str | None = None, **load_kwargs) -> AuditResult:
    """Audit an index: score it once, then run each section on the result.

    Parameters
    ----------
    framework, data, **load_kwargs
        As for :func:`engine.score` (a framework file or shipped name; a data file, DataFrame,
        shipped dataset or None for the framework's own).
    edition, normalisation
        Audit one period of panel data (``data`` one table with a unit and a period column,
        ``load_kwargs`` then only ``period=``/``unit=`` naming them): the period is scored with
        :meth:`engine.panel.Panel.framework` (``normalisation`` ``"period"``, the default, or ``"panel"``) and
        what loading the panel found (renamed ids, zeros read as missing, implausible values by
        unit and period, series imputation) leads the ``data`` flags
        (:func:`engine.audit.edition.audit_edition`).
    sections
        Which parts to run, in the order of :data:`KNOWN`.
    options
        Thresholds and choices of the sections (flat: name → value), e.g. ``{"redundant": 0.95,
        "structure_stage": "treated"}``; each section's ``OPTIONS`` lists its names and defaults.

    Returns
    -------
    AuditResult
        ``tables``, ``flags``, ``recipe``, ``verdict()``, ``write(path)``.

    Raises
    ------
    SchemaError
        Unknown section or option, or an option that does not fit the data (before any
        scoring); ``normalisation=`` or ``period=`` without ``edition=``; the errors of
        :func:`engine.score`.
    """
    from ..pipeline import as_dataset, score
    from ..schema import load_framework

    if edition is not None:
        from .edition import audit_edition

        return audit_edition(framework, data, edition, normalisation="period" if normalisation is None else
                             normalisation, sections=sections, options=options, **load_kwargs)
    panel_only = [f"{name}=" for name, given in (("normalisation", normalisation is not None),
                                                 ("period", "period" in load_kwargs)) if given]
    if panel_only:
        raise SchemaError(f"option(s) {' and '.join(panel_only)} apply only to one edition of panel data",
                          fix="pass edition= (the period to audit), or leave out " + " and ".join(panel_only))
    modules = _modules(sections)
    settings = _options(modules, options)
    started = time.perf_counter()
    framework = load_framework(framework)
    dataset = as_dataset(framework, data, **load_kwargs)
    for name, module in modules.items():
        if hasattr(module, "check_data"):  # optional: options against the data, before scoring
            module.check_data(settings[name], framework, dataset)
    result = score(framework, dataset)
    tables: dict[str, Any] = {}
    flags: list[dict[str, Any]] = []
    timings = {}
    for name, module in modules.items():
        t0 = time.perf_counter()
        section_tables, section_flags = module.section(result, settings[name])
        timings[name] = round(time.perf_counter() - t0, 4)
        tables.update({f"{name}_{key}": table for key, table in section_tables.items()})
        flags.extend(section_flags)
    recipe = {"audit": {"framework": result.framework.id, "n_units": result.table.height,
                        "sections": list(modules), "skipped": [s for s in KNOWN if s in set(sections) - set(modules)],
                        "options": settings, "wall_time_s": round(time.perf_counter() - started, 4),
                        "section_time_s": timings},
              "score": result.recipe}
    return AuditResult(tables=tables, flags=flags_frame(flags), recipe=recipe, score=result)
