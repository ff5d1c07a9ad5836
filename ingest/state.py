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


class IngestState:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        for stmt in SCHEMA:
            self._db.execute(stmt)
        self._db.commit()

    def validators(self, url: str) -> tuple[str | None, str | None]:
        with self._lock:
            row = self._db.execute("SELECT etag, last_modified FROM validators WHERE url=?", (url,)).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def save_validators(self, url: str, etag: str | None, last_modified: str | None) -> None:
        with self._lock:
            if etag or last_modified:
                self._db.execute("INSERT OR REPLACE INTO validators VALUES (?, ?, ?)", (url, etag, last_modified))
            else:
                self._db.execute("DELETE FROM validators WHERE url=?", (url,))
            self._db.commit()

    def forget_validators(self, url: str) -> None:
        self.save_validators(url, None, None)

    def save_signature(self, doc_id: str, source_id: str, url: str, minhash: npt.NDArray[np.uint64]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO signatures VALUES (?, ?, ?, ?)",
                             (doc_id, source_id, url, np.asarray(minhash, dtype=np.uint64).tobytes()))
            self._db.commit()

    def delete_signatures(self, doc_ids: list[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM signatures WHERE doc_id=?", [(d,) for d in doc_ids])
            self._db.commit()

    def signatures(self) -> Iterator[tuple[str, str, str, npt.NDArray[np.uint64]]]:
        with self._lock:
            rows = self._db.execute("SELECT doc_id, source_id, url, minhash FROM signatures").fetchall()
        for doc_id, source_id, url, blob in rows:
            yield doc_id, source_id, url, np.frombuffer(blob, dtype=np.uint64)

    def close(self) -> None:
        with self._lock:
            self._db.close()
