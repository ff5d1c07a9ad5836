"""Hostile and broken input, end to end: each case is a named per-item or per-source error, nothing
crashes, and what was stored before is intact."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from newsrag.core.settings import Settings
from newsrag.ingest.context import IngestContext
from newsrag.ingest.fetch import FetchSettings
from newsrag.ingest.pipeline import run_source
from newsrag.ingest.registry import parse_source
from newsrag.store.weaviate import WeaviateStore
from tests.conftest import FIXTURES
from tests.ingest.feedgen import item, paragraphs, rss

pytestmark = pytest.mark.integration

FEEDS = FIXTURES / "feeds"


@pytest.fixture
def seeded(store: WeaviateStore, embedder: Any, tmp_path: Path, feed_server: Any) -> Any:
    """A store holding one good source; returns (ctx factory, stored count). A context's root is
    read from the environment when it is made (a test may set a limit first, as an edge would)."""
    def make(allow_private: bool = True, max_bytes: int = 10_000_000) -> IngestContext:
        return IngestContext(Settings(), store=store, embedder=embedder, home=tmp_path,
                             fetch_settings=FetchSettings(allow_private=allow_private, retries=0, max_bytes=max_bytes))
    feed_server.routes["/good.xml"] = (rss(feed_server.base, [item("kept-a", 51), item("kept-b", 52)]),
                                       "application/rss+xml")
    with make() as ctx:
        report = run_source(parse_source({"id": "good", "type": "feed", "url": feed_server.url("/good.xml")}), ctx)
    assert report.status == "ok"
    return make, store.count()


def run_bad(make: Any, feed_server: Any, body: bytes | None, content_type: str = "application/rss+xml",
            source_id: str = "good", **ctx_kw: Any) -> Any:
    if body is not None:
        feed_server.routes["/bad.xml"] = (body, content_type)
    spec = parse_source({"id": source_id, "type": "feed", "url": feed_server.url("/bad.xml")})
    with make(**ctx_kw) as ctx:
        return run_source(spec, ctx)


@pytest.mark.parametrize(("fixture", "content_type", "fragment"), [
    ("malformed.xml", "application/rss+xml", "malformed"),
    ("entity_bomb.xml", "application/rss+xml", "entit"),
    ("xxe.xml", "application/xml", "entit"),
    ("html_page.xml", "text/html", "HTML"),
])
def test_broken_feeds_fail_the_source_with_a_named_reason(seeded: Any, feed_server: Any, store: WeaviateStore,
                                                          fixture: str, content_type: str, fragment: str) -> None:
    make, before = seeded
    report = run_bad(make, feed_server, (FEEDS / fixture).read_bytes(), content_type)
    assert report.status == "failed"
    assert "source 'good'" in report.error and fragment in report.error
    assert store.count() == before


def test_non_utf8_bytes_are_decoded_not_fatal(seeded: Any, feed_server: Any, store: WeaviateStore) -> None:
    make, before = seeded
    report = run_bad(make, feed_server, (FEEDS / "not_utf8.xml").read_bytes(), source_id="latin")
    assert report.status == "ok" and report.new == 2
    texts = [p["text"] for _, p in store.iter_properties(["text", "source_id"]) if p["source_id"] == "latin"]
    assert texts and all("\ufffd" not in t for t in texts)
    assert store.count() == before + report.chunks_written


def test_odd_items_fail_one_by_one(seeded: Any, feed_server: Any, store: WeaviateStore) -> None:
    make, before = seeded
    report = run_bad(make, feed_server, (FEEDS / "odd_items.xml").read_bytes(), source_id="odd")
    reasons = [f.reason for f in report.failed]
    assert report.status == "partial"
    assert any("missing link" in r for r in reasons) and any("invalid link" in r for r in reasons)
    stored = {p["url"]: p["published_at"] for _, p in store.iter_properties(["url", "published_at", "source_id"])
              if p["source_id"] == "odd"}
    assert len(stored) == report.new > 0
    assert None in stored.values()  # an unparseable date is unknown, never "now"
    assert store.count() == before + report.chunks_written


def test_duplicate_and_missing_links_fail_those_items_only(seeded: Any, feed_server: Any,
                                                          store: WeaviateStore) -> None:
    make, before = seeded
    first, twin = item("twin", 61), item("twin-copy", 62, link=feed_server.url("/twin.html"))
    body = rss(feed_server.base, [first, twin, item("no-link", 63, link=""), item("fine", 64)])
    report = run_bad(make, feed_server, body, source_id="dups")
    assert report.new == 2 and report.status == "partial"
    assert sorted(f.reason.split(" (")[0] for f in report.failed) == ["duplicate link", "missing link"]
    assert store.count() == before + report.chunks_written


def test_empty_feed_is_not_an_error(seeded: Any, feed_server: Any, store: WeaviateStore) -> None:
    make, before = seeded
    report = run_bad(make, feed_server, (FEEDS / "empty.xml").read_bytes(), source_id="empty")
    assert (report.status, report.items_seen, report.chunks_written) == ("ok", 0, 0)
    assert store.count() == before


def test_oversized_response_fails_the_source(seeded: Any, feed_server: Any, store: WeaviateStore) -> None:
    make, before = seeded

    def fifty_megabytes(h: Any) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/rss+xml")
        h.end_headers()
        chunk = b"<!-- " + b"x" * 65_000 + b" -->"
        try:
            for _ in range(50_000_000 // len(chunk)):
                h.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client hung up at the cap, as it should

    feed_server.routes["/bad.xml"] = fifty_megabytes
    report = run_bad(make, feed_server, None, max_bytes=1_000_000)
    assert report.status == "failed" and "exceeds" in report.error and "MB" in report.error
    assert store.count() == before


@pytest.mark.parametrize("target", ["http://127.0.0.1:9/feed.xml", "http://10.0.0.1/feed.xml"])
def test_redirect_to_private_address_is_refused_without_the_allow_setting(
        seeded: Any, feed_server: Any, store: WeaviateStore, target: str) -> None:
    make, before = seeded
    # The public hop is simulated: the guard exempts exactly the first URL; everything after is checked.
    from newsrag.ingest import fetch as fetch_mod

    def redirect(h: Any) -> None:
        h.send_response(302)
        h.send_header("Location", target)
        h.end_headers()

    feed_server.routes["/bad.xml"] = redirect
    first = feed_server.url("/bad.xml")
    real_check = fetch_mod.check_url

    def check_all_but_first(url: str, allow_private: bool, *, source_id: str = "") -> Any:
        return None if url == first else real_check(url, allow_private, source_id=source_id)  # pins

    fetch_mod.check_url = check_all_but_first
    try:
        report = run_bad(make, feed_server, None, allow_private=False)
    finally:
        fetch_mod.check_url = real_check
    assert report.status == "failed" and "refused" in report.error and target.split("/")[2].split(":")[0] in report.error
    assert store.count() == before


def test_private_feed_url_is_refused_without_the_allow_setting(seeded: Any, feed_server: Any,
                                                               store: WeaviateStore) -> None:
    make, before = seeded
    report = run_bad(make, feed_server, rss(feed_server.base, [item("x", 9)]), allow_private=False)
    assert report.status == "failed" and "refused" in report.error and "127.0.0.1" in report.error
    assert store.count() == before


# --- issue 11: hostile feeds (defect 4) and field limits (defect 5) ----------------------------


def test_a_bad_character_reference_fails_one_item_not_the_feed(seeded: Any, feed_server: Any,
                                                                store: WeaviateStore) -> None:
    make, before = seeded
    body = rss(feed_server.base, [item("ref-a", 71), item("ref-b", 72), item("ref-c", 73)])
    body = body.replace(b"<title>Ref B report</title>", b"<title>Ref &#xD800; B</title>")
    assert b"&#xD800;" in body
    report = run_bad(make, feed_server, body, source_id="refs")
    assert (report.status, report.new, report.error) == ("partial", 2, None)  # was "internal error"
    assert [f.item for f in report.failed] == [feed_server.url("/ref-b.html")]
    assert "UnicodeEncodeError" in report.failed[0].reason
    assert store.count() == before + report.chunks_written


def test_a_five_million_character_title_is_stored_bounded(seeded: Any, feed_server: Any,
                                                           store: WeaviateStore) -> None:
    make, before = seeded
    huge = replace(item("huge-title", 81), title="Headline " * 555_555 + "Final")
    assert len(huge.title) == 5_000_000
    report = run_bad(make, feed_server, rss(feed_server.base, [huge, item("normal", 82)]), source_id="huge")
    assert (report.status, report.new, report.failed) == ("ok", 2, [])
    titles = {p["title"] for _, p in store.iter_properties(["title", "source_id"]) if p["source_id"] == "huge"}
    long_title = max(titles, key=len)
    assert len(long_title) <= 500 and long_title.startswith("Headline Headline") and long_title.endswith("…")
    assert [(w.item, w.reason) for w in report.warnings] == [
        (feed_server.url("/huge-title.html"), f"title cut from 5,000,000 to {len(long_title)} characters")
    ]
    assert len(report.model_dump_json()) < 5_000  # the report that travels through XCom stays small
    assert store.count() == before + report.chunks_written


def test_chunks_per_article_are_capped_with_a_warning(seeded: Any, feed_server: Any, store: WeaviateStore,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    make, before = seeded
    monkeypatch.setenv("NEWSRAG_INGEST_MAX_CHUNKS_PER_ARTICLE", "2")
    long = item("long-read", 91).with_paras(paragraphs(91, n=12))
    report = run_bad(make, feed_server, rss(feed_server.base, [long]), source_id="long")
    assert report.status == "ok" and len(report.warnings) == 1
    assert report.warnings[0].reason.startswith("chunks cut from ") and report.warnings[0].reason.endswith(
        " to 2 (the rest of the text is not indexed)")
    indexes = sorted(p["chunk_index"] for _, p in store.iter_properties(["chunk_index", "source_id"])
                     if p["source_id"] == "long")
    assert indexes == [0, 1] and report.chunks_written == 2
    assert store.count() == before + 2


def test_an_over_long_url_fails_its_item(seeded: Any, feed_server: Any, store: WeaviateStore) -> None:
    make, before = seeded
    long_link = feed_server.url("/story.html?id=" + "7" * 3000)
    body = rss(feed_server.base, [item("long-link", 95, link=long_link), item("short-link", 96)])
    report = run_bad(make, feed_server, body, source_id="links")
    assert (report.status, report.new) == ("partial", 1)
    assert [f.reason.split(";")[0] for f in report.failed] == [
        f"URL is {len(long_link):,} characters, over the limit of 2,048"]
    assert len(report.failed[0].item) <= 500
    assert store.count() == before + report.chunks_written
