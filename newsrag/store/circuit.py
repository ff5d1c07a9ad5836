"""Fail fast while the vector store is down: a query deadline probe and a circuit breaker.

The Weaviate client retries a gRPC query that finds the server gone five times with exponential
sleeps (about 63 s) before it gives up. An app request must not wait for that: a handful of users
would hold every worker. :class:`QueryGuard` runs a query on a worker thread; when it has not
answered after ``probe_after`` seconds, a cheap readiness probe (HTTP, short timeout) decides
whether to keep waiting (the server is up, the query is just slow) or to fail now with
:class:`StoreUnavailable`. A failure opens the circuit: for ``open_for`` seconds every query fails
at once, then the next query probes first (half-open) and closes the circuit when the server is
back, so recovery needs no restart. A thread still inside the client's retries when the guard gave
up finishes in the background; while the circuit is open no new ones start.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from newsrag.core.errors import StoreUnavailable

T = TypeVar("T")


class QueryGuard:
    def __init__(self, probe: Callable[[], bool], *, probe_after: float = 1.5, open_for: float = 5.0,
                 on_trip: Callable[[], None] = lambda: None, clock: Callable[[], float] = time.monotonic,
                 workers: int = 16) -> None:
        self._probe, self._on_trip, self._clock = probe, on_trip, clock
        self.probe_after, self.open_for = probe_after, open_for
        self._open_until: float | None = None
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="store-query")

    @property
    def is_open(self) -> bool:
        return self._open_until is not None

    def run(self, query: Callable[[], T]) -> T:
        """``query()``, or StoreUnavailable at once while the store is known to be down."""
        self._admit()
        future = self._pool.submit(query)
        try:
            return future.result(timeout=self.probe_after)
        except FutureTimeout:
            if not self._probe():
                raise self._trip("it stopped answering") from None
            return future.result()  # up but slow: the client's own timeout bounds this
        except StoreUnavailable as exc:
            raise self._trip(str(exc)) from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _admit(self) -> None:
        with self._lock:
            if self._open_until is None:
                return
            wait = self._open_until - self._clock()
            if wait > 0:
                raise StoreUnavailable(f"the vector store is unavailable; the next check is in {wait:.0f} s",
                                       retry_after=max(1, round(wait)))
            self._open_until = self._clock() + self.open_for  # half-open: only this caller probes
        if not self._probe():
            raise StoreUnavailable("the vector store is still unavailable", retry_after=round(self.open_for))
        with self._lock:
            self._open_until = None

    def _trip(self, reason: str) -> StoreUnavailable:
        with self._lock:
            self._open_until = self._clock() + self.open_for
        self._on_trip()
        return StoreUnavailable(f"the vector store is unavailable ({reason})", retry_after=round(self.open_for))
