"""`scripts/cluster up|status|down` as a user runs it, in a fresh NEWSRAG_HOME: the 3 Weaviate nodes,
Redis, PostgreSQL and Airflow 3 with the CeleryExecutor (api-server, scheduler, dag-processor,
triggerer, two Celery workers with homes of their own). Both workers register with the broker; a
news_ingest run triggered through the REST API succeeds with its tasks executed by the workers (their
logs name each task instance of the run) against the cluster (RF 3, API key, QUORUM), its state in
the `newsrag` database; `down` leaves none of the processes.

The tests share one cluster and run in order (use -x): each one is a step of its life."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from newsrag.cli import processes
from newsrag.cli.cluster_airflow import WORKERS, ClusterAirflow
from newsrag.core.settings import Settings
from newsrag.store.cluster import WeaviateCluster
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

SCRIPT = REPO / "scripts" / "cluster"
NEVER = "0 0 29 2 *"  # no scheduled run during the test: only the API starts one
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", *WORKERS, "postgres", "redis")
NODES = ("node1", "node2", "node3")


class Cluster:
    """The cluster under test: its folder, the script's environment and a REST client."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env, self.folder = home, env, home / "cluster"
        self.api: httpx.Client | None = None
        self.up_output = ""

    def script(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(SCRIPT), *args], env=self.env, cwd=REPO, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.folder / "airflow" / "local-airflow.json").read_text()))

    def nodes(self) -> dict[str, Any]:
        return dict(json.loads((self.folder / "weaviate" / "cluster.json").read_text()))

    def log(self, component: str) -> str:
        path = self.folder / "logs" / f"airflow-{component}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self, lines: int = 40) -> str:
        """The end of every component log, for failure messages."""
        return "\n".join(f"== {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-lines:])
                         for p in sorted((self.folder / "logs").glob("*.log")))

    def connect(self) -> httpx.Client:
        password = json.loads((self.folder / "airflow" / "simple_auth_manager_passwords.json").read_text())["admin"]
        base = f"http://127.0.0.1:{self.state()['api_port']}"
        resp = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=30)
        assert resp.status_code in (200, 201), resp.text
        self.api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {resp.json()['access_token']}"},
                                timeout=30)
        return self.api

    def get(self, path: str, **params: Any) -> Any:
        assert self.api is not None
        resp = self.api.get(path, params=params)
        assert resp.status_code == 200, f"GET {path}: {resp.status_code} {resp.text[:500]}"
        return resp.json()

    def pids(self) -> list[int]:
        """Every process of the cluster: each component's whole session, PostgreSQL, the nodes."""
        state = self.state()
        sessions = [*state["components"].values(), state["redis_pid"]]
        postmaster = self.folder / "airflow" / "postgres" / "data" / "postmaster.pid"
        return [p for sid in sessions for p in processes.session_members(sid)] + [
            int(postmaster.read_text().split()[0]), *(n["pid"] for n in self.nodes()["nodes"])]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    home = Path(tempfile.mkdtemp(prefix="newsrag-cluster-up-"))
    home.chmod(0o755)  # as root, PostgreSQL runs as the postgres user, which must reach its folder
    registry = home / "sources.yaml"  # two small sources: two mapped ingest tasks
    registry.write_text(yaml.safe_dump({"sources": [
        {"id": "newsroom-notes", "type": "folder", "path": str(REPO / "examples" / "news" / "notes"),
         "patterns": ["*.md"]},
        {"id": "world-brief", "type": "feed", "url": str(REPO / "examples" / "news" / "feeds" / "world-brief.xml")},
    ]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WEAVIATE_", "NEWSRAG_DATABASE"))}
    env.update({"NEWSRAG_HOME": str(home), "NEWSRAG_AIRFLOW_PORT": "0", "NEWSRAG_INGEST_SOURCES_FILE": str(registry),
                "NEWSRAG_INGEST_SCHEDULE": NEVER, "NEWSRAG_EVAL_SCHEDULE": NEVER, "NEWSRAG_INGEST_RETRIES": "0"})
    instance = Cluster(home, env)
    try:
        up = instance.script("up", timeout=480)
        instance.up_output = up.stdout
        assert up.returncode == 0, f"up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}\n{instance.logs()}"
        instance.connect()
        yield instance
    finally:
        down = instance.script("down", timeout=240)
        if down.returncode != 0:
            print(f"down failed:\n{down.stdout}\n{down.stderr}")
        shutil.rmtree(home, ignore_errors=True)


def test_up_starts_every_component_and_status_lists_them(cluster: Cluster) -> None:
    assert "Airflow is running: CeleryExecutor, workers worker-1, worker-2" in cluster.up_output
    status = cluster.script("status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    assert [(n["name"], n["ready"]) for n in report["nodes"]] == [(n, True) for n in NODES]
    rows = {row["name"]: row for row in report["airflow"]}
    assert set(rows) == set(COMPONENTS)
    assert all(row["alive"] and row["pid"] for row in rows.values()), rows
    state = cluster.state()
    assert (rows["redis"]["port"], rows["postgres"]["port"]) == (state["redis_port"], state["postgres_port"])
    text = cluster.script("status")
    assert text.returncode == 0 and all(f"{name}: running" in text.stdout for name in COMPONENTS), text.stdout


def test_both_celery_workers_are_registered_with_their_own_homes(cluster: Cluster) -> None:
    # what each worker was started with (its /proc environ is overwritten by its process title)
    airflow = ClusterAirflow(cluster.folder, {**cluster.env, **WeaviateCluster.from_settings(
        Settings(cluster.env)).client_environ()})
    base = airflow.env(cluster.state())
    for name in WORKERS:
        assert re.search(rf"{name}@\S+ ready\.", cluster.log(name)), cluster.log(name)[-3000:]
        environ = airflow.component_env(name, base)
        home = cluster.folder / "workers" / name
        assert (environ["NEWSRAG_HOME"], environ["TMPDIR"]) == (str(home), str(home / "tmp"))
        assert (home / "tmp").is_dir()
        assert environ["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert environ["NEWSRAG_DATABASE_URL"].endswith(f":{cluster.state()['postgres_port']}/newsrag")
        assert (environ["WEAVIATE_REPLICATION_FACTOR"], environ["WEAVIATE_CONSISTENCY_LEVEL"]) == ("3", "QUORUM")
    # each worker answers a ping through the broker (the Celery app of Airflow's provider)
    ping = subprocess.run([str(REPO / ".venv" / "bin" / "celery"), "--app",
                           "airflow.providers.celery.executors.celery_executor.app", "inspect", "ping", "--json"],
                          env=base, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert {name.split("@")[0] for name in json.loads(ping.stdout.strip().splitlines()[-1])} == set(WORKERS)


def test_the_weaviate_connection_points_at_the_cluster(cluster: Cluster) -> None:
    conn = cluster.get("/api/v2/connections/weaviate_default")
    first = cluster.nodes()["nodes"][0]
    assert (conn["conn_type"], conn["host"], conn["port"]) == ("http", "127.0.0.1", first["http_port"])
    assert json.loads(conn["extra"])["grpc_port"] == str(first["grpc_port"])


def test_a_news_ingest_run_executes_its_tasks_on_the_celery_workers(cluster: Cluster) -> None:
    assert cluster.api is not None
    # Its Asset event would start an evaluation (model loads on 2 cores): not this test's subject.
    assert cluster.api.patch("/api/v2/dags/answer_quality", json={"is_paused": True}).status_code == 200
    resp = cluster.api.post("/api/v2/dags/news_ingest/dagRuns", json={"logical_date": None, "conf": {}})
    assert resp.status_code == 200, resp.text
    run_id = resp.json()["dag_run_id"]
    deadline, run = time.monotonic() + 300, {"state": "queued"}
    while run["state"] not in ("success", "failed") and time.monotonic() < deadline:
        time.sleep(3)
        run = cluster.get(f"/api/v2/dags/news_ingest/dagRuns/{run_id}")
    assert run["state"] == "success", f"{run}\n{cluster.logs()}"
    instances = cluster.get(f"/api/v2/dags/news_ingest/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"]
    ran = {ti["id"] for ti in instances if ti["state"] == "success"}
    executed = {name: set(re.findall(r"Executing workload in Celery: .*?TaskInstanceDTO\(id=UUID\('([0-9a-f-]+)'\)",
                                     cluster.log(name))) for name in WORKERS}
    assert ran and ran <= executed[WORKERS[0]] | executed[WORKERS[1]], (ran, executed)
    assert not executed[WORKERS[0]] & executed[WORKERS[1]]  # each task instance ran once
    totals = cluster.get(f"/api/v2/dags/news_ingest/dagRuns/{run_id}/taskInstances/summarize/xcomEntries/"
                         "return_value", deserialize="true")["value"]
    assert (totals["sources"], totals["sources_failed"]) == (2, 0) and totals["chunks_written"] > 0, totals


def test_down_leaves_no_process(cluster: Cluster) -> None:
    pids = cluster.pids()
    assert len(pids) > 12 and all(processes.alive(p) for p in pids)
    if cluster.api is not None:
        cluster.api.close()
    down = cluster.script("down", timeout=240)
    assert down.returncode == 0, down.stdout + down.stderr + cluster.logs()
    assert [p for p in pids if processes.alive(p)] == [], down.stdout
    assert cluster.script("status").returncode == 3
