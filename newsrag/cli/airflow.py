"""``newsrag airflow …`` (and ``scripts/airflow …``): a local Airflow with the project's DAGs."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from newsrag.cli.airflow_local import ADMIN, COMPONENTS, REPO, LocalAirflow
from newsrag.cli.common import friendly

airflow_app = typer.Typer(no_args_is_help=True, help="A local Airflow 3 with the project's DAGs, without Docker.")
out = Console(soft_wrap=True, highlight=False)


def run(fn: Any) -> Any:
    return friendly(fn)


def _say(line: str) -> None:
    out.print(f"[dim]·[/] {escape(line)}")


def _summary(local: LocalAirflow, state: dict[str, Any]) -> None:
    url = f"http://127.0.0.1:{state['api_port']}"
    out.print(f"\n[bold]Airflow is running[/]: LocalExecutor on PostgreSQL, DAGs from {REPO / 'dags'}")
    out.print(f"  UI and API    {url}")
    out.print(f"  login         {ADMIN} / {escape(local.admin_password())}"
              f"   (simple auth manager; kept in {local.passwords_file})")
    out.print(f"  NEWSRAG_HOME  {local.home}   (shared with the newsrag CLI)")
    if state.get("dags"):
        out.print(f"  DAGs          {', '.join(state['dags'])} (a new DAG starts unpaused)")
    out.print("  next          scripts/airflow status | logs scheduler | run dags list | down")
    for name, trace in (state.get("import_errors") or {}).items():
        out.print(f"\n[bold red]import error in dags/{escape(name)}:[/]\n{escape(trace.strip())}")
    if state.get("import_errors"):
        raise typer.Exit(1)


@airflow_app.command("up")
@run
def up() -> None:
    """Start PostgreSQL, Weaviate, the api-server, scheduler, dag-processor and triggerer (or report them)."""
    local = LocalAirflow()
    _summary(local, local.up(_say))


@airflow_app.command("down")
@run
def down() -> None:
    """Stop every process `up` started (the data stays for the next `up`)."""
    local = LocalAirflow()
    local.down(_say)
    left = [p for p in local.processes() if p.alive and p.name != "weaviate"]
    out.print("airflow: stopped" if not left else f"still running: {', '.join(p.name for p in left)}")
    if left:
        raise typer.Exit(1)


@airflow_app.command("restart")
@run
def restart() -> None:
    """down, then up."""
    local = LocalAirflow()
    local.down(_say)
    _summary(local, local.up(_say))


@airflow_app.command("status")
@run
def status(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """Each process with its pid, port and whether it is alive; exit 3 unless all are."""
    local = LocalAirflow()
    rows = local.processes()
    if as_json:
        out.print_json(json.dumps([row.__dict__ for row in rows]))
    else:
        table = Table("process", "pid", "port", "alive", "note")
        for row in rows:
            table.add_row(row.name, str(row.pid or "-"), str(row.port or "-"), "yes" if row.alive else "no", row.note)
        out.print(table)
        state = local.state()
        if state and local.running():
            out.print(f"UI and API: http://127.0.0.1:{state['api_port']}  (NEWSRAG_HOME {local.home})")
    if not local.running():
        raise typer.Exit(3)


@airflow_app.command("logs")
@run
def logs(
    component: str = typer.Argument(..., help=f"One of {', '.join([*COMPONENTS, 'postgres', 'weaviate'])}."),
    lines: int = typer.Option(50, "--lines", "-n", min=1),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines (tail -f)."),
) -> None:
    """Print the end of a component's log."""
    path = LocalAirflow().log_file(component)
    if not path.exists():
        out.print(f"{path}: no log yet")
        raise typer.Exit(1)
    if follow:
        os.execvp("tail", ["tail", "-n", str(lines), "-f", str(path)])
    out.print(escape(LocalAirflow().tail(component, lines)))


@airflow_app.command("parse")
@run
def parse() -> None:
    """Import every DAG file as the dag-processor does; exit 1 with the errors when one fails."""
    result = LocalAirflow().parse()
    out.print(f"DAGs: {', '.join(result['dags']) or '-'}")
    for name, trace in result["errors"].items():
        out.print(f"\n[bold red]import error in dags/{escape(name)}:[/]\n{escape(trace.strip())}")
    if result["errors"]:
        raise typer.Exit(1)


@airflow_app.command("import")
@run
def import_() -> None:
    """Apply airflow_settings.yaml (pools, connections, variables) to the running Airflow."""
    local = LocalAirflow()
    state = local.state()
    if not state or not local.running():
        out.print("airflow is not running: scripts/airflow up")
        raise typer.Exit(3)
    local.apply(state, local.objects())
    out.print(f"applied {local.settings_file}")


@airflow_app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@run
def run_(ctx: typer.Context) -> None:
    """Run an airflow command against the local Airflow, e.g. `run dags list` or `run backfill create …`."""
    local = LocalAirflow()
    state = local.state()
    if not state or not local.running():
        out.print("airflow is not running: scripts/airflow up")
        raise typer.Exit(3)
    code = subprocess.run([str(local.airflow), *ctx.args], env=local.env(state), cwd=REPO, check=False).returncode
    raise typer.Exit(code)
