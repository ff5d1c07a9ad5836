"""Builds fixture feeds and article texts for pipeline tests (deterministic, offline)."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape

WORDS = ["council", "harbor", "budget", "river", "transit", "school", "storm", "senator", "vaccine", "market", "bridge", "station", "museum", "farmer", "harvest", "satellite", "reactor", "court", "tariff", "airline", "factory", "union", "strike", "museum", "library", "clinic", "ferry", "highway", "tunnel", "election", "mayor", "minister", "festival", "drought", "flood", "rainfall", "investor", "startup", "battery", "charger", "turbine", "pipeline", "stadium", "league", "coach", "referee", "archive"]


def paragraphs(seed: int, n: int = 4, sentences: int = 6) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        sents = []
        for _ in range(sentences):
            words = [rng.choice(WORDS) for _ in range(rng.randint(9, 16))]
            sents.append(" ".join(words).capitalize() + f" on day {rng.randint(1, 28)}.")
        out.append(" ".join(sents))
    return out


@dataclass(frozen=True)
class Item:
    slug: str
    title: str
    paras: tuple[str, ...]
    published: datetime | None = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    link: str | None = None  # default: <base>/<slug>.html

    def with_paras(self, paras: list[str]) -> Item:
        return replace(self, paras=tuple(paras))

    @property
    def text(self) -> str:
        return "\n\n".join(self.paras)


def item(slug: str, seed: int, **kw: object) -> Item:
    return Item(slug=slug, title=f"{slug.replace('-', ' ').title()} report", paras=tuple(paragraphs(seed)), **kw)  # type: ignore[arg-type]


def rss(base: str, items: list[Item], title: str = "Fixture News") -> bytes:
    entries = []
    for it in items:
        link = it.link if it.link is not None else f"{base}/{it.slug}.html"
        date = f"<pubDate>{format_datetime(it.published)}</pubDate>" if it.published else ""
        body = "".join(f"<p>{escape(p)}</p>" for p in it.paras)
        link_el = f"<link>{escape(link)}</link>" if link else ""
        entries.append(f"<item><title>{escape(it.title)}</title>{link_el}{date}"
                       f"<description>{escape(it.paras[0][:120])}</description>"
                       f"<content:encoded><![CDATA[{body}]]></content:encoded></item>")
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
            f'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>{title}</title>'
            f"<link>{base}/</link><description>fixture</description>{''.join(entries)}</channel></rss>").encode()
