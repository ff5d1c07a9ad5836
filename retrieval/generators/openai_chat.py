"""The ``openai`` generator: OpenAI Chat Completions, or any OpenAI-compatible server (Ollama,
vLLM, LM Studio, ...) through a base URL.

``POST {base_url}/chat/completions`` with the template's system and user messages and its
``model_parameters`` (temperature, max_tokens, top_p, seed, stop, presence/frequency penalty);
``stream=True`` for :meth:`stream`. Prompting, citations and abstention: :mod:`.llm`.

Settings (``NEWSRAG_OPENAI_CHAT_*``, read when the generator is created): ``MODEL``
(gpt-4o-mini), ``TIMEOUT`` (60 s per request / between streamed chunks), ``MAX_RETRIES`` (3),
``MAX_RETRY_WAIT`` (30 s: a longer Retry-After fails at once), and ``BASE_URL``/``API_KEY`` for a
chat server other than ``OPENAI_BASE_URL``. The key and base URL are read on first use; with
``NEWSRAG_OPENAI_CHAT_BASE_URL`` set, ``OPENAI_API_KEY`` is never sent there (set
``NEWSRAG_OPENAI_CHAT_API_KEY`` if that server needs a key). A key is required only for the
default OpenAI endpoint.

Errors: 408/429/5xx, timeouts and connection failures are retried (tenacity, Retry-After
honoured, the SDK's own retries off) - when streaming, only before the first text arrives; then
and otherwise they raise :class:`ProviderError` with ``retryable`` set. A reply without choices or
text raises a non-retryable ProviderError naming provider and model. Keys never appear in errors.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.core.errors import ConfigError, ProviderError, SetupError
from newsrag.core.settings import check_secret, load
from newsrag.embeddings.base import Embedder
from newsrag.providers.errors import (
    TransientProviderError,
    error_detail,
    malformed,
    status_error,
)
from newsrag.embeddings.openai import OpenAIEmbeddingSettings
from newsrag.retrieval.generators import register
from newsrag.retrieval.generators.llm import ChatGenerator, Messages

log = logging.getLogger(__name__)

PROVIDER = NAME = "openai"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
PARAMETERS = {name: name for name in ("temperature", "max_tokens", "top_p", "seed", "stop",
                                      "presence_penalty", "frequency_penalty")}


class OpenAIChatSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSRAG_OPENAI_CHAT_", extra="ignore")

    model: str = DEFAULT_MODEL
    base_url: str | None = None  # default: OPENAI_BASE_URL, else api.openai.com
    api_key: SecretStr | None = None  # default: OPENAI_API_KEY (not sent to a chat-only base_url)
    timeout: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0, le=20)
    max_retry_wait: float = Field(30.0, ge=0)

    @field_validator("api_key")
    @classmethod
    def _no_placeholder(cls, v: SecretStr | None) -> SecretStr | None:
        return check_secret(v, "NEWSRAG_OPENAI_CHAT_API_KEY")


class OpenAIChatGenerator(ChatGenerator):
    name = NAME
    provider = PROVIDER
    parameters = PARAMETERS

    def __init__(self, settings: OpenAIChatSettings | None = None,
                 provider_settings: OpenAIEmbeddingSettings | None = None, *,
                 sleep: Callable[[float], None] = time.sleep, today: Callable[[], date] | None = None,
                 templates: Path | None = None) -> None:
        self.settings = settings or load(OpenAIChatSettings)
        super().__init__(self.settings.model, max_retries=self.settings.max_retries,
                         max_retry_wait=self.settings.max_retry_wait, sleep=sleep, today=today,
                         templates=templates)
        self._provider_settings = provider_settings
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def provider_settings(self) -> OpenAIEmbeddingSettings:
        """``OPENAI_*`` settings (key, base URL), read on first use."""
        if self._provider_settings is None:
            self._provider_settings = load(OpenAIEmbeddingSettings)
        return self._provider_settings

    def _endpoint(self) -> tuple[str | None, str | None]:
        """(base URL or None for OpenAI's, key or None)."""
        own = self.settings
        if own.base_url:
            return own.base_url, own.api_key.get_secret_value() if own.api_key else None
        ps = self.provider_settings
        key = own.api_key or ps.api_key
        return ps.base_url, key.get_secret_value() if key is not None else None

    def _secret(self) -> str | None:
        try:
            return self._endpoint()[1]
        except ConfigError:
            return None

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                base_url, key = self._endpoint()
                if not key and not base_url:
                    raise ConfigError("OPENAI_API_KEY is not set; the openai generator needs an API key "
                                      "(or NEWSRAG_OPENAI_CHAT_BASE_URL for a keyless compatible server)")
                try:
                    import openai
                except ImportError as exc:
                    raise SetupError("the openai package is not installed; pip install 'newsrag[openai]'") from exc
                self._client = openai.OpenAI(api_key=key or "unused", base_url=base_url or DEFAULT_BASE_URL,
                                             timeout=self.settings.timeout, max_retries=0)
            return self._client

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- requests ------------------------------------------------------------------------------

    def _complete(self, messages: Messages, params: dict[str, Any]) -> str:
        client = self.client  # ConfigError/SetupError before any request
        try:
            reply = client.chat.completions.create(model=self.model, messages=messages, **params)
        except Exception as exc:
            err = self._translated(exc)
            if err is None:
                raise
            raise err from None  # the SDK's message may quote the key
        choices = getattr(reply, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise malformed(PROVIDER, self.model, "no choices")
        content = getattr(getattr(choices[0], "message", None), "content", None)
        if not isinstance(content, str) or not content.strip():
            raise malformed(PROVIDER, self.model, "no message content")
        if getattr(choices[0], "finish_reason", None) == "length":
            log.warning("openai (%s): the answer was cut at max_tokens", self.model)
        return content

    def _pieces(self, messages: Messages, params: dict[str, Any]) -> Generator[str, None, None]:
        client = self.client
        stream: Any = None
        try:
            stream = client.chat.completions.create(model=self.model, messages=messages, stream=True, **params)
            for chunk in stream:
                choices = getattr(chunk, "choices", None)
                if not choices:  # e.g. a usage-only chunk
                    continue
                text = getattr(getattr(choices[0], "delta", None), "content", None)
                if isinstance(text, str) and text:
                    yield text
        except ProviderError:
            raise
        except Exception as exc:
            err = self._translated(exc)
            if err is None:
                raise
            raise err from None
        finally:
            if stream is not None:
                stream.close()

    def _translated(self, exc: Exception) -> ProviderError | None:
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
        if isinstance(exc, openai.APIError):  # an error event inside a stream
            detail = error_detail(exc.body, self._secret()) or "error event"
            return TransientProviderError(PROVIDER, f"{self.model}: the server reported: {detail}")
        if isinstance(exc, _transport_errors()):  # a stream broken off mid-way
            return TransientProviderError(PROVIDER, f"{self.model}: connection lost")
        return None


def _transport_errors() -> tuple[type[Exception], ...]:
    """httpx's and, for openai>=3 (which ships its own fork), httpx2's TransportError."""
    try:
        import httpx2
    except ImportError:
        return (httpx.TransportError,)
    return (httpx.TransportError, httpx2.TransportError)


@register(NAME)
def _create(embedder: Embedder | None) -> OpenAIChatGenerator:
    return OpenAIChatGenerator()
