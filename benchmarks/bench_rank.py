"""Ranking benchmark (issue 19 item 3): ranking a batch of replicates at n = 338, 3,000, 30,000 and
100,000 units, the engine against a NumPy baseline measured in the same run, and the end-to-end
large-n Monte Carlo of 10^4 replicates of 10^5 synthetic units.

* **split** — the Monte Carlo path's ranking below the large-n threshold: packed 32-bit keys
  (:func:`engine.kernels.rank.pack_keys`), NumPy's sort of the keys, exact competition ranks from the
  sorted keys with ties and near-ties re-ranked on the floats, and the score moments
  (:func:`engine.kernels.montecarlo.montecarlo_accumulate`).
* **bucket** — large-n mode's ranking (:func:`engine.kernels.bands.rank_batch`): one bucket-sort
  pass (a bucket per unit), exact competition ranks, and the same score moments.
* **numpy** — ``argsort`` of the batch's negated scores and the inverse permutation (ties broken
  arbitrarily: the baseline does less than the engine).

Scores are weighted sums of 25 skewed indicators under ±25 % weight noise (the shape of real
composite scores: crowded at the low end, so near-ties are common).  Each case runs in its own
process (its peak resident memory is its own), ``--repeat`` rounds interleaved, best round reported;
the growth law is the log-log slope of time per replicate between neighbouring sizes.

    python benchmarks/bench_rank.py                          # ranking at the four sizes + end to end
    python benchmarks/bench_rank.py --sizes 338 3000 --no-e2e --repeat 1   # quick

Writes ``benchmarks/results/rank.json`` and ``benchmarks/results/rank.md``.

* **dask** (``--dask``, on its own) — the end-to-end large-n run on a Dask ``LocalCluster`` of one
  single-threaded worker, then of two, each warmed up first (workers load the compiled kernels):
  wall time of each, the speed-up (one worker's time / two workers'), whether both gave the same
  tables, and each worker's peak resident memory; from the task stream, where the time went (mean
  chunk time, the workers' seconds in chunks, merges and transfers, and the wall time the workers
  were idle: the client's own work and the merged states' trips to it).  Chunks as the engine cuts a pass on Dask (at
  least 16 of at least one RNG block of 1,024 replicates), or ``--dask-chunk-blocks`` RNG blocks.  Writes
  ``benchmarks/results/rank-dask.json`` / ``.md``.

    python benchmarks/bench_rank.py --dask                                   # 10^5 units, 10^4 replicates
    python benchmarks/bench_rank.py --dask --dask-units 20000 --dask-replicates 4096   # quick
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from _common import machine, peak_mb, run_script, write_results

HERE = Path(__file__).resolve().parent
N_INDICATORS = 25


def synthetic_scores(n_units: int, n_replicates: int, seed: int = 1):
    """(n_replicates, n_units) composite scores: 25 lognormal indicators, min-max normalised,
    weighted sums under ±25 % uniform weight noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    z = rng.lognormal(0.0, 1.0, size=(N_INDICATORS, n_units))
    z = (z - z.min(axis=1, keepdims=True)) / (z.max(axis=1, keepdims=True) - z.min(axis=1, keepdims=True))
    w = 1.0 + 0.25 * (2.0 * rng.random((n_replicates, N_INDICATORS)) - 1.0)
    return (w / w.sum(axis=1, keepdims=True)) @ z


