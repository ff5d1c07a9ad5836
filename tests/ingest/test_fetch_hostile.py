"""Hostile servers against the fetch layer (issue 11): a sitemap that lists itself or fans out
without end, a body trickled one byte at a time, a Retry-After of days, and a DNS answer that
changes between the SSRF check and the connect. Every server is on loopback."""

from __future__ import annotations

import http.server
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpcore
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from newsrag.core.errors import ConfigError, SourceError
from newsrag.core.settings import IngestSettings
from newsrag.ingest.context import IngestContext
from newsrag.ingest.fetch import Deadline, DeadlineExceeded, Fetcher, FetchSettings, check_url
from newsrag.ingest.fetch_transport import Deadlines, _DeadlineStream, attempt_scope
from newsrag.ingest.models import ItemFailure
from newsrag.ingest.pipeline import run_source
from newsrag.ingest.registry import parse_source
from newsrag.ingest.sources import Collected, SourceContext, get_source
from newsrag.ingest.state import IngestState
from tests.conftest import FeedServer
from tests.ingest.feedgen import paragraphs

pytestmark = pytest.mark.unit

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
XML = "application/xml"


# ------------------------------------------------------------------ helpers


def sitemap_index(*locs: str) -> bytes:
    body = "".join(f"<sitemap><loc>{escape(loc)}</loc></sitemap>" for loc in locs)
    return f'<?xml version="1.0"?><sitemapindex xmlns="{SITEMAP_NS}">{body}</sitemapindex>'.encode()


def urlset(*locs: str) -> bytes:
    body = "".join(f"<url><loc>{escape(loc)}</loc></url>" for loc in locs)
    return f'<?xml version="1.0"?><urlset xmlns="{SITEMAP_NS}">{body}</urlset>'.encode()


def article_page(n: int) -> bytes:
    text = "".join(f"<p>{escape(p)}</p>" for p in paragraphs(700 + n, 3))
    return (f"<html><head><title>Story {n}</title></head><body><article><h1>Story {n}</h1>"
            f"{text}</article></body></html>").encode()


@pytest.fixture
def source_ctx(tmp_path: Path) -> Iterator[SourceContext]:
    """What a source's collect gets: a loopback-allowed fetcher without retries, a fresh state."""
    fetcher = Fetcher(FetchSettings(allow_private=True, retries=0))
    state = IngestState(tmp_path / "state.sqlite")
    yield SourceContext(fetcher, state, tmp_path)
    fetcher.close()
    state.close()


def collect(raw: dict[str, Any], ctx: SourceContext) -> Collected:
    spec = parse_source(raw)
    return get_source(spec.type).collect(spec, ctx)


def warnings_about(failures: list[ItemFailure], item: str) -> list[str]:
    return [f.reason for f in failures if f.item == item]


# ------------------------------------------------------------------ defect 2: sitemaps


def test_a_sitemap_that_lists_itself_is_fetched_once_with_a_named_warning(
    feed_server: FeedServer, source_ctx: SourceContext
) -> None:
    root, news = feed_server.url("/sitemap.xml"), feed_server.url("/news.xml")
    # Itself twice (a tracking parameter makes the same canonical URL) and a child index that
    # lists the root again beside a real urlset.
    feed_server.routes["/sitemap.xml"] = (sitemap_index(root, root + "?utm_source=loop", news), XML)
    feed_server.routes["/news.xml"] = (sitemap_index(root, feed_server.url("/today.xml")), XML)
    feed_server.routes["/today.xml"] = (urlset(feed_server.url("/a.html")), XML)
    feed_server.routes["/a.html"] = (article_page(1), "text/html")
    out = collect({"id": "selfish", "type": "sitemap", "url": root}, source_ctx)
    assert [feed_server.hits[p] for p in ("/sitemap.xml", "/news.xml", "/today.xml")] == [1, 1, 1]
    assert [a.url for a in out.articles] == [feed_server.url("/a.html")]
    assert out.failures == [
        ItemFailure(item=root, reason="sitemap lists itself; not fetched again"),
        ItemFailure(item=news, reason="sitemap lists 1 sitemap(s) already visited or listed; not fetched again"),
    ]


