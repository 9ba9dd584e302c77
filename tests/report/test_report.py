"""The HTML report and its charts, without a browser: sections, self-containment, inputs from
folders, refused inputs, figures, the CLI."""

from __future__ import annotations

import json
import re

import altair as alt
import polars as pl
import pytest

import engine
from engine.cli import main
from engine.report import build, charts, load_folder, write_figures

from .conftest import FRAMEWORK


def _payload(text: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
                      .group(1).replace("<\\/", "</"))


def test_report_has_every_section_and_is_self_contained(demo_report):
    report, path = demo_report
    text = path.read_text(encoding="utf-8")
    ids = [sid for sid, _, _ in report.sections]
    assert ids == ["overview", "ranking", "indicators", "robustness", "sensitivity", "sampling", "editions", "profile"]
    # no network: the page's markup loads nothing from a URL (the Vega libraries are inline; the browser
    # test checks what the scripts request)
    markup = re.sub(r"<script[^>]*>.*?</script>", "", text, flags=re.S)
    assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)=', markup)
    assert "@import" not in text and "url(http" not in text
    assert "window.vegaEmbed" in text
    data = _payload(text)
    assert set(data["specs"]) == {"framework", "top", "distributions", "correlation", "intervals", "sobol",
                                  "sobol_unit", "bootstrap", "rank_shift", "editions", "profile"}
    rows = data["table"]["rows"]
    assert len(rows) == 297 and rows[0][1] == "杭州市" and rows[0][0] == 1  # every unit, best first, Chinese names
    assert 'value="330100"' in text  # the unit selector lists units by id


def test_sections_appear_only_with_their_inputs(analyses):
    report = build(FRAMEWORK, sensitivity=analyses["runs"]["sensitivity"])
    assert [sid for sid, _, _ in report.sections] == ["overview", "ranking", "indicators", "sensitivity", "profile"]


def test_without_analyses_a_default_monte_carlo_runs(asem_result):
    report = build(asem_result, replicates=1024, seed=3)
    assert "robustness" in [sid for sid, _, _ in report.sections]
    assert "1,024 replicates, seed 3" in dict((s, b) for s, _, b in report.sections)["robustness"]


def test_folders_give_the_same_report_as_result_objects(analyses, demo_report):
    from_folders = build(FRAMEWORK, **{k: str(v) for k, v in analyses["folders"].items()})
    assert [s[0] for s in from_folders.sections] == [s[0] for s in demo_report[0].sections if s[0] != "editions"]
    spec = from_folders.charts["intervals"].to_dict(validate=False)
    values = next(iter(spec["datasets"].values()))
    assert len(values) == 297 and values[0]["name"] == "杭州市"


def test_an_analysis_of_another_framework_is_refused_before_writing(analyses, tmp_path):
    out = tmp_path / "r.html"
    folder = str(analyses["folders"]["uncertainty"])
    with pytest.raises(engine.DataError, match=r"framework 'china-city-innovation-2023'.*not of 'asem'"):
        build("asem", uncertainty=folder)
    assert main(["report", "-f", "asem", "--uncertainty", folder, "-o", str(out)]) == 2 and not out.exists()


def test_an_analysis_of_other_data_is_refused(analyses):
    subset = engine.load_data("ccsy2024_cities", framework=engine.load_framework(FRAMEWORK)).table.head(200)
    with pytest.raises(engine.DataError, match=r"cover 297 units.*have 200"):
        build(FRAMEWORK, subset, uncertainty=analyses["runs"]["uncertainty"])


def test_a_folder_without_manifest_or_tables_is_refused(tmp_path, analyses):
    with pytest.raises(engine.DataError, match=r"no manifest\.json in the uncertainty folder"):
        load_folder(tmp_path, "uncertainty")
    with pytest.raises(engine.DataError, match="holds sensitivity results, not uncertainty results"):
        load_folder(analyses["folders"]["sensitivity"], "uncertainty")
    (tmp_path / "manifest.json").write_text(json.dumps({"kind": "uncertainty"}))
    with pytest.raises(engine.DataError, match=r"has no units\.parquet or \.csv"):
        load_folder(tmp_path, "uncertainty")


def test_the_output_must_be_an_html_file(asem_result, tmp_path):
    with pytest.raises(engine.DataError, match=r"a report is one HTML file, not '\.pdf'"):
        build(asem_result, replicates=1024).write(tmp_path / "r.pdf")
    assert main(["report", "-f", "asem", "-o", str(tmp_path)]) == 2  # a folder: refused before scoring


