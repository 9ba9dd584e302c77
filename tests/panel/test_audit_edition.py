"""The audit of one edition of a panel (issue 20.4: the loader *and the audit* flag the shipped panel's
known problems): ``engine.audit(..., edition=)`` / ``cityrank audit --edition``."""

from __future__ import annotations

import warnings

import pytest

import engine
from engine.cli import main
from engine.errors import DataError, SchemaError

FRAMEWORK = "china-city-development-2004-2012"


@pytest.fixture(scope="module")
def audited():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the loader's warnings: tests/panel/test_shipped_panel.py
        return engine.audit(FRAMEWORK, edition="2011", sections=["data"])  # a period as a command line gives it


def test_the_panel_findings_lead_the_data_flags(audited):
    panel = audited.flags.filter(audited.flags["message"].str.starts_with("panel: "))
    messages = panel["message"].to_list()
    assert panel["section"].unique().to_list() == ["data"] and audited.flags["message"][0] == messages[0]
    assert messages[0] == ("panel: unit ids renamed by data.aliases: '毫州市 -> 亳州市 (2005)', "
                           "'思茅市 -> 普洱市 (2012)'") and panel["units"][0] == "亳州市, 普洱市"
    zeros = panel.filter(panel["column"] == "garbage_treatment_pct").row(0, named=True)
    assert zeros["level"] == "warning" and zeros["message"].startswith("panel: 185 zeros of 'garbage_treatment_pct'")
    # a rate above 100 % in any year is reported by unit and year, whichever edition is audited
    assert any("'北海市 @ 2011=362'" in m for m in messages)
    assert any("'东莞市 @ 2009=386.64'" in m for m in messages)
    filled = panel.filter(panel["level"] == "note")["message"].to_list()
    assert any("filled from the unit's own series (locf), 29 left missing" in m for m in filled)


def test_the_edition_itself_is_audited(audited):
    assert audited.score.table.height == 157  # the 2011 cities
    assert audited.recipe["panel"] == {"edition": "2011", "periods": [str(y) for y in range(2004, 2013)],
                                       "period_column": "year", "normalisation": "period",
                                       "flags": int(audited.flags["message"].str.starts_with("panel: ").sum())}
    own = audited.flags.filter(~audited.flags["message"].str.starts_with("panel: "))
    assert own.filter(own["message"].str.contains("plausible range") & (own["column"] == "garbage_treatment_pct")
                      ).height == 1  # 北海市 2011 again, now as a unit of this edition


def test_bad_editions_are_refused_before_work():
    with pytest.raises(DataError, match=r"unknown period 2013; the panel has 2004, 2005"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine.audit(FRAMEWORK, edition=2013, sections=["data"])
    with pytest.raises(SchemaError, match=r"option\(s\) sheet do not apply to an edition of a panel"):
        engine.audit(FRAMEWORK, edition=2012, sheet="x")
    with pytest.raises(SchemaError, match="unknown normalisation 'yearly'"):
        engine.audit(FRAMEWORK, edition=2012, normalisation="yearly")


def test_cityrank_audit_edition(capsys):
    assert main(["audit", "-f", FRAMEWORK, "--edition", "2012", "--normalisation", "panel", "--sections", "data",
                 "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "audit of 'china-city-development-2004-2012' on 263 units (data)" in out
    assert "warning [data] panel: unit ids renamed by data.aliases" in out


def test_cityrank_report_of_an_edition_carries_the_panel_flags(tmp_path, capsys):
    """`cityrank report --edition` scores the period as trajectories does, so an edition's audit folder
    fits it and the panel's findings reach the report (the whole panel was refused as duplicate ids)."""
    audit_dir, html = tmp_path / "audit", tmp_path / "report.html"
    assert main(["audit", "-f", FRAMEWORK, "--edition", "2012", "--sections", "data", "-o", str(audit_dir)]) == 0
    assert main(["report", "-f", FRAMEWORK, "--edition", "2012", "--audit", str(audit_dir), "-n", "256",
                 "-o", str(html)]) == 0
    assert "sections: Overview, Ranking, Indicators, Robustness, Audit" in capsys.readouterr().out
    page = html.read_text(encoding="utf-8")
    assert "panel: unit ids renamed by data.aliases" in page and "北海市 @ 2011=362" in page


@pytest.mark.parametrize("command", [["audit", "--sections", "data"], ["report", "-n", "256"]])
def test_an_editions_warnings_are_said_once(command, tmp_path, capsys):
    """load_panel says the panel's implausible values by unit and period; scoring the edition (and the
    report's default study, which scores it again) used to say the period's own check of them after it:
    the same finding two or three times, e.g. 4 of fiscal_share's 5 values outside [0, 1] again."""
    out = ["-o", str(tmp_path / ("out.html" if command[0] == "report" else "out"))]
    assert main([command[0], "-f", FRAMEWORK, "--edition", "2012", *command[1:], *out]) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("cityrank: warning: ")]
    assert len(said) == len(set(said))
    fiscal = [line for line in said if "'fiscal_share'" in line]
    assert len(fiscal) == 1 and "5 value(s) outside the plausible range [0, 1]" in fiscal[0]


def test_a_report_of_a_scored_result_does_not_say_its_data_warnings_again():
    """The report's default Monte Carlo study scores the result's data again; what scoring found was said
    when the result was scored."""
    from engine.panel import load_edition
    from engine.report import build

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, fw, dataset = load_edition(FRAMEWORK, None, 2012)
    with pytest.warns(engine.errors.DataQualityWarning):
        result = engine.score(fw, dataset)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build(result, replicates=256)
    assert not [w for w in caught if issubclass(w.category, engine.errors.EngineWarning)]
