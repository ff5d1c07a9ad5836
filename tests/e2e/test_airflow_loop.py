"""The whole loop on a REAL running Airflow 3 (``airflow standalone``: scheduler, dag-processor,
api-server, triggerer, LocalExecutor on SQLite) in a temp AIRFLOW_HOME:

news_ingest (triggered through the REST API) fills a fresh Weaviate collection with the example
corpus served over HTTP -> its Asset event schedules answer_quality by itself -> a report is written
-> prompt_release (triggered through the API) promotes a candidate template -> the app, reading the
same prompt registry, serves answers with the new version.

The tests share one Airflow and run in order (use -x): each one is a step of the loop."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, FeedServer
from tests.e2e.fakes import obedient_llm
from tests.ingest.feedgen import item, rss

pytestmark = pytest.mark.e2e

VENV_BIN = Path(sys.executable).parent
GOLDEN = REPO / "examples" / "news" / "questions.jsonl"
FEEDS = {"metro-daily": ("metro-daily.xml", "application/rss+xml"),
         "tech-wire": ("tech-wire.atom", "application/atom+xml"),
         "world-brief": ("world-brief.xml", "application/rss+xml")}
NEVER = "0 0 29 2 *"  # no scheduled run during the test: only the API and the Asset start runs
TIMINGS: dict[str, float] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Airflow:
    """A running ``airflow standalone`` and a small client for its REST API."""

    def __init__(self, home: Path, env: dict[str, str], port: int) -> None:
        self.home, self.env, self.port = home, env, port
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.token: str | None = None
        self.log = home / "standalone.log"

    # -- process -------------------------------------------------------------------------------
    def cli(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run([str(VENV_BIN / "airflow"), *args], env=self.env, capture_output=True, text=True,
                                timeout=timeout, cwd=REPO, check=False)
        assert result.returncode == 0, f"airflow {' '.join(args)}: {result.stderr[-3000:]}"
        return result.stdout

    def start(self) -> None:
        def child() -> None:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

        out = open(self.log, "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([str(VENV_BIN / "airflow"), "standalone"], env=self.env, cwd=self.home,
                                     stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=child)  # noqa: PLW1509 - SIGINT may be ignored (background shell)
        out.close()

    def descendants(self) -> list[Any]:
        import psutil

        if self.proc is None:
            return []
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        import psutil

        if self.proc is None:
            return
        children = self.descendants()
        pgid = self.proc.pid  # start_new_session: the parent leads its own process group
        for sig, wait in ((signal.SIGINT, 30.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        # Children that left the group (or outlived the parent): end them by pid.
        for p in children:
            try:
                if p.is_running():
                    p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(children, timeout=10)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc = None

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    # -- API -----------------------------------------------------------------------------------
    def request(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        resp = httpx.request(method, self.base + path, headers=headers, timeout=30, **kw)
        assert resp.status_code < 300, f"{method} {path}: {resp.status_code} {resp.text[:1000]}"
        return resp.json() if resp.content else None

    def wait_ready(self, timeout: float = 180) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, "standalone exited:\n" + self.log_tail()
            try:
                resp = httpx.post(self.base + "/auth/token", json={"username": "admin", "password": "admin"},
                                  timeout=5)
                if resp.status_code in (200, 201):
                    self.token = resp.json()["access_token"]
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise AssertionError("API not ready:\n" + self.log_tail())

    def wait_dags(self, dag_ids: set[str], timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        seen: set[str] = set()
        while time.monotonic() < deadline:
            seen = {d["dag_id"] for d in self.request("GET", "/api/v2/dags", params={"limit": 100})["dags"]}
            if dag_ids <= seen:
                return
            time.sleep(2)
        errors = self.request("GET", "/api/v2/importErrors")
        raise AssertionError(f"DAGs not parsed: have {seen}; import errors: {errors}\n" + self.log_tail())

    def unpause(self, dag_id: str, paused: bool = False) -> None:
        assert self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": paused})["is_paused"] is paused

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        run = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        return str(run["dag_run_id"])

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"])

    def wait_run(self, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, "standalone exited:\n" + self.log_tail()
            run = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(3)
        raise AssertionError(f"{dag_id}/{run_id} still {run.get('state')} after {timeout}s: {self.task_states(dag_id, run_id)}")

    def task_states(self, dag_id: str, run_id: str) -> list[tuple[str, Any, Any]]:
        tis = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return [(t["task_id"], t.get("map_index"), t["state"]) for t in tis]

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        """A task's return value, read through the REST API."""
        entry = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
                                    "/xcomEntries/return_value", params={"deserialize": "true"})
        return entry["value"]

    def task_logs(self, dag_id: str, run_id: str) -> str:
        """The task log files of a run (for failure messages)."""
        logs = sorted((self.home / "logs").glob(f"dag_id={dag_id}/run_id={run_id}/**/*.log"))
        return "\n".join(f"== {p.relative_to(self.home)}\n{p.read_text(errors='replace')[-2500:]}" for p in logs)

    def assert_success(self, dag_id: str, run: dict[str, Any]) -> None:
        assert run["state"] == "success", (f"{dag_id} {run['dag_run_id']}: {run['state']} "
                                           f"{self.task_states(dag_id, run['dag_run_id'])}\n"
                                           + self.task_logs(dag_id, run["dag_run_id"]))


