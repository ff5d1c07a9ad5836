"""Long-lived clients, created once in the app's lifespan and injected into routes, each configured
from the app's root settings (:func:`newsrag.app.settings.app_root`)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from newsrag.app.settings import AppSettings, app_root
from newsrag.app.usage import TokenCounter
from newsrag.core.settings import Settings, store_location
from newsrag.embeddings import Embedder, create_embedder
from newsrag.evaluation.feedback import FeedbackStore
from newsrag.prompts.provider import PromptProvider
from newsrag.prompts.registry import PromptRegistry
from newsrag.retrieval.answer import Answerer, AnswerSettings
from newsrag.retrieval.generators import create_generator
from newsrag.retrieval.search import Searcher
from newsrag.store.weaviate import WeaviateStore


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("newsrag_requests_total", "HTTP requests", ["route", "status"], registry=self.registry)
        self.latency = Histogram("newsrag_request_seconds", "Request latency", ["route"], registry=self.registry,
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10))
        self.answers = Counter("newsrag_answers_total", "Answers served", ["abstained"], registry=self.registry)
        self.feedback = Counter("newsrag_feedback_total", "Feedback received", ["rating"], registry=self.registry)


@dataclass
class RateLimiter:
    """Token bucket per client key: ``per_minute`` requests, refilled continuously. Once there are
    more than ``max_keys`` buckets, the ones idle for a minute (full again) are dropped, so many
    clients cannot grow the table without bound."""

    per_minute: int
    max_keys: int = 10_000
    clock: Callable[[], float] = time.monotonic  # injectable, so a test can roll the window over
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def allow(self, key: str) -> bool:
        """Take a token; False when the bucket is empty."""
        if self.per_minute <= 0:
            return True
        with self._lock:
            tokens, now = self._refilled(key)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            self._prune(now)
        return allowed

    def exhausted(self, key: str) -> bool:
        """True when the bucket is empty, without taking a token (to refuse before doing any work)."""
        if self.per_minute <= 0:
            return False
        with self._lock:
            return self._refilled(key)[0] < 1.0

    def retry_after(self, key: str) -> int:
        """Whole seconds until the bucket holds a token again (at least 1), for ``Retry-After``."""
        if self.per_minute <= 0:
            return 1
        with self._lock:
            tokens, _ = self._refilled(key)
        return max(1, math.ceil((1.0 - tokens) * 60.0 / self.per_minute))

    def _refilled(self, key: str) -> tuple[float, float]:
        now = self.clock()
        tokens, last = self._buckets.get(key, (float(self.per_minute), now))
        return min(float(self.per_minute), tokens + (now - last) * self.per_minute / 60.0), now

    def _prune(self, now: float) -> None:
        if len(self._buckets) > self.max_keys:
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60.0}


class Services:
    """``settings``: the root (every client reads its concern from it), or the AppSettings alone
    (the rest from the process environment, see :func:`app_root`); ``root`` keeps the root."""

    def __init__(self, settings: Settings | AppSettings, *, store: WeaviateStore | None = None,
                 embedder: Embedder | None = None) -> None:
        root = self.root = app_root(settings)
        app = self.settings = root.get(AppSettings)
        self.store = store or WeaviateStore(root)
        self.embedder = embedder or create_embedder(root)
        self.searcher = Searcher(self.store, self.embedder, root)
        self.generator = create_generator(app.generator, self.embedder, root)
        self.answerer = Answerer(self.searcher, self.generator, root.get(AnswerSettings))
        self.tokens = TokenCounter(self.embedder)  # the OpenAI routes' usage counts
        # Each its own variable, else NEWSRAG_DATABASE_URL (shared with the DAGs), else a file in the home.
        self.feedback = FeedbackStore(store_location(root, app.feedback_db, "feedback.sqlite"))
        self.registry = PromptRegistry(store_location(root, app.prompt_registry, "prompt-registry.sqlite"))
        self.prompts = PromptProvider(self.registry, app.prompt_name, app.prompt_ttl_seconds)
        self.metrics = Metrics()
        self.limiter = RateLimiter(app.rate_limit_per_minute)
        self.auth_failures = RateLimiter(app.auth_failures_per_minute)  # wrong keys, per client address

    def warm_up(self) -> None:
        """Load the model before the first request so /readyz means ready."""
        self.embedder.embed_query("warm up")

    def ready(self) -> dict[str, Any]:
        weaviate = self.store.ping()
        model = getattr(self.embedder, "_model", True) is not None
        return {"weaviate": weaviate, "model_loaded": model, "ready": weaviate and model}

    def close(self) -> None:
        self.registry.close()
        self.feedback.close()
        self.store.close()
