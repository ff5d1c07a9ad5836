"""OpenAI embeddings (and OpenAI-compatible servers through ``OPENAI_BASE_URL``).

Models: text-embedding-3-small (1536, the default) and text-embedding-3-large (3072), both able to
return fewer dimensions (``NEWSRAG_EMBED_DIMENSIONS``); text-embedding-ada-002 (1536). Another
model on a compatible server needs ``NEWSRAG_EMBED_DIMENSIONS`` set to its vector size.

The key is read on first use, not at import. One ``openai.OpenAI`` client per embedder, created
lazily with the SDK's own retries off: we retry with tenacity, only on 429/5xx/timeouts, under the
process's :class:`~newsrag.embeddings.governor.RateGovernor` for ``openai``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.core.errors import ConfigError, ProviderError, SetupError
from newsrag.core.settings import EmbeddingSettings, check_secret, load
from newsrag.embeddings.base import Vectors, normalize
from newsrag.embeddings.governor import (
    RateGovernor,
    TransientProviderError,
    batches,
    call_with_retries,
    error_detail,
    governor_for,
    malformed,
    status_error,
)
from newsrag.embeddings.registry import register

PROVIDER = "openai"
DEFAULT_MODEL = "text-embedding-3-small"
MODELS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
REDUCIBLE = {"text-embedding-3-small", "text-embedding-3-large"}  # accept the `dimensions` parameter
DEFAULT_BASE_URL = "https://api.openai.com/v1"
MAX_INPUTS = 2048  # API limit per request
MAX_REQUEST_TOKENS = 250_000  # API limit 300k; our chars/4 estimate can undercount, keep headroom
DEFAULT_BATCH = 512  # when NEWSRAG_EMBED_BATCH_SIZE is not set (its default is tuned for MiniLM)


class OpenAIEmbeddingSettings(BaseSettings):
    """``OPENAI_*`` variables. ``OPENAI_BUDGET_TOKENS`` caps the tokens one process may embed."""

    model_config = SettingsConfigDict(env_prefix="OPENAI_", extra="ignore")

    api_key: SecretStr | None = None
    base_url: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)
    rpm: int = Field(default=3000, ge=1)
    tpm: int = Field(default=1_000_000, ge=1)
    budget_tokens: int | None = Field(default=None, ge=1)

    @field_validator("api_key")
    @classmethod
    def _no_placeholder(cls, v: SecretStr | None) -> SecretStr | None:
        return check_secret(v, "OPENAI_API_KEY")


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


class OpenAIEmbedder:
    def __init__(self, settings: EmbeddingSettings | None = None,
                 provider_settings: OpenAIEmbeddingSettings | None = None, *,
                 governor: RateGovernor | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings or load(EmbeddingSettings, provider=PROVIDER)
        self.model, self._dims, self._dims_param = resolve_model(self.settings)
        explicit = "batch_size" in self.settings.model_fields_set
        self.batch_size = min(self.settings.batch_size if explicit else DEFAULT_BATCH, MAX_INPUTS)
        self._provider_settings = provider_settings
        self._governor = governor
        self._sleep = sleep
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return f"{PROVIDER}/{self.model}" + (f"@{self._dims_param}" if self._dims_param else "")

    @property
    def dimensions(self) -> int:
        return self._dims

    @property
    def provider_settings(self) -> OpenAIEmbeddingSettings:
        """``OPENAI_*`` settings, read on first use."""
        if self._provider_settings is None:
            self._provider_settings = load(OpenAIEmbeddingSettings)
        return self._provider_settings

    @property
    def governor(self) -> RateGovernor:
        if self._governor is not None:
            return self._governor
        ps = self.provider_settings
        return governor_for(PROVIDER, ps.rpm, ps.tpm, ps.budget_tokens)

    def _secret(self) -> str | None:
        key = self.provider_settings.api_key
        return key.get_secret_value() if key is not None else None

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                ps = self.provider_settings
                key = self._secret()
                if not key:
                    raise ConfigError("OPENAI_API_KEY is not set; the openai embedder needs an API key")
                try:
                    import openai
                except ImportError as exc:
                    raise SetupError("the openai package is not installed; pip install 'newsrag[openai]'") from exc
                self._client = openai.OpenAI(api_key=key, base_url=ps.base_url or DEFAULT_BASE_URL,
                                             timeout=ps.timeout, max_retries=0)
            return self._client

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dims), dtype=np.float32)
        for start, batch, tokens in batches(texts, self.batch_size, MAX_REQUEST_TOKENS):
            out[start:start + len(batch)] = self._embed_batch(batch, tokens)
        return normalize(out) if len(texts) else out

    def embed_query(self, text: str) -> Vectors:
        return self.embed_documents([text])[0]

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- one request ---------------------------------------------------------------------------

    def _embed_batch(self, batch: list[str], tokens: int) -> Vectors:
        client = self.client  # ConfigError/SetupError before any retry
        inputs = [t if t.strip() else " " for t in batch]  # the API rejects empty strings
        extra: dict[str, Any] = {"dimensions": self._dims_param} if self._dims_param else {}

        def attempt() -> Vectors:
            governor = self.governor
            governor.acquire(tokens)
            try:
                reply = client.embeddings.create(model=self.model, input=inputs,
                                                 encoding_format="float", **extra)
            except Exception as exc:
                err = self._translate(exc)
                if err is None:
                    raise
                if (getattr(exc, "status_code", None) or 0) >= 400:
                    governor.settle(tokens, 0)  # rejected requests are not billed
                raise err from None  # the SDK's message may quote the key: do not chain it
            vectors, used = self._parse(reply, len(batch))
            if used is not None:
                governor.settle(tokens, used)
            return vectors

        return call_with_retries(attempt, max_retries=self.provider_settings.max_retries,
                                 sleep=self._sleep)

    def _translate(self, exc: Exception) -> ProviderError | None:
        import openai

        if isinstance(exc, openai.APIStatusError):
            return status_error(PROVIDER, self.model, exc.status_code,
                                detail=error_detail(exc.body, self._secret()),
                                headers=exc.response.headers, key_variable="OPENAI_API_KEY")
        if isinstance(exc, openai.APITimeoutError):
            return TransientProviderError(PROVIDER, f"{self.model}: request timed out")
        if isinstance(exc, openai.APIConnectionError):
            return TransientProviderError(PROVIDER, f"{self.model}: connection failed")
        if isinstance(exc, (openai.APIResponseValidationError, ValueError)):
            return malformed(PROVIDER, self.model, f"{type(exc).__name__} while parsing the reply")
        return None

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
def _create(settings: EmbeddingSettings) -> OpenAIEmbedder:
    return OpenAIEmbedder(settings)
