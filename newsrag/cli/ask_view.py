"""``newsrag ask`` and ``newsrag serve``: thin shells over newsrag.retrieval.answer and the app.

Each command runs on one root :class:`~newsrag.core.settings.Settings`, built from the process
environment when the command starts (the CLI is an edge) and handed to everything it creates.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape

from newsrag.cli.common import command_settings
from newsrag.core.errors import ConfigError
from newsrag.core.settings import Settings


def ask_filters(sources: list[str], since: str | None, until: str | None) -> Any:
    """SearchFilters for ``newsrag ask``: ``--source`` repeated or comma-separated, and the date rule
    of :mod:`newsrag.retrieval.dates` (a date-only ``--until`` covers its whole day); None when empty."""
    from newsrag.core.records import SearchFilters
    from newsrag.retrieval.dates import InvalidDate, date_range

    try:
        after, before = date_range(since, until, ("--since", "--until"))
    except InvalidDate as exc:
        raise ConfigError(str(exc)) from None
    source_ids = tuple(dict.fromkeys(p.strip() for s in sources for p in s.split(",") if p.strip()))
    filters = SearchFilters(source_ids=source_ids, published_after=after, published_before=before)
    return None if filters.is_empty() else filters


def ask_as_of(value: str | None) -> Any:
    """``--as-of`` in UTC (a date: the end of that day; not in the future, 5 minutes of clock skew
    allowed), or None (now); an unreadable or future one is a ConfigError naming the option (exit 2)."""
    from datetime import UTC, datetime

    from newsrag.retrieval.dates import InvalidDate, as_of_point

    try:
        return as_of_point(value, datetime.now(UTC), name="--as-of")
    except InvalidDate as exc:
        raise ConfigError(str(exc)) from None


def build_answerer(settings: Settings) -> Any:
    """The app's answerer (its generator: ``NEWSRAG_APP_GENERATOR``) and the store it reads."""
    from newsrag.embeddings import create_embedder
    from newsrag.retrieval.answer import Answerer, AnswerSettings
    from newsrag.retrieval.generators import create_generator
    from newsrag.retrieval.search import Searcher
    from newsrag.store.weaviate import WeaviateStore

    embedder = create_embedder(settings)
    store = WeaviateStore(settings)
    # The raw variable, not AppSettings: asking needs none of the app's API keys, which production requires.
    generator = create_generator(str(settings.value("NEWSRAG_APP_GENERATOR", "extractive")), embedder, settings)
    return Answerer(Searcher(store, embedder, settings), generator, settings.get(AnswerSettings)), store


def ask_and_print(question: str, sources: list[str], since: str | None, top_k: int | None, console: Console,
                  as_json: bool, until: str | None = None, settings: Settings | None = None,
                  as_of: str | None = None) -> None:
    settings = command_settings(settings)
    filters = ask_filters(sources, since, until)  # bad dates fail before Weaviate is reached
    when = ask_as_of(as_of)
    answerer, store = build_answerer(settings)
    try:
        answer = answerer.ask(question, filters=filters, top_k=top_k, as_of=when)
    finally:
        store.close()
    if as_json:
        console.print_json(json.dumps(answer.model_dump(mode="json")))
        return
    # Article text is untrusted: escaped, so "[link=…]" in a quote is text, not console markup.
    console.print(f"\n[bold]Q:[/] {escape(question)}", soft_wrap=False, highlight=False)
    console.print(f"[bold]A:[/] {escape(answer.text)}", soft_wrap=False, highlight=False)
    as_of_note = f" · as of {answer.as_of.isoformat()}" if when and answer.as_of else ""  # only when asked
    console.print(f"[dim]{answer.generator} · prompt {answer.prompt_name} ({answer.prompt_version}) · "
                  f"{answer.timings.get('total', 0):.0f} ms · trace {answer.trace_id}{as_of_note}[/]", highlight=False)
    for source in answer.sources:  # one entry per article, numbered as its [n] markers
        date = source.published_at.date().isoformat() if source.published_at else "undated"
        console.print(f"[{source.n}] {source.title} ({source.source_id}, {date})\n    {source.url}",
                      highlight=False, markup=False)
        for quote in source.quotes:
            console.print(f"    “{quote}”", highlight=False, markup=False)


def serve_app(host: str | None, port: int | None, console: Console, settings: Settings | None = None) -> None:
    """Serve the app in this process. The app is an edge of its own (the CLI may not import it): its
    factory builds its root from the same process environment this command's root was read from."""
    import uvicorn

    from newsrag.core.settings import ServeSettings

    serve = command_settings(settings).get(ServeSettings)
    host, port = host or serve.host, port or serve.port
    console.print(f"newsrag app: http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
    uvicorn.run("newsrag.app.main:create_app", factory=True, host=host, port=port, log_level="info")
