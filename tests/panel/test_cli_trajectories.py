"""cityrank trajectories: the toy panel from a file, and a bad panel exits 2 with the offending rows named."""

from __future__ import annotations

import json

import polars as pl

from engine.cli import main

from .conftest import DOCUMENT


def _files(tmp_path, table):
    framework = tmp_path / "toy.json"
    framework.write_text(json.dumps(DOCUMENT), encoding="utf-8")
    data = tmp_path / "panel.csv"
    table.write_csv(data)
    return str(framework), str(data)


def test_trajectories_prints_the_last_change_and_writes_the_tables(tmp_path, table, capsys):
    framework, data = _files(tmp_path, table)
    out = tmp_path / "out"
    assert main(["trajectories", "-f", framework, "--panel", data, "--normalisation", "panel", "-o", str(out),
                 "--format", "csv"]) == 0
    text = capsys.readouterr().out
    assert "3 periods, 3 units, normalisation fitted on the whole panel" in text
    assert "units per period: 2010 3, 2011 3, 2012 3" in text
    assert "rank change of index from 2011 to 2012" in text and "0 entered, 0 left" in text
    units = pl.read_csv(out / "units.csv")
    y = units.filter(pl.col("city") == "y").sort("year")["index"].to_list()
    assert y[0] == y[2]  # the same data in 2010 and 2012: the same score under panel normalisation
    assert json.loads((out / "manifest.json").read_text())["normalisation"] == "panel"


def test_a_bad_panel_exits_2_naming_the_rows(tmp_path, table, capsys):
    framework, data = _files(tmp_path, pl.concat([table, table.head(1)]))
    assert main(["trajectories", "-f", framework, "--panel", data]) == 2
    assert "duplicate unit-period rows: 'x @ 2010'" in capsys.readouterr().err


def test_trajectories_from_to(tmp_path, table, capsys):
    framework, data = _files(tmp_path, table)
    assert main(["trajectories", "-f", framework, "--panel", data, "--from", "2010", "--to", "2011", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "rank change of index from 2010 to 2011" in out and "rank 2010" in out
    assert main(["trajectories", "-f", framework, "--panel", data, "--from", "2009"]) == 2
    assert "unknown period '2009'; the panel has 2010, 2011, 2012" in capsys.readouterr().err
