"""Validated settings, one pydantic-settings class per concern.

Nothing here is read at import time: call :func:`load` (or the ``*_settings`` helpers) when a
value is needed. Validation errors become :class:`ConfigError` naming the environment variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar, cast

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from newsrag.core.errors import ConfigError
from newsrag.core.secret_names import may_hold_secret

WEAVIATE_VERSION = "1.38.14"  # newest 1.38.x whose Go dependencies the module proxy serves (see README)

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "password", "xxx", "your-api-key", "todo"}

Environment = Literal["development", "test", "production"]


# The NEWSRAG_ENV of the mapping load() is reading, while it reads one (an Airflow task's Connections
# and Variables may say "production" where the worker's environment does not).
_LOADING_ENVIRONMENT: ContextVar[str | None] = ContextVar("newsrag_loading_environment", default=None)


def current_environment() -> str:
    """development, test or production: the mapping being loaded, else the process environment."""
    return _LOADING_ENVIRONMENT.get() or os.environ.get("NEWSRAG_ENV", "development")


def check_secret(value: SecretStr | None, variable: str) -> SecretStr | None:
    """Refuse placeholder secrets outside development. Never echoes the value."""
    if value is None or current_environment() == "development":
        return value
    raw = value.get_secret_value().strip().lower()
    if raw in PLACEHOLDER_SECRETS or raw.startswith("<") or "placeholder" in raw:
        raise ValueError(f"{variable} holds a placeholder value; set a real secret")
    return value


class PathSettings(BaseSettings):
    """Where newsrag keeps its state. ``NEWSRAG_HOME`` defaults to ``./.newsrag``."""

    model_config = SettingsConfigDict(env_prefix="NEWSRAG_", extra="ignore")

    home: Path = Path(".newsrag")
    env: Environment = "development"

    @property
    def tools_dir(self) -> Path:
        return self.home / "tools"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class DatabaseSettings(BaseSettings):
    """One PostgreSQL database for every store of shared state (``NEWSRAG_DATABASE_URL``): the
    ingestion state, the embedding cache, the answer and feedback log, the evaluation history and
    the prompt registry. A store's own location setting, when set, still wins (:func:`store_location`)."""

    model_config = SettingsConfigDict(env_prefix="NEWSRAG_", extra="ignore")

    database_url: str | None = None  # unset: each store's SQLite file under NEWSRAG_HOME

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            return None
        if v is not None and not v.startswith(POSTGRES_SCHEMES):
            # Never echo the value (it may carry a password): name the scheme expected.
            raise ValueError("must be a postgresql:// URL (a store's own variable takes a SQLite path)")
        return v


def store_location(settings: Settings, own: str | Path | None, filename: str, home: Path | None = None) -> str:
    """Where a store of shared state lives: its ``own`` setting when set, else ``NEWSRAG_DATABASE_URL``,
    else ``filename`` under ``home`` (default: ``NEWSRAG_HOME``). Workers on other hosts share a store
    only through PostgreSQL, so one variable moves all five there."""
    if own:
        return str(own)
    shared = settings.get(DatabaseSettings).database_url
    return shared or str((home or settings.get(PathSettings).home) / filename)


class LocalWeaviateSettings(BaseSettings):
    """The embedded default: a weaviate-server binary that newsrag builds and runs on loopback."""

    model_config = SettingsConfigDict(env_prefix="NEWSRAG_WEAVIATE_", extra="ignore")

    version: str = WEAVIATE_VERSION
    host: str = "127.0.0.1"
    http_port: int = Field(8079, ge=0, le=65535)  # 0 means "any free port"
    grpc_port: int = Field(50060, ge=0, le=65535)
    data_dir: Path | None = None  # default: $NEWSRAG_HOME/weaviate-data
    ready_timeout: float = Field(90.0, gt=0)
    build_cache: Path = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "newsrag"


