"""Polite, bounded, SSRF-guarded fetching of feeds, pages and local files.

Every HTTP hop is checked by :func:`check_url` before any connection is made, and the connection
goes to the addresses the check approved (see :mod:`newsrag.ingest.fetch_transport`). Bodies are capped
while streaming, only transient failures (429, 5xx gateway errors, timeouts, resets) are retried,
and the whole GET (hops, attempts, ``Retry-After`` waits, a trickling body) ends by its deadline:
the request's ``timeout``, or sooner when its source's deadline comes first. Every attempt waits its
turn at its host first (:mod:`newsrag.ingest.politeness`); that wait counts against the source's
deadline, not the request's ``timeout``. Request header values never appear in errors or logs: they
may carry credentials.
"""

from __future__ import annotations

import logging
import math
import mimetypes
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit
from urllib.request import url2pathname

import httpx
import tenacity
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.core.errors import SourceError
from newsrag.core.settings import defaults
from newsrag.ingest.fetch_transport import (
    Deadline,
    DeadlineExceeded,
    Deadlines,
    Guard,
    IPAddress,
    PinnedTransport,
    UnsafeURLError,
    attempt_scope,
    check_url,
)
from newsrag.ingest.politeness import HostGate, Politeness, QueueClock

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 10_000_000
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Transport failures worth another attempt; protocol/proxy/URL errors will not heal by retrying.
TRANSIENT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class FetchSettings(BaseSettings):
    """Limits and politeness for fetching. ``allow_private`` is for tests and closed networks."""

    model_config = SettingsConfigDict(env_prefix="NEWSRAG_FETCH_", extra="ignore")

    timeout: float = Field(default=20, gt=0)  # the whole GET, retries and waits included
    max_bytes: int = Field(default=DEFAULT_MAX_BYTES, ge=1)
    user_agent: str = "newsrag/0.1 (+https://github.com/newsrag/newsrag; news RAG ingestion bot)"
    allow_private: bool = False
    max_redirects: int = Field(default=5, ge=0)
    retries: int = Field(default=3, ge=0)  # extra attempts after the first one
    backoff_base: float = Field(default=0.5, ge=0)
    max_retry_after: float = Field(default=60, ge=0)
    # Floors for every request; a source's http.per_host_* may only be stricter (politeness.py).
    per_host_delay: float = Field(default=0.0, ge=0)
    per_host_concurrency: int = Field(default=2, ge=1)


@dataclass(frozen=True)
class FetchResult:
    url: str  # final URL, after redirects
    status: int  # 200 (or another 2xx) or 304
    content: bytes
    content_type: str = ""  # lowercased, parameters stripped; "" when unknown
    encoding: str | None = None
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def parse_content_type(value: str | None) -> tuple[str, str | None]:
    """("text/html", "utf-8") from "Text/HTML; charset=utf-8"."""
    if not value:
        return "", None
    main, *params = value.split(";")
    charset = None
    for param in params:
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset":
            charset = val.strip().strip("\"'") or None
    return main.strip().lower(), charset


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if unusable."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
        return max(0.0, seconds) if math.isfinite(seconds) else None
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _too_big(source_id: str, url: str, limit: int) -> SourceError:
    return SourceError(source_id, f"response from {url} exceeds {limit / 1_000_000:.1f} MB limit")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _accepts(content_type: str, accept: tuple[str, ...]) -> bool:
    if not content_type:  # many servers omit it; the parser downstream decides
        return True
    return any(
        a == content_type or (a.endswith("/*") and content_type.startswith(a[:-1])) for a in accept
    )


