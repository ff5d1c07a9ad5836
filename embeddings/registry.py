"""Providers register by name, built-ins exactly like extensions.

Third-party packages can add providers through the ``newsrag.embedders`` entry-point group;
the entry point must be a factory ``(EmbeddingSettings) -> Embedder``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points

from newsrag.core.errors import ConfigError
from newsrag.core.settings import EmbeddingSettings, load
from newsrag.embeddings.base import Embedder

Factory = Callable[[EmbeddingSettings], Embedder]

_FACTORIES: dict[str, Factory] = {}
# Built-ins are imported on first use so that choosing "local" never imports openai, and vice versa.
_BUILTINS = {"local": "newsrag.embeddings.local", "openai": "newsrag.embeddings.openai", "cohere": "newsrag.embeddings.cohere"}


def register(name: str) -> Callable[[Factory], Factory]:
    def deco(factory: Factory) -> Factory:
        _FACTORIES[name] = factory
        return factory

    return deco


def available() -> list[str]:
    names = set(_BUILTINS) | set(_FACTORIES)
    names |= {ep.name for ep in entry_points(group="newsrag.embedders")}
    return sorted(names)


def _factory(name: str) -> Factory:
    if name not in _FACTORIES and name in _BUILTINS:
        import_module(_BUILTINS[name])
    if name not in _FACTORIES:
        for ep in entry_points(group="newsrag.embedders"):
            if ep.name == name:
                _FACTORIES[name] = ep.load()
    if name not in _FACTORIES:
        raise ConfigError(f"NEWSRAG_EMBED_PROVIDER: unknown provider {name!r}; choose one of {available()}")
    return _FACTORIES[name]


def create_embedder(settings: EmbeddingSettings | None = None) -> Embedder:
    settings = settings or load(EmbeddingSettings)
    return _factory(settings.provider)(settings)
