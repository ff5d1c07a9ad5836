"""dag.test() of news_ingest over three mapped sources, one of them broken: the broken source's batch
task ends failed (the grid shows it) while the others succeed, and the summary and the Asset event
count all three sources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import FIXTURES
from tests.dags.conftest import REPO, collect_logs, load_dag
from tests.ingest.feedgen import item, rss

pytestmark = pytest.mark.integration


def test_news_ingest_maps_sources_fails_the_broken_ones_batch_and_emits_counts(
        airflow_db: str, weaviate_server: Any, feed_server: Any, collection_name: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    feed_server.routes["/a.xml"] = (rss(feed_server.base, [item("alpha", 41), item("beta", 42)]), "application/rss+xml")
    feed_server.routes["/b.xml"] = (rss(feed_server.base, [item("gamma", 43)]), "application/rss+xml")
    feed_server.routes["/broken.xml"] = ((FIXTURES / "feeds" / "malformed.xml").read_bytes(), "application/rss+xml")
    registry = tmp_path / "sources.yaml"
    registry.write_text(yaml.safe_dump({"sources": [
        {"id": "alpha-news", "type": "feed", "url": feed_server.url("/a.xml")},
        {"id": "beta-news", "type": "feed", "url": feed_server.url("/b.xml")},
        {"id": "broken-news", "type": "feed", "url": feed_server.url("/broken.xml")},
        {"id": "disabled-news", "type": "feed", "url": feed_server.url("/missing.xml"), "enabled": False},
    ]}))
    monkeypatch.setenv("NEWSRAG_INGEST_SOURCES_FILE", str(registry))
    monkeypatch.setenv("WEAVIATE_COLLECTION", collection_name)
    monkeypatch.setenv("NEWSRAG_FETCH_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("NEWSRAG_HOME", str(tmp_path / "home"))  # fresh ingest state and cache
    monkeypatch.setenv("NEWSRAG_INGEST_RETRIES", "0")  # a bug shows as a failure, not minutes of backoff
    import json
    import os

    session_home = Path(os.environ["AIRFLOW_HOME"]).parent / "home"
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "weaviate.json").write_text((session_home / "weaviate.json").read_text())

    dag = load_dag(REPO / "dags" / "news_ingest.py", "news_ingest")
    with collect_logs("newsrag.infra.notify") as logs:
        run = dag.test()
    assert str(run.state) == "success"  # the run's last tasks succeeded: what landed is published

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                                 .where(AssetModel.uri.in_([f"weaviate://{collection_name}",
                                                                    f"weaviate://{collection_name}/"]))).all()
        extras = [e.extra for e in events]
    assert len(extras) == 1
    extra = extras[0]
    assert extra["sources"] == 3 and extra["sources_failed"] == 1 and extra["failed_sources"] == ["broken-news"]
    assert extra["new"] == 3

    from newsrag.core.settings import Settings
    from newsrag.store.weaviate import WeaviateStore

    with WeaviateStore(Settings(), collection=collection_name) as store:
        assert store.count() == extra["chunks_written"] > 0
        sources = {p["source_id"] for _, p in store.iter_properties(["source_id"])}
        assert sources == {"alpha-news", "beta-news"}
        store.drop()
    assert json.dumps(extra)  # the event extra is plain JSON

    from airflow.models.taskinstance import TaskInstance

    with create_session() as session:
        mapped = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == "news_ingest",
                                                            TaskInstance.run_id == run.run_id,
                                                            TaskInstance.task_id == "ingest_batch")).all()
        states = sorted((ti.map_index, str(ti.state)) for ti in mapped)
        summary = {ti.task_id: str(ti.state) for ti in session.scalars(select(TaskInstance).where(
            TaskInstance.dag_id == "news_ingest", TaskInstance.run_id == run.run_id,
            TaskInstance.task_id.in_(["summarize", "publish_index"])))}
    assert [i for i, _ in states] == [0, 1, 2]  # one mapped task per enabled source (one source per batch)
    assert [s.rsplit(".", 1)[-1] for _, s in states].count("failed") == 1, states  # the broken one's batch
    assert [s.rsplit(".", 1)[-1] for _, s in states].count("success") == 2, states
    assert {k: v.rsplit(".", 1)[-1] for k, v in summary.items()} == {"summarize": "success", "publish_index": "success"}
    sent = logs.text()  # the failed batch's failure callback names the source and why
    assert "task ingest_batch failed" in sent and "1 of 1 source(s) of this batch failed" in sent, sent
    assert "broken-news" in sent and "alpha-news" not in sent


def test_a_connection_to_an_unreachable_weaviate_fails_the_run_clearly_and_loses_nothing(
        airflow_db: str, weaviate_server: Any, feed_server: Any, collection_name: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import socket

    feed_server.routes["/a.xml"] = (rss(feed_server.base, [item("alpha", 51)]), "application/rss+xml")
    registry = tmp_path / "sources.yaml"
    registry.write_text(yaml.safe_dump({"sources": [
        {"id": "alpha-news", "type": "feed", "url": feed_server.url("/a.xml")}]}))
    for var, value in {"NEWSRAG_INGEST_SOURCES_FILE": str(registry), "WEAVIATE_COLLECTION": collection_name,
                       "NEWSRAG_FETCH_ALLOW_PRIVATE": "true", "NEWSRAG_HOME": str(tmp_path / "home"),
                       "NEWSRAG_INGEST_RETRIES": "0"}.items():
        monkeypatch.setenv(var, value)
    session_home = Path(os.environ["AIRFLOW_HOME"]).parent / "home"
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "weaviate.json").write_text((session_home / "weaviate.json").read_text())
    dag = load_dag(REPO / "dags" / "news_ingest.py", "news_ingest")
    assert str(dag.test().state) == "success"  # the real store holds the source first

    from newsrag.core.settings import Settings
    from newsrag.store.weaviate import WeaviateStore

    with WeaviateStore(Settings(), collection=collection_name) as store:
        before = store.count()
    assert before > 0
    with socket.socket() as s, socket.socket() as g:  # ports nothing listens on
        s.bind(("127.0.0.1", 0))
        g.bind(("127.0.0.1", 0))
        dead, dead_grpc = s.getsockname()[1], g.getsockname()[1]
    key = "wrong-conn-key-31337"
    monkeypatch.setenv("AIRFLOW_CONN_WEAVIATE_DEFAULT",
                       f"http://:{key}@127.0.0.1:{dead}?grpc_port={dead_grpc}&collection={collection_name}")
    feed_server.routes["/a.xml"] = (rss(feed_server.base, [item("alpha", 52)]), "application/rss+xml")  # changed
    with collect_logs("newsrag.infra.notify") as logs:
        run = dag.test()
    assert str(run.state) == "failed"
    text = logs.text()
    # the first task finds it, before any source is read
    assert "task check_store failed" in text and f"cannot reach Weaviate at http://127.0.0.1:{dead}" in text, text
    assert key not in text
    with WeaviateStore(Settings(), collection=collection_name) as store:
        assert store.count() == before  # the changed article was not half-written anywhere
        store.drop()
