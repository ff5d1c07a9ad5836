"""`scripts/cluster up|status|down` as a user runs it, in a fresh NEWSRAG_HOME: the 3 Weaviate nodes,
Redis, PostgreSQL, Airflow 3 with the CeleryExecutor (api-server, scheduler, dag-processor,
triggerer, two Celery workers with homes of their own) and the app under uvicorn with two workers.

The loop on that cluster (#13 item 4): the registry holds three sources, two of which carry the
same two stories (a wire feed and its syndicated copy). A news_ingest run triggered through the
REST API fans its tasks out over both workers (their logs name each task instance); every story is
stored once, and every node holds exactly the run's objects. The run's Asset event starts
answer_quality, whose history lands in the shared `newsrag` database; prompt_release promotes a
candidate template; and the app, not restarted, answers with citations and the new version.
`down` leaves none of the processes.

The tests share one cluster and run in order (use -x): each one is a step of its life."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
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
from newsrag.core.templates import load_template, templates_dir
from newsrag.store.cluster import WeaviateCluster
from newsrag.store.weaviate import WeaviateStore
from tests.conftest import REPO
from tests.e2e.fakes import obedient_llm
from tests.embeddings.fake_providers import FakeProviderServer

pytestmark = pytest.mark.e2e

SCRIPT = REPO / "scripts" / "cluster"
NEVER = "0 0 29 2 *"  # no scheduled run during the test: only the API starts one
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", *WORKERS, "app", "postgres", "redis")
FEEDS = REPO / "examples" / "news" / "feeds"
GOLDEN = REPO / "examples" / "news" / "questions.jsonl"
SYNDICATED = 2  # stories of world-brief that the syndicate feed carries too
NODES = ("node1", "node2", "node3")


class Cluster:
    """The cluster under test: its folder, the script's environment and a REST client."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env, self.folder = home, env, home / "cluster"
        self.api: httpx.Client | None = None
        self.up_output = ""
        self.runs: dict[str, str] = {}
        self.chunks = 0

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

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        assert self.api is not None
        resp = self.api.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        assert resp.status_code == 200, resp.text
        return str(resp.json()["dag_run_id"])

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> dict[str, Any]:
        deadline, run = time.monotonic() + timeout, {"state": "queued"}
        while run["state"] not in ("success", "failed") and time.monotonic() < deadline:
            time.sleep(3)
            run = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        assert run["state"] == "success", f"{dag_id} {run['state']}\n{self.failed_logs(dag_id, run_id)}\n{self.logs()}"
        return dict(run)

    def failed_logs(self, dag_id: str, run_id: str) -> str:
        """The end of the log of each failed task instance of the run."""
        assert self.api is not None
        out = []
        for ti in self.task_instances(dag_id, run_id):
            if ti["state"] in ("failed", "upstream_failed"):
                index = f"/{ti['map_index']}" if ti.get("map_index", -1) >= 0 else ""
                resp = self.api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}"
                                    f"/logs/{ti['try_number']}", params={"map_index": ti.get("map_index", -1)},
                                    headers={"Accept": "text/plain"})
                out.append(f"== {ti['task_id']}{index} ({ti['state']})\n{resp.text[-4000:]}")
        return "\n".join(out)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"])

    def executed(self) -> dict[str, set[str]]:
        """The task instance ids each worker's log says it executed."""
        pattern = r"Executing workload in Celery: .*?TaskInstanceDTO\(id=UUID\('([0-9a-f-]+)'\)"
        return {name: set(re.findall(pattern, self.log(name))) for name in WORKERS}

    def weaviate(self) -> WeaviateCluster:
        return WeaviateCluster.from_settings(Settings(self.env))

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``newsrag ARGS`` as a user of the cluster runs it: with the cluster's database and nodes."""
        env = {**self.env, **self.weaviate().client_environ(), "NEWSRAG_DATABASE_URL": self.database_url()}
        return subprocess.run([str(REPO / ".venv" / "bin" / "newsrag"), *args], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=300, check=False)

    def database_url(self) -> str:
        airflow = ClusterAirflow(self.folder, self.env)
        return airflow.executor_env(self.state())["NEWSRAG_DATABASE_URL"]

    def ask(self, question: str) -> dict[str, Any]:
        resp = httpx.post(f"http://127.0.0.1:{self.state()['app_port']}/v1/ask", json={"question": question},
                          timeout=120)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def pids(self) -> list[int]:
        """Every process of the cluster: each component's whole session, PostgreSQL, the nodes."""
        state = self.state()
        sessions = [*state["components"].values(), state["redis_pid"]]
        postmaster = self.folder / "airflow" / "postgres" / "data" / "postmaster.pid"
        return [p for sid in sessions for p in processes.session_members(sid)] + [
            int(postmaster.read_text().split()[0]), *(n["pid"] for n in self.nodes()["nodes"])]