def test_charts_are_altair_objects_and_write_png_and_svg(demo_report, analyses, tmp_path):
    report, _ = demo_report
    assert all(isinstance(c, alt.TopLevelMixin) for c in report.charts.values())
    result = engine.score(FRAMEWORK)
    chosen = {"top": charts.top_bar(result, 10), "sobol": charts.sobol_bars(analyses["runs"]["sensitivity"])}
    files = write_figures(chosen, tmp_path / "fig")
    assert sorted(p.name for p in files) == ["sobol.png", "sobol.svg", "top.png", "top.svg"]
    assert (tmp_path / "fig" / "top.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (tmp_path / "fig" / "top.svg").read_text(encoding="utf-8")
    assert "<svg" in svg and "杭州市" in svg


def test_framework_tree_shows_nominal_and_effective_weights():
    result = engine.score("asem")
    values = next(iter(charts.framework_tree(result).to_dict(validate=False)["datasets"].values()))
    frame = pl.DataFrame(values)
    effective = frame.filter(pl.col("kind") == "effective")
    assert effective.height == result.effective_weights.height
    leaves = effective.filter(pl.col("node").is_in([i.id for i in result.framework.indicators]))
    assert leaves["weight"].sum() == pytest.approx(1.0)


def test_cli_report_writes_the_file_and_figures(analyses, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", "-f", FRAMEWORK, "--sensitivity", str(analyses["folders"]["sensitivity"]),
                 "--uncertainty", str(analyses["folders"]["uncertainty"]), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Robustness" in text and "Sensitivity" in text and out.stat().st_size > 500_000


def test_charts_of_more_than_5000_rows_are_kept_whole():
    result = engine.score("ai-city-2024")  # 337 units x (4 dimensions + 25 indicators) in the profile chart
    spec = charts.to_spec(charts.unit_profile(result))
    fw = result.framework
    rows = max(spec["datasets"].values(), key=len)
    assert len(rows) == 337 * (len(fw.root.children) + len(fw.indicators)) > 5000


def test_rank_intervals_of_many_units_show_the_best_and_say_so(analyses):
    spec = charts.to_spec(charts.rank_intervals(analyses["runs"]["uncertainty"], max_units=100))
    values = next(iter(spec["datasets"].values()))
    assert sorted(v["nominal_rank"] for v in values) == list(range(1, 101))
    assert spec["title"]["subtitle"].startswith("the best 100 of 297 units")


def test_overview_warns_of_synthetic_data_only_and_shows_coverage(demo_report):
    report = build(engine.score("ai-city-2024"), replicates=1024, seed=1)
    overview = dict((sid, body) for sid, _, body in report.sections)["overview"]
    assert "These data are SYNTHETIC" in overview and "Data coverage: " in overview
    real = dict((sid, body) for sid, _, body in demo_report[0].sections)["overview"]
    assert "These data are SYNTHETIC" not in real and "Data coverage: 35 imputed cells" in real


def test_ranking_table_carries_the_monte_carlo_interval_and_probabilities(demo_report):
    table = demo_report[0].data["table"]
    assert table["columns"][-4:] == ["q05_rank", "q95_rank", "p_top10", "p_same_tier"]
    first = dict(zip(table["columns"], table["rows"][0]))
    assert first["name"] == "杭州市" and 0.5 < first["p_top10"] <= 1


def test_editions_section_draws_every_units_rank_change():
    data = engine.load_data("asem", framework=engine.load_framework("asem")).table
    earlier = data.with_columns(pl.col("Flights") * 0.5)  # a previous edition with other flight numbers
    result = engine.score("asem")
    report = build(result, previous=earlier, replicates=1024)
    assert "editions" in [sid for sid, _, _ in report.sections]
    values = next(iter(charts.to_spec(report.charts["editions"])["datasets"].values()))
    assert len(values) == 2 * result.table.height
    moved = {v["unit"]: v["rank_change"] for v in values}
    old = engine.score("asem", earlier).table.select("uCode", "Index_rank")
    expected = dict(zip(old["uCode"], old["Index_rank"]))
    new = dict(zip(result.table["uCode"], result.table["Index_rank"]))
    assert moved == {u: expected[u] - new[u] for u in new}
    with pytest.raises(engine.DataError, match="previous edition is scored with framework 'hdi'"):
        build(result, previous=engine.score("hdi"))


def test_indicator_distributions_flag_the_values_beyond_one_and_a_half_iqr():
    result = engine.score("china-city-innovation-2023")
    spec = charts.to_spec(charts.indicator_distributions(result, max_outliers=5))
    box, points = (next(v for v in spec["datasets"].values() if key in v[0]) for key in ("q1", "name"))
    values = result.table["tech_contract_pc"].drop_nans().drop_nulls()
    q1, q3 = values.quantile(0.25, interpolation="linear"), values.quantile(0.75, interpolation="linear")
    beyond = values.filter((values < q1 - 1.5 * (q3 - q1)) | (values > q3 + 1.5 * (q3 - q1)))
    assert beyond.len() > 5  # skewed: many outliers, the 5 most extreme shown
    row = next(b for b in box if b["indicator"] == "tech_contract_pc")
    assert row["q1"] == pytest.approx(q1) and row["hi"] <= q3 + 1.5 * (q3 - q1)
    shown = sorted(p["value"] for p in points if p["indicator"] == "tech_contract_pc")
    assert len(shown) == 5 and shown[0] >= round(sorted(beyond.to_list())[-5], 2)
    assert "the 5 most extreme per indicator" in spec["title"]["subtitle"]


def test_cli_report_writes_figures_as_png_and_svg(tmp_path, capsys):
    out, figures = tmp_path / "asem.html", tmp_path / "fig"
    assert main(["report", "-f", "asem", "-n", "1024", "--figures", str(figures), "-o", str(out)]) == 0
    assert "figures: 14 files (PNG and SVG)" in capsys.readouterr().out  # 7 charts
    names = {p.name for p in figures.iterdir()}
    assert {"intervals.png", "intervals.svg", "profile.png", "framework.svg"} <= names and out.is_file()


def test_audit_section_shows_the_verdict_of_this_framework_only(asem_result):
    audited = engine.audit("asem", sections=["data"])
    report = build(asem_result, audit=audited, replicates=1024)
    body = dict((sid, b) for sid, _, b in report.sections)["audit"]
    assert body.startswith("<pre>") and audited.verdict().splitlines()[0][:40] in body.replace("&#x27;", "'")
    with pytest.raises(engine.DataError, match="the audit is of framework 'hdi', not of 'asem'"):
        build(asem_result, audit=engine.audit("hdi", sections=["data"]), replicates=1024)


def test_csv_folders_are_read_too(analyses, tmp_path):
    folder = analyses["runs"]["uncertainty"].write(tmp_path / "mc", format="csv")
    report = build(FRAMEWORK, uncertainty=str(folder))
    values = max(charts.to_spec(report.charts["intervals"])["datasets"].values(), key=len)
    assert len(values) == 297 and values[0]["name"] == "杭州市"


def test_weight_importance_chart_plots_weights_against_importance_shares():
    # issue 18: "a chart of weight vs importance goes into the report". zscore-normalised independent
    # normals with weights 3, 2, 1: importance shares 9/14, 4/14, 1/14 against weight shares 3/6, 2/6, 1/6.
    from tests.audit.test_importance import flat_framework, normal_table

    result = engine.score(flat_framework([3, 2, 1]), normal_table(2000, 3, seed=7))
    audited = engine.audit(result.framework, result.dataset, sections=["importance"])
    chart = charts.weight_importance(audited)
    spec = chart.to_dict()
    points = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "circle")
    rows = {r["node"]: r for r in spec["datasets"][points["data"]["name"]]}
    assert sorted(rows) == ["x0", "x1", "x2"]
    assert [rows[n]["local"] for n in ("x0", "x1", "x2")] == pytest.approx([3 / 6, 2 / 6, 1 / 6])
    assert [rows[n]["share_parent"] for n in ("x0", "x1", "x2")] == pytest.approx([9 / 14, 4 / 14, 1 / 14], abs=0.03)
    report = build(result, audit=audited, replicates=1024)
    assert "weight_importance" in dict((sid, b) for sid, _, b in report.sections)["audit"]
    with pytest.raises(engine.DataError, match="the audit has no importance table"):
        charts.weight_importance(engine.audit(result.framework, result.dataset, sections=["data"]))
