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
    assert set(data["specs"]) == {"framework", "top", "distributions", "correlation", "intervals", "top_probabilities",
                                  "tier_stability", "sobol", "sobol_unit", "bootstrap", "rank_shift", "editions",
                                  "profile", "peers"}
    rows = data["table"]["rows"]
    assert len(rows) == 297 and rows[0][1] == "杭州市" and rows[0][0] == 1  # every unit, best first, Chinese names
    assert data["profile"]["units"][0] == "330100" and len(data["profile"]["units"]) == 297  # the unit selector


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
    chart = alt.Chart(pl.DataFrame({"x": list(range(6000))})).mark_point().encode(x="x:Q")
    with pytest.raises(alt.MaxRowsError):
        chart.to_dict()
    assert len(next(iter(charts.to_spec(chart)["datasets"].values()))) == 6000


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
    assert "figures: 20 files (PNG and SVG)" in capsys.readouterr().out  # 10 charts
    names = {p.name for p in figures.iterdir()}
    assert {"intervals.png", "intervals.svg", "profile.png", "framework.svg"} <= names and out.is_file()


def test_audit_section_shows_the_verdict_of_this_framework_only(asem_result):
    audited = engine.audit("asem", sections=["data"])
    report = build(asem_result, audit=audited, replicates=1024)
    body = dict((sid, b) for sid, _, b in report.sections)["audit"]
    assert audited.verdict().splitlines()[0] in body.replace("&#x27;", "'")
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


def _html_table(body: str, after: str) -> list[dict]:
    """The rows of the first HTML table after ``after`` in ``body``, as dicts by header."""
    part = body[body.index(after):]
    part = part[:part.index("</table>")]
    heads = re.findall(r"<th>(.*?)</th>", part)
    return [dict(zip(heads, re.findall(r"<td>(.*?)</td>", row))) for row in re.findall(r"<tr>(.*?)</tr>", part)[1:]]


def test_labels_in_chinese(analyses):
    report = build(FRAMEWORK, uncertainty=analyses["runs"]["uncertainty"], bootstrap=analyses["runs"]["bootstrap"],
                   labels="zh")
    assert [t for _, t, _ in report.sections] == ["概览", "排名", "指标", "稳健性", "抽样", "单元概况"]
    assert "<p>自助法排名区间（units 重抽样，256 次重复）。</p>" in report.sections[4][2]
    assert report.title == "中国城市创新与经济实力指数 2023" and report.html().startswith(
        '<!DOCTYPE html>\n<html lang="zh">')
    profile = charts.to_spec(report.charts["profile"])
    labels = [r["label"] for r in next(iter(profile["datasets"].values()))]
    assert labels[:2] == ["创新投入", "创新产出"] and profile["title"]["text"].startswith("单元概况")
    assert report.data["table"]["labels"]["Inputs"] == "创新投入" and report.data["text"]["Strongest"] == "最强"
    english = build(FRAMEWORK, uncertainty=analyses["runs"]["uncertainty"])
    assert english.data["table"]["labels"]["Inputs"] == "Innovation inputs" and english.sections[0][1] == "Overview"
    with pytest.raises(engine.DataError, match="labels must be one of en, zh, not 'fr'"):
        build(FRAMEWORK, uncertainty=analyses["runs"]["uncertainty"], labels="fr")


def test_cli_report_in_chinese_with_an_audit_folder(analyses, tmp_path, capsys):
    audited = engine.audit(FRAMEWORK, sections=["data", "structure"])
    folder = audited.write(tmp_path / "audit")
    out = tmp_path / "zh.html"
    assert main(["report", "-f", FRAMEWORK, "--uncertainty", str(analyses["folders"]["uncertainty"]), "--audit",
                 str(folder), "--labels", "zh", "-o", str(out)]) == 0
    assert "sections: 概览, 排名, 指标, 稳健性, 审计, 单元概况" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    assert audited.verdict().splitlines()[0] in text.replace("&#x27;", "'")
    assert main(["report", "-f", "asem", "--audit", str(folder), "-o", str(tmp_path / "asem.html")]) == 2
    assert not (tmp_path / "asem.html").exists()


def test_audit_section_lists_every_flag_and_folds_the_tables(tmp_path, asem_result):
    audited = engine.audit("asem", sections=["data", "structure"])
    body = dict((sid, b) for sid, _, b in build(asem_result, audit=audited, replicates=1024).sections)["audit"]
    flags = _html_table(body, '<table class="plain wrap">')
    assert len(flags) == audited.flags.height and [f["level"] for f in flags] == sorted(
        audited.flags["level"], key=lambda level: level != "warning")  # warnings first
    counts = _html_table(body, "<table")
    assert sum(int(c["warnings"]) + int(c["notes"]) for c in counts) == audited.flags.height
    for name, table in audited.tables.items():
        assert f"{name} ({table.height} rows)" in body
    with pytest.raises(engine.DataError, match=r"no manifest\.json in the audit folder"):
        build(asem_result, audit=str(tmp_path), replicates=1024)
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(engine.DataError, match=r"has no flags\.parquet or \.csv"):
        build(asem_result, audit=str(tmp_path), replicates=1024)


