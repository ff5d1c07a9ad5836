"""Citation numbers a reader can follow (#20, item 4): 1…n in order of first use, one entry per article."""

from __future__ import annotations

import pytest

from newsrag.retrieval.answer import cite
from newsrag.retrieval.citations import Renumberer, renumber_text
from newsrag.retrieval.context import ContextBlock, ContextPart
from newsrag.retrieval.generators.base import Citation, Generation

pytestmark = pytest.mark.unit


def block(n: int, doc: str) -> ContextBlock:
    return ContextBlock(n=n, doc_id=doc, url=f"https://news.test/{doc}", title=doc.title(), published_at=None,
                        source_id="wire", text="", chunk_ids=(f"{doc}-c",), score=1.0,
                        parts=(ContextPart(f"{doc}-c", 0, "", 1.0),))


def test_markers_are_numbered_by_first_use() -> None:
    text, numbers = renumber_text("A [3]. B [2]. C [3]. D [5].")
    assert text == "A [1]. B [2]. C [1]. D [3]."
    assert numbers == {3: 1, 2: 2, 5: 3}


def test_markers_naming_no_block_are_dropped() -> None:
    assert renumber_text("A [2]. B [9].", known={1, 2})[0] == "A [1]. B ."


@pytest.mark.parametrize("pieces", [
    ["Beds [", "3]. Doors [2", "]. More [3]", "."],
    ["Beds [3]. Doors [2]. More [3]."],
    list("Beds [3]. Doors [2]. More [3]."),
])
def test_a_stream_is_rewritten_like_the_whole_text(pieces: list[str]) -> None:
    r = Renumberer()
    streamed = "".join(r.feed(p) for p in pieces) + r.flush()
    assert streamed == renumber_text("".join(pieces))[0] == "Beds [1]. Doors [2]. More [1]."


def test_an_unfinished_bracket_at_the_end_is_kept() -> None:
    r = Renumberer()
    assert r.feed("see [") == "see "
    assert r.flush() == "["


def test_cite_groups_quotes_per_article_with_reading_numbers() -> None:
    blocks = [block(1, "council"), block(2, "hospital"), block(3, "museum")]
    generation = Generation(
        text="212 beds. [2] Opened Wednesday. [2] Council approved. [1]",
        citations=[Citation(2, "hospital-c", "hospital", "https://news.test/hospital", "Hospital", "212 beds."),
                   Citation(2, "hospital-c", "hospital", "https://news.test/hospital", "Hospital", "Opened Wednesday."),
                   Citation(1, "council-c", "council", "https://news.test/council", "Council", "Council approved.")])
    text, citations, sources = cite(generation, blocks)
    assert text == "212 beds. [1] Opened Wednesday. [1] Council approved. [2]"
    assert [c.n for c in citations] == [1, 1, 2]
    assert [(s.n, s.doc_id, s.quotes) for s in sources] == [
        (1, "hospital", ["212 beds.", "Opened Wednesday."]), (2, "council", ["Council approved."])]
    # sources[n-1] resolves [n]
    assert all(sources[c.n - 1].doc_id == c.doc_id for c in citations)
