"""The report's charts as inline, accessible SVG (matplotlib's object API: no pyplot, no GUI state).

They know nothing about metrics: the report passes titles, labels and value texts.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import matplotlib
from markupsafe import Markup, escape
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure  # no pyplot: no global backend or GUI state (renders like Agg)
from matplotlib.ticker import MaxNLocator

C = {"ink": "#334155", "muted": "#94a3b8", "grid": "#e8edf3", "accent": "#2563eb",
     "band": "#dbe7fb", "good": "#15803d", "bad": "#c2410c", "flat": "#64748b"}
Point = tuple[datetime, float, float | None, float | None]  # when, mean, low, high
Bar = tuple[str, float, float, float, str]  # label, diff, low, high, colour key of C


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
    ax.tick_params(labelsize=8.5, colors=C["ink"], length=0, pad=3)
    ax.grid(axis=grid, color=C["grid"], linewidth=0.8)
    ax.set_axisbelow(True)
    return ax


def trend_chart(pts: Sequence[Point], title: str, last_text: str, uid: str, *, unit: bool) -> Markup:
    """Means over time (with the interval band when every point has one), the last point
    highlighted and labelled ``last_text``; ``unit``: a 0..1 higher-is-better metric (capped at 1)."""
    fig = Figure(figsize=(3.3, 1.55))
    fig.subplots_adjust(left=0.15, right=0.96, top=0.9, bottom=0.16)  # fixed: constrained doubles the cost
    ax = _axes(fig)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    lows, highs = [p[2] for p in pts if p[2] is not None], [p[3] for p in pts if p[3] is not None]
    if len(pts) > 1 and len(lows) == len(highs) == len(pts):
        ax.fill_between(xs, lows, highs, color=C["band"], lw=0)
    ax.plot(xs, ys, color=C["muted"], lw=1.5, marker="o", ms=3, mfc="white", mew=1.2)
    ax.plot(xs[-1:], ys[-1:], "o", ms=7, color=C["accent"], mec="white", mew=1.5, zorder=5)
    ax.annotate(last_text, (xs[-1], ys[-1]), xytext=(0, 7),
                textcoords="offset points", ha="center", fontsize=8, color=C["accent"], fontweight="bold")
    lo, hi = min(ys + lows), max(ys + highs)
    pad = max((hi - lo) * 0.15, abs(hi) * 0.04, 0.01)
    ax.set_ylim(lo - pad, min(hi + pad * 3, 1.0) if 0 <= lo and hi <= 1 and unit else hi + pad * 3)
    ax.yaxis.set_major_locator(MaxNLocator(3))
    ax.set_xticks([])  # a single run has no timeline
    if len(pts) > 1:
        locator = AutoDateLocator(minticks=2, maxticks=4)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(
            locator, show_offset=False, formats=["%Y", "%b", "%b %d", "%H:%M", "%H:%M", "%S"],
            zero_formats=["", "%Y", "%b", "%b %d", "%H:%M", "%H:%M"]))
    return svg(fig, title, uid)


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
