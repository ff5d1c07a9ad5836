"""The ``Embedder`` protocol every provider implements.

Vectors are float32 numpy arrays of shape (n, dimensions), L2-normalized, so cosine and dot
product agree whatever the provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    @property
    def model_id(self) -> str:
        """Stable id of provider+model+dimensions; part of every cache key and vector name."""

    @property
    def dimensions(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> Vectors: ...

    def embed_query(self, text: str) -> Vectors:
        """One query vector of shape (dimensions,)."""

    def close(self) -> None: ...


def normalize(vectors: npt.ArrayLike) -> Vectors:
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (arr / norms).astype(np.float32, copy=False)


def vector_name(model_id: str) -> str:
    """Weaviate named-vector name for a model id (letters, digits and underscores only)."""
    cleaned = "".join(c if c.isalnum() else "_" for c in model_id.lower())
    return "v_" + "_".join(part for part in cleaned.split("_") if part)
