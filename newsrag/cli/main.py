"""The ``newsrag`` command line. Library errors become one short message and a non-zero exit."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console

from newsrag.cli.airflow import airflow_app
from newsrag.cli.cluster import cluster_app
from newsrag.cli.common import command_settings, err, friendly
from newsrag.cli.prompts import prompts_app
from newsrag.cli.state import state_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Airflow-native RAG over fresh news.")
weaviate_app = typer.Typer(no_args_is_help=True, help="Build and run the embedded Weaviate server.")
app.add_typer(weaviate_app, name="weaviate")

out = Console(soft_wrap=True)
if not out.is_terminal:  # pipes and CI logs: wide enough for the summary tables
    out = Console(soft_wrap=True, width=160)

def _server() -> Any:
    """The local server of this command's settings (``NEWSRAG_HOME``, ``NEWSRAG_WEAVIATE_*``)."""
    from newsrag.store.server import LocalWeaviate

    return LocalWeaviate.from_settings(command_settings())


@weaviate_app.command("install")
@friendly
def weaviate_install() -> None:
    """Build the pinned weaviate-server with Go (once per machine) into the tools folder."""
    server = _server()
    path = server.install()
    out.print(f"weaviate-server v{server.settings.version}: {path}")


@weaviate_app.command("start")
@friendly
def weaviate_start() -> None:
    """Start the server on loopback (or reuse the running one) and wait until it is ready."""
    server = _server()
    state = server.start()
    out.print(f"weaviate running: pid {state.pid}, http {state.http_url}, grpc {state.grpc_port}, "
              f"data {state.data_dir}")


@weaviate_app.command("stop")
@friendly
def weaviate_stop() -> None:
    """Stop the server started by `newsrag weaviate start`."""
    out.print("weaviate stopped" if _server().stop() else "weaviate was not running")


