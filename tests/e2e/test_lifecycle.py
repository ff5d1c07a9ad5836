"""Several days of a deployment's life on the running local Airflow (`scripts/airflow up` in a fresh
NEWSRAG_HOME), each news_ingest run triggered through the REST API with a logical date on a
simulated clock (one day per step). After each step the collection holds exactly the objects one
clean run of the same sources leaves (same ids, documents, versions, chunks and sources), computed
beside it in a reference collection of the same Weaviate (#21, "Must show"):

1. the first ingest, which emits the Asset event;
2. an unchanged re-run: no Asset event, and no answer_quality run although it is unpaused;
3. a changed article;
4. the collection deleted (`DELETE /v1/schema/NewsChunk`), then the next run restores it exactly;
5. Weaviate stopped: the run fails at its first task naming the URL; restarted: the next run
   converges (an article changed meanwhile);
6. a backfill over a window already seen (the `since`/`until` Params), after that window's
   articles were lost: it writes exactly them;
7. a new source pointing at a file another source has already read: it reads the file.

The tests share one instance and run in order (use -x): each one is a step of its life."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import REPO
from tests.e2e.test_local_airflow import NEVER, Local

pytestmark = pytest.mark.e2e

DEPLOYED, REFERENCE = "NewsChunk", "LifecycleReference"
ARCHIVE_FIELDS = {"url": "url", "title": "title", "text": "text", "published": "published", "author": "authors"}
WINDOW = {"since": "2026-09-01T00:00:00+00:00", "until": "2026-10-01T00:00:00+00:00"}  # 2 of the 5 archive articles
Row = tuple[str, str, str, int, str, tuple[str, ...]]  # uuid, doc id, content hash, chunk index, source, also


class Life:
    """The deployment under test: the local Airflow, its sources and a clean-run reference."""

    def __init__(self, local: Local, corpus: Path, embedder: Any) -> None:
        self.local, self.corpus, self.embedder = local, corpus, embedder
        self.registry = corpus / "sources.yaml"
        self.day = 0
        self.runs: dict[str, str] = {}  # step -> run id

    # -- sources -------------------------------------------------------------------------------
    def write_registry(self, *extra: dict[str, Any]) -> None:
        sources = [{"id": "archive", "type": "jsonl", "path": "archive.jsonl", "fields": ARCHIVE_FIELDS},
                   {"id": "notes", "type": "folder", "path": "notes", "patterns": ["*.md"]}, *extra]
        self.registry.write_text(yaml.safe_dump({"sources": sources}))  # read at run time by plan_batches

    def edit_archive(self, index: int, text: str) -> None:
        lines = (self.corpus / "archive.jsonl").read_text().splitlines()
        article = json.loads(lines[index])
        article["text"] += "\n\n" + text
        lines[index] = json.dumps(article)
        (self.corpus / "archive.jsonl").write_text("\n".join(lines) + "\n")

    # -- the store -----------------------------------------------------------------------------
    def store(self, collection: str) -> Any:
        from newsrag.core.settings import WeaviateSettings
        from newsrag.store.weaviate import WeaviateStore

        w = self.local.weaviate()
        settings = WeaviateSettings(url=f"http://{w['host']}:{w['http_port']}",
                                    grpc_url=f"http://{w['host']}:{w['grpc_port']}", collection=collection)
        return WeaviateStore(settings=settings, collection=collection)

    def rows(self, collection: str) -> list[Row]:
        with self.store(collection) as store:
            if not store.exists():
                return []
            props = ["doc_id", "content_hash", "chunk_index", "source_id", "also_sources"]
            return sorted((u, p["doc_id"], p["content_hash"], int(p["chunk_index"]), p["source_id"],
                           tuple(sorted(p.get("also_sources") or []))) for u, p in store.iter_properties(props))

    def clean_run(self) -> list[Row]:
        """The objects one clean run of the current sources leaves: a fresh collection and state."""
        from newsrag.ingest.context import IngestContext
        from newsrag.ingest.pipeline import run_source
        from newsrag.ingest.registry import load_registry

        registry = load_registry(str(self.registry))
        home = Path(tempfile.mkdtemp(prefix="clean-", dir=self.local.home))
        with self.store(REFERENCE) as store:
            if store.exists():
                store.drop()
            with IngestContext(store=store, embedder=self.embedder, home=home,
                               base_dir=Path(registry.base_dir)) as ctx:
                reports = [run_source(spec, ctx) for spec in registry.enabled()]
        assert all(r.status == "ok" for r in reports), [r.model_dump() for r in reports]
        rows = self.rows(REFERENCE)
        assert rows
        return rows

    def assert_like_a_clean_run(self) -> list[Row]:
        t0 = time.monotonic()
        deployed, clean = self.rows(DEPLOYED), self.clean_run()
        print(f"clean run: {time.monotonic() - t0:.0f}s")
        assert len(deployed) == len(clean), f"{len(deployed)} objects, a clean run leaves {len(clean)}"
        assert deployed == clean
        return deployed

    # -- Airflow -------------------------------------------------------------------------------
    def api(self) -> httpx.Client:
        assert self.local.api is not None
        return self.local.api

    def pause(self, dag_id: str, paused: bool) -> None:
        resp = self.api().patch(f"/api/v2/dags/{dag_id}", json={"is_paused": paused})
        assert resp.status_code == 200 and resp.json()["is_paused"] is paused, resp.text

    def ingest(self, step: str, conf: dict[str, Any] | None = None, expect: str = "success") -> str:
        """Trigger news_ingest for the next simulated day and wait for it; its run id."""
        self.day += 1
        logical = f"2026-11-{self.day:02d}T06:00:00+00:00"
        resp = self.api().post("/api/v2/dags/news_ingest/dagRuns", json={"logical_date": logical, "conf": conf or {}})
        assert resp.status_code == 200, resp.text
        run_id = self.runs[step] = resp.json()["dag_run_id"]
        deadline, run = time.monotonic() + 240, {"state": "queued"}
        while run["state"] not in ("success", "failed") and time.monotonic() < deadline:
            time.sleep(2)
            run = self.local.get(f"/api/v2/dags/news_ingest/dagRuns/{run_id}")
        assert run["state"] == expect, (f"{step}: {run['state']} {self.task_states(run_id)}\n"
                                        f"{self.local.task_logs('news_ingest', run_id)[-5000:]}")
        print(f"\n{step}: news_ingest {run['state']} in {time.monotonic() - deadline + 240:.0f}s")
        return str(run_id)

    def task_states(self, run_id: str) -> dict[str, str]:
        tis = self.local.get(f"/api/v2/dags/news_ingest/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {t["task_id"] + (f"[{t['map_index']}]" if t["map_index"] >= 0 else ""): t["state"] for t in tis}

    def totals(self, run_id: str) -> dict[str, Any]:
        return dict(self.local.get(f"/api/v2/dags/news_ingest/dagRuns/{run_id}/taskInstances/summarize/xcomEntries"
                                   "/return_value", deserialize="true")["value"])

    def checked(self, run_id: str) -> dict[str, Any]:
        """What check_store found at the start of the run."""
        return dict(self.local.get(f"/api/v2/dags/news_ingest/dagRuns/{run_id}/taskInstances/check_store/"
                                   "xcomEntries/return_value", deserialize="true")["value"])

    def events(self, run_id: str) -> int:
        """Asset events the run emitted."""
        return int(self.local.get("/api/v2/assets/events", source_dag_id="news_ingest",
                                  source_run_id=run_id)["total_entries"])


@pytest.fixture(scope="module")
def life(embedder: Any) -> Iterator[Life]:
    home = Path(tempfile.mkdtemp(prefix="newsrag-lifecycle-"))
    home.chmod(0o755)  # as root, PostgreSQL runs as the postgres user, which must reach its folder
    corpus = home / "corpus"
    corpus.mkdir()
    shutil.copy(REPO / "examples" / "news" / "archive.jsonl", corpus / "archive.jsonl")
    shutil.copytree(REPO / "examples" / "news" / "notes", corpus / "notes")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and not k.startswith("WEAVIATE_")}
    env.update({"NEWSRAG_HOME": str(home), "NEWSRAG_AIRFLOW_PORT": "0", "NEWSRAG_WEAVIATE_HTTP_PORT": "0",
                "NEWSRAG_WEAVIATE_GRPC_PORT": "0", "NEWSRAG_INGEST_SOURCES_FILE": str(corpus / "sources.yaml"),
                "NEWSRAG_INGEST_SCHEDULE": NEVER, "NEWSRAG_EVAL_SCHEDULE": NEVER, "NEWSRAG_INGEST_RETRIES": "0",
                "NEWSRAG_INGEST_MAX_MAP_LENGTH": "1"})  # one batch: one task (one model load) per run
    local = Local(home, env)
    deployment = Life(local, corpus, embedder)
    deployment.write_registry()
    try:
        t0 = time.monotonic()
        up = local.script("up", timeout=480)
        assert up.returncode == 0, f"up failed:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}\n{local.logs()}"
        print(f"\nscripts/airflow up: {time.monotonic() - t0:.0f}s")
        local.connect()
        # Its Asset events would start evaluations (model loads on 2 cores): unpaused only where the
        # test asserts that no run is scheduled.
        deployment.pause("answer_quality", True)
        yield deployment
    finally:
        down = local.script("down", timeout=180)
        if down.returncode != 0:
            print(f"down failed:\n{down.stdout}\n{down.stderr}")
        shutil.rmtree(home, ignore_errors=True)


def test_1_the_first_ingest_is_a_clean_run_and_announces_it(life: Life) -> None:
    run_id = life.ingest("first")
    totals = life.totals(run_id)
    assert (totals["sources"], totals["sources_failed"], totals["new"]) == (2, 0, 7), totals
    rows = life.assert_like_a_clean_run()
    assert totals["chunks_written"] == len(rows)
    assert life.events(run_id) == 1
    logs = life.local.task_logs("news_ingest", run_id)
    assert f"collection {DEPLOYED} does not exist in Weaviate at" in logs and "this run creates it" in logs


def test_2_an_unchanged_rerun_emits_no_event_and_schedules_no_evaluation(life: Life) -> None:
    before = life.rows(DEPLOYED)
    life.pause("answer_quality", False)
    try:
        run_id = life.ingest("unchanged")
        time.sleep(5)  # the scheduler had time to create an Asset-triggered run, had there been an event
        runs = life.local.get("/api/v2/dags/answer_quality/dagRuns")
    finally:
        life.pause("answer_quality", True)
    assert life.events(run_id) == 0 and runs["total_entries"] == 0, runs
    assert life.task_states(run_id)["publish_index"] == "skipped"
    assert "the index did not change in this run (0 chunks written or deleted" in life.local.task_logs(
        "news_ingest", run_id)
    assert life.rows(DEPLOYED) == before


def test_3_a_changed_article_is_replaced(life: Life) -> None:
    life.edit_archive(1, "Organisers said on Monday that the record would be ratified within a month.")
    run_id = life.ingest("changed")
    totals = life.totals(run_id)
    assert (totals["changed"], totals["new"]) == (1, 0) and totals["chunks_deleted"] > 0, totals
    assert life.events(run_id) == 1
    life.assert_like_a_clean_run()


def test_4_a_deleted_collection_is_restored_exactly_by_the_next_run(life: Life) -> None:
    w = life.local.weaviate()
    resp = httpx.delete(f"http://{w['host']}:{w['http_port']}/v1/schema/{DEPLOYED}", timeout=30)
    assert resp.status_code == 200, resp.text
    assert life.rows(DEPLOYED) == []
    run_id = life.ingest("restored")
    assert "was deleted or lost: this run re-creates it" in life.local.task_logs("news_ingest", run_id)
    rows = life.assert_like_a_clean_run()
    assert life.totals(run_id)["chunks_written"] == len(rows)


def test_5_weaviate_stopped_fails_the_run_clearly_and_a_restart_converges(life: Life) -> None:
    from newsrag.core.settings import LocalWeaviateSettings, PathSettings
    from newsrag.store.server import LocalWeaviate

    w = life.local.weaviate()
    server = LocalWeaviate(PathSettings(home=life.local.home),
                           LocalWeaviateSettings(http_port=w["http_port"], grpc_port=w["grpc_port"]))
    assert server.stop()
    life.edit_archive(3, "The council will publish the full tender documents next week.")  # changed meanwhile
    try:
        run_id = life.ingest("weaviate down", expect="failed")
    finally:
        restarted = server.start()  # the same ports: the weaviate_default Connection points there
    assert (restarted.http_port, restarted.grpc_port) == (w["http_port"], w["grpc_port"])
    states = life.task_states(run_id)
    assert states["check_store"] == "failed" and states["plan_batches"] == "upstream_failed", states
    assert f"cannot reach Weaviate at http://{w['host']}:{w['http_port']}" in life.local.task_logs(
        "news_ingest", run_id)
    assert life.events(run_id) == 0

    run_id = life.ingest("converged")
    assert life.totals(run_id)["changed"] == 1
    life.assert_like_a_clean_run()
    # the data survived the restart; the collection is the one step 4 re-created, not step 3's
    assert life.checked(run_id)["generation"] != life.checked(life.runs["changed"])["generation"]


def test_6_a_backfill_over_a_window_already_seen_writes_exactly_its_articles(life: Life) -> None:
    with life.store(DEPLOYED) as store:  # the window's articles are lost from the store
        props = [p for _, p in store.iter_properties(["doc_id", "source_id", "published_at"])]
        lost = {p["doc_id"] for p in props if p["source_id"] == "archive" and "2026-09-" in str(p["published_at"])}
        lost_chunks = sum(1 for p in props if p["doc_id"] in lost)
        assert len(lost) == 2, props
        store.delete_docs(sorted(lost))
    run_id = life.ingest("backfill", conf=WINDOW)  # the archive file is unchanged since it was read
    totals = life.totals(run_id)
    assert (totals["new"], totals["chunks_written"], totals["chunks_deleted"]) == (2, lost_chunks, 0), totals
    life.assert_like_a_clean_run()


def test_7_a_new_source_reads_a_file_another_source_has_read(life: Life) -> None:
    life.write_registry({"id": "archive-bf", "type": "jsonl", "path": "archive.jsonl", "fields": ARCHIVE_FIELDS})
    run_id = life.ingest("new source", conf={"source": "archive-bf"})
    totals = life.totals(run_id)
    assert (totals["sources"], totals["items_seen"]) == (1, 5), totals  # not "not modified": it read the file
    life.assert_like_a_clean_run()
