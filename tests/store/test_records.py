"""The typed chunk record, its one mapping to Weaviate properties, and the protocol the store keeps."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from newsrag.core.records import ChunkRecord, Hit, StoredObject
from newsrag.core.settings import WeaviateSettings
from newsrag.store.protocol import ChunkSearch, ChunkStore
from newsrag.store.weaviate import WeaviateStore
from newsrag.store.weaviate_schema import (
    chunk_schema,
    returned_properties,
    to_properties,
    to_record,
)

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
LIBRARY = ("ingest", "embeddings", "retrieval", "evaluation", "prompts", "app", "newsrag")
RECORD = ChunkRecord(text="The council approved the line.", title="Harbor Line", url="https://metro.test/a",
                     source_id="metro", doc_id="d1", content_hash="h1", author="Desk", language="en",
                     tags=("transit", "city"), also_sources=("wire",), published_at=datetime(2026, 9, 9, 2, 15, tzinfo=UTC),
                     published_offset=-240, ingested_at=datetime(2026, 9, 9, 3, tzinfo=UTC), chunk_index=2,
                     token_count=7)


def test_the_schema_holds_every_record_field_and_the_bm25_context() -> None:
    assert {p.name for p in chunk_schema()} == set(ChunkRecord.model_fields) | {"context"}
    assert set(returned_properties()) == set(ChunkRecord.model_fields)  # the context is never read back


def test_a_record_survives_its_way_through_weaviate_properties() -> None:
    props = to_properties(StoredObject("id", RECORD, [0.1], context="harbor line council"))
    assert props["tags"] == ["transit", "city"] and props["also_sources"] == ["wire"]  # arrays are lists
    assert props["context"] == "harbor line council" and props["chunk_index"] == 2
    assert to_record(props) == RECORD


def test_properties_a_collection_lacks_or_holds_null_read_as_defaults() -> None:
    record = to_record({"text": "t", "doc_id": "d", "author": None, "published_offset": None,
                        "context": "never a field", "made_by_another_tool": 1})
    assert record == ChunkRecord(text="t", doc_id="d")
    assert (record.author, record.published_offset, record.chunk_index, record.tags) == ("", None, 0, ())


def test_records_are_frozen_typed_and_refuse_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        ChunkRecord(doc_id="d", properties={"x": 1})  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        RECORD.title = "changed"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        ChunkRecord(chunk_index="first")  # type: ignore[arg-type]


def test_dates_without_a_zone_are_utc_and_strings_are_parsed() -> None:
    record = ChunkRecord(published_at=datetime(2026, 1, 2, 3), ingested_at="2026-01-02T03:00:00Z")  # type: ignore[arg-type]
    assert record.published_at == record.ingested_at == datetime(2026, 1, 2, 3, tzinfo=UTC)


def test_the_first_chunk_is_the_versions_marker_and_a_hit_knows_its_document() -> None:
    assert ChunkRecord(chunk_index=0).is_marker and not RECORD.is_marker
    assert Hit("u1", 0.5, RECORD).doc_id == "d1" and Hit("u2", 0.5, ChunkRecord()).doc_id == "u2"


def test_the_weaviate_store_is_a_chunk_store_without_connecting() -> None:
    store = WeaviateStore(WeaviateSettings(url="http://weaviate.internal:8080"))  # never connected
    assert isinstance(store, ChunkStore) and isinstance(store, ChunkSearch) and store.remote
    assert not WeaviateStore(WeaviateSettings()).remote  # the local server shares our cores


def test_only_the_weaviate_store_reads_properties_by_name() -> None:
    """Everything else reads a ChunkRecord's attributes (a property read outside the store was how
    a chunk's fields drifted over ~30 places)."""
    read = re.compile(r"\bproperties(\.get\(|\[)|\.properties\b")
    found = [f"{path.relative_to(REPO)}:{n}" for folder in LIBRARY for path in sorted((REPO / folder).rglob("*.py"))
             if path.relative_to(REPO).as_posix() not in ("newsrag/store/weaviate.py", "newsrag/store/weaviate_schema.py")
             for n, line in enumerate(path.read_text().splitlines(), start=1) if read.search(line)]
    assert found == []
