"""The ``openai`` generator: OpenAI Chat Completions, or any OpenAI-compatible server (Ollama,
vLLM, LM Studio, ...) through a base URL.

``POST {base_url}/chat/completions`` with the template's system and user messages and its
``model_parameters`` (temperature, max_tokens, top_p, seed, stop, presence/frequency penalty);
``stream=True`` for :meth:`stream`. Prompting, citations and abstention: :mod:`.llm`.

Settings (``NEWSRAG_OPENAI_CHAT_*``, :class:`OpenAIChatSettings`, given to the constructor): ``MODEL``
(gpt-4o-mini), ``TIMEOUT`` (60 s per request / between streamed chunks), ``MAX_RETRIES`` (3),
``MAX_RETRY_WAIT`` (30 s: a longer Retry-After fails at once), and ``BASE_URL``/``API_KEY`` for a
chat server other than ``OPENAI_BASE_URL``. The key is checked on first use; with
``NEWSRAG_OPENAI_CHAT_BASE_URL`` set, ``OPENAI_API_KEY`` is never sent there (set
``NEWSRAG_OPENAI_CHAT_API_KEY`` if that server needs a key). A key is required only for the
default OpenAI endpoint.

The client (lazy SDK import, key check, error translation, close) is
:class:`~newsrag.providers.openai.OpenAIClient`'s. Errors: 408/429/5xx, timeouts and connection
failures are retried (tenacity, Retry-After honoured, the SDK's own retries off) - when streaming,
only before the first text arrives; then and otherwise they raise :class:`ProviderError` with
``retryable`` set. A reply without choices or text raises a non-retryable ProviderError naming
provider and model. Keys never appear in errors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.core.settings import Settings, check_secret, defaults
from newsrag.embeddings.base import Embedder
from newsrag.providers.base import Connection
from newsrag.providers.errors import malformed
from newsrag.providers.openai import KEY_VARIABLE, OpenAIClient, OpenAISettings
from newsrag.retrieval.generators import register
from newsrag.retrieval.generators.llm import ChatGenerator, Messages

log = logging.getLogger(__name__)

PROVIDER = NAME = "openai"
DEFAULT_MODEL = "gpt-4o-mini"
PARAMETERS = {name: name for name in ("temperature", "max_tokens", "top_p", "seed", "stop",
                                      "presence_penalty", "frequency_penalty")}
OWN_KEY = "NEWSRAG_OPENAI_CHAT_API_KEY"


class OpenAIChatSettings(BaseSettings):
    """The ``openai`` generator's own settings; key and base URL fall back on :class:`OpenAISettings`."""

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
        return check_secret(v, OWN_KEY)


class OpenAIChatGenerator(ChatGenerator, OpenAIClient[OpenAISettings]):
    name = NAME
    provider = PROVIDER
    parameters = PARAMETERS
    settings_class = OpenAISettings
    purpose = "the openai generator"
    keyless_hint = "or NEWSRAG_OPENAI_CHAT_BASE_URL for a keyless compatible server"

    def __init__(self, settings: OpenAIChatSettings | None = None,
                 provider_settings: OpenAISettings | None = None, *,
                 sleep: Callable[[float], None] = time.sleep, today: Callable[[], date] | None = None,
                 templates: Path | None = None) -> None:
        self.settings = settings or defaults(OpenAIChatSettings)
        ChatGenerator.__init__(self, self.settings.model, max_retries=self.settings.max_retries,
                               max_retry_wait=self.settings.max_retry_wait, sleep=sleep, today=today,
                               templates=templates)
        OpenAIClient.__init__(self, provider_settings, sleep=sleep)

    def _resolve_connection(self) -> Connection:
        """A chat server of its own gets its own key only; else OpenAI's base URL, either key."""
        own = self.settings
        if own.base_url:
            return Connection(own.base_url, own.api_key, OWN_KEY, own.timeout, keyless=True)
        ps = self.provider_settings
        return Connection(ps.base_url, own.api_key or ps.api_key, OWN_KEY if own.api_key else KEY_VARIABLE,
                          own.timeout, keyless=bool(ps.base_url))

    # -- requests ------------------------------------------------------------------------------

    def _complete(self, messages: Messages, params: dict[str, Any]) -> str:
        reply = self.call(lambda client: client.chat.completions.create(
            model=self.model, messages=messages, **params))
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
            with self.translating():
                stream = client.chat.completions.create(model=self.model, messages=messages, stream=True,
                                                        **params)
                for chunk in stream:
                    choices = getattr(chunk, "choices", None)
                    if not choices:  # e.g. a usage-only chunk
                        continue
                    text = getattr(getattr(choices[0], "delta", None), "content", None)
                    if isinstance(text, str) and text:
                        yield text
        finally:
            if stream is not None:
                stream.close()


@register(NAME)
def _create(embedder: Embedder | None, settings: Settings | None = None) -> OpenAIChatGenerator:
    root = settings or Settings({})
    return OpenAIChatGenerator(root.get(OpenAIChatSettings), root.get(OpenAISettings))
