"""Rich progress and summary table for ``newsrag ingest``, and the report of ``newsrag ingest verify``."""

from __future__ import annotations

import json
from contextlib import nullcontext as _quiet
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from newsrag.cli.common import command_settings
from newsrag.core.settings import IngestSettings, Settings
from newsrag.ingest.models import IngestReport
from newsrag.ingest.pipeline import run_registry
from newsrag.ingest.verify import SourceCheck, Verification, verify_registry

STYLE = {"ok": "green", "not_modified": "cyan", "partial": "yellow", "failed": "bold red"}


def ingest_with_progress(sources: str | None, only: str | None, console: Console, as_json: bool,
                         full: bool = False, settings: Settings | None = None) -> list[IngestReport]:
    """Ingest the registry (``sources``, default ``NEWSRAG_INGEST_SOURCES_FILE``) with the command's
    ``settings``, showing progress, then print the summary table (or the reports as JSON)."""
    settings = command_settings(settings)
    path = sources or str(settings.get(IngestSettings).sources_file)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=True, disable=as_json) as bar:
        task = bar.add_task("ingesting", total=None)

        def progress(spec: Any, report: IngestReport | None) -> None:
            if report is None:
                bar.update(task, description=f"ingesting [bold]{spec.id}[/]")
            else:
                bar.advance(task)

        reports = run_registry(path, only, progress, full=full, settings=settings)
    if as_json:
        console.print_json(json.dumps([r.model_dump(mode="json") for r in reports]))
    else:
        console.print(summary_table(reports))
        for r in reports:
            for f in r.failed[:10]:
                console.print(f"  [yellow]{r.source_id}[/] item {f.item}: {f.reason}", highlight=False)
            for w in r.warnings[:10]:
                console.print(f"  [cyan]{r.source_id}[/] item {w.item}: {w.reason}", highlight=False)
            if r.error:
                console.print(f"  [red]{r.source_id}[/]: {r.error}", highlight=False)
    return reports


def summary_table(reports: list[IngestReport]) -> Table:
    table = Table("source", "status", "seen", "new", "changed", "unchanged", "dups", "failed", "warned",
                  "embedded", "written", "deleted", "s", title="ingestion summary")
    for r in reports:
        table.add_row(r.source_id, f"[{STYLE.get(r.status, '')}]{r.status}[/]", *map(str, (
            r.items_seen, r.new, r.changed, r.unchanged, r.duplicates, len(r.failed), len(r.warnings), r.chunks_embedded,
            r.chunks_written, r.chunks_deleted)), f"{r.seconds:.1f}")
    return table


def verify_and_print(sources: str | None, only: str | None, console: Console, as_json: bool,
                     repair: bool = False, settings: Settings | None = None) -> bool:
    """Verify (and repair) the registry's sources; True when nothing is missing and no repair failed."""
    settings = command_settings(settings)
    path = sources or str(settings.get(IngestSettings).sources_file)
    with console.status("repairing" if repair else "verifying", spinner="dots") if not as_json else _quiet():
        result = verify_registry(path, only, repair=repair, settings=settings)
    if as_json:
        console.print_json(json.dumps(result.to_dict()))
    else:
        print_verification(result, console)
    return result.missing == 0 and not result.failed


def print_verification(result: Verification, console: Console) -> None:
    gen = result.generation or "missing"
    console.print(f"collection {result.collection}, generation {gen}", highlight=False)
    if result.recreated:
        console.print(f"  [yellow]the state describes generation {result.state_generation}: the collection was "
                      "dropped or re-created since; every source is read in full on its next run[/]", highlight=False)
    console.print(verification_table(result))
    for check in result.sources:
        _print_docs(console, check.source_id, "missing", check.missing, "red")
        _print_docs(console, check.source_id, "no longer in the source, forgotten", check.lost, "yellow")
        if check.repair is not None and check.repair.error:
            console.print(f"  [red]{check.source_id}[/]: repair failed: {check.repair.error}", highlight=False)


def verification_table(result: Verification) -> Table:
    repaired = any(c.repair is not None for c in result.sources)
    columns = ["source", "read", "articles", "stored", "missing", "chunks"]
    table = Table(*columns, *(["repair", "restored", "lost"] if repaired else []), title="ingestion state vs store")
    for c in result.sources:
        missing = f"[red]{len(c.missing)}[/]" if c.missing else "0"
        row = [c.source_id, "yes" if c.read else "no", str(c.remembered), str(c.stored), missing, str(c.chunks)]
        if repaired:
            row += _repair_cells(c)
        table.add_row(*row)
    return table


def _repair_cells(check: SourceCheck) -> list[str]:
    if check.repair is None:
        return ["-", "-", "-"]
    status = check.repair.status
    return [f"[{STYLE.get(status, '')}]{status}[/]", str(check.restored), str(len(check.lost))]


def _print_docs(console: Console, source_id: str, what: str, docs: dict[str, str], colour: str) -> None:
    for doc_id, url in list(docs.items())[:10]:
        console.print(f"  [{colour}]{source_id}[/] {what}: {url} (doc {doc_id})", highlight=False)
    if len(docs) > 10:
        console.print(f"  [{colour}]{source_id}[/] ... and {len(docs) - 10} more {what}", highlight=False)
