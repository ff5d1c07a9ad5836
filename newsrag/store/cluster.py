"""A Weaviate cluster of N nodes on loopback, from the project's own weaviate-server build.

Each node is the binary :class:`~newsrag.store.server.LocalWeaviate` installs, started with its
own ports and data folder under one cluster folder. The nodes find each other by gossip
(``CLUSTER_JOIN``), agree on the schema with Raft (``RAFT_JOIN`` names every node with its Raft
port, ``RAFT_BOOTSTRAP_EXPECT`` = N), and accept only API-key requests (anonymous access off).
The key comes from the settings (``WEAVIATE_API_KEY``) or, when none is set, is generated once into
``<folder>/api-key``; it never appears in a log, the state file or a status.

``<folder>/cluster.json`` records every node's ports and pid, so ``down`` (from any process) stops
exactly what ``up`` started, and a stopped node restarts on its own ports (Raft knows it there).
Like :mod:`newsrag.store.server`, this module talks plain HTTP and never imports the client.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import httpx
from pydantic import SecretStr

from newsrag.core.errors import ConfigError, ServerError
from newsrag.core.settings import Settings, WeaviateSettings, defaults
from newsrag.store.server import (
    LocalWeaviate,
    free_port_pair,
    http_ready,
    pick_port,
    pid_alive,
    port_free,
    server_env,
    wait_exit,
)

API_USER = "newsrag"  # the one user the key authenticates; it administers the cluster
STATE_FILE = "cluster.json"
KEY_FILE = "api-key"
CLIENT_ENV_FILE = "client.env"

# Repair after a node comes back: async replication (on for every collection with more than one
# copy) compares the replicas' hash trees every ASYNC_REPLICATION_FREQUENCY and copies what one
# misses; objects younger than the propagation delay wait for the next round (writes in flight).
# Weaviate's defaults (30 s each) suit a network of hosts; on loopback 5 s converge in seconds.
REPAIR_ENV = {"ASYNC_REPLICATION_FREQUENCY": "5s", "ASYNC_REPLICATION_PROPAGATION_DELAY": "5s"}


@dataclass(frozen=True)
class ClusterNode:
    """One node's name, ports and pid (None: stopped). Weaviate derives a node's Raft RPC port on a
    shared host as its Raft port + 1, so that pair is adjacent."""

    name: str
    http_port: int
    grpc_port: int
    gossip_port: int
    data_port: int
    raft_port: int
    pid: int | None = None

    @property
    def raft_rpc_port(self) -> int:
        return self.raft_port + 1

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.http_port, self.grpc_port, self.gossip_port, self.data_port, self.raft_port,
                self.raft_rpc_port)

    @property
    def running(self) -> bool:
        return self.pid is not None and pid_alive(self.pid)


@dataclass(frozen=True)
class ClusterState:
    host: str
    version: str
    nodes: tuple[ClusterNode, ...]

    def node(self, name: str) -> ClusterNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise ServerError(f"the cluster has no node {name!r} (its nodes: {', '.join(self.names)})")

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def with_node(self, node: ClusterNode) -> ClusterState:
        return replace(self, nodes=tuple(node if n.name == node.name else n for n in self.nodes))

    def url(self, node: ClusterNode) -> str:
        return f"http://{self.host}:{node.http_port}"


def plan_nodes(host: str, size: int) -> tuple[ClusterNode, ...]:
    """``size`` nodes named node1..nodeN on free ports of ``host``, no port used twice."""
    taken: set[int] = set()
    nodes = []
    for index in range(1, size + 1):
        picked: list[int] = []
        for _ in range(4):  # http, grpc, gossip, data
            picked.append(pick_port(host, 0, avoid=taken | set(picked)))
        http, grpc, gossip, data = picked
        node = ClusterNode(f"node{index}", http, grpc, gossip, data, free_port_pair(host, taken | set(picked)))
        taken |= set(node.ports)
        nodes.append(node)
    return tuple(nodes)


def node_env(node: ClusterNode, cluster: ClusterState, data_dir: Path, api_key: str,
             environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """One node's environment: the single server's (:func:`server_env`) joined to the others by
    gossip and Raft, with API-key authentication and anonymous access off."""
    internal = [node.gossip_port, node.data_port, node.raft_port, node.raft_rpc_port]
    others = [n for n in cluster.nodes if n.name != node.name]
    return {
        **server_env(data_dir, node.grpc_port, internal, environ),
        "CLUSTER_HOSTNAME": node.name,
        "CLUSTER_JOIN": ",".join(f"127.0.0.1:{n.gossip_port}" for n in others),
        "RAFT_JOIN": ",".join(f"{n.name}:{n.raft_port}" for n in cluster.nodes),
        "RAFT_BOOTSTRAP_EXPECT": str(len(cluster.nodes)),
        "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "false",
        "AUTHENTICATION_APIKEY_ENABLED": "true",
        "AUTHENTICATION_APIKEY_ALLOWED_KEYS": api_key,
        "AUTHENTICATION_APIKEY_USERS": API_USER,
        "AUTHORIZATION_ADMINLIST_ENABLED": "true",
        "AUTHORIZATION_ADMINLIST_USERS": API_USER,
        **REPAIR_ENV,
    }


@dataclass
class WeaviateCluster:
    """``size`` nodes under ``folder``, run from ``server``'s binary (its version, host, readiness
    timeout and child-process environment). ``api_key`` None: the key generated in the folder."""

    folder: Path
    server: LocalWeaviate
    api_key: SecretStr | None = field(default=None, repr=False)
    size: int = 3

    @classmethod
    def from_settings(cls, settings: Settings | None = None, folder: Path | None = None,
                      size: int = 3) -> WeaviateCluster:
        """The cluster of the root's home (``$NEWSRAG_HOME/cluster/weaviate`` unless ``folder``),
        keyed with its ``WEAVIATE_API_KEY``; None: the defaults."""
        root = settings if settings is not None else Settings({})
        server = LocalWeaviate.from_settings(root)
        where = folder if folder is not None else server.paths.home / "cluster" / "weaviate"
        return cls(where, server, root.get(WeaviateSettings).api_key, size)

    # -- locations and the key -------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.folder / STATE_FILE

    def data_dir(self, name: str) -> Path:
        return self.folder / name

    def log_file(self, name: str) -> Path:
        return self.folder / "logs" / f"{name}.log"

    def key(self) -> str:
        """The API key: the settings', else the one generated in ``<folder>/api-key`` (mode 600)."""
        if self.api_key is not None:
            key = self.api_key.get_secret_value()
        else:
            key = _read_or_create_secret(self.folder / KEY_FILE)
        if not key or "," in key or key != key.strip():
            raise ConfigError("WEAVIATE_API_KEY: Weaviate reads its allowed keys as a comma-separated "
                              "list: use a key without commas or surrounding spaces")
        return key

    # -- lifecycle -------------------------------------------------------------------------
    def up(self) -> ClusterState:
        """Start every node that is not running (installing the binary if needed), then wait until
        each is ready and sees all ``size`` nodes. A running cluster is reused as it is."""
        state = self._layout()
        state = self._start(state, [n.name for n in state.nodes if not n.running])
        self._write_client_env(state)
        return state

    def down(self) -> list[int]:
        """Stop every node (SIGTERM to all, SIGKILL to any left after 30 s); returns their pids.
        The layout is kept, so the next ``up`` reuses the ports and data."""
        state = self.read_state()
        return [] if state is None else self._stop_nodes(state, state.names)

    def stop_node(self, name: str) -> bool:
        """Stop one node (a fault, a restart). Returns whether it was running."""
        return bool(self._stop_nodes(self._running_state(), [name]))

    def start_node(self, name: str) -> ClusterState:
        """Start one stopped node on its recorded ports and wait until the cluster is whole again."""
        state = self._running_state()
        node = state.node(name)
        taken = [] if node.running else [p for p in node.ports if not port_free(state.host, p)]
        if taken:
            raise ServerError(f"cannot restart {name}: its port(s) {taken} are taken by another process")
        return self._start(state, [] if node.running else [name])

    def restart_node(self, name: str) -> ClusterState:
        self.stop_node(name)
        return self.start_node(name)

    def status(self) -> dict[str, object] | None:
        """Each node's pid, ports and readiness, and the members each ready node reports healthy;
        None when no node runs."""
        state = self.read_state()
        if state is None or not any(n.running for n in state.nodes):
            return None
        nodes = []
        for node in state.nodes:
            ready = node.running and http_ready(state.url(node))
            members = self.members(state, node) if ready else []
            nodes.append({**asdict(node), "running": node.running, "ready": ready, "members": members})
        return {"folder": str(self.folder), "version": state.version, "size": len(state.nodes),
                "nodes": nodes}

    def members(self, state: ClusterState, node: ClusterNode) -> list[str]:
        """The nodes ``node`` reports HEALTHY (``GET /v1/nodes`` with the key); [] when it cannot say."""
        try:
            resp = httpx.get(f"{state.url(node)}/v1/nodes", headers=self.auth_headers(), timeout=5.0)
        except httpx.HTTPError:
            return []
        if resp.status_code in (401, 403):
            raise ServerError(f"{node.name} refuses the API key (HTTP {resp.status_code}): the cluster was "
                              "started with another WEAVIATE_API_KEY; run `newsrag cluster down`, then up")
        if resp.status_code != 200:
            return []
        return sorted(n["name"] for n in resp.json().get("nodes", []) if n.get("status") == "HEALTHY")

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key()}"}

    def read_state(self) -> ClusterState | None:
        try:
            raw = json.loads(self.state_file.read_text())
            return ClusterState(raw["host"], raw["version"], tuple(ClusterNode(**n) for n in raw["nodes"]))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError) as exc:
            raise ServerError(f"cluster state {self.state_file} is unreadable ({exc}); stop its "
                              "weaviate-server processes and delete the file") from None

    # -- what clients use ------------------------------------------------------------------
    def client_environ(self, state: ClusterState | None = None, node: str | None = None) -> dict[str, str]:
        """The variables that point newsrag at the cluster (through ``node``, default the first):
        its URLs, the key, replication factor N and QUORUM writes and reads."""
        state = state or self._running_state()
        entry = state.node(node) if node else state.nodes[0]
        return {"WEAVIATE_URL": state.url(entry), "WEAVIATE_GRPC_URL": f"http://{state.host}:{entry.grpc_port}",
                "WEAVIATE_API_KEY": self.key(), "WEAVIATE_REPLICATION_FACTOR": str(len(state.nodes)),
                "WEAVIATE_CONSISTENCY_LEVEL": "QUORUM"}

    def client_settings(self, base: WeaviateSettings | None = None, node: str | None = None) -> WeaviateSettings:
        """``base`` (default: the defaults) pointed at the cluster, as :meth:`client_environ` says."""
        env = self.client_environ(node=node)
        settings = base if base is not None else defaults(WeaviateSettings)
        return settings.model_copy(update={
            "url": env["WEAVIATE_URL"], "grpc_url": env["WEAVIATE_GRPC_URL"],
            "api_key": SecretStr(env["WEAVIATE_API_KEY"]),
            "replication_factor": int(env["WEAVIATE_REPLICATION_FACTOR"]), "consistency_level": "QUORUM"})

    # -- internals -------------------------------------------------------------------------
    def _layout(self) -> ClusterState:
        """The recorded layout (reused: Raft knows its nodes by these ports), or a new one when
        there is none or its ports are no longer free while it is down."""
        s = self.server.settings
        state = self.read_state()
        if state is not None and len(state.nodes) != self.size:
            raise ServerError(f"the cluster in {self.folder} has {len(state.nodes)} nodes, not {self.size}: "
                              "run `newsrag cluster down` and delete that folder to change its size")
        if state is None or (not any(n.running for n in state.nodes) and not _all_free(state)):
            state = ClusterState(s.host, s.version, plan_nodes(s.host, self.size))
        return replace(state, version=s.version)

    def _running_state(self) -> ClusterState:
        state = self.read_state()
        if state is None:
            raise ServerError(f"no cluster in {self.folder}: run `newsrag cluster up`")
        return state

    def _start(self, state: ClusterState, names: list[str]) -> ClusterState:
        """Spawn the named nodes and wait for the whole cluster; when it does not come together,
        the nodes started here are stopped again (no half-started cluster is left running)."""
        binary = self.server.install()
        for name in names:
            state = state.with_node(self._spawn(state, state.node(name), binary))
        self._write_state(state)
        try:
            self._wait_cluster(state)
        except ServerError:
            self._stop_nodes(state, names)
            raise
        return state

    def _stop_nodes(self, state: ClusterState, names: list[str]) -> list[int]:
        """Stop the named nodes and record them stopped; returns the pids that were running."""
        nodes = [state.node(name) for name in names]
        pids = [n.pid for n in nodes if n.pid is not None and pid_alive(n.pid)]
        _stop_all(pids)
        for node in nodes:
            state = state.with_node(replace(node, pid=None))
        self._write_state(state)
        return pids

    def _spawn(self, state: ClusterState, node: ClusterNode, binary: Path) -> ClusterNode:
        data = self.data_dir(node.name)
        data.mkdir(parents=True, exist_ok=True)
        log_path = self.log_file(node.name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = node_env(node, state, data, self.key(), self.server.environ)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [str(binary), "--host", state.host, "--port", str(node.http_port), "--scheme", "http"],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # outlives the command that started it; stopped by pid
            )
        proc.returncode = 0  # detached on purpose: Popen must not warn that it still runs
        return replace(node, pid=proc.pid)

    def _wait_cluster(self, state: ClusterState) -> None:
        """Until every running node is ready and reports all of them healthy."""
        deadline = time.monotonic() + self.server.settings.ready_timeout
        expected = sorted(state.names)
        pending = [n for n in state.nodes if n.pid is not None]
        while pending:
            for node in pending:
                if not node.running:
                    raise ServerError(f"weaviate-server {node.name} exited during startup. Last log lines "
                                      f"of {self.log_file(node.name)}:\n{self._log_tail(node.name)}")
            pending = [n for n in pending if not http_ready(state.url(n)) or self.members(state, n) != expected]
            if pending and time.monotonic() > deadline:
                names = ", ".join(n.name for n in pending)
                raise ServerError(f"the cluster did not come together within {self.server.settings.ready_timeout:.0f}s "
                                  f"({names} not ready or not seeing all {len(expected)} nodes). Last log lines "
                                  f"of {pending[0].name}:\n{self._log_tail(pending[0].name)}")
            if pending:
                time.sleep(0.5)

    def _log_tail(self, name: str, lines: int = 20) -> str:
        try:
            text = self.log_file(name).read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:])

    def _write_state(self, state: ClusterState) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        raw = {"host": state.host, "version": state.version, "nodes": [asdict(n) for n in state.nodes]}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(raw, indent=2))
        os.replace(tmp, self.state_file)

    def _write_client_env(self, state: ClusterState) -> None:
        """``<folder>/client.env`` (mode 600): the variables a shell sources to use the cluster."""
        lines = [f"{k}={v}" for k, v in self.client_environ(state).items()]
        _write_private(self.folder / CLIENT_ENV_FILE, "\n".join(lines) + "\n")


def _all_free(state: ClusterState) -> bool:
    return all(port_free(state.host, p) for n in state.nodes for p in n.ports)


def _stop_all(pids: list[int], timeout: float = 30.0) -> None:
    """SIGTERM to every pid at once (they shut down in parallel), SIGKILL to any still alive later."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in pids:
        if not wait_exit(pid, max(deadline - time.monotonic(), 0.1)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_exit(pid, 5)


def _read_or_create_secret(path: Path) -> str:
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip()
    key = secrets.token_urlsafe(32)
    _write_private(path, key + "\n")
    return key


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds the key), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
