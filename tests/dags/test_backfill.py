"""A backfill of a date range (dag.test with a window) over a JSONL source is idempotent: running it
twice leaves the same counts, and articles outside the range are not ingested."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dags.conftest import REPO, load_dag
from tests.ingest.feedgen import paragraphs

pytestmark = pytest.mark.integration


def dated_archive(tmp_path: Path, collection_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A JSONL source with one article on each of six October days, the test's own collection and a
    fresh ingest home (sharing the session's Weaviate)."""
    dump = tmp_path / "archive.jsonl"
    dump.write_text("\n".join(json.dumps({
        "url": f"https://archive.example/{day}", "title": f"Story of October {day}",
        "text": "\n\n".join(paragraphs(300 + day, 2)), "published": f"2026-10-{day:02d}T09:00:00Z"})
        for day in (2, 5, 9, 12, 20, 27)) + "\n")
    registry = tmp_path / "sources.yaml"
    registry.write_text(yaml.safe_dump({"sources": [{"id": "archive", "type": "jsonl", "path": str(dump)}]}))
    home = tmp_path / "home"
    home.mkdir()
    (home / "weaviate.json").write_text((Path(os.environ["NEWSRAG_HOME"]) / "weaviate.json").read_text())
    for var, value in {"NEWSRAG_INGEST_SOURCES_FILE": str(registry), "WEAVIATE_COLLECTION": collection_name,
                       "NEWSRAG_HOME": str(home), "NEWSRAG_INGEST_RETRIES": "0"}.items():
        monkeypatch.setenv(var, value)


def test_backfill_window_twice_gives_the_same_counts(airflow_db: str, weaviate_server: Any, collection_name: str,
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dated_archive(tmp_path, collection_name, monkeypatch)
    dag = load_dag(REPO / "dags" / "news_ingest.py", "news_ingest")
    window = {"since": "2026-10-05T00:00:00+00:00", "until": "2026-10-20T00:00:00+00:00"}

    from newsrag.core.settings import Settings
    from newsrag.store.weaviate import WeaviateStore

    counts = []
    for _ in range(2):
        run = dag.test(run_conf=window)
        assert str(run.state) == "success"
        with WeaviateStore(Settings(), collection=collection_name) as store:
            urls = {p["url"] for _, p in store.iter_properties(["url"])}
            counts.append((store.count(), urls))
    assert counts[0] == counts[1]
    assert counts[0][1] == {"https://archive.example/5", "https://archive.example/9", "https://archive.example/12"}
    with WeaviateStore(Settings(), collection=collection_name) as store:
        store.drop()


def test_a_backfill_run_ingests_its_data_interval_twice_the_same(airflow_db: str, weaviate_server: Any,
                                                                 collection_name: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The run type the scheduler gives backfill runs, with their data interval: no since/until
    Params, the window comes from the interval (dag.test creates manual runs, so its run creation is
    patched to make the run a backfill run over 5-20 October, as `airflow backfill create` would)."""
    import airflow.models.dagrun as dagrun_module
    import pendulum
    from airflow.utils.types import DagRunType

    from newsrag.core.settings import Settings
    from newsrag.store.weaviate import WeaviateStore

    dated_archive(tmp_path, collection_name, monkeypatch)
    create = dagrun_module.get_or_create_dagrun

    def backfill_run(*args: Any, **kwargs: Any) -> Any:
        run, session = create(*args, **kwargs), kwargs["session"]
        run.run_type = DagRunType.BACKFILL_JOB
        run.data_interval_start = pendulum.datetime(2026, 10, 5, tz="UTC")
        run.data_interval_end = pendulum.datetime(2026, 10, 20, tz="UTC")
        session.commit()
        return run

    monkeypatch.setattr(dagrun_module, "get_or_create_dagrun", backfill_run)
    dag = load_dag(REPO / "dags" / "news_ingest.py", "news_ingest")
    seen = []
    for _ in range(2):
        run = dag.test(logical_date=pendulum.datetime(2026, 10, 5, tz="UTC"))
        assert str(run.state) == "success" and run.run_type == DagRunType.BACKFILL_JOB
        with WeaviateStore(Settings(), collection=collection_name) as store:
            seen.append((store.count(), {p["url"] for _, p in store.iter_properties(["url"])}))
    assert seen[0] == seen[1] and seen[0][0] > 0
    assert seen[0][1] == {"https://archive.example/5", "https://archive.example/9", "https://archive.example/12"}
    with WeaviateStore(Settings(), collection=collection_name) as store:
        store.drop()
