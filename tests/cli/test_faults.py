"""Foreseeable faults end with exit 2 and one paragraph, never a traceback (issue 21.9); a genuine
bug keeps its traceback."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main


def _stored_run(folder: Path) -> list[str]:
    """A finished run stored in ``folder`` with its checkpoints; returns the arguments that resume it."""
    args = ["uncertainty", "-f", "asem", "-n", "2048", "--seed", "3", "-q", "--top", "1"]
    assert main([*args, "-o", str(folder), "--keep-checkpoints"]) == 0
    return [*args, "--resume", str(folder)]


def _output_is_a_directory(tmp_path: Path) -> list[str]:
    (tmp_path / "out.csv").mkdir()
    return ["score", "-f", "asem", "-o", str(tmp_path / "out.csv")]


def _output_folder_is_a_file(tmp_path: Path) -> list[str]:
    (tmp_path / "taken").write_text("a file")
    return ["uncertainty", "-f", "asem", "-n", "1024", "-q", "-o", str(tmp_path / "taken")]


def _malformed_scheduler(tmp_path: Path) -> list[str]:
    return ["uncertainty", "-f", "asem", "-n", "1024", "-q", "--scheduler", "foo::bar"]


def _corrupt_run_json(tmp_path: Path) -> list[str]:
    resume = _stored_run(tmp_path / "run")
    (tmp_path / "run" / "run.json").write_text('{"seed": 3, "framew')
    return resume


def _stray_chunk_file(tmp_path: Path) -> list[str]:
    resume = _stored_run(tmp_path / "run")
    chunks = tmp_path / "run" / "chunks"
    chunks.mkdir(exist_ok=True)
    (chunks / "chunk_000000000_000000001.npz").write_bytes(b"not a zip file")
    return resume


FAULTS = {
    "output is a directory": _output_is_a_directory,
    "uncertainty -o is a file": _output_folder_is_a_file,
    "malformed --scheduler": _malformed_scheduler,
    "corrupt run.json": _corrupt_run_json,
    "stray chunk file": _stray_chunk_file,
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_exits_2_without_traceback(fault, tmp_path, capsys):
    argv = FAULTS[fault](tmp_path)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cityrank: error:") and "Traceback" not in err and "Fix:" in err


@pytest.mark.parametrize("fault", ["output is a directory", "malformed --scheduler"])
def test_fault_exits_2_without_traceback_in_a_subprocess(fault, tmp_path):
    argv = FAULTS[fault](tmp_path)
    done = subprocess.run([sys.executable, "-m", "engine.cli", *argv], capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.startswith("cityrank: error:")


def test_memory_error_is_one_paragraph_with_the_figure(monkeypatch, capsys):
    import engine.analysis.uncertainty as run

    def too_big(*args, **kwargs):
        return np.empty((10**7, 10**7))  # NumPy's _ArrayMemoryError: "Unable to allocate 728. TiB …"

    monkeypatch.setattr(run, "build_problem", too_big)
    assert main(["uncertainty", "-f", "asem", "-n", "1024", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cityrank: error: out of memory: Unable to allocate") and "TiB" in err
    assert "Fix: use fewer units or replicates" in err and err.count("\n") == 1


def test_os_error_on_output_is_one_paragraph(monkeypatch, tmp_path, capsys):
    from engine.pipeline import ScoreResult

    def full_disk(self, path, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(ScoreResult, "write", full_disk)
    assert main(["score", "-f", "asem", "-o", str(tmp_path / "s.parquet")]) == 2
    err = capsys.readouterr().err
    assert err == (f"cityrank: error: No space left on device ({tmp_path / 's.parquet'}). Fix: check the path, "
                   "its permissions and the free disk space.\n")


def test_a_bug_keeps_its_traceback(monkeypatch):
    import engine.pipeline as pipeline

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a genuine bug")

    monkeypatch.setattr(pipeline, "score", bug)
    with pytest.raises(ZeroDivisionError, match="a genuine bug"):
        main(["score", "-f", "asem"])


def test_a_closed_pipe_stops_quietly(tmp_path):
    """``cityrank score … | head -1``: the reader closes the pipe; cityrank stops with no error or traceback
    (it used to print "Broken pipe … Fix: check the path" and exit 2) and exit status 141 (128 + SIGPIPE)."""
    import subprocess
    import sys

    script = "import sys; from engine.cli import main; sys.exit(main(['score', '-f', 'asem']))"
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        proc.stdout.close()  # the reader goes away before cityrank prints its table
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=300) == 141
    assert err.replace("cityrank: compiling kernels (first run only; later runs load them from the cache)…\n",
                                 "") == ""
