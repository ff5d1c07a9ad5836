"""Rich progress and summary table for ``newsrag ingest``."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingest.models import IngestReport
from ingest.pipeline import run_registry
from newsrag.settings import IngestSettings, load

STYLE = {"ok": "green", "not_modified": "cyan", "partial": "yellow", "failed": "bold red"}


def ingest_with_progress(sources: str | None, only: str | None, console: Console, as_json: bool) -> list[IngestReport]:
    path = sources or str(load(IngestSettings).sources_file)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=True, disable=as_json) as bar:
        task = bar.add_task("ingesting", total=None)

        def progress(spec: Any, report: IngestReport | None) -> None:
            if report is None:
                bar.update(task, description=f"ingesting [bold]{spec.id}[/]")
            else:
                bar.advance(task)

        reports = run_registry(path, only, progress)
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
