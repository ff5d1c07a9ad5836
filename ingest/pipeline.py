"""``run_source(spec) -> IngestReport``: one source from fetch to Weaviate, incrementally.

Sync semantics (docs/architecture.md): new articles are embedded and inserted; a changed article
(same doc id, new content hash) gets its new chunks written *before* its old ones are deleted, so a
crash leaves extra old chunks, never missing ones, and the next run removes them; unchanged articles
cost nothing. Re-running or retrying converges to the store one clean run would leave.

Local state only makes unchanged sources cheap, and the store stays the truth (``newsrag.ingest.state``):
validators and "seen" marks are trusted by a normal run only, for the collection generation they
were written in, and only while the store still holds something of a source that had something.
A full run (``full=True``) and a windowed run (a backfill) read every source whatever its marks say.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from newsrag.core.errors import BatchWriteError, NewsragError, SourceError
from newsrag.core.records import ChunkRecord, SearchFilters, StoredObject
from newsrag.core.settings import Settings
from newsrag.embeddings.cache import embed_cached
from newsrag.ingest.chunking import embedding_text
from newsrag.ingest.context import IngestContext
from newsrag.ingest.dedup import NearDuplicateClaims, signature
from newsrag.ingest.limits import FieldLimits, bound_articles, cap_chunks
from newsrag.ingest.models import Article, Chunk, IngestReport, ItemFailure
from newsrag.ingest.registry import parse_source
from newsrag.ingest.sources import get_source
from newsrag.ingest.state import StoredDoc
from newsrag.store.analysis import bm25_terms

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """What to do with each collected article after comparing it with the store."""

    claims: NearDuplicateClaims  # this run's near-duplicate claims (newsrag.ingest.dedup)
    write: list[Article] = field(default_factory=list)  # new or changed
    changed: set[str] = field(default_factory=set)  # doc ids whose old versions go after the write
    repair: list[tuple[str, str]] = field(default_factory=list)  # (doc_id, hash) with stale extra versions
    unchanged: list[Article] = field(default_factory=list)  # already stored as they are
    signatures: dict[str, Any] = field(default_factory=dict)  # MinHash per doc id claimed, computed once


@dataclass
class Prepared:
    """One write group, chunked and embedded, ready to upsert."""

    group: list[Article]
    chunks: list[tuple[Article, Chunk]]
    objects: list[StoredObject]


def run_source(spec: Any, ctx: IngestContext | None = None, *, raise_retryable: bool = False,
               full: bool = False, settings: Settings | None = None) -> IngestReport:
    """Ingest one source. Source failures are reported, not raised, unless retryable and
    ``raise_retryable`` is set (so an orchestrator can retry with backoff). ``full`` reads the
    source whatever its validators and "seen" marks say (and remembers fresh ones). Without a
    ``ctx``, one is opened from ``settings`` (the root; None: the defaults) and closed after."""
    spec = parse_source(spec, "source") if isinstance(spec, dict) else spec
    own = ctx is None
    ctx = ctx or IngestContext(settings)
    started = time.monotonic()
    report = IngestReport(source_id=spec.id)
    try:
        _run(spec, ctx, report, full)
    except NewsragError as exc:
        if raise_retryable and exc.retryable:
            raise
        report.status, report.error = "failed", str(exc)
    except Exception as exc:  # a bug in one source must not take the others down; it is logged and reported
        log.exception("source %s failed unexpectedly", spec.id)
        report.status, report.error = "failed", f"internal error: {type(exc).__name__}: {exc}"
    finally:
        report.seconds = round(time.monotonic() - started, 3)
        if own:
            ctx.close()
    return report


def run_batch(specs: list[Any], *, raise_retryable: bool = False,
              window: tuple[str | None, str | None] | None = None, full: bool = False,
              settings: Settings | None = None) -> list[dict[str, Any]]:
    """Run several sources with one shared context; one source's failure never stops the others.
    Specs planned by :func:`newsrag.ingest.summary.plan_batches` carry their registry folder as ``_base_dir``.
    ``window`` (ISO start, end) limits the run to articles published in [start, end): a backfill,
    which reads each source in full and keeps the validators a normal run saved. ``full`` reads every
    source whatever its validators say. ``settings``: the root (an Airflow task's ``task_settings()``;
    None: the defaults)."""
    from pathlib import Path

    base = next((s["_base_dir"] for s in specs if isinstance(s, dict) and s.get("_base_dir")), None)
    specs = [{k: v for k, v in s.items() if k != "_base_dir"} if isinstance(s, dict) else s for s in specs]
    with IngestContext(settings, base_dir=Path(base) if base else None) as ctx:
        ctx.window = parse_window(window)
        return [run_source(s, ctx, raise_retryable=raise_retryable, full=full).model_dump(mode="json")
                for s in specs]


def parse_window(window: tuple[str | None, str | None] | None) -> tuple[datetime | None, datetime | None] | None:
    if not window or not any(window):
        return None
    start, end = (datetime.fromisoformat(w).astimezone(UTC) if w else None for w in window)
    if start and end and start >= end:
        raise ValueError(f"backfill window start {start} is not before its end {end}")
    return start, end


def _run(spec: Any, ctx: IngestContext, report: IngestReport, full: bool) -> None:
    ctx.begin_source()
    trusted = _trust_markers(spec, ctx, full)
    collected = get_source(spec.type).collect(spec, ctx.source_context(trust_markers=trusted))
    if collected.not_modified:
        report.status = "not_modified"
        _retention(spec, ctx, report)
        return
    report.items_seen = len(collected.articles) + len(collected.failures)
    report.failed.extend(collected.failures)
    limits = ctx.limits  # one place for every source type, before anything compares or stores
    bounded = bound_articles(collected.articles, limits, spec.id)
    report.failed.extend(bounded.failures)
    report.warnings.extend(bounded.warnings)
    articles = _fresh(spec, bounded.articles, report, ctx.window)
    ctx.ensure_schema()
    plan = _plan_and_write(spec, articles, ctx, report, limits)
    for doc_id, hash_ in plan.repair:
        report.chunks_deleted += ctx.store.delete_doc_except(doc_id, hash_)
    windowed = ctx.window is not None  # a backfill sees part of the source: no snapshot deletes, no validators
    if collected.complete and not windowed and spec.type in ("jsonl", "folder") and getattr(spec, "snapshot", False):
        _snapshot_deletes(spec, articles, ctx, report)
    _retention(spec, ctx, report)
    report.status = "partial" if report.failed else "ok"
    if not report.failed and not windowed:
        collected.commit()
        ctx.state.record_read(spec.id, ctx.store.count(SearchFilters(source_ids=(spec.id,))))


def _plan_and_write(spec: Any, articles: list[Article], ctx: IngestContext, report: IngestReport,
                    limits: FieldLimits) -> Plan:
    """Plan and write; whatever happens, the near-duplicate claims of articles that were not
    written are released, so their copies are not kept out by a story nobody is writing."""
    claims = _claims(ctx)
    try:
        plan = _plan(articles, ctx, report, claims)
        ctx.state.remember_docs(spec.id, map(_stored_doc, plan.unchanged), written=False)
        _write_groups(spec, plan, ctx, report, limits)
        return plan
    finally:
        claims.release()


def _claims(ctx: IngestContext) -> NearDuplicateClaims:
    """Claims on the context's state; the store says whether a document it names is still there."""
    return NearDuplicateClaims(ctx.state, ctx.settings.near_dup_threshold,
                               present=lambda doc_id: bool(ctx.store.doc_versions([doc_id])))


