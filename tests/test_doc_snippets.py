"""Every ```python block of README.md and docs/*.md runs as written (issue 15.15).

A block whose first line is ``# not-run`` is skipped (keep such marks rare).  Each block runs in a
fresh namespace, in a temporary working directory (snippets may write files), with warnings as
errors like the rest of the suite."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def snippets() -> list:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(pytest.param(path, line, match.group(1), id=f"{path.relative_to(ROOT)}:{line}"))
    return found


def test_the_docs_have_python_snippets():
    assert len(snippets()) >= 3  # README, bootstrap, rank confidence sets (the extraction works)


@pytest.mark.parametrize(("path", "line", "code"), snippets())
def test_snippet_runs(path: Path, line: int, code: str, tmp_path, monkeypatch):
    if code.lstrip().startswith("# not-run"):
        pytest.skip("marked # not-run")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"{path.name}:{line}", "exec"), {"__name__": "__snippet__"})
