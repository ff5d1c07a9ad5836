"""What a provider's failure becomes: a :class:`~newsrag.core.errors.ProviderError` naming the
provider and model, retryable (:class:`TransientProviderError`) for 408/429/5xx, timeouts and
connection errors, and never quoting the API key.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from newsrag.core.errors import ProviderError


class TransientProviderError(ProviderError):
    """A failure worth retrying: 429, 5xx, timeout or connection error. ``retry_after`` in seconds."""

    def __init__(self, provider: str, message: str, *, retry_after: float | None = None,
                 status: int | None = None) -> None:
        super().__init__(provider, message, retryable=True)
        self.retry_after = retry_after
        self.status = status


class MalformedReply(ProviderError):
    """The provider answered, but not with what its API promises. Not retryable."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(provider, message, retryable=False)


def malformed(provider: str, model: str, why: str) -> MalformedReply:
    return MalformedReply(provider, f"{model}: malformed reply: {why}")


def timed_out(provider: str, model: str, timeout: float) -> TransientProviderError:
    return TransientProviderError(provider, f"{model}: request timed out after {timeout:g}s")


def connection_failed(provider: str, model: str, what: str = "connection failed") -> TransientProviderError:
    return TransientProviderError(provider, f"{model}: {what}")


def reason(err: ProviderError, model: str) -> str:
    """The message without its ``provider: model:`` prefix (for a record that names both already)."""
    return str(err).removeprefix(f"{err.provider}: ").removeprefix(f"{model}: ")


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if not headers:
        return None
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    try:
        if "retry-after-ms" in lower:
            return max(0.0, float(lower["retry-after-ms"]) / 1000.0)
    except ValueError:
        pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_detail(body: Any, secret: str | None, limit: int = 200) -> str:
    """The provider's error message from a reply body, with the API key removed, shortened."""
    message: Any = body
    if isinstance(body, dict):
        inner = body.get("error")
        message = body.get("message") or (inner.get("message") if isinstance(inner, dict) else inner)
    if not message:
        return ""
    text = " ".join(str(message).split())
    if secret:
        text = text.replace(secret, "***")
    return text[:limit] + ("..." if len(text) > limit else "")


def status_error(provider: str, model: str, status: int, *, detail: str = "",
                 headers: Mapping[str, str] | None = None, key_variable: str = "") -> ProviderError:
    """The ProviderError for an HTTP error status; retryable for 408, 429 and 5xx."""
    if status in (401, 403):
        # Auth failures may echo part of the key: never pass the provider's text on.
        what = "authentication failed" if status == 401 else "permission denied"
        return ProviderError(provider, f"{model}: HTTP {status} {what}; check {key_variable}")
    message = f"{model}: HTTP {status}" + (f": {detail}" if detail else "")
    if status in (408, 429) or status >= 500:
        return TransientProviderError(provider, message, retry_after=parse_retry_after(headers),
                                      status=status)
    return ProviderError(provider, message, retryable=False)
