"""Typed errors and warnings of the engine.

Every error says what failed, where (node, column, units, path), shows the offending values
(the first five and a count) and how to fix it.  Errors are raised at the schema/data boundary,
before any work starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "EngineError",
    "SchemaError",
    "DataError",
    "BackendError",
    "EngineWarning",
    "ConstantIndicatorWarning",
    "DataQualityWarning",
    "ImputationWarning",
    "TreatmentWarning",
    "MissingRankWarning",
    "preview",
]


def preview(values: Iterable[object], limit: int = 5) -> str:
    """Format the first ``limit`` values and a count, e.g. ``'A', 'B' (2 in all)``."""
    items = list(values)
    shown = ", ".join(repr(v) for v in items[:limit])
    if len(items) > limit:
        shown += f", … ({len(items)} in all)"
    return shown


class EngineError(Exception):
    """Base class of the engine's errors.

    Attributes are structured so that callers can react programmatically; ``str()`` gives a
    one-paragraph message: what failed, where, the offending values and the fix.
    """

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        column: str | None = None,
        units: Sequence[object] | None = None,
        path: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.node = node
        self.column = column
        self.units = list(units) if units is not None else None
        self.path = path
        self.fix = fix
        super().__init__(message)

    def __str__(self) -> str:
        parts = []
        if self.path:
            parts.append(f"{self.path}:")
        where = []
        if self.node is not None:
            where.append(f"node {self.node!r}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        if where:
            parts.append(" / ".join(where) + ":")
        parts.append(self.message.rstrip("."))
        text = " ".join(parts) + "."
        if self.units:
            text += f" Units: {preview(self.units)}."
        if self.fix:
            text += f" Fix: {self.fix.rstrip('.')}."
        return text


class SchemaError(EngineError, ValueError):
    """A framework or specification file is invalid (structure, ids, weights, methods)."""


class DataError(EngineError, ValueError):
    """The data do not fit the framework (missing/non-numeric columns, duplicates, bad values)."""


class BackendError(EngineError, RuntimeError):
    """A compute backend failed (scheduler unreachable, worker lost beyond recovery)."""


class EngineWarning(UserWarning):
    """Base class of the engine's warnings."""


class ConstantIndicatorWarning(EngineWarning):
    """An indicator has a single distinct value; the constant-indicator policy was applied."""


class ImputationWarning(EngineWarning):
    """Imputation could not fill every missing value (e.g. a whole group is missing)."""


class DataQualityWarning(EngineWarning):
    """Data values outside an indicator's plausible range (a percentage above 100, a negative count,
    or the range the framework declares): probably a unit or decimal-point error in the data."""


class TreatmentWarning(EngineWarning):
    """Outlier treatment could not bring an indicator within the skew/kurtosis thresholds."""


class MissingRankWarning(EngineWarning):
    """Replicates of an uncertainty, sensitivity or bootstrap run left some ranks missing (a unit got no
    score); the message gives the count and the share."""


class CheckpointWarning(EngineWarning):
    """Something about a run's checkpoint folder worth knowing (e.g. a stale lock taken over)."""
