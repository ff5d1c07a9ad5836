"""Framework-free types shared by the store, search and the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class StoredObject:
    """One chunk as the store writes it: deterministic uuid, properties and one vector."""

    uuid: str
    properties: dict[str, Any]
    vector: list[float]


@dataclass(frozen=True)
class SearchFilters:
    source_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    published_after: datetime | None = None
    published_before: datetime | None = None
    doc_ids: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return not (self.source_ids or self.tags or self.published_after or self.published_before
                    or self.doc_ids)


@dataclass(frozen=True)
class Hit:
    uuid: str
    score: float
    properties: dict[str, Any]
    explain: str | None = None
    vector: list[float] | None = field(default=None, compare=False)

    @property
    def doc_id(self) -> str:
        """The article this chunk belongs to (the chunk itself when it carries no doc_id)."""
        return str(self.properties.get("doc_id") or self.uuid)