def _trust_markers(spec: Any, ctx: IngestContext, full: bool) -> bool:
    """Whether this read may send validators and trust "seen" marks: not in a full or windowed run,
    and not when a source that had chunks after its last full read has none left in the store
    (deleted behind the pipeline's back: one aggregate query, only for sources that had chunks)."""
    if full or ctx.window is not None:
        return False
    had = ctx.state.chunks_stored(spec.id)
    if not had:
        return True
    if ctx.store.count(SearchFilters(source_ids=(spec.id,))) > 0:
        return True
    log.warning("source %s had %d chunk(s) stored and has none now: reading it in full", spec.id, had)
    return False


def _stored_doc(article: Article) -> StoredDoc:
    return StoredDoc(article.doc_id, article.url or article.key or article.doc_id, article.published_at)


def _fresh(spec: Any, articles: list[Article], report: IngestReport,
           window: tuple[datetime | None, datetime | None] | None = None) -> list[Article]:
    """Drop articles past the retention age or outside a backfill window (undated ones too), and
    repeated doc ids within one run."""
    cutoff = _cutoff(spec)
    seen: set[str] = set()
    out = []
    for a in articles:
        if (cutoff and a.published_at and a.published_at < cutoff) or not _in_window(a, window):
            report.skipped += 1
        elif a.doc_id in seen:
            report.failed.append(ItemFailure(item=a.url or a.key or a.doc_id, reason="duplicate item in source"))
        else:
            seen.add(a.doc_id)
            out.append(a)
    return out


