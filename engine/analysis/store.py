"""Checkpoints: each completed chunk's state is stored in the run's output folder, so a killed run
can be resumed (``--resume DIR``) from the chunks already done, bit-identically.

* One run at a time per folder: a lock file ``DIR/.lock`` (owner's pid and host, created
  atomically) is held from the start of the run to the end of its writing; a lock left by a
  process that no longer runs on this host is taken over with a :class:`CheckpointWarning`.
* ``run.json`` (framework and data digests, spec, seed, block size, number of blocks, engine
  version, checkpoint format) guards against resuming a different run into the folder; every
  chunk carries the digest of that fingerprint, so a chunk of another run is refused by name.
* Every chunk carries a SHA-256 checksum of its arrays and is checked when loaded: a damaged or
  edited chunk (unreadable, checksum, shapes, counts that do not add up to the chunk's
  replicates) is refused by name with the fix (delete it and resume: its blocks run again).
* Files are written atomically (temporary file + rename): a chunk is either complete or absent;
  temporary files left by a kill are removed when the folder is opened again.
* Starting a run afresh in a folder that holds checkpoints is refused unless ``overwrite``; after
  a successful run the checkpoints are removed unless ``keep`` (:meth:`ChunkStore.finish`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import time
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointWarning, DataError
from ..io import atomic_write, write_json
from .exact import N_LIMBS, ExactSum
from .montecarlo import ChunkState

__all__ = ["CHECKPOINT_FORMAT", "LOCK_NAME", "ChunkStore"]

#: Version of the chunk files' layout (recorded in run.json: folders of another layout are refused).
CHECKPOINT_FORMAT = 2
LOCK_NAME = ".lock"
_CHUNK_NAME = re.compile(r"chunk_(\d{9})_(\d{9})\.npz")
_TEMPORARY = re.compile(r"\..+\.tmp")  # engine.io.atomic_write's temporary files
#: The arrays of a chunk file covered by its checksum, in this order.
_ARRAYS = ("hist", "shift_hist", "pair_count", "moment_limbs", "moment_special", "blocks", "run")


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in _ARRAYS:
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape}:".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _flat(document: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys (``spec.replicates``), for naming what differs."""
    if isinstance(document, dict) and document:
        return {k: v for key, value in document.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): document}


