"""``newsrag cluster up|down|status`` (and ``scripts/cluster …``): the production shape on loopback,
started and stopped by the project (see README, "Running on a cluster"): N nodes (default 3) of the
pinned weaviate-server with Raft, API-key auth and replication (:mod:`newsrag.store.cluster`), and
Airflow 3 with the CeleryExecutor, two Celery workers, Redis and PostgreSQL pointed at them
(:mod:`newsrag.cli.cluster_airflow`). The API key is never printed: the summary says where it is kept."""

from __future__ import annotations

import json
import os

import typer
from rich.console import Console
from rich.markup import escape

from newsrag.cli.airflow_local import ADMIN
from newsrag.cli.cluster_airflow import APP_WORKERS, WORKERS, ClusterAirflow
from newsrag.cli.common import command_settings, friendly
from newsrag.store.cluster import CLIENT_ENV_FILE, KEY_FILE, ClusterState, WeaviateCluster

cluster_app = typer.Typer(no_args_is_help=True,
                          help="A cluster on loopback: Weaviate nodes (Raft, replication, API-key auth) and "
                               "Airflow on Celery workers, Redis and PostgreSQL.")
out = Console(soft_wrap=True, highlight=False)
NODES_HELP = "Weaviate nodes (the replication factor of collections created on the cluster)."


def _cluster(nodes: int = 3) -> WeaviateCluster:
    """The cluster of this command's settings (``NEWSRAG_HOME``, ``NEWSRAG_WEAVIATE_*``, the key)."""
    return WeaviateCluster.from_settings(command_settings(), size=nodes)


def _airflow(cluster: WeaviateCluster, state: ClusterState | None = None) -> ClusterAirflow:
    """The cluster's Airflow beside its Weaviate folder, its components pointed at the nodes."""
    environ = {**os.environ, **(cluster.client_environ(state) if state is not None else {})}
    return ClusterAirflow(cluster.folder.parent, environ)


def _say(line: str) -> None:
    out.print(f"[dim]·[/] {escape(line)}")


def _airflow_summary(airflow: ClusterAirflow, state: dict[str, object]) -> None:
    out.print(f"[bold]Airflow is running[/]: CeleryExecutor, workers {', '.join(WORKERS)} "
              f"(homes in {escape(str(airflow.home / 'workers'))}), Redis broker, PostgreSQL "
              "(metadata and NEWSRAG_DATABASE_URL)")
    out.print(f"  UI and API    http://127.0.0.1:{state['api_port']}  login {ADMIN} "
              f"(password in {escape(str(airflow.passwords_file))})")
    out.print(f"  app           {airflow.app_url(state)}  ({APP_WORKERS} uvicorn workers; chat page and API)")
    out.print(f"  logs          {escape(str(airflow.home / 'logs'))}")


def _summary(cluster: WeaviateCluster, state: ClusterState) -> None:
    out.print(f"[bold]Weaviate cluster is running[/]: {len(state.nodes)} nodes of weaviate-server "
              f"v{escape(state.version)}, Raft, API-key auth (anonymous access off)")
    for node in state.nodes:
        out.print(f"  {node.name}  pid {node.pid}  http {state.url(node)}  grpc {node.grpc_port}  "
                  f"data {escape(str(cluster.data_dir(node.name)))}")
    where = "WEAVIATE_API_KEY" if cluster.api_key is not None else str(cluster.folder / KEY_FILE)
    out.print(f"  API key       from {escape(where)} (user newsrag)")
    out.print(f"  collections   replication factor {len(state.nodes)}, QUORUM writes and reads")
    out.print(f"  use it        set -a; . {escape(str(cluster.folder / CLIENT_ENV_FILE))}; set +a")


@cluster_app.command("up")
@friendly
def up(nodes: int = typer.Option(3, "--nodes", min=1, max=9, help=NODES_HELP),
       weaviate_only: bool = typer.Option(False, "--weaviate-only", help="Start only the Weaviate nodes.")) -> None:
    """Start the Weaviate nodes that are not running (building the server if needed) and wait until
    every node is ready and sees all the others; then Redis, PostgreSQL, Airflow with two Celery
    workers and the app (uvicorn, two workers), pointed at the nodes (everything stops again when a part fails to start)."""
    cluster = _cluster(nodes)
    state = cluster.up()
    _summary(cluster, state)
    if not weaviate_only:
        airflow = _airflow(cluster, state)
        try:
            started = airflow.up(_say)  # stops its own parts when one fails
        except BaseException:
            _say("stopping the weaviate nodes too")
            cluster.down()
            raise
        _airflow_summary(airflow, started)


@cluster_app.command("down")
@friendly
def down() -> None:
    """Stop Airflow, its workers, Redis, PostgreSQL and every node `up` started (the data stays)."""
    cluster = _cluster()
    airflow = _airflow(cluster)
    airflow.down(_say)
    left = [p.name for p in airflow.processes() if p.alive]
    pids = cluster.down()
    out.print(f"weaviate cluster stopped (pids {', '.join(map(str, pids))})" if pids
              else "weaviate cluster was not running")
    if left:
        out.print(f"still running: {', '.join(left)}")
        raise typer.Exit(1)


@cluster_app.command("restart")
@friendly
def restart(name: str = typer.Argument(..., help="A node (node1...), an Airflow component (scheduler, "
                                                 "worker-1...), app, redis or postgres.")) -> None:
    """Restart one part while the others run on, as a supervisor restarts a crashed process (a
    node keeps its data and rejoins; redis and postgres keep their ports and passwords)."""
    cluster = _cluster()
    state = cluster.read_state()
    if state is not None and name in state.names:
        cluster.restart_node(name)
        out.print(f"{name}: restarted, the cluster sees all {len(state.nodes)} nodes")
        return
    pid = _airflow(cluster, state).restart(name)
    out.print(f"{name}: restarted (pid {pid})")


@cluster_app.command("status")
@friendly
def status(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """Each node's pid, ports, readiness and the members it reports healthy, then each Airflow
    component (workers, Redis, PostgreSQL) with its pid, port and whether it runs; exit 3 when no
    node runs or a component `up` started is down."""
    cluster = _cluster()
    report = cluster.status()
    airflow = _airflow(cluster)
    rows = [row.__dict__ for row in airflow.processes()] if airflow.state() else []
    if as_json:
        out.print_json(json.dumps({**report, "airflow": rows} if report is not None else None))
    elif report is None:
        out.print("weaviate cluster: not running")
    else:
        for node in report["nodes"]:  # type: ignore[attr-defined]
            state = "ready" if node["ready"] else "running, not ready" if node["running"] else "stopped"
            seen = f", sees {len(node['members'])}/{report['size']} nodes healthy" if node["ready"] else ""
            out.print(f"{node['name']}: {state}, pid {node['pid']}, http port {node['http_port']}, "
                      f"grpc port {node['grpc_port']}{seen}")
    if not as_json:
        for row in rows:
            port = f", port {row['port']}" if row["port"] else ""
            out.print(f"{row['name']}: {'running' if row['alive'] else 'stopped'}, pid {row['pid']}{port}")
    if report is None or not all(row["alive"] for row in rows):
        raise typer.Exit(3)
