"""The report's charts as inline, accessible SVG (matplotlib's object API: no pyplot, no GUI state).

They know nothing about metrics: the report passes titles, labels and value texts.
"""

from __future__ import annotations

import io
import itertools
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import matplotlib
from markupsafe import Markup, escape
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import (
    DAILY,
    HOURLY,
    MINUTELY,
    MONTHLY,
    SECONDLY,
    YEARLY,
    AutoDateLocator,
    ConciseDateFormatter,
    date2num,
    num2date,
)
from matplotlib.figure import Figure  # no pyplot: no global backend or GUI state (renders like Agg)
from matplotlib.ticker import FixedLocator, FuncFormatter, Locator, MaxNLocator

C = {"ink": "#334155", "muted": "#94a3b8", "grid": "#e8edf3", "accent": "#2563eb",
     "band": "#dbe7fb", "good": "#15803d", "bad": "#c2410c", "flat": "#64748b"}
Point = tuple[datetime, float, float | None, float | None]  # when, mean, low, high
Bar = tuple[str, float, float, float, str]  # label, diff, low, high, colour key of C

# Date ticks at any spacing of runs, by level (years, months, days, hours, minutes, seconds): every
# label names its unit (a month, a clock time), never a bare "25"; the offset under the axis gives
# what the labels leave out (the year, or the day of clock times). Zero formats label a tick that
# starts the level above (January, the 1st, midnight, a whole hour or minute).
DATE_FORMATS = ["%Y", "%b", "%b %d", "%H:%M", "%H:%M", "%H:%M:%S"]
ZERO_FORMATS = ["%Y", "%b %Y", "%b %d", "%b %d", "%H:%M", "%H:%M:%S"]
OFFSET_FORMATS = ["", "%Y", "%Y", "%Y-%m-%d UTC", "%Y-%m-%d UTC", "%Y-%m-%d UTC"]
# At most 4 or 5 labels fit a chart; finer steps than matplotlib's (whose 1 -> 5 minutes leaves a
# four-minute span with one tick) keep at least two at every span.
MAX_TICKS = {YEARLY: 5, MONTHLY: 5, DAILY: 4, HOURLY: 5, MINUTELY: 5, SECONDLY: 4}
TICK_STEPS = {DAILY: [1, 2, 3, 5, 7, 14], HOURLY: [1, 2, 3, 4, 6, 12], MINUTELY: [1, 2, 5, 10, 15, 20, 30],
              SECONDLY: [1, 2, 5, 10, 15, 20, 30, 60]}
ROUND_UNITS = (1.0, 1 / 24, 1 / 1440, 1 / 86400)  # a day, hour, minute, second in date numbers (days)
TREND_SIZE = (3.3, 1.8)  # inches; the page scales the SVG to its column
FONT_PT, LABEL_RISE_PT, GAP_PT = 8.5, 6.0, 3.0
HEADROOM_PT = LABEL_RISE_PT + 1.4 * FONT_PT + 3.0  # the last point's label sits above it, inside the axes


def svg(fig: Figure, title: str, uid: str) -> Markup:
    """The figure as inline SVG: no prolog, no metadata, ids made unique, a <title>, fluid size."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "newsrag"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()[buf.getvalue().index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.DOTALL)
    text = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", text)
    text = re.sub(r'(\bid="|href="#|url\(#)', rf"\g<1>{uid}-", text)
    text = re.sub(r"font-family:[^;\"]*", "font-family: inherit", text)
    head, rest = text.split(">", 1)
    head = re.sub(r'\s(width|height)="[^"]*"', "", head)
    return Markup(f'{head} role="img" aria-labelledby="{uid}-title" class="chart">'
                  f'<title id="{uid}-title">{escape(title)}</title>{rest}')


def _axes(fig: Figure, grid: Literal["x", "y"] = "y") -> Any:
    ax = fig.add_subplot()
    ax.spines[["top", "right", "left"]].set_visible(False)
    ax.spines["bottom"].set_color(C["muted"])
    ax.tick_params(labelsize=FONT_PT, colors=C["ink"], length=0, pad=3)
    ax.grid(axis=grid, color=C["grid"], linewidth=0.8)
    ax.set_axisbelow(True)
    return ax


def trend_chart(pts: Sequence[Point], title: str, last_text: str, uid: str, *, unit: bool) -> Markup:
    """Means over time (with the interval band when every point has one), the last point
    highlighted and labelled ``last_text``; ``unit``: a 0..1 higher-is-better metric (no tick above 1)."""
    return svg(trend_figure(pts, last_text, unit=unit), title, uid)


def trend_figure(pts: Sequence[Point], last_text: str, *, unit: bool) -> Figure:
    """The trend chart as a figure, laid out so every label lies inside it: margins measured from
    the axes' own tick labels (half the cost of constrained layout), the last label inside the axes."""
    fig = Figure(figsize=TREND_SIZE)
    ax = _axes(fig)
    _plot_trend(ax, pts, last_text)
    _date_axis(ax, [p[0] for p in pts])
    renderer = FigureCanvasAgg(fig).get_renderer()  # measures text; the SVG is drawn by savefig
    _fit_height(fig, ax, renderer)
    _value_axis(ax, pts, fig.bbox.height * ax.get_position().height * 72 / fig.dpi, unit=unit)
    _fit_width(fig, ax, renderer)
    return fig


