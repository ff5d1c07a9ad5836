"""Ingestion state beside the store: a cache of what the store holds, never the truth about it.

Every row is bound to one source id and to the collection's generation (``WeaviateStore.generation``,
a random id the collection keeps in its description and a re-created collection changes). A row of
another generation describes data that is gone, so it is never used: a dropped collection, or one
restored elsewhere, makes every source read in full again. What the file keeps:

- validators: a feed's ETag/Last-Modified, a file source's "seen" fingerprint, per source id;
- reads: the chunks a source had stored after its last clean full read (a source that had
  chunks and now has none is read in full even when its validators say "unchanged");
- docs: the documents a source's reads put or found in the store (``newsrag ingest verify``);
- signatures: near-duplicate MinHash signatures of the documents stored (or being stored: a
  claim), and of the copies recorded against them; ``doc_bands`` holds their LSH band keys, one
  document per key, which is what makes a claim atomic across workers (:mod:`newsrag.ingest.dedup`).

The file is a SQLite database by default (``$NEWSRAG_HOME/ingest-state.sqlite``); a
``postgresql://`` location keeps it in PostgreSQL instead, through the one SQL layer
(:mod:`newsrag.infra.sqldb`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from newsrag.infra.sqldb import SqlDb
from newsrag.ingest.dedup import Banding, Holder, Judge, Signed

# The first layout (SQLite only) keyed validators and signatures by collection and URL only, so they
# outlived a dropped collection (#21): its rows cannot be bound to a generation and are dropped.
OLD_TABLES = ("validators", "signatures")
SCHEMA_LOCK = "newsrag.ingest_state.schema"
BANDS_LOCK = "newsrag.ingest_state.bands"
TABLES = ("source_validators", "source_reads", "source_docs", "doc_signatures")  # bound to a generation
# PostgreSQL's "deadlock detected" and "serialization failure": the transaction is tried again.
# Claims take band keys in band order, so only re-banding a changed document can meet one.
RETRIED_STATES = ("40P01", "40001")
T = TypeVar("T")


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
                          f"NOT NULL, {', '.join(f'{c} {t}' for c, t in claim_columns(db).items())}, "
                          "PRIMARY KEY (scope, doc_id)",
    }
    old = [] if db.postgres else [f"DROP TABLE IF EXISTS {t}" for t in OLD_TABLES]  # never another app's table
    return [*old, *(f"CREATE TABLE IF NOT EXISTS {t} (scope TEXT NOT NULL, generation TEXT NOT NULL, {columns[t]})"
                    for t in TABLES)]


def claim_columns(db: SqlDb) -> dict[str, str]:
    """What ``doc_signatures`` gained with shared claims. ``status``: claimed (a run is writing the
    document), stored, or copy (of ``copy_of``, not stored); ``bands``: the layout of its band keys
    (:attr:`Banding.label`), None before it has any. An older table's rows are stored signatures."""
    return {"status": "TEXT NOT NULL DEFAULT 'stored'", "claimed_at": db.ordered_text, "claimant": "TEXT",
            "copy_of": "TEXT", "bands": "TEXT"}


