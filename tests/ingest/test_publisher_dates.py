"""Dates shown in the publisher's own offset, stored and filtered in UTC (#20, item 10): an article
published "Tue, 08 Sep 2026 22:15 -0400" is 2026-09-09T02:15Z in the store and 8 September on screen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from newsrag.ingest.normalize import parse_date, utc_offset_minutes
from newsrag.ingest.parse import parse_feed
from newsrag.retrieval.context import local_time

EDT = timezone(timedelta(hours=-4))
RFC822 = "Tue, 08 Sep 2026 22:15:00 -0400"


@pytest.mark.unit
@pytest.mark.parametrize(("value", "offset"), [
    (RFC822, -240), ("2026-09-08T22:15:00+05:30", 330), ("2026-09-08T22:15:00Z", 0),
    ("Tue, 08 Sep 2026 22:15:00 EDT", -240), ("2026-09-08", None), (1_788_000_000, None), (None, None),
])
def test_the_written_offset_is_kept(value: object, offset: int | None) -> None:
    assert utc_offset_minutes(value) == offset


@pytest.mark.unit
def test_stored_in_utc_shown_on_the_publishers_day() -> None:
    utc = parse_date(RFC822)
    assert utc == datetime(2026, 9, 9, 2, 15, tzinfo=UTC)
    shown = local_time(utc, utc_offset_minutes(RFC822))
    assert shown is not None and shown.date().isoformat() == "2026-09-08" and shown == utc
    assert local_time(utc, None) == utc  # no offset given: UTC
    assert local_time(utc, 99_999) == utc  # nonsense offsets are ignored


@pytest.mark.unit
def test_a_feed_item_carries_its_offset() -> None:
    feed = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>Late vote</title>'
            b"<link>https://metro.test/a.html</link><description>The council voted late on Tuesday night."
            b"</description><pubDate>" + RFC822.encode() + b"</pubDate></item></channel></rss>")
    article = parse_feed(feed, source_id="metro", feed_url="https://metro.test/feed.xml").articles[0]
    assert article.published_at == datetime(2026, 9, 9, 2, 15, tzinfo=UTC)
    assert article.published_offset == -240


@pytest.mark.integration
def test_answers_cite_the_publishers_day(ctx: Any, store: Any, feed_server: Any, embedder: Any) -> None:
    from newsrag.ingest.pipeline import run_source
    from newsrag.retrieval.answer import Answerer
    from newsrag.retrieval.generators.extractive import ExtractiveGenerator
    from newsrag.retrieval.search import Searcher
    from tests.ingest.feedgen import Item, rss

    late = Item("late-vote", "Council approves ferry budget in late vote",
                ("The city council approved the ferry budget of 48 million dollars in a late vote on Tuesday.",),
                published=datetime(2026, 9, 8, 22, 15, tzinfo=EDT))
    feed_server.routes["/feed.xml"] = (rss(feed_server.base, [late]), "application/rss+xml")
    report = run_source({"id": "metro", "type": "feed", "url": feed_server.url("/feed.xml")}, ctx)
    assert report.status == "ok" and report.chunks_written == 1
    stored = next(p for _, p in store.iter_properties(["published_at", "published_offset"]))
    assert stored["published_offset"] == -240
    assert stored["published_at"].astimezone(UTC) == datetime(2026, 9, 9, 2, 15, tzinfo=UTC)
    answer = Answerer(Searcher(store, embedder), ExtractiveGenerator(embedder)).ask(
        "How large is the ferry budget the council approved?")
    assert answer.sources and answer.sources[0].published_at is not None
    assert answer.sources[0].published_at.date().isoformat() == "2026-09-08"
    assert answer.model_dump(mode="json")["sources"][0]["published_at"].startswith("2026-09-08T22:15:00-04:00")
