"""Embedding providers behind one protocol. ``create_embedder()`` picks one by name from settings."""

from newsrag.embeddings.base import Embedder
from newsrag.embeddings.registry import available, create_embedder, register

__all__ = ["Embedder", "available", "create_embedder", "register"]
