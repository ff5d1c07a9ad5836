"""What ingestion and retrieval ask of a chunk store, and the rules a store keeps for them.

:class:`ChunkStore` is the whole contract (``newsrag.store.weaviate.WeaviateStore`` implements it;
``tests/store/conformance.py`` is the behaviour every implementation must show). Retrieval needs
only its search part, :class:`ChunkSearch`.

The ingest rules the contract carries (the pipeline, ``newsrag.ingest.state`` and
``newsrag.ingest.verify`` depend on every one of them):

- **Writes by id.** Ingestion derives a chunk's id from ``(doc_id, chunk_index, content_hash)``
  (``newsrag.ingest.models.chunk_uuid``) and the store replaces an object written again under its
  id, so writing the same chunk twice leaves one object: re-running or retrying converges.
- **Document versions.** A document version is ``(doc_id, content_hash)``. A changed article is
  written as a new version *before* its old versions are deleted (:meth:`ChunkStore.delete_doc_except`),
  so a crash leaves an extra old version, never a missing one; :meth:`ChunkStore.doc_versions`
  then reports two hashes and the next run deletes the stale one.
- **The commit marker.** A version's first chunk (``chunk_index`` 0, :attr:`ChunkRecord.is_marker`)
  marks it as stored: :meth:`ChunkStore.doc_versions` and :meth:`ChunkStore.source_doc_ids` read
  markers only, and :meth:`ChunkStore.upsert` writes a marker after the rest of its version and
  only when all of it was written. A torn write is therefore never taken for a stored version;
  the next ingestion writes it again instead of skipping it as unchanged.
- **The generation.** A collection carries a random generation id, new whenever it is (re-)created.
  Local ingest state is bound to the generation it was written in, so a dropped or restored
  collection makes every source read in full again instead of trusting stale markers.
- **Retention.** A source's chunks published before a cutoff go; undated ones go by the time they
  were ingested.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from newsrag.core.records import ChunkRecord, Hit, SearchFilters, StoredObject


@runtime_checkable
class ChunkSearch(Protocol):
    """The reads of a search: ranked :class:`Hit` s carrying their :class:`ChunkRecord`, best first.
    ``vector_name`` names the embedding model's vector; ``query_properties`` which texts BM25
    searches (``"title^2"`` boosts); ``filters`` narrow every kind of search the same way."""

    def hybrid(self, query: str, vector: Sequence[float], vector_name: str, *, limit: int = 10,
               alpha: float = 0.5, fusion: str = "relative_score", filters: SearchFilters | None = None,
               query_properties: Sequence[str] | None = None) -> list[Hit]:
        """BM25 and vector similarity fused (``alpha`` 0: BM25 only, 1: vector only)."""
        ...

    def near_vector(self, vector: Sequence[float], vector_name: str, *, limit: int = 10,
                    filters: SearchFilters | None = None) -> list[Hit]:
        """Nearest chunks by vector; the score is the similarity (higher is closer)."""
        ...

    def bm25(self, query: str, *, limit: int = 10, filters: SearchFilters | None = None,
             query_properties: Sequence[str] | None = None) -> list[Hit]:
        """Keyword search."""
        ...


@runtime_checkable
class ChunkStore(ChunkSearch, Protocol):
    """One collection of news chunks. See the module docstring for the rules it keeps."""

    name: str  # the collection: ingest state and reports are keyed by it

    @property
    def remote(self) -> bool:
        """Whether the store runs elsewhere: its writes may then overlap embedding (a local store
        competes for the same cores)."""
        ...

    # -- the collection ---------------------------------------------------------------------------
    def exists(self) -> bool:
        ...

    def ensure_collection(self, vector_names: Sequence[str]) -> None:
        """Create the collection (with a new generation) or bring an existing one up to date: one
        vector per name, every record field. Safe when parallel writers race to do it."""
        ...

    def generation(self) -> str | None:
        """The collection's generation id; None when the collection is missing or has none."""
        ...

    def ensure_generation(self) -> str:
        """The generation id, giving an existing collection without one a new one (racing writers
        all get the id the collection keeps)."""
        ...

    def drop(self) -> None:
        """Delete the collection and everything in it: a later :meth:`ensure_collection` starts a
        new generation."""
        ...

    def close(self) -> None:
        ...

    # -- writes -----------------------------------------------------------------------------------
    def upsert(self, objects: Sequence[StoredObject], vector_name: str) -> int:
        """Write objects by id, replacing existing ids; returns how many were written. Markers are
        written last and held back when another chunk of their version failed. Raises
        :class:`newsrag.core.errors.BatchWriteError` listing every failed (or held back) id."""
        ...

    def delete_doc_except(self, doc_id: str, keep_hash: str) -> int:
        """Delete every version of ``doc_id`` but ``keep_hash`` (after the new one was written)."""
        ...

    def delete_docs(self, doc_ids: Sequence[str]) -> int:
        """Delete every chunk of every version of these documents; returns chunks deleted."""
        ...

    def delete_older_than(self, source_id: str, cutoff: datetime) -> int:
        """Retention: delete a source's chunks published before ``cutoff`` (undated ones: ingested
        before it)."""
        ...

    def add_also_source(self, doc_id: str, source_id: str) -> int:
        """Record on every chunk of ``doc_id`` that ``source_id`` also carried it (never the
        document's own source, never twice); returns chunks changed."""
        ...

    # -- reads ------------------------------------------------------------------------------------
    def count(self, filters: SearchFilters | None = None) -> int:
        ...

    def get(self, uuid: str) -> ChunkRecord | None:
        """The record stored under ``uuid``, None when there is none."""
        ...

    def doc_versions(self, doc_ids: Sequence[str]) -> dict[str, set[str]]:
        """For each stored document, the content hashes of its committed versions (markers only;
        two after an interrupted replace). Documents not stored are absent."""
        ...

    def source_doc_ids(self, source_id: str) -> set[str]:
        """Every document with a committed version under ``source_id``, however many there are."""
        ...

    def newest_ingested_at(self) -> datetime | None:
        """When the newest chunk was written; None when there is none."""
        ...