def test_a_sitemap_listing_only_itself_says_so(feed_server: FeedServer, source_ctx: SourceContext) -> None:
    root = feed_server.url("/sitemap.xml")
    feed_server.routes["/sitemap.xml"] = (sitemap_index(root), XML)
    out = collect({"id": "selfish", "type": "sitemap", "url": root}, source_ctx)
    assert feed_server.hits["/sitemap.xml"] == 1
    assert out.failures == [ItemFailure(item=root, reason="sitemap lists itself; not fetched again")]


def test_an_endless_fan_of_sitemaps_stops_at_the_request_budget(
    feed_server: FeedServer, source_ctx: SourceContext
) -> None:
    # Every index lists 50 new indexes (the 1 + 50 + 2,500 fetches): the budget ends it.
    def fan(h: Any) -> None:
        path = h.path.split("?")[0]
        children = [feed_server.url(f"{path.removesuffix('.xml')}-{i}.xml") for i in range(50)]
        FeedServer.serve_static(h, sitemap_index(*children), XML)

    for depth_paths in (["/fan.xml"], [f"/fan-{i}.xml" for i in range(50)]):
        for path in depth_paths:
            feed_server.routes[path] = fan
    feed_server.routes.update({f"/fan-{i}-{j}.xml": fan for i in range(50) for j in range(50)})
    root = feed_server.url("/fan.xml")
    out = collect({"id": "fan", "type": "sitemap", "url": root, "max_requests": 20}, source_ctx)
    assert sum(feed_server.hits.values()) == 20
    # Fetched: the root, child 0 and its 18 first grandchildren. Skipped: 32 grandchildren of
    # child 0 and children 1..49.
    assert warnings_about(out.failures, root) == [
        "sitemap request budget of 20 reached; 81 URLs not fetched"]


def test_page_fetches_count_against_the_budget(feed_server: FeedServer, source_ctx: SourceContext) -> None:
    root = feed_server.url("/pages.xml")
    feed_server.routes["/pages.xml"] = (urlset(*(feed_server.url(f"/p{n}.html") for n in range(10))), XML)
    for n in range(10):
        feed_server.routes[f"/p{n}.html"] = (article_page(n), "text/html")
    out = collect({"id": "pages", "type": "sitemap", "url": root, "max_requests": 4}, source_ctx)
    assert sum(feed_server.hits.values()) == 4 and len(out.articles) == 3
    assert warnings_about(out.failures, root) == ["sitemap request budget of 4 reached; 7 URLs not fetched"]


def test_max_items_below_the_budget_is_no_budget_warning(
    feed_server: FeedServer, source_ctx: SourceContext
) -> None:
    root = feed_server.url("/pages.xml")
    feed_server.routes["/pages.xml"] = (urlset(*(feed_server.url(f"/p{n}.html") for n in range(10))), XML)
    for n in range(10):
        feed_server.routes[f"/p{n}.html"] = (article_page(n), "text/html")
    out = collect({"id": "pages", "type": "sitemap", "url": root, "max_items": 3, "max_requests": 4},
                  source_ctx)
    assert len(out.articles) == 3 and out.failures == []


def test_a_broken_child_sitemap_fails_that_child_only(
    feed_server: FeedServer, source_ctx: SourceContext
) -> None:
    root, gone = feed_server.url("/sitemap.xml"), feed_server.url("/gone.xml")
    feed_server.routes["/sitemap.xml"] = (sitemap_index(gone, feed_server.url("/news.xml")), XML)
    feed_server.routes["/news.xml"] = (urlset(feed_server.url("/a.html")), XML)
    feed_server.routes["/a.html"] = (article_page(1), "text/html")
    out = collect({"id": "halfway", "type": "sitemap", "url": root}, source_ctx)
    assert [a.url for a in out.articles] == [feed_server.url("/a.html")]
    assert [f.item for f in out.failures] == [gone] and "HTTP 404" in out.failures[0].reason


