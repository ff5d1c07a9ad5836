"""Answer generators, registered by name like the embedders.

Built-ins are imported on first use (``extractive`` is the offline default; ``openai`` and
``cohere`` are the chat-model generators). Third-party packages
can add generators through the ``newsrag.generators`` entry-point group; the entry point must be a
factory ``(Embedder | None) -> Generator``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points

from newsrag.core.errors import ConfigError
from newsrag.embeddings.base import Embedder
from newsrag.retrieval.generators.base import (
    Citation,
    Generation,
    GenerationDelta,
    Generator,
    PromptRef,
    final_of,
    stream_whole,
)

GeneratorFactory = Callable[[Embedder | None], Generator]

_FACTORIES: dict[str, GeneratorFactory] = {}
# Built-ins are imported on first use, so that choosing "extractive" never imports openai or cohere.
_BUILTINS = {
    "extractive": "newsrag.retrieval.generators.extractive",
    "openai": "newsrag.retrieval.generators.openai_chat",
    "cohere": "newsrag.retrieval.generators.cohere_chat",
}
ENTRY_POINT_GROUP = "newsrag.generators"


def register(name: str) -> Callable[[GeneratorFactory], GeneratorFactory]:
    def deco(factory: GeneratorFactory) -> GeneratorFactory:
        _FACTORIES[name] = factory
        return factory

    return deco


def available() -> list[str]:
    names = set(_BUILTINS) | set(_FACTORIES)
    names |= {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names)


def _factory(name: str) -> GeneratorFactory:
    if name not in _FACTORIES and name in _BUILTINS:
        import_module(_BUILTINS[name])
    if name not in _FACTORIES:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == name:
                _FACTORIES[name] = ep.load()
    if name not in _FACTORIES:
        raise ConfigError(f"unknown generator {name!r}; choose one of {available()}")
    return _FACTORIES[name]


def create_generator(name: str = "extractive", embedder: Embedder | None = None) -> Generator:
    return _factory(name)(embedder)


__all__ = [
    "Citation", "Generation", "GenerationDelta", "Generator", "GeneratorFactory", "PromptRef",
    "available", "create_generator", "final_of", "register", "stream_whole",
]
