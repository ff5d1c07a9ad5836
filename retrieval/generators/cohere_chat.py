"""The ``cohere`` generator: Cohere's v2 Chat API through ``cohere.ClientV2``.

``chat`` (``POST {base_url}/v2/chat``) with ``messages=[{role: system}, {role: user}]`` and the
template's ``model_parameters`` (temperature, max_tokens, top_p -> p, top_k -> k, seed,
stop -> stop_sequences, presence/frequency penalty); the answer is the text items of
``message.content``. :meth:`stream` uses ``chat_stream`` and yields the ``content-delta`` events'
``delta.message.content.text``. Prompting, citations and abstention: :mod:`.llm` (Cohere's own
document/citation mode is not used: the context travels in the prompt like for every model).

Settings: ``NEWSRAG_COHERE_CHAT_MODEL`` (command-a-03-2025), ``_TIMEOUT`` (60), ``_MAX_RETRIES``
(3), ``_MAX_RETRY_WAIT`` (30); the key and base URL are ``COHERE_API_KEY``/``COHERE_BASE_URL``,
read on first use. Errors follow :mod:`.openai_chat`: 408/429/5xx/timeouts retried (only before
the first streamed text), everything else a ProviderError; no text -> non-retryable.
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
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.core.errors import ConfigError, ProviderError, SetupError
from newsrag.core.settings import load
from newsrag.embeddings.base import Embedder
from newsrag.embeddings.cohere import DEFAULT_BASE_URL, CohereEmbeddingSettings
from newsrag.providers.errors import (
    TransientProviderError,
    error_detail,
    malformed,
    status_error,
)
from newsrag.retrieval.generators import register
from newsrag.retrieval.generators.llm import ChatGenerator, Messages

log = logging.getLogger(__name__)

PROVIDER = NAME = "cohere"
DEFAULT_MODEL = "command-a-03-2025"
PARAMETERS = {"temperature": "temperature", "max_tokens": "max_tokens", "top_p": "p", "top_k": "k",
              "seed": "seed", "stop": "stop_sequences", "presence_penalty": "presence_penalty",
              "frequency_penalty": "frequency_penalty"}


class CohereChatSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSRAG_COHERE_CHAT_", extra="ignore")

    model: str = DEFAULT_MODEL
    timeout: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0, le=20)
    max_retry_wait: float = Field(30.0, ge=0)


class CohereChatGenerator(ChatGenerator):
    name = NAME
    provider = PROVIDER
    parameters = PARAMETERS

    def __init__(self, settings: CohereChatSettings | None = None,
                 provider_settings: CohereEmbeddingSettings | None = None, *,
                 sleep: Callable[[float], None] = time.sleep, today: Callable[[], date] | None = None,
                 templates: Path | None = None) -> None:
        self.settings = settings or load(CohereChatSettings)
        super().__init__(self.settings.model, max_retries=self.settings.max_retries,
                         max_retry_wait=self.settings.max_retry_wait, sleep=sleep, today=today,
                         templates=templates)
        self._provider_settings = provider_settings
        self._client: Any = None
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def provider_settings(self) -> CohereEmbeddingSettings:
        """``COHERE_*`` settings (key, base URL), read on first use."""
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
                    raise ConfigError("COHERE_API_KEY is not set; the cohere generator needs an API key")
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

    # -- requests ------------------------------------------------------------------------------

    def _complete(self, messages: Messages, params: dict[str, Any]) -> str:
        client = self.client  # ConfigError/SetupError before any request
        try:
            reply = client.chat(model=self.model, messages=messages, **params)
        except Exception as exc:
            err = self._translated(exc)
            if err is None:
                raise
            raise err from None  # the SDK's message may quote the reply
        content = getattr(getattr(reply, "message", None), "content", None)
        texts = [getattr(item, "text", None) for item in content] if isinstance(content, list) else []
        text = "".join(t for t in texts if isinstance(t, str))
        if not text.strip():
            raise malformed(PROVIDER, self.model, "no message content")
        if getattr(reply, "finish_reason", None) == "MAX_TOKENS":
            log.warning("cohere (%s): the answer was cut at max_tokens", self.model)
        return text

    def _pieces(self, messages: Messages, params: dict[str, Any]) -> Generator[str, None, None]:
        client = self.client
        events: Any = None
        try:
            events = client.chat_stream(model=self.model, messages=messages, **params)
            for event in events:
                if getattr(event, "type", None) != "content-delta":
                    continue
                delta = getattr(event, "delta", None)
                text = getattr(getattr(getattr(delta, "message", None), "content", None), "text", None)
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
            if events is not None and hasattr(events, "close"):
                events.close()

    def _translated(self, exc: Exception) -> ProviderError | None:
        from cohere.core.api_error import ApiError
        from cohere.core.parse_error import ParsingError

        if isinstance(exc, ApiError):
            status = exc.status_code or 0
            if 200 <= status < 300:  # the SDK raises ApiError when a 2xx body is not JSON
                return malformed(PROVIDER, self.model, "the reply is not JSON")
            return status_error(PROVIDER, self.model, status, detail=error_detail(exc.body, self._secret()),
                                headers=exc.headers, key_variable="COHERE_API_KEY")
        if isinstance(exc, httpx.TimeoutException):
            return TransientProviderError(PROVIDER, f"{self.model}: request timed out")
        if isinstance(exc, httpx.TransportError):
            return TransientProviderError(PROVIDER, f"{self.model}: connection failed")
        if isinstance(exc, (ParsingError, ValueError)):
            return malformed(PROVIDER, self.model, f"{type(exc).__name__} while parsing the reply")
        return None


@register(NAME)
def _create(embedder: Embedder | None) -> CohereChatGenerator:
    return CohereChatGenerator()
