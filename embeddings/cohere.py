"""Cohere embeddings through the official SDK's ``cohere.ClientV2`` (``POST {base_url}/v2/embed``).

Models: embed-v4.0 (the default; 1536 dimensions, or 256/512/1024 via ``NEWSRAG_EMBED_DIMENSIONS``),
embed-english-v3.0 and embed-multilingual-v3.0 (1024). Documents are embedded with
``input_type="search_document"``, queries with ``"search_query"``, as Cohere's retrieval models
expect. The SDK takes ``base_url`` (``COHERE_BASE_URL``, for a proxy or a test server) and
``max_retries=0``, and exposes status and headers on its errors, so it is used rather than raw
HTTP; retries are ours (tenacity, 429/5xx/timeouts, Retry-After) under the ``cohere`` governor.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import httpx
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

PROVIDER = "cohere"
DEFAULT_MODEL = "embed-v4.0"
MODELS = {"embed-v4.0": 1536, "embed-english-v3.0": 1024, "embed-multilingual-v3.0": 1024}
OUTPUT_DIMENSIONS = {"embed-v4.0": (256, 512, 1024, 1536)}  # models taking `output_dimension`
DEFAULT_BASE_URL = "https://api.cohere.com"
MAX_TEXTS = 96  # API limit per request
MAX_REQUEST_TOKENS = 250_000
InputType = Literal["search_document", "search_query"]


class CohereEmbeddingSettings(BaseSettings):
    """``COHERE_*`` variables. ``COHERE_BUDGET_TOKENS`` caps the tokens one process may embed."""

    model_config = SettingsConfigDict(env_prefix="COHERE_", extra="ignore")

    api_key: SecretStr | None = None
    base_url: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)
    rpm: int = Field(default=2000, ge=1)  # production-key limit of the embed endpoint
    tpm: int = Field(default=5_000_000, ge=1)
    budget_tokens: int | None = Field(default=None, ge=1)

    @field_validator("api_key")
    @classmethod
    def _no_placeholder(cls, v: SecretStr | None) -> SecretStr | None:
        return check_secret(v, "COHERE_API_KEY")


def resolve_model(settings: EmbeddingSettings) -> tuple[str, int, int | None]:
    """(model, output dimensions, value for the API's ``output_dimension`` or None)."""
    model = settings.model or DEFAULT_MODEL
    want = settings.dimensions
    native = MODELS.get(model)
    if native is None:
        if want is None:
            raise ConfigError(f"NEWSRAG_EMBED_MODEL: unknown Cohere model {model!r} (known: "
                              f"{sorted(MODELS)}); for another model set NEWSRAG_EMBED_DIMENSIONS")
        return model, want, None
    if want is None or want == native:
        return model, native, None
    allowed = OUTPUT_DIMENSIONS.get(model)
    if allowed is None:
        raise ConfigError(f"NEWSRAG_EMBED_DIMENSIONS: {model} always returns {native} dimensions (got {want})")
    if want not in allowed:
        raise ConfigError(f"NEWSRAG_EMBED_DIMENSIONS: {model} supports {list(allowed)} (got {want})")
    return model, want, want


class CohereEmbedder:
    def __init__(self, settings: EmbeddingSettings | None = None,
                 provider_settings: CohereEmbeddingSettings | None = None, *,
                 governor: RateGovernor | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings or load(EmbeddingSettings, provider=PROVIDER)
        self.model, self._dims, self._dims_param = resolve_model(self.settings)
        explicit = "batch_size" in self.settings.model_fields_set
        self.batch_size = min(self.settings.batch_size if explicit else MAX_TEXTS, MAX_TEXTS)
        self._provider_settings = provider_settings
        self._governor = governor
        self._sleep = sleep
        self._client: Any = None
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return f"{PROVIDER}/{self.model}" + (f"@{self._dims_param}" if self._dims_param else "")

    @property
    def dimensions(self) -> int:
        return self._dims

    @property
    def provider_settings(self) -> CohereEmbeddingSettings:
        """``COHERE_*`` settings, read on first use."""
        if self._provider_settings is None:
            self._provider_settings = load(CohereEmbeddingSettings)
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
                    raise ConfigError("COHERE_API_KEY is not set; the cohere embedder needs an API key")
                try:
                    import cohere
                except ImportError as exc:
                    raise SetupError("the cohere package is not installed; pip install 'newsrag[cohere]'") from exc
                self._http = httpx.Client(timeout=ps.timeout)
                self._client = cohere.ClientV2(
                    api_key=key, base_url=ps.base_url or DEFAULT_BASE_URL, timeout=ps.timeout,
                    max_retries=0, httpx_client=self._http, client_name="newsrag",
                    log_warning_experimental_features=False)
            return self._client

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, "search_document")

    def embed_query(self, text: str) -> Vectors:
        return self._embed([text], "search_query")[0]

    def close(self) -> None:
        with self._lock:
            http, self._http, self._client = self._http, None, None
        if http is not None:
            http.close()

    # -- requests ------------------------------------------------------------------------------

    def _embed(self, texts: Sequence[str], input_type: InputType) -> Vectors:
        out = np.zeros((len(texts), self._dims), dtype=np.float32)
        for start, batch, tokens in batches(texts, self.batch_size, MAX_REQUEST_TOKENS):
            out[start:start + len(batch)] = self._embed_batch(batch, tokens, input_type)
        return normalize(out) if len(texts) else out

    def _embed_batch(self, batch: list[str], tokens: int, input_type: InputType) -> Vectors:
        client = self.client  # ConfigError/SetupError before any retry
        texts = [t if t.strip() else " " for t in batch]  # the API rejects empty strings
        extra: dict[str, Any] = {"output_dimension": self._dims_param} if self._dims_param else {}

        def attempt() -> Vectors:
            governor = self.governor
            governor.acquire(tokens)
            try:
                reply = client.embed(model=self.model, texts=texts, input_type=input_type,
                                     embedding_types=["float"], **extra)
            except Exception as exc:
                err = self._translate(exc)
                if err is None:
                    raise
                if (getattr(exc, "status_code", None) or 0) >= 400:
                    governor.settle(tokens, 0)  # rejected requests are not billed
                raise err from None  # the SDK's message may quote the reply: do not chain it
            vectors, used = self._parse(reply, len(batch))
            if used is not None:
                governor.settle(tokens, used)
            return vectors

        return call_with_retries(attempt, max_retries=self.provider_settings.max_retries,
                                 sleep=self._sleep)

    def _translate(self, exc: Exception) -> ProviderError | None:
        from cohere.core.api_error import ApiError
        from cohere.core.parse_error import ParsingError

        if isinstance(exc, ApiError):
            status = exc.status_code or 0
            if 200 <= status < 300:  # the SDK raises ApiError when a 2xx body is not JSON
                return malformed(PROVIDER, self.model, "the reply is not JSON")
            return status_error(PROVIDER, self.model, status,
                                detail=error_detail(exc.body, self._secret()),
                                headers=exc.headers, key_variable="COHERE_API_KEY")
        if isinstance(exc, httpx.TimeoutException):
            return TransientProviderError(PROVIDER, f"{self.model}: request timed out")
        if isinstance(exc, httpx.TransportError):
            return TransientProviderError(PROVIDER, f"{self.model}: connection failed")
        if isinstance(exc, (ParsingError, ValueError)):
            return malformed(PROVIDER, self.model, f"{type(exc).__name__} while parsing the reply")
        return None

    def _parse(self, reply: Any, n: int) -> tuple[Vectors, int | None]:
        vectors = getattr(getattr(reply, "embeddings", None), "float_", None)
        if not isinstance(vectors, list) or len(vectors) != n:
            got = len(vectors) if isinstance(vectors, list) else "no float embeddings"
            raise malformed(PROVIDER, self.model, f"expected {n} embeddings, got {got}")
        for vector in vectors:
            if not isinstance(vector, list) or len(vector) != self._dims:
                length = len(vector) if isinstance(vector, list) else type(vector).__name__
                raise malformed(PROVIDER, self.model, f"vector of length {length}, expected {self._dims}")
        try:
            arr = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError):
            raise malformed(PROVIDER, self.model, "non-numeric embedding values") from None
        if not np.isfinite(arr).all():
            raise malformed(PROVIDER, self.model, "non-finite embedding values")
        billed = getattr(getattr(getattr(reply, "meta", None), "billed_units", None), "input_tokens", None)
        return arr, int(billed) if isinstance(billed, (int, float)) else None


@register(PROVIDER)
def _create(settings: EmbeddingSettings) -> CohereEmbedder:
    return CohereEmbedder(settings)
