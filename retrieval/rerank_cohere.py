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
``COHERE_BASE_URL`` (:class:`~newsrag.providers.cohere.CohereSettings`); both models come in
through the constructor (the ``cohere`` reranker factory reads them from the root settings), the key
is checked on first use by the client base (:class:`~newsrag.providers.cohere.CohereClient`). This module imports nothing from
``newsrag.retrieval.search``, so that module can import it at load time.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.core.errors import ProviderError
from newsrag.core.records import Hit
from newsrag.core.settings import defaults
from newsrag.providers.base import Connection
from newsrag.providers.cohere import CohereClient, CohereSettings
from newsrag.providers.errors import malformed
from newsrag.providers.retry import RetryPolicy

log = logging.getLogger(__name__)

PROVIDER = "cohere"
DEFAULT_MODEL = "rerank-v3.5"


class CohereRerankSettings(BaseSettings):
    """The ``cohere`` reranker's own settings; the key and base URL are :class:`CohereSettings`'."""

    model_config = SettingsConfigDict(env_prefix="NEWSRAG_COHERE_RERANK_", extra="ignore")

    model: str = DEFAULT_MODEL
    timeout: float = Field(10.0, gt=0)
    max_retries: int = Field(2, ge=0, le=10)
    max_retry_wait: float = Field(5.0, ge=0)


def document(hit: Hit) -> str:
    title = hit.chunk.title.strip()
    text = hit.chunk.text.strip()
    return (f"{title}\n{text}" if title else text) or " "  # the API rejects empty documents


class CohereReranker(CohereClient[CohereSettings]):
    """Implements ``newsrag.retrieval.search.Reranker``."""

    settings_class = CohereSettings
    purpose = "NEWSRAG_SEARCH_RERANK=cohere"

    def __init__(self, settings: CohereRerankSettings | None = None,
                 provider_settings: CohereSettings | None = None, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(provider_settings, sleep=sleep)
        self.settings = settings or defaults(CohereRerankSettings)
        self.model = self.settings.model

    def _resolve_connection(self) -> Connection:
        return self._account_connection(self.settings.timeout)

    def _retry_policy(self) -> RetryPolicy:  # a search is waiting: no long Retry-After
        return RetryPolicy(self.settings.max_retries, self.settings.max_retry_wait, give_up_over_max_wait=True)

    def rerank(self, query: str, query_vector: Sequence[float] | None, hits: Sequence[Hit],
               top_k: int) -> list[Hit]:
        if len(hits) < 2:
            return list(hits[:top_k])
        _ = self.client  # ConfigError/SetupError raise: configuration, not a provider failure
        top_n = min(top_k, len(hits))
        documents = [document(h) for h in hits]
        try:
            order = self.retrying(lambda: self._attempt(query, documents, top_n))
        except Exception as exc:  # reranking is optional: never fail the search for it
            log.warning("cohere rerank failed, keeping the search order: %s", exc,
                        exc_info=not isinstance(exc, ProviderError))
            return list(hits[:top_k])
        return [replace(hits[i], score=score) for i, score in order]

    def _attempt(self, query: str, documents: list[str], top_n: int) -> list[tuple[int, float]]:
        reply = self.call(lambda client: client.rerank(model=self.model, query=query, documents=documents,
                                                       top_n=top_n))
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
