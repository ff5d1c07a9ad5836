"""Turn ranked hits into numbered context blocks, one per article, within a token budget.

Rules (:func:`assemble_context`):

* chunks are admitted best score first while they fit the budget; a chunk that does not fit is
  skipped whole (never cut mid-chunk) and smaller later chunks may still fit;
* each new article also pays for its title once (the header a prompt shows with the block);
* admitted chunks of one article (same ``doc_id``) become one block, in reading order
  (``chunk_index``); adjacent chunks are joined with ``"\\n"`` after removing the text the chunker
  repeated as overlap, non-adjacent ones with ``"\\n…\\n"``;
* blocks are ordered by their best hit score and numbered from 1: ``[n]`` citations refer to ``n``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from newsrag.core.records import Hit

TokenCounter = Callable[[str], int]
GAP = "\n…\n"
ADJACENT = "\n"
MIN_OVERLAP_CHARS = 16


def default_count_tokens(text: str) -> int:
    """Whitespace word count * 1.3, rounded up: English news averages about 1.3 subword tokens per
    word with BPE/WordPiece tokenizers, so this slightly over-estimates rather than under-estimates."""
    return math.ceil(len(text.split()) * 1.3)


@dataclass(frozen=True)
class ContextPart:
    """One chunk inside a block; ``text`` has the overlap with the previous adjacent chunk removed."""

    chunk_id: str
    chunk_index: int
    text: str
    score: float


@dataclass(frozen=True)
class ContextBlock:
    n: int
    doc_id: str
    url: str
    title: str
    published_at: datetime | None
    source_id: str
    text: str
    chunk_ids: tuple[str, ...]
    score: float
    parts: tuple[ContextPart, ...] = ()

    def part_for(self, chunk_id: str) -> ContextPart | None:
        return next((p for p in self.parts if p.chunk_id == chunk_id), None)


def assemble_context(hits: Sequence[Hit], *, max_tokens: int = 1500,
                     count_tokens: TokenCounter = default_count_tokens) -> list[ContextBlock]:
    admitted = _admit(_unique_by_score(hits), max_tokens, count_tokens)
    return [_block(n, doc_hits) for n, doc_hits in enumerate(admitted.values(), start=1)]


def _unique_by_score(hits: Sequence[Hit]) -> list[Hit]:
    seen: set[str] = set()
    unique = []
    for h in hits:
        if h.uuid not in seen:
            seen.add(h.uuid)
            unique.append(h)
    return sorted(unique, key=lambda h: -h.score)  # stable: equal scores keep the given order


def _admit(hits: list[Hit], max_tokens: int, count_tokens: TokenCounter) -> dict[str, list[Hit]]:
    """doc key -> admitted hits; dict order is the order of each article's best admitted hit."""
    admitted: dict[str, list[Hit]] = {}
    used = 0
    for h in hits:
        key = h.doc_id
        cost = count_tokens(h.chunk.text)
        if key not in admitted:
            cost += count_tokens(h.chunk.title)
        if used + cost > max_tokens:
            continue
        used += cost
        admitted.setdefault(key, []).append(h)
    return admitted


def _block(n: int, hits: list[Hit]) -> ContextBlock:
    best = hits[0]  # admitted in score order
    ordered = sorted(hits, key=lambda h: h.chunk.chunk_index)
    parts: list[ContextPart] = []
    pieces: list[str] = []
    previous: Hit | None = None
    for h in ordered:
        text = h.chunk.text.strip()
        index = h.chunk.chunk_index
        adjacent = previous is not None and index == previous.chunk.chunk_index + 1
        if adjacent and previous is not None:
            text = strip_overlap(previous.chunk.text.strip(), text)
        if pieces and text:
            pieces.append(ADJACENT if adjacent else GAP)
        if text:
            pieces.append(text)
        parts.append(ContextPart(h.uuid, index, text, h.score))
        previous = h
    chunk = best.chunk
    return ContextBlock(
        n=n, doc_id=best.doc_id, url=chunk.url, title=chunk.title,
        published_at=local_time(chunk.published_at, chunk.published_offset), source_id=chunk.source_id,
        text="".join(pieces), chunk_ids=tuple(h.uuid for h in ordered), score=best.score,
        parts=tuple(parts),
    )


def local_time(published_at: datetime | None, offset_minutes: object) -> datetime | None:
    """The publication time in the offset the publisher wrote it in (UTC when it gave none): an
    article of "Tue, 08 Sep 2026 22:15 -0400" is shown as 8 September, not as UTC's 9 September.
    The same instant either way, so comparisons and filters are unchanged."""
    if published_at is None or not isinstance(offset_minutes, int) or abs(offset_minutes) >= 24 * 60:
        return published_at
    return published_at.astimezone(timezone(timedelta(minutes=offset_minutes)))


def strip_overlap(previous: str, current: str) -> str:
    """``current`` without the longest prefix that ``previous`` ends with (the chunker's overlap),
    when that prefix is at least :data:`MIN_OVERLAP_CHARS` long."""
    for k in range(min(len(previous), len(current)), MIN_OVERLAP_CHARS - 1, -1):
        if previous.endswith(current[:k]):
            return current[k:].lstrip()
    return current
