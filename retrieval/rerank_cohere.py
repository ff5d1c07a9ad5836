"""Cohere reranking (``NEWSRAG_SEARCH_RERANK=cohere``) through ``cohere.ClientV2.rerank``.

``POST {base_url}/v2/rerank`` with ``model``, the query, one document per candidate hit (its
title, a line break and its text; the text alone when untitled) and ``top_n = min(top_k, hits)``.
The hits come back in the reply's order (best first) with Cohere's ``relevance_score`` (0..1) as
their score, so that context assembly, which orders blocks by score, keeps Cohere's order. Fewer
than two hits are returned unchanged without a request.

A failed rerank never fails the answer: after the retries (429/5xx/timeouts, Retry-After honoured
up to ``MAX_RETRY_WAIT``), on any other provider error (400, 401, ...) and on a malformed reply
(results missing, an index out of range or repeated, a non-numeric score, fewer results than
asked) it logs a warning and returns the first ``top_k`` hits in their input order with their
input scores (an unexpected exception is logged with its traceback, and handled the same way).
Only a missing key or SDK (ConfigError/SetupError) raises: that is configuration, and it happens
when the client is created, before the request.

Settings ``NEWSRAG_COHERE_RERANK_*``: ``MODEL`` (rerank-v3.5), ``TIMEOUT`` (10 s),
``MAX_RETRIES`` (2), ``MAX_RETRY_WAIT`` (5 s); the key and base URL are ``COHERE_API_KEY`` and
``COHERE_BASE_URL``, read on first use. This module imports nothing from ``newsrag.retrieval.search``, so
that module can import it at load time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.core.errors import ConfigError, ProviderError, SetupError
from newsrag.core.settings import load
from newsrag.embeddings.cohere import DEFAULT_BASE_URL, CohereEmbeddingSettings
from newsrag.providers.errors import (
    TransientProviderError,
    error_detail,
    malformed,
    status_error,
)
from newsrag.providers.retry import call_with_retries
from newsrag.core.records import Hit

log = logging.getLogger(__name__)

PROVIDER = "cohere"
DEFAULT_MODEL = "rerank-v3.5"


class CohereRerankSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSRAG_COHERE_RERANK_", extra="ignore")

    model: str = DEFAULT_MODEL
    timeout: float = Field(10.0, gt=0)
    max_retries: int = Field(2, ge=0, le=10)
    max_retry_wait: float = Field(5.0, ge=0)


def document(hit: Hit) -> str:
    title = str(hit.properties.get("title") or "").strip()
    text = str(hit.properties.get("text") or "").strip()
    return (f"{title}\n{text}" if title else text) or " "  # the API rejects empty documents


class CohereReranker:
    """Implements ``newsrag.retrieval.search.Reranker``."""

    def __init__(self, settings: CohereRerankSettings | None = None,
                 provider_settings: CohereEmbeddingSettings | None = None, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings or load(CohereRerankSettings)
        self.model = self.settings.model
        self._provider_settings = provider_settings
        self._sleep = sleep
        self._client: Any = None
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def provider_settings(self) -> CohereEmbeddingSettings:
        if self._provider_settings is None:
            self._provider_settings = load(CohereEmbeddingSettings)
        return self._provider_settings

    def _secret(self) -> str | None:
        key = self.provider_settings.api_key
        return key.get_secret_value() if key is not None else None

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                key = self._secret()
                if not key:
                    raise ConfigError("COHERE_API_KEY is not set; NEWSRAG_SEARCH_RERANK=cohere needs an API key")
                try:
                    import cohere
                except ImportError as exc:
                    raise SetupError("the cohere package is not installed; pip install 'newsrag[cohere]'") from exc
                timeout = self.settings.timeout
                self._http = httpx.Client(timeout=timeout)
                self._client = cohere.ClientV2(
                    api_key=key, base_url=self.provider_settings.base_url or DEFAULT_BASE_URL, timeout=timeout,
                    max_retries=0, httpx_client=self._http, client_name="newsrag",
                    log_warning_experimental_features=False)
            return self._client

    def close(self) -> None:
        with self._lock:
            http, self._http, self._client = self._http, None, None
        if http is not None:
            http.close()

    def rerank(self, query: str, query_vector: Sequence[float] | None, hits: Sequence[Hit],
               top_k: int) -> list[Hit]:
        if len(hits) < 2:
            return list(hits[:top_k])
        client = self.client  # ConfigError/SetupError raise: configuration, not a provider failure
        top_n = min(top_k, len(hits))
        documents = [document(h) for h in hits]
        try:
            order = call_with_retries(lambda: self._attempt(client, query, documents, top_n),
                                      max_retries=self.settings.max_retries, sleep=self._sleep)
        except Exception as exc:  # reranking is optional: never fail the search for it
            log.warning("cohere rerank failed, keeping the search order: %s", exc,
                        exc_info=not isinstance(exc, ProviderError))
            return list(hits[:top_k])
        return [replace(hits[i], score=score) for i, score in order]

    def _attempt(self, client: Any, query: str, documents: list[str], top_n: int) -> list[tuple[int, float]]:
        try:
            reply = client.rerank(model=self.model, query=query, documents=documents, top_n=top_n)
        except Exception as exc:
            err = self._translated(exc)
            if err is None:
                raise
            raise err from None
        return self._parse(reply, len(documents), top_n)

    def _parse(self, reply: Any, n: int, top_n: int) -> list[tuple[int, float]]:
        results = getattr(reply, "results", None)
        if not isinstance(results, list) or len(results) != top_n:
            got = len(results) if isinstance(results, list) else "no results"
            raise malformed(PROVIDER, self.model, f"expected {top_n} results, got {got}")
        order: list[tuple[int, float]] = []
        for item in results:
            index, score = getattr(item, "index", None), getattr(item, "relevance_score", None)
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < n:
                raise malformed(PROVIDER, self.model, f"result index {index!r} is not one of 0..{n - 1}")
            if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
                raise malformed(PROVIDER, self.model, f"relevance_score {score!r} is not a number")
            order.append((index, float(score)))
        if len({i for i, _ in order}) != len(order):
            raise malformed(PROVIDER, self.model, "a document is ranked twice")
        return sorted(order, key=lambda r: -r[1])  # stable: ties keep the reply's order

    def _translated(self, exc: Exception) -> ProviderError | None:
        from cohere.core.api_error import ApiError
        from cohere.core.parse_error import ParsingError

        if isinstance(exc, ApiError):
            status = exc.status_code or 0
            if 200 <= status < 300:
                return malformed(PROVIDER, self.model, "the reply is not JSON")
            err = status_error(PROVIDER, self.model, status, detail=error_detail(exc.body, self._secret()),
                               headers=exc.headers, key_variable="COHERE_API_KEY")
            wait = getattr(err, "retry_after", None)
            if isinstance(err, TransientProviderError) and wait is not None and wait > self.settings.max_retry_wait:
                return ProviderError(PROVIDER, f"{self.model}: HTTP {status}, Retry-After {wait:g}s is over "
                                     f"the {self.settings.max_retry_wait:g}s allowed", retryable=True)
            return err
        if isinstance(exc, httpx.TimeoutException):
            return TransientProviderError(PROVIDER, f"{self.model}: request timed out")
        if isinstance(exc, httpx.TransportError):
            return TransientProviderError(PROVIDER, f"{self.model}: connection failed")
        if isinstance(exc, (ParsingError, ValueError, TypeError)):
            return malformed(PROVIDER, self.model, f"{type(exc).__name__} while parsing the reply")
        return None
