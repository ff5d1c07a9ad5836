"""The Weaviate store against the real Weaviate, beyond the ChunkStore contract (conformance.py):
its schema, BM25 parameters, races of parallel writers, client errors and older collections."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from newsrag.core.errors import BatchWriteError, ConfigError, StoreError, StoreUnavailable
from newsrag.core.records import ChunkRecord, SearchFilters, StoredObject
from newsrag.core.settings import Settings, WeaviateSettings
from newsrag.embeddings.base import vector_name
from newsrag.store import weaviate as weaviate_store
from newsrag.store import weaviate_schema
from newsrag.store.weaviate import WeaviateStore
from newsrag.store.weaviate_schema import chunk_schema

pytestmark = pytest.mark.integration

TEXTS = [
    ("rail", "The city council approved a new light rail line linking the airport to downtown."),
    ("storm", "A tropical storm brought heavy rain and flooding to the southern coast."),
    ("chips", "The chipmaker reported record quarterly revenue driven by data-center demand."),
    ("vote", "Lawmakers passed the budget bill after a late-night vote in the senate."),
]


def objects(embedder, texts=TEXTS) -> list[StoredObject]:
    vectors = embedder.embed_documents([t for _, t in texts])
    return [
        StoredObject(str(uuid.uuid5(uuid.NAMESPACE_URL, doc)), ChunkRecord(
            text=text, title=doc, doc_id=doc, chunk_index=0, content_hash="h1",
            source_id="fixture", published_at=datetime(2026, 1, i + 1, tzinfo=UTC)), vectors[i].tolist())
        for i, (doc, text) in enumerate(texts)
    ]


def raw_reads(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The raw properties of every object the store reads back from now on (before they become records)."""
    seen: list[dict[str, Any]] = []
    to_record = weaviate_store.to_record

    def spy(properties: Any) -> ChunkRecord:
        seen.append(dict(properties))
        return to_record(properties)

    monkeypatch.setattr(weaviate_store, "to_record", spy)  # get()
    monkeypatch.setattr(weaviate_schema, "to_record", spy)  # the hits of every search
    return seen


def test_write_then_read_back_by_near_vector_and_hybrid(store: WeaviateStore, embedder) -> None:
    name = vector_name(embedder.model_id)
    store.ensure_collection([name])
    assert store.upsert(objects(embedder), name) == 4
    assert store.count() == 4
    question = "Which city will get a light rail line to the airport?"
    qv = embedder.embed_query(question)
    assert store.near_vector(qv, name, limit=2)[0].chunk.doc_id == "rail"
    hits = store.hybrid(question, qv, name, limit=2, alpha=0.5)
    assert hits[0].chunk.doc_id == "rail"
    assert hits[0].score >= hits[1].score


def test_second_write_with_uuid5_ids_is_a_no_op(store: WeaviateStore, embedder) -> None:
    name = vector_name(embedder.model_id)
    store.ensure_collection([name])
    store.upsert(objects(embedder), name)
    store.upsert(objects(embedder), name)
    assert store.count() == 4


def test_filters_and_deletes(store: WeaviateStore, embedder) -> None:
    name = vector_name(embedder.model_id)
    store.ensure_collection([name])
    store.upsert(objects(embedder), name)
    after = SearchFilters(published_after=datetime(2026, 1, 3, tzinfo=UTC))
    assert {h.chunk.doc_id for h in store.bm25("the", limit=10, filters=after)} <= {"chips", "vote"}
    assert store.count(after) == 2
    assert store.doc_versions(["rail", "missing"]) == {"rail": {"h1"}}
    assert store.delete_doc_except("rail", "h1") == 0
    assert store.delete_doc_except("rail", "h2") == 1
    assert store.count() == 3


def test_failed_objects_raise_one_error_listing_their_ids(store: WeaviateStore, embedder) -> None:
    name = vector_name(embedder.model_id)
    store.ensure_collection([name])
    good = objects(embedder)
    # model_copy does not validate: the wrongly typed field reaches Weaviate, which refuses it
    bad = [replace(o, chunk=o.chunk.model_copy(update={"chunk_index": "not-an-int"})) for o in good[:2]]
    with pytest.raises(BatchWriteError) as info:
        store.upsert(bad + good[2:], name)
    assert set(info.value.failures) == {bad[0].uuid, bad[1].uuid}
    assert store.count() == 2