def synthetic_table(n_units: int, seed: int = 1):
    """A SYNTHETIC table of ``n_units`` units × 25 indicators and its framework (5 groups of 5, deciles)."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    latent = rng.normal(size=n_units)
    columns = {"unit": [f"u{i:06d}" for i in range(n_units)]}
    for j in range(N_INDICATORS):
        columns[f"x{j}"] = np.exp(0.8 * latent + rng.normal(size=n_units))
    nodes = [{"id": "Index"}] + [{"id": f"G{g}", "parent": "Index"} for g in range(5)]
    nodes += [{"id": f"x{j}", "parent": f"G{j // 5}", "column": f"x{j}"} for j in range(N_INDICATORS)]
    # deciles by rank as tiers (natural breaks, the default, are quadratic in the units: minutes at 10^5)
    framework = {"id": "synthetic-large", "labels": {"en": "Synthetic large-n"}, "data": {"unit": "unit"},
                 "tiers": {"k": 10, "method": "quantile"},
                 "nodes": [{**node, "labels": {"en": node["id"]}} for node in nodes]}
    return framework, pl.DataFrame(columns)


def case_rank(kind: str, n_units: int, n_replicates: int) -> dict:
    import numpy as np

    scores = synthetic_scores(n_units, n_replicates)
    if kind == "split":
        from engine.kernels import montecarlo as mc
        from engine.kernels.rank import index_bits, pack_keys

        bits = index_bits(n_units)
        keys = np.empty(scores.shape, np.uint32)
        ranks = np.zeros((n_replicates, 1, n_units), np.int64)
        acc = mc.Accumulators(np.zeros((1, 0, 0), np.int64), np.zeros((1, 0), np.int64), np.zeros((1, 0, 0), np.int64),
                              np.zeros((1, 1, n_units, 2)), np.zeros((n_replicates, 1)), ranks)
        nominal = np.zeros((1, n_units), np.int64)

        def run() -> None:
            for r in range(n_replicates):
                pack_keys(scores[r], bits, keys[r])
            keys.sort(axis=1)
            mc.montecarlo_accumulate(scores[:, None, :], keys[:, None, :], nominal, np.zeros(0, np.int64),
                                     n_replicates, acc)
    elif kind == "bucket":
        from engine.kernels.bands import rank_batch

        batch = np.ascontiguousarray(scores[:, None, :])
        ranks = np.zeros(batch.shape, np.int64)
        moments = np.zeros((1, n_units, 2))

        def run() -> None:
            rank_batch(batch, moments, ranks)
    else:
        ranks = np.empty(scores.shape, np.int64)
        positions = np.broadcast_to(np.arange(1, n_units + 1), scores.shape)

        def run() -> None:
            order = np.argsort(-scores, axis=1)
            np.put_along_axis(ranks, order, positions, axis=1)
    run()  # compile / warm up
    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    return {"case": kind, "n_units": n_units, "replicates": n_replicates, "seconds": seconds,
            "us_per_replicate": 1e6 * seconds / n_replicates, "peak_mb": peak_mb()}


def case_e2e(n_units: int, n_replicates: int, threads: int) -> dict:
    import engine
    from engine.schema import framework_from_dict

    framework, data = synthetic_table(n_units)
    framework = framework_from_dict(framework)
    started = time.perf_counter()
    engine.uncertainty(framework, data, replicates=min(n_replicates, 1024), seed=1, threads=threads)  # compile
    warm = time.perf_counter() - started
    started, cpu = time.perf_counter(), time.process_time()
    result = engine.uncertainty(framework, data, replicates=n_replicates, seed=1, threads=threads)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"case": "e2e", "n_units": n_units, "replicates": n_replicates, "threads": threads, "seconds": seconds,
            "cpu_seconds": cpu, "warm_up_seconds": warm, "large_n": result.manifest.get("large_n"),
            "peak_mb": peak_mb()}


def task_times(tasks: list[dict], wall: float, workers: int) -> dict:
    """Where a Dask run's wall time went, from its task stream: the mean compute time of a chunk
    (slower when workers share cores, caches and memory bandwidth), the workers' seconds computing
    chunks and merging states and moving states between them, and the rest of the wall time
    (``client_s``: the workers idle, i.e. the client's own work — scoring, the summaries between and
    after the passes — and the merged states' trips to the client)."""
    spent = {"chunk": [], "merge": [], "transfer": []}
    for task in tasks:
        kind = "chunk" if "-chunk-" in str(task["key"]) else "merge" if "-merge-" in str(task["key"]) else None
        for part in task["startstops"]:
            if part["action"] == "transfer":
                spent["transfer"].append(part["stop"] - part["start"])
            elif part["action"] == "compute" and kind:
                spent[kind].append(part["stop"] - part["start"])
    busy = sum(map(sum, spent.values())) / workers
    return {"chunk_mean_s": sum(spent["chunk"]) / max(len(spent["chunk"]), 1), "chunks": len(spent["chunk"]),
            "chunk_s": sum(spent["chunk"]), "merge_s": sum(spent["merge"]), "transfer_s": sum(spent["transfer"]),
            "client_s": max(wall - busy, 0.0)}


def case_dask(n_units: int, n_replicates: int, chunk_blocks: int) -> dict:
    import resource

    from dask.distributed import Client, LocalCluster, get_task_stream
    from polars.testing import assert_frame_equal

    import engine
    from engine.schema import framework_from_dict

    framework, data = synthetic_table(n_units)
    framework = framework_from_dict(framework)
    out: dict = {"case": "dask", "n_units": n_units, "replicates": n_replicates, "chunk_blocks": chunk_blocks}
    tables = []
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
                Client(cluster) as client:
            engine.uncertainty(framework, data, replicates=1024 * workers, seed=1, backend="dask", client=client,
                               chunk_blocks=1)  # warm-up: every worker loads the kernels
            with get_task_stream(client) as stream:
                started = time.perf_counter()
                result = engine.uncertainty(framework, data, replicates=n_replicates, seed=1, backend="dask",
                                            client=client, chunk_blocks=chunk_blocks or None)
                seconds = time.perf_counter() - started
            out[f"seconds_{workers}"] = seconds
            out |= {f"{name}_{workers}": value for name, value in task_times(stream.data, seconds, workers).items()}
            peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
            out[f"worker_peak_mb_{workers}"] = max(peaks.values())
            tables.append(result.units)
    try:
        assert_frame_equal(tables[0], tables[1])
        out["identical"] = True
    except AssertionError:
        out["identical"] = False
    out["speed_up"] = out["seconds_1"] / out["seconds_2"]
    out["client_peak_mb"] = peak_mb()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[338, 3000, 30000, 100000])
    parser.add_argument("--work", type=float, default=2e7, help="units × replicates per ranking case")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-e2e", action="store_true")
    parser.add_argument("--e2e-units", type=int, default=100_000)
    parser.add_argument("--e2e-replicates", type=int, default=10_000)
    parser.add_argument("--dask", action="store_true", help="only the Dask speed-up case (1 vs 2 workers)")
    parser.add_argument("--dask-units", type=int, default=100_000)
    parser.add_argument("--dask-replicates", type=int, default=10_000)
    parser.add_argument("--dask-chunk-blocks", type=int, default=0, help="blocks per chunk (0: the engine's choice)")
    parser.add_argument("--case", nargs="+", help=argparse.SUPPRESS)  # one case, in its own process
    args = parser.parse_args()
    if args.case:
        kind, *numbers = args.case
        cases = {"e2e": case_e2e, "dask": case_dask}
        out = cases[kind](*map(int, numbers)) if kind in cases else case_rank(kind, *map(int, numbers))
        print(json.dumps(out))
        return
    if args.dask:
        run = run_script(__file__, ["--case", "dask", str(args.dask_units), str(args.dask_replicates),
                                    str(args.dask_chunk_blocks)])
        chunks = f"chunks of {run['chunk_blocks']} RNG blocks" if run["chunk_blocks"] else "the engine's chunks"
        table = [f"Dask speed-up: `engine.uncertainty` of {run['replicates']:,} replicates of {run['n_units']:,} "
                 f"synthetic units (large-n mode, {chunks}) on a LocalCluster of "
                 f"single-threaded workers: 1 worker {run['seconds_1']:.1f} s, 2 workers {run['seconds_2']:.1f} s, "
                 f"speed-up {run['speed_up']:.2f} (same tables: {run['identical']}); worker peak "
                 f"{run['worker_peak_mb_2']:,.0f} MB, client peak {run['client_peak_mb']:,.0f} MB.", "",
                 "| workers | wall s | chunks | mean chunk s | chunk s (all workers) | merge s | transfer s | "
                 "wall − busy per worker s |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        table += [f"| {w} | {run[f'seconds_{w}']:.1f} | {run[f'chunks_{w}']} | {run[f'chunk_mean_s_{w}']:.2f} | "
                  f"{run[f'chunk_s_{w}']:.1f} | {run[f'merge_s_{w}']:.1f} | {run[f'transfer_s_{w}']:.1f} | "
                  f"{run[f'client_s_{w}']:.1f} |" for w in (1, 2)]
        write_results("rank-dask", {"machine": machine(), "dask": run}, table)
        return
    rounds: dict[tuple[str, int], list[dict]] = {}
    for _ in range(args.repeat):
        for n in args.sizes:
            m = max(16, min(4096, int(args.work // n)))
            for kind in ("split", "bucket", "numpy"):
                rounds.setdefault((kind, n), []).append(run_script(__file__, ["--case", kind, str(n), str(m)]))
                print(json.dumps(rounds[kind, n][-1]), file=sys.stderr)
    best = {key: min(values, key=lambda v: v["us_per_replicate"]) for key, values in rounds.items()}
    table = ["| n units | replicates | split µs/rep | bucket µs/rep | numpy argsort µs/rep | bucket / numpy | "
             "peak MB split / bucket / numpy | growth split, bucket, numpy |", "|---|---|---|---|---|---|---|---|"]
    previous = None
    for n in args.sizes:
        cases = [best[kind, n] for kind in ("split", "bucket", "numpy")]
        times = [c["us_per_replicate"] for c in cases]
        growth = "" if previous is None else ", ".join(
            f"n^{math.log(t / p) / math.log(n / previous[0]):.2f}" for t, p in zip(times, previous[1], strict=True))
        peaks = " / ".join(f"{c['peak_mb']:,.0f}" for c in cases)
        table.append(f"| {n:,} | {cases[0]['replicates']:,} | {times[0]:,.0f} | {times[1]:,.0f} | {times[2]:,.0f} | "
                     f"{times[1] / times[2]:.2f} | {peaks} | {growth} |")
        previous = (n, times)
    report = {"machine": machine(), "rounds": {f"{k}-{n}": v for (k, n), v in rounds.items()}}
    if not args.no_e2e:
        e2e = run_script(__file__, ["--case", "e2e", str(args.e2e_units), str(args.e2e_replicates), "2"])
        report["e2e"] = e2e
        table += ["", f"End to end: `engine.uncertainty` of {e2e['replicates']:,} replicates of {e2e['n_units']:,} "
                  f"synthetic units (25 indicators, large-n mode, 2 threads): {e2e['seconds']:.1f} s "
                  f"({e2e['cpu_seconds']:.0f} s of CPU), peak {e2e['peak_mb']:,.0f} MB."]
    write_results("rank", report, table)


if __name__ == "__main__":
    main()
