"""The trend chart as drawn (matplotlib's Agg renderer measures what the SVG will hold): a time
axis that names its unit at any spacing of runs, and every label inside the figure."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from itertools import combinations, pairwise
from typing import Any

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from newsrag.evaluation.charts import Point, trend_figure
from tests.evaluation.factories import T0

pytestmark = pytest.mark.unit

MONTH = re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b")
BARE_NUMBER = re.compile(r"\d{1,2}")  # "25": seconds, days or minutes, nobody can tell


def runs(step: timedelta, values: list[float], *, start: datetime = T0, band: float | None = 0.05) -> list[Point]:
    return [(start + i * step, v, None if band is None else max(v - band, 0.0),
             None if band is None else min(v + band, 1.0)) for i, v in enumerate(values)]


def drawn(fig: Figure) -> tuple[Any, list[Text], list[Text]]:
    """Draw ``fig``; return its renderer, the x tick labels drawn, and every text drawn (tick
    labels outside the view keep their text but are never drawn, so they are left out)."""
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    ax, in_ticks = fig.axes[0], set()
    shown: dict[str, list[Text]] = {}
    for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
        lo, hi = sorted(axis.get_view_interval())
        ticks = list(zip(axis.get_major_ticks(), axis.get_majorticklocs(), strict=False))
        shown[name] = [t.label1 for t, loc in ticks if lo - 1e-9 <= loc <= hi + 1e-9 and t.label1.get_text()]
        in_ticks |= {id(label) for t in axis.get_major_ticks() for label in (t.label1, t.label2)}
    others = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text() and id(t) not in in_ticks]
    return fig.canvas.get_renderer(), shown["x"], shown["x"] + shown["y"] + others


def inside(inner: Any, outer: Any) -> bool:
    return (inner.x0 >= outer.x0 - 0.5 and inner.x1 <= outer.x1 + 0.5
            and inner.y0 >= outer.y0 - 0.5 and inner.y1 <= outer.y1 + 0.5)


SPACINGS = {"10 s": timedelta(seconds=10), "1 min": timedelta(minutes=1), "1 h": timedelta(hours=1),
            "1 day": timedelta(days=1), "30 days": timedelta(days=30), "1 year": timedelta(days=365)}


@pytest.mark.parametrize(("step", "pattern", "offset"), [
    (timedelta(seconds=10), r"06:00:[0-5]\d", "2026-03-02 UTC"),  # today's axis read "06:00 10 20"
    (timedelta(hours=1), r"0[6-8]:00", "2026-03-02 UTC"),
    (timedelta(days=30), r"(Mar|Apr|May)", "2026"),
], ids=["10 s", "1 h", "30 days"])
def test_time_ticks_carry_their_unit(step: timedelta, pattern: str, offset: str) -> None:
    fig = trend_figure(runs(step, [0.9, 0.95, 1.0]), "1.000", unit=True)
    _, x_labels, _ = drawn(fig)
    texts = [t.get_text() for t in x_labels]
    assert len(texts) >= 2, texts
    assert all(re.fullmatch(pattern, t) for t in texts), texts
    assert fig.axes[0].xaxis.get_offset_text().get_text() == offset  # the date the clock times are on


@pytest.mark.parametrize("step", SPACINGS.values(), ids=SPACINGS.keys())
def test_no_tick_is_a_bare_number_and_none_overlap(step: timedelta) -> None:
    for n in (2, 3, 7, 30):
        fig = trend_figure(runs(step, [0.5 + 0.01 * i for i in range(n)]), "0.500", unit=True)
        renderer, x_labels, _ = drawn(fig)
        texts = [t.get_text() for t in x_labels]
        assert len(texts) >= 2, (n, texts)
        assert not any(BARE_NUMBER.fullmatch(t) for t in texts), (n, texts)
        assert all(":" in t or MONTH.search(t) or re.fullmatch(r"\d{4}", t) for t in texts), (n, texts)
        boxes = sorted((t.get_window_extent(renderer) for t in x_labels), key=lambda b: b.x0)
        assert all(a.x1 < b.x0 for a, b in pairwise(boxes)), (n, texts)


def test_a_span_with_one_round_date_is_labelled_at_its_first_and_last_run() -> None:
    """Mar 2 06:00 to Mar 25 09:33: of the round dates (the 1st and 15th) only Mar 15 is in view,
    and a lone tick has no level to be labelled at (it read "00:00:00"); the first and last run,
    rounded inwards to days, are ticked instead."""
    fig = trend_figure(runs(timedelta(seconds=1_000_000), [0.4, 0.5, 0.6]), "0.600", unit=True)
    _, x_labels, _ = drawn(fig)
    assert [t.get_text() for t in x_labels] == ["Mar 03", "Mar 25"]
    assert fig.axes[0].xaxis.get_offset_text().get_text() == "2026"


CASES = {
    "at the top, 10 s": (runs(timedelta(seconds=10), [0.9, 0.95, 1.0]), "1.000", True),
    "at the top, 1 h": (runs(timedelta(hours=1), [1.0, 1.0, 1.0]), "1.000", True),
    "at the top, 30 days": (runs(timedelta(days=30), [0.2, 0.6, 1.0], band=None), "1.000", True),
    "a fall to zero": (runs(timedelta(days=1), [1.0, 0.0]), "0.000", True),
    "latency": (runs(timedelta(minutes=7), [900.0, 1500.0, 12345.0], band=None), "12,345", False),
}


@pytest.mark.parametrize(("pts", "last_text", "unit"), CASES.values(), ids=CASES.keys())
def test_every_label_lies_inside_the_figure_and_the_last_value_inside_the_plot(
        pts: list[Point], last_text: str, unit: bool) -> None:
    fig = trend_figure(pts, last_text, unit=unit)
    renderer, _, texts = drawn(fig)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == [last_text]
    outside = [(t.get_text(), t.get_window_extent(renderer).bounds) for t in texts
               if not inside(t.get_window_extent(renderer), fig.bbox)]
    assert outside == [], fig.bbox.bounds
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    assert [(a, b) for (a, ea), (b, eb) in combinations(boxes, 2) if ea.overlaps(eb)] == []
    label = ax.texts[0].get_window_extent(renderer)  # 1.000 was drawn above the top edge, cut off
    assert inside(label, ax.bbox), (label.bounds, ax.bbox.bounds)


def test_a_zero_to_one_metric_has_no_tick_above_one() -> None:
    """The room for the label may pass 1.0; a tick there would suggest a score above 1."""
    fig = trend_figure(runs(timedelta(hours=1), [0.98, 0.99, 1.0]), "1.000", unit=True)
    drawn(fig)
    y_ticks = [float(t.get_text()) for t in fig.axes[0].get_yticklabels() if t.get_text()]
    assert y_ticks and max(y_ticks) <= 1.0
    assert fig.axes[0].get_ylim()[1] > 1.0  # the headroom
