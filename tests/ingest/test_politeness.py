"""Per-host politeness (issue 12, item 8): a source's ``http.per_host_delay`` and
``http.per_host_concurrency`` hold for every request it makes (feed, sitemap and article pages,
redirects), across threads, and never outlast its ``http.deadline``. Every server is on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from html import escape
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from newsrag.ingest.fetch import Deadline, DeadlineExceeded, Fetcher, FetchSettings
from newsrag.ingest.registry import HttpOptions, parse_source
from newsrag.ingest.sources import Collected, SourceContext, get_source
from newsrag.ingest.state import IngestState
from tests.conftest import FeedServer
from tests.ingest.feedgen import paragraphs

pytestmark = pytest.mark.unit

DELAY = 0.8
# How much later than its turn a request may reach the server (connect, send, a busy machine: the
# previous request's arrival can be late by as much, which shortens the gap seen): the spacing
# checked is the delay less this, a check of the spacing, not a performance bound. Without the
# delay the gaps are a few milliseconds, so half the delay still tells the two apart.
SLACK = 0.4
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
HTML = "text/html; charset=utf-8"


# ------------------------------------------------------------------ a recording server


@dataclass
class Visits:
    """What the server saw: each request's path and arrival time, and the most at once."""

    arrivals: list[tuple[str, float]] = field(default_factory=list)
    in_flight: int = 0
    most: int = 0
    busy: threading.Event = field(default_factory=threading.Event)  # set once a request holds on
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self, body: bytes, ctype: str, hold: float = 0.0) -> Callable[[Any], None]:
        def handle(h: Any) -> None:
            self._arrive(h.path)
            if hold:
                self.busy.set()
                time.sleep(hold)
            with self.lock:  # counted out before replying: the client's slot outlives this count
                self.in_flight -= 1
            FeedServer.serve_static(h, body, ctype)

        return handle

    def redirect(self, location: str) -> Callable[[Any], None]:
        def handle(h: Any) -> None:
            self._arrive(h.path)
            with self.lock:
                self.in_flight -= 1
            h.send_response(302)
            h.send_header("Location", location)
            h.send_header("Content-Length", "0")
            h.end_headers()

        return handle

    def _arrive(self, path: str) -> None:
        with self.lock:
            self.arrivals.append((path, time.monotonic()))
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)

    def paths(self) -> list[str]:
        return [path for path, _ in self.arrivals]

    def gaps(self) -> list[float]:
        times = [at for _, at in self.arrivals]
        return [later - earlier for earlier, later in pairwise(times)]


@pytest.fixture
def visits() -> Visits:
    return Visits()


@pytest.fixture
def contexts(tmp_path: Path) -> Iterator[Callable[..., SourceContext]]:
    """Source contexts over a loopback-allowed fetcher without retries; ``sleep`` may be replaced."""
    opened: list[tuple[Fetcher, IngestState]] = []

    def make(sleep: Callable[[float], None] = time.sleep, **settings: Any) -> SourceContext:
        fetcher = Fetcher(FetchSettings(allow_private=True, retries=0, **settings), sleep=sleep)
        state = IngestState(tmp_path / f"state-{len(opened)}.sqlite")
        opened.append((fetcher, state))
        return SourceContext(fetcher, state, tmp_path)

    yield make
    for fetcher, state in opened:
        fetcher.close()
        state.close()


def collect(raw: dict[str, Any], ctx: SourceContext) -> Collected:
    spec = parse_source(raw)
    return get_source(spec.type).collect(spec, ctx)


def article_page(n: int) -> bytes:
    text = "".join(f"<p>{escape(p)}</p>" for p in paragraphs(900 + n, 3))
    return (f"<html><head><title>Story {n}</title></head><body><article><h1>Story {n}</h1>"
            f"{text}</article></body></html>").encode()


def teaser_feed(links: list[str]) -> bytes:
    items = "".join(f"<item><title>Story {n}</title><link>{escape(link)}</link>"
                    f"<description>A short teaser {n}…</description></item>" for n, link in enumerate(links))
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Teasers</title><link>http://x/</link>'
            f"<description>x</description>{items}</channel></rss>").encode()


def urlset(links: list[str]) -> bytes:
    body = "".join(f"<url><loc>{escape(link)}</loc></url>" for link in links)
    return f'<?xml version="1.0"?><urlset xmlns="{SITEMAP_NS}">{body}</urlset>'.encode()


def pages(server: FeedServer, visits: Visits, count: int, hold: float = 0.0) -> list[str]:
    for n in range(count):
        server.routes[f"/p{n}.html"] = visits.serve(article_page(n), HTML, hold)
    return [server.url(f"/p{n}.html") for n in range(count)]


