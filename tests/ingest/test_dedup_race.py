"""The near-duplicate race, made to happen (#13 "Must show"): two OS processes, each a worker with a
home of its own and the one shared ingestion state, ingest two sources carrying the same story at
the same moment, 50 times. Every time the story is stored exactly once in the real Weaviate, and
its ``also_sources`` names the other source.

Both workers enter planning together (a barrier just before the pipeline's plan step), so their
claims meet in the shared state. In every other round they also wait for each other after
planning, so the loser decides while the winner's story is claimed and not yet written: the
winner then has to name the loser's source itself. Before shared claims, each worker only saw the
signatures saved before its task started, and the story was stored twice (in the first round).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import queue
import threading
import traceback
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from newsrag.core.settings import IngestSettings, Settings
from newsrag.ingest.context import IngestContext
from newsrag.ingest.fetch import FetchSettings
from newsrag.ingest.registry import parse_source
from tests.ingest.feedgen import Item, item, rss

pytestmark = pytest.mark.integration

ROUNDS = 50
WAIT = 120  # seconds a barrier waits before the round is called broken (a worker died or hung)
SOURCES = ("agency", "paper")


class HashEmbedder:
    """Deterministic 8-dimensional vectors and a word-level tokenizer: a worker process starts in
    a moment and embeds for nothing, as the race is about claims, not vectors."""

    model_id = "test/hash8"
    dimensions = 8

    @cached_property
    def tokenizer(self) -> Any:
        from tokenizers import Tokenizer, models, pre_tokenizers

        backend = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
        backend.pre_tokenizer = pre_tokenizers.Whitespace()
        return SimpleNamespace(backend_tokenizer=backend)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        raw = [np.frombuffer(hashlib.blake2b(t.encode(), digest_size=32).digest(), dtype=np.uint8)[:8] for t in texts]
        vectors = np.array(raw, dtype=np.float32).reshape(len(texts), self.dimensions) + 1.0
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def close(self) -> None:
        pass


def story(n: int) -> Item:
    return item(f"story-{n}", 7000 + n)


def copy_of(original: Item) -> Item:
    """The wire story as a newspaper runs it: its own title and URL, the agency's credit line."""
    return Item(slug=f"paper-{original.slug}", title="Paper: " + original.title,
                paras=(*original.paras, "Reporting by the Wire agency."), published=original.published)


@dataclass(frozen=True)
class Worker:
    """What a worker process needs: plain values, so it pickles into a spawned interpreter."""

    source_id: str
    feed_url: str
    collection: str
    state: str  # the shared ingestion state: a SQLite path or a postgresql:// URL
    home: str  # this worker's own (empty) home


def context(worker: Worker, store: Any, embedder: Any) -> IngestContext:
    return IngestContext(IngestSettings(state_file=worker.state), store=store, embedder=embedder,
                         home=Path(worker.home), fetch_settings=FetchSettings(allow_private=True, retries=0))


def race_worker(worker: Worker, start: Any, planning: Any, results: Any) -> None:
    """One worker: every round, one task (a fresh context) ingests its source, its plan step in
    step with the other worker's. Reports (round, source, report) or (round, source, error)."""
    from newsrag.ingest import pipeline
    from newsrag.ingest.pipeline import run_source
    from newsrag.store.weaviate import WeaviateStore

    plan, current = pipeline._plan, {"round": -1}

    def plan_together(*args: Any, **kwargs: Any) -> Any:
        planning.wait(WAIT)  # both workers compare with the store and claim at the same moment
        done = plan(*args, **kwargs)
        if current["round"] % 2:
            planning.wait(WAIT)  # neither writes before both decided
        return done

    pipeline._plan = plan_together  # type: ignore[assignment]  # this process only
    store = WeaviateStore(Settings(), collection=worker.collection)
    spec = parse_source({"id": worker.source_id, "type": "feed", "url": worker.feed_url})
    try:
        for n in range(ROUNDS):
            current["round"] = n
            start.wait(WAIT)
            with context(worker, store, HashEmbedder()) as ctx:
                report = run_source(spec, ctx)
            results.put((n, worker.source_id, report.model_dump(mode="json")))
    except BaseException:
        results.put((-1, worker.source_id, traceback.format_exc()))
        start.abort()
        planning.abort()
        raise
    finally:
        store.close()