def test_the_source_deadline_stops_a_sitemap_with_a_named_warning(
    feed_server: FeedServer, source_ctx: SourceContext
) -> None:
    def slow_page(h: Any) -> None:
        time.sleep(0.4)
        FeedServer.serve_static(h, article_page(1), "text/html")

    root = feed_server.url("/slow.xml")
    feed_server.routes["/slow.xml"] = (urlset(*(feed_server.url(f"/s{n}.html") for n in range(10))), XML)
    feed_server.routes.update({f"/s{n}.html": slow_page for n in range(10)})
    out = collect({"id": "slowpoke", "type": "sitemap", "url": root, "http": {"deadline": 1}}, source_ctx)
    fetched = sum(feed_server.hits.get(f"/s{n}.html", 0) for n in range(10))
    assert 1 <= fetched < 10
    assert warnings_about(out.failures, root) == [
        f"source deadline of 1 s (http.deadline) reached; {10 - fetched} URLs not fetched"]


@pytest.mark.parametrize("value", [5001, 0])
def test_the_sitemap_budget_is_capped(value: int) -> None:
    with pytest.raises(ConfigError, match="max_requests: Input should be"):
        parse_source({"id": "s", "type": "sitemap", "url": "https://x.example/s.xml", "max_requests": value})


@pytest.mark.parametrize("value", [3601, 0])
def test_the_source_deadline_is_capped(value: float) -> None:
    with pytest.raises(ConfigError, match=r"http\.deadline: Input should be"):
        parse_source({"id": "s", "type": "feed", "url": "https://x.example/f.xml", "http": {"deadline": value}})


def test_the_defaults_are_sane() -> None:
    spec = parse_source({"id": "s", "type": "sitemap", "url": "https://x.example/s.xml"})
    assert (spec.max_requests, spec.http.deadline) == (200, 300)


# ------------------------------------------------------------------ defect 3: deadlines


class SlowLoris:
    """Answers 200 with a long Content-Length, then sends the body one byte per ``interval``."""

    def __init__(self, interval: float, give_up_after: float = 15.0) -> None:
        self.interval, self.give_up_after = interval, give_up_after
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/feed.xml"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed by the test
                return
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)  # the request; its content does not matter
            started = time.monotonic()
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                             b"Content-Length: 100000\r\n\r\n")
                while time.monotonic() - started < self.give_up_after:
                    conn.sendall(b"<")
                    time.sleep(self.interval)
            except OSError:  # the client hung up: what the deadline should make it do
                return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def slow_loris() -> Iterator[SlowLoris]:
    server = SlowLoris(interval=1.0)
    yield server
    server.close()


def stub_ingest_context(tmp_path: Path) -> IngestContext:
    """Enough of a pipeline context for a source that fails before anything is stored (the store
    is asked for its collection generation before the source is read)."""
    store = cast(Any, SimpleNamespace(name="Hostile", generation=lambda: "0" * 32))
    embedder = cast(Any, SimpleNamespace(model_id="stub-model"))
    return IngestContext(IngestSettings(), store=store, embedder=embedder, home=tmp_path,
                         fetch_settings=FetchSettings(allow_private=True))


def test_a_slow_loris_fails_the_source_within_its_timeout(slow_loris: SlowLoris, tmp_path: Path) -> None:
    spec = parse_source({"id": "trickle", "type": "feed", "url": slow_loris.url, "http": {"timeout": 5}})
    started = time.monotonic()
    with stub_ingest_context(tmp_path) as ctx:
        report = run_source(spec, ctx)
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert report.status == "failed"
    assert report.error == (f"source 'trickle': GET {slow_loris.url} ran out of its request deadline "
                            f"of 5 s (timeout)")


def retry_after(seconds: str) -> Callable[[Any], None]:
    def route(h: Any) -> None:
        h.send_response(429)
        h.send_header("Retry-After", seconds)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return route


def test_a_retry_after_beyond_the_deadline_fails_at_once(feed_server: FeedServer) -> None:
    feed_server.routes["/busy.xml"] = retry_after("999999")
    sleeps: list[float] = []
    started = time.monotonic()
    with (Fetcher(FetchSettings(allow_private=True), sleep=sleeps.append) as f,
          pytest.raises(DeadlineExceeded) as info):
        f.get(feed_server.url("/busy.xml"), source_id="busy", timeout=5)
    assert time.monotonic() - started < 10 and sleeps == [] and feed_server.hits["/busy.xml"] == 1
    assert info.value.source_id == "busy" and info.value.retryable
    assert info.value.reason.startswith(f"GET {feed_server.url('/busy.xml')} failed (HTTP 429) and "
                                        f"Retry-After 999999 s exceeds the remaining ")
    assert info.value.reason.endswith(" s of its request deadline of 5 s (timeout)")


