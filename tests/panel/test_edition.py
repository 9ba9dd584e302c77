"""One period of a panel as audit and report load it (:func:`engine.panel.load_edition`), each period
checked once, one check of the normalisation, and the edition options refused without an edition."""

from __future__ import annotations

import re

import pytest

import engine
from engine.cli import main
from engine.errors import DataError, SchemaError
from engine.panel import Panel, load_edition, load_panel

SHIPPED_PANEL = "china-city-development-2004-2012"


def test_load_edition_gives_the_panel_the_periods_framework_and_rows(framework, table):
    panel, fitted, dataset = load_edition(framework, table, "2011", "panel")  # a period as a command line gives it
    assert panel.periods == (2010, 2011, 2012) and dataset.meta == {"panel_period": 2011}
    assert dataset.table["a"].to_list() == [1.0, 4.0, 5.0]
    assert fitted.document == panel.framework("panel").document != panel.framework("period").document


def test_load_edition_refuses_before_any_work(framework, table, monkeypatch):
    import engine.panel.load as load

    monkeypatch.setattr(load, "load_panel", lambda *args, **kwargs: pytest.fail("panel loaded"))
    with pytest.raises(SchemaError, match=r"option\(s\) groups, sheet do not apply to an edition of a panel"):
        load_edition(framework, table, 2011, groups=["g"], sheet="x")
    with pytest.raises(SchemaError, match=r"unknown normalisation 'yearly': normalisation must be one of 'period' "
                                          r"or 'panel'"):
        load_edition(framework, table, 2011, "yearly")
    monkeypatch.undo()
    monkeypatch.setattr(Panel, "framework", lambda self, normalisation="period": pytest.fail("framework fitted"))
    with pytest.raises(DataError, match=r"unknown period 2020; the panel has 2010, 2011, 2012"):
        load_edition(framework, table, 2020, "panel")


def test_a_period_is_checked_once_and_the_periods_found_once(framework, table, monkeypatch):
    panel = load_panel(framework, table)
    assert panel.periods is panel.periods  # the unique + sort of the period column, once per panel
    checked, real = [], Panel.check_period
    monkeypatch.setattr(Panel, "check_period", lambda self, period, name=None: checked.append(period)
                        or real(self, period, name))
    assert panel.dataset("2011").table.height == 3 and checked == ["2011"]
    assert panel.units_in(2012) == ["x", "y", "z"] and checked == ["2011", 2012]
    checked.clear()
    load_edition(framework, table, 2010)
    assert checked == [2010]


def test_a_period_asked_for_in_a_role_is_named_with_it(framework, table):
    panel = load_panel(framework, table)
    assert panel.check_period("2012", "end") == 2012
    with pytest.raises(DataError, match=r"start period '2009' is not in the panel, which has 2010, 2011, 2012") as err:
        panel.check_period("2009", "start")
    assert err.value.column == "year"


def test_one_message_for_an_unknown_normalisation_wherever_it_is_given(framework, table):
    from engine.analysis.change import change

    panel = load_panel(framework, table)
    for refuse in (lambda: panel.framework("yearly"),
                   lambda: change(framework, panel, start=2010, end=2011, normalisation="yearly"),
                   lambda: engine.audit(framework, table, edition=2011, normalisation="yearly")):
        with pytest.raises(SchemaError, match=r"unknown normalisation 'yearly': normalisation must be one of "
                                              r"'period' or 'panel'") as err:
            refuse()
        assert "'panel': parameters fitted on the whole panel" in err.value.fix


def test_audit_panel_options_without_an_edition_are_refused_before_work(monkeypatch):
    """``normalisation=`` was ignored without ``edition=``; ``period=`` reached load_data (TypeError)."""
    monkeypatch.setattr("engine.pipeline.as_dataset", lambda *args, **kwargs: pytest.fail("data loaded"))
    with pytest.raises(SchemaError, match=r"option\(s\) period= apply only to one edition of panel data") as err:
        engine.audit("asem", period="year")
    assert err.value.fix == "pass edition= (the period to audit), or leave out period="
    with pytest.raises(SchemaError, match=r"option\(s\) normalisation= apply only to one edition"):
        engine.audit("asem", normalisation="panel")
    with pytest.raises(SchemaError, match=r"option\(s\) normalisation= and period= apply only"):
        engine.audit("asem", normalisation="period", period="year")


@pytest.mark.parametrize("argv", [["audit", "-f", "asem", "--period", "year"],
                                  ["report", "-f", "asem", "--period", "year"],
                                  ["report", "-f", "asem", "--normalisation", "panel"],
                                  ["audit", "-f", "asem", "--period", "year", "--normalisation", "period"]])
def test_cli_edition_options_without_an_edition_exit_2(argv, tmp_path, capsys):
    """`cityrank audit --period` crashed (TypeError from load_data); report ignored --period and
    --normalisation without --edition."""
    out = tmp_path / ("out.html" if argv[0] == "report" else "out")
    assert main([*argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    given = " and ".join(a for a in argv if a in ("--period", "--normalisation"))
    assert re.search(rf"option\(s\) {given} apply only to one period of panel data \(--edition\).*add --edition "
                     rf"PERIOD, or leave out {given}", err)
    assert not out.exists()


def test_cli_report_of_an_edition_refuses_options_it_cannot_use(tmp_path, capsys):
    """`report --edition` dropped --groups/--label/--sheet/--encoding/--skip-rows silently."""
    html = tmp_path / "report.html"
    assert main(["report", "-f", SHIPPED_PANEL, "--edition", "2012", "--groups", "province", "--skip-rows", "1",
                 "-o", str(html)]) == 2
    assert "option(s) groups, skip_rows do not apply to an edition of a panel" in capsys.readouterr().err
    assert not html.exists()
