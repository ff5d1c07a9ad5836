"""The README's first command: start the embedded Weaviate, ingest the offline example sources,
and print the top hits of one question with their sources."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from newsrag.cli.common import command_settings
from newsrag.cli.ingest_view import ingest_with_progress
from newsrag.core.records import ChunkRecord
from newsrag.core.settings import Settings
from newsrag.embeddings import create_embedder
from newsrag.retrieval.context import local_time
from newsrag.retrieval.search import Searcher
from newsrag.store.server import LocalWeaviate
from newsrag.store.weaviate import WeaviateStore

EXAMPLE_SOURCES = Path(__file__).resolve().parents[2] / "examples" / "sources.offline.yaml"


def deploy_prompts(console: Console, settings: Settings) -> None:
    """The prompts_deploy DAG's step (:func:`newsrag.prompts.release.deploy`): register the shipped prompt
    templates; a registry with no active version gets the newest validated one, so the CLI, the app
    and LLM generators use a shipped version from the start."""
    from newsrag.infra.redaction import display_url
    from newsrag.prompts.release import deploy, opened_registry

    result = deploy(who="quickstart", settings=settings)
    with opened_registry(settings) as reg:
        active = [f"{n}@{v}" for n in reg.names() if (v := reg.active(n).active)]
        where = display_url(reg.location)
    now = f"; made active now: {', '.join(result['activated'])}" if result["activated"] else ""
    console.print(f"Prompt templates: {', '.join(active) or 'none'} active (registry {where}{now})", highlight=False)


def run_quickstart(question: str, console: Console, sources: Path = EXAMPLE_SOURCES, serve: bool = True,
                   settings: Settings | None = None) -> None:
    """Every step with the same root ``settings`` (the command's; None: the process environment)."""
    settings = command_settings(settings)
    deploy_prompts(console, settings)  # first: cheap, and a bad template file stops before Weaviate starts
    server = LocalWeaviate.from_settings(settings)
    server.install()
    state = server.start()
    console.print(f"Weaviate {server.settings.version} ready at {state.http_url} (data in {state.data_dir})")
    ingest_with_progress(str(sources), None, console, as_json=False, settings=settings)
    embedder = create_embedder(settings)
    with WeaviateStore(settings) as store:
        hits = Searcher(store, embedder, settings).search(question, top_k=3).hits  # the analysis ingest used
        console.print(f"\n{store.count()} chunks in {store.name}. Top hits for: [bold]{question}[/]")
    table = Table("score", "source", "title", "published", "url", "text")
    for hit in hits:
        chunk = hit.chunk
        table.add_row(f"{hit.score:.3f}", chunk.source_id, chunk.title, _day(chunk), chunk.url,
                      chunk.text[:160] + "…")
    console.print(table)
    from newsrag.cli.ask_view import ask_and_print, serve_app

    ask_and_print(question, [], None, None, console, as_json=False, settings=settings)
    if serve:
        serve_app(None, None, console, settings=settings)


def _day(chunk: ChunkRecord) -> str:
    """The publisher's own day (the offset it wrote), not UTC's."""
    when = local_time(chunk.published_at, chunk.published_offset)
    return when.date().isoformat() if when else "unknown"