@pytest.fixture(scope="module")
def loop(weaviate_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Airflow standalone with newsrag's DAGs, a fresh collection, fixture feeds and a fake LLM."""
    from tests.embeddings.fake_providers import FakeProviderServer

    tmp = tmp_path_factory.mktemp("airflow-loop")
    home = tmp / "airflow"
    home.mkdir()
    collection = f"TAirflowLoop{uuid.uuid4().hex[:8]}"

    feeds = FeedServer()
    for filename, ctype in FEEDS.values():
        feeds.routes[f"/{filename}"] = ((REPO / "examples" / "news" / "feeds" / filename).read_bytes(), ctype)
    news = REPO / "examples" / "news"
    sources: list[dict[str, Any]] = [{"id": sid, "type": "feed", "url": feeds.url(f"/{fn}")} for sid, (fn, _) in FEEDS.items()]
    # The rest of the example corpus (the golden questions cover it too) is read from disk.
    sources += [{"id": "archive", "type": "jsonl", "path": str(news / "archive.jsonl"),
                 "fields": {"url": "url", "title": "title", "text": "text", "published": "published",
                            "author": "authors"}},
                {"id": "newsroom-notes", "type": "folder", "path": str(news / "notes"), "patterns": ["*.md"]}]
    registry_file = tmp / "sources.yaml"
    registry_file.write_text(yaml.safe_dump({"sources": sources}))

    llm = FakeProviderServer()
    llm.route("/v1/chat/completions", obedient_llm)

    slack_path = f"/services/T0/B0/e2e-{uuid.uuid4().hex}"  # the webhook URL is a secret
    slack: list[str] = []

    def slack_hook(h: Any) -> None:
        slack.append(json.loads(h.rfile.read(int(h.headers["Content-Length"])))["text"])
        h.send_response(200)
        h.end_headers()

    feeds.routes[slack_path] = slack_hook

    prompt_registry = tmp / "prompt-registry.sqlite"
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"admin": "admin"}))
    port = free_port()

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONPATH": str(REPO),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        # newsrag
        "NEWSRAG_HOME": os.environ["NEWSRAG_HOME"],  # the session's weaviate-server state file
        "WEAVIATE_COLLECTION": collection,
        "NEWSRAG_FETCH_ALLOW_PRIVATE": "true",
        "NEWSRAG_INGEST_SOURCES_FILE": str(registry_file),
        "NEWSRAG_INGEST_RETRIES": "0",
        "NEWSRAG_INGEST_SCHEDULE": NEVER,
        "NEWSRAG_EVAL_SCHEDULE": NEVER,
        "NEWSRAG_EVAL_HISTORY_URL": str(tmp / "history.sqlite"),
        "NEWSRAG_EVAL_REPORTS_DIR": str(tmp / "reports"),
        "NEWSRAG_EVAL_GOLDEN_PATH": str(GOLDEN),
        "NEWSRAG_EVAL_BATCH_SIZE": "100",  # one evaluate task: each task process loads the model
        "NEWSRAG_RELEASE_REGISTRY": str(prompt_registry),
        "NEWSRAG_RELEASE_SAMPLE": "6",
        "NEWSRAG_NOTIFY_SLACK_WEBHOOK_URL": feeds.url(slack_path),
        "OPENAI_BASE_URL": llm.url("/v1"),
        "OPENAI_API_KEY": "sk-test-local",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    })
    af = Airflow(home, env, port)
    state: dict[str, Any] = {"airflow": af, "collection": collection, "tmp": tmp, "feeds": feeds, "llm": llm,
                             "prompt_registry": prompt_registry, "reports": tmp / "reports",
                             "registry_file": registry_file, "slack": slack, "slack_path": slack_path}
    try:
        t0 = time.monotonic()
        af.cli("db", "migrate")
        af.cli("pools", "set", "newsrag_embeddings", "2", "newsrag embeddings")
        TIMINGS["0 db migrate + pool"] = time.monotonic() - t0
        t0 = time.monotonic()
        af.start()
        af.wait_ready()
        TIMINGS["1a api ready"] = time.monotonic() - t0
        af.wait_dags({"news_ingest", "answer_quality", "prompt_release"})
        TIMINGS["1b dags parsed"] = time.monotonic() - t0
        yield state
    finally:
        af.stop()
        feeds.close()
        llm.close()
        from newsrag.core.settings import Settings
        from newsrag.store.weaviate import WeaviateStore

        with WeaviateStore(Settings(), collection=collection) as store:
            if store.exists():
                store.drop()
        shutil.rmtree(home / "logs", ignore_errors=True)
        print("\nairflow loop timings (s): " + ", ".join(f"{k}={v:.1f}" for k, v in sorted(TIMINGS.items())))


