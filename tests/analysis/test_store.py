"""Checkpoints (engine.analysis.store): lock, fingerprint per chunk, integrity checks, overwrite,
clean-up, resume cost (issue 21 items 1, 2, 3, 5, 9; issue 15 item 12)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

from engine.analysis import store as store_module
from engine.analysis.exact import N_LIMBS
from engine.analysis.store import LOCK_NAME, ChunkStore
from engine.analysis.uncertainty import uncertainty
from engine.cli import main
from engine.errors import CheckpointWarning, DataError

SPEC = {"weights": [{"depth": 1, "noise": 0.25}, {"depth": 2, "noise": 0.25}], "pairs": ["CHE", "NLD"]}
RUN = {"spec": SPEC, "replicates": 4 * 1024, "seed": 1, "block_size": 1024, "chunk_blocks": 1}


def _run(out, **options):
    return uncertainty("asem", out=out, **{**RUN, **options})


@pytest.fixture(scope="module")
def expected():
    return uncertainty("asem", **RUN)


@pytest.fixture
def stored(tmp_path):
    """A finished run's folder with its 4 chunks kept."""
    out = tmp_path / "run"
    _run(out, keep_checkpoints=True)
    return out


def _chunks(out):
    return sorted((out / "chunks").glob("chunk_*.npz"))


