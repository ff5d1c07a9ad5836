"""The pipeline against the real Weaviate, on feeds served over loopback: new, changed and
unchanged articles, re-runs, stale chunks, retention, near-duplicates and exact counts."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from newsrag.core.settings import Settings
from newsrag.ingest.context import IngestContext
from newsrag.ingest.models import Article
from newsrag.ingest.pipeline import run_source
from newsrag.ingest.registry import parse_source
from newsrag.store.weaviate import WeaviateStore
from tests.ingest.feedgen import item, rss

pytestmark = pytest.mark.integration


def feed_spec(server: Any, path: str = "/feed.xml", **kw: Any) -> Any:
    return parse_source({"id": kw.pop("id", "metro"), "type": "feed", "url": server.url(path), **kw})


def serve(server: Any, items: list[Any], path: str = "/feed.xml") -> None:
    server.routes[path] = (rss(server.base, items), "application/rss+xml")


def stored_docs(store: WeaviateStore) -> dict[str, dict[str, Any]]:
    """doc_id -> {hashes, indexes, url, also}: the store's contents, grouped."""
    docs: dict[str, dict[str, Any]] = defaultdict(lambda: {"hashes": set(), "indexes": [], "also": set()})
    for _, p in store.iter_properties(["doc_id", "content_hash", "chunk_index", "url", "also_sources"]):
        d = docs[p["doc_id"]]
        d["hashes"].add(p["content_hash"])
        d["indexes"].append(p["chunk_index"])
        d["url"] = p["url"]
        d["also"] |= set(p.get("also_sources") or [])
    return dict(docs)


def expected_chunks(ctx: IngestContext, server: Any, it: Any) -> int:
    art = Article(source_id="x", url=server.url(f"/{it.slug}.html"), title=it.title, text=it.text)
    return len(ctx.chunker(None).split(art))


def assert_consistent(store: WeaviateStore) -> dict[str, dict[str, Any]]:
    docs = stored_docs(store)
    for doc_id, d in docs.items():
        assert len(d["hashes"]) == 1, f"{doc_id} has stale versions {d['hashes']}"
        assert sorted(d["indexes"]) == list(range(len(d["indexes"]))), f"{doc_id} chunk indexes have gaps"
    return docs


def test_new_unchanged_changed_and_exact_counts(ctx: IngestContext, store: WeaviateStore, feed_server: Any) -> None:
    items = [item("rail-vote", 1), item("storm", 2), item("budget", 3)]
    serve(feed_server, items)
    spec = feed_spec(feed_server)
    first = run_source(spec, ctx)
    want = sum(expected_chunks(ctx, feed_server, it) for it in items)
    assert (first.status, first.new, first.changed, first.unchanged) == ("ok", 3, 0, 0)
    assert first.chunks_embedded == first.chunks_written == want == store.count()

    second = run_source(spec, ctx)  # same bytes: one conditional GET, nothing else
    assert second.status == "not_modified"
    assert (second.chunks_embedded, second.chunks_written, second.chunks_deleted) == (0, 0, 0)
    assert store.count() == want

    ctx.state.forget_validators(spec.id, spec.url)  # full re-read of an unchanged feed
    third = run_source(spec, ctx)
    assert (third.unchanged, third.new, third.changed, third.chunks_embedded, third.chunks_written) == (3, 0, 0, 0, 0)

    changed = items[1].with_paras([*items[1].paras[:2], "A completely new closing paragraph about the storm "
                                   "recovery effort, with volunteers clearing the harbor on Friday morning."])
    serve(feed_server, [items[0], changed, items[2], item("ferry", 4)])
    fourth = run_source(spec, ctx)
    assert (fourth.new, fourth.changed, fourth.unchanged) == (1, 1, 2)
    old_storm, new_storm = expected_chunks(ctx, feed_server, items[1]), expected_chunks(ctx, feed_server, changed)
    assert fourth.chunks_deleted == old_storm
    assert fourth.chunks_written == new_storm + expected_chunks(ctx, feed_server, item("ferry", 4))
    assert fourth.chunks_cached >= 1  # unchanged paragraphs of the changed article are not re-embedded
    docs = assert_consistent(store)
    assert store.count() == want - old_storm + fourth.chunks_written
    assert len(docs) == 4


def test_interrupted_replace_is_repaired_by_the_next_run(ctx: IngestContext, store: WeaviateStore,
                                                         feed_server: Any) -> None:
    old = item("harbor", 5)
    serve(feed_server, [old])
    spec = feed_spec(feed_server)
    run_source(spec, ctx)
    new = old.with_paras(["A rewritten first paragraph describing the harbor dredging contract in detail "
                          "and the companies that bid for it this autumn.", *old.paras[1:]])
    serve(feed_server, [new])
    # Simulate a crash after the new chunks were written but before the old ones were deleted.
    original = store.delete_doc_except
    store.delete_doc_except = lambda *a: (_ for _ in ()).throw(RuntimeError("crash"))  # type: ignore[method-assign]
    crashed = run_source(spec, ctx)
    assert crashed.status == "failed" and "RuntimeError: crash" in crashed.error
    store.delete_doc_except = original  # type: ignore[method-assign]
    hashes = next(iter(stored_docs(store).values()))["hashes"]
    assert len(hashes) == 2  # extra old chunks, never missing ones
    ctx.state.forget_validators(spec.id, spec.url)
    repaired = run_source(spec, ctx)
    assert repaired.unchanged == 1 and repaired.chunks_embedded == 0
    assert_consistent(store)
    assert store.count() == expected_chunks(ctx, feed_server, new)


