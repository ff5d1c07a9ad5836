"""Answer generators by name: the ``newsrag.generators`` entry-point group (:mod:`newsrag.core.plugins`).

newsrag's own generators (``extractive``, the offline default; ``openai`` and ``cohere``, the chat
models) are entry points of its distribution, declared in ``pyproject.toml`` exactly as a
third-party package declares its own. An entry point is a factory
``(Embedder | None, Settings) -> Generator``, imported only when chosen, so choosing ``extractive``
never imports openai or cohere. ``Settings`` is the configuration root the edge built: a factory
reads its generator's settings from it (a plugin's factory its own class, the same way); a factory
taking the embedder only is still called (:func:`newsrag.core.plugins.call_factory`).
"""

from __future__ import annotations

from collections.abc import Callable

from newsrag.core.plugins import PluginRegistry, call_factory
from newsrag.core.settings import Settings
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

GeneratorFactory = Callable[..., Generator]  # (Embedder | None, Settings); older ones (Embedder | None)

GENERATORS: PluginRegistry[GeneratorFactory] = PluginRegistry("newsrag.generators", "generator")


def register(name: str) -> Callable[[GeneratorFactory], GeneratorFactory]:
    """Set a generator in process (tests, applications); a package declares an entry point instead."""
    return GENERATORS.register(name)


def available() -> list[str]:
    return GENERATORS.names()


def create_generator(name: str = "extractive", embedder: Embedder | None = None,
                     settings: Settings | None = None) -> Generator:
    """The generator called ``name``, configured from ``settings`` (default: the documented defaults)."""
    return call_factory(GENERATORS.load(name), embedder, settings=settings or Settings({}))


__all__ = [
    "GENERATORS", "Citation", "Generation", "GenerationDelta", "Generator", "GeneratorFactory", "PromptRef",
    "available", "create_generator", "final_of", "register", "stream_whole",
]
