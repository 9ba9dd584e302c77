"""Dask backend on a real loopback cluster, worker loss, and resuming a killed run.

A scheduler and two single-threaded worker processes are started as separate processes on
127.0.0.1 (no other address is used)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engine.analysis.uncertainty import uncertainty

pytestmark = pytest.mark.dask

SPEC = {"weights": [{"depth": 1, "noise": 0.25}, {"depth": 2, "noise": 0.25}], "pairs": ["CHE", "NLD"]}


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster")
    scheduler_file = folder / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    bin_dir = Path(sys.executable).parent
    scheduler = subprocess.Popen([str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(scheduler_file.exists, 60, "the scheduler")
    workers = [subprocess.Popen([str(bin_dir / "dask"), "worker", "--scheduler-file", str(scheduler_file),
                                 "--nthreads", "1", "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1",
                                 "--no-nanny"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    from dask.distributed import Client

    client = Client(scheduler_file=str(scheduler_file), timeout="60s")
    client.wait_for_workers(2, timeout=60)
    yield client, workers, scheduler_file, env
    client.close()
    for process in (*workers, scheduler):
        process.kill()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def in_process():
    return uncertainty("asem", spec=SPEC, replicates=40_960, seed=11, block_size=1024, threads=2)


def test_dask_cluster_equals_in_process(cluster, in_process):
    client = cluster[0]
    run = uncertainty("asem", spec=SPEC, replicates=40_960, seed=11, block_size=1024, backend="dask",
                      client=client, chunk_blocks=4)
    assert run.manifest["workers"] >= 2
    assert run.units.equals(in_process.units)
    assert run.statistics.acceptability["Index"].equals(in_process.statistics.acceptability["Index"])
    assert run.statistics.pairs["Index"].equals(in_process.statistics.pairs["Index"])
    assert run.statistics.rank_shift["Index"].equals(in_process.statistics.rank_shift["Index"])


def test_chunk_states_reach_the_client_only_for_checkpoints(cluster, in_process, tmp_path, monkeypatch):
    """Without checkpoints the states are merged on the workers and only the merged one is fetched
    (a large-n chunk state is ~440 MB at 10⁵ units); with ``out`` every chunk's state is stored."""
    import engine.backends as backends

    real, seen = backends.run_dask, []

    def spy(client, chunk_fn, args, token, ranges, on_chunk, **options):
        return real(client, chunk_fn, args, token, ranges, lambda chunk, state: (seen.append(state),
                                                                                  on_chunk(chunk, state)), **options)

    monkeypatch.setattr(backends, "run_dask", spy)
    run = uncertainty("asem", spec=SPEC, replicates=40_960, seed=11, block_size=1024, backend="dask",
                      client=cluster[0], chunk_blocks=8, progress=True)
    assert len(seen) == 5 and all(state is None for state in seen)
    assert run.units.equals(in_process.units)
    seen.clear()
    stored = uncertainty("asem", spec=SPEC, replicates=40_960, seed=11, block_size=1024, backend="dask",
                         client=cluster[0], chunk_blocks=8, out=tmp_path / "run")
    assert len(seen) == 5 and all(state is not None for state in seen)
    assert stored.units.equals(in_process.units)


def test_merged_chunk_states_leave_the_workers_during_the_run(cluster, in_process, monkeypatch):
    """The client used to hold every chunk's future until the pass ended, so the workers kept every
    chunk state of a pass at once (10 chunks at 10^5 units: a 5 GB worker peak); once reported and
    merged, a chunk's state is now released while the run goes on.  When the last chunk is reported
    (the run waits for its report), each worker holds at most one chunk state not merged yet: the
    workers' own states are merged across once every chunk is reported."""
    import engine.backends as backends

    client, real, reported, remaining = cluster[0], backends.run_dask, [], []
    workers = 2

    def spy(client_, chunk_fn, args, token, ranges, on_chunk, **options):
        def report(chunk, state):
            reported.append(chunk)
            on_chunk(chunk, state)
            if len(reported) == len(ranges):  # the last chunk: the earlier ones are merged by now, or soon
                deadline = time.monotonic() + 30
                while _chunks_done(client) > workers and time.monotonic() < deadline:
                    time.sleep(0.1)
                remaining.append(_chunks_done(client))
        return real(client_, chunk_fn, args, token, ranges, report, **options)

    monkeypatch.setattr(backends, "run_dask", spy)
    run = uncertainty("asem", spec=SPEC, replicates=40_960, seed=11, block_size=1024, backend="dask", client=client,
                      chunk_blocks=8)
    assert len(reported) == 5 and remaining[0] <= workers  # was 5: every chunk state of the run
    assert run.units.equals(in_process.units)


