"""Command-line usability (issue 15.12-15.17, 21.11): help, aligned tables, large-run estimates,
progress, the compile notice, the resume command after Ctrl-C, thread counts and Dask waits."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import polars as pl
import pytest

from engine import cli
from engine.cli import main
from engine.errors import BackendError, EngineError, SchemaError
from engine.progress import Progress, format_duration

COMMANDS = ["demo", "frameworks", "datasets", "validate", "score", "weights", "groups", "compare", "uncertainty",
            "bootstrap", "sensitivity", "audit"]


# --- 15.14: help, defaults, display width, tiers, groups, names --------------------------------------------

def test_help_lists_every_command_without_markup(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "``" not in out and ":func:" not in out
    for command in COMMANDS:
        assert f"    {command}" in out, command


def test_command_help_shows_defaults_and_backend_help(capsys):
    with pytest.raises(SystemExit):
        main(["uncertainty", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: threads)" in out and "results are identical" in out
    assert "(default: 10)" in out and "--yes" in out and "(default: None)" not in out


def test_tables_align_by_display_width():
    text = cli._render(["unit", "name", "score"], [["A", "乌鲁木齐市", "1.0000"], ["BB", "Lyon", "12.5000"]],
                       left=(0, 1))
    lines = text.splitlines()
    # the score column ends at the same display column on every line
    assert len({cli._width(line) for line in lines}) == 1
    # the score column starts one column later for the shorter number, wherever the CJK name is
    assert cli._width(lines[1][:lines[1].index("1.0000")]) == cli._width(lines[2][:lines[2].index("12.5000")]) + 1
    assert lines[1].index("乌") == lines[2].index("Lyon") == lines[0].index("name")  # left-aligned names


def test_names_are_cut_by_display_width_not_characters():
    assert cli._fit("乌鲁木齐市", 6) == "乌鲁…" and cli._width(cli._fit("乌鲁木齐市", 6)) == 5
    assert cli._fit("Lyon", 6) == "Lyon"


def test_score_tiers_prints_the_tier_column(capsys):
    assert main(["score", "-f", "asem", "--tiers", "3", "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if line.startswith("rank"))
    assert header.split()[-1] == "tier"
    assert lines[lines.index(header) + 1].split()[-1] == "1"


def test_groups_prints_every_group_in_an_aligned_table(capsys):
    assert main(["groups", "-f", "regional-ai-2023", "--by", "economic_circle"]) == 0
    out = capsys.readouterr().out
    assert "shape:" not in out and "┌" not in out and "…" not in out
    table = out.splitlines()[1:]
    assert table[0].startswith("economic_circle") and len(table) == 5  # header + 4 circles
    assert {line.split()[0] for line in table[1:]} == {"长三角", "京津冀", "珠三角", "川渝"}
    assert main(["groups", "-f", "regional-ai-2023", "--by", "economic_circle", "--top", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4


def test_compare_prints_names(capsys):
    assert main(["compare", "-f", "asem", "--old", "asem", "--new", "asem", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "Switzerland" in out and "shape:" not in out
    assert out.splitlines()[1].split()[:3] == ["unit", "name", "old"]


def test_bootstrap_confidence_set_lists_names(capsys):
    assert main(["bootstrap", "-f", "regional-ai-2023", "-r", "ai_firms_synthetic", "--mode", "records", "-n", "1024",
                 "--seed", "1", "--top", "2", "-q"]) == 0
    out = capsys.readouterr().out
    top = next(line for line in out.splitlines() if "confidence set for the top" in line)
    assert "Beijing (北京市)" in top  # display name with the unit id


# --- 15.17: Sobol estimates below zero --------------------------------------------------------------------

def test_negative_sobol_estimates_show_as_zero_with_interval_and_footnote():
    indices = pl.DataFrame({"group": ["weights:depth1", "weights:depth2"], "first": [-0.008, 0.5],
                            "first_lo": [-0.03, 0.4], "first_hi": [0.01, 0.6], "total": [0.02, 0.9],
                            "total_lo": [0.0, 0.8], "total_hi": [0.05, 1.0]})
    text = cli._format_indices(indices)
    row = next(line for line in text.splitlines() if line.startswith("weights:depth1"))
    assert "0.000*" in row and "[-0.030, 0.010]" in row and "-0.008 " not in row
    assert "raw: weights:depth1 first -0.0080" in text and "sampling noise" in text
    assert "*" not in cli._format_indices(indices.with_columns(pl.col("first").abs()))


# --- 15.12 / 15.13: progress, estimates, resume command, compile notice -----------------------------------

def test_progress_prints_periodically_when_not_a_terminal_and_moves_inside_a_chunk():
    stream = io.StringIO()
    bar = Progress(1_000_000_000_000, stream=stream, every=0.05, heartbeat=0.02)
    bar.update(65536)
    time.sleep(0.3)
    bar.partial(1024)
    time.sleep(0.1)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) >= 3  # the old bar printed once per 10 %: one line in 12 minutes of a 10^12 run
    assert "6.6e-06%" in lines[0] and "ETA" in lines[0] and "inf" not in stream.getvalue()
    assert "66,560/" in lines[-1]  # the chunk in progress counts
    bar.update(65536)  # update replaces the partial count
    assert bar.done == 131072 and bar._partial == 0


def test_progress_stops_its_heartbeat_on_close():
    stream = io.StringIO()
    bar = Progress(10, stream=stream, every=0.01, heartbeat=0.01)
    bar.close()
    printed = stream.getvalue()
    time.sleep(0.05)
    assert stream.getvalue() == printed and not bar._thread.is_alive()


def test_format_duration():
    assert [format_duration(s) for s in (4.2, 42, 200, 18600, 86400 * 12.5, 1e12)] == \
        ["4.2 s", "42 s", "3 min 20 s", "5 h 10 min", "12.5 days", "31,688 years"]
    assert format_duration(float("inf")) == "unknown"


def test_a_huge_run_is_refused_without_yes_before_any_work(tmp_path, capsys):
    out = tmp_path / "huge"
    assert main(["uncertainty", "-f", "asem", "-n", "1000000000000", "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "large run not started without --yes: 1,000,000,000,000 replicates will take about" in err
    assert "add --yes" in err and "Traceback" not in err
    assert not (out / "chunks").exists() or not any((out / "chunks").iterdir())


def test_the_api_reports_the_estimate_and_the_checkpoint_size(tmp_path):
    from engine.analysis.uncertainty import uncertainty

    seen, stored = [], []

    def confirm(estimate: dict) -> None:
        seen.append(estimate)
        stored.append([p.stat().st_size for p in (tmp_path / "u" / "chunks").glob("chunk_*")])

    uncertainty("asem", replicates=3 * 65536, seed=1, out=tmp_path / "u", confirm=confirm)
    assert [e["stage"] for e in seen] == ["start", "first chunk"]
    assert seen[0]["seconds"] > 0 and seen[0]["replicates"] == 3 * 65536 and seen[0]["chunks"] == 3
    assert stored[0] == [] and len(stored[1]) == 1  # asked before any work, then after the first chunk
    assert seen[1]["checkpoint_bytes"] == 3 * stored[1][0]  # the stored chunk's size × 3 chunks


def test_confirm_asks_above_the_limits_and_refuses_without_a_terminal(tmp_path, capsys):
    args = cli.build_parser().parse_args(["uncertainty", "-f", "asem", "-n", "1000", "-o", str(tmp_path)])
    args.argv = ["uncertainty", "-f", "asem", "-n", "1000", "-o", str(tmp_path)]
    confirm = cli._confirm_large_run(args, str(tmp_path))
    confirm({"stage": "start", "replicates": 1000, "seconds": 5.0, "chunks": 1, "checkpoint_bytes": None})
    assert capsys.readouterr().err == ""  # a small run starts silently
    confirm({"stage": "start", "replicates": 10**9, "seconds": 120.0, "chunks": 1, "checkpoint_bytes": None})
    assert "will take about 2 min 0 s" in capsys.readouterr().err  # shown, not asked
    (tmp_path / "run.json").write_text(json.dumps({"seed": 77}))
    with pytest.raises(EngineError, match=r"large run stopped without --yes: checkpoints will take about 2\.0 GB"
                       r".*--seed 77 --resume") as info:
        confirm({"stage": "first chunk", "replicates": 10**9, "seconds": None, "chunks": 15000,
                 "checkpoint_bytes": 2e9})
    assert "add --yes" in str(info.value)
    args.yes = True
    confirm({"stage": "start", "replicates": 10**12, "seconds": 1e7, "chunks": 1, "checkpoint_bytes": None})


def test_ctrl_c_prints_the_resume_command(tmp_path, capsys, monkeypatch):
    import engine.analysis.uncertainty as run

    def interrupted(*args, out=None, **kwargs):
        if out is None:
            raise KeyboardInterrupt
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "run.json").write_text(json.dumps({"seed": 123456789}))
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "uncertainty", interrupted)
    out = tmp_path / "my run"
    assert main(["uncertainty", "-f", "asem", "-n", "2000000", "-o", str(out), "--top", "3"]) == 130
    err = capsys.readouterr().err
    assert "cityrank: interrupted" in err
    assert (f"cityrank uncertainty -f asem -n 2000000 --top 3 --seed 123456789 --resume '{out}'") in err
    assert main(["uncertainty", "-f", "asem", "--seed", "4", f"--out={out}"]) == 130
    assert f"cityrank uncertainty -f asem --seed 4 --resume '{out}'" in capsys.readouterr().err
    assert main(["uncertainty", "-f", "asem"]) == 130  # no output folder: no resume command
    assert "--resume" not in capsys.readouterr().err
    monkeypatch.setattr(run, "uncertainty", lambda *args, **kwargs: (_ for _ in ()).throw(KeyboardInterrupt))
    assert main(["uncertainty", "-f", "asem", "-o", str(tmp_path / "never")]) == 130  # stopped before storing
    assert "--resume" not in capsys.readouterr().err


def test_the_compile_notice_is_said_once_and_only_when_numba_compiles(capsys):
    # Numba fires "numba:compile" only when it compiles (a cache miss); the events are raised by hand
    # here (compiling throwaway functions in the test process upsets LLVM when they are freed)
    from numba.core import event

    def compiling() -> None:
        with event.trigger_event("numba:compile", data={"dispatcher": None, "args": (), "return_type": None}):
            pass

    with cli._compile_notice("score"):
        compiling()
        compiling()
    assert capsys.readouterr().err.count("compiling kernels (first run only") == 1
    with cli._compile_notice("validate"):
        compiling()
    compiling()  # the listener is gone after the command
    assert capsys.readouterr().err == ""


# --- 21.11: thread counts, Dask with no worker ------------------------------------------------------------

@pytest.mark.parametrize("value", ["0", "-2", "x"])
def test_threads_below_one_are_refused_by_the_cli(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["uncertainty", "-f", "asem", "--threads", value])
    assert exit_info.value.code == 2
    assert "argument --threads" in capsys.readouterr().err


@pytest.mark.parametrize("analysis", ["uncertainty", "bootstrap", "sensitivity"])
@pytest.mark.parametrize("threads", [0, -2])
def test_threads_below_one_are_refused_by_the_api(analysis, threads):
    from engine.analysis.bootstrap import bootstrap
    from engine.analysis.sensitivity import sensitivity
    from engine.analysis.uncertainty import uncertainty

    run = {"uncertainty": uncertainty, "bootstrap": bootstrap, "sensitivity": sensitivity}[analysis]
    with pytest.raises(SchemaError, match=rf"threads must be a whole number of at least 1, got {threads}"):
        run("asem", threads=threads, **({"mode": "units"} if analysis == "bootstrap" else {}))


def test_workers_and_worker_wait_are_checked():
    from engine.backends import check_backend

    with pytest.raises(SchemaError, match=r"workers must be a whole number of at least 1, got 0"):
        check_backend("dask", workers=0)
    with pytest.raises(SchemaError, match=r"worker_wait must be a positive number of seconds, got 0"):
        check_backend("dask", worker_wait=0)
    with pytest.raises(SchemaError, match=r"unknown backend 'gpu'"):
        check_backend("gpu")


def test_a_malformed_scheduler_address_is_a_backend_error(monkeypatch):
    import weakref

    import dask.distributed

    from engine.backends.distributed import connect

    built = []  # weak references to the clients connect builds (not those other tests closed and left to gc)

    class Recorded(dask.distributed.Client):
        def __init__(self, *args, **kwargs):
            built.append(weakref.ref(self))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(dask.distributed, "Client", Recorded)
    with pytest.raises(BackendError, match=r"cannot reach the Dask scheduler at 'foo::bar'.*invalid address"):
        connect(scheduler="foo::bar")
    # the half-built Client is gone already: left to a later garbage collection, its __del__ ran inside the
    # next LocalCluster's start in the same process and deadlocked it (seen in a clean-cache test run)
    assert len(built) == 1 and built[0]() is None


@pytest.mark.dask
def test_a_cluster_with_no_worker_is_reported_then_given_up(capsys):
    from dask.distributed import Client, LocalCluster

    from engine.analysis.uncertainty import uncertainty
    from engine.backends.distributed import completed

    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        stream = io.StringIO()
        started = time.monotonic()
        with pytest.raises(BackendError, match=r"no Dask worker connected to .* for \d+ s \(1 tasks still to run\); "
                           r"giving up.*--worker-wait"):
            list(completed(client, [client.submit(int, "1")], worker_wait=0.6, poll=0.1, stream=stream))
        assert time.monotonic() - started < 10
        assert "no Dask worker connected" in stream.getvalue() and "giving up after 1 s" in stream.getvalue()
        with pytest.raises(BackendError, match=r"no Dask worker connected"):
            uncertainty("asem", replicates=2048, seed=1, backend="dask", client=client, worker_wait=0.5)
    assert "no Dask worker connected" in capsys.readouterr().err


def test_a_run_seeded_by_fresh_entropy_resumes_with_the_stored_seed(tmp_path):
    from engine.analysis.uncertainty import uncertainty

    class Stop(Exception):
        pass

    def stop_after_the_first_chunk(estimate: dict) -> None:
        if estimate["stage"] == "first chunk":
            raise Stop

    with pytest.raises(Stop):
        uncertainty("asem", replicates=2 * 65536, out=tmp_path / "u", confirm=stop_after_the_first_chunk)
    seed = json.loads((tmp_path / "u" / "run.json").read_text())["seed"]  # what the resume command adds
    resumed = uncertainty("asem", replicates=2 * 65536, seed=seed, out=tmp_path / "u", resume=True)
    assert resumed.manifest["resumed_chunks"] == 1  # the spec's seed (none) is not compared again
    whole = uncertainty("asem", replicates=2 * 65536, seed=seed)
    assert resumed.units.equals(whole.units)


def test_a_huge_bootstrap_is_refused_without_yes(capsys):
    assert main(["bootstrap", "-f", "asem", "--mode", "units", "-n", "1000000000000", "-q"]) == 2
    err = capsys.readouterr().err
    assert "large run not started without --yes: 1,000,000,000,000 replicates will take about" in err


def test_the_bootstrap_api_reports_the_estimate():
    from engine.analysis.bootstrap import bootstrap

    seen = []
    bootstrap("asem", mode="units", replicates=2048, seed=1, confirm=seen.append)
    assert [e["stage"] for e in seen] == ["start"] and seen[0]["seconds"] > 0 and seen[0]["replicates"] == 2048


def test_weights_prints_an_aligned_table(capsys):
    assert main(["weights", "-f", "regional-ai-2023"]) == 0
    lines = capsys.readouterr().out.splitlines()
    start = next(k for k, line in enumerate(lines) if line.startswith("indicator"))
    table = lines[start:next(k for k, line in enumerate(lines) if line.startswith("sum")) + 1]
    assert len({cli._width(line) for line in table}) == 1  # the global column ends in one place
    assert float(table[-1].split()[-1]) == pytest.approx(1.0, abs=1e-5)


def test_chunks_report_progress_block_by_block():
    from engine import score
    from engine.analysis.bootstrap import load_bootstrap_spec
    from engine.analysis.montecarlo import run_chunk
    from engine.analysis.problem import build_problem
    from engine.analysis.resampling import build_bootstrap_problem, run_bootstrap_chunk
    from engine.analysis.spec import load_spec, resolve_factors
    from engine.analysis.uncertainty import with_default_factors

    nominal = score("asem")
    spec = with_default_factors(load_spec(None), nominal.framework)
    factors = resolve_factors(spec, nominal.framework)
    problem = build_problem(nominal, spec, factors)
    calls: list[int] = []
    run_chunk(problem, factors, 1, 0, 4, 1024, n_lanes=2, n_replicates=3500, on_block=calls.append)
    assert sorted(calls) == [428, 1024, 1024, 1024]  # one call per block, from the lanes' threads
    bspec = load_bootstrap_spec({}, mode="units", replicates=3000, seed=1)
    uspec = bspec.uncertainty_spec()
    bfactors = resolve_factors(uspec, nominal.framework)
    bp = build_bootstrap_problem(build_problem(nominal, uspec, bfactors), bspec, bfactors, None)
    calls.clear()
    run_bootstrap_chunk(bp, 1, 0, 3, 1024, n_lanes=1, n_replicates=3000, on_block=calls.append)
    assert calls == [1024, 1024, 952]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("answer", "goes"), [("y\n", True), ("yes\n", True), ("n\n", False), ("\n", False)])
def test_a_large_run_asks_on_a_terminal(answer, goes, monkeypatch):
    import sys

    args = cli.build_parser().parse_args(["uncertainty", "-f", "asem"])
    args.argv = ["uncertainty", "-f", "asem"]
    monkeypatch.setattr(sys, "stdin", _Terminal(answer))
    monkeypatch.setattr(sys, "stderr", _Terminal())
    estimate = {"stage": "start", "replicates": 10**10, "seconds": 7200.0, "chunks": None, "checkpoint_bytes": None}
    if goes:
        cli._confirm_large_run(args, None)(estimate)
    else:
        with pytest.raises(EngineError, match=r"run not started: 10,000,000,000 replicates will take about 2 h 0 min"):
            cli._confirm_large_run(args, None)(estimate)
    assert sys.stderr.getvalue().endswith("continue? [y/N] ")


def test_sensitivity_lists_the_factors_a_spec_groups(capsys, tmp_path):
    """``--list-factors`` (named by the spec schema's ``groups``) prints the factor names and their groups."""
    spec = tmp_path / "spec.yaml"
    spec.write_text("weights:\n  - {depth: 1, noise: 0.25}\naggregation:\n  - {depth: 0, choices: [arithmetic, "
                    "geometric]}\ngroups:\n  top: [weight:Conn, weight:Sust]\n", encoding="utf-8")
    assert main(["sensitivity", "-f", "asem", "-s", str(spec), "--list-factors"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows == [["factor", "kind", "nodes", "columns", "group"],
                    ["weight:Conn", "noise", "Conn", "1", "top"], ["weight:Sust", "noise", "Sust", "1", "top"],
                    ["aggregation:depth0", "aggregation", "Index", "1", "aggregation:depth0"]]


def test_sensitivity_factors_of_the_default_spec_are_grouped_by_level():
    from engine.analysis.sensitivity import sensitivity_factors

    factors = sensitivity_factors("asem")
    assert factors.columns == ["factor", "kind", "nodes", "columns", "group"]
    assert factors.filter(pl.col("factor") == "weight:Conn")["group"].item() == "weights:depth1"
    assert factors.filter(pl.col("factor") == "weight:Physical")["group"].item() == "weights:depth2"
    assert set(factors["group"]) == {"weights:depth1", "weights:depth2", "weights:depth3"}
