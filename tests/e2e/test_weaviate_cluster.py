"""The 3-node Weaviate cluster on loopback, as a user runs it (``scripts/cluster up|status|down``):
Raft, API-key auth with anonymous access off, collections with replication factor 3 and QUORUM
writes and reads through :class:`WeaviateStore`, a node stopped and repaired, and nothing left
running after ``down``. About a minute: startup ~10 s, repair ~5-15 s, shutdown ~5 s.

What each node holds is read from that node alone, two ways: ``GET /v1/objects/{class}/{id}``
with ``node_name`` (Weaviate answers from that node's replica) for every expected id, and a cursor
over the whole collection through that node at consistency ONE, which Weaviate serves from the
node's own replica (its router puts the local replica first), for the exact set of ids."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from newsrag.core.records import ChunkRecord, StoredObject
from newsrag.core.settings import Settings
from newsrag.store.cluster import STATE_FILE, WeaviateCluster
from newsrag.store.weaviate import WeaviateStore

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
NODES = ["node1", "node2", "node3"]
REPAIR_DEADLINE = 120.0  # async replication needs one or two 5 s rounds; this only bounds a hang


def run_script(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEWSRAG_HOME": str(home)}
    return subprocess.run([str(REPO / "scripts" / "cluster"), *args], env=env, capture_output=True, text=True,
                          timeout=300, cwd=REPO, check=False)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cluster-home")


@pytest.fixture(scope="module")
def started(home: Path) -> Iterator[tuple[WeaviateCluster, str]]:
    """``scripts/cluster up`` in a home of its own (no WEAVIATE_API_KEY: the key is generated), the
    cluster as the library sees it, and what ``up`` printed; stopped after the module."""
    up = run_script(home, "up", "--weaviate-only")  # this module is about the nodes alone
    cluster = WeaviateCluster.from_settings(Settings({**os.environ, "NEWSRAG_HOME": str(home)}))
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield cluster, up.stdout + up.stderr
    finally:
        cluster.down()


@pytest.fixture
def cluster(started: tuple[WeaviateCluster, str]) -> WeaviateCluster:
    return started[0]


def chunks(prefix: str, count: int) -> list[StoredObject]:
    return [StoredObject(str(uuid.uuid5(uuid.NAMESPACE_URL, f"{prefix}-{i}")), ChunkRecord(
        text=f"Story {prefix} {i} about the harbour line.", title=f"{prefix} {i}", doc_id=f"{prefix}-{i}",
        chunk_index=0, content_hash="h1", source_id="wire", published_at=datetime(2026, 3, 1, tzinfo=UTC)),
        [0.1 + (i % 9) / 10, 0.2, 0.3 - (i % 5) / 20]) for i in range(count)]


def node_url(cluster: WeaviateCluster, name: str) -> str:
    state = cluster.read_state()
    assert state is not None
    return state.url(state.node(name))


def holds(cluster: WeaviateCluster, name: str, collection: str, ids: set[str]) -> set[str]:
    """Which of ``ids`` the node's own replica holds (``node_name``: answered by that node)."""
    found = set()
    for object_id in ids:
        resp = httpx.get(f"{node_url(cluster, name)}/v1/objects/{collection}/{object_id}",
                         params={"node_name": name}, headers=cluster.auth_headers(), timeout=10)
        assert resp.status_code in (200, 404), resp.text
        if resp.status_code == 200:
            found.add(object_id)
    return found


def ids_on(cluster: WeaviateCluster, name: str, collection: str) -> set[str]:
    """Every id the node holds: a cursor through that node at consistency ONE (its own replica)."""
    settings = cluster.client_settings(node=name).model_copy(update={"consistency_level": "ONE"})
    with WeaviateStore(settings, collection=collection) as through_node:
        return {object_id for object_id, _ in through_node.iter_properties(["doc_id"])}


