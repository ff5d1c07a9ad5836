"""``as_of`` on the real Weaviate (#14, "Must show"): an ``as_of`` in the past never shows an article
published after it, nor a version ingested after it, through the library (Searcher, Answerer) and
through /v1/search and /v1/ask; undated chunks count as published when ingested; the answer and the
search response name the instant used. One collection of hand-dated articles on one topic, so every
one of them is a candidate and only the filter can keep one out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from newsrag.core.records import ChunkRecord, StoredObject
from newsrag.embeddings.base import vector_name
from newsrag.ingest.models import chunk_uuid
from newsrag.retrieval.answer import Answerer
from newsrag.retrieval.generators.extractive import ExtractiveGenerator
from newsrag.retrieval.search import Searcher
from newsrag.store.analysis import bm25_terms
from tests.app.conftest import sse_events

pytestmark = pytest.mark.integration

AS_OF = "2026-10-19"  # the end of that day: 2026-10-19T23:59:59.999999Z
AS_OF_USED = "2026-10-19T23:59:59.999999Z"
QUESTION = "When did the Calder harbor bridge reopen after repairs?"


def at(day: int, hour: int = 9, month: int = 10) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


# doc id -> (text, published_at, ingested_at)
ARTICLES: dict[str, tuple[str, datetime | None, datetime | None]] = {
    "closed": ("The Calder harbor bridge closed for repairs on October 1, the city said.", at(1), at(1, 10)),
    "undated-early": ("Calder harbor bridge repairs: crews began work on the bridge deck.", None, at(5)),
    # ingested an hour before its publication time (an embargoed piece): visible only from 23:00
    "late-in-the-day": ("The Calder harbor bridge repairs passed inspection late on October 19.", at(19, 23), at(19, 22)),
    "published-after": ("The Calder harbor bridge reopened after repairs on October 25.", at(25), at(25, 10)),
    # dated ahead by its publisher and ingested before the as_of: only published_at keeps it out
    "dated-ahead": ("The Calder harbor bridge reopens after repairs on October 25, officials announced.", at(25),
                    at(15)),
    # published before the as_of, but this version was ingested after it (an update, re-ingested)
    "updated-after": ("The Calder harbor bridge reopened after repairs, the city said in an update.", at(2), at(28)),
    "undated-late": ("Calder harbor bridge reopened after repairs, a note says.", None, at(2, month=11)),
}
VISIBLE = {"closed", "undated-early", "late-in-the-day"}


def stored(doc: str, embedder: Any) -> StoredObject:
    text, published, ingested = ARTICLES[doc]
    record = ChunkRecord(text=text, title=f"Harbor bridge: {doc}", url=f"https://calder.test/{doc}", source_id="metro",
                         doc_id=doc, content_hash="h2" if doc == "updated-after" else "h1",
                         published_at=published, ingested_at=ingested, chunk_index=0, token_count=20)
    vector = [float(x) for x in embedder.embed_documents([text])[0]]
    return StoredObject(chunk_uuid(doc, 0, record.content_hash), record, vector, context=bm25_terms(text, "english"))


@pytest.fixture
def dated(store: Any, embedder: Any) -> Any:
    store.ensure_collection([vector_name(embedder.model_id)])
    store.upsert([stored(doc, embedder) for doc in ARTICLES], vector_name(embedder.model_id))
    assert store.count() == len(ARTICLES)
    return store


@pytest.fixture
def client(dated: Any, embedder: Any, tmp_path: Path) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from newsrag.app.main import create_app
    from newsrag.app.services import Services
    from newsrag.app.settings import AppSettings
    from newsrag.core.settings import Settings
    from newsrag.store.weaviate import WeaviateStore

    root = Settings().replace(AppSettings(feedback_db=str(tmp_path / "feedback.sqlite")))
    services = Services(root, store=WeaviateStore(root, collection=dated.name), embedder=embedder)
    with TestClient(create_app(root, services)) as c:
        yield c


def docs(hits: list[Any]) -> set[str]:
    return {h.chunk.doc_id for h in hits}


@pytest.mark.parametrize("mode", ["hybrid", "vector", "bm25"])
def test_the_library_sees_only_what_was_published_and_ingested_by_the_as_of(dated: Any, embedder: Any,
                                                                           mode: str) -> None:
    searcher = Searcher(dated, embedder)
    d = datetime(2026, 10, 19, 23, 59, 59, 999999, tzinfo=UTC)
    past = searcher.search(QUESTION, top_k=20, mode=mode, as_of=d)  # type: ignore[arg-type]
    assert docs(past.hits) == VISIBLE and past.as_of == d
    assert docs(searcher.search(QUESTION, top_k=20, mode=mode).hits) == set(ARTICLES)  # type: ignore[arg-type]
    # one microsecond before an article was published, it is not there yet
    early = searcher.search(QUESTION, top_k=20, mode=mode,  # type: ignore[arg-type]
                            as_of=at(19, 23) - timedelta(microseconds=1))
    assert docs(early.hits) == VISIBLE - {"late-in-the-day"}


def test_the_answer_cites_only_what_it_could_have_seen_and_names_the_as_of(dated: Any, embedder: Any) -> None:
    answerer = Answerer(Searcher(dated, embedder), ExtractiveGenerator(embedder))
    d = datetime(2026, 10, 19, 23, 59, 59, 999999, tzinfo=UTC)
    answer = answerer.ask(QUESTION, as_of=d, top_k=10)
    assert answer.as_of == d and answer.retrieval
    assert {r.doc_id for r in answer.retrieval} <= VISIBLE and {s.doc_id for s in answer.sources} <= VISIBLE
    now = answerer.ask(QUESTION, top_k=10)
    assert now.as_of is not None and abs((now.as_of - datetime.now(UTC)).total_seconds()) < 60
    assert {r.doc_id for r in now.retrieval} - VISIBLE  # without as_of the later articles are found


def test_v1_search_filters_by_as_of_and_names_it(client: Any) -> None:
    resp = client.get("/v1/search", params={"q": QUESTION, "as_of": AS_OF, "top_k": 20})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert {h["doc_id"] for h in body["hits"]} == VISIBLE
    assert datetime.fromisoformat(body["as_of"]) == datetime.fromisoformat(AS_OF_USED)
    for hit in body["hits"]:
        assert hit["published_at"] is None or hit["published_at"] <= AS_OF_USED
        assert hit["ingested_at"] <= AS_OF_USED
    everything = client.get("/v1/search", params={"q": QUESTION, "top_k": 20}).json()
    assert {h["doc_id"] for h in everything["hits"]} == set(ARTICLES) and everything["as_of"] > AS_OF_USED


@pytest.mark.parametrize("stream", [False, True])
def test_v1_ask_answers_as_of_the_date_and_names_it(client: Any, stream: bool) -> None:
    resp = client.post("/v1/ask", json={"question": QUESTION, "as_of": AS_OF, "top_k": 10, "stream": stream})
    assert resp.status_code == 200, resp.text
    if stream:
        import json

        answer = next(json.loads(data) for name, data in sse_events(resp.text) if name == "done")
    else:
        answer = resp.json()
    assert answer["as_of"] == AS_OF_USED and answer["retrieval"]
    assert {r["doc_id"] for r in answer["retrieval"]} <= VISIBLE
    assert {s["doc_id"] for s in answer["sources"]} <= VISIBLE
    assert all(s["published_at"] is None or s["published_at"] <= AS_OF_USED for s in answer["sources"])


def test_chat_completions_answer_as_of_the_extension_field(client: Any) -> None:
    resp = client.post("/v1/chat/completions", json={"model": "newsrag", "as_of": AS_OF,
                                                      "messages": [{"role": "user", "content": QUESTION}]})
    assert resp.status_code == 200, resp.text
    extension = resp.json()["newsrag"]
    assert datetime.fromisoformat(extension["as_of"]) == datetime.fromisoformat(AS_OF_USED)
    assert {s["doc_id"] for s in extension["sources"]} <= VISIBLE
