"""Cohere embeddings through the official SDK's ``cohere.ClientV2`` (``POST {base_url}/v2/embed``).

Models: embed-v4.0 (the default; 1536 dimensions, or 256/512/1024 via ``NEWSRAG_EMBED_DIMENSIONS``),
embed-english-v3.0 and embed-multilingual-v3.0 (1024). Documents are embedded with
``input_type="search_document"``, queries with ``"search_query"``, as Cohere's retrieval models
expect. The client (``COHERE_BASE_URL`` for a proxy or a test server, the key read on first use,
the SDK's retries off, errors translated) is :class:`~newsrag.providers.cohere.CohereClient`'s;
retries are tenacity's (429/5xx/timeouts, Retry-After) under the ``cohere`` governor.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field

from newsrag.core.errors import ConfigError
from newsrag.core.settings import EmbeddingSettings, Settings, load
from newsrag.embeddings.base import Vectors, normalize
from newsrag.embeddings.registry import register
from newsrag.providers.base import Connection
from newsrag.providers.cohere import DEFAULT_BASE_URL, CohereClient, CohereSettings
from newsrag.providers.errors import malformed
from newsrag.providers.governor import RateGovernor, batches, governor_for
from newsrag.providers.retry import RetryPolicy

__all__ = ["DEFAULT_BASE_URL", "CohereEmbedder", "CohereEmbeddingSettings", "resolve_model"]

PROVIDER = "cohere"
DEFAULT_MODEL = "embed-v4.0"
MODELS = {"embed-v4.0": 1536, "embed-english-v3.0": 1024, "embed-multilingual-v3.0": 1024}
OUTPUT_DIMENSIONS = {"embed-v4.0": (256, 512, 1024, 1536)}  # models taking `output_dimension`
MAX_TEXTS = 96  # API limit per request
MAX_REQUEST_TOKENS = 250_000
InputType = Literal["search_document", "search_query"]


class CohereEmbeddingSettings(CohereSettings):
    """``COHERE_*`` variables of the embedder: the account's key and base URL, and per request
    timeout and retries, the governor's limits. ``COHERE_BUDGET_TOKENS`` caps the tokens one
    process may embed."""

    timeout: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)
    rpm: int = Field(default=2000, ge=1)  # production-key limit of the embed endpoint
    tpm: int = Field(default=5_000_000, ge=1)
    budget_tokens: int | None = Field(default=None, ge=1)


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


class CohereEmbedder(CohereClient[CohereEmbeddingSettings]):
    settings_class = CohereEmbeddingSettings
    purpose = "the cohere embedder"

    def __init__(self, settings: EmbeddingSettings | None = None,
                 provider_settings: CohereEmbeddingSettings | None = None, *, root: Settings | None = None,
                 governor: RateGovernor | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        """``provider_settings`` (the ``COHERE_*`` account, limits), or the ``root`` to read them
        from on first use (a bad value stops only a run that embeds); neither: the defaults."""
        super().__init__(provider_settings, sleep=sleep)
        self._root = root
        self.settings = settings or load(EmbeddingSettings, {}, provider=PROVIDER)  # the defaults
        self.model, self._dims, self._dims_param = resolve_model(self.settings)
        explicit = "batch_size" in self.settings.model_fields_set
        self.batch_size = min(self.settings.batch_size if explicit else MAX_TEXTS, MAX_TEXTS)
        self._governor = governor

    @property
    def provider_settings(self) -> CohereEmbeddingSettings:
        if self._provider_settings is None and self._root is not None:
            self._provider_settings = self._root.get(CohereEmbeddingSettings)
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
        return self._embed(texts, "search_document")

    def embed_query(self, text: str) -> Vectors:
        return self._embed([text], "search_query")[0]

    # -- requests ------------------------------------------------------------------------------

    def _embed(self, texts: Sequence[str], input_type: InputType) -> Vectors:
        out = np.zeros((len(texts), self._dims), dtype=np.float32)
        for start, batch, tokens in batches(texts, self.batch_size, MAX_REQUEST_TOKENS):
            out[start:start + len(batch)] = self._embed_batch(batch, tokens, input_type)
        return normalize(out) if len(texts) else out

    def _embed_batch(self, batch: list[str], tokens: int, input_type: InputType) -> Vectors:
        texts = [t if t.strip() else " " for t in batch]  # the API rejects empty strings
        extra: dict[str, Any] = {"output_dimension": self._dims_param} if self._dims_param else {}

        def attempt() -> Vectors:
            reply = self.call(lambda client: client.embed(
                model=self.model, texts=texts, input_type=input_type, embedding_types=["float"], **extra),
                tokens=tokens)
            vectors, used = self._parse(reply, len(batch))
            if used is not None:
                self.governor.settle(tokens, used)
            return vectors

        return self.retrying(attempt)

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
def _create(settings: EmbeddingSettings, root: Settings | None = None) -> CohereEmbedder:
    """The entry point: the provider's account settings (``COHERE_*``) from the root, on first use."""
    return CohereEmbedder(settings, root=root)
