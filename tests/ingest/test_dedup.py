"""Near-duplicate claims in the shared ingestion state (newsrag.ingest.dedup, newsrag.ingest.state):
who holds a story, what a copy records, when a claim is trusted, taken over or released, and an
older state brought to the claims. On SQLite (unit) and the private PostgreSQL (integration); then
the pipeline across two workers' contexts on the real Weaviate. The race between two processes is
tests/ingest/test_dedup_race.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from newsrag.core.settings import Settings
from newsrag.infra.sqldb import SqlDb
from newsrag.ingest.context import IngestContext
from newsrag.ingest.dedup import Banding, NearDuplicateClaims, signature
from newsrag.ingest.fetch import FetchSettings
from newsrag.ingest.pipeline import run_source
from newsrag.ingest.registry import parse_source
from newsrag.ingest.state import IngestState
from tests.ingest.feedgen import Item, item, paragraphs, rss

BACKENDS = [pytest.param("sqlite", marks=pytest.mark.unit), pytest.param("postgres", marks=pytest.mark.integration)]
SCOPE = "NewsChunk/v_test"
BASE = " ".join(paragraphs(11, n=2))
COPY = "PORT CALDER (Wire) - " + BASE + " Reporting by A. Writer."
OTHER = " ".join(paragraphs(12, n=2))


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "state.sqlite")


@pytest.fixture
def open_state(location: str) -> Iterator[Callable[[], IngestState]]:
    """Each call: the state as one more worker opens it (its own connection)."""
    opened: list[IngestState] = []

    def open_one() -> IngestState:
        opened.append(IngestState(location, scope=SCOPE, generation="g1"))
        return opened[-1]

    yield open_one
    for state in opened:
        state.close()


def claims(state: IngestState, present: Callable[[str], bool] = lambda doc_id: False, **kw: Any) -> NearDuplicateClaims:
    return NearDuplicateClaims(state, 0.5, present, **kw)


def sig(text: str) -> Any:
    found = signature(text)
    assert found is not None
    return found


def band_rows(location: str) -> dict[str, int]:
    db = SqlDb(location)
    try:
        return dict(db.execute("SELECT doc_id, COUNT(*) FROM doc_bands GROUP BY doc_id"))
    finally:
        db.close()


def test_a_copy_claimed_after_its_original_is_recorded_against_it(open_state: Callable[[], IngestState],
                                                                    location: str) -> None:
    agency, paper = claims(open_state()), claims(open_state())  # two workers
    assert agency.claim("orig", "agency", "https://a/1", sig(BASE)) is None  # the story is agency's now
    found = paper.claim("copy", "paper", "https://p/1", sig(COPY))
    assert found is not None and (found.doc_id, found.source_id, found.url) == ("orig", "agency", "https://a/1")
    assert found.similarity >= 0.5
    assert paper.claim("other", "paper", "https://p/2", sig(OTHER)) is None  # a different story is not a copy
    assert set(band_rows(location)) == {"orig", "other"}  # a copy holds no band key
    assert agency.stored([("orig", "agency", "https://a/1", sig(BASE))]) == {"orig": {"paper"}}
    assert {row[0] for row in open_state().signatures()} == {"orig", "other"}


def test_a_live_claim_is_honoured_and_an_expired_one_of_a_missing_document_taken_over(
        open_state: Callable[[], IngestState]) -> None:
    writer = claims(open_state())
    assert writer.claim("orig", "agency", "https://a/1", sig(BASE)) is None  # claimed, not yet written
    live = claims(open_state())  # the store does not hold "orig" yet: the claim alone counts
    assert getattr(live.claim("copy", "paper", "https://p/1", sig(COPY)), "doc_id", None) == "orig"
    written = claims(open_state(), present=lambda doc_id: doc_id == "orig", lease=timedelta(0))
    assert getattr(written.claim("copy", "paper", "https://p/1", sig(COPY)), "doc_id", None) == "orig"
    vanished = claims(open_state(), lease=timedelta(0))  # a worker died holding it and nothing was written
    assert vanished.claim("copy", "paper", "https://p/1", sig(COPY)) is None
    assert [row[0] for row in open_state().signatures()] == ["copy"]


def test_the_copies_of_a_story_follow_whoever_holds_it(open_state: Callable[[], IngestState]) -> None:
    """Copies recorded against a claim that expired pass to the next holder; copies recorded
    against a document that turns out to be a copy itself pass to its original."""
    state, live = open_state(), claims(open_state())
    assert live.claim("orig", "agency", "https://a/1", sig(BASE)) is None
    assert getattr(live.claim("copy-1", "daily", "https://d/1", sig(COPY)), "doc_id", None) == "orig"
    taking_over = claims(open_state(), lease=timedelta(0))  # "orig"'s worker died; nothing was written
    assert taking_over.claim("copy-2", "weekly", "https://w/1", sig(COPY)) is None
    assert state.copies(["orig", "copy-2"]) == {"copy-2": {"daily"}}
    assert getattr(live.claim("orig", "agency", "https://a/1", sig(BASE)), "doc_id", None) == "copy-2"
    assert state.copies(["copy-2"]) == {"copy-2": {"daily", "agency"}}  # "orig"'s retry found it held
    taking_over.release()  # weekly's run failed before writing: the copies stay recorded
    assert claims(open_state()).claim("copy-2", "weekly", "https://w/1", sig(COPY)) is None  # its retry
    assert state.copies(["copy-2"]) == {"copy-2": {"daily", "agency"}}


def test_a_stored_signature_whose_document_is_gone_is_released(open_state: Callable[[], IngestState],
                                                               location: str) -> None:
    state = open_state()
    state.save_signature("orig", "agency", "https://a/1", sig(BASE).hashvalues)
    held = claims(open_state(), present=lambda doc_id: True)
    assert getattr(held.claim("copy", "paper", "https://p/1", sig(COPY)), "doc_id", None) == "orig"
    gone = claims(open_state(), present=lambda doc_id: False)  # deleted behind the pipeline's back
    assert gone.claim("copy", "paper", "https://p/1", sig(COPY)) is None
    assert set(band_rows(location)) == {"copy"} and [row[0] for row in state.signatures()] == ["copy"]


def test_released_and_deleted_signatures_free_their_keys_and_copies(open_state: Callable[[], IngestState],
                                                                    location: str) -> None:
    writer, other = claims(open_state()), claims(open_state())
    assert writer.claim("orig", "agency", "https://a/1", sig(BASE)) is None
    writer.release()  # the run failed before writing it
    assert band_rows(location) == {}
    assert other.claim("copy", "paper", "https://p/1", sig(COPY)) is None  # so the copy holds the story
    other.stored([("copy", "paper", "https://p/1", sig(COPY))])
    third = claims(open_state(), present=lambda doc_id: True)
    assert third.claim("orig", "agency", "https://a/1", sig(BASE)) is not None  # now a copy of "copy"
    state = open_state()
    assert state.copies(["copy"]) == {"copy": {"agency"}}
    state.delete_signatures(["copy"])  # retention or a snapshot delete
    assert (band_rows(location), state.copies(["copy"]), list(state.signatures())) == ({}, {}, [])


def test_an_older_state_and_another_threshold_get_band_keys(location: str) -> None:
    """A doc_signatures table of the layout before claims (no status, no bands) is upgraded: its
    rows are stored signatures, banded when a run first claims; another threshold re-bands them."""
    db = SqlDb(location)
    db.execute(f"CREATE TABLE doc_signatures (scope TEXT NOT NULL, generation TEXT NOT NULL, doc_id TEXT NOT NULL, "
               f"source_id TEXT NOT NULL, url TEXT NOT NULL, minhash {db.blob} NOT NULL, PRIMARY KEY (scope, doc_id))")
    db.execute("INSERT INTO doc_signatures VALUES (?, ?, ?, ?, ?, ?)",
               (SCOPE, "g1", "orig", "agency", "https://a/1", np.asarray(sig(BASE).hashvalues, dtype=np.uint64).tobytes()))
    state = IngestState(location, scope=SCOPE, generation="g1")
    try:
        assert [row[0] for row in state.signatures()] == ["orig"] and band_rows(location) == {}
        lower = NearDuplicateClaims(state, 0.3, lambda doc_id: True)
        assert Banding.for_threshold(0.3) != Banding.for_threshold(0.5)
        assert getattr(lower.claim("copy", "paper", "https://p/1", sig(COPY)), "doc_id", None) == "orig"
        assert band_rows(location) == {"orig": Banding.for_threshold(0.3).bands}
        state.bind("g2")  # the collection was re-created: a signature of the old generation is stale
        again = NearDuplicateClaims(state, 0.3, lambda doc_id: True)
        assert again.claim("copy", "paper", "https://p/1", sig(COPY)) is None
        assert set(band_rows(location)) == {"copy"}
    finally:
        state.close()
        db.close()


# -- the pipeline: two workers' contexts on one shared state, the real Weaviate ---------------------


def story() -> Item:
    return item("wire-story", 61)


def syndicated(original: Item) -> Item:
    return Item(slug="paper-wire-story", title="Paper: " + original.title,
                paras=(*original.paras, "Reporting by the Wire agency."), published=original.published)


def worker_root(shared: str, home: Path) -> Settings:
    """A worker's root settings: its own home, the one shared state (PostgreSQL through the
    shared database setting, as in production; SQLite as a file both see)."""
    share = {"NEWSRAG_DATABASE_URL": shared} if shared.startswith("postgresql") else \
        {"NEWSRAG_INGEST_STATE_FILE": shared}
    return Settings({"NEWSRAG_HOME": str(home), **share})


def worker(shared: str, home: Path, store: Any, embedder: Any) -> IngestContext:
    return IngestContext(worker_root(shared, home), store=store, embedder=embedder,
                         fetch_settings=FetchSettings(allow_private=True, retries=0))


def feed(server: Any, source_id: str, items: list[Item]) -> Any:
    server.routes[f"/{source_id}.xml"] = (rss(server.base, items), "application/rss+xml")
    return parse_source({"id": source_id, "type": "feed", "url": server.url(f"/{source_id}.xml")})


def stored(store: Any) -> dict[str, tuple[int, set[str]]]:
    """url -> (objects, also_sources) of everything the store holds."""
    found: dict[str, tuple[int, set[str]]] = {}
    for _, p in store.iter_properties(["url", "also_sources"]):
        n, also = found.get(p["url"], (0, set()))
        found[p["url"]] = (n + 1, also | set(p.get("also_sources") or []))
    return found


@pytest.fixture(params=["sqlite", "postgres"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "shared" / "ingest-state.sqlite")


@pytest.mark.integration
def test_a_fresh_worker_home_recognises_a_copy_the_other_worker_stored(
        shared: str, store: Any, embedder: Any, feed_server: Any, tmp_path: Path) -> None:
    with worker(shared, tmp_path / "worker-1", store, embedder) as first:
        written = run_source(feed(feed_server, "agency", [story()]), first)
    assert (written.new, written.chunks_written > 0) == (1, True)
    fresh = tmp_path / "worker-2"  # another host, or a new pod: nothing on its disk
    with worker(shared, fresh, store, embedder) as second:
        copy = run_source(feed(feed_server, "paper", [syndicated(story())]), second)
    assert (copy.status, copy.new, copy.duplicates, copy.chunks_written) == ("ok", 0, 1, 0)
    assert stored(store) == {feed_server.url("/wire-story.html"): (written.chunks_written, {"paper"})}
    assert not (fresh / "ingest-state.sqlite").exists()  # the state it used is the shared one


class EmbedderThen:
    """The embedder, calling ``before`` once, just before the first texts are embedded: the
    article is planned (and claimed) and not yet written."""

    def __init__(self, inner: Any, before: Callable[[], None]) -> None:
        self.inner, self.before = inner, before
        self.model_id, self.dimensions, self.tokenizer = inner.model_id, inner.dimensions, inner.tokenizer

    def embed_documents(self, texts: Any) -> Any:
        before, self.before = self.before, lambda: None
        before()
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> Any:
        return self.inner.embed_query(text)

    def close(self) -> None:
        pass


@pytest.mark.integration
def test_a_copy_arriving_while_its_original_is_written_is_named_by_the_writer(
        store: Any, embedder: Any, feed_server: Any, tmp_path: Path) -> None:
    """The other worker reads the copy after the original was claimed and before its chunks exist:
    the copy is not stored, and the original's writer names the copy's source once it wrote them.
    (Before claims, a signature was shared only after the write, and the copy was stored too.)"""
    shared = str(tmp_path / "shared" / "ingest-state.sqlite")
    paper = feed(feed_server, "paper", [syndicated(story())])
    copies: list[Any] = []

    def other_worker_reads_the_copy() -> None:
        assert store.count() == 0  # nothing of the original is written yet
        with worker(shared, tmp_path / "worker-2", store, embedder) as second:
            copies.append(run_source(paper, second))

    with worker(shared, tmp_path / "worker-1", store, EmbedderThen(embedder, other_worker_reads_the_copy)) as first:
        written = run_source(feed(feed_server, "agency", [story()]), first)
    [copy] = copies
    assert (written.new, copy.new, copy.duplicates) == (1, 0, 1)
    assert stored(store) == {feed_server.url("/wire-story.html"): (written.chunks_written, {"paper"})}


@pytest.mark.integration
def test_a_try_that_lost_its_state_after_writing_leaves_no_second_copy(
        store: Any, embedder: Any, feed_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's try writes its article, then its state database goes away (a PostgreSQL restart)
    before the claim is recorded as stored: the claim is released and the other source takes the
    story. The retry finds the story held by the other source: its own copy, left in the store by
    the failed try, is deleted, so the story is stored once (found by the cluster fault test)."""
    shared = str(tmp_path / "shared" / "ingest-state.sqlite")
    agency, paper = feed(feed_server, "agency", [story()]), feed(feed_server, "paper", [syndicated(story())])

    def state_gone(self: Any, docs: Any) -> dict[str, set[str]]:
        raise ConnectionError("the ingest state went away")

    with monkeypatch.context() as patched:
        patched.setattr(NearDuplicateClaims, "stored", state_gone)
        with worker(shared, tmp_path / "worker-1", store, embedder) as first:
            failed = run_source(agency, first)
    assert failed.status == "failed" and "went away" in str(failed.error), failed
    assert set(stored(store)) == {feed_server.url("/wire-story.html")}  # the failed try's copy is there
    with worker(shared, tmp_path / "worker-2", store, embedder) as second:
        taken = run_source(paper, second)
    with worker(shared, tmp_path / "worker-1", store, embedder) as first:
        retry = run_source(agency, first)
    assert (taken.new, retry.new, retry.duplicates) == (1, 0, 1)
    assert stored(store) == {feed_server.url("/paper-wire-story.html"): (taken.chunks_written, {"agency"})}
