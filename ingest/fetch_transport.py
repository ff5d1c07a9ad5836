"""Below one GET: which addresses may be reached and how long it may take.

* :func:`check_url` refuses non-http(s) URLs and hosts with a non-public address, and returns the
  addresses it approved.
* :class:`PinnedTransport` connects to exactly those addresses instead of resolving the host a
  second time, so a DNS answer that changes between the check and the connect (DNS rebinding)
  cannot reach a private address. The Host header, TLS SNI and certificate checks still use the
  host name: only the TCP connect is pinned.
* A :class:`Deadline` bounds wall-clock time. Every socket connect, read and write waits at most
  until the tightest deadline of its request: httpx's read timeout restarts with every read, so
  a server trickling one byte at a time would otherwise never trip it.

Pins and deadlines reach the socket through a context variable set around each attempt: httpx's
sync client does its network I/O in the calling thread, so concurrent fetches never share one.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Self

import httpcore
import httpx

from newsrag.core.errors import SourceError

# Checked before is_global: in Python 3.11 multicast and some reserved ranges count as global.
BLOCKED_KINDS = (
    "loopback",
    "unspecified",
    "link_local",
    "multicast",
    "private",
    "reserved",
    "site_local",
)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (url, source_id) -> the approved addresses to connect to, or None to let the transport resolve.
Guard = Callable[[str, str], Sequence[IPAddress] | None]


class UnsafeURLError(SourceError):
    """A URL was refused before any connection: bad scheme or a non-public address."""


class DeadlineExceeded(SourceError):
    """A request or a whole source ran out of its wall-clock deadline."""


# ------------------------------------------------------------------ the address guard


def check_url(url: str, allow_private: bool, *, source_id: str = "") -> list[IPAddress]:
    """Refuse non-http(s) URLs and, unless ``allow_private``, hosts with any non-public address.

    Returns every address the host resolved to, all approved: connect to these, not the name."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UnsafeURLError(source_id, f"refused {url!r}: not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https"):
        raise UnsafeURLError(source_id, f"refused {url!r}: scheme {parsed.scheme!r} is not http(s)")
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise UnsafeURLError(source_id, f"refused {url!r}: no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = _resolve(host, port, source_id)  # even when private ones are allowed: pinned
    if not allow_private:
        _refuse_blocked(url, host, addresses, source_id)
    return addresses


def _refuse_blocked(url: str, host: str, addresses: list[IPAddress], source_id: str) -> None:
    for address in addresses:
        why = blocked_reason(address)
        if why:
            reason = f"refused {url!r}: {host} resolves to {address} ({why})"
            raise UnsafeURLError(source_id, reason)


def _resolve(host: str, port: int, source_id: str) -> list[IPAddress]:
    """All addresses the OS would connect to; checking only the first would let a second slip by."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = f"cannot resolve host {host!r}: {exc}"
        raise SourceError(source_id, reason, retryable=True) from None
    # Drop IPv6 scope ids ("fe80::1%eth0"); the address itself decides.
    found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    return list(dict.fromkeys(found))


def blocked_reason(ip: IPAddress) -> str | None:
    """Why an address must not be fetched from, or None when it is globally routable."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or _nat64(ip)
        if embedded is not None:  # these forms reach an IPv4 host, so judge that host
            inner = blocked_reason(embedded)
            return f"embeds {embedded}: {inner}" if inner else None
    for kind in BLOCKED_KINDS:
        if getattr(ip, f"is_{kind}", False):
            return kind.replace("_", "-")
    return None if ip.is_global else "not globally routable"


def _nat64(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip in ipaddress.IPv6Network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


# ------------------------------------------------------------------ deadlines


@dataclass(frozen=True)
class Deadline:
    """A wall-clock budget: ``seconds`` long, ending at ``ends_at`` on ``clock``."""

    seconds: float
    ends_at: float
    name: str  # "request deadline", "source deadline"
    setting: str  # the option that sets it, so the message says what to change
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def start(
        cls, seconds: float, name: str, setting: str, clock: Callable[[], float] = time.monotonic
    ) -> Self:
        return cls(seconds, clock() + seconds, name, setting, clock)

    def remaining(self) -> float:
        return self.ends_at - self.clock()

    def describe(self) -> str:
        return f"{self.name} of {self.seconds:g} s ({self.setting})"


@dataclass(frozen=True)
class Deadlines:
    """The tightest of several deadlines (a request's own and its source's), asked anew each time
    because they may run on different clocks."""

    parts: tuple[Deadline, ...]

    @classmethod
    def of(cls, *deadlines: Deadline | None) -> Deadlines:
        return cls(tuple(d for d in deadlines if d is not None))

    def binding(self) -> Deadline:
        return min(self.parts, key=Deadline.remaining)

    def remaining(self) -> float:
        return min((d.remaining() for d in self.parts), default=float("inf"))

    def expired(self) -> bool:
        return self.remaining() <= 0

    def cap(self, seconds: float) -> float:
        """``seconds``, or less when the deadline comes first (never below a millisecond)."""
        return max(0.001, min(seconds, self.remaining()))

    def exceeded(self, source_id: str, url: str) -> DeadlineExceeded:
        reason = f"GET {url} ran out of its {self.binding().describe()}"
        return DeadlineExceeded(source_id, reason, retryable=True)

    def check(self, source_id: str, url: str) -> None:
        if self.expired():
            raise self.exceeded(source_id, url)


# ------------------------------------------------------------------ pinned, deadline-bound sockets


@dataclass(frozen=True)
class _Scope:
    """What the sockets of the current attempt must respect."""

    deadlines: Deadlines
    host: str
    addresses: tuple[str, ...]  # empty: not pinned, resolve as usual

    def targets(self, host: str) -> tuple[str, ...]:
        # Another host (a proxy from the environment) is not the checked one: no pin applies.
        return self.addresses if self.addresses and host == self.host else (host,)


_SCOPE: ContextVar[_Scope | None] = ContextVar("newsrag_fetch_scope", default=None)


@contextmanager
def attempt_scope(
    deadlines: Deadlines, url: str, addresses: Iterable[IPAddress] | None
) -> Iterator[None]:
    """Pin ``url``'s host to ``addresses`` and bound every socket wait by ``deadlines``."""
    host = httpx.URL(url).raw_host.decode("ascii")
    token = _SCOPE.set(_Scope(deadlines, host, tuple(str(a) for a in addresses or ())))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    """The socket timeout to use: the caller's, or less when the attempt's deadline comes first."""
    scope = _SCOPE.get()
    if scope is None:
        return timeout
    left = scope.deadlines.remaining()
    if left <= 0:
        raise error("the deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every wait ends by the deadline of the attempt using it."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        # server_hostname is the URL's host name: SNI and certificate checks are not pinned.
        wait = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, wait))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class PinningBackend(httpcore.SyncBackend):
    """Connects to the addresses the guard approved for the attempt's host, first that answers."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        scope = _SCOPE.get()
        refused: httpcore.ConnectError | None = None
        for target in scope.targets(host) if scope else (host,):
            wait = _bounded(timeout, httpcore.ConnectTimeout)
            try:
                stream = super().connect_tcp(target, port, wait, local_address, socket_options)
            except httpcore.ConnectError as exc:  # like socket.create_connection: try the next
                refused = exc
                continue
            return _DeadlineStream(stream)
        raise refused or httpcore.ConnectError(f"no address to connect to for {host}")


class PinnedTransport(httpx.HTTPTransport):
    """httpx's own transport (TLS, pooling, exception mapping) over :class:`PinningBackend`."""

    def __init__(self, limits: httpx.Limits | None = None) -> None:
        super().__init__()
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        # httpx offers no network_backend option; the pool it built is unused, so swap it.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PinningBackend(),
        )
