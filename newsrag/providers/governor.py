"""Rate limits and a token budget for the remote providers' embedding requests.

One :class:`RateGovernor` per provider per process (:func:`governor_for`): token buckets for
requests/minute and tokens/minute, so that parallel tasks in one worker do not trip the
provider's limits, plus a hard cap on the tokens a process may spend (``<PROVIDER>_BUDGET_TOKENS``),
a guard against a runaway backfill. Retries are :mod:`newsrag.providers.retry`'s; errors
:mod:`newsrag.providers.errors`'.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from newsrag.core.errors import ConfigError, ProviderError

_EPSILON = 1e-9


def estimate_tokens(text: str) -> int:
    """ceil(chars / 4): OpenAI's rule of thumb for English, used when no tokenizer is at hand."""
    return max(1, math.ceil(len(text) / 4))


def batches(texts: Sequence[str], max_items: int, max_tokens: int) -> Iterator[tuple[int, list[str], int]]:
    """Consecutive slices ``(start, texts, estimated tokens)`` of at most ``max_items`` texts and
    ``max_tokens`` estimated tokens (a single longer text goes alone)."""
    start, tokens = 0, 0
    batch: list[str] = []
    for i, text in enumerate(texts):
        cost = estimate_tokens(text)
        if batch and (len(batch) >= max_items or tokens + cost > max_tokens):
            yield start, batch, tokens
            start, batch, tokens = i, [], 0
        batch.append(text)
        tokens += cost
    if batch:
        yield start, batch, tokens


class BudgetExceeded(ProviderError):
    """The process's token budget for a provider is spent. Never retryable."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(provider, message, retryable=False)


class _Bucket:
    """Refills ``per_minute / 60`` units a second up to ``capacity``; may go into debt so that a
    request larger than the bucket still passes once the bucket is full."""

    def __init__(self, per_minute: int, burst_seconds: float, now: float) -> None:
        self.configure(per_minute, burst_seconds)
        self.level, self.stamp = self.capacity, now

    def configure(self, per_minute: int, burst_seconds: float) -> None:
        if per_minute < 1:
            raise ConfigError(f"rate limits must be at least 1 per minute (got {per_minute})")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, per_minute * burst_seconds / 60.0)
        if hasattr(self, "level"):
            self.level = min(self.level, self.capacity)

    def wait(self, amount: float, now: float) -> float:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now
        need = min(amount, self.capacity) - self.level
        return need / self.rate if need > _EPSILON else 0.0


class RateGovernor:
    """Thread-safe requests/minute and tokens/minute limiter with a hard per-process token budget.

    ``burst_seconds`` sizes the buckets: up to that many seconds' worth of allowance may be spent
    at once (providers enforce per-minute limits over shorter windows, so not a whole minute)."""

    def __init__(self, provider: str, rpm: int, tpm: int, budget_tokens: int | None = None, *,
                 burst_seconds: float = 10.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.provider = provider
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        now = clock()
        self._burst = burst_seconds
        self._requests = _Bucket(rpm, burst_seconds, now)
        self._tokens = _Bucket(tpm, burst_seconds, now)
        self.rpm, self.tpm, self.budget_tokens = rpm, tpm, budget_tokens
        self.used_tokens = 0
        self.requests = 0

    def configure(self, rpm: int, tpm: int, budget_tokens: int | None) -> None:
        with self._lock:
            self._requests.configure(rpm, self._burst)
            self._tokens.configure(tpm, self._burst)
            self.rpm, self.tpm, self.budget_tokens = rpm, tpm, budget_tokens

    @property
    def remaining_tokens(self) -> int | None:
        return None if self.budget_tokens is None else max(0, self.budget_tokens - self.used_tokens)

    def acquire(self, tokens: int = 0) -> float:
        """Block until one request of ``tokens`` tokens is allowed; returns the seconds waited.
        Raises :class:`BudgetExceeded` at once if it would overspend the budget."""
        tokens = max(0, int(tokens))
        waited = 0.0
        while True:
            with self._lock:
                if self.budget_tokens is not None and self.used_tokens + tokens > self.budget_tokens:
                    raise BudgetExceeded(self.provider, (
                        f"token budget exhausted: {self.used_tokens} of {self.budget_tokens} tokens "
                        f"used by this process and the next request needs {tokens} "
                        f"(raise {self.provider.upper()}_BUDGET_TOKENS to allow more)"))
                now = self._clock()
                wait = max(self._requests.wait(1, now), self._tokens.wait(tokens, now))
                if wait <= 0:
                    self._requests.level -= 1
                    self._tokens.level -= tokens
                    self.used_tokens += tokens
                    self.requests += 1
                    return waited
            self._sleep(wait)
            waited += wait

    def settle(self, reserved: int, actual: int) -> None:
        """Correct the budget once the provider reports what a request really cost (0 when it
        rejected the request)."""
        with self._lock:
            self.used_tokens = max(0, self.used_tokens + int(actual) - int(reserved))


_registry_lock = threading.Lock()
_governors: dict[str, RateGovernor] = {}


def governor_for(provider: str, rpm: int, tpm: int, budget_tokens: int | None = None) -> RateGovernor:
    """The process's shared governor for ``provider``; later calls update its limits."""
    with _registry_lock:
        gov = _governors.get(provider)
        if gov is None:
            gov = _governors[provider] = RateGovernor(provider, rpm, tpm, budget_tokens)
        elif (gov.rpm, gov.tpm, gov.budget_tokens) != (rpm, tpm, budget_tokens):
            gov.configure(rpm, tpm, budget_tokens)
        return gov


def reset_governors() -> None:
    """Forget every governor (tests; a new process run)."""
    global _registry_lock
    _registry_lock = threading.Lock()
    _governors.clear()


# A forked worker is a new process run: fresh budget, and no lock held by a parent thread.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=reset_governors)
