"""Context assembly: one block per article in reading order, numbered by best score, within budget."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from newsrag.core.records import ChunkRecord, Hit
from newsrag.retrieval.context import (
    ADJACENT,
    GAP,
    assemble_context,
    default_count_tokens,
    strip_overlap,
)

pytestmark = pytest.mark.unit


def hit(doc: str, index: int, score: float, text: str | None = None, **props: object) -> Hit:
    properties = {"doc_id": doc, "chunk_index": index, "text": text or f"{doc} chunk {index} body text here.",
                  "title": f"Title {doc}", "url": f"https://example.test/{doc}", "source_id": "src", **props}
    return Hit(uuid=f"{doc}-{index}", score=score, chunk=ChunkRecord(**properties))


def words(n: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


def test_chunks_of_one_article_merge_in_reading_order_and_articles_follow_best_score() -> None:
    hits = [hit("a", 2, 0.9), hit("b", 0, 0.8), hit("a", 0, 0.7), hit("b", 1, 0.2)]
    blocks = assemble_context(hits)
    assert [(b.n, b.doc_id) for b in blocks] == [(1, "a"), (2, "b")]
    a, b = blocks
    assert a.chunk_ids == ("a-0", "a-2")  # reading order, not score order
    assert a.text == "a chunk 0 body text here." + GAP + "a chunk 2 body text here."
    assert b.text == "b chunk 0 body text here." + ADJACENT + "b chunk 1 body text here."
    assert (a.score, b.score) == (0.9, 0.8)
    assert (a.url, a.title, a.source_id) == ("https://example.test/a", "Title a", "src")
    assert [p.chunk_id for p in a.parts] == ["a-0", "a-2"]


def test_adjacent_chunks_drop_the_overlap_the_chunker_repeated() -> None:
    first = "The council met on Tuesday. It approved the Harbor Line by seven votes to four."
    second = "It approved the Harbor Line by seven votes to four. Construction starts in March."
    blocks = assemble_context([hit("a", 0, 0.9, first), hit("a", 1, 0.8, second)])
    assert blocks[0].text == first + "\nConstruction starts in March."
    assert blocks[0].parts[1].text == "Construction starts in March."
    assert strip_overlap("short end.", "end. Next") == "end. Next"  # below the minimum: kept


def test_budget_skips_chunks_that_do_not_fit_and_never_cuts_one() -> None:
    def count(text: str) -> int:
        return len(text.split())

    hits = [hit("a", 0, 0.9, words(40, "a")), hit("b", 0, 0.8, words(50, "b")),
            hit("c", 0, 0.7, words(10, "c"))]
    # title costs 2 words per new article: a = 42, b = 52 (no longer fits in 60), c = 12 -> 54
    blocks = assemble_context(hits, max_tokens=60, count_tokens=count)
    assert [b.doc_id for b in blocks] == ["a", "c"]
    assert [b.n for b in blocks] == [1, 2]
    assert blocks[0].text == words(40, "a") and blocks[1].text == words(10, "c")
    assert sum(count(b.text) + count(b.title) for b in blocks) <= 60


def test_nothing_fits_gives_no_blocks_and_duplicates_count_once() -> None:
    assert assemble_context([hit("a", 0, 0.9, words(100))], max_tokens=10) == []
    blocks = assemble_context([hit("a", 0, 0.9), hit("a", 0, 0.9), hit("a", 1, 0.5)])
    assert blocks[0].chunk_ids == ("a-0", "a-1")


def test_default_token_count_is_words_times_1_3_rounded_up() -> None:
    assert default_count_tokens("one two three") == 4  # 3.9 -> 4
    assert default_count_tokens("") == 0
    assert default_count_tokens(words(10)) == 13


def test_published_at_is_parsed_and_missing_doc_id_falls_back_to_the_chunk() -> None:
    blocks = assemble_context([
        hit("a", 0, 0.9, published_at="2026-10-22T14:00:00Z"),
        Hit(uuid="lonely", score=0.5, chunk=ChunkRecord(text="no doc id here at all", chunk_index=0)),
    ])
    assert blocks[0].published_at == datetime(2026, 10, 22, 14, tzinfo=UTC)
    assert blocks[1].doc_id == "lonely" and blocks[1].published_at is None
