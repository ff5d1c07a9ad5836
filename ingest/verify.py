"""``newsrag ingest verify``: each source's documents as its state remembers them, against the store.

The state (``newsrag.ingest.state``) remembers every document a source's reads put or found in the store.
Verifying asks the store which of them it still holds (by their first chunk: the commit marker
``ChunkStore.doc_versions`` reads, see :mod:`newsrag.store.protocol`). A repair reads each source
with missing documents in full: what the source still has is written again, and what it no longer
has cannot come back, so the state forgets it (after a clean read only: a failed item may be one
of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsrag.core.records import SearchFilters
from newsrag.core.settings import Settings
from newsrag.ingest.context import IngestContext
from newsrag.ingest.models import IngestReport
from newsrag.ingest.pipeline import run_source
from newsrag.ingest.registry import load_registry


@dataclass
class SourceCheck:
    source_id: str
    remembered: int  # documents the source's reads put or found in the store
    missing: dict[str, str]  # doc id -> URL: remembered, but the store does not hold them
    chunks: int  # objects stored under the source id
    read: bool  # a clean full read is on record for the generation checked
    repair: IngestReport | None = None  # the full re-read of a repair
    restored: int = 0  # missing documents the repair wrote again
    lost: dict[str, str] = field(default_factory=dict)  # missing ones the source no longer has: forgotten

    @property
    def stored(self) -> int:
        return self.remembered - len(self.missing)


@dataclass
class Verification:
    collection: str
    generation: str | None  # the collection's now; None: the collection is missing
    state_generation: str | None  # the one the state describes; None: no state for this collection
    sources: list[SourceCheck]

    @property
    def missing(self) -> int:
        return sum(len(s.missing) for s in self.sources)

    @property
    def recreated(self) -> bool:
        """The state describes another generation: the collection was dropped or re-created."""
        return self.state_generation is not None and self.state_generation != self.generation

    @property
    def failed(self) -> list[str]:
        return [s.source_id for s in self.sources if s.repair is not None and s.repair.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "generation": self.generation,
                "state_generation": self.state_generation, "recreated": self.recreated, "missing": self.missing,
                "sources": [_source_dict(s) for s in self.sources]}


def verify_registry(path: str | Path, only: str | None = None, repair: bool = False,
                    settings: Settings | None = None) -> Verification:
    """Check (and with ``repair``, repair) every enabled source of a registry file; ``settings``:
    the root (the command's; None: the defaults)."""
    registry = load_registry(path)
    specs = registry.enabled(only)
    with IngestContext(settings, base_dir=Path(registry.base_dir)) as ctx:
        checked = verify_sources(specs, ctx)
        return repair_sources(specs, ctx, checked) if repair else checked


def verify_sources(specs: list[Any], ctx: IngestContext) -> Verification:
    """Compare each source's remembered documents with the store. Reads only: a missing collection
    is not created, and the state of an earlier generation is checked, not forgotten."""
    generation = ctx.store.generation()
    known = ctx.state.generations()
    described = generation if generation in known else (known[0] if known else None)
    ctx.state.bind(described or "")
    checks = [_check(spec.id, ctx, generation is not None) for spec in specs]
    return Verification(ctx.store.name, generation, described, checks)


def _check(source_id: str, ctx: IngestContext, collection_exists: bool) -> SourceCheck:
    docs = ctx.state.docs(source_id)
    present = ctx.store.doc_versions(sorted(docs)) if docs and collection_exists else {}
    chunks = ctx.store.count(SearchFilters(source_ids=(source_id,))) if collection_exists else 0
    return SourceCheck(source_id, remembered=len(docs), missing={d: u for d, u in docs.items() if d not in present},
                       chunks=chunks, read=ctx.state.chunks_stored(source_id) is not None)


def repair_sources(specs: list[Any], ctx: IngestContext, before: Verification) -> Verification:
    """Read each source with missing documents in full, then check again. Documents a clean read
    did not bring back are no longer in the source: the state forgets them (``lost``)."""
    wanted = {s.source_id: s.missing for s in before.sources if s.missing}
    reports = {spec.id: run_source(spec, ctx, full=True) for spec in specs if spec.id in wanted}
    after = verify_sources(specs, ctx)
    for check in after.sources:
        if check.source_id not in reports:
            continue
        check.repair = reports[check.source_id]
        missing = wanted[check.source_id]
        present = ctx.store.doc_versions(sorted(missing)) if after.generation else {}
        check.restored = sum(1 for d in missing if d in present)
        if check.repair.status == "ok":
            check.lost = {d: u for d, u in missing.items() if d not in present} | check.missing
            ctx.state.forget_docs(check.source_id, check.lost)
            check.remembered -= len(check.missing)
            check.missing = {}
    return after


def _source_dict(check: SourceCheck) -> dict[str, Any]:
    out: dict[str, Any] = {
        "source_id": check.source_id, "read": check.read, "remembered": check.remembered, "stored": check.stored,
        "missing": len(check.missing), "missing_docs": check.missing, "chunks": check.chunks}
    if check.repair is not None:
        out.update(repair_status=check.repair.status, repair_error=check.repair.error, restored=check.restored,
                   lost=len(check.lost), lost_docs=check.lost)
    return out