def test_states_are_merged_where_they_were_computed(cluster):
    """Each worker folds the chunk states it computes into the state it holds already, so no state
    crosses the network while chunks run; only the workers' own states are merged across at the end
    (was: a fixed tree over the chunks' order, whose pairs mostly lay on different workers).  Chunks
    of 0.3 s, so that both workers take some."""
    from dask.distributed import get_task_stream

    from engine.analysis.change import ChangeState
    from engine.backends import run_dask

    client = cluster[0]

    def chunk(first: int, stop: int) -> ChangeState:  # a local function: pickled by value for the workers
        time.sleep(0.3)
        return ChangeState(np.arange(4)[None, :] * first + stop, set(range(first, stop)))

    ranges, reported = [(k, k + 1) for k in range(10)], []
    with get_task_stream(client) as stream:
        total = run_dask(client, chunk, (), "fold-test", ranges, lambda c, state: reported.append((c, state)),
                         chunk_states=False)
    assert sorted(c for c, _ in reported) == ranges and all(state is None for _, state in reported)
    assert total.blocks == set(range(10))
    np.testing.assert_array_equal(total.hist, sum(np.arange(4)[None, :] * k + k + 1 for k in range(10)))
    chunks = [t for t in stream.data if "-chunk-" in str(t["key"])]
    merges = [t for t in stream.data if "-merge-" in str(t["key"])]
    workers = {t["worker"] for t in chunks}
    assert len(chunks) == 10 and len(merges) == 9 and len(workers) == 2
    moved = [t for t in merges if any(s["action"] == "transfer" for s in t["startstops"])]
    assert len(moved) <= len(workers) - 1


def test_a_short_pass_is_shared_by_the_workers(cluster):
    """Every chunk depends on the inputs, held by one worker; the scheduler used to give that worker
    the chunks of a short pass (4 chunks: 3 and 1, or all 4) while the other waited for work
    stealing.  Chunks are now dealt round the workers."""
    from dask.distributed import get_task_stream

    from engine.analysis.change import ChangeState
    from engine.backends import run_dask

    client = cluster[0]

    def chunk(first: int, stop: int) -> ChangeState:
        time.sleep(0.5)
        return ChangeState(np.full((1, 2), first), set(range(first, stop)))

    with get_task_stream(client) as stream:
        total = run_dask(client, chunk, (), "short-pass", [(k, k + 1) for k in range(4)], lambda c, state: None,
                         chunk_states=False)
    assert total.blocks == {0, 1, 2, 3}
    per_worker: dict[str, int] = {}
    for task in stream.data:
        if "-chunk-" in str(task["key"]):
            per_worker[task["worker"]] = per_worker.get(task["worker"], 0) + 1
    assert sorted(per_worker.values()) == [2, 2]