def test_a_retry_after_within_the_deadline_is_waited(feed_server: FeedServer) -> None:
    answers = iter([retry_after("2"), lambda h: FeedServer.serve_static(h, b"<rss/>", XML)])
    feed_server.routes["/busy.xml"] = lambda h: next(answers)(h)
    sleeps: list[float] = []
    with Fetcher(FetchSettings(allow_private=True), sleep=sleeps.append) as f:
        assert f.get(feed_server.url("/busy.xml"), source_id="busy", timeout=5).content == b"<rss/>"
    assert sleeps == [2.0]


def test_backoff_that_would_pass_the_deadline_is_not_slept(feed_server: FeedServer) -> None:
    feed_server.routes["/down.xml"] = lambda h: h.send_error(503)
    sleeps: list[float] = []
    settings = FetchSettings(allow_private=True, retries=5, backoff_base=2)
    with Fetcher(settings, sleep=sleeps.append) as f, pytest.raises(DeadlineExceeded) as info:
        f.get(feed_server.url("/down.xml"), source_id="down", timeout=3)
    assert sleeps == [2.0]  # the next backoff (4 s) would not fit in what is left of 3 s
    assert "HTTP 503) and a 4 s backoff exceeds the remaining" in info.value.reason


def test_the_source_deadline_cuts_a_request_before_its_timeout(feed_server: FeedServer) -> None:
    def stall(h: Any) -> None:
        time.sleep(3)
        FeedServer.serve_static(h, b"<rss/>", XML)

    feed_server.routes["/stall.xml"] = stall
    source = Deadline.start(0.5, "source deadline", "http.deadline")
    with Fetcher(FetchSettings(allow_private=True)) as f, pytest.raises(DeadlineExceeded) as info:
        f.get(feed_server.url("/stall.xml"), source_id="s", timeout=20, deadline=source)
    assert info.value.reason.endswith("ran out of its source deadline of 0.5 s (http.deadline)")


def test_a_spent_source_deadline_makes_no_request(feed_server: FeedServer) -> None:
    source = Deadline.start(0.0, "source deadline", "http.deadline")
    with Fetcher(FetchSettings(allow_private=True)) as f, pytest.raises(DeadlineExceeded):
        f.get(feed_server.url("/never.xml"), source_id="s", deadline=source)
    assert feed_server.hits.get("/never.xml", 0) == 0


class RecordingStream(httpcore.NetworkStream):
    """A socket stand-in that records the timeout of every read."""

    def __init__(self) -> None:
        self.timeouts: list[float | None] = []

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.timeouts.append(timeout)
        return b"<"

    def close(self) -> None:
        pass


def test_every_socket_read_ends_by_the_deadline_not_the_read_timeout() -> None:
    # A read timeout restarts with every read: a byte every 4 s never trips a 5 s one. The
    # deadline does: each read may wait only for what is left of it.
    now = [100.0]
    deadline = Deadline.start(5, "request deadline", "timeout", clock=lambda: now[0])
    inner = RecordingStream()
    stream = _DeadlineStream(inner)
    with attempt_scope(Deadlines.of(deadline), "http://news.example/feed.xml", None):
        now[0] = 104.0
        stream.read(1, timeout=5)
        now[0] = 105.0
        with pytest.raises(httpcore.ReadTimeout):
            stream.read(1, timeout=5)
    stream.read(1, timeout=5)  # outside an attempt: the caller's own timeout
    assert inner.timeouts == [1.0, 5]