# ------------------------------------------------------------------ per_host_delay


def _page_source(server: FeedServer, visits: Visits) -> dict[str, Any]:
    return {"type": "page", "urls": pages(server, visits, 3)}


def _sitemap_source(server: FeedServer, visits: Visits) -> dict[str, Any]:
    server.routes["/sitemap.xml"] = visits.serve(urlset(pages(server, visits, 2)), "application/xml")
    return {"type": "sitemap", "url": server.url("/sitemap.xml")}


def _full_article_feed(server: FeedServer, visits: Visits) -> dict[str, Any]:
    server.routes["/feed.xml"] = visits.serve(teaser_feed(pages(server, visits, 2)), "application/rss+xml")
    return {"type": "feed", "url": server.url("/feed.xml"), "fetch_full_article": True}


@pytest.mark.parametrize("kind", [_page_source, _sitemap_source, _full_article_feed],
                         ids=["page", "sitemap", "feed-full-article"])
def test_a_sources_delay_spaces_its_requests_to_one_host(
    kind: Callable[[FeedServer, Visits], dict[str, Any]], feed_server: FeedServer, visits: Visits,
    contexts: Callable[..., SourceContext],
) -> None:
    raw = {"id": "gentle", **kind(feed_server, visits), "http": {"per_host_delay": DELAY}}
    out = collect(raw, contexts())
    assert (len(visits.arrivals), out.failures) == (3, [])
    assert all(gap >= DELAY - SLACK for gap in visits.gaps()), visits.gaps()


def test_a_redirect_to_the_same_host_waits_its_turn(
    feed_server: FeedServer, visits: Visits, contexts: Callable[..., SourceContext]
) -> None:
    [target] = pages(feed_server, visits, 1)
    feed_server.routes["/moved"] = visits.redirect(target)
    raw = {"id": "moved", "type": "page", "urls": [feed_server.url("/moved")], "http": {"per_host_delay": DELAY}}
    out = collect(raw, contexts())
    assert [a.title for a in out.articles] == ["Story 0"]
    assert visits.paths() == ["/moved", "/p0.html"]
    assert visits.gaps()[0] >= DELAY - SLACK


def test_another_host_does_not_wait(
    feed_server: FeedServer, visits: Visits, contexts: Callable[..., SourceContext]
) -> None:
    # 127.0.0.1 and localhost are two host names (one server): only the second 127.0.0.1 request waits.
    a, b, c = pages(feed_server, visits, 3)
    other = b.replace("127.0.0.1", "localhost")
    sleeps: list[float] = []  # recorded, not slept: the waits the gate asked for
    raw = {"id": "two-hosts", "type": "page", "urls": [a, other, c], "http": {"per_host_delay": 30}}
    out = collect(raw, contexts(sleep=sleeps.append))
    assert (len(out.articles), visits.paths()) == (3, ["/p0.html", "/p1.html", "/p2.html"])
    assert len(sleeps) == 1 and 20 < sleeps[0] <= 30, sleeps


@pytest.mark.parametrize(("settings_delay", "source_delay"), [(0, 30), (30, 0), (10, 30)])
def test_the_stricter_of_the_settings_and_the_source_delay_holds(
    settings_delay: float, source_delay: float, feed_server: FeedServer, visits: Visits
) -> None:
    first, second = pages(feed_server, visits, 2)
    sleeps: list[float] = []
    rule = HttpOptions(per_host_delay=source_delay)
    settings = FetchSettings(allow_private=True, per_host_delay=settings_delay)
    with Fetcher(settings, sleep=sleeps.append) as fetcher:
        for url in (first, second):
            fetcher.get(url, source_id="s", politeness=rule)
    assert len(sleeps) == 1 and 20 < sleeps[0] <= 30, sleeps


def test_waiting_for_a_turn_does_not_spend_the_request_timeout(
    feed_server: FeedServer, visits: Visits
) -> None:
    # A fake clock moves only when slept: the 5 s turn would end a 1 s request deadline at once if
    # queueing counted against it.
    now = [1000.0]
    first, second = pages(feed_server, visits, 2)
    settings = FetchSettings(allow_private=True, per_host_delay=5)

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with Fetcher(settings, sleep=sleep, clock=lambda: now[0]) as fetcher:
        results = [fetcher.get(url, source_id="s", timeout=1).status for url in (first, second)]
    assert (results, now[0]) == ([200, 200], 1005.0)


# ------------------------------------------------------------------ the deadline wins


