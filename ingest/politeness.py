"""Per-host politeness: how many requests may be in flight to one host, and how far apart they start.

Two rules may apply to one request: the fetcher's own (``FetchSettings``, ``NEWSRAG_FETCH_PER_HOST_*``)
and its source's (``http.per_host_concurrency`` and ``http.per_host_delay`` in ``sources.yaml``). Both
are limits, so the stricter of each holds: the fewest requests at once, the longest delay.

Hosts are told apart by name, whatever the scheme or port: a redirect from ``http://`` to ``https://``
of the same site, or to another page of it, waits its turn like any other request to that host. The
delay runs from the start of one request to the start of the next, as a crawler's download delay does.

Waiting for a turn is bounded by the deadlines the caller passes (its source's ``http.deadline``): a
wait that would pass them fails at once with :class:`DeadlineExceeded`, without sleeping and without
taking the turn, so it pushes no later request back. A request's own ``timeout`` does not run while
it queues (see :class:`QueueClock`): waiting for politeness is not the server being slow.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import httpx

from newsrag.ingest.fetch_transport import DeadlineExceeded, Deadlines


class Politeness(Protocol):
    """Anything with the two settings: ``FetchSettings`` and a source's ``http`` options alike."""

    @property
    def per_host_concurrency(self) -> int: ...

    @property
    def per_host_delay(self) -> float: ...


@dataclass(frozen=True)
class HostRule:
    """The rule one request follows: at most ``concurrency`` in flight, starts ``delay`` s apart."""

    concurrency: int
    delay: float

    @classmethod
    def strictest(cls, base: Politeness, extra: Politeness | None) -> HostRule:
        if extra is None:
            return cls(base.per_host_concurrency, base.per_host_delay)
        return cls(min(base.per_host_concurrency, extra.per_host_concurrency),
                   max(base.per_host_delay, extra.per_host_delay))


class QueueClock:
    """A clock that stands still while its request queues for a turn at a host.

    A request's own deadline runs on it, so that a long ``per_host_delay`` never eats the ``timeout``
    meant for the server; the source's deadline runs on the real clock and bounds the queueing."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._queued = 0.0  # one request's clock, used by the one thread making it

    def __call__(self) -> float:
        return self._clock() - self._queued

    def pause(self, seconds: float) -> None:
        self._queued += seconds


class HostGate:
    """Per-host request slots and start spacing, shared by every thread using one fetcher."""

    def __init__(
        self, default: Politeness, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        self._default, self._clock, self._sleep = default, clock, sleep
        self._changed = threading.Condition()  # guards both maps; notified when a slot frees
        self._in_flight: Counter[str] = Counter()
        self._last_start: dict[str, float] = {}

    @contextmanager
    def turn(
        self, url: str, source_id: str, bounds: Deadlines, extra: Politeness | None = None
    ) -> Iterator[float]:
        """Hold one of the host's slots, starting no sooner than the delay after its last start.

        Yields the seconds spent waiting (for :meth:`QueueClock.pause`). Raises
        :class:`DeadlineExceeded` when the wait would outlast ``bounds``."""
        host, rule, began = httpx.URL(url).host, HostRule.strictest(self._default, extra), self._clock()
        self._take_slot(host, rule.concurrency, bounds, source_id, url)
        try:
            self._wait_turn(host, rule.delay, bounds, source_id, url)
            yield self._clock() - began
        finally:
            self._free_slot(host)

    def _take_slot(self, host: str, limit: int, bounds: Deadlines, source_id: str, url: str) -> None:
        with self._changed:
            while self._in_flight[host] >= limit:
                left = bounds.remaining()
                if left <= 0:
                    reason = (f"GET {url} found all {limit} request slot(s) for {host} busy "
                              f"(per_host_concurrency) until its {bounds.binding().describe()} ran out")
                    raise DeadlineExceeded(source_id, reason, retryable=True)
                self._changed.wait(None if left == float("inf") else left)
            self._in_flight[host] += 1

    def _free_slot(self, host: str) -> None:
        with self._changed:
            self._in_flight[host] -= 1
            if not self._in_flight[host]:
                del self._in_flight[host]
            self._changed.notify_all()  # waiters may hold different limits: let each look

    def _wait_turn(self, host: str, delay: float, bounds: Deadlines, source_id: str, url: str) -> None:
        # The start is reserved under the lock and slept outside it, so other hosts are not held up.
        with self._changed:
            now, last = self._clock(), self._last_start.get(host)
            start = now if last is None else max(now, last + delay)
            wait, left = start - now, bounds.remaining()
            if wait > 0 and wait >= left:  # refused before sleeping, and the turn is not taken
                reason = (f"GET {url} would wait {wait:.1f} s for its turn at {host} (per_host_delay "
                          f"{delay:g} s), more than the remaining {max(0.0, left):.1f} s of its "
                          f"{bounds.binding().describe()}")
                raise DeadlineExceeded(source_id, reason, retryable=True)
            self._last_start[host] = start
        if wait > 0:
            self._sleep(wait)
