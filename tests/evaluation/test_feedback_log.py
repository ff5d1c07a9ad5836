"""The answer log stores bounded records: no field, and no record, can grow with a hostile article."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from newsrag.evaluation.feedback import (
    PAYLOAD_CHARS,
    TEXT_FLOOR,
    TRUNCATED,
    FeedbackStore,
    bounded,
    read_feedback,
)
from newsrag.evaluation.golden import cases_from_feedback
from newsrag.retrieval.answer import Answer, AnswerCitation, RetrievedChunk

pytestmark = pytest.mark.unit


def answer(text: str, citations: int = 1, title: str = "Harbor line opens", quote: str = "It opened.",
           url: str = "https://news.test/harbor", trace: str = "t" * 32) -> Answer:
    cited = [AnswerCitation(n=i + 1, chunk_id=f"c{i}", doc_id=f"d{i}", url=f"{url}/{i}", title=title, quote=quote)
             for i in range(citations)]
    return Answer(text=text, citations=cited, prompt_name="news-answer", prompt_version="3", generator="extractive",
                  model="none", trace_id=trace,
                  retrieval=[RetrievedChunk(chunk_id=f"c{i}", doc_id=f"d{i}", score=0.5) for i in range(200)])


def stored(path: Path, trace: str) -> tuple[str, str, str]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT question, answer, payload FROM answers WHERE trace_id=?", (trace,)).fetchone()


def test_a_small_answer_is_stored_whole(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "f.sqlite")
    a = answer("The harbor line opened. [1]")
    store.record_answer(a, "When did it open?")
    assert store.answer(a.trace_id) == a.model_dump(mode="json")  # no cut, no "truncated" flag
    store.close()


def test_every_field_and_the_whole_record_are_capped(tmp_path: Path) -> None:
    path = tmp_path / "f.sqlite"
    store = FeedbackStore(path)
    hostile = answer("港" * 1_000_000, citations=100, title="T" * 100_000, quote="Q" * 100_000,
                     url="https://news.test/" + "u" * 100_000)
    store.record_answer(hostile, "Which port? " * 10_000)
    question, text, raw = stored(path, hostile.trace_id)
    payload = json.loads(raw)
    assert len(raw) <= PAYLOAD_CHARS and payload["truncated"] is True
    assert len(question) == 16_000 and question.endswith(TRUNCATED)
    assert text == payload["text"] and len(text) == TEXT_FLOOR and text.endswith(TRUNCATED)
    assert payload["retrieval"] == [] and 1 <= len(payload["citations"]) < 100
    first = payload["citations"][0]
    assert (len(first["title"]), len(first["quote"]), len(first["url"])) == (500, 1_000, 2_048)
    assert all(v.endswith(TRUNCATED) for v in (first["title"], first["quote"], first["url"]))
    store.add_feedback(hostile.trace_id, 1, "good")
    store.close()
    cases, _ = cases_from_feedback(read_feedback(path))  # a cut record still becomes a regression case
    assert len(cases) == 1 and cases[0].gold_urls[0] == first["url"]


def test_text_that_sqlite_cannot_encode_is_stored_replaced(tmp_path: Path) -> None:
    path = tmp_path / "f.sqlite"
    store = FeedbackStore(path)
    a = answer("Fine. [1]")
    store.record_answer(a, "harbor \ud800 line")
    store.add_feedback(a.trace_id, -1, "bad \udfff")
    store.add_feedback(a.trace_id, 1, "c" * 2_000)  # the longest comment the app accepts is kept whole
    store.close()
    assert stored(path, a.trace_id)[0] == "harbor ? line"
    assert [r.comment for r in read_feedback(path)] == ["bad ?", "c" * 2_000]


def test_bounded_cuts_with_a_marker_within_the_limit() -> None:
    assert bounded("short", 10) == "short"
    cut = bounded("x" * 100, 40)
    assert len(cut) == 40 and cut.endswith(TRUNCATED) and cut.startswith("x" * (40 - len(TRUNCATED)))