def _rewrite(path, change, checksum: bool):
    """Rewrite a chunk file with ``change(arrays)`` applied, with a recomputed checksum or not."""
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    change(arrays)
    if checksum:
        arrays["checksum"] = np.array(store_module._checksum(arrays))
    with open(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def _tables_equal(a, b):
    for table in ("units", "acceptability", "pairs", "rank_shift"):
        for target, frame in getattr(b.statistics, table).items():
            got = getattr(a.statistics, table)[target]
            for column in frame.columns:
                np.testing.assert_array_equal(got[column].to_numpy(), frame[column].to_numpy(), err_msg=column)


# -- 15.12: clean-up after success, differing values named -------------------------------------

def test_checkpoints_are_removed_after_success_unless_kept(tmp_path, stored):
    out = tmp_path / "plain"
    _run(out)
    assert not (out / "chunks").exists() and not (out / "run.json").exists() and not (out / LOCK_NAME).exists()
    assert (out / "units.parquet").exists() and (out / "manifest.json").exists()
    assert len(_chunks(stored)) == 4 and (stored / "run.json").exists() and not (stored / LOCK_NAME).exists()


def test_a_resume_with_another_seed_names_the_stored_and_the_new_value(stored):
    with pytest.raises(DataError, match=r"differs in seed: stored 1, this run 2"):
        _run(stored, seed=2, resume=True)


# -- 21.1/21.5: resume cost, flat memory ---------------------------------------------------------

def test_a_resume_reads_each_stored_array_once_and_is_bit_identical(stored, expected, monkeypatch):
    """Loading decompressed the moments array once per block (64× per chunk) and kept every
    chunk's state until the merge; now each array of a chunk is read once and added in."""
    for path in _chunks(stored)[1:3]:
        path.unlink()
    reads = []
    getitem = np.lib.npyio.NpzFile.__getitem__

    def counted(self, key):
        reads.append(key)
        return getitem(self, key)

    monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", counted)
    resumed = _run(stored, resume=True)
    assert resumed.manifest["resumed_chunks"] == 2
    assert len(reads) == 2 * len(set(reads)) and len(set(reads)) == len(store_module._ARRAYS) + 1
    _tables_equal(resumed, expected)


def test_score_moments_take_the_same_memory_for_any_number_of_replicates(expected):
    """The per-1,024-replicate score sums were all kept (units × replicates/1024 floats)."""
    from engine.analysis.montecarlo import run_chunk
    from engine.analysis.spec import load_spec, resolve_factors

    problem = expected.problem
    factors = resolve_factors(load_spec(SPEC), problem.framework)
    shapes = {run_chunk(problem, factors, 1, 0, blocks, 1024).moments.limbs.shape for blocks in (1, 8)}
    assert shapes == {(len(problem.targets), problem.n_units, 2, N_LIMBS)}


# -- 21.2: lock and run fingerprint per chunk ----------------------------------------------------

def test_a_folder_in_use_is_refused_and_released_after(tmp_path, expected):
    out = tmp_path / "run"
    with ChunkStore(out, {"other": "run"}, resume=False, block_size=1024, n_replicates=4096):
        assert (out / LOCK_NAME).exists()
        with pytest.raises(DataError, match=rf"in use by another run \(pid {os.getpid()} on host") as info:
            _run(out, seed=2)
        assert "choose another --out folder" in info.value.fix
    assert not (out / LOCK_NAME).exists()
    _tables_equal(_run(out, overwrite=True), expected)


def test_a_lock_of_another_host_is_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text('{"pid": 1, "host": "elsewhere.example", "since": "today"}')
    with pytest.raises(DataError, match=r"in use by another run .pid 1 on host elsewhere\.example"):
        _run(out)


def test_a_stale_lock_is_taken_over_with_a_note(tmp_path, expected):
    out = tmp_path / "run"
    out.mkdir()
    pid = _dead_pid()
    (out / LOCK_NAME).write_text(f'{{"pid": {pid}, "host": "{socket.gethostname()}", "since": "before"}}')
    with pytest.warns(CheckpointWarning, match=f"taking over the lock of a run that no longer runs .pid {pid}"):
        run = _run(out)
    _tables_equal(run, expected)
    assert not (out / LOCK_NAME).exists()


def test_a_chunk_of_another_run_is_refused_by_name(tmp_path, stored):
    other = tmp_path / "other"
    _run(other, seed=2, keep_checkpoints=True)
    name = _chunks(stored)[1].name
    shutil.copy(other / "chunks" / name, stored / "chunks" / name)
    with pytest.raises(DataError, match=f"stored chunk {name} belongs to another run") as info:
        _run(stored, resume=True)
    assert f"delete {stored / 'chunks' / name} and resume" in info.value.fix


# -- 21.3: integrity, overwrite, temporary files ------------------------------------------------

@pytest.mark.parametrize("change, checksum, match", [
    (lambda a: a["hist"][0].__setitem__(slice(None), a["hist"][0][::-1].copy()), False,
     "is damaged: its checksum does not match"),  # two units' rows swapped
    (lambda a: a["moment_limbs"].__imul__(10), False, "checksum does not match"),  # score sums × 10
    (lambda a: a["hist"][0, 0].__setitem__(0, a["hist"][0, 0, 0] + 50), True,
     "its rank histogram rows do not match its 1,024 replicates"),  # extra counts, checksum redone
    (lambda a: a["shift_hist"][0].__setitem__(0, a["shift_hist"][0, 0] + 1), True, "rank-shift histograms"),
    (lambda a: a["pair_count"][0].__setitem__((0, 1), 5000), True, "pairwise counts"),
    (lambda a: a.__setitem__("blocks", a["blocks"] + 1), True, "lists blocks other than"),
    (lambda a: a.pop("moment_special"), False, r"cannot be read \(KeyError"),
])
def test_an_edited_chunk_is_refused_by_name(stored, change, checksum, match):
    path = _chunks(stored)[2]
    _rewrite(path, change, checksum)
    with pytest.raises(DataError, match=f"stored chunk {path.name} .*{match}") as info:
        _run(stored, resume=True)
    assert info.value.fix == f"delete {path} and resume (its blocks are run again)"
    assert not (stored / LOCK_NAME).exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_damaged_chunk_file_is_a_data_error_naming_it(stored, expected, damage):
    path = _chunks(stored)[0]
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"PK\x03\x04" + os.urandom(200),
                      "empty": b""}[damage])
    with pytest.raises(DataError, match=f"stored chunk {path.name} cannot be read"):
        _run(stored, resume=True)
    path.unlink()  # the fix given
    _tables_equal(_run(stored, resume=True), expected)


