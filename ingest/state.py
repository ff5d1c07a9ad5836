"""Ingestion state beside the store: a cache of what the store holds, never the truth about it.

Every row is bound to one source id and to the collection's generation (``WeaviateStore.generation``,
a random id the collection keeps in its description and a re-created collection changes). A row of
another generation describes data that is gone, so it is never used: a dropped collection, or one
restored elsewhere, makes every source read in full again. What the file keeps:

- validators: a feed's ETag/Last-Modified, a file source's "seen" fingerprint, per source id;
- reads: the chunks a source had stored after its last clean full read (a source that had
  chunks and now has none is read in full even when its validators say "unchanged");
- docs: the documents a source's reads put or found in the store (``newsrag ingest verify``);
- signatures: near-duplicate MinHash signatures of stored documents.

The file is a SQLite database by default (``$NEWSRAG_HOME/ingest-state.sqlite``); a
``postgresql://`` location keeps it in PostgreSQL instead, through the one SQL layer
(:mod:`newsrag.infra.sqldb`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from newsrag.infra.sqldb import SqlDb

# The first layout (SQLite only) keyed validators and signatures by collection and URL only, so they
# outlived a dropped collection (#21): its rows cannot be bound to a generation and are dropped.
OLD_TABLES = ("validators", "signatures")
SCHEMA_LOCK = "newsrag.ingest_state.schema"
TABLES = ("source_validators", "source_reads", "source_docs", "doc_signatures")


def schema(db: SqlDb) -> list[str]:
    """Every table: scope and generation first, then what it keeps. Times are ISO text compared as
    text (retention, newest generation), so they sort byte by byte (:attr:`SqlDb.ordered_text`)."""
    time = db.ordered_text
    columns = {
        "source_validators": "source_id TEXT NOT NULL, key TEXT NOT NULL, etag TEXT, last_modified TEXT, "
                             "PRIMARY KEY (scope, source_id, key)",
        "source_reads": f"source_id TEXT NOT NULL, chunks_stored INTEGER NOT NULL, read_at {time} NOT NULL, "
                        "PRIMARY KEY (scope, source_id)",
        "source_docs": f"source_id TEXT NOT NULL, doc_id TEXT NOT NULL, url TEXT NOT NULL, published_at {time}, "
                       f"stored_at {time} NOT NULL, PRIMARY KEY (scope, source_id, doc_id)",
        "doc_signatures": f"doc_id TEXT NOT NULL, source_id TEXT NOT NULL, url TEXT NOT NULL, minhash {db.blob} "
                          "NOT NULL, PRIMARY KEY (scope, doc_id)",
    }
    old = [] if db.postgres else [f"DROP TABLE IF EXISTS {t}" for t in OLD_TABLES]  # never another app's table
    return [*old, *(f"CREATE TABLE IF NOT EXISTS {t} (scope TEXT NOT NULL, generation TEXT NOT NULL, {columns[t]})"
                    for t in TABLES)]


@dataclass(frozen=True)
class StoredDoc:
    """A document a source's read put or found in the store."""

    doc_id: str
    url: str
    published_at: datetime | None = None