def _in_window(article: Article, window: tuple[datetime | None, datetime | None] | None) -> bool:
    if window is None:
        return True
    start, end = window
    when = article.published_at
    return when is not None and (start is None or when >= start) and (end is None or when < end)


def _plan(articles: list[Article], ctx: IngestContext, report: IngestReport,
          claims: NearDuplicateClaims | None = None) -> Plan:
    stored = ctx.store.doc_versions([a.doc_id for a in articles])
    plan = Plan(claims or _claims(ctx))
    recorded = _recorded(articles, stored, ctx)
    for a in articles:
        hashes = stored.get(a.doc_id, set())
        if a.content_hash in hashes and a.doc_id not in recorded and _is_near_duplicate(a, plan, ctx, report):
            continue  # a failed try's copy of a story another source holds now: deleted
        if a.content_hash in hashes:
            report.unchanged += 1
            plan.unchanged.append(a)
            if len(hashes) > 1:
                plan.repair.append((a.doc_id, a.content_hash))
        elif hashes:
            report.changed += 1
            plan.changed.add(a.doc_id)
            plan.write.append(a)
        elif not _is_near_duplicate(a, plan, ctx, report):
            report.new += 1
            plan.write.append(a)
    # stored and never recorded, holding their stories: recorded now, without writing them again
    if held := [a for a in plan.unchanged if a.doc_id in plan.signatures]:
        _remember(held, plan, ctx)
    return plan


def _recorded(articles: list[Article], stored: dict[str, set[str]], ctx: IngestContext) -> set[str]:
    """The stored articles whose stories the shared state records as held. One stored and not
    recorded was written by a try that failed before it could record it (its state database went
    away): it is claimed again, as a new article would be, and is a copy if another source took
    the story meanwhile."""
    sources = {a.source_id for a in articles if a.doc_id in stored}
    return set().union(*(ctx.state.stored_signatures(s) for s in sources)) if sources else set()


def _is_near_duplicate(article: Article, plan: Plan, ctx: IngestContext, report: IngestReport) -> bool:
    """Claim the article's story in the shared state (:mod:`newsrag.ingest.dedup`): a copy of a
    story another document holds (stored, or being written by any worker) is not stored; its
    source is named in the original's ``also_sources`` (now, or by the original's writer)."""
    sig = signature(article.text)
    if sig is None:
        return False
    original = plan.claims.claim(article.doc_id, article.source_id, article.url, sig)
    if original is None:
        plan.signatures[article.doc_id] = sig
        return False
    report.duplicates += 1
    if original.source_id != article.source_id:
        ctx.store.add_also_source(original.doc_id, article.source_id)
    # A try of this source that failed after its upsert (its state database went away) may have left
    # this article in the store, and released its claim; another source took the story since. The
    # store is the truth: the copy goes, or the story would be stored twice.
    if original.doc_id != article.doc_id:
        ctx.store.delete_docs([article.doc_id])
    return True


