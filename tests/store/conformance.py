"""What every :class:`newsrag.store.protocol.ChunkStore` must do (the Haystack pattern: one suite,
run on each implementation by subclassing).

A store's test module subclasses :class:`ChunkStoreConformance` (its name must start with ``Test``)
and provides the ``chunk_store`` fixture: a store on a collection that does not exist yet, dropped
afterwards. Override :meth:`ChunkStoreConformance.refuse` when the store refuses other objects than
one with a wrongly typed field. Tests use small hand-made vectors, so no embedder is needed.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from newsrag.core.errors import BatchWriteError
from newsrag.core.records import ChunkRecord, SearchFilters, StoredObject
from newsrag.ingest.models import chunk_uuid
from newsrag.store.protocol import ChunkStore

VECTOR = "v_conformance"
T0 = datetime(2026, 5, 1, 12, 30, 15, tzinfo=UTC)
# One direction per document, so vector search ranks by document.
DIRECTIONS = {"rail": [1.0, 0.0, 0.0], "storm": [0.0, 1.0, 0.0], "chips": [0.0, 0.0, 1.0], "vote": [0.6, 0.6, 0.5]}
WORDS = {"rail": "council approved a light rail line to the airport",
         "storm": "tropical storm brought flooding to the coast",
         "chips": "chipmaker reported record revenue from data centers",
         "vote": "lawmakers passed the budget after a late vote"}


def stored(doc: str, index: int = 0, *, hash_: str = "h1", source: str = "wire",
           published: datetime | None = T0, ingested: datetime | None = T0,
           tags: tuple[str, ...] = (), offset: int | None = None) -> StoredObject:
    """Chunk ``index`` of version ``hash_`` of ``doc``, with the id ingestion gives it."""
    record = ChunkRecord(
        text=f"{WORDS.get(doc, doc)} (part {index})", title=f"About {doc}", url=f"https://{source}.test/{doc}",
        source_id=source, doc_id=doc, content_hash=hash_, author="Desk", language="en", tags=tags,
        published_at=published, published_offset=offset, ingested_at=ingested, chunk_index=index,
        token_count=12 + index)
    vector = [x + 0.01 * index for x in DIRECTIONS.get(doc, [0.3, 0.3, 0.3])]
    return StoredObject(chunk_uuid(doc, index, hash_), record, vector, context=f"about {doc} {WORDS.get(doc, '')}")


class ChunkStoreConformance:
    """Behaviour tests every ChunkStore passes. Subclasses provide the ``chunk_store`` fixture."""

    def refuse(self, obj: StoredObject) -> StoredObject:
        """``obj`` changed so that the store refuses to write it: here a field of the wrong type
        (``model_copy`` does not validate, so it reaches the store)."""
        return replace(obj, chunk=obj.chunk.model_copy(update={"token_count": "many"}))

    @pytest.fixture
    def ready(self, chunk_store: ChunkStore) -> ChunkStore:
        chunk_store.ensure_collection([VECTOR])
        return chunk_store

    # -- the collection ---------------------------------------------------------------------------
    def test_it_is_a_chunk_store(self, chunk_store: ChunkStore) -> None:
        assert isinstance(chunk_store, ChunkStore)

    def test_a_new_collection_exists_empty_with_a_generation(self, chunk_store: ChunkStore) -> None:
        assert not chunk_store.exists() and chunk_store.generation() is None
        chunk_store.ensure_collection([VECTOR])
        assert chunk_store.exists() and chunk_store.count() == 0
        generation = chunk_store.ensure_generation()
        assert generation and chunk_store.generation() == generation
        assert chunk_store.newest_ingested_at() is None

    def test_the_generation_is_kept_until_the_collection_is_recreated(self, ready: ChunkStore) -> None:
        first = ready.ensure_generation()
        ready.upsert([stored("rail")], VECTOR)
        ready.ensure_collection([VECTOR])  # brought up to date, not re-created
        assert ready.generation() == first and ready.ensure_generation() == first
        ready.drop()
        assert not ready.exists() and ready.generation() is None
        ready.ensure_collection([VECTOR])
        assert ready.count() == 0
        second = ready.ensure_generation()
        assert second != first and ready.generation() == second

    def test_a_new_vector_joins_an_existing_collection(self, ready: ChunkStore) -> None:
        ready.upsert([stored("rail")], VECTOR)
        ready.ensure_collection([VECTOR, "v_other"])
        ready.upsert([stored("storm")], "v_other")
        assert [h.chunk.doc_id for h in ready.near_vector(DIRECTIONS["storm"], "v_other", limit=1)] == ["storm"]
        assert ready.count() == 2

    # -- records in and out -----------------------------------------------------------------------
    def test_records_read_back_as_they_were_written(self, ready: ChunkStore) -> None:
        obj = stored("rail", tags=("transit", "city"), offset=-240)
        assert ready.upsert([obj], VECTOR) == 1
        assert ready.get(obj.uuid) == obj.chunk
        assert ready.get(chunk_uuid("missing", 0, "h1")) is None

    def test_every_search_returns_typed_hits_best_first(self, ready: ChunkStore) -> None:
        objs = [stored(doc) for doc in DIRECTIONS]
        ready.upsert(objs, VECTOR)
        by_doc = {o.chunk.doc_id: o for o in objs}
        searches = {
            "bm25": ready.bm25("tropical storm flooding", limit=4),
            "near_vector": ready.near_vector(DIRECTIONS["storm"], VECTOR, limit=4),
            "hybrid": ready.hybrid("tropical storm flooding", DIRECTIONS["storm"], VECTOR, limit=4, alpha=0.5),
        }
        for kind, hits in searches.items():
            assert hits and hits[0].chunk.doc_id == "storm", kind
            assert all(h.chunk == by_doc[h.chunk.doc_id].chunk and h.uuid == by_doc[h.chunk.doc_id].uuid
                       for h in hits), kind
            assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True), kind

    def test_writing_an_id_again_replaces_it(self, ready: ChunkStore) -> None:
        objs = [stored("rail"), stored("rail", 1)]
        assert ready.upsert(objs, VECTOR) == 2
        assert ready.upsert(objs, VECTOR) == 2
        assert ready.count() == 2
        changed = replace(objs[1], chunk=objs[1].chunk.model_copy(update={"title": "Rail line, updated"}))
        ready.upsert([changed], VECTOR)
        assert ready.count() == 2 and ready.get(changed.uuid) == changed.chunk

    # -- document versions and the commit marker --------------------------------------------------
    def test_a_changed_document_keeps_both_versions_until_the_old_one_is_deleted(self, ready: ChunkStore) -> None:
        ready.upsert([stored("rail", i) for i in range(2)], VECTOR)
        ready.upsert([stored("rail", i, hash_="h2") for i in range(3)], VECTOR)  # the new version first
        assert ready.doc_versions(["rail", "storm"]) == {"rail": {"h1", "h2"}}
        assert ready.delete_doc_except("rail", "h2") == 2
        assert ready.doc_versions(["rail"]) == {"rail": {"h2"}} and ready.count() == 3
        assert ready.delete_doc_except("rail", "h2") == 0

    def test_only_the_first_chunk_marks_a_version_as_stored(self, ready: ChunkStore) -> None:
        ready.upsert([stored("rail", 1), stored("rail", 2)], VECTOR)  # a write cut short before its marker
        assert ready.count() == 2
        assert ready.doc_versions(["rail"]) == {} and ready.source_doc_ids("wire") == set()
        ready.upsert([stored("rail", 0)], VECTOR)
        assert ready.doc_versions(["rail"]) == {"rail": {"h1"}} and ready.source_doc_ids("wire") == {"rail"}

    def test_a_refused_chunk_holds_back_its_versions_marker(self, ready: ChunkStore) -> None:
        torn = [stored("rail", 0), stored("rail", 1), self.refuse(stored("rail", 2))]
        whole = [stored("storm", 0), stored("storm", 1)]
        with pytest.raises(BatchWriteError) as info:
            ready.upsert(torn + whole, VECTOR)
        assert set(info.value.failures) == {torn[2].uuid, torn[0].uuid}
        assert info.value.failures[torn[0].uuid].startswith("held back: another chunk of this version failed")
        assert ready.doc_versions(["rail", "storm"]) == {"storm": {"h1"}}
        assert ready.count() == 3  # rail's chunk 1 and both of storm's: the next run writes rail again

    def test_deleting_documents_deletes_every_chunk_of_every_version(self, ready: ChunkStore) -> None:
        ready.upsert([stored("rail", 0), stored("rail", 1), stored("rail", 0, hash_="h2"), stored("storm")],
                     VECTOR)
        assert ready.delete_docs([]) == 0
        assert ready.delete_docs(["rail", "missing"]) == 3
        assert ready.count() == 1 and ready.doc_versions(["rail", "storm"]) == {"storm": {"h1"}}

    def test_a_sources_documents_are_listed_once_each(self, ready: ChunkStore) -> None:
        ready.upsert([stored("rail", 0), stored("rail", 1), stored("rail", 0, hash_="h2"),
                      stored("storm", 0, source="metro"), stored("chips", 1)], VECTOR)  # chips: no marker
        assert ready.source_doc_ids("wire") == {"rail"}
        assert ready.source_doc_ids("metro") == {"storm"} and ready.source_doc_ids("nobody") == set()

    def test_other_sources_of_a_document_are_recorded_once_on_every_chunk(self, ready: ChunkStore) -> None:
        objs = [stored("rail", 0, source="metro"), stored("rail", 1, source="metro"), stored("storm")]
        ready.upsert(objs, VECTOR)
        assert ready.add_also_source("rail", "wire") == 2
        assert ready.add_also_source("rail", "wire") == 0  # never twice
        assert ready.add_also_source("rail", "metro") == 0  # never the document's own source
        assert ready.add_also_source("rail", "agency") == 2
        assert [ready.get(o.uuid).also_sources for o in objs] == [("agency", "wire"), ("agency", "wire"), ()]

    # -- filters and retention --------------------------------------------------------------------
    def test_filters_narrow_the_count_and_every_search(self, ready: ChunkStore) -> None:
        ready.upsert([stored("rail", source="metro", published=T0 - timedelta(days=3), tags=("transit",)),
                      stored("storm", source="wire", published=T0 - timedelta(days=1), tags=("weather",)),
                      stored("chips", source="wire", published=T0, tags=("business",)),
                      stored("vote", source="metro", published=None)], VECTOR)
        cases = {
            SearchFilters(source_ids=("metro",)): {"rail", "vote"},
            SearchFilters(tags=("weather", "business")): {"storm", "chips"},
            SearchFilters(doc_ids=("chips", "vote")): {"chips", "vote"},
            SearchFilters(published_after=T0 - timedelta(days=1)): {"storm", "chips"},  # inclusive
            SearchFilters(published_before=T0 - timedelta(days=1)): {"rail"},  # exclusive; undated never
            SearchFilters(source_ids=("wire",), published_before=T0): {"storm"},
        }
        for filters, docs in cases.items():
            assert ready.count(filters) == len(docs), filters
            found = {  # every text says "part": unfiltered, each search would find all four
                "bm25": ready.bm25("part", limit=10, filters=filters),
                "near_vector": ready.near_vector([0.5, 0.5, 0.5], VECTOR, limit=10, filters=filters),
                "hybrid": ready.hybrid("part", [0.5, 0.5, 0.5], VECTOR, limit=10, filters=filters),
            }
            for kind, hits in found.items():
                assert {h.chunk.doc_id for h in hits} == docs, (kind, filters)
        assert ready.count() == ready.count(SearchFilters()) == 4

    def test_retention_goes_by_publication_and_undated_chunks_by_ingestion(self, ready: ChunkStore) -> None:
        cutoff, old, new = T0, T0 - timedelta(days=10), T0 + timedelta(days=1)
        ready.upsert([stored("rail", source="metro", published=old),
                      stored("storm", source="metro", published=new, ingested=old),
                      stored("chips", source="metro", published=None, ingested=old),
                      stored("vote", source="metro", published=None, ingested=new),
                      stored("other", source="wire", published=old)], VECTOR)
        assert ready.delete_older_than("metro", cutoff) == 2
        assert ready.source_doc_ids("metro") == {"storm", "vote"} and ready.source_doc_ids("wire") == {"other"}

    def test_the_newest_ingestion_time_is_known(self, ready: ChunkStore) -> None:
        ready.upsert([stored("rail", ingested=T0 - timedelta(hours=2)), stored("storm", ingested=T0),
                      stored("chips", ingested=None)], VECTOR)
        assert ready.newest_ingested_at() == T0