class WeaviateSettings(BaseSettings):
    """How to reach Weaviate. Without ``WEAVIATE_URL`` the local server's state file is used."""

    model_config = SettingsConfigDict(env_prefix="WEAVIATE_", extra="ignore")

    url: str | None = None
    grpc_url: str | None = None  # default: same host as url, port 50051
    api_key: SecretStr | None = None
    collection: str = Field("NewsChunk", pattern=r"^[A-Z][A-Za-z0-9_]*$")
    timeout: float = Field(30.0, gt=0)
    # A query not answered after this many seconds probes the server; down: fail now (newsrag.store.circuit).
    query_probe_after: float = Field(1.5, gt=0, le=60)
    circuit_open_seconds: float = Field(5.0, gt=0, le=300)  # queries fail at once this long after one failed
    # BM25 parameters of a new collection (see README, "Retrieval quality"); an existing
    # collection keeps its own until `WeaviateStore.set_bm25` changes them.
    bm25_k1: float = Field(1.2, ge=0, le=3)
    bm25_b: float = Field(0.4, ge=0, le=1)  # Weaviate's default is 0.75; see README
    # Copies of each object a new collection keeps (None: the server's REPLICATION_MINIMUM_FACTOR,
    # 1 unless set); an existing collection keeps its own (README, "Running on a cluster").
    replication_factor: int | None = Field(None, ge=1, le=32)
    # Replicas that must answer every write and read. QUORUM is Weaviate's own default (what newsrag
    # used before this setting); with one copy every level is the same.
    consistency_level: Literal["ONE", "QUORUM", "ALL"] = "QUORUM"

    @field_validator("api_key")
    @classmethod
    def _no_placeholder(cls, v: SecretStr | None) -> SecretStr | None:
        return check_secret(v, "WEAVIATE_API_KEY")


class EmbeddingSettings(BaseSettings):
    """Which embedder to use. ``local`` is offline all-MiniLM-L6-v2."""

    model_config = SettingsConfigDict(env_prefix="NEWSRAG_EMBED_", extra="ignore")

    provider: str = "local"
    model: str | None = None  # provider default when unset
    batch_size: int = Field(16, ge=1, le=2048)  # 16 measured fastest for MiniLM on 2 CPU cores
    dimensions: int | None = Field(None, ge=1)
    device: str = "cpu"
    max_seq_length: int = Field(256, ge=8, le=8192)


S = TypeVar("S", bound=BaseSettings)


class _MappingSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ  # read by _load_env_vars, which the base __init__ calls
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


def load(cls: type[S], environ: Mapping[str, str] | None = None, **overrides: Any) -> S:
    """Build a settings object from ``environ`` (default: the process environment), turning
    validation errors into a ConfigError that names the variable. An edge that has its values
    elsewhere (Airflow Connections) passes them as ``environ`` instead of writing the environment."""
    try:
        if environ is None:
            return cls(**overrides)
        token = _LOADING_ENVIRONMENT.set(environ.get("NEWSRAG_ENV", "development"))
        try:
            built = _reading(cls, environ)(**overrides)
        finally:
            _LOADING_ENVIRONMENT.reset(token)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(cls, exc)) from None
    # A plain ``cls`` again (the reading subclass is local: it would not pickle), already validated.
    return cast(S, cls.model_construct(_fields_set=built.model_fields_set, **dict(built)))


def defaults(cls: type[S]) -> S:
    """``cls`` with its documented defaults only: what a library object uses when its caller passed
    no settings (the library never falls back on the process environment)."""
    return load(cls, {})


def _reading(cls: type[S], environ: Mapping[str, str]) -> type[S]:
    """``cls`` with its sources replaced: init arguments, then ``environ`` (no process environment,
    no dotenv or secrets files)."""

    class Reading(cls):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(cls_, settings_cls: type[BaseSettings], init_settings: Any,
                                       *_: Any, **__: Any) -> tuple[Any, ...]:
            return init_settings, _MappingSource(settings_cls, environ)

    return Reading