def test_news_ingest_triggered_through_the_api_fills_weaviate(loop: dict[str, Any]) -> None:
    af: Airflow = loop["airflow"]
    for dag_id in ("news_ingest", "answer_quality", "prompt_release"):
        af.unpause(dag_id)
    t0 = time.monotonic()
    run_id = af.trigger("news_ingest")
    run = af.wait_run("news_ingest", run_id, timeout=300)
    TIMINGS["2 news_ingest run"] = time.monotonic() - t0
    af.assert_success("news_ingest", run)
    loop["ingest_run"] = run
    totals = af.xcom("news_ingest", run_id, "summarize")
    assert totals["sources"] == 5 and totals["sources_failed"] == 0, f"{totals}\n" + af.task_logs("news_ingest", run_id)
    assert all(loop["feeds"].hits.get(f"/{fn}", 0) >= 1 for fn, _ in FEEDS.values())  # fetched over HTTP

    from newsrag.core.settings import Settings
    from newsrag.store.weaviate import WeaviateStore

    with WeaviateStore(Settings(), collection=loop["collection"]) as store:
        assert store.count() > 0
        per_source: dict[str, int] = {}
        for _, props in store.iter_properties(["source_id"]):
            per_source[props["source_id"]] = per_source.get(props["source_id"], 0) + 1
    assert set(per_source) == {*FEEDS, "archive", "newsroom-notes"}, per_source
    assert all(n > 0 for n in per_source.values())
    assert sum(per_source.values()) == totals["chunks_written"] == totals["chunks_embedded"] + totals["chunks_cached"]
    loop["chunks"] = sum(per_source.values())
    print(f"\ningested chunks per source: {per_source}")


def test_the_asset_event_schedules_answer_quality_which_writes_a_report(loop: dict[str, Any]) -> None:
    af: Airflow = loop["airflow"]
    assert "ingest_run" in loop, "needs the news_ingest step"
    t0 = time.monotonic()
    deadline = time.monotonic() + 120
    triggered: list[dict[str, Any]] = []
    while not triggered and time.monotonic() < deadline:
        triggered = [r for r in af.runs("answer_quality") if r["run_type"] == "asset_triggered"]
        if not triggered:
            time.sleep(2)
    assert triggered, f"no asset_triggered answer_quality run: {af.runs('answer_quality')}\n" + af.log_tail()
    assert all(r["run_type"] == "asset_triggered" for r in af.runs("answer_quality"))  # nothing else started it
    TIMINGS["4a asset run appeared"] = time.monotonic() - t0
    run = af.wait_run("answer_quality", triggered[0]["dag_run_id"], timeout=420)
    TIMINGS["4b answer_quality run"] = time.monotonic() - t0
    af.assert_success("answer_quality", run)

    from newsrag.evaluation.history import HistoryStore

    with HistoryStore(str(loop["tmp"] / "history.sqlite")) as history:
        runs = history.list_runs()
    assert len(runs) == 1 and runs[0].status == "ok"
    assert runs[0].index.collection == loop["collection"] and runs[0].index.object_count == loop["chunks"]
    report = loop["reports"] / runs[0].run_id / "report.html"
    assert report.is_file() and (report.parent / "report.json").is_file()
    saved = json.loads((report.parent / "report.json").read_text())
    assert saved["aggregates"]["hit@k"]["mean"] > 0