def _write_groups(spec: Any, plan: Plan, ctx: IngestContext, report: IngestReport,
                  limits: FieldLimits) -> None:
    """Chunk, embed and upsert the articles to write, group by group. With ``ctx.overlap_writes``
    group N is upserted on a writer thread while group N+1 is chunked and embedded. A group's old
    versions are deleted, and its articles remembered, only after its own upsert returned."""
    size, overlap = ctx.settings.write_group, ctx.overlap_writes
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="newsrag-upsert") as writer:
        pending: tuple[Future[int], Prepared] | None = None
        try:
            for start in range(0, len(plan.write), size):
                prepared = _prepare(spec, plan.write[start:start + size], ctx, report, limits)
                if pending:
                    done, pending = pending, None  # finished once, even if finishing raises
                    _finish(*done, plan, ctx, report)
                pending = (writer.submit(ctx.store.upsert, prepared.objects, ctx.vector_name), prepared)
                if not overlap:
                    done, pending = pending, None
                    _finish(*done, plan, ctx, report)
        finally:
            if pending:  # also when embedding the next group failed: what was written is accounted for
                _finish(*pending, plan, ctx, report)


def _prepare(spec: Any, group: list[Article], ctx: IngestContext, report: IngestReport,
             limits: FieldLimits) -> Prepared:
    chunker = ctx.chunker(spec.chunking)
    chunks: list[tuple[Article, Chunk]] = []
    for a in group:
        pieces, cut = cap_chunks(a, chunker.split(a), limits)
        if cut:
            report.warnings.append(cut)
        if not pieces:
            report.failed.append(ItemFailure(item=a.url or a.key or a.doc_id, reason="no content left after cleaning"))
        chunks += [(a, c) for c in pieces]
    vectors, embedded = embed_cached(ctx.embedder, ctx.cache, [embedding_text(a.title, c.text) for a, c in chunks])
    report.chunks_embedded += embedded
    report.chunks_cached += len(chunks) - embedded
    stemmer = ctx.analysis.stemmer
    objects = [stored_chunk(a, c, vectors[i].tolist(), stemmer) for i, (a, c) in enumerate(chunks)]
    return Prepared(group, chunks, objects)


def _finish(upsert: Future[int], prepared: Prepared, plan: Plan, ctx: IngestContext, report: IngestReport) -> None:
    failed_docs = _upserted(upsert, prepared, report)
    written = [a for a in prepared.group if a.doc_id not in failed_docs and any(x is a for x, _ in prepared.chunks)]
    for a in written:
        if a.doc_id in plan.changed:
            report.chunks_deleted += ctx.store.delete_doc_except(a.doc_id, a.content_hash)
    _remember(written, plan, ctx)
    if written:
        ctx.state.remember_docs(written[0].source_id, map(_stored_doc, written))


def _upserted(upsert: Future[int], prepared: Prepared, report: IngestReport) -> set[str]:
    """Account for one group's upsert; returns the doc ids whose chunks failed to write."""
    try:
        report.chunks_written += upsert.result()
        return set()
    except BatchWriteError as exc:
        by_uuid = {c.uuid: a for a, c in prepared.chunks}
        failed = {by_uuid[u].doc_id: (by_uuid[u], why) for u, why in exc.failures.items() if u in by_uuid}
        for article, why in failed.values():
            report.failed.append(ItemFailure(item=article.url or article.doc_id, reason=f"write failed: {why}"))
        report.chunks_written += len(prepared.objects) - len(exc.failures)
        return set(failed)