def test_a_run_after_a_failed_one_of_the_same_token_merges_its_own_states(cluster):
    """Which states meet in a merge depends on timing, so a merge's key names its two inputs: with
    keys numbered in completion order, a second run of the same token (a resume, a retry) while the
    failed run's futures were still alive (a kept traceback) got the old run's merges — blocks counted
    twice, or a resumed state made of the old run's chunks.  (Its chunks, pure functions of their key,
    are reused.)"""
    from engine.analysis.change import ChangeState
    from engine.backends import run_dask

    client = cluster[0]

    def chunk(first: int, stop: int) -> ChangeState:
        time.sleep(0.05)
        return ChangeState(np.full((1, 2), first), set(range(first, stop)))

    seen = []

    def fail_at_the_fourth(c, state) -> None:
        seen.append(c)
        if len(seen) == 4:
            raise KeyboardInterrupt

    ranges = [(k, k + 1) for k in range(8)]
    with pytest.raises(KeyboardInterrupt) as kept:  # the traceback keeps the run's futures alive
        run_dask(client, chunk, (), "same-token", ranges, fail_at_the_fourth, chunk_states=False)
    again = run_dask(client, chunk, (), "same-token", ranges, lambda c, state: None, chunk_states=False)
    assert again.blocks == set(range(8))
    np.testing.assert_array_equal(again.hist, np.full((1, 2), sum(range(8))))
    rest = [r for r in ranges if r not in seen]
    resumed = run_dask(client, chunk, (), "same-token", rest, lambda c, state: None, chunk_states=False)
    assert resumed.blocks == {first for first, _ in rest}
    del kept  # held to here: the failed run's futures stayed alive through both runs


def test_the_workers_states_are_merged_in_rounds(monkeypatch):
    """Once every chunk has run, the workers' states are merged in pairs at once: log2(workers) rounds
    of merges (with a network between them, a merge waits for a state's transfer) instead of one merge
    after another (on 24 workers: 5 rounds instead of 23 merges)."""
    from dask.distributed import Client, LocalCluster, get_task_stream

    import engine.backends.distributed as distributed
    from engine.analysis.change import ChangeState
    from engine.backends import run_dask

    def slow_merge(a, b):  # in-process workers: they see the patched module
        time.sleep(0.4)
        return a.merge(b)

    monkeypatch.setattr(distributed, "_merge", slow_merge)

    def chunk(first: int, stop: int) -> ChangeState:
        time.sleep(0.2)
        return ChangeState(np.full((1, 2), first), set(range(first, stop)))

    with LocalCluster(n_workers=4, threads_per_worker=1, processes=False, dashboard_address=":0") as local, \
            Client(local) as client, get_task_stream(client) as stream:
        total = run_dask(client, chunk, (), "rounds", [(k, k + 1) for k in range(4)], lambda c, state: None,
                         chunk_states=False)
    assert total.blocks == {0, 1, 2, 3}
    merges = sorted((part["start"], part["stop"]) for task in stream.data if "-merge-" in str(task["key"])
                    for part in task["startstops"] if part["action"] == "compute")
    assert len(merges) == 3
    assert merges[1][0] < merges[0][1]  # the first round's two merges overlap; the last one follows them
    assert merges[2][0] >= max(merges[0][1], merges[1][1]) - 0.05


def test_killing_a_worker_mid_run_loses_nothing(cluster, tmp_path):
    client, workers, scheduler_file, env = cluster
    replicates = 409_600
    expected = uncertainty("asem", spec=SPEC, replicates=replicates, seed=12, block_size=1024, threads=2)
    out = tmp_path / "run"
    box = {}

    def run() -> None:
        box["result"] = uncertainty("asem", spec=SPEC, replicates=replicates, seed=12, block_size=1024,
                                    backend="dask", client=client, chunk_blocks=8, out=out)

    thread = threading.Thread(target=run)
    thread.start()
    _wait_for(lambda: len(list((out / "chunks").glob("chunk_*.npz"))) >= 2, 120, "two completed chunks")
    _kill_one_worker_and_replace_it(workers, scheduler_file, env)
    thread.join(timeout=600)
    assert not thread.is_alive()
    assert box["result"].units.equals(expected.units)
    assert box["result"].statistics.acceptability["Index"].equals(expected.statistics.acceptability["Index"])


def _chunks_done(client) -> int:
    """Chunk tasks whose results the scheduler holds (until the run has reported them and merged them)."""
    return client.run_on_scheduler(lambda dask_scheduler: sum(
        1 for key, task in dask_scheduler.tasks.items() if "-chunk-" in str(key) and task.state == "memory"))


