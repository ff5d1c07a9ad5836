"""Headless Chromium (Debian's, driven by Playwright; no browser download) opens the evaluation
report from disk: the charts render, the tables are filled, nothing is fetched, nothing runs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from newsrag.evaluation.report import write_report
from tests.evaluation.factories import (
    CURRENT,
    OLDER,
    PREVIOUS,
    T0,
    WORST_ORDER,
    agg,
    make_run,
    scenario,
)

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reports")
    older, current, baseline = scenario()
    for run in older:
        write_report(run, None, out)
    return write_report(current, None, out, compare_run=baseline)


@pytest.fixture
def page() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed: run scripts/setup as root, or apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        pg.requests = []  # type: ignore[attr-defined]
        pg.problems = []  # type: ignore[attr-defined]
        pg.on("request", lambda r: pg.requests.append(r.url))  # type: ignore[attr-defined]
        pg.on("console", lambda m: m.type in ("error", "warning") and pg.problems.append(m.text))  # type: ignore[attr-defined]
        pg.on("pageerror", lambda e: pg.problems.append(str(e)))  # type: ignore[attr-defined]
        pg.on("dialog", lambda d: (pg.problems.append(d.message), d.dismiss()))  # type: ignore[attr-defined]
        yield pg
        browser.close()


def test_report_renders_charts_and_tables(report: Path, page: Any) -> None:
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    assert page.title() == "Evaluation 2026-03-04-a · newsrag"

    charts = page.locator("svg.chart")
    assert charts.count() >= 7  # six trends and the comparison's forest plot
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 40, (i, box)
    assert page.locator("#trends svg.chart title").first.text_content().startswith("Hit@k over the last 3")
    # the chart text is real text (svg.fonttype none), and the lines were drawn
    assert page.locator("#trends svg.chart text").count() > 20
    assert page.locator("#trends svg.chart path").count() > 20

    assert page.locator("#metrics article.card").count() == 12
    rows = page.locator("#worst table.worst tbody tr")
    assert rows.count() == 10
    assert [rows.nth(i).get_attribute("data-case") for i in range(rows.count())] == WORST_ORDER
    assert page.locator("#worst tr[data-case='q-error'] .reason").inner_text() == "judge timeout after 30 s"
    assert page.locator("#breakdown table.heat tbody tr").count() == 6
    assert page.locator("#comparison table.changed tbody tr").count() == 7

    # untrusted text is shown as text: nothing ran, nothing was injected
    assert "<script>alert(1)</script> Who won the vote?" in page.locator("#worst tr[data-case='q-xss'] .qtext").inner_text()
    assert page.locator("script, img, iframe, link[rel=stylesheet]").count() == 0
    assert page.problems == []  # type: ignore[attr-defined]
    # a self-contained page: the only request is the file itself
    assert page.requests == [report.as_uri()]  # type: ignore[attr-defined]

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "eval-report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 100_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_index_links_to_the_reports(report: Path, page: Any) -> None:
    page.goto((report.parent.parent / "index.html").as_uri())
    runs = page.locator("table.runs tbody tr")
    assert runs.count() == 3
    assert runs.first.get_attribute("data-run") == "2026-03-04-a"
    page.locator("a.run-id").first.click()
    page.wait_for_load_state("load")
    assert page.url == report.as_uri()
    assert page.locator("svg.chart").count() >= 7
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto((report.parent.parent / "index.html").as_uri())
    page.screenshot(path=str(ARTIFACTS / "eval-index.png"), full_page=True)
    assert page.problems == []  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def wide_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs 10 s apart, the newest at hit@k 1.000, its per-tag table with every metric (a dozen
    columns, as a run with a judge has)."""
    out = tmp_path_factory.mktemp("wide")
    for i, means in enumerate((OLDER, PREVIOUS)):
        write_report(make_run(f"r{i}", T0 + timedelta(seconds=10 * i), means), None, out)
    tags = {tag: {m: agg(v * share, metric=m) for m, v in CURRENT.items()}
            for tag, share in (("local", 1.0), ("tech", 0.9), ("transit", 0.8), ("unanswerable", 0.7))}
    run = make_run("r2", T0 + timedelta(seconds=20), CURRENT, per_tag=tags)
    perfect = agg(1.0, 0.0, metric="hit@k")  # every question hit: the bootstrap interval is [1, 1]
    return write_report(run.model_copy(update={"aggregates": {**run.aggregates, "hit@k": perfect}}), None, out)


WRAPPERS = """() => [...document.querySelectorAll('table')].map(t => {
    const w = t.closest('.table-scroll');
    return {table: t.className, wrapped: !!w, width: w && w.scrollWidth, room: w && w.clientWidth,
            overflow: w && getComputedStyle(w).overflowX};
})"""


def test_the_per_tag_table_fits_1280_px_and_scrolls_in_place_when_narrower(wide_report: Path, page: Any) -> None:
    page.goto(wide_report.as_uri())
    tables = page.evaluate(WRAPPERS)
    per_tag = tables[0]
    assert per_tag["table"] == "heat" and per_tag["wrapped"]
    assert per_tag["width"] <= per_tag["room"], per_tag  # its last column was cut off at 1280 px
    assert all(t["wrapped"] and t["overflow"] == "auto" for t in tables), tables
    assert page.evaluate("() => document.scrollingElement.scrollWidth <= innerWidth")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "eval-report-wide.png"), full_page=True)

    page.set_viewport_size({"width": 900, "height": 900})  # too narrow to fit: the panel scrolls, not the page
    per_tag = page.evaluate(WRAPPERS)[0]
    assert per_tag["width"] > per_tag["room"] and per_tag["overflow"] == "auto", per_tag
    assert page.evaluate("() => document.scrollingElement.scrollWidth <= innerWidth")
    # scrolled to its last column, the table still shows which tag each row is, and its title
    scrolled = page.evaluate("""() => {
        const w = document.querySelector('table.heat').closest('.table-scroll');
        w.scrollLeft = w.scrollWidth;
        const left = w.getBoundingClientRect().left, tag = w.querySelector('tbody th').getBoundingClientRect();
        return {shift: w.scrollLeft, tag_left: tag.left - left,
                title: document.getElementById(w.querySelector('table').getAttribute('aria-labelledby')).textContent};
    }""")
    assert scrolled["shift"] > 0 and abs(scrolled["tag_left"]) <= 1, scrolled
    assert scrolled["title"] == "Metrics per tag"
    assert page.problems == []  # type: ignore[attr-defined]


CHART_TEXTS = """() => [...document.querySelectorAll('svg.chart')].flatMap(svg => {
    const view = svg.viewBox.baseVal;
    return [...svg.querySelectorAll('text')].map(t => {
        const b = t.getBBox();
        return {chart: svg.querySelector('title').textContent, text: t.textContent,
                inside: b.x >= -0.5 && b.y >= -0.5 && b.x + b.width <= view.width + 0.5 && b.y + b.height <= view.height + 0.5};
    });
})"""


def test_chart_labels_lie_inside_their_charts_in_the_browser_font(wide_report: Path, page: Any) -> None:
    """The SVG's text is drawn in the page's font, not the one matplotlib measured with."""
    page.goto(wide_report.as_uri())
    texts = page.evaluate(CHART_TEXTS)
    assert len(texts) > 30
    assert [t for t in texts if not t["inside"]] == []  # the 1.000 above the last point was cut off
    hit = [t["text"] for t in texts if t["chart"].startswith("Hit@k")]
    assert "1.000" in hit and {"06:00:00", "06:00:10", "06:00:20"} <= set(hit), hit