def test_unreachable_weaviate_is_store_unavailable() -> None:
    s = WeaviateStore(WeaviateSettings(url="http://127.0.0.1:9", grpc_url="http://127.0.0.1:10", timeout=2))
    with pytest.raises(StoreUnavailable, match="127.0.0.1:9"):
        s.count()
    assert s.ping() is False


def test_conflicting_ports_are_a_config_error() -> None:
    s = WeaviateStore(WeaviateSettings(url="http://127.0.0.1:9", grpc_url="http://127.0.0.1:9"))
    with pytest.raises(ConfigError, match="WEAVIATE_URL"):
        s.count()


def test_the_bm25_context_is_searched_but_never_returned(store: WeaviateStore, embedder,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    name = vector_name(embedder.model_id)
    store.ensure_collection([name])
    assert store.bm25_params() == (1.2, 0.4)  # a new collection gets the shipped BM25 parameters
    objs = objects(embedder)
    objs[1] = replace(objs[1], context=objs[1].chunk.text + " The lighthouse keeper measured the surge.")
    store.upsert(objs, name)
    reads = raw_reads(monkeypatch)
    hits = store.bm25("lighthouse keeper", query_properties=["title^2", "text", "context"])
    assert [h.chunk.doc_id for h in hits] == ["storm"]  # found through its neighbours' words
    assert "context" not in reads[0] and hits[0].chunk.text.startswith("A tropical storm")
    assert store.bm25("lighthouse keeper", query_properties=["title", "text"]) == []
    qv = embedder.embed_query("lighthouse")
    reads.clear()
    assert len(store.hybrid("lighthouse", qv, name, limit=4)) == len(reads) == 4
    assert all("context" not in r for r in reads)
    reads.clear()
    assert store.get(objs[1].uuid) is not None and len(reads) == 1 and "context" not in reads[0]


def test_an_older_collection_gains_new_properties_and_bm25_parameters_can_change(store: WeaviateStore,
                                                                                  embedder) -> None:
    from weaviate.classes.config import Configure, DataType, Property

    name = vector_name(embedder.model_id)
    store.client.collections.create(store.name, properties=[Property(name="text", data_type=DataType.TEXT)],
                                    vector_config=[Configure.Vectors.self_provided(name=name)])
    store.ensure_collection([name])
    props = {p.name for p in store.client.collections.use(store.name).config.get().properties}
    assert {"context", "title", "doc_id", "published_at"} <= props
    assert store.bm25_params() == (1.2, 0.75)  # made elsewhere: it keeps its own (Weaviate's default)
    store.set_bm25(0.9, 0.4)
    assert store.bm25_params() == (0.9, 0.4)


def test_parallel_writers_may_race_to_create_the_collection(store: WeaviateStore, embedder,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Mapped ingest tasks start together on a first run: each sees no collection and creates it.
    The loser must carry on with the winner's collection, not fail its source."""
    name = vector_name(embedder.model_id)
    with WeaviateStore(Settings(), collection=store.name) as winner:
        winner.ensure_collection([name])
    calls: list[bool] = []
    real_exists = store.exists

    def stale_first(self: object = None) -> bool:  # the first check ran before the winner created it
        calls.append(True)
        return len(calls) > 1 and real_exists()

    monkeypatch.setattr(store, "exists", stale_first)
    store.ensure_collection([name])
    monkeypatch.undo()
    assert len(calls) == 2  # the stale check, then the re-check after the refused create
    assert store.exists() and store.upsert(objects(embedder)[:1], name) == 1


def test_parallel_writers_may_race_to_migrate_an_older_collection(store: WeaviateStore, embedder) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from weaviate.classes.config import Configure, DataType, Property

    name = vector_name(embedder.model_id)
    store.client.collections.create(store.name, properties=[Property(name="text", data_type=DataType.TEXT)],
                                    vector_config=[Configure.Vectors.self_provided(name=name)])

    def migrate(_: int) -> None:
        with WeaviateStore(Settings(), collection=store.name) as s:
            s.ensure_collection([name, "other_model"])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(migrate, range(4)))
    config = store.client.collections.use(store.name).config.get()
    assert {"context", "doc_id"} <= {p.name for p in config.properties}
    assert set(config.vector_config or {}) == {name, "other_model"}


def test_prose_is_searchable_but_not_filterable(store: WeaviateStore, embedder) -> None:
    store.ensure_collection([vector_name(embedder.model_id)])
    props = {p.name: p for p in store.client.collections.use(store.name).config.get().properties}
    assert all(props[n].index_searchable and not props[n].index_filterable for n in ("text", "context", "title"))
    assert props["doc_id"].index_filterable and props["source_id"].index_filterable


def test_a_collection_visible_before_its_index_is_loaded_is_waited_for(store: WeaviateStore, embedder,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Another mapped task created the collection a moment ago: Weaviate lists it but answers
    queries with "non-existing index" until its shard is loaded (seen in CI)."""
    from types import SimpleNamespace

    import weaviate.exceptions as wex

    name = vector_name(embedder.model_id)
    store.ensure_collection([name])
    real_col, calls = WeaviateStore._col, []

    def fetch_objects(**kwargs: object) -> object:
        calls.append(kwargs)
        if len(calls) < 3:
            raise wex.WeaviateQueryError(f"explorer: list class: search: tried to browse non-existing index for "
                                         f"{store.name}", "GRPC search")
        return real_col.fget(store).query.fetch_objects(**kwargs)

    loading = SimpleNamespace(query=SimpleNamespace(fetch_objects=fetch_objects),
                              config=real_col.fget(store).config)
    monkeypatch.setattr(WeaviateStore, "_col", property(lambda self: loading))
    store.ensure_collection([name])
    assert len(calls) == 3  # two refusals waited out, then the index answered

    def broken(**kwargs: object) -> object:
        raise wex.WeaviateQueryError("something else went wrong", "GRPC search")

    loading.query.fetch_objects = broken
    with pytest.raises(StoreError, match="something else"):  # other query errors are not waited for
        store.ensure_collection([name])


def test_weaviate_dying_mid_batch_is_retryable(store: WeaviateStore, embedder, monkeypatch) -> None:
    """The client raises WeaviateRetryError once its UNAVAILABLE retries are spent: that is an
    unreachable store (retried by the pipeline and Airflow), not a refusal (#11, defect 6)."""
    import weaviate.exceptions as wex

    name = vector_name(embedder.model_id)
    store.ensure_collection([name])

    def dies(self: WeaviateStore, data: list) -> dict:
        raise wex.WeaviateRetryError("StatusCode.UNAVAILABLE: Socket closed", 5)

    monkeypatch.setattr(WeaviateStore, "_insert_many", dies)
    with pytest.raises(StoreUnavailable) as info:
        store.upsert(objects(embedder), name)
    assert info.value.retryable and "Weaviate unavailable" in str(info.value)


def test_a_collection_older_than_a_new_property_still_answers(store: WeaviateStore, embedder,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A collection written before a property joined the schema (published_offset) answers queries
    before the next ingestion adds the property, instead of failing every search."""
    from weaviate.classes.config import Configure

    name = vector_name(embedder.model_id)
    old_schema = [p for p in chunk_schema() if p.name != "published_offset"]
    store.client.collections.create(store.name, properties=old_schema,
                                    vector_config=[Configure.Vectors.self_provided(name=name)])
    newer = weaviate_store.to_properties  # the objects as an older newsrag wrote them: without the property
    monkeypatch.setattr(weaviate_store, "to_properties",
                        lambda obj: {k: v for k, v in newer(obj).items() if k != "published_offset"})
    store.upsert(objects(embedder), name)
    monkeypatch.setattr(weaviate_store, "to_properties", newer)
    reads = raw_reads(monkeypatch)
    hits = store.bm25("rail")
    assert hits and "published_offset" not in reads[0] and hits[0].chunk.published_offset is None
    store.ensure_collection([name])  # an ingestion adds the property; queries then return it
    reads.clear()
    assert store.bm25("rail") and "published_offset" in reads[0]
