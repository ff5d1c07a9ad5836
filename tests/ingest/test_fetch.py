"""newsrag.ingest.fetch against a real HTTP server on 127.0.0.1; no test ever connects anywhere else."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from newsrag.core.errors import SourceError
from newsrag.ingest.fetch import (
    DeadlineExceeded,
    Fetcher,
    FetchSettings,
    UnsafeURLError,
    check_url,
    fetch,
    fetch_file,
    parse_content_type,
    parse_retry_after,
)

pytestmark = pytest.mark.unit

LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
SECRET = "s3cret-token-value"


@dataclass
class ServerState:
    hits: Counter[str] = field(default_factory=Counter)  # by full request path (with query)
    seen: dict[str, dict[str, str]] = field(default_factory=dict)  # /echo headers by key
    inflight: Counter[str] = field(default_factory=Counter)
    max_inflight: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Handler(BaseHTTPRequestHandler):
    server: Any  # ThreadingHTTPServer carrying a .state

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        state: ServerState = self.server.state
        with state.lock:
            state.hits[self.path] += 1
            hits = state.hits[self.path]
        parts = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        route = getattr(
            self, "route_" + parts.path.strip("/").replace("/", "_").replace("-", "_"), None
        )
        if route is None:
            return self.reply(404, b"no such route")
        route(q, hits)

    def reply(
        self, status: int, body: bytes = b"", ctype: str | None = "text/plain", **headers: str
    ) -> None:
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route_feed(self, q: dict[str, str], hits: int) -> None:
        etag_ok = self.headers.get("If-None-Match") == '"v1"'
        if etag_ok or self.headers.get("If-Modified-Since") == LAST_MODIFIED:
            return self.reply(304, ctype=None, ETag='"v1"', Last_Modified=LAST_MODIFIED)
        ctype = "application/rss+xml; charset=UTF-8"
        self.reply(200, b"<rss/>", ctype, ETag='"v1"', Last_Modified=LAST_MODIFIED)

    def route_echo(self, q: dict[str, str], hits: int) -> None:
        self.server.state.seen[q["key"]] = {k.lower(): v for k, v in self.headers.items()}
        self.reply(200, b"ok")

    def route_html(self, q: dict[str, str], hits: int) -> None:
        self.reply(200, b"<html></html>", "text/html; charset=utf-8")

    def route_notype(self, q: dict[str, str], hits: int) -> None:
        self.reply(200, b"<rss/>", ctype=None)

    def route_redirect(self, q: dict[str, str], hits: int) -> None:
        self.reply(int(q.get("code", "302")), ctype=None, Location=q["to"])

    def route_chain_a(self, q: dict[str, str], hits: int) -> None:
        self.reply(302, ctype=None, Location="b")  # relative to /chain/a

    def route_chain_b(self, q: dict[str, str], hits: int) -> None:
        self.reply(301, ctype=None, Location="/chain/c?x=1#frag")

    def route_chain_c(self, q: dict[str, str], hits: int) -> None:
        self.reply(200, b"end")

    def route_loop(self, q: dict[str, str], hits: int) -> None:
        self.reply(302, ctype=None, Location=self.path)

    def route_big(self, q: dict[str, str], hits: int) -> None:
        """50 MB of zeros, streamed 64 KiB at a time with no Content-Length (close-delimited)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        chunk = bytes(65536)
        try:
            for _ in range(50_000_000 // len(chunk)):
                self.wfile.write(chunk)
        except OSError:  # the client hung up at the cap, as it should
            pass

    def route_big_cl(self, q: dict[str, str], hits: int) -> None:
        """Announces 50 MB, then sends nothing: a client that tried to read would hang."""
        self.send_response(200)
        self.send_header("Content-Length", "50000000")
        self.end_headers()
        self.wfile.flush()
        time.sleep(3)

    def route_flaky(self, q: dict[str, str], hits: int) -> None:
        if hits <= int(q.get("fail", "1")):
            extra = {"Retry_After": q["retry_after"]} if "retry_after" in q else {}
            return self.reply(int(q["status"]), b"busy", **extra)
        self.reply(200, b"finally")

    def route_status(self, q: dict[str, str], hits: int) -> None:
        self.reply(int(q["code"]), b"nope")

    def route_slow(self, q: dict[str, str], hits: int) -> None:
        state: ServerState = self.server.state
        key = q.get("key", "")
        with state.lock:
            state.inflight[key] += 1
            state.max_inflight[key] = max(state.max_inflight[key], state.inflight[key])
        time.sleep(float(q["delay"]))
        with state.lock:
            state.inflight[key] -= 1
        try:
            self.reply(200, b"slow")
        except OSError:  # the client timed out and left
            pass


@dataclass
class Server:
    base: str
    state: ServerState


def _serve() -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.state = ServerState()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", httpd.state)  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    yield from _serve()


@pytest.fixture(scope="module")
def other_server() -> Iterator[Server]:
    yield from _serve()


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every outgoing TCP connect and refuse any that is not loopback: no traffic leaves."""
    attempts: list[str] = []
    real_connect = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> None:
        host = str(address[0]) if isinstance(address, tuple) else str(address)
        attempts.append(host)
        if host not in ("127.0.0.1", "::1"):
            raise OSError(f"test refused a connection to {host}")
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    return attempts


@pytest.fixture
def make() -> Iterator[Callable[..., Fetcher]]:
    """Fetchers allowed to reach loopback, with a recording sleep unless one is given."""
    made: list[Fetcher] = []

    def factory(sleep: Callable[[float], None] | None = None, **settings: Any) -> Fetcher:
        settings.setdefault("allow_private", True)
        f = Fetcher(FetchSettings(**settings), sleep=sleep or (lambda s: None))
        made.append(f)
        return f

    yield factory
    for f in made:
        f.close()


def key() -> str:
    return uuid.uuid4().hex


# ------------------------------------------------------------------ basics and conditional GET


def test_get_returns_body_type_and_validators(make: Callable[..., Fetcher], server: Server) -> None:
    r = make().get(server.base + "/feed", source_id="s")
    assert (r.status, r.content, r.not_modified) == (200, b"<rss/>", False)
    assert (r.content_type, r.encoding) == ("application/rss+xml", "UTF-8")
    assert (r.etag, r.last_modified) == ('"v1"', LAST_MODIFIED)
    assert r.url == server.base + "/feed"


@pytest.mark.parametrize("validator", ["etag", "last_modified"])
def test_conditional_get_returns_not_modified(
    make: Callable[..., Fetcher], server: Server, validator: str
) -> None:
    f, url = make(), server.base + "/feed"
    if validator == "etag":
        r = f.get(url, source_id="s", etag='"v1"')
    else:
        r = f.get(url, source_id="s", last_modified=LAST_MODIFIED)
    assert r.status == 304 and r.not_modified and r.content == b""
    assert r.etag == '"v1"' and r.last_modified == LAST_MODIFIED


def test_user_agent_and_accept_reach_the_server(
    make: Callable[..., Fetcher], server: Server
) -> None:
    k = key()
    make().get(
        f"{server.base}/echo?key={k}", source_id="s", accept=("application/rss+xml", "text/plain")
    )
    assert server.state.seen[k]["user-agent"] == FetchSettings().user_agent
    assert server.state.seen[k]["user-agent"].startswith("newsrag/0.1")
    assert server.state.seen[k]["accept"].startswith("application/rss+xml, text/plain")


def test_fetcher_is_a_context_manager_that_closes_its_client(server: Server) -> None:
    with Fetcher(FetchSettings(allow_private=True)) as f:
        assert f.get(server.base + "/feed", source_id="s").status == 200
        client = f._client
    assert client is not None and client.is_closed and f._client is None


# ------------------------------------------------------------------ redirects


def test_redirect_chain_with_relative_locations(
    make: Callable[..., Fetcher], server: Server
) -> None:
    r = make().get(server.base + "/chain/a", source_id="s")
    assert r.content == b"end"
    assert r.url == server.base + "/chain/c?x=1"  # final URL, fragment dropped


def test_too_many_redirects_is_a_source_error(make: Callable[..., Fetcher], server: Server) -> None:
    path = f"/loop?key={key()}"
    with pytest.raises(SourceError, match="exceeded 2 redirects"):
        make(max_redirects=2).get(server.base + path, source_id="s")
    assert server.state.hits[path] == 3


def test_caller_headers_stay_with_their_origin(
    make: Callable[..., Fetcher], server: Server, other_server: Server
) -> None:
    same, other = key(), key()
    f = make()
    auth = {"Authorization": f"Bearer {SECRET}"}
    f.get(f"{server.base}/redirect?to={quote(f'/echo?key={same}')}", source_id="s", headers=auth)
    target = quote(f"{other_server.base}/echo?key={other}")
    f.get(f"{server.base}/redirect?to={target}", source_id="s", headers=auth)
    assert server.state.seen[same]["authorization"] == f"Bearer {SECRET}"
    assert "authorization" not in other_server.state.seen[other]


# ------------------------------------------------------------------ SSRF guard


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://192.168.1.1/",
        "http://172.16.5.4/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://0.0.0.0/",
        "http://127.0.0.1:8080/",
        "http://2130706433/",  # decimal 127.0.0.1
        "http://0x7f.1/",  # hex/short form of 127.0.0.1
        "http://100.64.0.1/",  # carrier-grade NAT
        "http://224.0.0.1/",  # multicast
        "http://[fd00::1]/",  # IPv6 unique local
        "http://[fe80::1]/",  # IPv6 link-local
        "http://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
        "https://localhost/",
    ],
)
def test_check_url_refuses_non_public_addresses(url: str) -> None:
    with pytest.raises(UnsafeURLError, match="refused") as info:
        check_url(url, allow_private=False, source_id="s")
    assert isinstance(info.value, SourceError) and not info.value.retryable


def test_refusal_names_the_resolved_address() -> None:
    with pytest.raises(UnsafeURLError, match=r"resolves to 127\.0\.0\.1 \(loopback\)"):
        check_url("http://2130706433/", allow_private=False)


@pytest.mark.parametrize("url", ["http://93.184.216.34/", "https://[2606:4700:4700::1111]/x"])
def test_check_url_allows_public_literal_addresses(url: str) -> None:
    check_url(url, allow_private=False)  # numeric hosts: no DNS lookup, no connection


@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/feed.xml", "file:///etc/passwd", "gopher://x/", "javascript:alert(1)"],
)
@pytest.mark.parametrize("allow_private", [False, True])
def test_check_url_refuses_other_schemes(url: str, allow_private: bool) -> None:
    with pytest.raises(UnsafeURLError, match="refused.*scheme"):
        check_url(url, allow_private=allow_private)


def test_allow_private_skips_only_the_address_check() -> None:
    check_url("http://10.0.0.1/", allow_private=True)


def test_any_private_address_among_several_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(host: str, port: int, *a: Any, **kw: Any) -> list[Any]:
        tcp = socket.SOCK_STREAM
        return [
            (socket.AF_INET, tcp, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, tcp, 6, "", ("10.0.0.5", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(UnsafeURLError, match=r"news\.example resolves to 10\.0\.0\.5"):
        check_url("https://news.example/feed", allow_private=False)


def test_unresolvable_host_is_a_retryable_source_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*a: Any, **kw: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(SourceError, match="cannot resolve") as info:
        check_url("https://nowhere.example/", allow_private=False, source_id="s")
    assert not isinstance(info.value, UnsafeURLError) and info.value.retryable


def test_private_url_is_refused_without_any_connection(connections: list[str]) -> None:
    with Fetcher(FetchSettings()) as f, pytest.raises(UnsafeURLError, match=r"10\.0\.0\.1"):
        f.get("http://10.0.0.1/feed", source_id="s")
    assert connections == []


def test_loopback_is_refused_by_default(server: Server, connections: list[str]) -> None:
    path = f"/echo?key={key()}"
    with (
        Fetcher(FetchSettings()) as f,
        pytest.raises(UnsafeURLError, match=r"refused.*127\.0\.0\.1"),
    ):
        f.get(server.base + path, source_id="s")
    assert server.state.hits[path] == 0 and connections == []


def first_hop_exempt(first: str) -> Callable[[str, str], None]:
    """Stands in for a public first hop: only ``first`` skips the real guard."""

    def guard(url: str, source_id: str) -> None:
        if url != first:
            check_url(url, allow_private=False, source_id=source_id)

    return guard


@pytest.mark.parametrize("target", ["loopback", "http://10.0.0.1/latest", "file:///etc/passwd"])
def test_redirect_to_a_forbidden_target_is_refused(
    server: Server, connections: list[str], target: str
) -> None:
    echo = f"/echo?key={key()}"
    location = server.base + echo if target == "loopback" else target
    first = f"{server.base}/redirect?to={quote(location, safe='')}"
    f = Fetcher(FetchSettings(), guard=first_hop_exempt(first))
    with f, pytest.raises(UnsafeURLError, match="refused"):
        f.get(first, source_id="s")
    assert server.state.hits[echo] == 0
    assert set(connections) == {"127.0.0.1"}  # only the exempt first hop ever connected


# ------------------------------------------------------------------ size cap


def test_oversized_stream_is_aborted(make: Callable[..., Fetcher], server: Server) -> None:
    url = f"{server.base}/big?key={key()}"
    with pytest.raises(SourceError, match=r"response from .*/big.* exceeds 10\.0 MB limit"):
        make().get(url, source_id="s")


def test_content_length_over_the_cap_is_rejected_before_reading(
    make: Callable[..., Fetcher], server: Server
) -> None:
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"exceeds 0\.0 MB limit"):
        make(max_bytes=1000, timeout=2).get(f"{server.base}/big-cl?key={key()}", source_id="s")
    assert time.monotonic() - started < 1.5  # reading would have waited for the stalled body


def test_body_exactly_at_the_cap_passes(make: Callable[..., Fetcher], server: Server) -> None:
    assert make(max_bytes=6).get(server.base + "/feed", source_id="s").content == b"<rss/>"
    with pytest.raises(SourceError, match="exceeds"):
        make(max_bytes=5).get(server.base + "/feed", source_id="s")


# ------------------------------------------------------------------ retries


def test_429_honours_retry_after(make: Callable[..., Fetcher], server: Server) -> None:
    sleeps: list[float] = []
    path = f"/flaky?key={key()}&status=429&fail=1&retry_after=2"
    r = make(sleep=sleeps.append).get(server.base + path, source_id="s")
    assert r.content == b"finally" and server.state.hits[path] == 2
    assert sleeps == [2.0]


def test_retry_after_is_capped(make: Callable[..., Fetcher], server: Server) -> None:
    sleeps: list[float] = []
    path = f"/flaky?key={key()}&status=503&fail=1&retry_after=3600"
    make(sleep=sleeps.append, max_retry_after=5).get(server.base + path, source_id="s")
    assert sleeps == [5.0]


def test_503_until_retries_are_exhausted(make: Callable[..., Fetcher], server: Server) -> None:
    sleeps: list[float] = []
    path = f"/status?code=503&key={key()}"
    with pytest.raises(SourceError, match="HTTP 503") as info:
        make(sleep=sleeps.append, retries=2, backoff_base=0.5).get(
            server.base + path, source_id="s"
        )
    assert info.value.retryable and "after 3 attempt" in str(info.value)
    assert server.state.hits[path] == 3 and sleeps == [0.5, 1.0]


def test_404_fails_at_once_without_leaking_headers(
    make: Callable[..., Fetcher], server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps: list[float] = []
    path = f"/status?code=404&key={key()}"
    with pytest.raises(SourceError) as info:
        make(sleep=sleeps.append).get(
            server.base + path, source_id="s", headers={"Authorization": SECRET}
        )
    assert not info.value.retryable and "HTTP 404" in str(info.value) and path in str(info.value)
    assert server.state.hits[path] == 1 and sleeps == []
    assert SECRET not in str(info.value) and SECRET not in caplog.text


def test_connection_errors_are_retried(
    make: Callable[..., Fetcher], caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps: list[float] = []
    with pytest.raises(SourceError, match="ConnectError") as info:
        make(sleep=sleeps.append, retries=1).get(
            f"http://127.0.0.1:{port}/", source_id="s", headers={"X-Api-Key": SECRET}
        )
    assert info.value.retryable and sleeps == [0.5]
    assert "retrying" in caplog.text and SECRET not in caplog.text


def test_a_stalled_read_ends_the_get_at_its_deadline(
    make: Callable[..., Fetcher], server: Server
) -> None:
    # The timeout bounds the whole GET: a read that used it all up leaves no time for a retry.
    path = f"/slow?delay=1&key={key()}"
    with pytest.raises(DeadlineExceeded, match=r"request deadline of 0\.2 s \(timeout\)") as info:
        make(retries=1).get(server.base + path, source_id="s", timeout=0.2)
    assert info.value.retryable and server.state.hits[path] == 1


def test_parse_retry_after_forms() -> None:
    now = datetime(2015, 10, 21, 7, 27, 30, tzinfo=UTC)
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(LAST_MODIFIED, now=now) == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


# ------------------------------------------------------------------ content type


def test_unexpected_content_type_is_refused(make: Callable[..., Fetcher], server: Server) -> None:
    accept = ("application/rss+xml", "application/atom+xml")
    with pytest.raises(
        SourceError, match=r"/html served 'text/html', expected one of application/rss\+xml"
    ):
        make().get(server.base + "/html", source_id="s", accept=accept)


def test_expected_or_missing_content_type_is_accepted(
    make: Callable[..., Fetcher], server: Server
) -> None:
    f = make()
    assert f.get(server.base + "/feed", source_id="s", accept=("application/*",)).status == 200
    r = f.get(server.base + "/notype", source_id="s", accept=("application/rss+xml",))
    assert r.content == b"<rss/>" and r.content_type == ""


def test_parse_content_type() -> None:
    assert parse_content_type('Text/HTML; Charset="iso-8859-1"') == ("text/html", "iso-8859-1")
    assert parse_content_type("application/json") == ("application/json", None)
    assert parse_content_type(None) == ("", None)


# ------------------------------------------------------------------ politeness


class FakeClock:
    def __init__(self) -> None:
        self.now, self.sleeps = 1000.0, []  # type: ignore[var-annotated]

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_per_host_delay_spaces_requests(server: Server) -> None:
    clock = FakeClock()
    settings = FetchSettings(allow_private=True, per_host_delay=0.2)
    with Fetcher(settings, sleep=clock.sleep, clock=clock.time) as f:
        for _ in range(3):
            f.get(server.base + "/feed", source_id="s")
    assert clock.sleeps == [pytest.approx(0.2), pytest.approx(0.2)]


def test_per_host_delay_in_real_time(make: Callable[..., Fetcher], server: Server) -> None:
    f = make(sleep=time.sleep, per_host_delay=0.2)
    started = time.monotonic()
    for _ in range(3):
        f.get(server.base + "/feed", source_id="s")
    assert time.monotonic() - started >= 0.4


@pytest.mark.parametrize("limit", [1, 2])
def test_per_host_concurrency_limits_parallel_requests(
    make: Callable[..., Fetcher], server: Server, limit: int
) -> None:
    f, k = make(per_host_concurrency=limit), key()
    threads = [
        threading.Thread(
            target=f.get,
            args=(f"{server.base}/slow?delay=0.3&key={k}&n={n}",),
            kwargs={"source_id": "s"},
        )
        for n in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert server.state.max_inflight[k] == limit


# ------------------------------------------------------------------ files and dispatch


def test_fetch_file_etag_tracks_changes(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(b"<rss>1</rss>")
    first = fetch_file(str(path), source_id="s")
    assert first.content == b"<rss>1</rss>" and first.content_type.endswith("xml")
    assert fetch_file(path.as_uri(), source_id="s").etag == first.etag
    assert fetch_file(str(path), source_id="s", etag=first.etag).not_modified
    path.write_bytes(b"<rss>22</rss>")
    os.utime(path, ns=(1, 2))  # even a same-second rewrite must change the etag
    assert fetch_file(str(path), source_id="s").etag not in (None, first.etag)


def test_fetch_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(SourceError, match="nope.jsonl"):
        fetch_file(str(missing), source_id="s")
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(2000))
    with pytest.raises(SourceError, match="big.bin exceeds"):
        fetch_file(str(big), source_id="s", max_bytes=1000)
    with pytest.raises(UnsafeURLError, match="remote file host"):
        fetch_file("file://fileserver/share/feed.xml", source_id="s")


def test_fetch_dispatches_by_scheme(
    make: Callable[..., Fetcher], server: Server, tmp_path: Path
) -> None:
    path = tmp_path / "a.json"
    path.write_text("{}")
    f = make()
    assert fetch(f, str(path), source_id="s").content == b"{}"
    assert fetch(f, path.as_uri(), source_id="s").content == b"{}"
    assert fetch(f, server.base + "/feed", source_id="s", etag='"v1"').not_modified
    with pytest.raises(UnsafeURLError, match="local files"):
        fetch(f, path.as_uri(), source_id="s", allow_files=False)
    with pytest.raises(UnsafeURLError, match="scheme"):
        fetch(f, "ftp://example.org/x", source_id="s")