def describe_validation_error(cls: type[BaseSettings], exc: ValidationError) -> str:
    prefix = str(cls.model_config.get("env_prefix", ""))
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "?"
        variable = (prefix + field).upper()
        given = err.get("input")
        hidden = any(may_hold_secret(str(part)) for part in err["loc"])
        shown = "" if hidden or isinstance(given, dict) else f" (got {given!r})"
        parts.append(f"{variable}: {err['msg']}{shown}")
    return "invalid setting " + "; ".join(parts)


class IngestSettings(BaseSettings):
    """Ingestion defaults; per-source options in sources.yaml override the chunking ones."""

    model_config = SettingsConfigDict(env_prefix="NEWSRAG_INGEST_", extra="ignore")

    sources_file: Path = Path("sources.yaml")
    chunk_tokens: int = Field(200, ge=32, le=2048)  # + title stays under MiniLM's 256-token window
    overlap_tokens: int = Field(30, ge=0, le=512)
    context_chunks: int = Field(1, ge=0, le=10)  # neighbours on each side in a chunk's BM25 context
    near_dup_threshold: float = Field(0.5, gt=0, le=1)  # see ingest/dedup.py
    max_map_length: int = Field(1024, ge=1)  # Airflow's default [core] max_map_length
    write_group: int = Field(32, ge=1)  # articles embedded and written together
    # Upsert a group while the next one is embedded: a win when Weaviate runs elsewhere (production).
    # The embedded local server shares the embedder's cores, so by default (None) only a remote
    # Weaviate (WEAVIATE_URL set) gets the overlap; measured in bench/ingest.py on 2 cores.
    overlap_writes: bool | None = None
    # A SQLite path or a postgresql:// URL (kept as given: a Path would fold the URL's "//").
    state_file: Path | str | None = None  # default: $NEWSRAG_HOME/ingest-state.sqlite
    embedding_cache: Path | str | None = None  # default: $NEWSRAG_HOME/embedding-cache.sqlite
    max_full_article_fetches: int = Field(50, ge=0)


class ServeSettings(BaseSettings):
    """Where ``newsrag serve`` listens; the app's own settings live in app/settings.py."""

    model_config = SettingsConfigDict(env_prefix="NEWSRAG_APP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)


class Settings:
    """The root of the configuration: every concern's settings model, read from ONE environment
    mapping that an edge captured (the process environment for the CLI and the app; Connections and
    Variables over it in an Airflow task). Edges build it once and hand it inward; the library asks
    it for the concern it needs (``settings.get(WeaviateSettings)``) and never reads the process
    environment. Each concern is validated on first use and then kept, so a bad value of an unused
    provider does not stop a run that never calls it. Plugins read their own classes the same way."""

    def __init__(self, environ: Mapping[str, str] | None = None, *models: BaseSettings) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        self._models: dict[type[BaseSettings], BaseSettings] = {type(m): m for m in models}

    def get(self, cls: type[S]) -> S:
        """The ``cls`` model (built from this root's environment on first use; ConfigError if invalid)."""
        if cls not in self._models:
            self._models[cls] = load(cls, self._environ)
        return self._models[cls]  # type: ignore[return-value]

    def replace(self, *models: BaseSettings) -> Settings:
        """A root with ``models`` instead of what this one would build (tests, CLI flags)."""
        return Settings(self._environ, *self._models.values(), *models)

    def value(self, name: str, default: str | None = None) -> str | None:
        """One raw variable of this root's environment (``${VAR}`` references in sources.yaml)."""
        return self._environ.get(name, default)

    @property
    def environ(self) -> Mapping[str, str]:
        """The captured environment, read-only: what a child process (weaviate-server, go) inherits."""
        return MappingProxyType(self._environ)

    def __repr__(self) -> str:  # never the environment: it holds secrets
        return f"Settings({len(self._environ)} variables, {len(self._models)} models built)"
