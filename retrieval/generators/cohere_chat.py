"""The ``cohere`` generator: Cohere's v2 Chat API through ``cohere.ClientV2``.

``chat`` (``POST {base_url}/v2/chat``) with ``messages=[{role: system}, {role: user}]`` and the
template's ``model_parameters`` (temperature, max_tokens, top_p -> p, top_k -> k, seed,
stop -> stop_sequences, presence/frequency penalty); the answer is the text items of
``message.content``. :meth:`stream` uses ``chat_stream`` and yields the ``content-delta`` events'
``delta.message.content.text``. Prompting, citations and abstention: :mod:`.llm` (Cohere's own
document/citation mode is not used: the context travels in the prompt like for every model).

Settings: ``NEWSRAG_COHERE_CHAT_MODEL`` (command-a-03-2025), ``_TIMEOUT`` (60), ``_MAX_RETRIES``
(3), ``_MAX_RETRY_WAIT`` (30); the key and base URL are ``COHERE_API_KEY``/``COHERE_BASE_URL``
(:class:`~newsrag.providers.cohere.CohereSettings`); both models come in through the constructor
(the ``cohere`` factory reads them from the root settings), the key is checked on first use by the
client base (:class:`~newsrag.providers.cohere.CohereClient`). Errors follow :mod:`.openai_chat`:
408/429/5xx/timeouts retried (only before the first streamed text), everything else a
ProviderError; no text -> non-retryable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.core.settings import Settings, defaults
from newsrag.embeddings.base import Embedder
from newsrag.providers.base import Connection
from newsrag.providers.cohere import CohereClient, CohereSettings
from newsrag.providers.errors import malformed
from newsrag.retrieval.generators import register
from newsrag.retrieval.generators.llm import ChatGenerator, Messages

log = logging.getLogger(__name__)

PROVIDER = NAME = "cohere"
DEFAULT_MODEL = "command-a-03-2025"
PARAMETERS = {"temperature": "temperature", "max_tokens": "max_tokens", "top_p": "p", "top_k": "k",
              "seed": "seed", "stop": "stop_sequences", "presence_penalty": "presence_penalty",
              "frequency_penalty": "frequency_penalty"}


class CohereChatSettings(BaseSettings):
    """The ``cohere`` generator's own settings; the key and base URL are :class:`CohereSettings`'."""

    model_config = SettingsConfigDict(env_prefix="NEWSRAG_COHERE_CHAT_", extra="ignore")

    model: str = DEFAULT_MODEL
    timeout: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0, le=20)
    max_retry_wait: float = Field(30.0, ge=0)


class CohereChatGenerator(ChatGenerator, CohereClient[CohereSettings]):
    name = NAME
    provider = PROVIDER
    parameters = PARAMETERS
    settings_class = CohereSettings
    purpose = "the cohere generator"

    def __init__(self, settings: CohereChatSettings | None = None,
                 provider_settings: CohereSettings | None = None, *,
                 sleep: Callable[[float], None] = time.sleep, today: Callable[[], date] | None = None,
                 templates: Path | None = None) -> None:
        self.settings = settings or defaults(CohereChatSettings)
        ChatGenerator.__init__(self, self.settings.model, max_retries=self.settings.max_retries,
                               max_retry_wait=self.settings.max_retry_wait, sleep=sleep, today=today,
                               templates=templates)
        CohereClient.__init__(self, provider_settings, sleep=sleep)

    def _resolve_connection(self) -> Connection:
        return self._account_connection(self.settings.timeout)

    # -- requests ------------------------------------------------------------------------------

    def _complete(self, messages: Messages, params: dict[str, Any]) -> str:
        reply = self.call(lambda client: client.chat(model=self.model, messages=messages, **params))
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
            with self.translating():
                events = client.chat_stream(model=self.model, messages=messages, **params)
                for event in events:
                    if getattr(event, "type", None) != "content-delta":
                        continue
                    delta = getattr(event, "delta", None)
                    text = getattr(getattr(getattr(delta, "message", None), "content", None), "text", None)
                    if isinstance(text, str) and text:
                        yield text
        finally:
            if events is not None and hasattr(events, "close"):
                events.close()


@register(NAME)
def _create(embedder: Embedder | None, settings: Settings | None = None) -> CohereChatGenerator:
    root = settings or Settings({})
    return CohereChatGenerator(root.get(CohereChatSettings), root.get(CohereSettings))