def test_least_stable_units_print_ranks_as_whole_numbers(demo_report):
    body = dict((sid, b) for sid, _, b in demo_report[0].sections)["robustness"]
    rows = _html_table(body, "Least stable units")
    assert len(rows) == 10
    for row in rows:  # was 87.00: every rank whole, a median between two ranks with one decimal
        for column in ("rank", "median rank", "rank 5 %", "rank 95 %"):
            assert re.fullmatch(r"\d+(\.[1-9])?", row[column]), (column, row[column])


def test_top_probabilities_and_tier_stability_charts(analyses):
    mc = analyses["runs"]["uncertainty"]
    values = next(iter(charts.to_spec(charts.top_probabilities(mc))["datasets"].values()))
    ever = mc.units.filter(pl.col("p_top10") > 0)
    assert len(values) == 3 * ever.height  # top 1, 3 and 10 of every unit ever in the top 10
    expected = dict(zip(ever["unit"].cast(pl.String), ever["p_top3"]))
    assert {v["unit"]: v["p"] for v in values if v["k"] == "top 3"} == expected
    cells = next(iter(charts.to_spec(charts.tier_stability(mc))["datasets"].values()))
    per_tier = mc.units.group_by("nominal_tier").len()
    assert {t: sum(c["units"] for c in cells if c["tier"] == t) for t in per_tier["nominal_tier"]} == dict(
        per_tier.iter_rows())
    stable = mc.units.filter(pl.col("p_same_tier") >= 0.9).height  # the last class: 90-100 %
    assert sum(c["units"] for c in cells if c["lo"] == pytest.approx(0.9)) == stable


@pytest.fixture(scope="module")
def combined_bootstrap():
    """A record bootstrap combined with weight noise: confidence sets and variance shares."""
    import yaml

    from engine.resources import shipped_specs

    spec = yaml.safe_load(shipped_specs()["regional-ai-2023.bootstrap"].read_text(encoding="utf-8"))
    return engine.bootstrap("regional-ai-2023", records="ai_firms_synthetic", mode="records", replicates=512, seed=7,
                            spec=spec | {"perturb": {"weights": [{"depth": 1, "noise": 0.25}]}})


@pytest.fixture(scope="module")
def records_bootstrap():
    from engine.resources import shipped_specs

    return engine.bootstrap("regional-ai-2023", records="ai_firms_synthetic", mode="records", replicates=512, seed=7,
                            spec=str(shipped_specs()["regional-ai-2023.bootstrap"]))


def test_sampling_shows_confidence_sets_and_variance_shares(records_bootstrap, combined_bootstrap):
    report = build("regional-ai-2023", bootstrap=records_bootstrap)
    assert {"bootstrap", "confidence_sets"} <= set(report.charts) and "variance_shares" not in report.charts
    values = next(iter(charts.to_spec(report.charts["confidence_sets"])["datasets"].values()))
    units = records_bootstrap.units.filter(pl.col("cs_ci_lower").is_not_null())
    assert len(values) == units.height
    assert {v["unit"]: (v["cs_ci_lower"], v["cs_ci_upper"]) for v in values} == dict(
        zip(units["unit"], zip(units["cs_ci_lower"], units["cs_ci_upper"])))
    shares = charts.to_spec(build("regional-ai-2023", bootstrap=combined_bootstrap).charts["variance_shares"])
    got = {v["source"]: v["share"] for v in next(iter(shares["datasets"].values()))}
    overall = combined_bootstrap.manifest["variance_shares"]["regional_ai"]
    assert got["sampling (first order)"] == pytest.approx(overall["share_sampling"])
    assert got["interaction"] == pytest.approx(overall["share_interaction"])
    with pytest.raises(engine.DataError, match="no variance shares"):
        charts.variance_shares(records_bootstrap)


def test_confidence_sets_need_a_run_that_computed_them(analyses):
    with pytest.raises(engine.DataError, match="no rank confidence sets"):
        charts.confidence_sets(analyses["runs"]["bootstrap"])  # mode units