def stored_by_url(store: Any) -> dict[str, dict[str, Any]]:
    """url -> {objects, sources, also}: what the store holds, counted object by object."""
    found: dict[str, dict[str, Any]] = defaultdict(lambda: {"objects": 0, "sources": set(), "also": set()})
    for _, p in store.iter_properties(["url", "source_id", "also_sources"]):
        doc = found[p["url"]]
        doc["objects"] += 1
        doc["sources"].add(p["source_id"])
        doc["also"] |= set(p.get("also_sources") or [])
    return dict(found)


def begin(start: Any, results: Any) -> None:
    """Start a round; when a worker broke the barrier, fail with what it reported."""
    try:
        start.wait(WAIT)
    except threading.BrokenBarrierError:
        pytest.fail("a worker failed:\n" + "\n".join(str(results.get(timeout=5)) for _ in range(results.qsize())))


def collect(results: Any, n: int, workers: list[Any]) -> dict[str, dict[str, Any]]:
    """The two reports of round ``n``; a worker's error fails the test with its traceback."""
    reports: dict[str, dict[str, Any]] = {}
    while len(reports) < len(SOURCES):
        try:
            got, source_id, report = results.get(timeout=1)
        except queue.Empty:
            dead = [w.exitcode for w in workers if not w.is_alive()]
            assert not dead, f"a worker exited ({dead}) in round {n}"
            continue
        assert got == n, f"worker {source_id} failed in round {n}:\n{report}"
        reports[source_id] = report
    return reports


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("postgres")])
def shared_state(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The one ingestion state both workers use: a SQLite file on a disk both see, or PostgreSQL."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "shared" / "ingest-state.sqlite")


def test_two_workers_ingesting_one_story_at_the_same_moment_store_it_once(
        store: Any, feed_server: Any, shared_state: str, tmp_path: Path) -> None:
    feeds = {"agency": "/agency.xml", "paper": "/paper.xml"}
    workers = [Worker(s, feed_server.url(feeds[s]), store.name, shared_state, str(tmp_path / f"home-{s}"))
               for s in SOURCES]
    with context(workers[0], store, HashEmbedder()) as ctx:
        ctx.begin_source()  # the collection exists before the workers race for stories, not for it
    spawn = multiprocessing.get_context("spawn")  # real, separate interpreters (no forked state)
    start, planning, results = spawn.Barrier(len(SOURCES) + 1), spawn.Barrier(len(SOURCES)), spawn.Queue()
    procs = [spawn.Process(target=race_worker, args=(w, start, planning, results), daemon=True) for w in workers]
    for p in procs:
        p.start()
    try:
        for n in range(ROUNDS):
            original = story(n)
            feed_server.routes[feeds["agency"]] = (rss(feed_server.base, [original]), "application/rss+xml")
            feed_server.routes[feeds["paper"]] = (rss(feed_server.base, [copy_of(original)]), "application/rss+xml")
            begin(start, results)
            reports = collect(results, n, procs)
            check_round(n, store, feed_server, reports)
    finally:
        start.abort()
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0, 0]


def check_round(n: int, store: Any, feed_server: Any, reports: dict[str, dict[str, Any]]) -> None:
    """The story of round ``n`` is stored exactly once: one source's document, every chunk of it,
    none of the other's, whose source its also_sources name."""
    urls = {"agency": feed_server.url(f"/story-{n}.html"), "paper": feed_server.url(f"/paper-story-{n}.html")}
    held = stored_by_url(store)
    stored = [s for s, url in urls.items() if url in held]
    assert len(stored) == 1, f"round {n}: the story is stored by {stored or 'nobody'}"
    [winner] = stored
    [loser] = [s for s in SOURCES if s != winner]
    doc = held[urls[winner]]
    assert (reports[winner]["status"], reports[winner]["new"], reports[winner]["duplicates"]) == ("ok", 1, 0)
    assert (reports[loser]["status"], reports[loser]["new"], reports[loser]["duplicates"]) == ("ok", 0, 1)
    assert doc["objects"] == reports[winner]["chunks_written"] > 0, f"round {n}"
    assert (doc["sources"], doc["also"]) == ({winner}, {loser}), f"round {n}"
    assert sum(d["objects"] for d in held.values()) == store.count()  # nothing else crept in

