"""Where the files that ship with cityrank live (schemas, frameworks, datasets, analysis specs).

In a source checkout or an editable install the JSON Schemas are read from the top-level
``schemas/`` folder; a wheel carries the same files as ``engine/_schemas`` (see pyproject.toml).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
FRAMEWORK_DIR = PACKAGE_DIR / "frameworks"
DATASET_DIR = PACKAGE_DIR / "datasets"
SPEC_DIR = PACKAGE_DIR / "specs"


def schema_dir() -> Path:
    """The folder holding the JSON Schemas."""
    for candidate in (PACKAGE_DIR / "_schemas", PACKAGE_DIR.parent / "schemas"):
        if (candidate / "framework.schema.json").is_file():
            return candidate
    raise FileNotFoundError(
        "cityrank's JSON Schemas are missing from the installation "
        f"(looked in {PACKAGE_DIR / '_schemas'} and {PACKAGE_DIR.parent / 'schemas'}); reinstall the package"
    )


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load ``schemas/<name>.schema.json``."""
    with open(schema_dir() / f"{name}.schema.json", encoding="utf-8") as handle:
        return json.load(handle)


def shipped_frameworks() -> dict[str, Path]:
    """Shipped framework files by name (file stem)."""
    return {path.stem: path for path in sorted(FRAMEWORK_DIR.glob("*.yaml"))}


def shipped_datasets() -> dict[str, Path]:
    """Shipped dataset files by name (file stem)."""
    found: dict[str, Path] = {}
    for pattern in ("*.csv", "*.parquet"):
        for path in sorted(DATASET_DIR.glob(pattern)):
            found.setdefault(path.stem, path)
    return dict(sorted(found.items()))


def shipped_specs() -> dict[str, Path]:
    """Shipped analysis specifications by name (file stem, e.g. ``regional-ai-2023.bootstrap``)."""
    return {path.stem: path for path in sorted(SPEC_DIR.glob("*.yaml"))}
