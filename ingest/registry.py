"""The declarative source registry (``sources.yaml``), validated strictly: unknown keys are errors.

Example::

    sources:
      - id: guardian-world
        type: feed
        url: https://www.theguardian.com/world/rss
        tags: [world]
        max_age_days: 30

A source's ``type`` names an entry point of the ``newsrag.sources`` group (:data:`SOURCE_TYPES`):
newsrag's own ``feed``, ``sitemap``, ``page``, ``jsonl`` and ``folder``, declared in its
``pyproject.toml``, or an installed plugin's. Either way the entry point is a :class:`SourceType`
whose ``spec`` model validates the source's keys, so a plugin's options are checked as strictly
as the built-ins'.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from newsrag.core.errors import ConfigError
from newsrag.core.plugins import PluginRegistry

SOURCE_ID = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChunkingOptions(Strict):
    chunk_tokens: int = Field(200, ge=32, le=2048)
    overlap_tokens: int = Field(30, ge=0, le=512)


class HttpOptions(Strict):
    headers: dict[str, str] = Field(default_factory=dict)  # values may use ${VAR}; never logged
    timeout: float = Field(20.0, gt=0, le=300)  # bounds each GET, with its retries and waits
    deadline: float = Field(300.0, gt=0, le=3600)  # bounds all of the source's fetching
    per_host_concurrency: int = Field(2, ge=1, le=32)
    per_host_delay: float = Field(0.0, ge=0, le=60)

    def resolved_headers(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The headers with each ``${VAR}`` replaced by its value in ``environ``: the environment
        the edge captured (``Settings.environ``, what ``SourceContext.environ`` holds)."""
        return {k: _expand_env(v, environ) for k, v in self.headers.items()}


class SourceSpec(Strict):
    """The keys every source has. A source type's model subclasses it and adds ``type:
    Literal["<its name>"]`` and its own options (extra keys stay errors)."""

    id: str = Field(pattern=SOURCE_ID)
    enabled: bool = True
    tags: tuple[str, ...] = ()
    max_items: int | None = Field(None, ge=1)
    max_age_days: float | None = Field(None, gt=0)
    chunking: ChunkingOptions | None = None
    http: HttpOptions = Field(default_factory=HttpOptions)
    language: str | None = None


class FeedSpec(SourceSpec):
    type: Literal["feed"]
    url: str
    fetch_full_article: bool = False


class SitemapSpec(SourceSpec):
    type: Literal["sitemap"]
    url: str
    since_days: float | None = Field(None, gt=0)  # only URLs whose lastmod is this recent
    max_requests: int = Field(200, ge=1, le=5000)  # fetches in all: sitemaps and pages


class PageSpec(SourceSpec):
    type: Literal["page"]
    urls: tuple[str, ...] = Field(min_length=1)


class JsonlFields(Strict):
    url: str = "url"
    title: str = "title"
    text: str = "text"
    published: str | None = "published"
    author: str | None = "author"
    id: str | None = None  # a stable id field when URLs are missing or shared


class JsonlSpec(SourceSpec):
    type: Literal["jsonl"]
    path: str  # a file or a glob, relative to the registry file
    fields: JsonlFields = Field(default_factory=JsonlFields)
    snapshot: bool = False  # the dump is complete: stored docs missing from it are deleted


class FolderSpec(SourceSpec):
    type: Literal["folder"]
    path: str
    patterns: tuple[str, ...] = ("**/*.txt", "**/*.md", "**/*.html", "**/*.htm")
    snapshot: bool = True  # a folder's full contents are known: deletions propagate


class SourceType(Protocol):
    """A source type, built-in or plugin: the class an entry point of ``newsrag.sources`` names.

    ``spec`` is the model of its options in ``sources.yaml``; ``collect(spec, ctx)`` reads one
    source (``ctx`` a :class:`newsrag.ingest.sources.SourceContext`) into a
    :class:`newsrag.ingest.sources.Collected`, reporting a bad item as a failure and a broken source
    as a :class:`SourceError`. It is created without arguments, once per source run.
    """

    spec: ClassVar[type[SourceSpec]]

    def collect(self, spec: Any, ctx: Any) -> Any: ...


def as_source_type(obj: object) -> type[SourceType]:
    """``obj`` if it is a source type (the check of :data:`SOURCE_TYPES`), else TypeError saying why."""
    spec = getattr(obj, "spec", None)
    if not (isinstance(obj, type) and isinstance(spec, type) and issubclass(spec, SourceSpec)):
        raise TypeError("a source type is a class whose 'spec' is a SourceSpec subclass "
                        f"(newsrag.ingest.registry), got {obj!r} with spec {spec!r}")
    if not callable(getattr(obj, "collect", None)):
        raise TypeError(f"{obj.__qualname__} has no collect(spec, ctx) method")
    return cast(type[SourceType], obj)


SOURCE_TYPES: PluginRegistry[type[SourceType]] = PluginRegistry(
    "newsrag.sources", "source type", check=as_source_type)


class Registry(Strict):
    sources: tuple[Any, ...]
    base_dir: str = "."

    @field_validator("sources")
    @classmethod
    def _unique(cls, v: tuple[Any, ...]) -> tuple[Any, ...]:
        seen: set[str] = set()
        for spec in v:
            if spec.id in seen:
                raise ValueError(f"duplicate source id {spec.id!r}")
            seen.add(spec.id)
        return v

    def enabled(self, only: str | None = None) -> list[Any]:
        chosen = [s for s in self.sources if s.enabled and (only is None or s.id == only)]
        if only is not None and not chosen:
            raise ConfigError(f"no enabled source with id {only!r}; known: {[s.id for s in self.sources]}")
        return chosen


def parse_source(raw: Any, where: str = "source") -> Any:
    """One source's spec, validated by the model of its type; ConfigError naming the source."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    where = where if _named(raw) in where else f"{where}{_named(raw)}"
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in SOURCE_TYPES:
        raise ConfigError(f"{where}: unknown source type {kind!r}; 'type' must be one of "
                          f"{', '.join(SOURCE_TYPES)} (newsrag's or an installed plugin's)")
    try:
        return SOURCE_TYPES.load(kind).spec.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {_describe(exc)}") from None


def load_registry(path: str | Path) -> Registry:
    """Read and validate a registry file; errors name the file, the source and the key."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"source registry {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(doc, dict) or set(doc) - {"sources"} or not isinstance(doc.get("sources"), list):
        raise ConfigError(f"{path}: expected a mapping with a single key 'sources' holding a list")
    specs = [parse_source(raw, f"{path}: source #{i + 1}{_named(raw)}") for i, raw in enumerate(doc["sources"])]
    try:
        return Registry(sources=tuple(specs), base_dir=str(path.resolve().parent))
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from None


def batches(specs: list[Any], max_map_length: int) -> list[list[dict[str, Any]]]:
    """Split sources into at most ``max_map_length`` batches (one source per batch when they fit)."""
    if not specs:
        return []
    per_batch = -(-len(specs) // max_map_length)
    dumped = [s.model_dump(mode="json") for s in specs]
    return [dumped[i:i + per_batch] for i in range(0, len(dumped), per_batch)]


def _named(raw: Any) -> str:
    return f" ({raw['id']!r})" if isinstance(raw, dict) and "id" in raw else ""


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{loc or 'value'}: {msg}")
    return "; ".join(parts)


def _expand_env(value: str, environ: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in environ:
            raise ConfigError(f"header references ${{{name}}}, which is not set in the environment")
        return environ[name]

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)\}", sub, value)