def test_prompt_release_through_the_api_reaches_the_app(loop: dict[str, Any], embedder: Any) -> None:
    af: Airflow = loop["airflow"]
    from newsrag.core.templates import load_template, templates_dir
    from newsrag.prompts.registry import PromptRegistry

    v1 = load_template(templates_dir() / "news-answer" / "1.yaml")
    registry = PromptRegistry(loop["prompt_registry"])
    try:
        registry.sync()
        assert registry.validate("news-answer", "1") == []
        registry.promote("news-answer", "1", who="setup")
        registry.register(v1.model_copy(update={"version": "2", "system": v1.system + "Be concise.\n"}))
        assert registry.active("news-answer").active == "1"

        from fastapi.testclient import TestClient

        from newsrag.app.main import create_app
        from newsrag.app.services import Services
        from newsrag.app.settings import AppSettings
        from newsrag.core.settings import Settings
        from newsrag.store.weaviate import WeaviateStore

        os.environ["OPENAI_BASE_URL"], os.environ["OPENAI_API_KEY"] = loop["llm"].url("/v1"), "sk-test-local"
        try:
            settings = AppSettings(feedback_db=str(loop["tmp"] / "feedback.sqlite"), generator="openai",
                                   prompt_registry=str(loop["prompt_registry"]), prompt_ttl_seconds=0.5)
            services = Services(settings, store=WeaviateStore(Settings(), collection=loop["collection"]), embedder=embedder)
            question = json.loads(GOLDEN.read_text().splitlines()[0])["question"]
            with TestClient(create_app(settings, services)) as client:
                def ask() -> dict[str, Any]:
                    resp = client.post("/v1/ask", json={"question": question})
                    assert resp.status_code == 200, resp.text
                    return dict(resp.json())

                before = ask()
                assert (before["prompt_version"], before["generator"]) == ("1", "openai")

                t0 = time.monotonic()
                run_id = af.trigger("prompt_release", {"name": "news-answer", "version": "2"})
                run = af.wait_run("prompt_release", run_id, timeout=420)
                TIMINGS["5a prompt_release run"] = time.monotonic() - t0
                af.assert_success("prompt_release", run)
                states = {t: s for t, _, s in af.task_states("prompt_release", run_id)}
                assert states["promote"] == "success" and states["reject_after_eval"] == "skipped", states
                assert registry.active("news-answer").active == "2"

                time.sleep(0.6)  # past the app's prompt TTL; the app was not restarted
                after = ask()
                assert (after["prompt_name"], after["prompt_version"]) == ("news-answer", "2")
                assert after["citations"]
                last = loop["llm"].requests_to("/v1/chat/completions")[-1]
                assert "Be concise." in last.json["messages"][0]["content"]
                TIMINGS["5b app serves v2"] = time.monotonic() - t0
        finally:
            os.environ.pop("OPENAI_BASE_URL", None)
            os.environ.pop("OPENAI_API_KEY", None)
    finally:
        registry.close()


def test_a_paused_consumer_is_logged_and_notified_by_the_producer(loop: dict[str, Any]) -> None:
    """answer_quality paused: news_ingest still succeeds, and its summarize task log and a Slack
    notification (the shared notifier) say that nobody scores the fresh data; Airflow queues no
    Asset event for the paused DAG, so no answer_quality run appears."""
    af: Airflow = loop["airflow"]
    assert "ingest_run" in loop, "needs the news_ingest step"
    feeds: FeedServer = loop["feeds"]
    feeds.routes["/late-wire.xml"] = (rss(feeds.base, [item("late-wire-harbor", 7001)]), "application/rss+xml")
    registry = yaml.safe_load(loop["registry_file"].read_text())
    registry["sources"].append({"id": "late-wire", "type": "feed", "url": feeds.url("/late-wire.xml")})
    loop["registry_file"].write_text(yaml.safe_dump(registry))  # read at run time by plan_batches
    runs_before = {r["dag_run_id"] for r in af.runs("answer_quality")}
    sent_before = len(loop["slack"])
    af.unpause("answer_quality", paused=True)
    try:
        t0 = time.monotonic()
        run_id = af.trigger("news_ingest", {"source": "late-wire"})  # one small fresh source
        run = af.wait_run("news_ingest", run_id, timeout=240)
        TIMINGS["6 paused-consumer ingest run"] = time.monotonic() - t0
        af.assert_success("news_ingest", run)
        assert af.xcom("news_ingest", run_id, "summarize")["new"] == 1
        logs = sorted((af.home / "logs").glob(f"dag_id=news_ingest/run_id={run_id}/task_id=summarize/**/*.log"))
        text = "\n".join(p.read_text(errors="replace") for p in logs)
        asset = f"weaviate://{loop['collection']}/"  # Airflow normalises the URI with a trailing slash
        assert f"consumer DAG 'answer_quality' of Asset {asset} is paused" in text, text[-3000:]
        assert "airflow dags unpause answer_quality" in text
        sent = loop["slack"][sent_before:]
        assert len(sent) == 1, sent
        assert f"news_ingest updated {asset} but answer_quality is paused" in sent[0]
        assert f"run {run_id}" in sent[0] and "nobody scores the fresh data" in sent[0]
        for secret in ("sk-test-local", loop["slack_path"]):
            assert secret not in sent[0] and secret not in text
        time.sleep(5)  # the scheduler had time to queue a run, had Airflow kept the event
        assert {r["dag_run_id"] for r in af.runs("answer_quality")} == runs_before
    finally:
        af.unpause("answer_quality")
