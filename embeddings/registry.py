"""Embedders by name: the ``newsrag.embedders`` entry-point group (:mod:`newsrag.core.plugins`).

newsrag's own providers (``local``, ``openai``, ``cohere``) are entry points of its distribution,
declared in ``pyproject.toml`` exactly as a third-party package declares its own. An entry point is
a factory ``(EmbeddingSettings) -> Embedder``, imported only when chosen, so choosing ``local``
never imports openai.
"""

from __future__ import annotations

from collections.abc import Callable

from newsrag.core.plugins import PluginRegistry
from newsrag.core.settings import EmbeddingSettings, load
from newsrag.embeddings.base import Embedder

Factory = Callable[[EmbeddingSettings], Embedder]

EMBEDDERS: PluginRegistry[Factory] = PluginRegistry(
    "newsrag.embedders", "provider", setting="NEWSRAG_EMBED_PROVIDER")


def register(name: str) -> Callable[[Factory], Factory]:
    """Set a provider in process (tests, applications); a package declares an entry point instead."""
    return EMBEDDERS.register(name)


def available() -> list[str]:
    return EMBEDDERS.names()


def create_embedder(settings: EmbeddingSettings | None = None) -> Embedder:
    settings = settings or load(EmbeddingSettings)
    return EMBEDDERS.load(settings.provider)(settings)
