"""The stores that used to open sqlite3 themselves (ingestion state, embedding cache, answer and
feedback log) through the one SQL layer, on both databases: SQLite (unit) and a live private
PostgreSQL (integration, tests/conftest.py starts it). The same calls, the same answers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from newsrag.core.errors import StoreError
from newsrag.core.settings import IngestSettings, load
from newsrag.embeddings.cache import EmbeddingCache, embed_cached, text_key
from newsrag.evaluation.feedback import FeedbackStore, UnknownTrace, read_feedback
from newsrag.infra.sqldb import SqlDb
from newsrag.ingest.state import IngestState, StoredDoc
from newsrag.retrieval.answer import Answer, AnswerCitation

BACKENDS = [pytest.param("sqlite", marks=pytest.mark.unit), pytest.param("postgres", marks=pytest.mark.integration)]


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "store.sqlite")


# -- ingestion state -------------------------------------------------------------------------------


def test_state_keeps_validators_reads_docs_and_signatures_per_generation(location: str) -> None:
    state = IngestState(location, scope="NewsChunk/v", generation="g1")
    state.save_validators("metro", "http://x", '"e1"', None)
    state.save_validators("metro", "http://x", '"e2"', "Mon, 01 Jan 2026 00:00:00 GMT")  # replaces
    state.record_read("metro", 12)
    state.record_read("metro", 14)
    state.remember_docs("metro", [StoredDoc("d1", "https://x/1"), StoredDoc("d2", "https://x/2")])
    minhash = np.arange(128, dtype=np.uint64) * np.uint64(2**61)
    state.save_signature("d1", "metro", "https://x/1", minhash)
    state.close()
    state = IngestState(location, scope="NewsChunk/v", generation="g1")  # what a later run sees
    assert state.validators("metro", "http://x") == ('"e2"', "Mon, 01 Jan 2026 00:00:00 GMT")
    assert state.chunks_stored("metro") == 14
    assert state.docs("metro") == {"d1": "https://x/1", "d2": "https://x/2"}
    [(doc_id, source_id, url, values)] = list(state.signatures())
    assert (doc_id, source_id, url) == ("d1", "metro", "https://x/1") and np.array_equal(values, minhash)
    state.bind("g2")
    assert (state.validators("metro", "http://x"), state.chunks_stored("metro"), state.docs("metro")) == \
        ((None, None), None, {})
    state.record_read("metro", 3)
    assert state.generations() == ["g2", "g1"]
    assert state.forget_other_generations() == 4  # validators, reads, two docs, one signature: g1's rows
    state.close()


@pytest.fixture
def icu_postgres_url(postgres_server: str) -> Iterator[str]:
    """A database whose text sorts by ICU's English rules: "." before "+", unlike bytes."""
    import psycopg

    name = "icu_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} LOCALE_PROVIDER icu ICU_LOCALE 'en' LOCALE 'C.utf8' TEMPLATE template0")
    try:
        yield f"{postgres_server.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.mark.parametrize("where", [pytest.param("sqlite", marks=pytest.mark.unit),
                                   pytest.param("postgres", marks=pytest.mark.integration),
                                   pytest.param("postgres-icu", marks=pytest.mark.integration)])
def test_state_retention_compares_times_of_any_width(where: str, request: pytest.FixtureRequest,
                                                     tmp_path: Path) -> None:
    """ISO times with and without microseconds order as times, also in a PostgreSQL database
    whose locale orders their text otherwise ("12:00:00.5+00:00" before "12:00:00+00:00")."""
    fixture = {"postgres": "postgres_url", "postgres-icu": "icu_postgres_url"}.get(where)
    location = str(request.getfixturevalue(fixture)) if fixture else str(tmp_path / "state.sqlite")
    state = IngestState(location)
    cutoff = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    state.remember_docs("metro", [StoredDoc("before", "u1", cutoff - timedelta(microseconds=1)),
                                  StoredDoc("at", "u2", cutoff),
                                  StoredDoc("after", "u3", cutoff + timedelta(microseconds=500_000))])
    state.forget_docs_older_than("metro", cutoff)
    assert set(state.docs("metro")) == {"at", "after"}
    state.close()


@pytest.mark.integration
def test_state_on_postgres_never_drops_a_table_it_does_not_own(postgres_url: str) -> None:
    """The legacy SQLite layout's tables are dropped from SQLite files only: in a shared
    PostgreSQL schema a table named ``validators`` is someone else's."""
    db = SqlDb(postgres_url)
    db.execute("CREATE TABLE validators (id INTEGER)")
    IngestState(postgres_url).close()
    assert "validators" in db.tables() and {"source_docs", "doc_signatures"} <= db.tables()
    db.close()



# -- embedding cache -------------------------------------------------------------------------------


