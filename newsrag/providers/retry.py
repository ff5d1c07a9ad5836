"""The one retry policy of the provider clients (tenacity).

Only :class:`~newsrag.providers.errors.TransientProviderError` is retried (429, 5xx, timeouts,
connection errors); anything else, a ProviderError or not, raises at once. The wait before a retry
is the provider's Retry-After when it sent one, else a jittered exponential backoff; neither is
longer than ``max_wait``. A Retry-After over ``max_wait`` is either cut to it (embedders, the judge)
or, with ``give_up_over_max_wait``, ends the retries at once as a retryable ProviderError that
names both numbers (an answer or a rerank a user is waiting for).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from newsrag.core.errors import ProviderError
from newsrag.providers.errors import TransientProviderError

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_RETRY_AFTER = 120.0  # never sleep longer than this on one Retry-After
_backoff = wait_random_exponential(multiplier=0.5, max=20)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long one client retries. See the module docstring."""

    max_retries: int
    max_wait: float = MAX_RETRY_AFTER
    give_up_over_max_wait: bool = False

    def run(self, fn: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
        return call_with_retries(fn, max_retries=self.max_retries, sleep=sleep, max_wait=self.max_wait,
                                 give_up_over_max_wait=self.give_up_over_max_wait)


def call_with_retries(fn: Callable[[], T], *, max_retries: int, sleep: Callable[[float], None] = time.sleep,
                      max_wait: float = MAX_RETRY_AFTER, give_up_over_max_wait: bool = False) -> T:
    """Call ``fn``, retrying up to ``max_retries`` times on TransientProviderError only."""

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, TransientProviderError) and exc.retry_after is not None:
            return min(exc.retry_after, max_wait)
        return min(float(_backoff(state)), max_wait)

    attempt = _giving_up_over(max_wait, fn) if give_up_over_max_wait else fn
    retrying = Retrying(stop=stop_after_attempt(max_retries + 1), wait=wait,
                        retry=retry_if_exception_type(TransientProviderError), sleep=sleep,
                        before_sleep=_log_retry, reraise=True)
    return retrying(attempt)


def _giving_up_over(max_wait: float, fn: Callable[[], T]) -> Callable[[], T]:
    """``fn``, with a TransientProviderError asking to wait over ``max_wait`` made final."""

    def attempt() -> T:
        try:
            return fn()
        except TransientProviderError as exc:
            if exc.retry_after is not None and exc.retry_after > max_wait:
                message = str(exc).removeprefix(f"{exc.provider}: ")
                raise ProviderError(exc.provider, f"{message} (Retry-After {exc.retry_after:g}s is over "
                                    f"the {max_wait:g}s allowed)", retryable=True) from None
            raise

    return attempt


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    delay = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning("%s; attempt %d failed, retrying in %.1fs", exc, state.attempt_number, delay)
