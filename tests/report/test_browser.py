"""The demo report in a real browser: headless Chromium (the OS package; `.ci/run` installs it) with
the network off.  No console errors, every chart drawn, sorting, search and the unit selector work,
and the page requests nothing but itself.  Screenshots of every section go to
``$CITYRANK_SCREENSHOTS`` when set (to look at them)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .cdp import Browser, chromium

pytestmark = pytest.mark.skipif(chromium() is None, reason="no chromium on this machine (CI installs the "
                                "Debian package `chromium`; locally: apt-get install chromium)")


@pytest.fixture(scope="module")
def page(demo_report):
    browser = Browser(chromium())
    try:
        browser.open(demo_report[1].as_uri())
        assert browser.evaluate("window.reportReady", timeout=120) is True
        yield browser
    finally:
        browser.close()


def test_no_console_errors_and_no_network_request(page, demo_report):
    assert page.errors() == []
    assert page.requests() == [demo_report[1].as_uri()]


def test_every_chart_is_drawn(page, demo_report):
    drawn = page.evaluate("""Array.from(document.querySelectorAll('[data-chart]')).map(el => {
        const svg = el.querySelector('svg'), box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
        return {id: el.dataset.chart, width: box.width, height: box.height,
                marks: svg ? svg.querySelectorAll('path, rect, line, text').length : 0};
    })""")
    assert {d["id"] for d in drawn} == set(demo_report[0].charts)
    for chart in drawn:
        assert chart["width"] > 100 and chart["height"] > 100 and chart["marks"] > 20, chart
    # one row per unit in the rank-interval chart: 297 labels, readable (not squeezed)
    assert drawn[[d["id"] for d in drawn].index("intervals")]["height"] > 13 * 297


def test_table_sorts_and_searches(page):
    first = "document.querySelector('#ranking-table tbody tr td:nth-child(2)').textContent"
    rows = "document.querySelectorAll('#ranking-table tbody tr').length"
    assert page.evaluate(first) == "杭州市" and page.evaluate(rows) == 297
    page.evaluate("document.querySelector('#ranking-table th[data-i=\"0\"]').click()")  # rank: descending now
    last = page.evaluate(first)
    assert last != "杭州市"
    page.evaluate("document.querySelector('#ranking-table th[data-i=\"0\"]').click()")  # ascending again
    assert page.evaluate(first) == "杭州市"
    search = "{const s = document.getElementById('search'); s.value = '%s'; s.dispatchEvent(new Event('input'))}"
    page.evaluate(search % "深圳")
    assert page.evaluate(rows) == 1 and page.evaluate(first) == "深圳市"
    page.evaluate(search % "")
    assert page.evaluate(rows) == 297


def test_unit_selector_changes_the_profile(page):
    def profile_labels() -> str:
        return page.evaluate("Array.from(document.querySelectorAll('#chart-profile svg text'))"
                             ".map(t => t.textContent).join('|')")

    before = profile_labels()
    page.evaluate("{const s = document.getElementById('unit-select'); s.value = '530600'; "
                  "s.dispatchEvent(new Event('change'))}")
    page.evaluate("window.unitUpdated.then(() => true)")  # every chart re-run with the new unit
    assert page.evaluate("document.getElementById('unit-select').selectedOptions[0].textContent").endswith("昭通市")
    after = profile_labels()
    text = page.evaluate("document.getElementById('unit-summary').textContent")
    assert text.startswith("Strongest: ") and "Weakest: " in text and "Rank 297; median" in text
    assert after != before  # the ranks printed beside the bars are those of the chosen unit
    highlighted = page.evaluate("""Array.from(document.querySelectorAll('#chart-intervals svg :is(line, path)'))
        .filter(p => (p.getAttribute('stroke') || '') === '#e45756').length""")
    assert highlighted >= 1  # the unit is marked in the rank-interval chart too


def test_screenshots_of_every_section(page, demo_report, tmp_path):
    folder = Path(os.environ.get("CITYRANK_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    boxes = json.loads(page.evaluate("""JSON.stringify(Array.from(document.querySelectorAll('section')).map(s => {
        const b = s.getBoundingClientRect();
        return {id: s.id, x: b.left + window.scrollX, y: b.top + window.scrollY, width: b.width, height: b.height};
    }))"""))
    assert [b["id"] for b in boxes] == [sid for sid, _, _ in demo_report[0].sections]
    for box in boxes:
        clip = {k: box[k] for k in ("x", "y", "width")} | {"height": min(box["height"], 2400)}
        shot = page.screenshot(folder / f"{box['id']}.png", clip=clip)
        assert shot.stat().st_size > 5_000