def _remember(written: list[Article], plan: Plan, ctx: IngestContext) -> None:
    """Written articles' signatures become stored ones; the sources recorded as copies of them
    (by any worker, also before they were written) are named in their ``also_sources``."""
    signed = [(a, plan.signatures.pop(a.doc_id, None)) for a in written]
    signed = [(a, signature(a.text) if sig is None else sig) for a, sig in signed]  # a changed one: not yet
    copies = plan.claims.stored([(a.doc_id, a.source_id, a.url, sig) for a, sig in signed if sig is not None])
    source_of = {a.doc_id: a.source_id for a in written}
    for doc_id, sources in copies.items():
        for source_id in sorted(sources - {source_of[doc_id]}):  # a copy in the same source names nothing
            ctx.store.add_also_source(doc_id, source_id)
    plan.claims.renew()


_title_terms = lru_cache(maxsize=1024)(bm25_terms)  # every chunk of an article repeats its title


def stored_chunk(article: Article, chunk: Chunk, vector: list[float], stemmer: str = "english") -> StoredObject:
    """One chunk of an article as the store writes it: its record, vector and BM25 context (the
    analysed title, then the chunk's neighbourhood, see :mod:`newsrag.store.analysis`)."""
    context = f"{_title_terms(article.title, stemmer)}\n\n{chunk.context or bm25_terms(chunk.text, stemmer)}"
    record = ChunkRecord(
        text=chunk.text, title=article.title, url=article.url, source_id=article.source_id,
        doc_id=article.doc_id, content_hash=article.content_hash, author=article.author or "",
        language=article.language or "", tags=tuple(article.tags), also_sources=(),
        published_at=article.published_at, published_offset=article.published_offset,
        ingested_at=datetime.now(UTC), chunk_index=chunk.chunk_index, token_count=chunk.token_count)
    return StoredObject(chunk.uuid, record, vector, context)


def _cutoff(spec: Any) -> datetime | None:
    return datetime.now(UTC) - timedelta(days=spec.max_age_days) if spec.max_age_days else None


def _retention(spec: Any, ctx: IngestContext, report: IngestReport) -> None:
    cutoff = _cutoff(spec)
    if cutoff and ctx.store.exists():
        report.chunks_deleted += ctx.store.delete_older_than(spec.id, cutoff)
        ctx.state.forget_docs_older_than(spec.id, cutoff)
        _forget_missing_signatures(spec.id, ctx)


def _forget_missing_signatures(source_id: str, ctx: IngestContext) -> None:
    """Signatures of this source's documents the store no longer holds go too (their band keys,
    and the copies recorded against them, with them)."""
    mine = ctx.state.stored_signatures(source_id)
    gone = sorted(mine - ctx.store.source_doc_ids(source_id)) if mine else []
    ctx.state.delete_signatures(gone)


def _snapshot_deletes(spec: Any, articles: list[Article], ctx: IngestContext, report: IngestReport) -> None:
    """A snapshot source lists everything it has: stored documents missing from it are deleted."""
    gone = ctx.store.source_doc_ids(spec.id) - {a.doc_id for a in articles}
    failed_items = {f.item for f in report.failed}
    if gone and not failed_items:  # never delete on a partial read: a failed line may be one of them
        report.chunks_deleted += ctx.store.delete_docs(sorted(gone))
        ctx.state.delete_signatures(sorted(gone))
        ctx.state.forget_docs(spec.id, gone)


__all__ = ["SourceError", "run_batch", "run_source"]


def run_registry(path: str, only: str | None = None, progress: Any = None, full: bool = False,
                 settings: Settings | None = None) -> list[IngestReport]:
    """Run every enabled source of a registry file with one shared context (the CLI's path).
    ``progress(spec, report_or_None)`` is called before and after each source; ``full`` reads every
    source whatever its validators say (``newsrag ingest --full``); ``settings``: the root (the
    command's; None: the defaults)."""
    from pathlib import Path

    from newsrag.ingest.registry import load_registry

    registry = load_registry(path)
    reports = []
    with IngestContext(settings, base_dir=Path(registry.base_dir)) as ctx:
        for spec in registry.enabled(only):
            if progress:
                progress(spec, None)
            reports.append(run_source(spec, ctx, full=full))
            if progress:
                progress(spec, reports[-1])
    return reports
