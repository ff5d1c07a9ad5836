"""The client base that every OpenAI and Cohere consumer builds on: the embedders, the chat
generators, the reranker and the judge.

A consumer subclasses its provider's client (:class:`~newsrag.providers.openai.OpenAIClient`,
:class:`~newsrag.providers.cohere.CohereClient`, which hold what is SDK-specific) and says only
what is its own: where to connect (:meth:`ProviderClient._resolve_connection`, from its settings and the
provider's), how to retry (:meth:`ProviderClient._retry_policy`) and, for embedders, which rate
governor limits it. The base does the rest, once for all:

* the provider's settings (``<PROVIDER>_API_KEY``, ``<PROVIDER>_BASE_URL``) come in through the
  constructor, built by the edge that read the environment (none given: the documented defaults,
  never the process environment);
* on first use the key is checked (missing: ConfigError naming the variable, unless the consumer
  allows a keyless compatible server; a placeholder outside development: ConfigError, via
  :func:`~newsrag.core.settings.check_secret`), then the SDK is imported (missing: SetupError naming
  the extra to install) and its client created, with the SDK's own retries off;
* :meth:`ProviderClient.call` sends one request: the governor's allowance first, then the SDK's
  exceptions translated into ProviderErrors that never chain the SDK's text (it may quote the key);
* :meth:`ProviderClient.retrying` retries TransientProviderErrors only (:mod:`.retry`);
* ``close()`` is idempotent and the client is created again on next use; ``with`` closes it.
"""

from __future__ import annotations

import importlib
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar, cast

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from newsrag.core.errors import ConfigError, ProviderError, SetupError
from newsrag.core.settings import check_secret, defaults
from newsrag.providers.governor import RateGovernor
from newsrag.providers.retry import RetryPolicy

T = TypeVar("T")


class Account(Protocol):
    """A provider's own settings as the base reads them (``OPENAI_*``, ``COHERE_*``)."""

    api_key: SecretStr | None
    base_url: str | None


A = TypeVar("A", bound=Account)


class Closeable(Protocol):
    def close(self) -> None: ...


@dataclass(frozen=True)
class Connection:
    """Where one consumer sends its requests, resolved from its settings on first use."""

    base_url: str | None  # None: the provider's public API
    api_key: SecretStr | None
    key_variable: str  # where that key is set, named in errors (never the key itself)
    timeout: float  # seconds per request
    keyless: bool = False  # a compatible server that may need no key


class ProviderClient(ABC, Generic[A]):
    """Lazy SDK client, key check, governed and translated requests, retries, close()."""

    provider: str = ""  # "openai": the first word of every ProviderError
    package: str = ""  # the SDK's module, and the newsrag extra that installs it
    key_variable: str = ""  # the provider's key variable, "OPENAI_API_KEY"
    purpose: str = ""  # who needs the key, in the missing-key error: "the openai embedder"
    keyless_hint: str = ""  # how to do without a key, appended to that error
    settings_class: type[BaseSettings]  # the provider's settings (an Account); its defaults when none is given
    model: str

    def __init__(self, provider_settings: A | None = None, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._provider_settings = provider_settings
        self._sleep = sleep
        self._connection: Connection | None = None
        self._client: Any = None
        self._closer: Closeable | None = None
        self._lock = threading.Lock()

    # -- what a consumer or its provider says ----------------------------------------------------

    @abstractmethod
    def _resolve_connection(self) -> Connection:
        """Where to connect, from the consumer's settings and :attr:`provider_settings`."""

    def _retry_policy(self) -> RetryPolicy:
        """How :meth:`retrying` retries; by default not at all."""
        return RetryPolicy(max_retries=0)

    @property
    def governor(self) -> RateGovernor | None:
        """The rate governor each request waits for; None: not governed."""
        return None

    @abstractmethod
    def _connect(self, sdk: ModuleType, connection: Connection, key: str | None) -> tuple[Any, Closeable]:
        """The SDK's client (its own retries off), and what ``close()`` closes."""

    @abstractmethod
    def _translate(self, exc: Exception) -> ProviderError | None:
        """The ProviderError for an exception the SDK raised; None: not the provider's (re-raised)."""

    # -- settings and the client -------------------------------------------------------------------

    @property
    def provider_settings(self) -> A:
        """The provider's settings (key, base URL, ...) given to the constructor; without them the
        documented defaults (no key), so a missing key is named when the client is first needed."""
        if self._provider_settings is None:
            self._provider_settings = cast(A, defaults(self.settings_class))
        return self._provider_settings

    @property
    def connection(self) -> Connection:
        """Where requests go; resolved on first use, then kept."""
        if self._connection is None:
            self._connection = self._resolve_connection()
        return self._connection

    def _account_connection(self, timeout: float) -> Connection:
        """The provider's own key and base URL: the connection of most consumers."""
        ps = self.provider_settings
        return Connection(ps.base_url, ps.api_key, self.key_variable, timeout)

    def secret(self) -> str | None:
        """The key in use, to redact from what a provider echoes; None when there is none (yet)."""
        try:
            key = self.connection.api_key
        except ConfigError:
            return None
        return key.get_secret_value() if key is not None else None

    @property
    def client(self) -> Any:
        """The SDK's client, created on first use (ConfigError/SetupError before any request)."""
        with self._lock:
            if self._client is None:
                connection = self.connection
                key = self._checked_key(connection)
                self._client, self._closer = self._connect(self._sdk(), connection, key)
            return self._client

    def _checked_key(self, connection: Connection) -> str | None:
        try:
            key = check_secret(connection.api_key, connection.key_variable)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        value = key.get_secret_value() if key is not None else ""
        if not value and not connection.keyless:
            hint = f" ({self.keyless_hint})" if self.keyless_hint else ""
            raise ConfigError(f"{connection.key_variable} is not set; {self.purpose} needs an API key{hint}")
        return value or None

    def _sdk(self) -> ModuleType:
        try:
            return importlib.import_module(self.package)
        except ImportError as exc:
            raise SetupError(f"the {self.package} package is not installed; "
                             f"pip install 'newsrag[{self.package}]'") from exc

    def close(self) -> None:
        """Close the SDK's client (idempotent); the next request creates it again."""
        with self._lock:
            closer, self._client, self._closer = self._closer, None, None
        if closer is not None:
            closer.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- requests ----------------------------------------------------------------------------------

    def call(self, send: Callable[[Any], T], *, tokens: int = 0) -> T:
        """One request, ``send(client)``: governed (``tokens`` estimated), errors translated. Not retried."""
        client = self.client  # configuration errors before the governor counts anything
        governor = self.governor
        if governor is not None:
            governor.acquire(tokens)
        with self.translating(tokens):
            return send(client)

    @contextmanager
    def translating(self, tokens: int = 0) -> Iterator[None]:
        """Turn what the SDK raises inside the block into ProviderErrors (a stream read in a loop)."""
        try:
            yield
        except ProviderError:
            raise
        except Exception as exc:
            err = self._translate(exc)
            if err is None:
                raise
            governor = self.governor
            if governor is not None and (getattr(exc, "status_code", None) or 0) >= 400:
                governor.settle(tokens, 0)  # rejected requests are not billed
            raise err from None  # the SDK's message may quote the key: do not chain it

    def retrying(self, attempt: Callable[[], T]) -> T:
        """``attempt()``, retried on TransientProviderError by :meth:`_retry_policy`."""
        return self._retry_policy().run(attempt, self._sleep)
