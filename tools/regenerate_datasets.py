"""Regenerate the shipped SYNTHETIC datasets in ``engine/datasets/`` from their seeded generators.

Run from a source checkout (the generators are not installed with cityrank)::

    python -m tools.regenerate_datasets            # rewrite the six files
    python -m tools.regenerate_datasets --check    # exit 1 if a shipped file differs from its generator

The tests (tests/synthetic, tests/analysis/test_bootstrap.py) check that the shipped files are the
generators' output, so a change to a generator needs this script and a commit of the new files.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl

from engine.resources import DATASET_DIR
from tools.synthetic.cities import generate_ai_cities
from tools.synthetic.firm_panel import firm_panel_indicators, generate_ai_firm_panel
from tools.synthetic.firms import generate_ai_firms
from tools.synthetic.provinces import firm_indicators, generate_regional_ai_provinces

SEED = 2024

#: Shipped file name -> generator of its table.
GENERATORS: dict[str, Callable[[], pl.DataFrame]] = {
    "ai_cities_synthetic.csv": lambda: generate_ai_cities(SEED),
    "ai_firms_synthetic.csv": lambda: generate_ai_firms(SEED),
    "regional_ai_provinces_synthetic.csv": lambda: generate_regional_ai_provinces(SEED),
    "ai_firm_cities_synthetic.csv": lambda: firm_indicators(generate_ai_firms(SEED), "city"),
    "ai_firms_panel_synthetic.csv": lambda: generate_ai_firm_panel(SEED),
    "ai_firm_cities_panel_synthetic.csv": lambda: firm_panel_indicators(generate_ai_firm_panel(SEED)),
}


def regenerate(directory: Path = DATASET_DIR, check: bool = False) -> list[str]:
    """Write every generated table into ``directory`` (or, with ``check``, only compare); returns
    the names of the files whose bytes differ(ed) from the generator's CSV."""
    changed = []
    for name, generate in GENERATORS.items():
        path = Path(directory) / name
        text = generate().write_csv()
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            changed.append(name)
            if not check:
                path.write_text(text, encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if a file differs")
    parser.add_argument("--dir", type=Path, default=DATASET_DIR, help="target folder (default: engine/datasets)")
    args = parser.parse_args(argv)
    changed = regenerate(args.dir, check=args.check)
    for name in changed:
        print(f"{'differs' if args.check else 'rewritten'}: {name}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