def _shown(value: Any, width: int = 60) -> str:
    text = "(none)" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[:width - 1] + "…"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class ChunkStore:
    """The checkpoints of one run in ``folder``: opened (locked, checked) by the constructor;
    :meth:`load`, :meth:`save`, :meth:`finish`; :meth:`close` releases the lock (also as a
    context manager)."""

    def __init__(self, folder: str | Path, fingerprint: dict[str, Any], *, resume: bool, overwrite: bool = False,
                 block_size: int, n_replicates: int) -> None:
        self.folder = Path(folder)
        self.chunks = self.folder / "chunks"
        self.block_size, self.n_replicates = block_size, n_replicates
        self.n_blocks = -(-n_replicates // block_size)
        self.fingerprint = json.loads(json.dumps(fingerprint, default=str))
        self.digest = hashlib.sha256(json.dumps(self.fingerprint, sort_keys=True).encode()).hexdigest()
        self.lock = self.folder / LOCK_NAME
        self._locked = False
        self.folder.mkdir(parents=True, exist_ok=True)
        self._acquire()
        try:
            self._open(resume, overwrite)
        except BaseException:
            self.close()
            raise

    # -- lock ---------------------------------------------------------------------------------
    def _acquire(self) -> None:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S %z")}
        for _ in range(3):
            try:
                fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is None:  # vanished in between, or being written: try again
                    time.sleep(0.05)
                    continue
                if owner.get("host") != me["host"] or not isinstance(owner.get("pid"), int) or _alive(owner["pid"]):
                    raise DataError(
                        f"the output folder is in use by another run (pid {owner.get('pid')} on host "
                        f"{owner.get('host')}, since {owner.get('since')})", path=str(self.folder),
                        fix="wait for that run to end, or choose another --out folder; if no such run is alive, "
                            f"delete {self.lock}") from None
                warnings.warn(CheckpointWarning(
                    f"{self.lock}: taking over the lock of a run that no longer runs (pid {owner['pid']} on this "
                    f"host, since {owner.get('since')})"), stacklevel=4)
                self.lock.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(me, handle)
            self._locked = True
            return
        raise DataError("the output folder's lock file could not be taken (another run is starting in it?)",
                        path=str(self.lock), fix="choose another --out folder, or delete the lock file if no run "
                        "uses the folder")

    def _owner(self) -> dict[str, Any] | None:
        """The lock's owner; None if the file is gone or still being written by its owner."""
        try:
            text = self.lock.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            owner = json.loads(text)
        except json.JSONDecodeError:
            if not text and time.time() - self.lock.stat().st_mtime < 5:
                return None
            owner = {}
        return owner if isinstance(owner, dict) else {}

    def close(self) -> None:
        """Release the lock (if this store holds it)."""
        if self._locked:
            self._locked = False
            owner = self._owner() or {}
            if owner.get("pid") == os.getpid():
                self.lock.unlink(missing_ok=True)

    def __enter__(self) -> ChunkStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- folder -------------------------------------------------------------------------------
    def _open(self, resume: bool, overwrite: bool) -> None:
        stamp = self.folder / "run.json"
        stored = self._stored()
        previous = None
        if stamp.exists():
            try:
                previous = json.loads(stamp.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DataError(f"run.json is damaged ({exc})", path=str(stamp),
                                fix="start the run again with --overwrite (its checkpoints are deleted), or choose "
                                    "a new --out folder") from exc
        if resume:
            if previous is None and stored:
                raise DataError("cannot resume: run.json is missing", path=str(self.folder),
                                fix="start the run again with --overwrite, or choose a new --out folder")
            if previous is not None and previous != self.fingerprint:
                old, new = _flat(previous), _flat(self.fingerprint)
                changed = [f"{key}: stored {_shown(old.get(key))}, this run {_shown(new.get(key))}"
                           for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
                raise DataError(f"cannot resume: the folder holds a different run (differs in {'; '.join(changed)})",
                                path=str(self.folder), fix="resume with the same framework, data, spec, seed and "
                                "block size, or choose a new --out folder")
        elif stored:
            if not overwrite:
                raise DataError(f"the output folder holds the checkpoints of a run ({len(stored)} stored "
                                f"chunk{'s' if len(stored) != 1 else ''})", path=str(self.folder),
                                fix=f"continue it with --resume {self.folder}, or start again with --overwrite "
                                    "(deletes them), or choose another --out folder")
            for path in stored:
                path.unlink()
        self.chunks.mkdir(exist_ok=True)
        write_json(stamp, self.fingerprint)

    def _stored(self) -> list[Path]:
        """The chunk files; temporary files left by a killed write are removed, anything else in
        the chunks folder is refused."""
        self._remove_temporary(self.folder)
        if not self.chunks.is_dir():
            if self.chunks.exists():
                raise DataError("the checkpoints folder is a file", path=str(self.chunks),
                                fix="move it away (cityrank keeps its chunk files there), or choose another --out "
                                    "folder")
            return []
        files = []
        for path in sorted(self.chunks.iterdir()):
            if _TEMPORARY.fullmatch(path.name) and path.is_file():
                path.unlink()
            elif _CHUNK_NAME.fullmatch(path.name) and path.is_file():
                files.append(path)
            else:
                raise DataError(f"unexpected file {path.name!r} in the checkpoints folder", path=str(path),
                                fix=f"move it out of {self.chunks} (the folder holds only the chunk_*.npz files "
                                    "cityrank writes) and run again")
        return files

    @staticmethod
    def _remove_temporary(folder: Path) -> None:
        for path in folder.glob(".*.tmp"):
            if _TEMPORARY.fullmatch(path.name) and path.is_file():
                path.unlink(missing_ok=True)

    def finish(self, keep: bool = False) -> None:
        """After a successful run (results written): remove the checkpoints (chunks and run.json)
        unless ``keep``, and any temporary file left in the folder by a killed write."""
        if not keep:
            shutil.rmtree(self.chunks, ignore_errors=True)
            (self.folder / "run.json").unlink(missing_ok=True)
        self._remove_temporary(self.folder)

    # -- chunks -------------------------------------------------------------------------------
    def _path(self, first: int, stop: int) -> Path:
        return self.chunks / f"chunk_{first:09d}_{stop:09d}.npz"

    def save(self, chunk: tuple[int, int], state: ChunkState) -> None:
        arrays = {"hist": state.hist, "shift_hist": state.shift_hist, "pair_count": state.pair_count,
                  "moment_limbs": state.moments.limbs, "moment_special": state.moments.special,
                  "blocks": np.array(sorted(state.blocks), np.int64), "run": np.array(self.digest)}
        arrays["checksum"] = np.array(_checksum(arrays))

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, **arrays)

        atomic_write(self._path(*chunk), write)

    def _damaged(self, path: Path, what: str) -> DataError:
        return DataError(f"stored chunk {path.name} {what}", path=str(path),
                         fix=f"delete {path} and resume (its blocks are run again)")

    def load(self, state: ChunkState) -> list[tuple[int, int]]:
        """Add every stored chunk into ``state`` (the run's empty state: its shapes are the run's),
        one chunk at a time, each array read once; returns the chunks' ranges.  Each chunk must be
        intact (checksum), of this run (fingerprint digest), of the run's shapes (else written by
        another build) and hold counts that add up to its replicates.  On an error the lock is
        released."""
        try:
            return self._load(state)
        except BaseException:
            self.close()
            raise

    def _load(self, state: ChunkState) -> list[tuple[int, int]]:
        expected = {"hist": state.hist.shape, "shift_hist": state.shift_hist.shape,
                    "pair_count": state.pair_count.shape, "moment_limbs": (*state.hist.shape[:2], 2, N_LIMBS),
                    "moment_special": (*state.hist.shape[:2], 2)}
        done: list[tuple[int, int]] = []
        covered: dict[int, Path] = {}
        for path in self._stored():
            first, stop = (int(x) for x in _CHUNK_NAME.fullmatch(path.name).groups())
            if not first < stop <= self.n_blocks:
                raise self._damaged(path, f"names blocks {first} to {stop} (this run has {self.n_blocks} blocks)")
            try:
                with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
                    arrays = {name: data[name] for name in (*_ARRAYS, "checksum")}
            except (zipfile.BadZipFile, EOFError, KeyError, ValueError, OSError, zlib.error) as exc:
                raise self._damaged(path, f"cannot be read ({type(exc).__name__}: {exc})") from exc
            if str(arrays["checksum"]) != _checksum(arrays):
                raise self._damaged(path, "is damaged: its checksum does not match its contents")
            if str(arrays["run"]) != self.digest:
                raise DataError(f"stored chunk {path.name} belongs to another run (run fingerprint "
                                f"{str(arrays['run'])[:12]}…, this folder's run.json {self.digest[:12]}…)",
                                path=str(path), fix=f"delete {path} and resume (its blocks are run again)")
            for name, shape in expected.items():
                if arrays[name].shape != shape:
                    raise DataError(f"cannot resume: stored chunk {path.name} has {name} of shape "
                                    f"{arrays[name].shape}, this run needs {shape} (written by another "
                                    "build of the engine)", path=str(self.folder),
                                    fix="start the run again in a new --out folder, or with --overwrite")
            self._check_counts(path, first, stop, arrays)
            overlap = [b for b in range(first, stop) if b in covered]  # ascending, no set of every block
            if overlap:
                raise self._damaged(path, f"repeats block {overlap[0]} of {covered[overlap[0]].name}")
            covered.update(dict.fromkeys(range(first, stop), path))
            moments = ExactSum(arrays["moment_limbs"], arrays["moment_special"])
            state.absorb(ChunkState(arrays["hist"], arrays["shift_hist"], arrays["pair_count"], moments,
                                    set(range(first, stop))))
            done.append((first, stop))
        return done

    def _check_counts(self, path: Path, first: int, stop: int, arrays: dict[str, np.ndarray]) -> None:
        """The counts must be those of the chunk's replicates: every unit's rank histogram row
        (with the no-rank column) and every target's rank-shift histogram sums to them."""
        n = min(stop * self.block_size, self.n_replicates) - first * self.block_size
        if not np.array_equal(arrays["blocks"], np.arange(first, stop)):
            raise self._damaged(path, f"lists blocks other than {first} to {stop - 1}, as its name says")
        checks = (("rank histogram rows", (arrays["hist"] < 0).any() or (arrays["hist"].sum(axis=-1) != n).any()),
                  ("rank-shift histograms", (arrays["shift_hist"] < 0).any()
                   or (arrays["shift_hist"].sum(axis=-1) != n).any()),
                  ("pairwise counts", ((arrays["pair_count"] < 0) | (arrays["pair_count"] > n)).any()),
                  ("score sums", not ExactSum(arrays["moment_limbs"], arrays["moment_special"]).is_normalised()
                   or np.isfinite(arrays["moment_special"][arrays["moment_special"] != 0]).any()))
        for what, bad in checks:
            if bad:
                raise self._damaged(path, f"is damaged: its {what} do not match its {n:,} replicates")
