"""Airflow Connections -> the environment-style settings newsrag's settings models read.

newsrag is configured by variables (``WEAVIATE_*``, ``OPENAI_*``, ``COHERE_*``, ``NEWSRAG_*``; see
newsrag/core/settings.py). In Airflow those values belong in Connections, where the UI, the CLI and
secrets backends manage them. A task body hands the library the root settings that
:mod:`newsrag.airflow.hooks` builds from them, and never writes ``os.environ``::

    from newsrag.airflow.hooks import task_settings

    return run_batch(batch, settings=task_settings())

:func:`settings_env` reads the connections through the Task SDK (``airflow.sdk.BaseHook
.get_connection``, i.e. ``Connection.get``: environment variables ``AIRFLOW_CONN_<ID>``, then the
configured secrets backend, then the metadata DB through the Execution API) and returns the
settings; the hook lays them over the worker's environment (values from connections win).

A missing REQUIRED connection raises ``AirflowFailException`` (the task fails without retrying: a
retry cannot create it) naming the connection id and the command that creates it. A missing
optional connection sets nothing, so the library's own defaults apply. A connection that exists but
cannot be used (no host, extra not JSON) always fails. Secret values are never logged and never
appear in messages; they are registered with Airflow's secrets masker, and the returned mapping's
``repr`` shows ``***`` for them.

Connections
-----------

``weaviate_default`` (conn type ``http``, ``https`` or ``generic``):

* host, port -> ``WEAVIATE_URL``; the scheme is ``https`` when the conn type is ``https``, the
  ``schema`` field is ``https`` (the HTTP provider's convention) or extra ``http_secure`` is true,
  else ``http``. A host that already holds a scheme (``https://x.weaviate.cloud``) is used as is.
* password, or extra ``api_key`` -> ``WEAVIATE_API_KEY`` (optional: anonymous Weaviate).
* extra ``grpc_host``, ``grpc_port``, ``grpc_secure`` -> ``WEAVIATE_GRPC_URL`` (host defaults to
  the HTTP host, port to 50051, secure to the HTTP scheme); without them the library's default
  (same host, port 50051) applies.
* extra ``collection`` -> ``WEAVIATE_COLLECTION``; extra ``timeout`` -> ``WEAVIATE_TIMEOUT``.
  (The DAG files read ``WEAVIATE_COLLECTION`` from the environment when they are parsed, for the
  Asset name: set it there too when you change it.)

::

    airflow connections add weaviate_default --conn-uri 'http://:API_KEY@weaviate:8080?grpc_port=50051'
    AIRFLOW_CONN_WEAVIATE_DEFAULT='http://:API_KEY@weaviate:8080?grpc_port=50051&collection=NewsChunk'
    AIRFLOW_CONN_WEAVIATE_DEFAULT='https://:API_KEY@my-cluster.weaviate.cloud'
    AIRFLOW_CONN_WEAVIATE_DEFAULT='{"conn_type": "http", "host": "weaviate", "port": 8080,
        "password": "API_KEY", "extra": {"grpc_port": 50051, "collection": "NewsChunk"}}'

``openai_default`` (any conn type; ``generic`` or ``https`` is usual):

* password, or extra ``api_key`` -> ``OPENAI_API_KEY``.
* host (optional) -> ``OPENAI_BASE_URL``: a full URL as host is used as is; otherwise
  ``<scheme>://host[:port][/schema]`` with scheme ``http`` for conn type ``http`` and ``https`` for
  anything else, so the URI reads like the base URL. Without a host the library default
  (api.openai.com) applies. A connection needs a key or a host (a keyless OpenAI-compatible server).
* extra ``model`` -> ``NEWSRAG_EMBED_MODEL``, only when ``NEWSRAG_EMBED_PROVIDER`` is ``openai``
  (the embedding model; another provider would be handed a model it does not know);
  ``chat_model`` -> ``NEWSRAG_OPENAI_CHAT_MODEL``; ``rpm``, ``tpm``, ``budget_tokens``,
  ``timeout``, ``max_retries`` -> ``OPENAI_RPM`` ... (the per-process rate governor).

::

    airflow connections add openai_default --conn-uri 'https://:API_KEY@api.openai.com/v1?model=text-embedding-3-small'
    airflow connections add openai_default --conn-type generic --conn-password "$OPENAI_API_KEY"
    AIRFLOW_CONN_OPENAI_DEFAULT='http://vllm:8000/v1'          # keyless OpenAI-compatible server

``cohere_default`` (as ``openai_default``): password or extra ``api_key`` -> ``COHERE_API_KEY``,
host -> ``COHERE_BASE_URL``, extra ``model`` -> ``NEWSRAG_EMBED_MODEL`` when
``NEWSRAG_EMBED_PROVIDER`` is ``cohere``, ``chat_model`` -> ``NEWSRAG_COHERE_CHAT_MODEL``,
``rerank_model`` -> ``NEWSRAG_COHERE_RERANK_MODEL``, ``rpm``/``tpm``/``budget_tokens``/``timeout``/
``max_retries`` -> ``COHERE_*``::

    airflow connections add cohere_default --conn-uri 'https://:API_KEY@api.cohere.com?model=embed-v4.0'

In URIs, percent-encode reserved characters of a key (``/`` -> ``%2F``, ``@`` -> ``%40``, ...).
Connection ids other than the defaults work when they start with ``weaviate``, ``openai`` or
``cohere`` (``settings_env(conn_ids=("weaviate_staging",))``).

Variables
---------

``variables={"WEAVIATE_URL": "newsrag_weaviate_url", ...}`` names Airflow Variables that supply a
setting no connection supplied. A required connection that is missing is then acceptable when the
Variables supply its main setting (``WEAVIATE_URL``; ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL``;
``COHERE_API_KEY`` or ``COHERE_BASE_URL``). In DAG tasks, ``NEWSRAG_AIRFLOW_VARIABLES`` names them
(see :func:`variable_names`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

from newsrag.infra.redaction import is_secret_name

log = logging.getLogger(__name__)

WEAVIATE_CONN_ID = "weaviate_default"
OPENAI_CONN_ID = "openai_default"
COHERE_CONN_ID = "cohere_default"
DEFAULT_CONN_IDS: tuple[str, ...] = (WEAVIATE_CONN_ID, OPENAI_CONN_ID, COHERE_CONN_ID)
DEFAULT_GRPC_PORT = 50051
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsEnv(dict[str, str]):
    """The settings found: a plain ``dict`` whose ``repr``/``str`` hide secret values."""

    def __repr__(self) -> str:
        shown = {k: ("***" if is_secret_name(k) else v) for k, v in self.items()}
        return f"SettingsEnv({shown!r})"

    __str__ = __repr__


class ConnectionUnusable(Exception):
    """A connection exists but cannot be mapped. The message never holds a value from it."""


# -- per-service mappings --------------------------------------------------------------------------

@dataclass(frozen=True)
class Service:
    name: str
    settings: tuple[str, ...]  # what the mapping can set (for messages)
    main: tuple[str, ...]  # any one of these makes the service usable (Variables fallback)
    example: str  # how to create the connection
    mapper: Callable[[Any, dict[str, Any]], dict[str, str]]  # (connection, extra) -> settings


def _bool(value: Any, conn_id: str, key: str) -> bool:
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConnectionUnusable(f"extra {key!r} of connection {conn_id!r} must be true or false")


def _port(value: Any, conn_id: str, key: str) -> int:
    try:
        port = int(str(value).strip())
    except ValueError:
        raise ConnectionUnusable(f"extra {key!r} of connection {conn_id!r} must be a port number") from None
    if not 0 < port < 65536:
        raise ConnectionUnusable(f"extra {key!r} of connection {conn_id!r} must be a port number")
    return port


def _host_with_scheme(conn: Any) -> tuple[str | None, str | None, int | None, str]:
    """(scheme given in host, hostname, port, path) for a host that may hold a whole URL."""
    host = (conn.host or "").strip()
    if "://" in host:
        parts = urlsplit(host)
        if not parts.hostname:
            raise ConnectionUnusable(f"connection {conn.conn_id!r} has a host URL without a host name")
        try:
            port = parts.port
        except ValueError:
            raise ConnectionUnusable(f"connection {conn.conn_id!r} has a host URL with an invalid port") from None
        return parts.scheme.lower(), parts.hostname, port or conn.port, parts.path.rstrip("/")
    if any(c in host for c in "/ @?#"):
        raise ConnectionUnusable(f"connection {conn.conn_id!r} has an invalid host (a host name, without "
                                 "path or credentials, or a whole URL)")
    return None, host or None, conn.port, ""


def _netloc(host: str, port: int | None) -> str:
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host  # IPv6 literal
    return f"{host}:{port}" if port else host


def _weaviate(conn: Any, extra: dict[str, Any]) -> dict[str, str]:
    cid = conn.conn_id
    given_scheme, host, port, _ = _host_with_scheme(conn)
    if not host:
        raise ConnectionUnusable(f"connection {cid!r} has no host (the Weaviate server's name)")
    if given_scheme is not None:
        scheme = given_scheme
    elif (conn.conn_type or "").lower() == "https" or (conn.schema or "").lower() == "https":
        scheme = "https"
    elif "http_secure" in extra:
        scheme = "https" if _bool(extra["http_secure"], cid, "http_secure") else "http"
    else:
        scheme = "http"
    if scheme not in ("http", "https"):
        raise ConnectionUnusable(f"connection {cid!r}: Weaviate is reached over http or https")
    env = {"WEAVIATE_URL": f"{scheme}://{_netloc(host, port)}"}
    key = conn.password or extra.get("api_key")
    if key:
        env["WEAVIATE_API_KEY"] = str(key)
    if any(k in extra for k in ("grpc_host", "grpc_port", "grpc_secure")):
        secure = _bool(extra["grpc_secure"], cid, "grpc_secure") if "grpc_secure" in extra else scheme == "https"
        grpc_host = str(extra.get("grpc_host") or host).strip()
        if not grpc_host or any(c in grpc_host for c in "/ @?#"):
            raise ConnectionUnusable(f"extra 'grpc_host' of connection {cid!r} must be a host name")
        grpc_port = _port(extra.get("grpc_port") or DEFAULT_GRPC_PORT, cid, "grpc_port")
        env["WEAVIATE_GRPC_URL"] = f"{'https' if secure else 'http'}://{_netloc(grpc_host, grpc_port)}"
    if extra.get("collection"):
        env["WEAVIATE_COLLECTION"] = str(extra["collection"])
    if extra.get("timeout"):
        env["WEAVIATE_TIMEOUT"] = str(extra["timeout"])
    return env


_PROVIDER_EXTRAS = ("rpm", "tpm", "budget_tokens", "timeout", "max_retries")


Mapper = Callable[[Any, dict[str, Any]], dict[str, str]]


def _provider(prefix: str, provider: str, models: Mapping[str, str]) -> Mapper:
    """Mapping for an API provider: key, base URL, model names and governor limits."""

    def mapper(conn: Any, extra: dict[str, Any]) -> dict[str, str]:
        cid = conn.conn_id
        env: dict[str, str] = {}
        key = conn.password or extra.get("api_key")
        if key:
            env[f"{prefix}_API_KEY"] = str(key)
        given_scheme, host, port, path = _host_with_scheme(conn)
        if host:
            if given_scheme is not None:
                scheme = given_scheme
            else:
                scheme = "http" if (conn.conn_type or "").lower() == "http" else "https"
                path = f"/{conn.schema.strip('/')}" if conn.schema and conn.schema.strip("/") else ""
            if scheme not in ("http", "https"):
                raise ConnectionUnusable(f"connection {cid!r}: the base URL must be http or https")
            env[f"{prefix}_BASE_URL"] = f"{scheme}://{_netloc(host, port)}{path}"
        if not env:
            raise ConnectionUnusable(f"connection {cid!r} has neither an API key (password) nor a host "
                                     "(the base URL of a compatible server)")
        embed_provider = os.environ.get("NEWSRAG_EMBED_PROVIDER", "local").strip().lower()
        for name, variable in models.items():
            if extra.get(name) and (name != "model" or embed_provider == provider):
                env[variable] = str(extra[name])
        for name in _PROVIDER_EXTRAS:
            if extra.get(name) not in (None, ""):
                env[f"{prefix}_{name.upper()}"] = str(extra[name])
        return env

    return mapper


SERVICES: dict[str, Service] = {
    "weaviate": Service(
        "Weaviate", ("WEAVIATE_URL", "WEAVIATE_GRPC_URL", "WEAVIATE_API_KEY", "WEAVIATE_COLLECTION"),
        ("WEAVIATE_URL",), "--conn-uri 'http://:API_KEY@weaviate:8080?grpc_port=50051'", _weaviate),
    "openai": Service(
        "OpenAI", ("OPENAI_API_KEY", "OPENAI_BASE_URL"), ("OPENAI_API_KEY", "OPENAI_BASE_URL"),
        "--conn-uri 'https://:API_KEY@api.openai.com/v1'",
        _provider("OPENAI", "openai", {"model": "NEWSRAG_EMBED_MODEL", "chat_model": "NEWSRAG_OPENAI_CHAT_MODEL"})),
    "cohere": Service(
        "Cohere", ("COHERE_API_KEY", "COHERE_BASE_URL"), ("COHERE_API_KEY", "COHERE_BASE_URL"),
        "--conn-uri 'https://:API_KEY@api.cohere.com'",
        _provider("COHERE", "cohere", {"model": "NEWSRAG_EMBED_MODEL", "chat_model": "NEWSRAG_COHERE_CHAT_MODEL",
                                       "rerank_model": "NEWSRAG_COHERE_RERANK_MODEL"})),
}


def service_for(conn_id: str) -> Service:
    """The mapping for a connection id: by its prefix (``weaviate_default``, ``weaviate_staging``...)."""
    for prefix, service in SERVICES.items():
        if conn_id.lower().startswith(prefix):
            return service
    raise ValueError(f"no newsrag mapping for connection id {conn_id!r}: ids start with one of "
                     f"{sorted(SERVICES)}")


def how_to_create(conn_id: str) -> str:
    service = service_for(conn_id)
    return (f"airflow connections add {conn_id} {service.example} "
            f"(or set AIRFLOW_CONN_{conn_id.upper()} in the environment of the Airflow workers)")


# -- reading ---------------------------------------------------------------------------------------

def _mask(value: str) -> None:
    """Register a secret with Airflow's masker so task logs show *** instead."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - every Airflow 3 has it
        return
    mask_secret(value)


