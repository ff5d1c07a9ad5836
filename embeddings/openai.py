"""OpenAI embeddings (and OpenAI-compatible servers through ``OPENAI_BASE_URL``).

Models: text-embedding-3-small (1536, the default) and text-embedding-3-large (3072), both able to
return fewer dimensions (``NEWSRAG_EMBED_DIMENSIONS``); text-embedding-ada-002 (1536). Another
model on a compatible server needs ``NEWSRAG_EMBED_DIMENSIONS`` set to its vector size.

The client (key read on first use, SDK guard, errors, close) is
:class:`~newsrag.providers.openai.OpenAIClient`'s; retries are tenacity's, only on
429/5xx/timeouts, under the process's :class:`~newsrag.providers.governor.RateGovernor` for
``openai``. What is here: the ``OPENAI_*`` limits, models and dimensions, batching, the reply.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pydantic import Field

from newsrag.core.errors import ConfigError
from newsrag.core.settings import EmbeddingSettings, Settings, load
from newsrag.embeddings.base import Vectors, normalize
from newsrag.embeddings.registry import register
from newsrag.providers.base import Connection
from newsrag.providers.errors import malformed
from newsrag.providers.governor import RateGovernor, batches, governor_for
from newsrag.providers.openai import OpenAIClient, OpenAISettings
from newsrag.providers.retry import RetryPolicy

PROVIDER = "openai"
DEFAULT_MODEL = "text-embedding-3-small"
MODELS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
REDUCIBLE = {"text-embedding-3-small", "text-embedding-3-large"}  # accept the `dimensions` parameter
MAX_INPUTS = 2048  # API limit per request
MAX_REQUEST_TOKENS = 250_000  # API limit 300k; our chars/4 estimate can undercount, keep headroom
DEFAULT_BATCH = 512  # when NEWSRAG_EMBED_BATCH_SIZE is not set (its default is tuned for MiniLM)


class OpenAIEmbeddingSettings(OpenAISettings):
    """``OPENAI_*`` variables of the embedder: the account's key and base URL, and per request
    timeout and retries, the governor's limits. ``OPENAI_BUDGET_TOKENS`` caps the tokens one
    process may embed."""

    timeout: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)
    rpm: int = Field(default=3000, ge=1)
    tpm: int = Field(default=1_000_000, ge=1)
    budget_tokens: int | None = Field(default=None, ge=1)


def resolve_model(settings: EmbeddingSettings) -> tuple[str, int, int | None]:
    """(model, output dimensions, value for the API's ``dimensions`` parameter or None)."""
    model = settings.model or DEFAULT_MODEL
    want = settings.dimensions
    native = MODELS.get(model)
    if native is None:
        if want is None:
            raise ConfigError(
                f"NEWSRAG_EMBED_MODEL: unknown OpenAI model {model!r} (known: {sorted(MODELS)}); for "
                "another model on an OpenAI-compatible server set NEWSRAG_EMBED_DIMENSIONS to its size")
        return model, want, None
    if want is None or want == native:
        return model, native, None
    if want > native:
        raise ConfigError(f"NEWSRAG_EMBED_DIMENSIONS: {model} returns at most {native} dimensions (got {want})")
    if model not in REDUCIBLE:
        raise ConfigError(f"NEWSRAG_EMBED_DIMENSIONS: {model} cannot return fewer dimensions; "
                          f"only {sorted(REDUCIBLE)} can")
    return model, want, want


class OpenAIEmbedder(OpenAIClient[OpenAIEmbeddingSettings]):
    settings_class = OpenAIEmbeddingSettings
    purpose = "the openai embedder"

    def __init__(self, settings: EmbeddingSettings | None = None,
                 provider_settings: OpenAIEmbeddingSettings | None = None, *, root: Settings | None = None,
                 governor: RateGovernor | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        """``provider_settings`` (the ``OPENAI_*`` account, limits), or the ``root`` to read them
        from on first use (a bad value stops only a run that embeds); neither: the defaults."""
        super().__init__(provider_settings, sleep=sleep)
        self._root = root
        self.settings = settings or load(EmbeddingSettings, {}, provider=PROVIDER)  # the defaults
        self.model, self._dims, self._dims_param = resolve_model(self.settings)
        explicit = "batch_size" in self.settings.model_fields_set
        self.batch_size = min(self.settings.batch_size if explicit else DEFAULT_BATCH, MAX_INPUTS)
        self._governor = governor

    @property
    def provider_settings(self) -> OpenAIEmbeddingSettings:
        if self._provider_settings is None and self._root is not None:
            self._provider_settings = self._root.get(OpenAIEmbeddingSettings)
        return super().provider_settings

    @property
    def model_id(self) -> str:
        return f"{PROVIDER}/{self.model}" + (f"@{self._dims_param}" if self._dims_param else "")

    @property
    def dimensions(self) -> int:
        return self._dims

    @property
    def governor(self) -> RateGovernor:
        if self._governor is not None:
            return self._governor
        ps = self.provider_settings
        return governor_for(PROVIDER, ps.rpm, ps.tpm, ps.budget_tokens)

    def _resolve_connection(self) -> Connection:
        return self._account_connection(self.provider_settings.timeout)

    def _retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.provider_settings.max_retries)

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dims), dtype=np.float32)
        for start, batch, tokens in batches(texts, self.batch_size, MAX_REQUEST_TOKENS):
            out[start:start + len(batch)] = self._embed_batch(batch, tokens)
        return normalize(out) if len(texts) else out

    def embed_query(self, text: str) -> Vectors:
        return self.embed_documents([text])[0]

    # -- one request ---------------------------------------------------------------------------

    def _embed_batch(self, batch: list[str], tokens: int) -> Vectors:
        inputs = [t if t.strip() else " " for t in batch]  # the API rejects empty strings
        extra: dict[str, Any] = {"dimensions": self._dims_param} if self._dims_param else {}

        def attempt() -> Vectors:
            reply = self.call(lambda client: client.embeddings.create(
                model=self.model, input=inputs, encoding_format="float", **extra), tokens=tokens)
            vectors, used = self._parse(reply, len(batch))
            if used is not None:
                self.governor.settle(tokens, used)
            return vectors

        return self.retrying(attempt)

    def _parse(self, reply: Any, n: int) -> tuple[Vectors, int | None]:
        data = getattr(reply, "data", None)
        if not isinstance(data, list) or len(data) != n:
            got = len(data) if isinstance(data, list) else "no data"
            raise malformed(PROVIDER, self.model, f"expected {n} embeddings, got {got}")
        rows: list[tuple[int, list[float]]] = []
        for item in data:
            index, vector = getattr(item, "index", None), getattr(item, "embedding", None)
            if not isinstance(index, int) or not isinstance(vector, list):
                raise malformed(PROVIDER, self.model, "an item lacks its index or embedding")
            if len(vector) != self._dims:
                raise malformed(PROVIDER, self.model,
                                f"vector of length {len(vector)}, expected {self._dims}")
            rows.append((index, vector))
        rows.sort(key=lambda r: r[0])  # the API does not promise order
        if [i for i, _ in rows] != list(range(n)):
            raise malformed(PROVIDER, self.model, "indices are not 0..n-1")
        try:
            arr = np.asarray([v for _, v in rows], dtype=np.float32)
        except (TypeError, ValueError):
            raise malformed(PROVIDER, self.model, "non-numeric embedding values") from None
        if not np.isfinite(arr).all():
            raise malformed(PROVIDER, self.model, "non-finite embedding values")
        usage = getattr(getattr(reply, "usage", None), "total_tokens", None)
        return arr, usage if isinstance(usage, int) else None


@register(PROVIDER)
def _create(settings: EmbeddingSettings, root: Settings | None = None) -> OpenAIEmbedder:
    """The entry point: the provider's account settings (``OPENAI_*``) from the root, on first use."""
    return OpenAIEmbedder(settings, root=root)