# ------------------------------------------------------------------ defect 10: DNS rebinding


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every outgoing TCP connect, in order; only loopback ones go through."""
    attempts: list[str] = []
    real_connect = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> None:
        host = str(address[0])
        attempts.append(host)
        if host not in ("127.0.0.1", "::1"):
            raise OSError(f"test refused a connection to {host}")
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    return attempts


@pytest.fixture
def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, list[str]], list[str]]:
    """``answers(name, [first, then...])``: each lookup of ``name`` gets the next address (the last
    one repeats); returns the log of lookups. Other names resolve as usual (addresses, loopback)."""
    real = socket.getaddrinfo

    def install(name: str, answers: list[str]) -> list[str]:
        asked: list[str] = []

        def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host != name:
                return real(host, port, *args, **kwargs)
            address = answers[min(len(asked), len(answers) - 1)]
            asked.append(address)
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

        monkeypatch.setattr(socket, "getaddrinfo", fake)
        return asked

    return install


def test_the_connection_goes_to_the_checked_address_not_a_rebound_one(
    feed_server: FeedServer, connections: list[str], rebinding_dns: Callable[[str, list[str]], list[str]]
) -> None:
    # Public when checked, loopback when resolved again: the rebinding attack.
    asked = rebinding_dns("rebind.example", ["93.184.216.34", "127.0.0.1"])
    feed_server.routes["/feed.xml"] = (b"<rss/>", XML)
    url = f"http://rebind.example:{feed_server.httpd.server_address[1]}/feed.xml"
    with Fetcher(FetchSettings(retries=0)) as f, pytest.raises(SourceError, match="ConnectError"):
        f.get(url, source_id="s")
    assert asked == ["93.184.216.34"]  # resolved once, by the guard
    assert connections == ["93.184.216.34"] and feed_server.hits.get("/feed.xml", 0) == 0


def test_allow_private_still_pins_and_keeps_the_host_name(
    feed_server: FeedServer, connections: list[str], rebinding_dns: Callable[[str, list[str]], list[str]]
) -> None:
    asked = rebinding_dns("pinned.example", ["127.0.0.1", "10.255.0.1"])
    hosts: list[str] = []

    def echo_host(h: Any) -> None:
        hosts.append(h.headers["Host"])
        FeedServer.serve_static(h, b"<rss/>", XML)

    feed_server.routes["/feed.xml"] = echo_host
    netloc = f"pinned.example:{feed_server.httpd.server_address[1]}"
    with Fetcher(FetchSettings(allow_private=True, retries=0)) as f:
        assert f.get(f"http://{netloc}/feed.xml", source_id="s").content == b"<rss/>"
    assert asked == ["127.0.0.1"] and connections == ["127.0.0.1"]  # the connect resolved nothing
    assert hosts == [netloc]  # the server still sees the name, not the address


def test_check_url_returns_the_addresses_it_approved(
    rebinding_dns: Callable[[str, list[str]], list[str]]
) -> None:
    rebinding_dns("news.example", ["2606:4700:4700::1111"])
    assert check_url("https://news.example/feed", allow_private=False) == [
        ipaddress.ip_address("2606:4700:4700::1111")]
    assert check_url("http://93.184.216.34/", allow_private=False) == [
        ipaddress.ip_address("93.184.216.34")]


def self_signed(host: str, folder: Path) -> tuple[Path, Path]:
    """A certificate for ``host`` only (no IP address in it), and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class TLSFeed(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        FeedServer.serve_static(self, b"<rss/>", XML)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, list[str | None]]]:
    """An HTTPS server on loopback whose certificate names pinned.example; yields (port, SNI names)."""
    cert, key = self_signed("pinned.example", tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts this certificate only
    names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TLSFeed)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1], names
    httpd.shutdown()
    httpd.server_close()


def test_tls_to_a_pinned_address_still_verifies_the_host_name(
    tls_server: tuple[int, list[str | None]], connections: list[str],
    rebinding_dns: Callable[[str, list[str]], list[str]]
) -> None:
    port, names = tls_server
    rebinding_dns("pinned.example", ["127.0.0.1", "10.255.0.1"])
    with Fetcher(FetchSettings(allow_private=True, retries=0)) as f:
        assert f.get(f"https://pinned.example:{port}/feed.xml", source_id="s").content == b"<rss/>"
        # The same server by address: its certificate does not name 127.0.0.1, and that is checked.
        with pytest.raises(SourceError, match="CERTIFICATE_VERIFY_FAILED"):
            f.get(f"https://127.0.0.1:{port}/feed.xml", source_id="s")
    assert names[0] == "pinned.example" and set(connections) == {"127.0.0.1"}
