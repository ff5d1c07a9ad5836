"""Opening a Weaviate client (a URL, Weaviate Cloud, or the local server newsrag runs) and
translating the client's errors into the library's."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import weaviate
import weaviate.exceptions as wex
from weaviate.classes.init import AdditionalConfig, Auth, Timeout

from newsrag.core.errors import ConfigError, StoreError, StoreUnavailable
from newsrag.core.settings import WeaviateSettings
from newsrag.store.server import LocalWeaviate


def connect(settings: WeaviateSettings, local: LocalWeaviate | None = None) -> weaviate.WeaviateClient:
    """Open a client: ``WEAVIATE_URL`` when set, else the local server started by newsrag (``local``,
    default: the one of the default home)."""
    timeout = Timeout(init=min(settings.timeout, 30), query=settings.timeout, insert=settings.timeout * 4)
    extra = AdditionalConfig(timeout=timeout)
    auth = Auth.api_key(settings.api_key.get_secret_value()) if settings.api_key else None
    try:
        if settings.url:
            return _connect_url(settings, extra, auth)
        return _connect_local(local or LocalWeaviate.from_settings(), extra)
    except (wex.WeaviateConnectionError, wex.WeaviateStartUpError, wex.WeaviateGRPCUnavailableError) as exc:
        where = settings.url or "the local server"
        raise StoreUnavailable(f"cannot reach Weaviate at {where}: {short_error(exc)}") from None
    except wex.UnexpectedStatusCodeError as exc:
        if exc.status_code not in (401, 403):
            raise
        raise StoreError(f"Weaviate at {settings.url or 'the local server'} refused the credentials (HTTP "
                         f"{exc.status_code}): check WEAVIATE_API_KEY (in Airflow, the password of the "
                         f"weaviate_default Connection). {short_error(exc)}") from None
    except ValueError as exc:  # the client validates host/port combinations with pydantic
        raise ConfigError(f"WEAVIATE_URL / WEAVIATE_GRPC_URL: {short_error(exc)}") from None


def _connect_url(settings: WeaviateSettings, extra: AdditionalConfig, auth: Any) -> weaviate.WeaviateClient:
    url = urlparse(settings.url or "")
    host = url.hostname or ""
    if auth is not None and host.endswith((".weaviate.cloud", ".weaviate.network")):
        return weaviate.connect_to_weaviate_cloud(settings.url or "", auth, additional_config=extra)
    secure = url.scheme == "https"
    grpc = urlparse(settings.grpc_url) if settings.grpc_url else None
    return weaviate.connect_to_custom(
        http_host=host, http_port=url.port or (443 if secure else 80), http_secure=secure,
        grpc_host=(grpc.hostname if grpc else None) or host,
        grpc_port=(grpc.port if grpc else None) or 50051,
        grpc_secure=(grpc.scheme in ("https", "grpcs")) if grpc else secure,
        auth_credentials=auth, additional_config=extra,
    )


def _connect_local(local: LocalWeaviate, extra: AdditionalConfig) -> weaviate.WeaviateClient:
    state = local.read_state()
    if state is None:
        raise StoreUnavailable("no Weaviate configured: run `newsrag weaviate start` or set WEAVIATE_URL")
    return weaviate.connect_to_local(host=state.host, port=state.http_port, grpc_port=state.grpc_port,
                                     additional_config=extra)


def ready_url(settings: WeaviateSettings, local: LocalWeaviate) -> str | None:
    if settings.url:
        return f"{settings.url.rstrip('/')}/v1/.well-known/ready"
    state = local.read_state()
    return f"{state.http_url}/v1/.well-known/ready" if state else None


UNAVAILABLE_ERRORS = (wex.WeaviateConnectionError, wex.WeaviateGRPCUnavailableError, wex.WeaviateTimeoutError,
                      wex.WeaviateRetryError)
# What a gRPC or HTTP failure says when the server is gone or going, whichever wrapper carries it
# (the client turns exhausted UNAVAILABLE retries of a search into a WeaviateQueryError).
_UNREACHABLE = ("unavailable", "failed to connect", "connection refused", "connection reset", "socket closed",
                "deadline exceeded", "broken pipe", "connecterror", "remoteprotocolerror", "readerror",
                "weaviateretryerror", "server disconnected", "shutting down")


def translate_error(exc: Exception, collection: str) -> StoreError:
    """A client error as the library's: StoreUnavailable (retryable) when Weaviate cannot be reached or
    went away mid-call, StoreError when it answered and refused."""
    if isinstance(exc, UNAVAILABLE_ERRORS) or any(w in str(exc).lower() for w in _UNREACHABLE):
        return StoreUnavailable(f"Weaviate unavailable ({collection}): {short_error(exc)}")
    return StoreError(f"Weaviate refused an operation on {collection}: {short_error(exc)}")


def short_error(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