class IngestState:
    """One index's state. ``scope`` (the collection and named vector written to) keeps a second
    collection or a new embedding model sharing the file apart; ``generation`` (see :meth:`bind`)
    keeps a re-created collection apart from the data its predecessor held."""

    def __init__(self, location: str | Path, scope: str = "", generation: str = "") -> None:
        self.location = str(location)  # a SQLite path or a postgresql:// URL
        self.scope = scope
        self.generation = generation
        self._db = SqlDb(self.location, what="ingestion state", timeout=60)
        with self._db.transaction(lock=SCHEMA_LOCK):
            for stmt in schema(self._db):
                self._db.execute(stmt)

    # -- generation ------------------------------------------------------------------------
    def bind(self, generation: str) -> None:
        """Read and write the rows of this collection generation only."""
        self.generation = generation

    def forget_other_generations(self) -> int:
        """Drop the rows of earlier generations of this scope: they describe data that is gone."""
        with self._db.transaction():
            return sum(self._db.rows_changed(f"DELETE FROM {t} WHERE scope=? AND generation<>?",
                                             (self.scope, self.generation)) for t in TABLES)

    def generations(self) -> list[str]:
        """The generations this scope has rows of, the most recently stored first."""
        rows = self._all("SELECT generation, MAX(stored_at) FROM source_docs WHERE scope=? GROUP BY generation "
                         "UNION SELECT generation, MAX(read_at) FROM source_reads WHERE scope=? GROUP BY generation "
                         "ORDER BY 2 DESC", (self.scope, self.scope))
        return list(dict.fromkeys(r[0] for r in rows))

    # -- validators: conditional GET and file fingerprints, per source id --------------------
    def validators(self, source_id: str, key: str) -> tuple[str | None, str | None]:
        row = self._one("SELECT etag, last_modified FROM source_validators WHERE scope=? AND generation=? "
                        "AND source_id=? AND key=?", (self.scope, self.generation, source_id, key))
        return (row[0], row[1]) if row else (None, None)

    def save_validators(self, source_id: str, key: str, etag: str | None, last_modified: str | None) -> None:
        if not (etag or last_modified):
            return self.forget_validators(source_id, key)
        self._write("INSERT INTO source_validators VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, source_id, key) "
                    "DO UPDATE SET generation=excluded.generation, etag=excluded.etag, "
                    "last_modified=excluded.last_modified",
                    [(self.scope, self.generation, source_id, key, etag, last_modified)])

    def forget_validators(self, source_id: str, key: str | None = None) -> None:
        """Forget one key's validators, or (``key`` None) all of the source's."""
        where, args = "scope=? AND source_id=?", [self.scope, source_id]
        if key is not None:
            where, args = where + " AND key=?", [*args, key]
        self._write(f"DELETE FROM source_validators WHERE {where}", [tuple(args)])

    # -- reads: what a clean full read left stored ---------------------------------------------
    def record_read(self, source_id: str, chunks_stored: int) -> None:
        self._write("INSERT INTO source_reads VALUES (?, ?, ?, ?, ?) ON CONFLICT (scope, source_id) "
                    "DO UPDATE SET generation=excluded.generation, chunks_stored=excluded.chunks_stored, "
                    "read_at=excluded.read_at", [(self.scope, self.generation, source_id, chunks_stored, _now())])

    def chunks_stored(self, source_id: str) -> int | None:
        """Chunks stored under the source after its last clean full read; None: never read."""
        row = self._one("SELECT chunks_stored FROM source_reads WHERE scope=? AND generation=? AND source_id=?",
                        (self.scope, self.generation, source_id))
        return int(row[0]) if row else None

    # -- docs: what a source's reads put or found in the store ----------------------------------
    def remember_docs(self, source_id: str, docs: Iterable[StoredDoc], written: bool = True) -> None:
        """``written``: this run wrote them (an unchanged document keeps the time it was written,
        which is what the store's retention of undated documents goes by)."""
        now = _now()
        stored_at = "excluded.stored_at" if written else "source_docs.stored_at"
        self._write("INSERT INTO source_docs VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (scope, source_id, doc_id) "
                    "DO UPDATE SET generation=excluded.generation, url=excluded.url, "
                    f"published_at=excluded.published_at, stored_at={stored_at}",
                    [(self.scope, self.generation, source_id, d.doc_id, d.url,
                      d.published_at.astimezone(UTC).isoformat() if d.published_at else None, now) for d in docs])

    def docs(self, source_id: str, generation: str | None = None) -> dict[str, str]:
        """doc id -> URL of the documents the source stored (in this generation, or another one)."""
        rows = self._all("SELECT doc_id, url FROM source_docs WHERE scope=? AND generation=? AND source_id=?",
                         (self.scope, self.generation if generation is None else generation, source_id))
        return dict(rows)

    def forget_docs(self, source_id: str, doc_ids: Iterable[str]) -> None:
        self._write("DELETE FROM source_docs WHERE scope=? AND source_id=? AND doc_id=?",
                    [(self.scope, source_id, d) for d in doc_ids])

    def forget_docs_older_than(self, source_id: str, cutoff: datetime) -> None:
        """Retention, by the store's rule: published before ``cutoff`` (undated: stored before)."""
        when = cutoff.astimezone(UTC).isoformat()
        self._write("DELETE FROM source_docs WHERE scope=? AND source_id=? AND (published_at < ? OR "
                    "(published_at IS NULL AND stored_at < ?))", [(self.scope, source_id, when, when)])

    # -- near-duplicate signatures -------------------------------------------------------------
    def save_signature(self, doc_id: str, source_id: str, url: str, minhash: npt.NDArray[np.uint64]) -> None:
        self._write("INSERT INTO doc_signatures VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, doc_id) "
                    "DO UPDATE SET generation=excluded.generation, source_id=excluded.source_id, "
                    "url=excluded.url, minhash=excluded.minhash",
                    [(self.scope, self.generation, doc_id, source_id, url,
                      np.asarray(minhash, dtype=np.uint64).tobytes())])

    def delete_signatures(self, doc_ids: list[str]) -> None:
        self._write("DELETE FROM doc_signatures WHERE scope=? AND doc_id=?", [(self.scope, d) for d in doc_ids])

    def signatures(self) -> Iterator[tuple[str, str, str, npt.NDArray[np.uint64]]]:
        rows = self._all("SELECT doc_id, source_id, url, minhash FROM doc_signatures WHERE scope=? AND generation=?",
                         (self.scope, self.generation))
        for doc_id, source_id, url, blob in rows:
            yield doc_id, source_id, url, np.frombuffer(blob, dtype=np.uint64)

    # -- plumbing ------------------------------------------------------------------------------
    def _one(self, sql: str, args: tuple[Any, ...]) -> Any:
        rows = self._db.execute(sql, args)
        return rows[0] if rows else None

    def _all(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        return self._db.execute(sql, args)

    def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        with self._db.transaction():
            self._db.executemany(sql, rows)

    def close(self) -> None:
        self._db.close()


def _now() -> str:
    return datetime.now(UTC).isoformat()