@weaviate_app.command("status")
@friendly
def weaviate_status(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """Show whether the server runs, its ports and the version it reports."""
    status = _server().status()
    if as_json:
        out.print_json(json.dumps(status))
    elif status is None:
        out.print("weaviate: not running")
    else:
        out.print(f"weaviate: {'ready' if status['ready'] else 'starting'}, version "
                  f"{status.get('server_version', '?')}, pid {status['pid']}, http port {status['http_port']}, "
                  f"grpc port {status['grpc_port']}, data {status['data_dir']}")
    if status is None:
        raise typer.Exit(3)


@app.command("quickstart")
@friendly
def quickstart(
    question: str = typer.Argument("When is the Harbor Line light rail expected to open?"),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve the chat app at the end."),
) -> None:
    """Start Weaviate, ingest the offline example sources, answer one question, then serve the app."""
    from newsrag.cli.quickstart import run_quickstart

    run_quickstart(question, out, serve=serve, settings=command_settings())


ingest_app = typer.Typer(help="Ingest the registry's sources into Weaviate, or verify what is stored.")
app.add_typer(ingest_app, name="ingest")
SOURCES_HELP = "Registry file (default: $NEWSRAG_INGEST_SOURCES_FILE)."


@ingest_app.callback(invoke_without_command=True)
@friendly
def ingest(
    command: typer.Context,
    sources: str = typer.Option(None, "--sources", help=SOURCES_HELP),
    source: str = typer.Option(None, "--source", help="Only this source id."),
    as_json: bool = typer.Option(False, "--json", help="Print the reports as JSON."),
    full: bool = typer.Option(False, "--full", help="Read every source in full, ignoring its validators "
                                                    "and \"seen\" marks (unchanged articles still cost nothing)."),
) -> None:
    """Ingest the registry's sources into Weaviate; exits 1 when a source failed."""
    if command.invoked_subcommand is not None:
        return
    from newsrag.cli.ingest_view import ingest_with_progress

    reports = ingest_with_progress(sources, source, out, as_json, full=full, settings=command_settings())
    if any(r.status == "failed" for r in reports):
        raise typer.Exit(1)


@ingest_app.command("verify")
@friendly
def ingest_verify(
    sources: str = typer.Option(None, "--sources", help=SOURCES_HELP),
    source: str = typer.Option(None, "--source", help="Only this source id."),
    repair: bool = typer.Option(False, "--repair", help="Read each source with missing articles in full."),
    as_json: bool = typer.Option(False, "--json", help="Print the verification as JSON."),
) -> None:
    """Check each source's stored articles against its ingestion state.

    Exits 1 when articles are missing (with --repair: when a repair failed or left some missing)."""
    from newsrag.cli.ingest_view import verify_and_print

    if not verify_and_print(sources, source, out, as_json, repair=repair, settings=command_settings()):
        raise typer.Exit(1)


@app.command("ask")
@friendly
def ask(
    question: str = typer.Argument(..., help="The question."),
    source: list[str] = typer.Option(None, "--source", help="Only these source ids (repeatable or a,b)."),
    since: str = typer.Option(None, "--since", help="Published at or after: a date (its 00:00 UTC), a time "
                                                    "(naive = UTC) or a zoned time."),
    until: str = typer.Option(None, "--until", help="Published before: a time (naive = UTC), a zoned time, or "
                                                    "a date, which includes that whole day (UTC)."),
    as_of: str = typer.Option(None, "--as-of", help="Answer as of this moment: only articles published and "
                                                    "ingested by then, recency counted from it. A date (the end "
                                                    "of that day, UTC) or a time; not in the future. Default: now."),
    top_k: int = typer.Option(None, "--top-k", min=1, max=50),
    as_json: bool = typer.Option(False, "--json", help="Print the whole Answer as JSON."),
) -> None:
    """Answer a question from the index and print its sources."""
    from newsrag.cli.ask_view import ask_and_print

    ask_and_print(question, source or [], since, top_k, out, as_json, until=until, as_of=as_of)


@app.command("serve")
@friendly
def serve(
    host: str = typer.Option(None, help="Default: NEWSRAG_APP_HOST (127.0.0.1)."),
    port: int = typer.Option(None, help="Default: NEWSRAG_APP_PORT (8000)."),
) -> None:
    """Serve the chat page and the API (uvicorn)."""
    from newsrag.cli.ask_view import serve_app

    serve_app(host, port, out)


@app.command("eval")
@friendly
def eval_(
    golden: str = typer.Option(None, "--golden", help="Golden set JSONL (default: NEWSRAG_EVAL_GOLDEN_PATH)."),
    compare: str = typer.Option(None, "--compare", help="Compare with this earlier run id."),
    out_dir: str = typer.Option(None, "--out", help="Reports folder (default: NEWSRAG_EVAL_REPORTS_DIR)."),
    sample: int = typer.Option(None, "--sample", help="Evaluate a seeded sample of N questions."),
    judge: bool = typer.Option(None, "--judge/--no-judge", help="Use the LLM judge (default: NEWSRAG_JUDGE_ENABLED)."),
    generator: str = typer.Option(None, "--generator",
                                  help="extractive, openai, cohere... (default: NEWSRAG_EVAL_GENERATOR); "
                                       "an LLM generator uses the active prompt version."),
) -> None:
    """Score retrieval and answers on a golden set; print the headline table and the report path.
    Exits 1 on a regression, 2 on bad input and 3 when the run was saved but its report could not be written."""
    from newsrag.evaluation.runner import run_cli
    from newsrag.prompts.release import prompt_lookup

    settings = command_settings()
    code = run_cli(golden, compare=compare, out=out_dir, sample=sample, judge=judge, generator=generator,
                   console=out, prompt_lookup=prompt_lookup(settings), settings=settings)
    if code:
        raise typer.Exit(code)


@app.command("eval-feedback")
@friendly
def eval_feedback(
    cases: str = typer.Option("feedback-cases.jsonl", "--cases", help="Regression cases (golden-set JSONL)."),
    review: str = typer.Option("feedback-review.jsonl", "--review", help="Answers to review (JSONL)."),
    feedback_db: str = typer.Option(None, "--feedback-db",
                                    help="The app's feedback store (default: NEWSRAG_APP_FEEDBACK_DB)."),
) -> None:
    """Turn the app's user feedback into golden-set candidates: thumbs-up answers become regression
    cases, thumbs-down ones (and thumbs-up answers without citations) go to a review file."""
    from newsrag.evaluation.golden import export_feedback

    done = export_feedback(cases, review, feedback_db, settings=command_settings())
    out.print(f"{done.records} feedback record(s) in {done.source}: {done.cases} regression case(s) -> {cases}, "
              f"{done.review} to review -> {review}", highlight=False)


app.add_typer(prompts_app, name="prompts")
app.add_typer(airflow_app, name="airflow")
app.add_typer(cluster_app, name="cluster")
app.add_typer(state_app, name="state")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
