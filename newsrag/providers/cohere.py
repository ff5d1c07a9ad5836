"""Cohere: the ``COHERE_*`` settings and the SDK-specific half of the client base,
:class:`CohereClient` (``cohere.ClientV2`` over our own ``httpx.Client``, its retries off, and its
exceptions translated)."""

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
    connection_failed,
    error_detail,
    malformed,
    status_error,
    timed_out,
)

PROVIDER = "cohere"
KEY_VARIABLE = "COHERE_API_KEY"
DEFAULT_BASE_URL = "https://api.cohere.com"

A = TypeVar("A", bound=Account)


class CohereSettings(BaseSettings):
    """``COHERE_API_KEY`` and ``COHERE_BASE_URL``: the account every Cohere consumer uses."""

    model_config = SettingsConfigDict(env_prefix="COHERE_", extra="ignore")

    api_key: SecretStr | None = None
    base_url: str | None = None

    @field_validator("api_key")
    @classmethod
    def _no_placeholder(cls, v: SecretStr | None) -> SecretStr | None:
        return check_secret(v, KEY_VARIABLE)


class CohereClient(ProviderClient[A]):
    provider = PROVIDER
    package = "cohere"
    key_variable = KEY_VARIABLE

    def _connect(self, sdk: ModuleType, connection: Connection, key: str | None) -> tuple[Any, Closeable]:
        http = httpx.Client(timeout=connection.timeout)  # ours, so that close() closes it
        client = sdk.ClientV2(api_key=key, base_url=connection.base_url or DEFAULT_BASE_URL,
                              timeout=connection.timeout, max_retries=0, httpx_client=http,
                              client_name="newsrag", log_warning_experimental_features=False)
        return client, http

    def _translate(self, exc: Exception) -> ProviderError | None:
        from cohere.core.api_error import ApiError
        from cohere.core.parse_error import ParsingError

        if isinstance(exc, ApiError):
            status = exc.status_code or 0
            if 200 <= status < 300:  # the SDK raises ApiError when a 2xx body is not JSON
                return malformed(PROVIDER, self.model, "the reply is not JSON")
            return status_error(PROVIDER, self.model, status, detail=error_detail(exc.body, self.secret()),
                                headers=exc.headers, key_variable=self.connection.key_variable)
        if isinstance(exc, httpx.TimeoutException):
            return timed_out(PROVIDER, self.model, self.connection.timeout)
        if isinstance(exc, httpx.TransportError):
            return connection_failed(PROVIDER, self.model)
        if isinstance(exc, (ParsingError, ValueError)):
            return malformed(PROVIDER, self.model, f"{type(exc).__name__} while parsing the reply")
        return None
