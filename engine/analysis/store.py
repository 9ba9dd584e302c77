"""Checkpoints: each completed chunk's state is stored in the run's output folder, so a killed run
can be resumed (``--resume DIR``) from the chunks already done, bit-identically.

Files are written atomically (temporary file + rename): a chunk is either complete or absent.
A ``run.json`` fingerprint (framework and data digests, spec, seed, block size, number of blocks,
engine version) guards against resuming a different run into the same folder, and every stored
chunk's histograms must have the resuming run's shapes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..io import atomic_write, write_json
from .montecarlo import ChunkState

__all__ = ["ChunkStore"]


class ChunkStore:
    def __init__(self, folder: str | Path, fingerprint: dict[str, Any], *, resume: bool) -> None:
        self.folder = Path(folder)
        self.chunks = self.folder / "chunks"
        self.chunks.mkdir(parents=True, exist_ok=True)
        stamp = self.folder / "run.json"
        if stamp.exists():
            previous = json.loads(stamp.read_text(encoding="utf-8"))
            if previous != json.loads(json.dumps(fingerprint, default=str)):
                if resume:
                    changed = sorted(k for k in set(previous) | set(fingerprint)
                                     if previous.get(k) != json.loads(json.dumps(fingerprint.get(k), default=str)))
                    raise DataError(f"cannot resume: the folder holds a different run (differs in {changed})",
                                    path=str(self.folder), fix="resume with the same framework, data, spec, seed "
                                    "and block size, or choose a new --out folder")
                for old in self.chunks.glob("chunk_*.npz"):
                    old.unlink()
        elif resume and any(self.chunks.glob("chunk_*.npz")):
            raise DataError("cannot resume: run.json is missing", path=str(self.folder), fix="choose a new --out folder")
        write_json(stamp, fingerprint)
        if not resume:
            for old in self.chunks.glob("chunk_*.npz"):
                old.unlink()

    def _path(self, first: int, stop: int) -> Path:
        return self.chunks / f"chunk_{first:09d}_{stop:09d}.npz"

    def save(self, chunk: tuple[int, int], state: ChunkState) -> None:
        keys = sorted(state.moments)
        arrays = {"hist": state.hist, "shift_hist": state.shift_hist, "pair_count": state.pair_count,
                  "blocks": np.array(sorted(state.blocks), np.int64), "moment_keys": np.array(keys, np.int64),
                  "moments": np.stack([state.moments[b] for b in keys])}

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, **arrays)

        atomic_write(self._path(*chunk), write)

    def load(self, empty: ChunkState) -> dict[tuple[int, int], ChunkState]:
        """The stored chunks; each one's histograms must have the shapes of ``empty`` (the run's
        own), or the folder was written by a build that laid them out differently (the rank-shift
        histogram's size changed once under the same version string)."""
        done = {}
        expected = {"hist": empty.hist.shape, "shift_hist": empty.shift_hist.shape,
                    "pair_count": empty.pair_count.shape}
        for path in sorted(self.chunks.glob("chunk_*.npz")):
            first, stop = (int(x) for x in path.stem.split("_")[1:3])
            with np.load(path) as data:
                for name, shape in expected.items():
                    if data[name].shape != shape:
                        raise DataError(f"cannot resume: stored chunk {path.name} has {name} of shape "
                                        f"{data[name].shape}, this run needs {shape} (written by another "
                                        "build of the engine)", path=str(self.folder),
                                        fix="start the run again in a new --out folder")
                keys = [int(b) for b in data["moment_keys"]]
                done[(first, stop)] = ChunkState(data["hist"], data["shift_hist"], data["pair_count"],
                                                 {b: data["moments"][k] for k, b in enumerate(keys)},
                                                 {int(b) for b in data["blocks"]})
        return done
