"""Audit section "data" (see docs/audit.md)."""

from __future__ import annotations

from typing import Any

OPTIONS: dict[str, Any] = {}


def section(result, options: dict[str, Any]) -> tuple[dict, list[dict]]:
    return {}, []