def test_retention_deletes_what_is_due_and_nothing_else(ctx: IngestContext, store: WeaviateStore,
                                                        feed_server: Any) -> None:
    now = datetime.now(UTC)
    old = [item("old-a", 11, published=now - timedelta(days=40)), item("old-b", 12, published=now - timedelta(days=31))]
    fresh = [item("fresh-a", 13, published=now - timedelta(days=2)), item("undated", 14, published=None)]
    serve(feed_server, old + fresh)
    serve(feed_server, [item("other-old", 15, published=now - timedelta(days=90))], "/other.xml")
    run_source(feed_spec(feed_server), ctx)
    run_source(feed_spec(feed_server, "/other.xml", id="other"), ctx)
    before = {d["url"].rsplit("/", 1)[-1]: len(d["indexes"]) for d in stored_docs(store).values()}
    spec = feed_spec(feed_server, max_age_days=30)
    report = run_source(spec, ctx)
    assert report.status == "not_modified"  # retention applies even when the feed did not change
    after = {d["url"].rsplit("/", 1)[-1] for d in stored_docs(store).values()}
    assert after == {"fresh-a.html", "undated.html", "other-old.html"}
    assert report.chunks_deleted == before["old-a.html"] + before["old-b.html"]
    ctx.state.forget_validators(spec.id, spec.url)
    reread = run_source(spec, ctx)
    assert (reread.skipped, reread.unchanged, reread.chunks_written, reread.chunks_deleted) == (2, 2, 0, 0)


def test_near_duplicates_are_stored_once_and_the_other_source_is_recorded(
        ctx: IngestContext, store: WeaviateStore, feed_server: Any) -> None:
    story = item("wire-story", 21)
    copy = story.with_paras(["PORT CALDER (Wire) — " + story.paras[0], *story.paras[1:],
                             "Reporting by A. Writer; editing by B. Editor."])
    copy = type(copy)(slug="syndicated", title="Syndicated: " + story.title, paras=copy.paras)
    serve(feed_server, [story, item("local-a", 22)], "/a.xml")
    serve(feed_server, [copy, item("local-b", 23)], "/b.xml")
    a = run_source(feed_spec(feed_server, "/a.xml", id="agency"), ctx)
    b = run_source(feed_spec(feed_server, "/b.xml", id="paper"), ctx)
    assert (a.new, b.new, b.duplicates) == (2, 1, 1)
    docs = stored_docs(store)
    assert len(docs) == 3
    wire = next(d for d in docs.values() if d["url"].endswith("/wire-story.html"))
    assert wire["also"] == {"paper"}
    assert store.count() == a.chunks_written + b.chunks_written


def test_rerun_after_a_retry_leaves_what_one_clean_run_leaves(ctx: IngestContext, store: WeaviateStore,
                                                             feed_server: Any) -> None:
    items = [item("a", 31), item("b", 32)]
    serve(feed_server, items)
    spec = feed_spec(feed_server)
    run_source(spec, ctx)
    snapshot = stored_docs(store)
    ctx.state.forget_validators(spec.id, spec.url)
    again = run_source(spec, ctx)
    assert again.chunks_written == 0 and stored_docs(store) == snapshot


@pytest.mark.parametrize("overlap", [True, False])
def test_write_groups_land_the_same_with_or_without_overlapped_upserts(ctx: IngestContext, store: WeaviateStore,
                                                                       feed_server: Any, overlap: bool) -> None:
    ctx.settings = ctx.settings.model_copy(update={"write_group": 2, "overlap_writes": overlap})
    items = [item(s, i) for i, s in enumerate(["rail-vote", "storm", "budget", "ferry", "harbor"], 1)]
    serve(feed_server, items)
    spec = feed_spec(feed_server)
    first = run_source(spec, ctx)
    want = sum(expected_chunks(ctx, feed_server, it) for it in items)
    assert (first.status, first.new, first.chunks_written) == ("ok", 5, want) and store.count() == want
    changed = [it.with_paras([*it.paras[:1], f"A new closing paragraph number {n} about the harbor ferry "
                              "schedule, announced by the port authority on Monday."]) for n, it in enumerate(items)]
    serve(feed_server, changed)
    second = run_source(spec, ctx)
    assert (second.changed, second.chunks_deleted) == (5, want)  # every old version deleted after its write
    docs = assert_consistent(store)
    assert len(docs) == 5 and store.count() == sum(expected_chunks(ctx, feed_server, it) for it in changed)