def _plot_trend(ax: Any, pts: Sequence[Point], last_text: str) -> None:
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    lows, highs = [p[2] for p in pts if p[2] is not None], [p[3] for p in pts if p[3] is not None]
    if len(pts) > 1 and len(lows) == len(highs) == len(pts):
        ax.fill_between(xs, lows, highs, color=C["band"], lw=0)
    ax.plot(xs, ys, color=C["muted"], lw=1.5, marker="o", ms=3, mfc="white", mew=1.2)
    ax.plot(xs[-1:], ys[-1:], "o", ms=7, color=C["accent"], mec="white", mew=1.5, zorder=5)
    # up and to the left of the point: the point is the rightmost, a centred label would overhang
    ax.annotate(last_text, (xs[-1], ys[-1]), xytext=(4, LABEL_RISE_PT), textcoords="offset points",
                ha="right", va="bottom", fontsize=8, color=C["accent"], fontweight="bold", zorder=6,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})


def _date_axis(ax: Any, when: Sequence[datetime]) -> None:
    if len(when) < 2:
        ax.set_xticks([])  # a single run has no timeline
        return
    lo, hi = ax.get_xlim()
    locator = _date_locator(lo, hi, ends=(when[0], when[-1]))
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(
        locator, tz=UTC, formats=DATE_FORMATS, zero_formats=ZERO_FORMATS, offset_formats=OFFSET_FORMATS))
    ax.xaxis.get_offset_text().set(fontsize=FONT_PT - 1, color=C["ink"])


def _date_locator(lo: float, hi: float, ends: tuple[datetime, datetime]) -> Locator:
    """Ticks on round dates (whole hours, the 1st and 15th) when at least two evenly spaced ones
    fall in the view (round days can put the 31st next to the 1st), else at the first and last run
    rounded inwards: a lone tick would leave its label without a unit."""
    locator = AutoDateLocator(tz=UTC, minticks=2, maxticks=MAX_TICKS)
    locator.intervald.update(TICK_STEPS)
    ticks = [t for t in locator.tick_values(num2date(lo), num2date(hi)) if lo <= t <= hi]
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    return locator if gaps and min(gaps) >= 0.6 * max(gaps) else FixedLocator(_rounded_inwards(*ends))


def _rounded_inwards(first: datetime, last: datetime) -> list[float]:
    """Both times (as date numbers) rounded towards each other to the largest unit, a day down to
    a second, that keeps them apart: the formatter then labels them in that unit."""
    a, b = date2num(first), date2num(last)
    unit = next((u for u in ROUND_UNITS if b - a >= 2 * u), ROUND_UNITS[-1])
    return [math.ceil(a / unit) * unit, math.floor(b / unit) * unit]


def _value_axis(ax: Any, pts: Sequence[Point], axes_pt: float, *, unit: bool) -> None:
    """Y-limits with room for the last label above the highest value; for a 0..1 metric the room
    may pass 1, but no tick does."""
    values = [v for p in pts for v in p[1:] if v is not None]
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.15, abs(hi) * 0.04, 0.01)
    bottom, share = lo - pad, min(HEADROOM_PT / max(axes_pt, 1.0), 0.6)  # the headroom's share of the height
    top = hi + (hi - bottom) * share / (1 - share)
    ax.set_ylim(bottom, top)
    ticks = MaxNLocator(3, steps=[1, 2, 2.5, 5, 10]).tick_values(bottom, top)
    floor = bottom + 0.06 * (top - bottom)  # a tick on the bottom edge would crowd the first date
    ax.set_yticks([t for t in ticks if floor <= t <= (min(top, 1.0) if unit and hi <= 1 else top)])
    if not unit:  # thousands grouped as in the report's figures: 1,500 (ms)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.12g}"))


def _fit_height(fig: Figure, ax: Any, renderer: Any) -> None:
    """The bottom margin holds the date ticks and their offset; the top half a tick label."""
    below = ax.get_window_extent(renderer).y0 - ax.xaxis.get_tightbbox(renderer).y0
    dots = fig.dpi / 72
    fig.subplots_adjust(bottom=(below + GAP_PT * dots) / fig.bbox.height,
                        top=1 - (0.6 * FONT_PT + GAP_PT) * dots / fig.bbox.height)


def _fit_width(fig: Figure, ax: Any, renderer: Any) -> None:
    """The left margin holds the value ticks; the right whatever the date labels overhang."""
    inner, xs, ys = ax.get_window_extent(renderer), ax.xaxis.get_tightbbox(renderer), ax.yaxis.get_tightbbox(renderer)
    gap, width = GAP_PT * fig.dpi / 72, fig.bbox.width
    left = inner.x0 - min(ys.x0 if ys else inner.x0, xs.x0 if xs else inner.x0)
    right = max((xs.x1 if xs else 0) - inner.x1, 0)
    fig.subplots_adjust(left=(left + gap) / width, right=1 - (right + 2 * gap) / width)


def forest_chart(bars: Sequence[Bar], title: str, xlabel: str, uid: str) -> Markup | None:
    """One horizontal interval per bar (its difference as a dot), a line at zero; None without bars."""
    if not bars:
        return None
    fig = Figure(figsize=(9.5, 0.3 * len(bars) + 0.75), layout="constrained")
    ax = _axes(fig, grid="x")
    ax.axvline(0, color=C["ink"], lw=0.9)
    for i, (_, diff, low, high, cls) in enumerate(bars):
        ax.plot([low, high], [i, i], color=C[cls], lw=2.2, solid_capstyle="round")
        ax.plot([diff], [i], "o", ms=6, color=C[cls], mec="white", mew=1.2)
    ax.set_yticks(range(len(bars)), [b[0] for b in bars])
    ax.set_ylim(len(bars) - 0.5, -0.6)
    ax.set_xlabel(xlabel, fontsize=8.5, color=C["ink"])
    return svg(fig, title, uid)
