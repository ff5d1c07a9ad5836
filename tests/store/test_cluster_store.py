"""The store's replication settings against the session's single real Weaviate node: a new
collection gets the configured factor, an existing one with another factor is refused, and every
write and read goes at the configured consistency level. The 3-node cluster itself:
tests/e2e/test_weaviate_cluster.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from weaviate.classes.config import ConsistencyLevel

from newsrag.core.errors import StoreError
from newsrag.core.records import ChunkRecord, StoredObject
from newsrag.core.settings import Settings, WeaviateSettings, load
from newsrag.store.weaviate import WeaviateStore

pytestmark = pytest.mark.integration


def configured(collection: str, **variables: str) -> WeaviateStore:
    """A store on the session's server (the root of the test's environment) with these WEAVIATE_* variables."""
    return WeaviateStore(Settings().replace(load(WeaviateSettings, variables)), collection=collection)


@pytest.fixture
def other(store: WeaviateStore) -> Iterator[list[WeaviateStore]]:
    """Stores the test opens on the fixture's collection, closed after it."""
    opened: list[WeaviateStore] = []
    yield opened
    for s in opened:
        s.close()


def one_object() -> StoredObject:
    record = ChunkRecord(text="A ferry line opened.", title="ferry", doc_id="ferry", chunk_index=0,
                         content_hash="h1", source_id="fixture", published_at=datetime(2026, 1, 2, tzinfo=UTC))
    return StoredObject(str(uuid.uuid5(uuid.NAMESPACE_URL, "ferry")), record, [0.1, 0.2, 0.3])


def test_an_existing_collection_with_another_replication_factor_is_refused(
        store: WeaviateStore, other: list[WeaviateStore]) -> None:
    store.ensure_collection(["v"])  # the defaults: the server's factor, 1
    asked = configured(store.name, WEAVIATE_REPLICATION_FACTOR="3")
    other.append(asked)
    with pytest.raises(StoreError) as info:
        asked.ensure_collection(["v"])
    message = str(info.value)
    assert "WEAVIATE_REPLICATION_FACTOR is 3" in message and "keeps 1 copies" in message
    same = configured(store.name, WEAVIATE_REPLICATION_FACTOR="1")
    other.append(same)
    same.ensure_collection(["v"])  # the factor it has: accepted
    assert same.exists()


def test_a_new_collection_is_created_with_the_configured_factor(collection_name: str,
                                                                 other: list[WeaviateStore]) -> None:
    """One node cannot hold two copies: the server refuses the factor the store asked for (a store
    that did not send it would create the collection with one copy)."""
    asked = configured(collection_name, WEAVIATE_REPLICATION_FACTOR="2")
    other.append(asked)
    with pytest.raises(StoreError, match="(?i)replica|node"):
        asked.ensure_collection(["v"])
    assert not asked.exists()


@pytest.mark.parametrize("level", ["ONE", "ALL"])
def test_writes_and_reads_go_at_the_configured_consistency_level(store: WeaviateStore, level: str,
                                                                  other: list[WeaviateStore]) -> None:
    store.ensure_collection(["v"])
    at_level = configured(store.name, WEAVIATE_CONSISTENCY_LEVEL=level)
    other.append(at_level)
    assert at_level._col.consistency_level == ConsistencyLevel(level)
    obj = one_object()
    assert at_level.upsert([obj], "v") == 1
    assert at_level.get(obj.uuid) == obj.chunk and at_level.count() == 1


def test_the_default_consistency_is_quorum_weaviates_own(store: WeaviateStore) -> None:
    assert store._col.consistency_level == ConsistencyLevel.QUORUM