def test_unit_profile_and_peers_of_one_unit(asem_result):
    frame = charts.unit_frame(asem_result)
    third = frame["unit"][2]
    rows = next(iter(charts.to_spec(charts.unit_peers(asem_result, third))["datasets"].values()))
    dims = [c for c in asem_result.framework.root.children]
    units = [r["who"] for r in rows if r["dim_order"] == 0]
    assert units == [f"{r}. {n}" for r, n in frame.select("rank", "name").head(5).iter_rows()] + [
        "median of all units"]
    assert [r["role"] for r in rows if r["dim_order"] == 0] == ["peer", "peer", "unit", "peer", "peer", "median"]
    mine = {r["dimension"]: r["score"] for r in rows if r["role"] == "unit"}
    assert mine == {charts.node_label(asem_result.framework, d): round(frame[d][2], 1) for d in dims}
    profile = charts.profile_rows(asem_result, third)
    assert profile["rank"].to_list() == [asem_result.table.filter(pl.col("uCode") == third)[f"{n}_rank"][0]
                                         for n in profile["node"]]
    with pytest.raises(engine.DataError, match="no unit 'XXX' in the scored data"):
        charts.profile_rows(asem_result, "XXX")


def test_default_monte_carlo_skips_itself_when_its_memory_does_not_fit(asem_result):
    from engine.analysis.memory import estimate_bytes, local_lanes
    from engine.report import default_study_fits

    need = estimate_bytes("uncertainty", 30_000, 1, local_lanes("threads"))
    assert default_study_fits(30_000, need) == (True, need, need)
    assert default_study_fits(30_000, need - 1)[0] is False
    report = build(asem_result, memory=1)
    assert "robustness" not in [sid for sid, _, _ in report.sections]
    assert "No Monte Carlo study: the default study of 51 units would need about" in report.sections[0][2]


def test_edition_slopes_of_many_units_show_the_best_and_say_so(asem_result):
    earlier = engine.load_data("asem", framework=asem_result.framework).table.with_columns(pl.col("Flights") * 0.5)
    spec = charts.to_spec(charts.edition_slopes(engine.score("asem", earlier), asem_result, max_units=10))
    values = max(spec["datasets"].values(), key=len)
    assert sorted(v["rank"] for v in values if v["edition"] == "this") == list(range(1, 11))
    assert spec["title"]["subtitle"] == "the best 10 of 51 units in both"


def test_sensitivity_shows_a_unit_whose_rank_moves_until_one_is_selected(demo_report, analyses):
    sens = analyses["runs"]["sensitivity"]
    spec = charts.to_spec(demo_report[0].charts["sobol_unit"])
    picked = next(p["value"] for p in spec["params"] if p["name"] == "picked")
    rows = sens.unit_rank.filter(pl.col("unit").cast(pl.String) == picked)
    assert rows["first"].null_count() < rows.height  # bars to show (the best unit, 杭州市, never moves here)
    body = dict((sid, b) for sid, _, b in demo_report[0].sections)["sensitivity"]
    name = charts.unit_frame(engine.score(FRAMEWORK)).filter(pl.col("unit") == picked)
    assert f"Until a unit is selected: {name['name'][0]} (the best-ranked unit whose rank moves)" in body


def test_robustness_summary_names_the_rank_shift_only_when_the_run_has_it(analyses, asem_result):
    mc = analyses["runs"]["uncertainty"]
    body = dict((sid, b) for sid, _, b in build(FRAMEWORK, uncertainty=mc).sections)["robustness"]
    shift = mc.manifest["rank_shift"]["Index"]
    assert f"<p>1,024 replicates, seed 7; mean rank shift R_S {shift['mean']:.2f} (5–95 %" in body
    from engine.report.build import Loaded

    bare = Loaded("uncertainty", {"kind": "uncertainty", "replicates": 1000, "seed": 1}, units=mc.units)
    body = dict((sid, b) for sid, _, b in build(FRAMEWORK, uncertainty=bare).sections)["robustness"]
    assert "<p>1,000 replicates, seed 1.</p>" in body and "nan" not in body  # was "R_S nan (5–95 %: nan–nan)"


def test_a_large_n_monte_carlo_run_gives_the_robustness_section():
    run = engine.uncertainty("asem", replicates=2000, seed=1, large_n_above=0, rank_bins=8)  # binned R_S table
    report = build("asem", uncertainty=run)
    assert {"intervals", "top_probabilities", "rank_shift"} <= set(report.charts)
    values = next(iter(charts.to_spec(report.charts["rank_shift"])["datasets"].values()))
    assert sum(v["probability"] for v in values) == pytest.approx(1.0)
    table = report.data["table"]
    assert table["columns"][-4:] == ["q05_rank", "q95_rank", "p_top10", "p_same_tier"]
