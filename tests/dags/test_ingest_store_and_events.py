"""dag.test() of news_ingest: the Asset event only when the index changed (#21 item 4), and the store
checked first (#21 item 5): a run that wrote emits one event, an unchanged second run emits none and
its log says why, and so does a run with the `full` Param (which reads the source again); a missing
collection is logged as created; a WEAVIATE_URL with nothing listening fails the run at its first
task, naming the URL."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dags.conftest import REPO, collect_logs, load_dag
from tests.ingest.feedgen import item, rss

pytestmark = pytest.mark.integration


@pytest.fixture
def one_feed(airflow_db: str, weaviate_server: Any, feed_server: Any, collection_name: str, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """One feed source, a fresh collection and ingest home (sharing the session's Weaviate)."""
    feed_server.routes["/a.xml"] = (rss(feed_server.base, [item("alpha", 71), item("beta", 72)]),
                                    "application/rss+xml")
    registry = tmp_path / "sources.yaml"
    registry.write_text(yaml.safe_dump({"sources": [{"id": "alpha-news", "type": "feed",
                                                     "url": feed_server.url("/a.xml")}]}))
    home = tmp_path / "home"
    home.mkdir()
    (home / "weaviate.json").write_text((Path(os.environ["NEWSRAG_HOME"]) / "weaviate.json").read_text())
    for var in [v for v in os.environ if v.startswith("AIRFLOW_CONN_")]:
        monkeypatch.delenv(var)
    for var, value in {"NEWSRAG_INGEST_SOURCES_FILE": str(registry), "WEAVIATE_COLLECTION": collection_name,
                       "NEWSRAG_FETCH_ALLOW_PRIVATE": "true", "NEWSRAG_HOME": str(home),
                       "NEWSRAG_INGEST_RETRIES": "0"}.items():
        monkeypatch.setenv(var, value)
    yield collection_name
    from newsrag.core.settings import Settings
    from newsrag.store.weaviate import WeaviateStore

    with WeaviateStore(Settings(), collection=collection_name) as store:
        if store.exists():
            store.drop()


def asset_events(collection: str) -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id).where(
            AssetModel.uri.in_([f"weaviate://{collection}", f"weaviate://{collection}/"]))).all()
        return [dict(e.extra or {}) for e in events]


def summary(run: Any) -> dict[str, Any]:
    """The summarize task's return value (its XCom)."""
    import json

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        value = session.scalars(select(XComModel.value).where(
            XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id, XComModel.task_id == "summarize",
            XComModel.key == "return_value")).first()
    return dict(json.loads(value) if isinstance(value, str) else value)


def task_states(run: Any) -> dict[str, tuple[str, int]]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        tis = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == run.dag_id,
                                                         TaskInstance.run_id == run.run_id)).all()
        return {ti.task_id: (str(ti.state).rsplit(".", 1)[-1], int(ti.try_number)) for ti in tis}


def test_a_run_that_wrote_emits_one_event_and_an_unchanged_rerun_emits_none_and_says_why(one_feed: str) -> None:
    dag = load_dag(REPO / "dags" / "news_ingest.py", "news_ingest")
    with collect_logs("") as logs:
        first = dag.test()
    assert str(first.state) == "success"
    events = asset_events(one_feed)
    assert len(events) == 1 and events[0]["new"] == 2 and events[0]["chunks_written"] > 0, events
    assert task_states(first)["publish_index"][0] == "success"
    assert f"collection {one_feed} does not exist in Weaviate at" in logs.text(), logs.text()[-3000:]
    assert "this run creates it" in logs.text()

    with collect_logs("") as logs:
        second = dag.test()  # the feed did not change
    assert str(second.state) == "success"
    assert asset_events(one_feed) == events  # no new event: answer_quality is not scheduled
    states = task_states(second)
    assert states["publish_index"][0] == "skipped" and states["summarize"][0] == "success", states
    text = logs.text()
    assert "the index did not change in this run (0 chunks written or deleted, 1 source(s)" in text, text[-3000:]
    assert "no Asset event, so no evaluation is scheduled" in text
    assert f"collection {one_feed} (generation " in text and " holds " in text  # checked first, and reachable
    assert summary(second)["items_seen"] == 0  # the feed answered 304

    forced = dag.test(run_conf={"full": True})  # the Param: read it again whatever its validators say
    assert str(forced.state) == "success"
    assert (summary(forced)["items_seen"], summary(forced)["unchanged"]) == (2, 2), summary(forced)
    assert asset_events(one_feed) == events and task_states(forced)["publish_index"][0] == "skipped"


def test_a_weaviate_url_with_nothing_listening_fails_the_run_at_its_first_task_naming_the_url(
        one_feed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with monkeypatch.context() as patch, collect_logs("newsrag.infra.notify") as logs:
        patch.setenv("WEAVIATE_URL", f"http://127.0.0.1:{dead}")
        run = load_dag(REPO / "dags" / "news_ingest.py", "news_ingest").test()
    assert str(run.state) == "failed"
    states = task_states(run)
    assert states["check_store"] == ("failed", 1), states
    assert {states[t][0] for t in ("plan_batches", "summarize", "publish_index")} == {"upstream_failed"}, states
    sent = logs.text()  # the failure callback's notification: one, from the first task
    assert "task check_store failed" in sent and "task summarize failed" not in sent, sent
    assert f"cannot reach Weaviate at http://127.0.0.1:{dead} (collection {one_feed}): Connection" in sent, sent
    assert "Start it, or point WEAVIATE_URL (in Airflow: the weaviate_default Connection) at it" in sent
    assert asset_events(one_feed) == []
