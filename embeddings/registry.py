"""Embedders by name: the ``newsrag.embedders`` entry-point group (:mod:`newsrag.core.plugins`).

newsrag's own providers (``local``, ``openai``, ``cohere``) are entry points of its distribution,
declared in ``pyproject.toml`` exactly as a third-party package declares its own. An entry point is
a factory ``(EmbeddingSettings, Settings) -> Embedder``, imported only when chosen, so choosing
``local`` never imports openai. ``Settings`` is the configuration root the edge built: a factory
reads its provider's account settings from it (a plugin's factory its own class, the same way); a
factory taking the EmbeddingSettings only is still called (:func:`newsrag.core.plugins.call_factory`).
"""

from __future__ import annotations

from collections.abc import Callable

from newsrag.core.plugins import PluginRegistry, call_factory
from newsrag.core.settings import EmbeddingSettings, Settings
from newsrag.embeddings.base import Embedder

Factory = Callable[..., Embedder]  # (EmbeddingSettings, Settings); older ones (EmbeddingSettings)

EMBEDDERS: PluginRegistry[Factory] = PluginRegistry(
    "newsrag.embedders", "provider", setting="NEWSRAG_EMBED_PROVIDER")


def register(name: str) -> Callable[[Factory], Factory]:
    """Set a provider in process (tests, applications); a package declares an entry point instead."""
    return EMBEDDERS.register(name)


def available() -> list[str]:
    return EMBEDDERS.names()


def create_embedder(settings: EmbeddingSettings | Settings | None = None) -> Embedder:
    """The embedder ``NEWSRAG_EMBED_PROVIDER`` names. ``settings``: the root :class:`Settings` (its
    EmbeddingSettings choose the provider, whose account settings, ``OPENAI_API_KEY`` and the like,
    come from the same root), or the EmbeddingSettings alone (the provider's at their defaults);
    None: the defaults (the offline ``local`` model)."""
    root = settings if isinstance(settings, Settings) else Settings({}, *([settings] if settings else []))
    chosen = root.get(EmbeddingSettings)
    return call_factory(EMBEDDERS.load(chosen.provider), chosen, settings=root)
