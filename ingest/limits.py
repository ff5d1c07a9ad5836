"""Field limits for collected articles, applied once for every source type (the pipeline calls
:func:`bound_articles` right after collection, and :func:`cap_chunks` right after chunking).

A hostile or broken source can send a 5,000,000-character title; stored whole, every search or
answer citing it would carry 5 MB. Title, author and text are cut (with a named warning); a URL or
key over its limit fails the item instead, because it is the article's identity and a cut one
would name another document. Lone surrogates never pass: they break UTF-8 encoding downstream.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.ingest.models import Article, ItemFailure

log = logging.getLogger(__name__)

_SURROGATES = re.compile(r"[\ud800-\udfff]")
_ELLIPSIS = "…"
_CUT_WINDOW = 0.1  # a cut looks back this fraction of the limit for a paragraph or word break


class FieldLimits(BaseSettings):
    """Longest title, author, URL (or key) and text an article may have, and its most chunks."""

    model_config = SettingsConfigDict(env_prefix="NEWSRAG_INGEST_", extra="ignore")

    max_title_chars: int = Field(500, ge=16)
    max_author_chars: int = Field(200, ge=16)
    max_url_chars: int = Field(2048, ge=64)  # browsers' and CDNs' common limit
    max_text_chars: int = Field(200_000, ge=1000)  # about 250 chunks of 200 tokens
    max_chunks_per_article: int = Field(200, ge=1)


@dataclass
class Bounded:
    """Articles within the limits, the items refused (identity over its limit) and the cut ones."""

    articles: list[Article] = field(default_factory=list)
    failures: list[ItemFailure] = field(default_factory=list)
    warnings: list[ItemFailure] = field(default_factory=list)


def bound_articles(articles: list[Article], limits: FieldLimits, source_id: str = "") -> Bounded:
    out = Bounded()
    for article in articles:
        label = item_label(article)
        refusal = _identity_problem(article, limits)
        if refusal:
            out.failures.append(ItemFailure(item=label, reason=refusal))
            continue
        article, cuts = _cut_fields(article, limits)
        for cut in cuts:
            log.warning("source %r, item %r: %s", source_id, label, cut)
            out.warnings.append(ItemFailure(item=label, reason=cut))
        out.articles.append(article)
    return out


def item_label(article: Article) -> str:
    """What names the article in a report: its URL or key (ItemFailure bounds the length)."""
    return article.url or article.key or article.doc_id


def _identity_problem(article: Article, limits: FieldLimits) -> str | None:
    for name, value in (("URL", article.url), ("key", article.key or "")):
        if len(value) > limits.max_url_chars:
            return (f"{name} is {len(value):,} characters, over the limit of {limits.max_url_chars:,}; "
                    f"an identity is never cut")
        if _SURROGATES.search(value):
            return f"{name} holds a lone surrogate (not valid Unicode)"
    return None


def _cut_fields(article: Article, limits: FieldLimits) -> tuple[Article, list[str]]:
    update: dict[str, Any] = {}
    cuts: list[str] = []
    fields = (("title", limits.max_title_chars), ("author", limits.max_author_chars),
              ("text", limits.max_text_chars))
    for name, limit in fields:
        value = getattr(article, name)
        if value is None:
            continue
        clean = _SURROGATES.sub("", value) if _SURROGATES.search(value) else value
        if len(clean) > limit:
            clean = cut_text(clean, limit, paragraphs=name == "text")
            cuts.append(f"{name} cut from {len(value):,} to {len(clean):,} characters")
        if clean is not value:
            update[name] = clean
    return (article.model_copy(update=update) if update else article), cuts


def cut_text(value: str, limit: int, *, paragraphs: bool = False) -> str:
    """``value`` in at most ``limit`` characters, ending with "…", cut at a paragraph break (text)
    or a space when there is one near the limit, else mid-word."""
    room = value[: limit - len(_ELLIPSIS)]
    floor = int(len(room) * (1 - _CUT_WINDOW))
    breaks = ("\n\n", " ") if paragraphs else (" ",)
    for mark in breaks:
        at = room.rfind(mark)
        if at >= floor:
            room = room[:at]
            break
    return room.rstrip(" ,;:-\n") + _ELLIPSIS


def cap_chunks(article: Article, chunks: list[Any], limits: FieldLimits) -> tuple[list[Any], ItemFailure | None]:
    """The first ``max_chunks_per_article`` chunks, and a warning when there were more."""
    limit = limits.max_chunks_per_article
    if len(chunks) <= limit:
        return chunks, None
    reason = f"chunks cut from {len(chunks):,} to {limit:,} (the rest of the text is not indexed)"
    log.warning("source %r, item %r: %s", article.source_id, item_label(article), reason)
    return chunks[:limit], ItemFailure(item=item_label(article), reason=reason)
