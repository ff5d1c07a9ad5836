from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from newsrag.core.errors import ProviderError
from newsrag.providers.errors import (
    TransientProviderError,
    error_detail,
    parse_retry_after,
    status_error,
)
from newsrag.providers.governor import (
    BudgetExceeded,
    RateGovernor,
    batches,
    estimate_tokens,
    governor_for,
    reset_governors,
)
from newsrag.providers.retry import MAX_RETRY_AFTER, call_with_retries

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def governor(clock: FakeClock, **kw: object) -> RateGovernor:
    args: dict[str, object] = {"rpm": 10**6, "tpm": 10**9, "budget_tokens": None, "burst_seconds": 60.0}
    args.update(kw)
    return RateGovernor("test", clock=clock, sleep=clock.sleep, **args)  # type: ignore[arg-type]


def test_rpm_limit_makes_the_clock_advance() -> None:
    clock = FakeClock()
    gov = governor(clock, rpm=2)  # a bucket of 2 requests refilled at one per 30 s
    assert gov.acquire() == 0 and gov.acquire() == 0
    assert clock.sleeps == []
    assert gov.acquire() == pytest.approx(30.0)
    assert clock.now == pytest.approx(1030.0)
    assert gov.acquire() == pytest.approx(30.0)
    clock.now += 600  # idle: the bucket refills, but only up to its capacity
    assert gov.acquire() == 0 and gov.acquire() == 0 and gov.acquire() == pytest.approx(30.0)
    assert gov.requests == 7


def test_burst_is_a_fraction_of_a_minute_by_default() -> None:
    clock = FakeClock()
    gov = RateGovernor("test", rpm=60, tpm=10**9, clock=clock, sleep=clock.sleep)  # 10 s burst
    waits = [gov.acquire() for _ in range(12)]
    assert waits[:10] == [0] * 10
    assert waits[10:] == [pytest.approx(1.0), pytest.approx(1.0)]


def test_tpm_limit_waits_for_tokens_and_lets_an_oversized_request_through() -> None:
    clock = FakeClock()
    gov = governor(clock, tpm=600)  # 10 tokens a second, bucket of 600
    assert gov.acquire(600) == 0
    assert gov.acquire(300) == pytest.approx(30.0)
    clock.now += 1000  # bucket full again
    assert gov.acquire(1200) == 0  # larger than the bucket: allowed when full, leaves a debt
    assert gov.acquire(1) == pytest.approx(60.1)


def test_budget_exceeded_is_a_non_retryable_provider_error_and_does_not_wait() -> None:
    clock = FakeClock()
    gov = governor(clock, rpm=1, budget_tokens=100)
    gov.acquire(60)
    with pytest.raises(BudgetExceeded) as info:
        gov.acquire(50)
    assert isinstance(info.value, ProviderError) and info.value.retryable is False
    assert "TEST_BUDGET_TOKENS" in str(info.value) and "60 of 100" in str(info.value)
    assert clock.sleeps == []  # refused at once, not after waiting for the rate limit
    gov.acquire(40)  # exactly the budget
    assert gov.used_tokens == 100 and gov.remaining_tokens == 0
    gov.settle(40, 0)  # rejected by the provider: not billed
    gov.settle(60, 20)  # the provider reported fewer tokens than estimated
    assert gov.used_tokens == 20
    gov.acquire(80)
    with pytest.raises(BudgetExceeded):
        gov.acquire(1)


def test_governor_for_shares_one_instance_per_provider() -> None:
    reset_governors()
    try:
        a = governor_for("p1", 100, 1000)
        assert governor_for("p1", 100, 1000) is a
        assert governor_for("p2", 100, 1000) is not a
        b = governor_for("p1", 50, 500, 10)  # new limits reconfigure the shared instance
        assert b is a and (a.rpm, a.tpm, a.budget_tokens) == (50, 500, 10)
        reset_governors()
        assert governor_for("p1", 100, 1000) is not a
    finally:
        reset_governors()


def test_thread_safety_smoke() -> None:
    gov = RateGovernor("test", rpm=6000, tpm=10**9, burst_seconds=0.1)  # 100/s, bucket of 10
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(5):
                gov.acquire(3)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    elapsed = time.monotonic() - start
    assert not errors
    assert gov.requests == 30 and gov.used_tokens == 90
    assert elapsed >= 0.18  # 20 requests beyond the burst at 100/s


def test_thread_safety_of_the_budget() -> None:
    gov = RateGovernor("test", rpm=10**6, tpm=10**9, budget_tokens=1000)
    granted: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(100):
            try:
                gov.acquire(7)
            except BudgetExceeded:
                return
            with lock:
                granted.append(7)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sum(granted) == gov.used_tokens == 994  # 142 * 7: never over the budget


def test_estimate_tokens_and_batches() -> None:
    assert estimate_tokens("") == 1 and estimate_tokens("abcd") == 1 and estimate_tokens("abcde") == 2
    texts = ["a" * 40] * 7  # 10 tokens each
    assert [len(b) for _, b, _ in batches(texts, 3, 10**6)] == [3, 3, 1]
    assert [(s, len(b), t) for s, b, t in batches(texts, 100, 25)] == [(0, 2, 20), (2, 2, 20), (4, 2, 20), (6, 1, 10)]
    assert [len(b) for _, b, _ in batches(["a" * 400, "b"], 100, 50)] == [1, 1]  # oversized goes alone
    assert list(batches([], 3, 10)) == []


def test_parse_retry_after() -> None:
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None and parse_retry_after(None) is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (parse_retry_after({"Retry-After": later}) or 0) <= 30


def test_status_errors_are_classified_and_never_quote_the_key() -> None:
    for status in (408, 429, 500, 502, 503):
        err = status_error("p", "m", status, headers={"Retry-After": "3"})
        assert isinstance(err, TransientProviderError) and err.retryable and err.retry_after == 3.0
    for status in (400, 404, 422):
        err = status_error("p", "m", status, detail="bad input")
        assert not err.retryable and f"HTTP {status}: bad input" in str(err) and str(err).startswith("p: m:")
    err = status_error("p", "m", 401, detail="Incorrect API key provided: sk-abc", key_variable="P_API_KEY")
    assert not err.retryable and "sk-abc" not in str(err) and "P_API_KEY" in str(err)
    assert error_detail({"error": {"message": "key sk-secret is bad"}}, "sk-secret") == "key *** is bad"
    assert error_detail({"message": "x" * 500}, None).endswith("...")


def test_call_with_retries_retries_only_transient_errors_and_honours_retry_after() -> None:
    waits: list[float] = []
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise TransientProviderError("p", "slow down", retry_after=5)
        if calls["n"] == 2:
            raise TransientProviderError("p", "way too fast", retry_after=10_000)
        if calls["n"] == 3:
            raise TransientProviderError("p", "boom")
        return "ok"

    assert call_with_retries(flaky, max_retries=3, sleep=waits.append) == "ok"
    assert waits[:2] == [5, MAX_RETRY_AFTER] and 0 <= waits[2] <= 20

    def fatal() -> None:
        calls["n"] += 1
        raise ProviderError("p", "bad request")

    calls["n"] = 0
    with pytest.raises(ProviderError):
        call_with_retries(fatal, max_retries=3, sleep=waits.append)
    assert calls["n"] == 1

    def always() -> None:
        calls["n"] += 1
        raise TransientProviderError("p", "down", retry_after=0)

    calls["n"] = 0
    with pytest.raises(TransientProviderError):
        call_with_retries(always, max_retries=2, sleep=waits.append)
    assert calls["n"] == 3