def syndicate_feed(path: Path) -> Path:
    """The first stories of world-brief under another source's links and ids: a syndicated copy."""
    text = (FEEDS / "world-brief.xml").read_text()
    items = re.findall(r"<item>.*?</item>", text, re.DOTALL)[:SYNDICATED]
    copies = [i.replace("worldbrief.example", "syndicate.example").replace("worldbrief:story", "syndicate:story")
              for i in items]
    head = text[:text.index("<item>")].replace("World Brief", "Syndicate Wire")
    path.write_text(head + "\n".join(copies) + "\n  </channel>\n</rss>\n")
    return path


def golden_subset(path: Path) -> Path:
    """The example questions about these sources' stories (and the unanswerable ones): the golden
    set of a deployment that ingests only them. Not about a syndicated story: whichever copy wins
    the race is stored, and a golden case names one URL."""
    syndicated = re.findall(r"<item>.*?<link>(.*?)</link>", (FEEDS / "world-brief.xml").read_text(), re.DOTALL)[:SYNDICATED]
    lines = [line for line in GOLDEN.read_text().splitlines()
             if all(u.startswith(("https://worldbrief.example/", "notes/")) and u not in syndicated
                    for u in json.loads(line)["gold_urls"])]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeProviderServer]:
    server = FakeProviderServer()
    server.route("/v1/chat/completions", obedient_llm)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def cluster(llm: FakeProviderServer) -> Iterator[Cluster]:
    home = Path(tempfile.mkdtemp(prefix="newsrag-cluster-up-"))
    home.chmod(0o755)  # as root, PostgreSQL runs as the postgres user, which must reach its folder
    registry = home / "sources.yaml"  # three sources, two of them carrying the same stories
    registry.write_text(yaml.safe_dump({"sources": [
        {"id": "newsroom-notes", "type": "folder", "path": str(REPO / "examples" / "news" / "notes"),
         "patterns": ["*.md"]},
        {"id": "world-brief", "type": "feed", "url": str(FEEDS / "world-brief.xml")},
        {"id": "syndicate-wire", "type": "feed", "url": str(syndicate_feed(home / "syndicate.xml"))},
    ]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WEAVIATE_", "NEWSRAG_DATABASE"))}
    env.update({"NEWSRAG_HOME": str(home), "NEWSRAG_AIRFLOW_PORT": "0", "NEWSRAG_INGEST_SOURCES_FILE": str(registry),
                "NEWSRAG_INGEST_SCHEDULE": NEVER, "NEWSRAG_EVAL_SCHEDULE": NEVER, "NEWSRAG_INGEST_RETRIES": "2",
                "NEWSRAG_INGEST_RETRY_DELAY": "5",
                # a killed worker's task is noticed after 30 s without a heartbeat (default 300)
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
                # what a shared volume would be across hosts: the reports of every worker in one place
                "NEWSRAG_EVAL_REPORTS_DIR": str(home / "reports"), "NEWSRAG_EVAL_GOLDEN_PATH": str(golden_subset(home / "golden.jsonl")),
                "NEWSRAG_RELEASE_SAMPLE": "6", "NEWSRAG_APP_GENERATOR": "openai", "NEWSRAG_APP_PROMPT_TTL_SECONDS": "1",
                "OPENAI_BASE_URL": llm.url("/v1"), "OPENAI_API_KEY": "sk-test-local"})
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


def test_a_news_ingest_run_fans_out_over_both_workers_and_stores_each_story_once(cluster: Cluster) -> None:
    run_id = cluster.trigger("news_ingest")
    cluster.wait_run("news_ingest", run_id)
    cluster.runs["news_ingest"] = run_id
    instances = cluster.task_instances("news_ingest", run_id)
    ran = {ti["id"] for ti in instances if ti["state"] == "success"}
    executed = cluster.executed()
    assert ran and ran <= executed[WORKERS[0]] | executed[WORKERS[1]], (ran, executed)
    assert not executed[WORKERS[0]] & executed[WORKERS[1]]  # each task instance ran once
    mapped = {ti["id"] for ti in instances if ti["task_id"] == "ingest_batch"}
    assert len(mapped) == 3 and all(ran & executed[name] for name in WORKERS), executed  # both workers ran tasks
    totals = cluster.get(f"/api/v2/dags/news_ingest/dagRuns/{run_id}/taskInstances/summarize/xcomEntries/"
                         "return_value", deserialize="true")["value"]
    assert (totals["sources"], totals["sources_failed"], totals["duplicates"]) == (3, 0, SYNDICATED), totals
    cluster.chunks = totals["chunks_written"]
    stored = docs_by_source(cluster)
    assert set(stored) == {"newsroom-notes", "world-brief", "syndicate-wire"} - {loser(stored)}, stored
    copies = [d for d in stored.get(winner(stored), {}).values() if d["also_sources"]]
    assert len(copies) == SYNDICATED and all(set(d["also_sources"]) == {loser(stored)} for d in copies), stored


def docs_by_source(cluster: Cluster) -> dict[str, dict[str, dict[str, Any]]]:
    """{source: {doc_id: {also_sources}}} over the stored chunks (QUORUM reads through node1)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    with WeaviateStore(cluster.weaviate().client_settings()) as store:
        for _, props in store.iter_properties(["source_id", "doc_id", "also_sources"]):
            out.setdefault(props["source_id"], {})[props["doc_id"]] = {"also_sources": props.get("also_sources") or []}
    return out


def winner(stored: dict[str, Any]) -> str:
    return "world-brief" if "syndicate-wire" not in stored else "syndicate-wire"


def loser(stored: dict[str, Any]) -> str:
    return "syndicate-wire" if winner(stored) == "world-brief" else "world-brief"


def test_every_node_holds_exactly_the_objects_of_the_run(cluster: Cluster) -> None:
    weaviate = cluster.weaviate()
    with WeaviateStore(weaviate.client_settings()) as store:
        quorum = {object_id for object_id, _ in store.iter_properties(["doc_id"])}
        assert store.count() == len(quorum) == cluster.chunks > 0
    for name in NODES:  # a cursor at consistency ONE through a node reads that node's own replica
        settings = weaviate.client_settings(node=name).model_copy(update={"consistency_level": "ONE"})
        with WeaviateStore(settings) as through_node:
            assert {object_id for object_id, _ in through_node.iter_properties(["doc_id"])} == quorum, name


def test_the_asset_event_starts_answer_quality_on_the_workers(cluster: Cluster) -> None:
    deadline, triggered = time.monotonic() + 180, list[dict[str, Any]]()
    while not triggered and time.monotonic() < deadline:
        runs = cluster.get("/api/v2/dags/answer_quality/dagRuns")["dag_runs"]
        triggered = [r for r in runs if r["run_type"] == "asset_triggered"]
        time.sleep(0 if triggered else 3)
    assert triggered, f"no asset_triggered answer_quality run\n{cluster.logs()}"
    cluster.wait_run("answer_quality", triggered[0]["dag_run_id"], timeout=600)
    ran = {ti["id"] for ti in cluster.task_instances("answer_quality", triggered[0]["dag_run_id"])
           if ti["state"] == "success"}
    assert ran and ran <= set().union(*cluster.executed().values())
    from newsrag.evaluation.history import HistoryStore

    with HistoryStore(cluster.database_url()) as history:  # the shared database, not a worker's disk
        runs = history.list_runs()
    assert [r.status for r in runs] == ["ok"] and runs[0].index.object_count == cluster.chunks
    assert (cluster.home / "reports" / runs[0].run_id / "report.html").is_file()


def test_prompt_release_promotes_a_candidate_and_the_app_answers_with_it(cluster: Cluster,
                                                                        llm: FakeProviderServer) -> None:
    v1 = load_template(templates_dir() / "news-answer" / "1.yaml")
    folder = cluster.home / "prompts" / "news-answer"
    folder.mkdir(parents=True)
    (folder / "2.yaml").write_text(yaml.safe_dump({**v1.model_dump(mode="json"), "version": "2",
                                                   "system": v1.system + "Be concise.\n"}, sort_keys=False))
    deployed = cluster.cli("prompts", "deploy", str(folder.parent))
    assert deployed.returncode == 0 and "registered news-answer@2" in deployed.stdout, deployed.stdout + deployed.stderr
    question = json.loads((cluster.home / "golden.jsonl").read_text().splitlines()[0])["question"]
    before = [cluster.ask(question) for _ in range(4)]  # both uvicorn workers, most likely
    assert {(a["prompt_version"], a["generator"]) for a in before} == {("1", "openai")}
    assert all(a["citations"] for a in before)

    run_id = cluster.trigger("prompt_release", {"name": "news-answer", "version": "2"})
    cluster.wait_run("prompt_release", run_id, timeout=600)
    states = {ti["task_id"]: ti["state"] for ti in cluster.task_instances("prompt_release", run_id)}
    assert states["promote"] == "success" and states["reject_after_eval"] == "skipped", states
    time.sleep(1.5)  # past the app's prompt TTL (1 s here); the app is not restarted
    after = [cluster.ask(question) for _ in range(4)]
    assert {(a["prompt_name"], a["prompt_version"]) for a in after} == {("news-answer", "2")}
    assert all(a["citations"] for a in after)
    assert "Be concise." in llm.requests_to("/v1/chat/completions")[-1].json["messages"][0]["content"]


def content_keys(cluster: Cluster) -> list[tuple[str, int]]:
    """What is stored, independent of which syndicated copy won: (content hash, chunk index), sorted."""
    with WeaviateStore(cluster.weaviate().client_settings()) as store:
        return sorted((p["content_hash"], p["chunk_index"]) for _, p in store.iter_properties(["content_hash", "chunk_index"]))


def ids_by_node(cluster: Cluster) -> dict[str, set[str]]:
    weaviate = cluster.weaviate()
    out = {}
    for name in NODES:
        settings = weaviate.client_settings(node=name).model_copy(update={"consistency_level": "ONE"})
        with WeaviateStore(settings) as through_node:
            out[name] = {object_id for object_id, _ in through_node.iter_properties(["doc_id"])}
    return out


def lose_the_store(cluster: Cluster) -> list[tuple[str, int]]:
    """Drop the collection (its state rows are bound to the old generation, so the next run
    re-ingests everything) and return what one clean run stored; answer_quality is paused so the
    runs' Asset events start nothing else."""
    assert cluster.api is not None
    assert cluster.api.patch("/api/v2/dags/answer_quality", json={"is_paused": True}).status_code == 200
    clean = content_keys(cluster)
    with WeaviateStore(cluster.weaviate().client_settings()) as store:
        store.drop()
    return clean


def running_ingest_task(cluster: Cluster, run_id: str, timeout: float = 180) -> tuple[str, dict[str, Any]]:
    """(the worker, the task instance) of the first ingest_batch seen running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ti in cluster.task_instances("news_ingest", run_id):
            if ti["task_id"] == "ingest_batch" and ti["state"] == "running":
                owners = [name for name, ids in cluster.executed().items() if ti["id"] in ids]
                if owners:
                    return owners[0], ti
        time.sleep(0.5)
    raise AssertionError(f"no ingest_batch task ran within {timeout:.0f}s\n{cluster.logs()}")


def test_a_worker_killed_mid_task_is_retried_and_the_run_converges(cluster: Cluster) -> None:
    clean = lose_the_store(cluster)
    run_id = cluster.trigger("news_ingest")
    victim, ti = running_ingest_task(cluster, run_id)
    session = cluster.state()["components"][victim]
    members = processes.session_members(session)
    for pid in members:  # the host is gone: the worker, its task supervisors and their tasks at once
        os.kill(pid, signal.SIGKILL)
    cluster.wait_run("news_ingest", run_id, timeout=600)
    # each try of a task instance has an id of its own (Airflow 3)
    retried = next(t for t in cluster.task_instances("news_ingest", run_id)
                   if (t["task_id"], t["map_index"]) == (ti["task_id"], ti["map_index"]))
    assert retried["try_number"] >= 2 and retried["state"] == "success", retried
    survivor = next(name for name in WORKERS if name != victim)
    assert retried["id"] != ti["id"] and retried["id"] in cluster.executed()[survivor]  # the retry ran there
    assert content_keys(cluster) == clean
    held = ids_by_node(cluster)
    assert held["node1"] == held["node2"] == held["node3"] and len(held["node1"]) == len(clean)
    restarted = cluster.script("restart", victim)  # as a supervisor would bring the host back
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr


def test_a_weaviate_node_stopped_mid_ingest_is_repaired_to_the_same_objects(cluster: Cluster) -> None:
    clean = lose_the_store(cluster)
    weaviate = cluster.weaviate()
    run_id = cluster.trigger("news_ingest")
    deadline = time.monotonic() + 300
    with WeaviateStore(weaviate.client_settings()) as store:
        while not (store.exists() and store.count() > 0) and time.monotonic() < deadline:
            time.sleep(0.3)
    assert weaviate.stop_node("node3") is True  # mid-ingest: the first objects are in, the rest are not
    cluster.wait_run("news_ingest", run_id, timeout=600)  # QUORUM writes go on with two of three
    weaviate.start_node("node3")
    deadline = time.monotonic() + 180  # async replication repairs node3 (5 s rounds)
    while len(set(map(frozenset, ids_by_node(cluster).values()))) > 1 and time.monotonic() < deadline:
        time.sleep(3)
    held = ids_by_node(cluster)
    assert held["node1"] == held["node2"] == held["node3"] and len(held["node3"]) == len(clean)
    assert content_keys(cluster) == clean


@pytest.mark.parametrize("part", ["postgres", "redis"])
def test_postgres_or_redis_restarted_mid_run_loses_and_duplicates_nothing(cluster: Cluster, part: str) -> None:
    clean = lose_the_store(cluster)
    run_id = cluster.trigger("news_ingest")
    running_ingest_task(cluster, run_id)
    restarted = cluster.script("restart", part)  # the tasks in flight lose their connections
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    cluster.connect()  # a new token: the api-server's sessions were on the old connections
    cluster.wait_run("news_ingest", run_id, timeout=600)
    assert content_keys(cluster) == clean
    held = ids_by_node(cluster)
    assert held["node1"] == held["node2"] == held["node3"] and len(held["node1"]) == len(clean)
    status = cluster.script("status", "--json")  # every component lived through it
    assert status.returncode == 0, status.stdout + status.stderr


def test_down_leaves_no_process(cluster: Cluster) -> None:
    pids = cluster.pids()
    assert len(pids) > 12 and all(processes.alive(p) for p in pids)
    if cluster.api is not None:
        cluster.api.close()
    down = cluster.script("down", timeout=240)
    assert down.returncode == 0, down.stdout + down.stderr + cluster.logs()
    assert [p for p in pids if processes.alive(p)] == [], down.stdout
    assert cluster.script("status").returncode == 3