def claim_schema(db: SqlDb) -> list[str]:
    """The columns an older ``doc_signatures`` lacks, the band keys and the indexes the claims use.
    A document's band rows go with its signature (retention, deletes, released claims)."""
    have = db.columns("doc_signatures")
    added = [f"ALTER TABLE doc_signatures ADD COLUMN {c} {t}" for c, t in claim_columns(db).items() if c not in have]
    return [*added,
            ("CREATE TABLE IF NOT EXISTS doc_bands (scope TEXT NOT NULL, band INTEGER NOT NULL, key TEXT NOT NULL, "
             "doc_id TEXT NOT NULL, PRIMARY KEY (scope, band, key), FOREIGN KEY (scope, doc_id) "
             "REFERENCES doc_signatures (scope, doc_id) ON DELETE CASCADE)"),
            "CREATE INDEX IF NOT EXISTS doc_bands_doc ON doc_bands (scope, doc_id)",
            "CREATE INDEX IF NOT EXISTS doc_signatures_copy_of ON doc_signatures (scope, copy_of)",
            "CREATE INDEX IF NOT EXISTS doc_signatures_claimant ON doc_signatures (claimant)"]


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
        self._banded: set[tuple[str, str]] = set()  # (generation, layout) whose signatures all have bands
        with self._db.transaction(lock=SCHEMA_LOCK):
            for stmt in schema(self._db):
                self._db.execute(stmt)
            for stmt in claim_schema(self._db):
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

    # -- near-duplicate signatures and claims (the policy is newsrag.ingest.dedup's) --------------
    def save_signature(self, doc_id: str, source_id: str, url: str, minhash: npt.NDArray[np.uint64],
                       banding: Banding | None = None) -> None:
        """A stored document's signature, holding every band key still free."""
        self._retrying(lambda: self._save(doc_id, source_id, url, minhash, banding or Banding.for_threshold()))

    def claim(self, doc_id: str, source_id: str, url: str, minhash: npt.NDArray[np.uint64], banding: Banding,
              claimant: str, judge: Judge) -> Holder | None:
        """In one transaction: take the document's signature and every free band key, and hand the
        documents holding its other keys to ``judge``, which returns the original it copies (or
        None) and the holders found stale (released here, with their keys; the copies recorded
        against them pass to the story's holder). With an original, the document is recorded as its
        copy and holds nothing (copies recorded against it pass on too); the original is returned."""
        def work() -> Holder | None:
            keys = banding.keys(minhash)
            self._upsert(doc_id, source_id, url, minhash, "claimed", claimant, banding.label)
            self._take_bands(doc_id, keys)
            original, stale = judge(self._holders(doc_id, keys))
            self._release(stale, heir=doc_id if original is None else original.doc_id)
            if original is not None:
                self._db.execute("DELETE FROM doc_bands WHERE scope=? AND doc_id=?", (self.scope, doc_id))
                self._db.execute("UPDATE doc_signatures SET status='copy', copy_of=?, claimant=NULL, "
                                 "claimed_at=NULL, bands=NULL WHERE scope=? AND (doc_id=? OR copy_of=?)",
                                 (original.doc_id, self.scope, doc_id, doc_id))
            elif stale:
                self._take_bands(doc_id, keys)  # the keys the stale holders kept are free now
            return original

        return self._retrying(work)

    def store_signatures(self, docs: Sequence[Signed], banding: Banding, claimant: str) -> None:
        """Written documents (doc id, source id, URL, hash values): a claim of ``claimant`` becomes
        stored; any other (a changed document, a claim lost meanwhile) is saved as stored."""
        def work() -> None:
            for doc_id, source_id, url, minhash in docs:
                if not self._db.rows_changed("UPDATE doc_signatures SET status='stored', claimant=NULL WHERE "
                                             "scope=? AND doc_id=? AND claimant=? AND status='claimed' AND bands=?",
                                             (self.scope, doc_id, claimant, banding.label)):
                    self._save(doc_id, source_id, url, minhash, banding)

        if docs:
            self._retrying(work)

    def band_signatures(self, banding: Banding) -> None:
        """Give this generation's signatures that lack them the band keys of ``banding`` (an older
        state, one saved for another threshold); once per layout and state object."""
        if (self.generation, banding.label) in self._banded:
            return
        with self._db.transaction(lock=BANDS_LOCK):
            rows = self._all("SELECT doc_id, minhash FROM doc_signatures WHERE scope=? AND generation=? AND "
                             "status<>'copy' AND (bands IS NULL OR bands<>?)",
                             (self.scope, self.generation, banding.label))
            for doc_id, blob in rows:
                self._take_bands(doc_id, banding.keys(_values(blob)))
            self._db.executemany("UPDATE doc_signatures SET bands=? WHERE scope=? AND doc_id=?",
                                 [(banding.label, self.scope, r[0]) for r in rows])
        self._banded.add((self.generation, banding.label))

    def copies(self, doc_ids: Sequence[str]) -> dict[str, set[str]]:
        """doc id -> the sources recorded as carrying a copy of it."""
        found: dict[str, set[str]] = {}
        for start in range(0, len(doc_ids), 500):
            part = list(doc_ids[start:start + 500])
            rows = self._all(f"SELECT copy_of, source_id FROM doc_signatures WHERE scope=? AND status='copy' AND "
                             f"copy_of IN ({', '.join('?' * len(part))})", (self.scope, *part))
            for original, source_id in rows:
                found.setdefault(original, set()).add(source_id)
        return found

    def renew_claims(self, claimant: str) -> None:
        self._write("UPDATE doc_signatures SET claimed_at=? WHERE scope=? AND claimant=? AND status='claimed'",
                    [(_now(), self.scope, claimant)])

    def release_claims(self, claimant: str) -> None:
        """Drop the claimant's claims not yet stored (their band keys go with them)."""
        self._write("DELETE FROM doc_signatures WHERE scope=? AND claimant=? AND status='claimed'",
                    [(self.scope, claimant)])

    def stored_signatures(self, source_id: str) -> set[str]:
        """The doc ids of the source's stored signatures (this generation)."""
        return {r[0] for r in self._all("SELECT doc_id FROM doc_signatures WHERE scope=? AND generation=? AND "
                                        "source_id=? AND status='stored'", (self.scope, self.generation, source_id))}

    def delete_signatures(self, doc_ids: list[str]) -> None:
        """The documents' signatures, their band keys and the copies recorded against them."""
        self._write("DELETE FROM doc_signatures WHERE scope=? AND (doc_id=? OR copy_of=?)",
                    [(self.scope, d, d) for d in doc_ids])

    def signatures(self) -> Iterator[tuple[str, str, str, npt.NDArray[np.uint64]]]:
        """(doc id, source id, URL, hash values) of the documents stored or being stored."""
        rows = self._all("SELECT doc_id, source_id, url, minhash FROM doc_signatures WHERE scope=? AND generation=? "
                         "AND status<>'copy'", (self.scope, self.generation))
        for doc_id, source_id, url, blob in rows:
            yield doc_id, source_id, url, _values(blob)

    def _save(self, doc_id: str, source_id: str, url: str, minhash: npt.NDArray[np.uint64], banding: Banding) -> None:
        self._upsert(doc_id, source_id, url, minhash, "stored", None, banding.label)
        self._take_bands(doc_id, banding.keys(minhash))

    def _upsert(self, doc_id: str, source_id: str, url: str, minhash: npt.NDArray[np.uint64], status: str,
                claimant: str | None, bands: str) -> None:
        self._db.execute(
            "INSERT INTO doc_signatures (scope, generation, doc_id, source_id, url, minhash, status, claimed_at, "
            "claimant, copy_of, bands) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?) ON CONFLICT (scope, doc_id) "
            "DO UPDATE SET generation=excluded.generation, source_id=excluded.source_id, url=excluded.url, "
            "minhash=excluded.minhash, status=excluded.status, claimed_at=excluded.claimed_at, "
            "claimant=excluded.claimant, copy_of=NULL, bands=excluded.bands",
            (self.scope, self.generation, doc_id, source_id, url, np.asarray(minhash, dtype=np.uint64).tobytes(),
             status, _now(), claimant, bands))

    def _take_bands(self, doc_id: str, keys: list[tuple[int, str]]) -> None:
        """The document's band keys, in band order (so concurrent claims wait for each other in one
        order, never in a cycle): its old ones go, each new one is taken unless another holds it."""
        self._db.execute("DELETE FROM doc_bands WHERE scope=? AND doc_id=?", (self.scope, doc_id))
        self._db.executemany("INSERT INTO doc_bands (scope, band, key, doc_id) VALUES (?, ?, ?, ?) "
                             "ON CONFLICT (scope, band, key) DO NOTHING",
                             [(self.scope, band, key, doc_id) for band, key in sorted(keys)])

    def _holders(self, doc_id: str, keys: list[tuple[int, str]]) -> list[Holder]:
        """The other documents holding any of ``keys``, read after this transaction took its own."""
        wanted = " OR ".join(["(b.scope=? AND b.band=? AND b.key=?)"] * len(keys))
        rows = self._all("SELECT s.doc_id, s.source_id, s.url, s.minhash, s.generation, s.status, s.claimed_at "
                         "FROM doc_bands b JOIN doc_signatures s ON s.scope=b.scope AND s.doc_id=b.doc_id "
                         f"WHERE b.doc_id<>? AND ({wanted})",
                         (doc_id, *(v for band, key in keys for v in (self.scope, band, key))))
        found = {r[0]: Holder(r[0], r[1], r[2], _values(r[3]), r[4], r[5], r[6]) for r in rows}
        return list(found.values())

    def _release(self, stale: list[Holder], heir: str) -> None:
        """Stale holders (gone from the store, an expired claim), unless changed since they were
        read; the copies of their story are now copies of ``heir``'s."""
        for h in stale:
            if self._db.rows_changed("DELETE FROM doc_signatures WHERE scope=? AND doc_id=? AND status=? AND "
                                     "COALESCE(claimed_at, '')=?", (self.scope, h.doc_id, h.status, h.claimed_at or "")):
                self._db.execute("UPDATE doc_signatures SET copy_of=? WHERE scope=? AND copy_of=?",
                                 (heir, self.scope, h.doc_id))

    def _retrying(self, work: Callable[[], T]) -> T:
        """``work`` in one transaction, tried again (up to three times) when PostgreSQL breaks a
        deadlock or a serialization conflict by aborting it."""
        for attempt in range(3):
            try:
                with self._db.transaction():
                    return work()
            except self._db.errors as exc:
                if getattr(exc, "sqlstate", None) not in RETRIED_STATES or attempt == 2:
                    raise
        raise AssertionError("unreachable")

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


def _values(blob: Any) -> npt.NDArray[np.uint64]:
    return np.frombuffer(bytes(blob), dtype=np.uint64)
