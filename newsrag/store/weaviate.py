"""The vector store, with :mod:`.weaviate_schema` and :mod:`.weaviate_client` the only modules that import ``weaviate``.

``WeaviateStore`` wraps one client, opened lazily on first use and closed explicitly. It implements
:class:`newsrag.store.protocol.ChunkStore`: it knows the chunk schema (see docs/architecture.md),
writes with deterministic ids, deletes by filter and searches (hybrid, vector, BM25). Client errors
are translated into :mod:`newsrag.core.errors`.

:mod:`newsrag.store.weaviate_schema` is the one place a :class:`ChunkRecord` is spelled as Weaviate
properties (``to_properties``, ``to_record``); everything else reads the record's typed attributes.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import Any

import httpx
import weaviate
import weaviate.exceptions as wex
from weaviate.classes.config import Configure, ConsistencyLevel, Reconfigure
from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter, HybridFusion, MetadataQuery, Sort

from newsrag.core.errors import BatchWriteError, StoreError, StoreUnavailable
from newsrag.core.records import ChunkRecord, Hit, SearchFilters, StoredObject
from newsrag.core.settings import Settings, WeaviateSettings, defaults
from newsrag.store.circuit import QueryGuard
from newsrag.store.server import LocalWeaviate
from newsrag.store.weaviate_client import connect, ready_url, short_error, translate_error
from newsrag.store.weaviate_schema import (
    chunk_schema,
    returned_properties,
    to_filter,
    to_hit,
    to_properties,
    to_record,
)

WRITE_BATCH = 200
DELETE_PAGE = 10_000  # Weaviate's default QUERY_MAXIMUM_RESULTS bounds one delete_many call

# A collection's generation: a random id kept in its description, new whenever the collection is
# (re-)created, so that state kept beside the store can tell the data it describes from a successor.
GENERATION = re.compile(r"\bgeneration ([0-9a-f]{32})\b")

FUSION = {"relative_score": HybridFusion.RELATIVE_SCORE, "ranked": HybridFusion.RANKED}


def _has_property(name: str, config: Any) -> bool:
    return name in {p.name for p in config.properties}


def _has_vector(name: str, config: Any) -> bool:
    return name in (config.vector_config or {})


def _version(obj: StoredObject) -> tuple[str, str]:
    return obj.chunk.doc_id, obj.chunk.content_hash


class WeaviateStore:
    """One collection of news chunks. Use as a context manager or call :meth:`close`.

    ``settings``: the :class:`WeaviateSettings`, or the root :class:`Settings`, from which the store
    takes those and its local server's (``NEWSRAG_HOME``, used when no ``WEAVIATE_URL`` is set);
    None: the defaults. ``local`` names the local server explicitly (it wins over the root's)."""

    def __init__(self, settings: WeaviateSettings | Settings | None = None, collection: str | None = None, *,
                 local: LocalWeaviate | None = None) -> None:
        root = settings if isinstance(settings, Settings) else None
        if isinstance(settings, Settings):
            settings = settings.get(WeaviateSettings)
        self.settings: WeaviateSettings = settings or defaults(WeaviateSettings)
        self.local = local or LocalWeaviate.from_settings(root)
        self.name = collection or self.settings.collection
        self._client: weaviate.WeaviateClient | None = None
        self._guard: QueryGuard | None = None
        self._has_properties: list[str] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def remote(self) -> bool:
        """A configured URL: Weaviate on another machine, not competing for this one's cores."""
        return bool(self.settings.url)

    @property
    def client(self) -> weaviate.WeaviateClient:
        if self._client is None:
            self._client = connect(self.settings, self.local)
        return self._client

    def close(self) -> None:
        if self._guard is not None:
            self._guard.close()
            self._guard = None
        self._drop_client()

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    @property
    def guard(self) -> QueryGuard:
        """Searches go through it: they fail within about ``query_probe_after`` seconds while
        Weaviate is down, and at once while the circuit is open (:mod:`newsrag.store.circuit`). A trip
        drops the client, so the next query after recovery connects afresh."""
        if self._guard is None:
            s = self.settings
            self._guard = QueryGuard(self.ready_now, probe_after=s.query_probe_after,
                                     open_for=s.circuit_open_seconds, on_trip=self._drop_client)
        return self._guard

    def ready_now(self) -> bool:
        """Weaviate's readiness over plain HTTP with a 1 s timeout, without the client (which may
        be inside its retries)."""
        url = ready_url(self.settings, self.local)
        try:
            return url is not None and httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def _returned(self) -> list[str]:
        """The properties a query returns: those of the schema this collection has. A collection
        written before a property was added (say published_offset) answers queries before the next
        ingestion adds it; asked once per store, the collection's config is one cheap call."""
        if self._has_properties is None:
            try:
                names = {p.name for p in self._call(lambda: self._col.config.get()).properties}
            except StoreError:
                return returned_properties()  # missing or unreachable: the query says which
            self._has_properties = [p for p in returned_properties() if p in names]
        return self._has_properties

    def _query(self, fn: Any) -> Any:
        return self.guard.run(lambda: self._call(fn))

    def __enter__(self) -> WeaviateStore:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def ping(self) -> bool:
        try:
            return bool(self.client.is_ready())
        except (StoreUnavailable, wex.WeaviateBaseError):
            return False

    def server_version(self) -> str:
        return str(self._call(lambda: self.client.get_meta()).get("version", "?"))

    @property
    def _col(self) -> Any:
        """The collection at the configured consistency level: every write and read through it
        waits for that many replicas (``WEAVIATE_CONSISTENCY_LEVEL``)."""
        level = ConsistencyLevel(self.settings.consistency_level)
        return self.client.collections.use(self.name).with_consistency_level(level)

    def _call(self, fn: Any) -> Any:
        try:
            return fn()
        except wex.WeaviateBaseError as exc:
            raise translate_error(exc, self.name) from None
        except ValueError as exc:
            # gRPC's "Cannot invoke RPC on closed channel!": another request of this process closed
            # the client to reconnect (the circuit) while this one was in flight. Weaviate went away
            # mid-call, as for the errors above: a 503 with Retry-After, not a 500.
            if "closed channel" not in str(exc):
                raise
            raise StoreUnavailable(f"Weaviate unavailable ({self.name}): the connection was closed "
                                   "during the call", retry_after=1) from None

    # -- schema ----------------------------------------------------------------------------
    def exists(self) -> bool:
        return bool(self._call(lambda: self.client.collections.exists(self.name)))

    def ensure_collection(self, vector_names: Sequence[str]) -> None:
        """Create the collection with one self-provided named vector per embedding model, or add
        a missing named vector to an existing one (a model change is a managed migration).
        Safe to call from parallel writers (mapped ingest tasks race to create it on a first run)."""
        self._has_properties = None  # the schema may change here: ask again at the next query
        if not self.exists() and self._create(vector_names):
            return
        self._await_index()
        config = self._call(lambda: self._col.config.get())
        self._check_replication(config)
        for prop in chunk_schema():  # a collection made by an older newsrag gains new properties
            if not _has_property(prop.name, config):
                self._reconcile(partial(self._col.config.add_property, prop), partial(_has_property, prop.name))
        for name in vector_names:
            if not _has_vector(name, config):
                add = partial(self._col.config.add_vector, vector_config=Configure.Vectors.self_provided(name=name))
                self._reconcile(add, partial(_has_vector, name))

    def generation(self) -> str | None:
        """The collection's generation id (one schema read); None when the collection is missing or
        has none (created before generations, or by another tool)."""
        try:
            config = self.client.collections.use(self.name).config.get()
        except wex.UnexpectedStatusCodeError as exc:
            if exc.status_code == 404:
                return None
            raise translate_error(exc, self.name) from None
        except wex.WeaviateBaseError as exc:
            raise translate_error(exc, self.name) from None
        found = GENERATION.search(config.description or "")
        return found.group(1) if found else None

    def ensure_generation(self) -> str:
        """The collection's generation id, giving an existing collection without one a new id
        (when writers race to do so, the id the collection keeps is returned)."""
        if (found := self.generation()) is None:
            describe = partial(self._col.config.update, description=_description())
            self._reconcile(describe, lambda config: GENERATION.search(config.description or "") is not None)
            found = self.generation()
        if found is None:
            raise StoreError(f"collection {self.name} is missing: cannot read its generation")
        return found

    def _await_index(self, timeout: float = 20.0) -> None:
        """A collection a concurrent writer has just created is visible before its index is loaded:
        until then queries fail with "non-existing index" (seen when mapped ingest tasks start
        together). Wait for it, briefly, instead of failing a source."""
        deadline = time.monotonic() + timeout
        while not self._call(self._index_ready):
            if time.monotonic() > deadline:
                raise StoreError(f"Weaviate has not loaded the index of {self.name} after {timeout:.0f}s")
            time.sleep(0.2)

    def _index_ready(self) -> bool:
        try:
            self._col.query.fetch_objects(limit=1, return_properties=[])
            return True
        except wex.WeaviateQueryError as exc:
            if "non-existing index" in str(exc):
                return False
            raise

    def _create(self, vector_names: Sequence[str]) -> bool:
        """Create the collection; False when a concurrent writer created it first."""
        try:
            self._call(lambda: self.client.collections.create(
                self.name,
                description=_description(),
                properties=chunk_schema(),
                vector_config=[Configure.Vectors.self_provided(name=n) for n in vector_names],
                inverted_index_config=Configure.inverted_index(
                    index_null_state=True, index_timestamps=True,
                    bm25_k1=self.settings.bm25_k1, bm25_b=self.settings.bm25_b),
                replication_config=self._replication(),
            ))
            return True
        except StoreError:
            if self.exists():
                return False
            raise

    def _replication(self) -> Any:
        """A new collection's replication: the configured factor, else the server's default."""
        factor = self.settings.replication_factor
        return None if factor is None else Configure.replication(factor=factor)

    def _check_replication(self, config: Any) -> None:
        """An existing collection keeps the factor it was created with; a different configured one
        is refused rather than silently ignored (on a cluster it would mean fewer copies than asked)."""
        wanted, actual = self.settings.replication_factor, config.replication_config.factor
        if wanted is not None and wanted != actual:
            raise StoreError(f"collection {self.name} keeps {actual} copies of each object but "
                             f"WEAVIATE_REPLICATION_FACTOR is {wanted}: set it to {actual}, or re-create "
                             "the collection (a replication factor is chosen before the first ingestion)")

    def _reconcile(self, change: Callable[[], Any], done: Callable[[Any], bool]) -> None:
        """Apply a schema change unless a concurrent writer already has (its error is then moot)."""
        try:
            self._call(change)
        except StoreError:
            if not done(self._call(lambda: self._col.config.get())):
                raise

    def set_bm25(self, k1: float, b: float) -> None:
        """Change the collection's BM25 parameters in place (they are mutable; nothing is re-indexed)."""
        self._call(lambda: self._col.config.update(
            inverted_index_config=Reconfigure.inverted_index(bm25_k1=k1, bm25_b=b)))

    def bm25_params(self) -> tuple[float, float]:
        bm25 = self._call(lambda: self._col.config.get()).inverted_index_config.bm25
        return float(bm25.k1), float(bm25.b)

    def drop(self) -> None:
        self._has_properties = None
        self._call(lambda: self.client.collections.delete(self.name))

    # -- writes ----------------------------------------------------------------------------
    def upsert(self, objects: Sequence[StoredObject], vector_name: str) -> int:
        """Write objects by id (existing ids are replaced). Raises BatchWriteError listing every failed id.

        A document version's first chunk (``chunk_index`` 0) marks it as stored (:meth:`doc_versions`
        reads only those), so it is written after the version's other chunks, and only when all of
        them were: a write cut short (Weaviate gone mid-batch, an object refused) leaves a version
        without its marker, which the next ingestion writes again instead of skipping it as unchanged."""
        failures: dict[str, str] = {}
        markers = [o for o in objects if o.chunk.is_marker]
        self._insert([o for o in objects if not o.chunk.is_marker], vector_name, failures)
        torn = {_version(o): failures[o.uuid] for o in objects if o.uuid in failures}
        for o in markers:
            if _version(o) in torn:
                failures[o.uuid] = f"held back: another chunk of this version failed ({torn[_version(o)]})"
        self._insert([o for o in markers if o.uuid not in failures], vector_name, failures)
        if failures:
            raise BatchWriteError(failures)
        return len(objects)

    def _insert(self, objects: Sequence[StoredObject], vector_name: str, failures: dict[str, str]) -> None:
        for start in range(0, len(objects), WRITE_BATCH):
            part = objects[start:start + WRITE_BATCH]
            data = [DataObject(properties=to_properties(o), uuid=o.uuid, vector={vector_name: o.vector})
                    for o in part]
            errors = self._call(partial(self._insert_many, data))
            for index, error in errors.items():
                failures[part[index].uuid] = getattr(error, "message", str(error))

    def _insert_many(self, data: list[DataObject[Any, Any]]) -> dict[int, Any]:
        """Per-object errors of one insert (the client raises instead when every object failed)."""
        try:
            return dict(self._col.data.insert_many(data).errors or {})
        except wex.WeaviateInsertManyAllFailedError as exc:
            return dict.fromkeys(range(len(data)), short_error(exc))

    def update_properties(self, uuid: str, properties: dict[str, Any]) -> None:
        self._call(lambda: self._col.data.update(uuid=uuid, properties=properties))

    def delete_ids(self, uuids: Sequence[str]) -> int:
        if not uuids:
            return 0
        return self._delete(Filter.by_id().contains_any(list(uuids)))

    def delete_doc_except(self, doc_id: str, keep_hash: str) -> int:
        """Delete the chunks of ``doc_id`` that do not carry ``keep_hash`` (old versions)."""
        where = Filter.by_property("doc_id").equal(doc_id) & Filter.by_property("content_hash").not_equal(keep_hash)
        return self._delete(where)

    def delete_docs(self, doc_ids: Sequence[str]) -> int:
        if not doc_ids:
            return 0
        return self._delete(Filter.by_property("doc_id").contains_any(list(doc_ids)))

    def delete_older_than(self, source_id: str, cutoff: datetime) -> int:
        """Retention: delete a source's chunks published before ``cutoff`` (undated: first seen before)."""
        by_source = Filter.by_property("source_id").equal(source_id)
        dated = Filter.by_property("published_at").less_than(cutoff)
        undated = Filter.by_property("published_at").is_none(True) & Filter.by_property("ingested_at").less_than(cutoff)
        return self._delete(by_source & (dated | undated))

    def _delete(self, where: Any) -> int:
        total = 0
        while True:
            result = self._call(lambda: self._col.data.delete_many(where=where))
            if result.failed:
                raise StoreError(f"{result.failed} object(s) could not be deleted from {self.name}")
            total += int(result.successful)
            if result.matches < DELETE_PAGE:
                return total

    # -- reads -----------------------------------------------------------------------------
    def count(self, filters: SearchFilters | None = None) -> int:
        where = to_filter(filters)
        result = self._call(lambda: self._col.aggregate.over_all(total_count=True, filters=where))
        return int(result.total_count or 0)

    def doc_versions(self, doc_ids: Sequence[str]) -> dict[str, set[str]]:
        """For each stored doc id, the content hashes present (two after an interrupted replace)."""
        found: dict[str, set[str]] = {}
        for start in range(0, len(doc_ids), 500):
            ids = list(doc_ids[start:start + 500])
            where = Filter.by_property("doc_id").contains_any(ids) & Filter.by_property("chunk_index").equal(0)
            res = self._call(lambda w=where, n=len(ids): self._col.query.fetch_objects(
                filters=w, limit=n * 4 + 10, return_properties=["doc_id", "content_hash"]))
            for obj in res.objects:
                found.setdefault(obj.properties["doc_id"], set()).add(obj.properties["content_hash"])
        return found

    def source_doc_ids(self, source_id: str) -> set[str]:
        """Every doc id stored for a source (first chunks only: one row per document version)."""
        where = Filter.by_property("source_id").equal(source_id) & Filter.by_property("chunk_index").equal(0)
        res = self._call(lambda: self._col.query.fetch_objects(
            filters=where, limit=DELETE_PAGE, return_properties=["doc_id"]))
        if len(res.objects) < DELETE_PAGE:
            return {o.properties["doc_id"] for o in res.objects}
        # Filtered queries stop at QUERY_MAXIMUM_RESULTS; the cursor iterator has no such bound.
        return {p["doc_id"] for _, p in self.iter_properties(["doc_id", "source_id", "chunk_index"])
                if p.get("source_id") == source_id and p.get("chunk_index") == 0}

    def add_also_source(self, doc_id: str, source_id: str) -> int:
        """Record that another source carried a near-duplicate of ``doc_id``. Returns chunks touched."""
        res = self._call(lambda: self._col.query.fetch_objects(
            filters=Filter.by_property("doc_id").equal(doc_id), limit=10_000,
            return_properties=["also_sources", "source_id"]))
        touched = 0
        for obj in res.objects:
            have = list(obj.properties.get("also_sources") or [])
            if source_id != obj.properties.get("source_id") and source_id not in have:
                self.update_properties(str(obj.uuid), {"also_sources": sorted([*have, source_id])})
                touched += 1
        return touched

    def iter_properties(self, properties: Sequence[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every object's raw properties (the named ones), by cursor: for diagnostics and tests,
        and no part of :class:`newsrag.store.protocol.ChunkStore`."""
        for obj in self._call(lambda: self._col.iterator(return_properties=list(properties))):
            yield str(obj.uuid), dict(obj.properties)

    def newest_ingested_at(self) -> datetime | None:
        res = self._call(lambda: self._col.query.fetch_objects(
            limit=1, sort=Sort.by_property("ingested_at", ascending=False), return_properties=["ingested_at"]))
        return to_record(res.objects[0].properties).ingested_at if res.objects else None

    def get(self, uuid: str) -> ChunkRecord | None:
        obj = self._query(lambda: self._col.query.fetch_object_by_id(uuid, return_properties=self._returned()))
        return None if obj is None else to_record(obj.properties)

    def hybrid(self, query: str, vector: Sequence[float], vector_name: str, *, limit: int = 10,
               alpha: float = 0.5, fusion: str = "relative_score", filters: SearchFilters | None = None,
               query_properties: Sequence[str] | None = None) -> list[Hit]:
        res = self._query(lambda: self._col.query.hybrid(
            query=query, vector=list(vector), target_vector=vector_name, alpha=alpha,
            fusion_type=FUSION[fusion], limit=limit, filters=to_filter(filters),
            query_properties=list(query_properties) if query_properties else None,
            return_properties=self._returned(),
            return_metadata=MetadataQuery(score=True, explain_score=True)))
        return [to_hit(o, o.metadata.score) for o in res.objects]

    def near_vector(self, vector: Sequence[float], vector_name: str, *, limit: int = 10,
                    filters: SearchFilters | None = None) -> list[Hit]:
        res = self._query(lambda: self._col.query.near_vector(
            near_vector=list(vector), target_vector=vector_name, limit=limit, filters=to_filter(filters),
            return_properties=self._returned(), return_metadata=MetadataQuery(distance=True)))
        return [to_hit(o, 1.0 - float(o.metadata.distance or 0.0)) for o in res.objects]

    def bm25(self, query: str, *, limit: int = 10, filters: SearchFilters | None = None,
             query_properties: Sequence[str] | None = None) -> list[Hit]:
        res = self._query(lambda: self._col.query.bm25(
            query=query, limit=limit, filters=to_filter(filters),
            query_properties=list(query_properties) if query_properties else None,
            return_properties=self._returned(), return_metadata=MetadataQuery(score=True)))
        return [to_hit(o, o.metadata.score) for o in res.objects]


def _description() -> str:
    return f"newsrag news chunks; generation {uuid.uuid4().hex} (new when the collection is re-created)"
