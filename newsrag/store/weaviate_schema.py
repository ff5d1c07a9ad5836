"""How a :class:`ChunkRecord` is spelled in Weaviate: the collection's properties, the one mapping
of a record to properties and back, and search filters. The only place a property is named."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from weaviate.classes.config import DataType, Property, Tokenization
from weaviate.classes.query import Filter

from newsrag.core.records import ChunkRecord, Hit, SearchFilters, StoredObject


def _text(name: str, tokenization: Tokenization = Tokenization.WORD, **kw: Any) -> Property:
    return Property(name=name, data_type=DataType.TEXT, tokenization=tokenization, **kw)


def chunk_schema() -> list[Property]:
    """The collection's properties: one per :class:`ChunkRecord` field, and the BM25 ``context``."""
    field = Tokenization.FIELD
    # Prose is searched (BM25), never filtered on: no filterable index, which cost Weaviate about a
    # quarter of its insert CPU (measured on RealTimeQA chunks) for nothing.
    return [
        _text("text", index_filterable=False),
        _text("context", index_filterable=False),  # the chunk and its neighbours, for BM25 only: never returned
        _text("title", index_filterable=False),
        _text("url", field, index_searchable=False),
        _text("source_id", field, index_searchable=False),
        _text("doc_id", field, index_searchable=False),
        _text("content_hash", field, index_searchable=False),
        _text("author", index_searchable=False),
        _text("language", field, index_searchable=False),
        Property(name="tags", data_type=DataType.TEXT_ARRAY, tokenization=field, index_searchable=False),
        Property(name="also_sources", data_type=DataType.TEXT_ARRAY, tokenization=field,
                 index_searchable=False),
        Property(name="published_at", data_type=DataType.DATE),
        # minutes east of UTC the publisher wrote its date in: shown, never filtered (UTC is)
        Property(name="published_offset", data_type=DataType.INT, index_filterable=False,
                 index_range_filters=False),
        Property(name="ingested_at", data_type=DataType.DATE),
        Property(name="chunk_index", data_type=DataType.INT),
        Property(name="token_count", data_type=DataType.INT),
    ]


def returned_properties() -> list[str]:
    return [p.name for p in chunk_schema() if p.name != "context"]


_RECORD_FIELDS = frozenset(ChunkRecord.model_fields)


def to_properties(obj: StoredObject) -> dict[str, Any]:
    """A stored object's record as the collection's properties (arrays as lists), with its context."""
    chunk = obj.chunk
    return {**dict(chunk), "tags": list(chunk.tags), "also_sources": list(chunk.also_sources),
            "context": obj.context}


def to_record(properties: Mapping[str, Any]) -> ChunkRecord:
    """Properties read back as a record. A property the collection lacks or holds null for reads
    as the field's default; properties that are no record field (``context``) are left out."""
    return ChunkRecord(**{k: v for k, v in properties.items() if k in _RECORD_FIELDS and v is not None})


def to_hit(obj: Any, score: float | None) -> Hit:
    return Hit(uuid=str(obj.uuid), score=float(score or 0.0), chunk=to_record(obj.properties),
               explain=getattr(obj.metadata, "explain_score", None))


def to_filter(filters: SearchFilters | None) -> Any:
    if filters is None or filters.is_empty():
        return None
    parts = []
    if filters.source_ids:
        parts.append(Filter.by_property("source_id").contains_any(list(filters.source_ids)))
    if filters.tags:
        parts.append(Filter.by_property("tags").contains_any(list(filters.tags)))
    if filters.doc_ids:
        parts.append(Filter.by_property("doc_id").contains_any(list(filters.doc_ids)))
    if filters.published_after:
        parts.append(Filter.by_property("published_at").greater_or_equal(filters.published_after))
    if filters.published_before:
        parts.append(Filter.by_property("published_at").less_than(filters.published_before))
    if filters.as_of:
        parts.append(_visible_as_of(filters.as_of))
    return Filter.all_of(parts) if len(parts) > 1 else parts[0]


def _visible_as_of(as_of: datetime) -> Any:
    """Ingested by ``as_of`` and published by it; undated chunks count as published when ingested
    (the ingested_at bound already holds them), so they need the collection's null-state index."""
    ingested = Filter.by_property("ingested_at").less_or_equal(as_of)
    published = Filter.by_property("published_at").less_or_equal(as_of)
    return ingested & (published | Filter.by_property("published_at").is_none(True))