def test_a_fresh_run_over_stored_checkpoints_needs_overwrite(stored, expected):
    with pytest.raises(DataError, match=r"holds the checkpoints of a run \(4 stored chunks\)") as info:
        _run(stored, seed=2)
    assert "--resume" in info.value.fix and "--overwrite" in info.value.fix
    assert len(_chunks(stored)) == 4
    _run(stored, seed=2, overwrite=True, keep_checkpoints=True)
    with pytest.raises(DataError, match="differs in seed: stored 2, this run 1"):
        _run(stored, resume=True)


def test_temporary_files_of_a_kill_are_removed_by_a_resume(stored, expected):
    _chunks(stored)[3].unlink()
    left = [stored / "chunks" / ".chunk_000000003_000000004.npz.k2j3.tmp", stored / ".units.parquet.x9.tmp",
            stored / ".run.json.ab.tmp"]
    for path in left:
        path.write_bytes(b"partial")
    _tables_equal(_run(stored, resume=True), expected)
    assert not any(path.exists() for path in left)


def test_a_stray_file_and_a_damaged_run_json_are_data_errors(stored):
    (stored / "chunks" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match=r"unexpected file 'notes\.txt' in the checkpoints folder"):
        _run(stored, resume=True)
    (stored / "chunks" / "notes.txt").unlink()
    (stored / "run.json").write_text('{"seed": 1, ')
    with pytest.raises(DataError, match=r"run\.json is damaged"):
        _run(stored, resume=True)


def test_the_cli_exits_2_on_damaged_checkpoints(tmp_path, capsys):
    """21.9: a damaged chunk, a stray file, a corrupt run.json: exit 2, one paragraph, no traceback."""
    out = tmp_path / "run"
    argv = ["uncertainty", "-f", "asem", "-n", "2048", "--seed", "1", "-q", "--top", "1"]
    assert main([*argv, "-o", str(out), "--keep-checkpoints"]) == 0
    capsys.readouterr()
    _chunks(out)[0].write_bytes(b"\x00" * 10)
    (out / "chunks" / "notes.txt").write_text("mine")
    for expected_message, repair in (("unexpected file 'notes.txt'", lambda: (out / "chunks" / "notes.txt").unlink()),
                                     ("cannot be read", lambda: (out / "run.json").write_text("{")),
                                     ("run.json is damaged", lambda: None)):
        assert main([*argv, "--resume", str(out)]) == 2
        err = capsys.readouterr().err
        assert expected_message in err and "Traceback" not in err and "Fix:" in err
        repair()


def test_the_cli_overwrite_and_keep_checkpoints_flags(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["uncertainty", "-f", "asem", "-n", "2048", "--seed", "1", "-q", "--top", "1", "-o", str(out)]
    assert main([*argv, "--keep-checkpoints"]) == 0
    assert _chunks(out)
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert not (out / "chunks").exists()


@pytest.mark.slow
def test_two_processes_on_one_folder(tmp_path):
    """A CLI run holding the folder: a second run (another seed) is refused with exit 2 and the
    first one's results are its own (both used to exit 0, one overwriting the other)."""
    from pathlib import Path

    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    command = [sys.executable, "-m", "engine.cli", "uncertainty", "-f", "asem", "-n", "3000000", "--seed", "11",
               "-q", "--threads", "1", "-o", str(out)]
    log = tmp_path / "first.log"
    with log.open("w") as handle:
        first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=handle)
    try:
        import time

        deadline = time.monotonic() + 300
        while not (out / LOCK_NAME).exists() and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        second = subprocess.run([*command[:-5], "--seed", "12", *command[-4:]], env=env, capture_output=True,
                                text=True, timeout=300)
        assert second.returncode == 2, second.stderr
        assert f"in use by another run (pid {first.pid} on host" in second.stderr and "Traceback" not in second.stderr
    finally:
        assert first.wait(timeout=600) == 0, log.read_text()
    import json

    assert json.loads((out / "manifest.json").read_text())["seed"] == 11