class _Transient(Exception):
    """Internal: a failure worth retrying, with the server's requested wait if it gave one."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.refused_wait: float | None = None  # set when the next wait would pass the deadline


@dataclass(frozen=True)
class _Response:
    status: int
    headers: httpx.Headers
    content: bytes = b""


@dataclass(frozen=True)
class _Call:
    """What stays the same across the attempts of one hop of a ``get``."""

    source_id: str
    headers: dict[str, str]
    accept: tuple[str, ...] | None
    timeout: float  # per socket wait; the deadlines bound the total
    deadlines: Deadlines
    pins: Sequence[IPAddress] | None  # the addresses the guard approved; None: not pinned
    queue: QueueClock  # the request deadline's clock, paused while an attempt waits its turn
    outer: Deadlines  # the caller's (its source's) alone: what bounds waiting for a turn
    politeness: Politeness | None  # the source's per-host rule, on top of the settings'


def _log_retry(state: tenacity.RetryCallState) -> None:
    # args[0] is the URL; args[1] holds header values and must never be logged.
    exc = state.outcome.exception() if state.outcome else None
    log.warning("retrying %s after attempt %d: %s", state.args[0], state.attempt_number, exc)


class _PastDeadline(tenacity.stop.stop_base):
    """Stop instead of sleeping into the deadline; the refused wait is noted for the message."""

    def __call__(self, state: tenacity.RetryCallState) -> bool:
        call: _Call = state.args[1]
        if state.upcoming_sleep < call.deadlines.remaining():
            return False
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient):
            exc.refused_wait = state.upcoming_sleep
        return True


def _gave_up(url: str, call: _Call, exc: _Transient, attempts: int) -> SourceError:
    if exc.refused_wait is None:
        reason = f"GET {url} failed after {attempts} attempt(s): {exc.reason}"
        return SourceError(call.source_id, reason, retryable=True)
    asked = (
        f"Retry-After {exc.retry_after:g} s"
        if exc.retry_after is not None
        else f"a {exc.refused_wait:g} s backoff"
    )
    left = max(0.0, call.deadlines.remaining())
    reason = (
        f"GET {url} failed ({exc.reason}) and {asked} exceeds the remaining {left:.1f} s "
        f"of its {call.deadlines.binding().describe()}"
    )
    return DeadlineExceeded(call.source_id, reason, retryable=True)


class Fetcher:
    """One lazily created httpx client; redirects are followed here so every hop is checked.

    ``guard(url, source_id)`` runs before every hop (default: :func:`check_url`) and returns the
    addresses the connection is pinned to; ``sleep`` and ``clock`` drive backoff, politeness waits
    and request deadlines, so tests can replace them. A ``transport`` given here is used as is
    (no pinning).
    """

    def __init__(
        self,
        settings: FetchSettings | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        guard: Guard | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = s = settings or defaults(FetchSettings)
        self._sleep, self._clock = sleep, clock
        self._guard = guard or (lambda url, sid: check_url(url, s.allow_private, source_id=sid))
        self._transport = transport
        self._gate = HostGate(s, clock, sleep)
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(
                    follow_redirects=False,  # never: each hop must pass the guard first
                    timeout=self.settings.timeout,
                    headers={"User-Agent": self.settings.user_agent},
                    transport=self._transport or PinnedTransport(),
                )
            return self._client

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get(
        self,
        url: str,
        *,
        source_id: str,
        etag: str | None = None,
        last_modified: str | None = None,
        headers: dict[str, str] | None = None,
        accept: tuple[str, ...] | None = None,
        timeout: float | None = None,
        deadline: Deadline | None = None,
        politeness: Politeness | None = None,
    ) -> FetchResult:
        """GET ``url`` with guard, redirects, conditional headers, size cap, retries and politeness.

        ``timeout`` (default: the settings') bounds the whole GET, every hop, attempt and backoff
        included, but not the waits for a turn at the host; ``deadline`` (its source's) bounds
        everything and may end it sooner. ``politeness`` (the source's ``http`` options) may make
        the per-host rule of the settings stricter."""
        seconds = timeout or self.settings.timeout
        queue = QueueClock(self._clock)
        limits = Deadlines.of(Deadline.start(seconds, "request deadline", "timeout", queue), deadline)
        turn = (queue, Deadlines.of(deadline), politeness)
        pins = self._guard(url, source_id)  # before parsing: it also rejects malformed URLs
        start = current = httpx.URL(url)
        for hop in range(self.settings.max_redirects + 1):
            if hop:
                pins = self._guard(str(current), source_id)
            # Caller headers (maybe credentials) only go to the origin they were meant for.
            extra = headers if _origin(current) == _origin(start) else None
            sent = _request_headers(extra, etag, last_modified, accept)
            resp = self._send(str(current), _Call(source_id, sent, accept, seconds, limits, pins, *turn))
            if resp.status not in REDIRECT_STATUSES:
                return _result(str(current), resp, etag, last_modified)
            current = _next_hop(current, resp, source_id)
        raise SourceError(source_id, f"GET {url} exceeded {self.settings.max_redirects} redirects")

    def _send(self, url: str, call: _Call) -> _Response:
        attempts = self.settings.retries + 1
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(attempts) | _PastDeadline(),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Transient),
            sleep=self._sleep,
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            return retrying(self._attempt, url, call)
        except _Transient as exc:
            raise _gave_up(url, call, exc, attempts) from None

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return min(exc.retry_after, self.settings.max_retry_after)
        backoff = self.settings.backoff_base * 2 ** (state.attempt_number - 1)
        return min(backoff, self.settings.max_retry_after)

    def _attempt(self, url: str, call: _Call) -> _Response:
        with self._gate.turn(url, call.source_id, call.outer, call.politeness) as waited:
            call.queue.pause(waited)  # the turn is the host's politeness, not the request's time
            return self._exchange(url, call)

    def _exchange(self, url: str, call: _Call) -> _Response:
        limits = call.deadlines
        with attempt_scope(limits, url, call.pins):
            limits.check(call.source_id, url)  # earlier hops and backoff may have spent it
            timeout = limits.cap(call.timeout)
            try:
                with self._http().stream("GET", url, headers=call.headers, timeout=timeout) as r:
                    return self._read(r, url, call)
            except TRANSIENT_ERRORS as exc:
                if limits.expired():  # the deadline cut the socket wait short: no retry
                    raise limits.exceeded(call.source_id, url) from None
                raise _Transient(f"{type(exc).__name__}: {exc}") from None

    def _read(self, resp: httpx.Response, url: str, call: _Call) -> _Response:
        status = resp.status_code
        if status in REDIRECT_STATUSES or status == 304:
            return _Response(status, resp.headers)
        if status in RETRYABLE_STATUSES:
            raise _Transient(f"HTTP {status}", parse_retry_after(resp.headers.get("retry-after")))
        if not 200 <= status < 300:
            raise SourceError(call.source_id, f"GET {url} returned HTTP {status}", retryable=False)
        content_type, _ = parse_content_type(resp.headers.get("content-type"))
        # Checked before reading the body: no point downloading 10 MB of the wrong thing.
        if call.accept and not _accepts(content_type, call.accept):
            expected = ", ".join(call.accept)
            reason = f"{url} served {content_type!r}, expected one of {expected}"
            raise SourceError(call.source_id, reason)
        return _Response(status, resp.headers, self._read_capped(resp, url, call))

    def _read_capped(self, resp: httpx.Response, url: str, call: _Call) -> bytes:
        limit = self.settings.max_bytes
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_big(call.source_id, url, limit)
        body = bytearray()
        for chunk in resp.iter_bytes():  # decoded bytes, so a gzip bomb hits the cap too
            body += chunk
            if len(body) > limit:
                raise _too_big(call.source_id, url, limit)
            # A body trickled a byte at a time never trips a read timeout: the clock decides.
            call.deadlines.check(call.source_id, url)
        return bytes(body)


def _request_headers(
    extra: dict[str, str] | None,
    etag: str | None,
    last_modified: str | None,
    accept: tuple[str, ...] | None,
) -> dict[str, str]:
    sent = dict(extra or {})
    if etag:
        sent["If-None-Match"] = etag
    if last_modified:
        sent["If-Modified-Since"] = last_modified
    if accept and not any(k.lower() == "accept" for k in sent):
        sent["Accept"] = ", ".join(accept) + ", */*;q=0.1"
    return sent


def _next_hop(current: httpx.URL, resp: _Response, source_id: str) -> httpx.URL:
    location = resp.headers.get("location")
    if not location:
        raise SourceError(source_id, f"GET {current} returned HTTP {resp.status} without Location")
    try:
        return current.join(location).copy_with(fragment=None)
    except httpx.InvalidURL:
        raise SourceError(source_id, f"GET {current} redirected to an invalid URL") from None


def _result(url: str, resp: _Response, etag: str | None, last_modified: str | None) -> FetchResult:
    content_type, encoding = parse_content_type(resp.headers.get("content-type"))
    unchanged = resp.status == 304  # a 304 may omit validators: keep the caller's to store again
    return FetchResult(
        url=url,
        status=resp.status,
        content=resp.content,
        content_type=content_type,
        encoding=encoding,
        etag=resp.headers.get("etag") or (etag if unchanged else None),
        last_modified=resp.headers.get("last-modified") or (last_modified if unchanged else None),
    )


def _file_path(path_or_file_url: str, source_id: str) -> Path:
    parts = urlsplit(path_or_file_url)
    if parts.scheme != "file":
        return Path(path_or_file_url)
    if parts.netloc not in ("", "localhost"):  # file://host/share would mean a network fetch
        raise UnsafeURLError(
            source_id, f"refused {path_or_file_url!r}: remote file host {parts.netloc!r}"
        )
    return Path(url2pathname(parts.path))


def fetch_file(
    path_or_file_url: str,
    *,
    source_id: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    etag: str | None = None,
) -> FetchResult:
    """Read a local file with the same size cap; the etag (mtime_ns-size) lets callers skip it."""
    path = _file_path(path_or_file_url, source_id)
    try:
        stat = path.stat()
    except OSError as exc:
        raise SourceError(source_id, f"cannot read {path}: {exc.strerror or exc}") from None
    file_etag, uri = f"{stat.st_mtime_ns}-{stat.st_size}", path.resolve().as_uri()
    if etag == file_etag:
        return FetchResult(url=uri, status=304, content=b"", etag=file_etag)
    content_type, _ = mimetypes.guess_type(path.name)  # its "encoding" is gzip/bz2, not a charset
    return FetchResult(
        url=uri,
        status=200,
        content=_read_file(path, stat.st_size, max_bytes, source_id),
        content_type=content_type or "",
        etag=file_etag,
        last_modified=formatdate(stat.st_mtime, usegmt=True),
    )


def _read_file(path: Path, size: int, max_bytes: int, source_id: str) -> bytes:
    if size > max_bytes:
        raise _too_big(source_id, str(path), max_bytes)
    try:
        with path.open("rb") as fh:
            content = fh.read(max_bytes + 1)  # the file may have grown since stat()
    except OSError as exc:
        raise SourceError(source_id, f"cannot read {path}: {exc.strerror or exc}") from None
    if len(content) > max_bytes:
        raise _too_big(source_id, str(path), max_bytes)
    return content


def fetch(
    fetcher: Fetcher,
    url: str,
    *,
    source_id: str,
    etag: str | None = None,
    last_modified: str | None = None,
    allow_files: bool = True,
    **kw: Any,
) -> FetchResult:
    """file:// URLs and bare paths go to :func:`fetch_file`, the rest to ``fetcher.get``.

    Use ``allow_files=False`` for URLs from untrusted content (article links): a feed must not
    make the pipeline read local files."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "file" or scheme == "" or len(scheme) == 1:  # 1 letter: a Windows drive, "C:\\..."
        if not allow_files:
            raise UnsafeURLError(source_id, f"refused {url!r}: local files are not allowed here")
        return fetch_file(url, source_id=source_id, max_bytes=fetcher.settings.max_bytes, etag=etag)
    return fetcher.get(url, source_id=source_id, etag=etag, last_modified=last_modified, **kw)