def test_up_starts_three_ready_nodes_that_refuse_anonymous_requests(started: tuple[WeaviateCluster, str],
                                                                     home: Path) -> None:
    cluster, printed = started
    status = cluster.status()
    assert status is not None and status["size"] == 3
    assert [(n["name"], n["ready"], n["members"]) for n in status["nodes"]] == [  # type: ignore[attr-defined]
        (name, True, NODES) for name in NODES]
    key = cluster.key()
    for name in NODES:
        url = f"{node_url(cluster, name)}/v1/nodes"
        reported = httpx.get(url, headers=cluster.auth_headers(), timeout=10)
        assert reported.status_code == 200
        assert sorted((n["name"], n["status"]) for n in reported.json()["nodes"]) == [(n, "HEALTHY") for n in NODES]
        assert httpx.get(url, timeout=10).status_code == 401  # anonymous access is off
        assert httpx.get(url, headers={"Authorization": "Bearer not-the-key"}, timeout=10).status_code == 401
    shown = run_script(home, "status")
    assert shown.returncode == 0 and shown.stdout.count("ready") == 3 and "sees 3/3 nodes healthy" in shown.stdout
    logs = [cluster.log_file(name).read_text() for name in NODES]
    assert all(logs) and not any(key in text for text in [printed, shown.stdout, *logs])
    assert key not in (cluster.folder / STATE_FILE).read_text()


def test_quorum_writes_go_on_with_a_node_stopped_and_the_node_is_repaired(cluster: WeaviateCluster) -> None:
    collection = f"Cluster{uuid.uuid4().hex[:8]}"
    store = WeaviateStore(cluster.client_settings(), collection=collection)  # node1, RF 3, QUORUM
    try:
        store.ensure_collection(["v"])
        assert store.client.collections.use(collection).config.get().replication_config.factor == 3
        before = chunks("before", 40)
        assert store.upsert(before, "v") == 40 and store.count() == 40
        first = {o.uuid for o in before}
        for name in NODES:
            assert holds(cluster, name, collection, first) == first
            assert ids_on(cluster, name, collection) == first

        assert cluster.stop_node("node3") is True
        during = chunks("during", 40)
        assert store.upsert(during, "v") == 40  # QUORUM: two of the three replicas answer
        every = first | {o.uuid for o in during}
        assert store.count() == 80
        for name in ("node1", "node2"):
            assert ids_on(cluster, name, collection) == every

        cluster.start_node("node3")  # back on its ports; returns when all three see each other
        # No read through node3 repairs it (node_name reads and ONE reads never do): what it
        # gains comes from async replication, which compares the replicas' hash trees.
        deadline = time.monotonic() + REPAIR_DEADLINE
        while holds(cluster, "node3", collection, every) != every and time.monotonic() < deadline:
            time.sleep(2)
        for name in NODES:
            assert holds(cluster, name, collection, every) == every
            assert ids_on(cluster, name, collection) == every
        assert store.count() == 80
    finally:
        if store.exists():
            store.drop()
        store.close()


def test_down_leaves_no_process_behind(cluster: WeaviateCluster, home: Path) -> None:
    state = cluster.read_state()
    assert state is not None
    pids = [n.pid for n in state.nodes]
    assert all(pid is not None and running(pid) for pid in pids)
    stopped = run_script(home, "down")
    assert stopped.returncode == 0 and "weaviate cluster stopped" in stopped.stdout, stopped.stderr
    assert not any(running(pid) for pid in pids if pid is not None)
    assert servers_under(home) == []
    assert run_script(home, "status").returncode == 3


def running(pid: int) -> bool:
    """Whether the pid is a live process (an exited child not yet reaped counts as gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return not fields.startswith(("Z", "X"))


def servers_under(home: Path) -> list[int]:
    """Live processes whose command line runs a weaviate-server from this home."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if str(home) in cmdline and "weaviate-server" in cmdline and running(int(proc.name)):
                found.append(int(proc.name))
    return found