def _kill_one_worker_and_replace_it(workers: list, scheduler_file: Path, env: dict) -> None:
    """SIGKILL the first worker (its chunks in memory are lost) and start a replacement, so that later
    tests keep two workers."""
    victim = workers.pop(0)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    workers.append(subprocess.Popen([str(Path(sys.executable).parent / "dask"), "worker", "--scheduler-file",
                                     str(scheduler_file), "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                                     "--host", "127.0.0.1", "--no-nanny"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


def _killed_mid_run(cluster, run):
    """``run()`` in a thread, one worker killed (and replaced) once two chunks are done while it is
    still running; returns its result."""
    client, workers, scheduler_file, env = cluster
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", run()))
    thread.start()
    _wait_for(lambda: _chunks_done(client) >= 2, 300, "two completed chunks")
    assert thread.is_alive(), "the run should still be running when the worker is killed"
    _kill_one_worker_and_replace_it(workers, scheduler_file, env)
    thread.join(timeout=900)
    assert not thread.is_alive()
    return box["result"]


def test_large_n_run_with_a_worker_killed_mid_run_equals_in_process(cluster):
    """Issue 19 item 5: the large-n path (two passes, forced with large_n_above=0) on the 2-worker
    cluster, one worker killed once chunks are done: the same tables as in process, bit for bit
    (the lost chunks are recomputed from (seed, block))."""
    options = {"spec": SPEC, "replicates": 409_600, "seed": 14, "block_size": 1024, "large_n_above": 0,
               "rank_bins": 6}
    expected = uncertainty("asem", threads=2, **options)
    result = _killed_mid_run(cluster, lambda: uncertainty("asem", backend="dask", client=cluster[0], chunk_blocks=8,
                                                          **options))
    assert result.manifest["large_n"]["passes"] == 2 and result.manifest["backend"] == "dask"
    assert result.units.equals(expected.units)
    for table in ("acceptability", "pairs", "rank_shift"):
        assert getattr(result.statistics, table)["Index"].equals(getattr(expected.statistics, table)["Index"])


def test_a_killed_run_resumes_bit_identically(tmp_path):
    replicates = 600_000
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text("weights:\n  - {depth: 1, noise: 0.25}\n  - {depth: 2, noise: 0.25}\npairs: [CHE, NLD]\n")
    command = [sys.executable, "-m", "engine.cli", "uncertainty", "-f", "asem", "--spec", str(spec_file),
               "-n", str(replicates), "--seed", "13", "--block-size", "1024", "--threads", "1", "-q",
               "--out", str(out)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: len(list((out / "chunks").glob("chunk_*.npz"))) >= 2, 300, "two completed chunks")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    stored = len(list((out / "chunks").glob("chunk_*.npz")))
    assert 2 <= stored < -(-replicates // 65536), "the run should have been killed midway"
    from engine.errors import CheckpointWarning

    with pytest.warns(CheckpointWarning, match="taking over the lock of a run that no longer runs"):  # the killed one's
        resumed = uncertainty("asem", spec=str(spec_file), replicates=replicates, seed=13, block_size=1024, out=out,
                              resume=True)
    assert resumed.manifest["resumed_chunks"] == stored
    expected = uncertainty("asem", spec=str(spec_file), replicates=replicates, seed=13, block_size=1024)
    assert resumed.units.equals(expected.units)
    assert resumed.statistics.rank_shift["Index"].equals(expected.statistics.rank_shift["Index"])
    assert (out / "manifest.json").exists() and (out / "units.parquet").exists()
    assert not (out / "chunks").exists() and not (out / ".lock").exists()  # removed after success


def test_resuming_into_a_different_run_is_refused(tmp_path):
    from engine.errors import DataError

    out = tmp_path / "run"
    uncertainty("asem", spec=SPEC, replicates=2048, seed=1, block_size=1024, out=out, keep_checkpoints=True)
    with pytest.raises(DataError, match="cannot resume: the folder holds a different run"):
        uncertainty("asem", spec=SPEC, replicates=2048, seed=2, block_size=1024, out=out, resume=True)


def test_resuming_chunks_of_another_accumulator_layout_is_refused(tmp_path):
    """Chunks written by a build whose rank-shift histogram had another size (same version
    string, same fingerprint) are refused by name, before any chunk is merged."""
    from engine.errors import DataError

    out = tmp_path / "run"
    from engine.analysis.store import _checksum

    uncertainty("asem", spec=SPEC, replicates=2048, seed=1, block_size=1024, out=out, keep_checkpoints=True)
    stored = sorted((out / "chunks").glob("chunk_*.npz"))[0]
    with np.load(stored) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["shift_hist"] = arrays["shift_hist"][:, : arrays["shift_hist"].shape[1] // 2]
    arrays["checksum"] = np.array(_checksum(arrays))  # a consistent chunk of another layout
    with open(stored, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    with pytest.raises(DataError, match=r"stored chunk chunk_.*has shift_hist of shape") as info:
        uncertainty("asem", spec=SPEC, replicates=2048, seed=1, block_size=1024, out=out, resume=True)
    assert "new --out folder" in info.value.fix


def test_resuming_with_another_chunk_size_is_refused_clearly(tmp_path):
    """Stored chunks of 2 blocks; resuming with chunks that straddle them would count blocks
    twice: refused before any work, with the chunk size to use."""
    from engine.errors import DataError

    out = tmp_path / "run"
    uncertainty("asem", spec=SPEC, replicates=4 * 1024, seed=1, block_size=1024, out=out, chunk_blocks=2,
                keep_checkpoints=True)
    with pytest.raises(DataError, match="do not line up with chunks of 3 blocks") as info:
        uncertainty("asem", spec=SPEC, replicates=4 * 1024, seed=1, block_size=1024, out=out, resume=True,
                    chunk_blocks=3)
    assert "chunk_blocks=2" in info.value.fix
    again = uncertainty("asem", spec=SPEC, replicates=4 * 1024, seed=1, block_size=1024, out=out, resume=True,
                        chunk_blocks=2)
    assert again.manifest["resumed_chunks"] == 2


def test_checkpointed_runs_keep_chunks_of_65536_replicates(tmp_path):
    """Stored chunks stay at 65,536 replicates (64 blocks of 1024): folders written before the
    in-process default grew to 262,144 resume unchanged."""
    out = tmp_path / "run"
    uncertainty("asem", spec=SPEC, replicates=70 * 1024, seed=1, block_size=1024, out=out, keep_checkpoints=True)
    names = sorted(p.name for p in (out / "chunks").glob("chunk_*.npz"))
    assert names == ["chunk_000000000_000000064.npz", "chunk_000000064_000000070.npz"]


def test_large_n_bootstrap_with_a_worker_killed_mid_run_equals_in_process(cluster):
    """Issue 19 items 2 and 5: the bootstrap's large-n path (mode units, two passes, forced with
    large_n_above=0) on the 2-worker cluster, one worker killed once chunks are done: the same tables as
    in process on 2 threads, bit for bit (lost chunks are recomputed from (seed, block): their draws too)."""
    from engine.analysis.bootstrap import bootstrap

    options = {"spec": {"mode": "units", "perturb": {"weights": [{"depth": 1, "noise": 0.25}]}},
               "replicates": 49_152, "seed": 15, "block_size": 1024, "large_n_above": 0, "rank_bins": 6}
    expected = bootstrap("asem", threads=2, **options)
    result = _killed_mid_run(cluster, lambda: bootstrap("asem", backend="dask", client=cluster[0], chunk_blocks=2,
                                                        **options))
    assert result.manifest["large_n"]["passes"] == 2 and result.manifest["backend"] == "dask"
    assert result.units.equals(expected.units)
    assert result.statistics.acceptability["Index"].equals(expected.statistics.acceptability["Index"])