def test_the_source_deadline_wins_over_a_long_delay(
    feed_server: FeedServer, visits: Visits, contexts: Callable[..., SourceContext]
) -> None:
    first, second = pages(feed_server, visits, 2)
    sleeps: list[float] = []
    raw = {"id": "hurried", "type": "page", "urls": [first, second],
           "http": {"per_host_delay": 30, "deadline": 2}}
    out = collect(raw, contexts(sleep=sleeps.append))
    assert (sleeps, visits.paths(), [a.title for a in out.articles]) == ([], ["/p0.html"], ["Story 0"])
    [failure] = out.failures
    assert failure.item == second
    assert failure.reason.startswith(f"GET {second} would wait ")
    assert " s for its turn at 127.0.0.1 (per_host_delay 30 s), more than the remaining " in failure.reason
    assert failure.reason.endswith(" s of its source deadline of 2 s (http.deadline)")


def test_a_refused_turn_is_not_taken(feed_server: FeedServer, visits: Visits) -> None:
    # The request that could not wait leaves the schedule as it was: the next one waits 30 s, not 60.
    first, second, third = pages(feed_server, visits, 3)
    sleeps: list[float] = []
    rule = HttpOptions(per_host_delay=30)
    with Fetcher(FetchSettings(allow_private=True), sleep=sleeps.append) as fetcher:
        fetcher.get(first, source_id="s", politeness=rule)
        with pytest.raises(DeadlineExceeded, match="per_host_delay 30 s"):
            fetcher.get(second, source_id="s", politeness=rule,
                        deadline=Deadline.start(5, "source deadline", "http.deadline"))
        fetcher.get(third, source_id="s", politeness=rule)
    assert visits.paths() == ["/p0.html", "/p2.html"]
    assert len(sleeps) == 1 and 20 < sleeps[0] <= 30, sleeps


def test_waiting_for_a_slot_ends_at_the_source_deadline(feed_server: FeedServer, visits: Visits) -> None:
    slow, waiting = pages(feed_server, visits, 2, hold=1.5)
    rule = HttpOptions(per_host_concurrency=1)
    with Fetcher(FetchSettings(allow_private=True)) as fetcher:
        holder = threading.Thread(target=fetcher.get, args=(slow,), kwargs={"source_id": "s", "politeness": rule})
        holder.start()
        assert visits.busy.wait(10)  # the one slot is taken
        with pytest.raises(DeadlineExceeded) as info:
            fetcher.get(waiting, source_id="s", politeness=rule,
                        deadline=Deadline.start(0.2, "source deadline", "http.deadline"))
        holder.join()
    assert visits.paths() == ["/p0.html"]
    assert info.value.reason == (f"GET {waiting} found all 1 request slot(s) for 127.0.0.1 busy "
                                 "(per_host_concurrency) until its source deadline of 0.2 s (http.deadline) ran out")


# ------------------------------------------------------------------ per_host_concurrency


def run_together(call: Callable[[Any], Any], each: list[Any]) -> None:
    """``call(item)`` for every item, each in its own thread, all at once."""
    threads = [threading.Thread(target=call, args=(item,)) for item in each]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_sources_sharing_a_fetcher_keep_to_their_concurrency(
    feed_server: FeedServer, visits: Visits, contexts: Callable[..., SourceContext]
) -> None:
    # Two sources of one host collected at once (threads sharing one context): one request at a time.
    urls = pages(feed_server, visits, 4, hold=0.3)
    ctx, outs = contexts(), []
    specs = [{"id": f"s{n}", "type": "page", "urls": urls[2 * n:2 * n + 2], "http": {"per_host_concurrency": 1}}
             for n in range(2)]
    run_together(lambda raw: outs.append(collect(raw, ctx)), specs)
    assert sorted(len(out.articles) for out in outs) == [2, 2]
    assert visits.most == 1


@pytest.mark.parametrize(("settings_limit", "source_limit", "expected"), [(2, 1, 1), (2, 3, 2), (1, 3, 1)])
def test_the_concurrency_cap_is_the_stricter_rule(
    settings_limit: int, source_limit: int, expected: int, feed_server: FeedServer, visits: Visits
) -> None:
    urls = pages(feed_server, visits, 3, hold=0.5)
    rule = HttpOptions(per_host_concurrency=source_limit)
    with Fetcher(FetchSettings(allow_private=True, per_host_concurrency=settings_limit)) as fetcher:
        run_together(partial(fetcher.get, source_id="s", politeness=rule), urls)
    assert (len(visits.arrivals), visits.most) == (3, expected)
