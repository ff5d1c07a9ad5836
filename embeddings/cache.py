"""A persistent embedding cache keyed by (model id, hash of the exact text embedded).

Embedding is the pipeline's bottleneck, so no text is embedded twice: not on a re-run, not when
an article changes only in some chunks, not when a model is evaluated again. SQLite in WAL mode
lets several worker processes on one host share it.

It is a pure cache of a function, (model, text) -> vector, and claims nothing about what the store
holds, so unlike the ingestion state (``newsrag.ingest.state``) it is not bound to the collection's
generation: after a lost collection, the full re-read that restores it embeds nothing.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from newsrag.embeddings.base import Embedder, Vectors


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (model_id TEXT NOT NULL, text_hash TEXT NOT NULL, "
                         "vector BLOB NOT NULL, PRIMARY KEY (model_id, text_hash))")
        self._db.commit()

    def get_many(self, model_id: str, keys: Sequence[str]) -> dict[str, Vectors]:
        found: dict[str, Vectors] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                part = list(keys[start:start + 500])
                rows = self._db.execute(
                    f"SELECT text_hash, vector FROM vectors WHERE model_id=? AND text_hash IN "
                    f"({','.join('?' * len(part))})", [model_id, *part]).fetchall()
                found.update({k: np.frombuffer(v, dtype=np.float32) for k, v in rows})
        return found

    def put_many(self, model_id: str, items: dict[str, Vectors]) -> None:
        rows = [(model_id, k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def embed_cached(embedder: Embedder, cache: EmbeddingCache | None, texts: Sequence[str]) -> tuple[Vectors, int]:
    """Vectors for ``texts`` in order, embedding only what the cache lacks. Returns (vectors, n_embedded)."""
    keys = [text_key(t) for t in texts]
    known = cache.get_many(embedder.model_id, keys) if cache else {}
    todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in known}.items())
    if todo:
        fresh = embedder.embed_documents([t for _, t in todo])
        new = {k: fresh[i] for i, (k, _) in enumerate(todo)}
        if cache:
            cache.put_many(embedder.model_id, new)
        known = {**known, **new}
    out = np.stack([known[k] for k in keys]) if keys else np.zeros((0, embedder.dimensions), np.float32)
    return out.astype(np.float32, copy=False), len(todo)
