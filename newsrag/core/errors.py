"""The small error hierarchy. Library code raises these; only the edges translate them
(HTTP status in app/, task failure vs retry in dags/, a one-line message in the CLI)."""

from __future__ import annotations

from collections.abc import Iterable


class NewsragError(Exception):
    """Base class. ``retryable`` tells the edges whether trying again can help."""

    retryable: bool = False


class ConfigError(NewsragError):
    """A setting is missing or invalid; the message names the variable."""


class SetupError(NewsragError):
    """A tool the project needs is missing or broken; the message says how to install it."""


class ServerError(NewsragError):
    """The local Weaviate server could not be started, reached or stopped."""


class StoreError(NewsragError):
    """The vector store refused an operation."""


class StoreUnavailable(StoreError):
    """The vector store cannot be reached right now. ``retry_after``: seconds until it is worth
    asking again, when known (the app's Retry-After)."""

    retryable = True

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class BatchWriteError(StoreError):
    """Some objects of a batch were not written. Lists every offending id with its reason."""

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = dict(failures)
        shown = "; ".join(f"{k}: {v}" for k, v in list(self.failures.items())[:20])
        more = "" if len(self.failures) <= 20 else f" (+{len(self.failures) - 20} more)"
        super().__init__(f"{len(self.failures)} object(s) failed to write: {shown}{more}")


class EmbeddingError(NewsragError):
    """An embedding provider failed."""


class ProviderError(NewsragError):
    """A remote model provider (OpenAI, Cohere, ...) failed. ``retryable`` for 429/5xx/timeouts."""

    def __init__(self, provider: str, message: str, *, retryable: bool = False) -> None:
        self.provider = provider
        self.retryable = retryable
        super().__init__(f"{provider}: {message}")


class SourceError(NewsragError):
    """A whole source failed (unreachable, not a feed, over the size cap, ...)."""

    def __init__(self, source_id: str, reason: str, *, retryable: bool = False) -> None:
        self.source_id = source_id
        self.reason = reason
        self.retryable = retryable
        super().__init__(f"source {source_id!r}: {reason}")


class ItemError(NewsragError):
    """One item of a source failed; the rest of the source goes on."""

    def __init__(self, source_id: str, item_id: str, reason: str) -> None:
        self.source_id = source_id
        self.item_id = item_id
        self.reason = reason
        super().__init__(f"source {source_id!r}, item {item_id!r}: {reason}")


def join_ids(ids: Iterable[str], limit: int = 10) -> str:
    items = list(ids)
    head = ", ".join(items[:limit])
    return head + (f" (+{len(items) - limit} more)" if len(items) > limit else "")
