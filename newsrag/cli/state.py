"""``newsrag state …``: the five stores of shared state (ingestion state, embedding cache, answer
and feedback log, evaluation history, prompt registry) and their move onto PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from newsrag.cli.common import command_settings, err, friendly
from newsrag.core.errors import ConfigError
from newsrag.core.settings import DatabaseSettings, PathSettings, Settings, defaults, load
from newsrag.infra.migrate import MigrationConflict, StoreReport, StoreSpec, migrate_stores
from newsrag.infra.redaction import display_url
from newsrag.infra.sqldb import is_postgres

state_app = typer.Typer(no_args_is_help=True, help="The stores of shared state, and their move onto PostgreSQL.")
out = Console(soft_wrap=True)
if not out.is_terminal:  # pipes and CI logs: the table's names whole
    out = Console(soft_wrap=True, width=160)


def home_stores(settings: Settings) -> list[StoreSpec]:
    """The five stores where ``settings`` keep them without ``NEWSRAG_DATABASE_URL``: each store's
    own variable, else its SQLite file under ``NEWSRAG_HOME``."""
    from newsrag.embeddings.cache import EmbeddingCache
    from newsrag.evaluation.feedback import FeedbackStore, feedback_location
    from newsrag.evaluation.history import HistoryStore, history_location
    from newsrag.ingest.context import embedding_cache_location, state_location
    from newsrag.ingest.state import IngestState
    from newsrag.prompts.registry import PromptRegistry
    from newsrag.prompts.release import registry_location

    local = settings.replace(defaults(DatabaseSettings))
    return [
        StoreSpec("ingestion state", state_location(local), _opener(IngestState)),
        StoreSpec("embedding cache", embedding_cache_location(local), _opener(EmbeddingCache)),
        StoreSpec("feedback store", feedback_location(local), _opener(FeedbackStore)),
        StoreSpec("evaluation history", history_location(local), _opener(HistoryStore)),
        StoreSpec("prompt registry", registry_location(local), _opener(PromptRegistry)),
    ]


def _opener(store: Callable[[str], object]) -> Callable[[str], None]:
    """Open the store at a location (its constructor creates its tables) and close it."""

    def prepare(location: str) -> None:
        store(location).close()  # type: ignore[attr-defined]

    return prepare


@state_app.command("migrate")
@friendly
def migrate(
    to: str = typer.Option(None, "--to", help="The PostgreSQL database (default: NEWSRAG_DATABASE_URL)."),
    home: str = typer.Option(None, "--home", help="The home whose SQLite stores are copied (default: NEWSRAG_HOME)."),
) -> None:
    """Copy every table of the home's SQLite stores into PostgreSQL, one transaction per store.

    Rows already there are left alone, so a second run copies nothing. Exits 2 (nothing written)
    when the target holds a different row under a key of the home."""
    settings = command_settings()
    target = to or settings.get(DatabaseSettings).database_url
    if not target or not is_postgres(target):
        raise ConfigError("--to (or NEWSRAG_DATABASE_URL) must be a postgresql:// URL")
    if home is not None:
        settings = settings.replace(load(PathSettings, settings.environ, home=Path(home)))
    stores = [s for s in home_stores(settings) if not _on_postgres(s)]
    try:
        reports = migrate_stores(stores, target)
    except MigrationConflict as exc:
        err.print(f"[bold red]refused:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    print_reports(reports, display_url(target))


def _on_postgres(spec: StoreSpec) -> bool:
    if is_postgres(spec.source):
        out.print(f"{spec.what}: already on PostgreSQL ({display_url(spec.source)}), not copied", highlight=False)
        return True
    return False


def print_reports(reports: list[StoreReport], target: str) -> None:
    table = Table("store", "table", "rows in home", "copied", "already there")
    for report in reports:
        if not report.found:
            out.print(f"{report.what}: no SQLite file at {report.source}, nothing to copy", highlight=False)
        for t in report.tables:
            table.add_row(report.what, t.table, str(t.rows), str(t.copied), str(t.present))
    if table.rows:
        out.print(table)
    copied = sum(r.copied for r in reports)
    if copied:
        out.print(f"copied {copied} row(s) into {target}", highlight=False)
    else:
        out.print(f"nothing to copy: {target} already holds every row of the home (nothing changed)",
                  highlight=False)
