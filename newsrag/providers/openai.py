"""OpenAI (and OpenAI-compatible servers): the ``OPENAI_*`` settings and the SDK-specific half of
the client base, :class:`OpenAIClient` (``openai.OpenAI`` with its retries off, and its exceptions
translated)."""

from __future__ import annotations

from types import ModuleType
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.core.errors import ProviderError
from newsrag.core.settings import check_secret
from newsrag.providers.base import Account, Closeable, Connection, ProviderClient
from newsrag.providers.errors import (
    TransientProviderError,
    connection_failed,
    error_detail,
    malformed,
    status_error,
    timed_out,
)

PROVIDER = "openai"
KEY_VARIABLE = "OPENAI_API_KEY"
DEFAULT_BASE_URL = "https://api.openai.com/v1"

A = TypeVar("A", bound=Account)


class OpenAISettings(BaseSettings):
    """``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``: the account every OpenAI consumer falls back on."""

    model_config = SettingsConfigDict(env_prefix="OPENAI_", extra="ignore")

    api_key: SecretStr | None = None
    base_url: str | None = None

    @field_validator("api_key")
    @classmethod
    def _no_placeholder(cls, v: SecretStr | None) -> SecretStr | None:
        return check_secret(v, KEY_VARIABLE)


class OpenAIClient(ProviderClient[A]):
    provider = PROVIDER
    package = "openai"
    key_variable = KEY_VARIABLE

    def _connect(self, sdk: ModuleType, connection: Connection, key: str | None) -> tuple[Any, Closeable]:
        client = sdk.OpenAI(api_key=key or "unused", base_url=connection.base_url or DEFAULT_BASE_URL,
                            timeout=connection.timeout, max_retries=0)
        return client, client

    def _translate(self, exc: Exception) -> ProviderError | None:
        import openai

        if isinstance(exc, openai.APIStatusError):
            return status_error(PROVIDER, self.model, exc.status_code,
                                detail=error_detail(exc.body, self.secret()),
                                headers=exc.response.headers, key_variable=self.connection.key_variable)
        if isinstance(exc, openai.APITimeoutError):
            return timed_out(PROVIDER, self.model, self.connection.timeout)
        if isinstance(exc, openai.APIConnectionError):
            return connection_failed(PROVIDER, self.model)
        if isinstance(exc, (openai.APIResponseValidationError, ValueError)):
            return malformed(PROVIDER, self.model, f"{type(exc).__name__} while parsing the reply")
        if isinstance(exc, openai.APIError):  # an error event inside a stream
            detail = error_detail(exc.body, self.secret()) or "error event"
            return TransientProviderError(PROVIDER, f"{self.model}: the server reported: {detail}")
        if isinstance(exc, _transport_errors()):  # a stream broken off mid-way
            return connection_failed(PROVIDER, self.model, "connection lost")
        return None


def _transport_errors() -> tuple[type[Exception], ...]:
    """httpx's and, for openai>=3 (which ships its own fork), httpx2's TransportError."""
    try:
        import httpx2
    except ImportError:
        return (httpx.TransportError,)
    return (httpx.TransportError, httpx2.TransportError)
