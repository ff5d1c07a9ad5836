"""Framework-free types shared by the store, search and the app.

A chunk travels as one :class:`ChunkRecord`: the pipeline builds it, the store writes it (wrapped in a
:class:`StoredObject` with its id and vector) and reads it back inside each :class:`Hit`, and context
blocks and citations take their fields from it. Only ``newsrag.store.weaviate`` knows how a record
is spelled as Weaviate properties; everything else reads typed attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, field_validator


class ChunkRecord(BaseModel):
    """One stored chunk of one version of an article.

    A document version is ``(doc_id, content_hash)``; its chunks are numbered from 0 by
    ``chunk_index``, and chunk 0 is the version's commit marker (see ``newsrag.store.protocol``).
    Fields a store did not hold (an older collection, a record written by another tool) read as
    their defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = ""
    title: str = ""
    url: str = ""
    source_id: str = ""
    doc_id: str = ""
    content_hash: str = ""
    author: str = ""
    language: str = ""
    tags: tuple[str, ...] = ()
    also_sources: tuple[str, ...] = ()  # other sources that carried a near-duplicate of this document
    published_at: datetime | None = None  # UTC; what filters and retention compare
    published_offset: int | None = None  # minutes east of UTC the publisher wrote its date in: shown only
    ingested_at: datetime | None = None
    chunk_index: int = 0
    token_count: int = 0

    @field_validator("published_at", "ingested_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        """A date without a zone is UTC (as stored dates are), so dates always compare."""
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    @property
    def is_marker(self) -> bool:
        """Whether this chunk marks its document version as stored (its first chunk)."""
        return self.chunk_index == 0


@dataclass(frozen=True)
class StoredObject:
    """One chunk as the store writes it: deterministic uuid, its record and one vector.

    ``context`` is the text BM25 searches besides the chunk (the analysed title, chunk and
    neighbours, see ``newsrag.store.analysis``): written, searched, never read back."""

    uuid: str
    chunk: ChunkRecord
    vector: list[float]
    context: str = ""


@dataclass(frozen=True)
class SearchFilters:
    """What a search may return. ``published_after`` is inclusive, ``published_before`` exclusive
    (undated chunks pass neither). ``as_of`` keeps what a reader could have seen at that instant:
    chunks ingested at or before it (a chunk with no ``ingested_at`` is not known to be) and
    published at or before it; an undated chunk counts as published when it was ingested."""

    source_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    published_after: datetime | None = None
    published_before: datetime | None = None
    doc_ids: tuple[str, ...] = ()
    as_of: datetime | None = None

    def is_empty(self) -> bool:
        return not (self.source_ids or self.tags or self.published_after or self.published_before
                    or self.doc_ids or self.as_of)


@dataclass(frozen=True)
class Hit:
    """One search result: the stored chunk, its id and its score."""

    uuid: str
    score: float
    chunk: ChunkRecord
    explain: str | None = None
    vector: list[float] | None = field(default=None, compare=False)

    @property
    def doc_id(self) -> str:
        """The article this chunk belongs to (the chunk itself when it carries no doc_id)."""
        return self.chunk.doc_id or self.uuid
