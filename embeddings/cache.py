"""A persistent embedding cache keyed by (model id, hash of the exact text embedded).

Embedding is the pipeline's bottleneck, so no text is embedded twice: not on a re-run, not when
an article changes only in some chunks, not when a model is evaluated again. SQLite in WAL mode
(the default, ``$NEWSRAG_HOME/embedding-cache.sqlite``) lets several worker processes on one host
share it; a ``postgresql://`` location shares it between hosts (:mod:`newsrag.infra.sqldb`).

It is a pure cache of a function, (model, text) -> vector, and claims nothing about what the store
holds, so unlike the ingestion state (``newsrag.ingest.state``) it is not bound to the collection's
generation: after a lost collection, the full re-read that restores it embeds nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from newsrag.embeddings.base import Embedder, Vectors
from newsrag.infra.sqldb import SqlDb

SCHEMA_LOCK = "newsrag.embedding_cache.schema"
LOOKUP_BATCH = 500  # keys per SELECT: under SQLite's default limit of bound parameters


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    def __init__(self, location: str | Path) -> None:
        self.location = str(location)  # a SQLite path or a postgresql:// URL
        self._db = SqlDb(self.location, what="embedding cache", timeout=60)
        with self._db.transaction(lock=SCHEMA_LOCK):
            self._db.execute(f"CREATE TABLE IF NOT EXISTS vectors (model_id TEXT NOT NULL, text_hash TEXT NOT NULL, "
                             f"vector {self._db.blob} NOT NULL, PRIMARY KEY (model_id, text_hash))")

    def get_many(self, model_id: str, keys: Sequence[str]) -> dict[str, Vectors]:
        found: dict[str, Vectors] = {}
        for start in range(0, len(keys), LOOKUP_BATCH):
            part = list(keys[start:start + LOOKUP_BATCH])
            rows = self._db.execute(f"SELECT text_hash, vector FROM vectors WHERE model_id=? AND text_hash IN "
                                    f"({','.join('?' * len(part))})", [model_id, *part])
            found.update({k: np.frombuffer(v, dtype=np.float32) for k, v in rows})
        return found

    def put_many(self, model_id: str, items: dict[str, Vectors]) -> None:
        rows = [(model_id, k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()]
        if not rows:
            return
        with self._db.transaction():
            self._db.executemany("INSERT INTO vectors VALUES (?, ?, ?) ON CONFLICT (model_id, text_hash) "
                                 "DO UPDATE SET vector=excluded.vector", rows)

    def close(self) -> None:
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
