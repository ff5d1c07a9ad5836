"""`scripts/airflow` as a user runs it, in a fresh NEWSRAG_HOME: `up` starts Airflow 3 (LocalExecutor
on a private PostgreSQL cluster, api-server, scheduler, dag-processor, triggerer) with the project's
DAGs unpaused and the objects of airflow_settings.yaml, plus the embedded Weaviate; a news_ingest run
triggered through the REST API succeeds with them; `down` leaves no process and no listening port.

The tests share one instance and run in order (use -x): each one is a step of its life."""

from __future__ import annotations

import json
import os
import shutil
import socket
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
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

SCRIPT = REPO / "scripts" / "airflow"
DAG_IDS = {"news_ingest", "answer_quality", "prompt_release", "prompts_deploy"}
NEVER = "0 0 29 2 *"  # no scheduled run during the test: only the API starts one
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


class Local:
    """The instance under test: its folder, the script's environment and a REST client."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env = home, env
        self.api: httpx.Client | None = None
        self.up_output = ""

    def script(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(SCRIPT), *args], env=self.env, cwd=REPO, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.home / "airflow" / "local-airflow.json").read_text()))

    def weaviate(self) -> dict[str, Any]:
        return dict(json.loads((self.home / "weaviate.json").read_text()))

    def logs(self, lines: int = 40) -> str:
        """The end of every component log, for failure messages."""
        parts = []
        for log in sorted((self.home / "logs").glob("*.log")) + [self.home / "airflow" / "postgres" / "server.log"]:
            if log.exists():
                parts.append(f"== {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(parts)

    def task_logs(self, dag_id: str, run_id: str) -> str:
        files = sorted((self.home / "airflow" / "logs").glob(f"dag_id={dag_id}/run_id={run_id}/**/*.log"))
        return "\n".join(p.read_text(errors="replace") for p in files)

    def connect(self) -> httpx.Client:
        password = json.loads((self.home / "airflow" / "simple_auth_manager_passwords.json").read_text())["admin"]
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
        """Every process the instance runs: each component's whole session, PostgreSQL, Weaviate."""
        state = self.state()
        pids = [p for sid in state["components"].values() for p in processes.session_members(sid)]
        postmaster = self.home / "airflow" / "postgres" / "data" / "postmaster.pid"
        return pids + [int(postmaster.read_text().split()[0]), self.weaviate()["pid"]]