def _extra(conn: Any) -> dict[str, Any]:
    raw = conn.extra
    if not raw:
        return {}
    if isinstance(raw, dict):
        return dict(raw)
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        raise ConnectionUnusable(f"the extra of connection {conn.conn_id!r} is not valid JSON") from None
    if not isinstance(value, dict):
        raise ConnectionUnusable(f"the extra of connection {conn.conn_id!r} must be a JSON object")
    return value


def _get_connection(conn_id: str) -> Any | None:
    """The connection, or None when it is not defined anywhere (other errors propagate: retryable)."""
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def _get_variable(key: str) -> str | None:
    from airflow.sdk import Variable

    value = Variable.get(key, default=None)
    return None if value is None else str(value)


def _unique(*groups: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for group in groups:
        for item in group:
            seen.setdefault(item, None)
    return list(seen)


def settings_env(conn_ids: Iterable[str] = DEFAULT_CONN_IDS, required: Iterable[str] = (),
                 variables: Mapping[str, str] | None = None) -> SettingsEnv:
    """Environment-style settings (``WEAVIATE_URL``, ``OPENAI_API_KEY``...) from Airflow Connections.

    ``conn_ids``: the connections to read (``required`` ones are read too). ``required``: those
    that must exist; a missing one raises ``AirflowFailException``. ``variables``: setting name ->
    Airflow Variable key, read for settings no connection supplied. Secret values are masked in
    Airflow's logs and hidden in the result's repr.
    """
    required = list(dict.fromkeys(required))
    ids = _unique(conn_ids, required)
    for conn_id in ids:
        service_for(conn_id)  # a typo in the id is a programming error: fail before reading anything
    env = SettingsEnv()
    found: dict[str, list[str]] = {}
    missing: list[str] = []
    for conn_id in ids:
        conn = _get_connection(conn_id)
        if conn is None:
            if conn_id in required:
                missing.append(conn_id)
            else:
                log.info("optional Airflow connection %s is not defined; library defaults apply", conn_id)
            continue
        try:
            values = service_for(conn_id).mapper(conn, _extra(conn))
        except ConnectionUnusable as exc:
            raise AirflowFailException(f"Airflow connection {conn_id!r} cannot be used: {exc}. "
                                       f"Example: {how_to_create(conn_id)}") from None
        for name, value in values.items():
            if is_secret_name(name):
                _mask(value)
            env[name] = value
        found[conn_id] = sorted(values)

    from_variables: list[str] = []
    for name, key in (variables or {}).items():
        if name in env:
            continue
        var_value = _get_variable(key)
        if var_value is None:
            continue
        if is_secret_name(name):
            _mask(var_value)
        env[name] = var_value
        from_variables.append(name)

    still_missing = [c for c in missing if not any(s in env for s in service_for(c).main)]
    if still_missing:
        lines = [f"required Airflow connection {c!r} is not defined ({service_for(c).name}: "
                 f"{', '.join(service_for(c).settings)}). Create it: {how_to_create(c)}" for c in still_missing]
        raise AirflowFailException("; ".join(lines))
    for conn_id, names in found.items():
        log.info("settings from Airflow connection %s: %s", conn_id, ", ".join(names))  # names only
    if from_variables:
        log.info("settings from Airflow variables: %s", ", ".join(sorted(from_variables)))
    return env


def required_connections() -> tuple[str, ...]:
    """Connections a deployment insists on (``NEWSRAG_REQUIRED_CONNECTIONS``, comma-separated; the
    compose stack sets ``weaviate_default``). Development needs none: the local server is used."""
    raw = os.environ.get("NEWSRAG_REQUIRED_CONNECTIONS", "")
    return tuple(c.strip() for c in raw.split(",") if c.strip())


def variable_names() -> dict[str, str]:
    """Settings a deployment reads from Airflow Variables when no Connection supplies them
    (``NEWSRAG_AIRFLOW_VARIABLES``: ``SETTING=variable_key`` pairs, comma-separated, for example
    ``WEAVIATE_URL=newsrag_weaviate_url,WEAVIATE_API_KEY=newsrag_weaviate_api_key``). None by default:
    each name costs a Variable lookup per task."""
    raw = os.environ.get("NEWSRAG_AIRFLOW_VARIABLES", "")
    pairs = [p.split("=", 1) for p in raw.split(",") if p.strip()]
    bad = [p[0] for p in pairs if len(p) != 2 or not p[0].strip() or not p[1].strip()]
    if bad:
        raise AirflowFailException(f"NEWSRAG_AIRFLOW_VARIABLES: expected SETTING=variable_key pairs, got {bad}")
    return {k.strip(): v.strip() for k, v in pairs}
