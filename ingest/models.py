"""The contracts ingestion passes around: Article, Chunk, ItemFailure and IngestReport."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from datetime import datetime
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

# Fixed namespace: the same (doc_id, chunk_index, content_hash) gives the same object id forever.
CHUNK_NAMESPACE = uuid.UUID("4b0e8a52-6a8e-4e7c-9d0c-2f6f5d0b7a31")


def normalize_text(text: str) -> str:
    """NFC, unified whitespace, trimmed: the form content hashes and near-dup signatures use."""
    text = unicodedata.normalize("NFC", text)
    return re.sub(r"\s+", " ", text).strip()


def content_hash(text: str) -> str:
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()[:32]


@lru_cache(maxsize=4096)
def _article_hash(title: str, text: str) -> str:
    """Keyed by the strings themselves (not cached on the model: a model_copy with a new text
    would keep a stale hash); every chunk of an article asks, and normalising is the cost."""
    return content_hash(f"{title}\n{text}")


def doc_id_for(key: str) -> str:
    """Stable document id from a canonical URL (or another stable key such as a dump's id)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


def chunk_uuid(doc_id: str, chunk_index: int, hash_: str) -> str:
    return str(uuid.uuid5(CHUNK_NAMESPACE, f"{doc_id}:{chunk_index}:{hash_}"))


class Article(BaseModel):
    """One normalized news article. ``published_at`` is UTC, or None when unknown (never "now")."""

    model_config = ConfigDict(frozen=True)

    source_id: str
    url: str  # canonical: tracking parameters stripped, fragment dropped
    title: str
    text: str
    published_at: datetime | None = None
    published_offset: int | None = None  # minutes east of UTC the source wrote its date in, to show its day
    author: str | None = None
    language: str | None = None
    tags: tuple[str, ...] = ()
    key: str | None = None  # stable identity when the URL is not one (jsonl ids, folder paths)

    @property
    def doc_id(self) -> str:
        return doc_id_for(self.key or self.url)

    @property
    def content_hash(self) -> str:
        return _article_hash(self.title, self.text)


class Chunk(BaseModel):
    model_config = ConfigDict(frozen=True)

    doc_id: str
    chunk_index: int
    text: str
    token_count: int
    content_hash: str  # the article's hash: a changed article gets all-new chunk ids
    # The chunk with its neighbours, analysed for BM25 (newsrag.store.analysis) and indexed for BM25
    # only: keyword evidence is spread over an article, and a passage alone loses it (README,
    # "Retrieval quality").
    context: str = ""

    @property
    def uuid(self) -> str:
        return chunk_uuid(self.doc_id, self.chunk_index, self.content_hash)


ITEM_LABEL_CHARS = 500  # a hostile item can be named by a 5 MB link: reports stay small
REASON_CHARS = 1000
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def bounded_text(value: str, limit: int) -> str:
    """At most ``limit`` characters, lone surrogates replaced: safe to log, encode and store."""
    value = _SURROGATES.sub("\ufffd", value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


class ItemFailure(BaseModel):
    """A failed item, or (in ``IngestReport.warnings``) an item stored with a field cut."""

    item: str  # link, guid, line number or path: whatever names the item in its source
    reason: str

    @field_validator("item", "reason")
    @classmethod
    def _bounded(cls, value: str, info: ValidationInfo) -> str:
        """Short and valid UTF-8 whatever the item held: reports are logged and travel as JSON."""
        return bounded_text(value, ITEM_LABEL_CHARS if info.field_name == "item" else REASON_CHARS)


class IngestReport(BaseModel):
    """What one source run did; small and JSON-serializable (it travels through XCom)."""

    source_id: str
    status: str = "ok"  # ok | partial (some items failed) | failed (the source failed) | not_modified
    error: str | None = None
    items_seen: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    duplicates: int = 0  # near-duplicates of an article already stored from another source
    skipped: int = 0  # too old for max_age_days, or empty after cleaning
    failed: list[ItemFailure] = Field(default_factory=list)
    warnings: list[ItemFailure] = Field(default_factory=list)  # stored, but a field was cut (newsrag.ingest.limits)
    chunks_embedded: int = 0
    chunks_cached: int = 0
    chunks_written: int = 0
    chunks_deleted: int = 0
    seconds: float = 0.0
