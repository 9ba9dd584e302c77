"""The run driver with a toy analysis (no kernels): chunk plan, progress, confirm, output (the layering of
the backends: tests/test_layering.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import engine
from engine.analysis.driver import BackendOptions, drive, run_seed
from engine.errors import DataError, SchemaError


class Sums:
    """Per-replicate values summed per block (a toy mergeable state)."""

    def __init__(self, sums: dict[int, int]):
        self.sums = sums

    def merge(self, other: Sums) -> Sums:
        return self.copy().absorb(other)

    def absorb(self, other: Sums) -> Sums:
        assert not self.sums.keys() & other.sums.keys()
        self.sums.update(other.sums)
        return self

    def copy(self) -> Sums:
        return Sums(dict(self.sums))


def _toy_chunk(seed: int, block_size: int, n: int, first: int, stop: int) -> Sums:
    values = np.random.default_rng(seed).integers(0, 100, n)
    return Sums({b: int(values[b * block_size:(b + 1) * block_size].sum()) for b in range(first, stop)})


class Toy:
    checkpoints = False
    work_per_replicate, work_unit = 2, "evaluations"

    def __init__(self, n: int = 1000, block_size: int = 64, seed: int = 1):
        self.n_replicates, self.block_size, self.seed = n, block_size, seed
        self.chunks: list[tuple[int, int, int]] = []
        self.closed = False

    def chunk_blocks(self, requested, distributed):
        return requested or 3

    def empty_state(self) -> Sums:
        return Sums({})

    def run_chunk(self, first, stop, n_lanes, on_block):
        self.chunks.append((first, stop, n_lanes))
        on_block(min(stop * self.block_size, self.n_replicates) - first * self.block_size)
        return _toy_chunk(self.seed, self.block_size, self.n_replicates, first, stop)

    def dask_task(self):
        return _toy_chunk, (self.seed, self.block_size, self.n_replicates)

    def fingerprint(self):
        return {"seed": self.seed}

    def close(self):
        self.closed = True


class Written:
    def __init__(self, total: int, info: dict):
        self.total, self.info, self.written = total, info, []

    def write(self, out, *, format=None):
        self.written.append((out, format))


def _finish(state: Sums, info: dict) -> Written:
    return Written(sum(state.sums.values()), info)


def test_every_block_runs_once_in_fixed_chunks_whatever_the_backend():
    whole = int(np.random.default_rng(1).integers(0, 100, 1000).sum())
    results = {}
    for backend, threads in (("serial", None), ("threads", 2)):
        toy = Toy()
        results[backend] = drive(toy, _finish, BackendOptions(backend, threads).check())
        # 16 blocks of 64 (the last partial) in chunks of 3 blocks, never keyed by a lane
        assert [c[:2] for c in toy.chunks] == [(0, 3), (3, 6), (6, 9), (9, 12), (12, 15), (15, 16)]
        assert toy.closed
    assert results["serial"].total == results["threads"].total == whole
    assert results["serial"].info == {"backend": "serial", "threads": 1}
    assert results["threads"].info["threads"] == 2


def test_confirm_gets_the_measured_estimate_and_can_stop_the_run_before_any_chunk():
    seen = []

    def confirm(estimate):
        seen.append(estimate)
        raise KeyboardInterrupt

    toy = Toy()
    with pytest.raises(KeyboardInterrupt):
        drive(toy, _finish, BackendOptions("serial"), confirm=confirm)
    assert [(e["stage"], e["replicates"], e["chunks"], e["checkpoint_bytes"]) for e in seen] == [
        ("start", 1000, None, None)]
    assert 0 < seen[0]["seconds"] < 60
    # timed on the run's first 1,024 replicates (after one untimed run), none of the run's chunks
    assert toy.chunks == [(0, 16, 1), (0, 16, 1)]


def test_progress_counts_the_analysis_work_units(capsys):
    toy = Toy(n=100, block_size=10)
    drive(toy, _finish, BackendOptions("serial"), progress=True, chunk_blocks=5)
    assert "200/200 evaluations" in capsys.readouterr().err.replace(",", "")


def test_the_result_is_written_to_out(tmp_path):
    result = drive(Toy(), _finish, BackendOptions("serial"), out=tmp_path / "r", out_format="csv")
    assert result.written == [(tmp_path / "r", "csv")]


def test_resuming_into_a_workbook_is_refused_before_any_work(tmp_path):
    toy = Toy()
    with pytest.raises(DataError, match=r"cannot resume into a \.xlsx output"):
        drive(toy, _finish, BackendOptions("serial"), out=tmp_path / "r.xlsx", resume=True)
    assert toy.chunks == []


def test_backend_options_are_checked():
    with pytest.raises(SchemaError, match=r"unknown backend 'bogus'"):
        BackendOptions("bogus").check()
    assert BackendOptions("serial").lanes == 1 and BackendOptions("dask", workers=3).lanes == 3


def test_no_seed_means_fresh_entropy():
    assert run_seed(7) == 7
    drawn = {run_seed(None) for _ in range(3)}
    assert len(drawn) == 3 and all(0 <= s < 2**63 for s in drawn)


@pytest.mark.parametrize("analysis", ["uncertainty", "bootstrap", "sensitivity"])
def test_every_analysis_refuses_an_unknown_backend_before_scoring(analysis, monkeypatch):
    module = {"uncertainty": "engine.analysis.uncertainty", "sensitivity": "engine.analysis.sensitivity",
              "bootstrap": "engine.analysis.bootstrap"}[analysis]
    monkeypatch.setattr(f"{module}.score", lambda *a, **k: pytest.fail("the run started"))
    with pytest.raises(SchemaError, match=r"unknown backend 'bogus'.*use serial, threads or dask"):
        getattr(engine, analysis)("asem", backend="bogus", **({"mode": "units"} if analysis == "bootstrap" else {}))


def test_the_three_analyses_share_the_driver():
    """No analysis keeps a run loop of its own: none calls the backends directly."""
    folder = Path(engine.__file__).parent / "analysis"
    for name in ("uncertainty.py", "bootstrap.py", "sensitivity.py"):
        text = (folder / name).read_text(encoding="utf-8")
        assert "drive(" in text and "execute(" not in text and "Progress(" not in text and "connect(" not in text

