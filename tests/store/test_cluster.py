"""The loopback Weaviate cluster's configuration, offline: the ports each node gets, the environment
each node starts with, where the API key comes from (and that it shows nowhere), the state file and
stopping by pid. The cluster running for real: tests/e2e/test_weaviate_cluster.py."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from newsrag.core.errors import ConfigError, ServerError
from newsrag.core.settings import LocalWeaviateSettings, PathSettings, Settings
from newsrag.store.cluster import (
    KEY_FILE,
    ClusterNode,
    ClusterState,
    WeaviateCluster,
    node_env,
    plan_nodes,
)
from newsrag.store.server import LocalWeaviate

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
KEY = "k3y-never-shown-0123456789"


def cluster_in(folder: Path, key: str | None = KEY, size: int = 3, ready_timeout: float = 90) -> WeaviateCluster:
    server = LocalWeaviate(PathSettings(home=folder / "home"), LocalWeaviateSettings(ready_timeout=ready_timeout),
                           {"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "sk-not-for-weaviate"})
    return WeaviateCluster(folder / "cluster", server, SecretStr(key) if key else None, size)


def with_fake_server(cluster: WeaviateCluster, script: str) -> WeaviateCluster:
    """A stand-in weaviate-server (a shell script) where install() finds the binary."""
    binary = cluster.server.binary
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n" + script + "\n")
    binary.chmod(0o755)
    return cluster


def three_nodes() -> ClusterState:
    nodes = tuple(ClusterNode(f"node{i}", 8000 + i, 9000 + i, 7000 + 10 * i, 7001 + 10 * i, 8300 + 10 * i)
                  for i in (1, 2, 3))
    return ClusterState("127.0.0.1", "1.38.14", nodes)


def test_nodes_get_distinct_free_ports_and_adjacent_raft_pairs() -> None:
    nodes = plan_nodes("127.0.0.1", 3)
    assert [n.name for n in nodes] == ["node1", "node2", "node3"]
    ports = [p for n in nodes for p in n.ports]
    assert len(ports) == len(set(ports)) == 18 and all(p > 0 for p in ports)
    assert all(n.raft_rpc_port == n.raft_port + 1 for n in nodes)  # Weaviate derives it so on one host


def test_each_node_joins_the_others_by_gossip_and_raft() -> None:
    cluster = three_nodes()
    env = node_env(cluster.node("node2"), cluster, Path("/data/node2"), KEY, {"PATH": "/usr/bin"})
    assert env["CLUSTER_HOSTNAME"] == "node2"
    assert env["CLUSTER_JOIN"] == "127.0.0.1:7010,127.0.0.1:7030"  # the others' gossip ports
    assert env["RAFT_JOIN"] == "node1:8310,node2:8320,node3:8330"  # every voter, by name and Raft port
    assert env["RAFT_BOOTSTRAP_EXPECT"] == "3"
    assert (env["CLUSTER_GOSSIP_BIND_PORT"], env["CLUSTER_DATA_BIND_PORT"]) == ("7020", "7021")
    assert (env["RAFT_PORT"], env["RAFT_INTERNAL_RPC_PORT"], env["GRPC_PORT"]) == ("8320", "8321", "9002")
    assert env["PERSISTENCE_DATA_PATH"] == "/data/node2"
    assert env["CLUSTER_IN_LOCALHOST"] == "true" and env["PATH"] == "/usr/bin"


def test_each_node_takes_only_the_key_and_no_anonymous_requests() -> None:
    cluster = three_nodes()
    env = node_env(cluster.nodes[0], cluster, Path("/data/node1"), KEY,
                   {"PATH": "/usr/bin", "OPENAI_API_KEY": "sk-x", "WEAVIATE_API_KEY": "other"})
    assert env["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"] == "false"
    assert env["AUTHENTICATION_APIKEY_ENABLED"] == "true"
    assert (env["AUTHENTICATION_APIKEY_ALLOWED_KEYS"], env["AUTHENTICATION_APIKEY_USERS"]) == (KEY, "newsrag")
    assert env["AUTHORIZATION_ADMINLIST_ENABLED"] == "true" and env["AUTHORIZATION_ADMINLIST_USERS"] == "newsrag"
    assert "OPENAI_API_KEY" not in env and "WEAVIATE_API_KEY" not in env  # the edge's secrets stay out


def test_the_key_comes_from_the_roots_settings_and_the_folder_from_its_home(tmp_path: Path) -> None:
    root = Settings({"NEWSRAG_HOME": str(tmp_path / "home"), "WEAVIATE_API_KEY": KEY})
    cluster = WeaviateCluster.from_settings(root)
    assert cluster.folder == tmp_path / "home" / "cluster" / "weaviate" and cluster.size == 3
    assert cluster.key() == KEY
    assert not (cluster.folder / KEY_FILE).exists()
    assert KEY not in repr(cluster)


def test_without_a_key_one_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    cluster = cluster_in(tmp_path, key=None)
    key = cluster.key()
    assert len(key) >= 32 and cluster.key() == key == cluster_in(tmp_path, key=None).key()
    mode = stat.S_IMODE((cluster.folder / KEY_FILE).stat().st_mode)
    assert mode == 0o600


def test_a_key_weaviate_would_split_is_refused_without_showing_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="WEAVIATE_API_KEY") as info:
        cluster_in(tmp_path, key="secret-part,other-part").key()
    assert "secret-part" not in str(info.value)


def test_the_state_file_records_ports_and_pids_but_never_the_key(tmp_path: Path) -> None:
    cluster = cluster_in(tmp_path)
    cluster._write_state(three_nodes())
    assert cluster.read_state() == three_nodes()
    text = cluster.state_file.read_text()
    assert KEY not in text and json.loads(text)["nodes"][1]["raft_port"] == 8320


def test_an_unreadable_state_file_is_named(tmp_path: Path) -> None:
    cluster = cluster_in(tmp_path)
    cluster.folder.mkdir(parents=True)
    cluster.state_file.write_text("{not json")
    with pytest.raises(ServerError, match=str(cluster.state_file)):
        cluster.read_state()


def test_a_recorded_cluster_of_another_size_is_refused(tmp_path: Path) -> None:
    cluster_in(tmp_path)._write_state(three_nodes())
    with pytest.raises(ServerError, match="has 3 nodes, not 5"):
        cluster_in(tmp_path, size=5)._layout()


def test_a_stopped_layout_keeps_its_ports_while_they_are_free(tmp_path: Path) -> None:
    planned = ClusterState("127.0.0.1", "1.38.14", plan_nodes("127.0.0.1", 3))
    cluster = cluster_in(tmp_path)
    cluster._write_state(planned)
    assert cluster._layout().nodes == planned.nodes  # Raft knows its nodes by these ports


def test_down_stops_every_recorded_process_and_keeps_the_layout(tmp_path: Path) -> None:
    """Stand-in processes (sleep) recorded as nodes: down stops each by its pid."""
    sleepers = [subprocess.Popen(["sleep", "300"], start_new_session=True) for _ in range(3)]
    state = three_nodes()
    state = ClusterState(state.host, state.version,
                         tuple(ClusterNode(**{**n.__dict__, "pid": p.pid}) for n, p in zip(state.nodes, sleepers)))
    cluster = cluster_in(tmp_path)
    cluster._write_state(state)
    assert cluster.down() == [p.pid for p in sleepers]
    assert all(p.poll() is not None for p in sleepers)
    after = cluster.read_state()
    assert after is not None and [n.pid for n in after.nodes] == [None, None, None]
    assert [n.http_port for n in after.nodes] == [8001, 8002, 8003]
    assert cluster.status() is None and cluster.down() == []


def test_a_node_that_exits_during_startup_is_named_with_its_log_and_nothing_is_left_running(
        tmp_path: Path) -> None:
    cluster = with_fake_server(cluster_in(tmp_path), 'echo "raft.db: cannot open"; exit 1')
    with pytest.raises(ServerError, match=r"weaviate-server node\d exited during startup") as info:
        cluster.up()
    assert "raft.db: cannot open" in str(info.value) and KEY not in str(info.value)
    state = cluster.read_state()
    assert state is not None and [n.pid for n in state.nodes] == [None, None, None]


def test_a_cluster_that_never_comes_together_is_stopped_again(tmp_path: Path) -> None:
    spawned = tmp_path / "spawned-pids"
    cluster = with_fake_server(cluster_in(tmp_path, ready_timeout=1), f"echo $$ >> {spawned}; exec sleep 300")
    with pytest.raises(ServerError, match="did not come together within 1s"):
        cluster.up()
    pids = [int(line) for line in spawned.read_text().split()]
    assert len(pids) == 3 and not any(alive(pid) for pid in pids)
    state = cluster.read_state()
    assert state is not None and [n.pid for n in state.nodes] == [None, None, None]


def alive(pid: int) -> bool:
    """A live process (an exited child not yet reaped counts as gone)."""
    try:
        return not Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].startswith(("Z", "X"))
    except FileNotFoundError:
        return False


def test_stopping_an_unknown_node_names_the_nodes(tmp_path: Path) -> None:
    cluster = cluster_in(tmp_path)
    cluster._write_state(three_nodes())
    with pytest.raises(ServerError, match="no node 'node7'.*node1, node2, node3"):
        cluster.stop_node("node7")


def test_clients_are_pointed_at_the_first_node_with_replication_and_quorum(tmp_path: Path) -> None:
    cluster = cluster_in(tmp_path)
    cluster._write_state(three_nodes())
    env = cluster.client_environ()
    assert env == {"WEAVIATE_URL": "http://127.0.0.1:8001", "WEAVIATE_GRPC_URL": "http://127.0.0.1:9001",
                   "WEAVIATE_API_KEY": KEY, "WEAVIATE_REPLICATION_FACTOR": "3",
                   "WEAVIATE_CONSISTENCY_LEVEL": "QUORUM"}
    settings = cluster.client_settings(node="node2")
    assert (settings.url, settings.replication_factor, settings.consistency_level) == (
        "http://127.0.0.1:8002", 3, "QUORUM")
    assert settings.api_key is not None and settings.api_key.get_secret_value() == KEY
    assert KEY not in repr(settings)


def cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "NEWSRAG_HOME": str(home), "WEAVIATE_API_KEY": KEY, **env}
    return subprocess.run([sys.executable, "-m", "newsrag", "cluster", *args], env=full, capture_output=True, check=False,
                          text=True, timeout=120, cwd=REPO)


def test_cli_status_without_a_cluster_exits_3(tmp_path: Path) -> None:
    result = cli(tmp_path, "status")
    assert result.returncode == 3 and "not running" in result.stdout
    assert cli(tmp_path, "down").stdout.strip() == "weaviate cluster was not running"


def test_cli_up_without_go_names_the_install_command_and_never_the_key(tmp_path: Path) -> None:
    result = cli(tmp_path, "up", PATH=str(tmp_path), NEWSRAG_WEAVIATE_BUILD_CACHE=str(tmp_path / "no-cache"))
    assert result.returncode == 1, result.stderr
    assert "go install github.com/weaviate/weaviate/cmd/weaviate-server" in result.stderr
    assert "Traceback" not in result.stderr and KEY not in result.stdout + result.stderr
