"""Every ```python block of README.md and docs/*.md runs as written (issue 15.15).

A block whose first line is ``# not-run`` is skipped (keep such marks rare).  Each block runs in a
fresh namespace, in a temporary working directory (snippets may write files), with warnings as
errors like the rest of the suite."""

from __future__ import annotations

import re
import shlex
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


SHELL_FENCE = re.compile(r"^```(?:bash|console|sh)[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def command_lines() -> list:
    """Every ``cityrank …`` line of a shell block in README.md and docs/*.md (comments stripped)."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in SHELL_FENCE.findall(path.read_text(encoding="utf-8")):
            for line in block.splitlines():
                match = re.search(r"(?:^|\s)cityrank\s+(.*)$", line.split(" #")[0].strip())
                if match:
                    argv = shlex.split(match.group(1).replace("$(mktemp -d)", "cache"))
                    found.append(pytest.param(argv, id=f"{path.name}: cityrank {' '.join(argv)}"[:120]))
    return found


def test_the_docs_have_command_lines():
    assert len(command_lines()) >= 20


@pytest.mark.parametrize("argv", command_lines())
def test_command_line_parses(argv, capsys):
    """The documented options exist (long runs are not executed; the parser checks every option, choice
    and type, so a renamed or removed option fails here)."""
    from engine.cli import build_parser

    try:
        build_parser().parse_args(argv)
    except SystemExit as exit:  # --help exits 0; a bad option exits 2
        assert exit.code == 0, capsys.readouterr().err
