"""The report as a reader sees it: trend axes that name their unit, the prompt of a generator
without a template, feedback icons that need no emoji font, wide tables that scroll in place."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import pytest

from newsrag.evaluation.feedback import FeedbackRecord
from newsrag.evaluation.models import EvalRun
from newsrag.evaluation.report import write_report
from tests.evaluation.factories import OLDER, PREVIOUS, T0, make_run, scenario

pytestmark = pytest.mark.unit

MONTH = re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b")
# emoji that only an emoji font draws (👍 👎 and the like); ✓ ✗ ★ ▲ come with DejaVu and Liberation
EMOJI = re.compile("[\U0001f000-\U0001faff\ufe0f]")


def text_of(fragment: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


def x_tick_labels(html: str) -> dict[str, list[str]]:
    """Each trend chart's x tick labels (matplotlib's SVG groups them as ``<uid>-xtick_<n>``)."""
    trends = html.split('<section id="trends"')[1].split("</section>")[0]
    labels: dict[str, list[str]] = {}
    for uid, body in re.findall(r'<g id="(t\d+)-xtick_\d+">(.*?)</text>', trends, re.DOTALL):
        labels.setdefault(uid, []).append(body.rsplit(">", 1)[-1].strip())
    return labels


def runs_apart(out: Path, step: timedelta) -> str:
    """Three runs ``step`` apart written to ``out``; the newest one's report."""
    for i, means in enumerate((OLDER, PREVIOUS)):
        write_report(make_run(f"r{i}", T0 + i * step, means), None, out)
    return write_report(make_run("r2", T0 + 2 * step, {**OLDER, "hit@k": 1.0}), None, out).read_text()


@pytest.mark.parametrize(("step", "unit"), [
    (timedelta(seconds=10), r"\d\d:\d\d:\d\d"), (timedelta(hours=1), r"\d\d:\d\d"), (timedelta(days=30), MONTH.pattern),
], ids=["10 s", "1 h", "30 days"])
def test_trend_time_axes_name_their_unit(tmp_path: Path, step: timedelta, unit: str) -> None:
    labels = x_tick_labels(runs_apart(tmp_path, step))
    assert len(labels) == 6  # one chart per metric the runs share
    for uid, texts in labels.items():
        assert len(texts) >= 2, (uid, texts)
        assert all(re.search(unit, t) for t in texts), (uid, texts)  # 10 s apart read "06:00 10 20"
        assert not any(re.fullmatch(r"\d{1,2}", t) for t in texts), (uid, texts)


def extractive(run: EvalRun) -> EvalRun:
    """As the runner records a generator that renders no template (retrieval/answer.py)."""
    return run.model_copy(update={"prompt_name": "extractive", "prompt_version": "n/a", "prompt_arm": None})


def test_a_generator_without_a_template_shows_no_version(tmp_path: Path) -> None:
    older, current, _ = scenario()
    write_report(older[0], None, tmp_path)
    html = write_report(extractive(current), None, tmp_path).read_text()
    header = text_of(re.search(r"<header.*?</header>", html, re.DOTALL).group(0))
    assert "Prompt no template (extractive)" in header
    assert "vn/a" not in text_of(html)
    index = (tmp_path / "index.html").read_text()
    rows = {m.group(1): text_of(m.group(2)) for m in re.finditer(r'<tr data-run="([^"]+)">(.*?)</tr>', index, re.DOTALL)}
    assert "no template (extractive)" in rows[current.run_id] and "vn/a" not in rows[current.run_id]
    assert "news-answer v3" in rows[older[0].run_id]  # a template keeps its version


def feedback(version: str, arm: str, rating: int, n: int) -> FeedbackRecord:
    return FeedbackRecord(trace_id=f"t{n}", rating=rating, comment=None, created_at="2026-03-04", question="q",
                          answer="a", prompt_name="news-answer", prompt_version=version, arm=arm, payload={})


def with_everything(out: Path) -> str:
    """The scenario's report with the comparison and the feedback section shown."""
    older, current, baseline = scenario()
    for run in older:
        write_report(run, None, out)
    records = [feedback("3", "B", 1, 1), feedback("3", "B", -1, 2), feedback("2", "A", 1, 3)]
    return write_report(current, None, out, compare_run=baseline, feedback=records).read_text()


def test_feedback_columns_use_inline_icons_not_emoji(tmp_path: Path) -> None:
    html = with_everything(tmp_path)
    head = html.split('<table class="arms">')[1].split("</thead>")[0]
    assert not EMOJI.search(html)  # a machine without an emoji font drew empty boxes
    icons = re.findall(r'<th scope="col" class="num">(<svg class="thumb"[^>]*>.*?</svg>)(\w+)</th>', head)
    assert [word for _, word in icons] == ["Up", "Down"]
    assert all('aria-hidden="true"' in svg for svg, _ in icons)  # the word is what a screen reader reads


class _Tables(HTMLParser):
    """For each <table>: whether an element of class table-scroll encloses it."""

    VOID: ClassVar[set[str]] = {"meta", "br", "hr", "img", "input", "link", "col", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []
        self.wrapped: list[bool] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.wrapped.append(any(self.stack))
        if tag not in self.VOID:
            self.stack.append("table-scroll" in (dict(attrs).get("class") or "").split())

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass  # <g/>, <path/>: nothing to enclose

    def handle_endtag(self, tag: str) -> None:
        self.stack.pop()


@pytest.mark.parametrize("page", ["report", "index"])
def test_every_table_scrolls_inside_its_own_wrapper(tmp_path: Path, page: str) -> None:
    """A table wider than the page scrolls in place rather than cutting off its last columns."""
    html = with_everything(tmp_path)
    html = html if page == "report" else (tmp_path / "index.html").read_text()
    tables = _Tables()
    tables.feed(html)
    assert len(tables.wrapped) >= (6 if page == "report" else 1)
    assert all(tables.wrapped), tables.wrapped  # the methods table was not wrapped
    assert re.search(r"\.table-scroll\s*\{[^}]*overflow-x:\s*auto", html)