class CountingEmbedder:
    model_id = "test/counting"
    dimensions = 3

    def __init__(self) -> None:
        self.seen: list[str] = []

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.seen += list(texts)
        return np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def close(self) -> None:
        pass


def test_the_embedding_cache_embeds_each_text_once_across_opens(location: str) -> None:
    texts = [f"text {i}" for i in range(1_201)]  # more keys than one lookup takes
    emb = CountingEmbedder()
    cache = EmbeddingCache(location)
    first, n = embed_cached(emb, cache, texts)
    cache.close()
    cache = EmbeddingCache(location)
    again, n2 = embed_cached(emb, cache, [*texts, "one more"])
    assert (n, n2, len(emb.seen)) == (1_201, 1, 1_202)
    assert np.array_equal(again[:1_201], first) and again.dtype == np.float32
    cache.put_many("test/counting", {text_key("text 0"): np.array([9, 9, 9], dtype=np.float32)})  # replaces
    assert cache.get_many("test/counting", [text_key("text 0")])[text_key("text 0")].tolist() == [9, 9, 9]
    assert cache.get_many("other/model", [text_key("text 0")]) == {}
    cache.close()


# -- answer and feedback log ---------------------------------------------------------------------


def answer(trace: str, text: str = "The harbor line opened. [1]") -> Answer:
    cited = [AnswerCitation(n=1, chunk_id="c0", doc_id="d0", url="https://news.test/h", title="Harbor", quote="q")]
    return Answer(text=text, citations=cited, prompt_name="news-answer", prompt_version="3", generator="extractive",
                  model="none", trace_id=trace)


def test_answers_and_feedback_round_trip(location: str) -> None:
    store = FeedbackStore(location)
    first = answer("t" * 32)
    store.record_answer(first, "When did it open?", arm="b")
    assert store.add_feedback(first.trace_id, 1, "good") < store.add_feedback(first.trace_id, -1, None, "user-1")
    store.record_answer(answer("t" * 32, "Opened in May. [1]"), "When did it open?")  # logged again
    with pytest.raises(UnknownTrace, match="no answer with trace id 'nope'"):
        store.add_feedback("nope", 1)
    with pytest.raises(ValueError, match="rating must be 1"):
        store.add_feedback(first.trace_id, 0)
    assert store.answer(first.trace_id)["text"] == "Opened in May. [1]"  # type: ignore[index]
    assert store.answer("nope") is None
    store.close()
    records = read_feedback(location)
    assert [(r.rating, r.comment, r.answer, r.arm) for r in records] == [
        (1, "good", "Opened in May. [1]", None), (-1, None, "Opened in May. [1]", None)]
    assert records[0].payload["citations"][0]["url"] == "https://news.test/h"


def test_text_neither_database_can_hold_is_stored_replaced(location: str) -> None:
    store = FeedbackStore(location)
    store.record_answer(answer("n" * 32, "Null\x00 and \ud800 here. [1]"), "what\x00?")
    store.add_feedback("n" * 32, -1, "bad\x00")
    [record] = store.feedback()
    assert (record.question, record.answer, record.comment) == ("what??", "Null? and ? here. [1]", "bad?")
    assert json.dumps(store.answer("n" * 32)).count("\\u0000") == 0
    store.close()


@pytest.mark.integration
def test_an_unreachable_postgres_feedback_store_is_named_without_its_password(postgres_url: str) -> None:
    password = postgres_url.split(":")[2].split("@")[0]
    wrong = postgres_url.replace(f":{password}@", ":wrong-pw-123@")
    with pytest.raises(StoreError, match=r"cannot open the feedback store at postgresql://postgres:\*\*\*@") as info:
        read_feedback(wrong)
    assert "wrong-pw-123" not in str(info.value) and password not in str(info.value)



@pytest.mark.unit
def test_read_feedback_of_a_missing_sqlite_file_creates_nothing(tmp_path: Path) -> None:
    assert read_feedback(tmp_path / "never-written.sqlite") == []
    assert not (tmp_path / "never-written.sqlite").exists()



@pytest.mark.unit
def test_the_state_and_cache_settings_keep_a_postgres_url_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Path would fold the URL's "//" (``postgresql:/u:p@db/x``): PostgreSQL is a configuration choice."""
    url = "postgresql://newsrag:pw@db:5432/newsrag"
    monkeypatch.setenv("NEWSRAG_INGEST_STATE_FILE", url)
    monkeypatch.setenv("NEWSRAG_INGEST_EMBEDDING_CACHE", url)
    settings = load(IngestSettings)
    assert (settings.state_file, settings.embedding_cache) == (url, url)
    assert load(IngestSettings, state_file=Path("/tmp/s.sqlite")).state_file == Path("/tmp/s.sqlite")