@pytest.fixture(scope="module")
def local() -> Iterator[Local]:
    home = Path(tempfile.mkdtemp(prefix="newsrag-local-airflow-"))
    home.chmod(0o755)  # as root, PostgreSQL runs as the postgres user, which must reach its folder
    registry = home / "sources.yaml"  # one small source, so that the triggered run is quick
    registry.write_text(yaml.safe_dump({"sources": [{"id": "newsroom-notes", "type": "folder",
                                                     "path": str(REPO / "examples" / "news" / "notes"),
                                                     "patterns": ["*.md"]}]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and not k.startswith("WEAVIATE_")}
    env.update({"NEWSRAG_HOME": str(home), "NEWSRAG_AIRFLOW_PORT": "0", "NEWSRAG_WEAVIATE_HTTP_PORT": "0",
                "NEWSRAG_WEAVIATE_GRPC_PORT": "0", "NEWSRAG_INGEST_SOURCES_FILE": str(registry),
                "NEWSRAG_INGEST_SCHEDULE": NEVER, "NEWSRAG_EVAL_SCHEDULE": NEVER, "NEWSRAG_INGEST_RETRIES": "0"})
    instance = Local(home, env)
    try:
        t0 = time.monotonic()
        up = instance.script("up", timeout=480)
        instance.up_output = up.stdout
        assert up.returncode == 0, f"up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}\n{instance.logs()}"
        print(f"\nscripts/airflow up: {time.monotonic() - t0:.0f}s")
        instance.connect()
        yield instance
    finally:
        down = instance.script("down", timeout=180)
        if down.returncode != 0:
            print(f"down failed:\n{down.stdout}\n{down.stderr}")
        shutil.rmtree(home, ignore_errors=True)


def test_up_prints_the_address_and_login_and_status_lists_every_process(local: Local) -> None:
    state, weaviate = local.state(), local.weaviate()
    password = json.loads((local.home / "airflow" / "simple_auth_manager_passwords.json").read_text())["admin"]
    out = local.up_output
    assert f"UI and API    http://127.0.0.1:{state['api_port']}" in out
    assert f"login         admin / {password}" in out
    assert f"NEWSRAG_HOME  {local.home}" in out

    status = local.script("status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    rows = {row["name"]: row for row in json.loads(status.stdout)}
    assert set(rows) == {*COMPONENTS, "postgres", "weaviate"}
    assert all(row["alive"] and row["pid"] for row in rows.values()), rows
    assert rows["api-server"]["port"] == state["api_port"] and rows["postgres"]["port"] == state["postgres_port"]
    assert rows["weaviate"]["port"] == weaviate["http_port"]
    assert rows["weaviate"]["note"] == "started by scripts/airflow"

    again = local.script("up")
    assert again.returncode == 0 and "already running" in again.stdout, again.stdout + again.stderr
    assert local.state()["components"] == state["components"]  # nothing was started twice

    log = local.script("logs", "scheduler", "-n", "5")
    assert log.returncode == 0 and len(log.stdout.strip().splitlines()) >= 1


def test_the_dags_are_parsed_and_unpaused(local: Local) -> None:
    dags = {d["dag_id"]: d for d in local.get("/api/v2/dags", limit=100)["dags"]}
    assert DAG_IDS <= set(dags), sorted(dags)
    assert not [d for d in DAG_IDS if dags[d]["is_paused"]], {d: dags[d]["is_paused"] for d in DAG_IDS}
    assert local.get("/api/v2/importErrors")["total_entries"] == 0


def test_the_objects_of_airflow_settings_exist(local: Local) -> None:
    assert local.get("/api/v2/pools/newsrag_embeddings")["slots"] == 2
    weaviate = local.weaviate()
    conn = local.get("/api/v2/connections/weaviate_default")
    assert (conn["conn_type"], conn["host"], conn["port"]) == ("http", "127.0.0.1", weaviate["http_port"])
    extra = json.loads(conn["extra"])
    assert (extra["grpc_port"], extra["collection"]) == (str(weaviate["grpc_port"]), "NewsChunk")
    assert local.get("/api/v2/variables/newsrag_eval_batch_size")["value"] == "100"
    assert local.get("/api/v2/variables/newsrag_eval_generator")["value"] == "extractive"


def test_a_news_ingest_run_triggered_through_the_api_succeeds(local: Local) -> None:
    assert local.api is not None
    # Its Asset event would start an evaluation (model loads on 2 cores): not this test's subject.
    assert local.api.patch("/api/v2/dags/answer_quality", json={"is_paused": True}).status_code == 200
    resp = local.api.post("/api/v2/dags/news_ingest/dagRuns", json={"logical_date": None, "conf": {}})
    assert resp.status_code == 200, resp.text
    run_id = resp.json()["dag_run_id"]
    deadline, run = time.monotonic() + 300, {"state": "queued"}
    while run["state"] not in ("success", "failed") and time.monotonic() < deadline:
        time.sleep(3)
        run = local.get(f"/api/v2/dags/news_ingest/dagRuns/{run_id}")
    assert run["state"] == "success", f"{run}\n{local.task_logs('news_ingest', run_id)[-4000:]}\n{local.logs()}"
    totals = local.get(f"/api/v2/dags/news_ingest/dagRuns/{run_id}/taskInstances/summarize/xcomEntries/return_value",
                       deserialize="true")["value"]
    # the registry of NEWSRAG_INGEST_SOURCES_FILE (one source), read at run time by plan_batches
    assert (totals["sources"], totals["sources_failed"]) == (1, 0) and totals["new"] > 0, totals
    logs = local.task_logs("news_ingest", run_id)
    assert "settings from Airflow connection weaviate_default" in logs
    assert "settings from Airflow variables: NEWSRAG_EVAL_BATCH_SIZE, NEWSRAG_EVAL_GENERATOR" in logs
    weaviate = local.weaviate()
    count = httpx.post(f"http://127.0.0.1:{weaviate['http_port']}/v1/graphql", timeout=30,
                       json={"query": "{Aggregate{NewsChunk{meta{count}}}}"}).json()
    assert count["data"]["Aggregate"]["NewsChunk"][0]["meta"]["count"] == totals["chunks_written"] > 0


def test_parse_imports_every_dag_file(local: Local) -> None:
    parsed = local.script("parse", timeout=300)
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    assert all(dag_id in parsed.stdout for dag_id in DAG_IDS), parsed.stdout


def test_down_leaves_no_process_and_no_listening_port(local: Local) -> None:
    state, weaviate = local.state(), local.weaviate()
    pids = local.pids()
    ports = [state["api_port"], state["postgres_port"], weaviate["http_port"], weaviate["grpc_port"]]
    assert len(pids) > 6 and all(processes.alive(p) for p in pids)
    if local.api is not None:
        local.api.close()
    down = local.script("down", timeout=180)
    assert down.returncode == 0, down.stdout + down.stderr + local.logs()
    assert [p for p in pids if processes.alive(p)] == [], down.stdout
    for port in ports:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still listens"
    status = local.script("status")
    assert status.returncode == 3, status.stdout