def test_an_embedding_failure_mid_run_keeps_the_groups_already_written(ctx: IngestContext, store: WeaviateStore,
                                                                      feed_server: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ctx.settings = ctx.settings.model_copy(update={"write_group": 2, "overlap_writes": True})
    items = [item(s, i) for i, s in enumerate(["rail-vote", "storm", "budget", "ferry"], 1)]
    serve(feed_server, items)
    spec = feed_spec(feed_server)
    real, calls = ctx.embedder.embed_documents, []

    def failing_second_group(texts: list[str]) -> Any:
        calls.append(len(texts))
        if len(calls) == 2:
            raise RuntimeError("embedder crashed")
        return real(texts)

    monkeypatch.setattr(ctx.embedder, "embed_documents", failing_second_group)
    first = run_source(spec, ctx)
    group_one = sum(expected_chunks(ctx, feed_server, it) for it in items[:2])
    assert first.status == "failed" and "embedder crashed" in (first.error or "")
    assert first.chunks_written == group_one == store.count()  # the in-flight upsert was waited for
    monkeypatch.setattr(ctx.embedder, "embed_documents", real)
    second = run_source(spec, ctx)
    assert (second.status, second.unchanged, second.new) == ("ok", 2, 2)
    assert len(assert_consistent(store)) == 4


def syndicated(story: Any) -> Any:
    copy = story.with_paras(["PORT CALDER (Wire) — " + story.paras[0], *story.paras[1:],
                             "Reporting by A. Writer; editing by B. Editor."])
    return type(copy)(slug="syndicated", title="Syndicated: " + story.title, paras=copy.paras,
                      published=copy.published)


def test_a_copy_of_a_story_retention_deleted_is_stored(ctx: IngestContext, store: WeaviateStore,
                                                       feed_server: Any) -> None:
    now = datetime.now(UTC)
    story = item("wire-story", 41, published=now - timedelta(days=40))
    serve(feed_server, [story], "/a.xml")
    agency = feed_spec(feed_server, "/a.xml", id="agency", max_age_days=30)
    assert run_source(feed_spec(feed_server, "/a.xml", id="agency"), ctx).new == 1
    assert run_source(agency, ctx).chunks_deleted > 0 and store.count() == 0  # retention: the story is gone
    copy = syndicated(item("wire-story", 41, published=now - timedelta(days=1)))
    serve(feed_server, [copy], "/b.xml")
    paper = run_source(feed_spec(feed_server, "/b.xml", id="paper"), ctx)
    assert (paper.new, paper.duplicates) == (1, 0)  # the only copy left is stored, not dropped
    assert store.count() == paper.chunks_written > 0
    assert "agency" not in ctx.near_dups.sources().values()


def test_a_signature_whose_document_was_deleted_no_longer_drops_copies(ctx: IngestContext, store: WeaviateStore,
                                                                       feed_server: Any) -> None:
    story = item("wire-story", 42)
    serve(feed_server, [story], "/a.xml")
    run_source(feed_spec(feed_server, "/a.xml", id="agency"), ctx)
    store.delete_docs(list(stored_docs(store)))  # deleted behind the pipeline's back
    serve(feed_server, [syndicated(story)], "/b.xml")
    paper = run_source(feed_spec(feed_server, "/b.xml", id="paper"), ctx)
    assert (paper.new, paper.duplicates, store.count() > 0) == (1, 0, True)
    assert {row[0] for row in ctx.state.signatures()} == set(stored_docs(store))  # the stale one is gone


def test_a_second_collection_sharing_the_state_file_is_filled(ctx: IngestContext, store: WeaviateStore,
                                                              feed_server: Any, embedder: Any,
                                                              tmp_path: Any) -> None:
    from newsrag.ingest.fetch import FetchSettings

    serve(feed_server, [item("a", 51), item("b", 52)])
    spec = feed_spec(feed_server)
    first = run_source(spec, ctx)
    other = WeaviateStore(Settings(), collection=store.name + "Other")
    try:
        with IngestContext(ctx.settings, store=other, embedder=embedder, home=tmp_path,
                           fetch_settings=FetchSettings(allow_private=True, retries=0)) as second_ctx:
            second = run_source(spec, second_ctx)  # same feed, same ETag, same state file
            assert (second.status, second.new, second.chunks_written) == ("ok", 2, first.chunks_written)
            assert run_source(spec, second_ctx).status == "not_modified"  # its own validators now
        assert other.count() == store.count() == first.chunks_written
    finally:
        if other.exists():
            other.drop()
        other.close()


def test_writes_overlap_embedding_only_against_a_remote_weaviate(ctx: IngestContext, store: WeaviateStore) -> None:
    from newsrag.core.settings import IngestSettings, WeaviateSettings

    assert store.settings.url is None and ctx.overlap_writes is False  # the embedded server shares our cores
    remote = WeaviateStore(settings=WeaviateSettings(url="http://weaviate.internal:8080"))  # never connected
    assert IngestContext(IngestSettings(), store=remote).overlap_writes is True
    assert IngestContext(IngestSettings(overlap_writes=False), store=remote).overlap_writes is False
    assert IngestContext(IngestSettings(overlap_writes=True), store=store).overlap_writes is True
