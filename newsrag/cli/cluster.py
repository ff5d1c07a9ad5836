"""``newsrag cluster up|down|status`` (and ``scripts/cluster …``): a cluster on loopback, started and
stopped by the project. Today its Weaviate part: N nodes (default 3) of the pinned weaviate-server
with Raft, API-key auth and replication (:mod:`newsrag.store.cluster`); see README, "Running on a
cluster". The API key is never printed: the summary says where it is kept."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.markup import escape

from newsrag.cli.common import command_settings, friendly
from newsrag.store.cluster import CLIENT_ENV_FILE, KEY_FILE, ClusterState, WeaviateCluster

cluster_app = typer.Typer(no_args_is_help=True,
                          help="A cluster on loopback: Weaviate nodes with Raft, replication and API-key auth.")
out = Console(soft_wrap=True, highlight=False)
NODES_HELP = "Weaviate nodes (the replication factor of collections created on the cluster)."


def _cluster(nodes: int = 3) -> WeaviateCluster:
    """The cluster of this command's settings (``NEWSRAG_HOME``, ``NEWSRAG_WEAVIATE_*``, the key)."""
    return WeaviateCluster.from_settings(command_settings(), size=nodes)


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
def up(nodes: int = typer.Option(3, "--nodes", min=1, max=9, help=NODES_HELP)) -> None:
    """Start the Weaviate nodes that are not running (building the server if needed) and wait until
    every node is ready and sees all the others."""
    cluster = _cluster(nodes)
    _summary(cluster, cluster.up())


@cluster_app.command("down")
@friendly
def down() -> None:
    """Stop every node `up` started (the data and ports stay for the next `up`)."""
    pids = _cluster().down()
    out.print(f"weaviate cluster stopped (pids {', '.join(map(str, pids))})" if pids
              else "weaviate cluster was not running")


@cluster_app.command("status")
@friendly
def status(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """Each node's pid, ports, readiness and the members it reports healthy; exit 3 when none runs."""
    report = _cluster().status()
    if as_json:
        out.print_json(json.dumps(report))
    elif report is None:
        out.print("weaviate cluster: not running")
    else:
        for node in report["nodes"]:  # type: ignore[attr-defined]
            state = "ready" if node["ready"] else "running, not ready" if node["running"] else "stopped"
            seen = f", sees {len(node['members'])}/{report['size']} nodes healthy" if node["ready"] else ""
            out.print(f"{node['name']}: {state}, pid {node['pid']}, http port {node['http_port']}, "
                      f"grpc port {node['grpc_port']}{seen}")
    if report is None:
        raise typer.Exit(3)
