"""Ingestion state beside the store: HTTP validators for conditional GET, and near-duplicate
signatures. Weaviate stays the truth about which article versions are stored; this file only
makes unchanged sources cheap and lets syndicated copies be recognised across sources."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS validators (url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT)",
    "CREATE TABLE IF NOT EXISTS signatures (doc_id TEXT PRIMARY KEY, source_id TEXT NOT NULL, "
    "url TEXT NOT NULL, minhash BLOB NOT NULL)",
]


SEP = "\x1f"  # between a scope and a key: never part of a URL or a doc id


class IngestState:
    """One index's state. ``scope`` (the collection and named vector written to) prefixes every key,
    so a second collection or a new embedding model sharing the file starts with no validators (an
    unchanged feed would otherwise answer 304 and leave it empty) and no foreign signatures. Rows
    written before scoping have no prefix and are ignored: one full re-read each."""

    def __init__(self, path: str | Path, scope: str = "") -> None:
        self.path = Path(path)
        self.scope = scope
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        for stmt in SCHEMA:
            self._db.execute(stmt)
        self._db.commit()

    def validators(self, url: str) -> tuple[str | None, str | None]:
        with self._lock:
            row = self._db.execute("SELECT etag, last_modified FROM validators WHERE url=?", (self._key(url),)).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def save_validators(self, url: str, etag: str | None, last_modified: str | None) -> None:
        with self._lock:
            if etag or last_modified:
                self._db.execute("INSERT OR REPLACE INTO validators VALUES (?, ?, ?)",
                                 (self._key(url), etag, last_modified))
            else:
                self._db.execute("DELETE FROM validators WHERE url=?", (self._key(url),))
            self._db.commit()

    def forget_validators(self, url: str) -> None:
        self.save_validators(url, None, None)

    def save_signature(self, doc_id: str, source_id: str, url: str, minhash: npt.NDArray[np.uint64]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO signatures VALUES (?, ?, ?, ?)",
                             (self._key(doc_id), source_id, url, np.asarray(minhash, dtype=np.uint64).tobytes()))
            self._db.commit()

    def delete_signatures(self, doc_ids: list[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM signatures WHERE doc_id=?", [(self._key(d),) for d in doc_ids])
            self._db.commit()

    def signatures(self) -> Iterator[tuple[str, str, str, npt.NDArray[np.uint64]]]:
        with self._lock:
            rows = self._db.execute("SELECT doc_id, source_id, url, minhash FROM signatures WHERE doc_id LIKE ? "
                                    "ESCAPE '!'", (_like_prefix(self.scope + SEP),)).fetchall()
        for key, source_id, url, blob in rows:
            yield key[len(self.scope) + 1:], source_id, url, np.frombuffer(blob, dtype=np.uint64)

    def _key(self, key: str) -> str:
        return f"{self.scope}{SEP}{key}"

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _like_prefix(prefix: str) -> str:
    return prefix.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
