"""QueryGuard's decisions without a server: slow but up waits, down fails, open fails at once."""

from __future__ import annotations

import threading
import time

import pytest

from newsrag.core.errors import StoreError, StoreUnavailable
from newsrag.store.circuit import QueryGuard

pytestmark = pytest.mark.unit


def test_a_slow_query_on_a_live_server_is_waited_for() -> None:
    probes: list[bool] = []
    guard = QueryGuard(lambda: probes.append(True) or True, probe_after=0.05)
    assert guard.run(lambda: time.sleep(0.2) or "hits") == "hits"
    assert probes == [True] and not guard.is_open


def test_a_hung_query_on_a_dead_server_fails_at_the_probe() -> None:
    release = threading.Event()
    guard = QueryGuard(lambda: False, probe_after=0.05, open_for=60)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="stopped answering") as info:
        guard.run(lambda: release.wait(5))
    release.set()
    assert time.monotonic() - started < 1.0 and guard.is_open and info.value.retry_after == 60


def test_an_open_circuit_fails_without_running_the_query_then_half_opens() -> None:
    now = [0.0]
    up = [False]
    ran: list[int] = []
    trips: list[int] = []
    guard = QueryGuard(lambda: up[0], open_for=5, clock=lambda: now[0], on_trip=lambda: trips.append(1))

    def unavailable() -> None:
        raise StoreUnavailable("Weaviate unavailable (C): connection refused")

    with pytest.raises(StoreUnavailable):
        guard.run(unavailable)
    assert trips == [1]
    with pytest.raises(StoreUnavailable, match="next check is in 5 s"):
        guard.run(lambda: ran.append(1))
    now[0] = 6.0
    with pytest.raises(StoreUnavailable, match="still unavailable"):  # half-open probe: still down
        guard.run(lambda: ran.append(1))
    now[0] = 12.0
    up[0] = True
    assert guard.run(lambda: ran.append(1) or "ok") == "ok"
    assert ran == [1] and not guard.is_open


def test_a_refusal_does_not_open_the_circuit() -> None:
    guard = QueryGuard(lambda: True)

    def refused() -> None:
        raise StoreError("Weaviate refused an operation on C: no such class")

    with pytest.raises(StoreError):
        guard.run(refused)
    assert not guard.is_open
