"""A wrong ``weaviate_default`` Connection under dag.test() of news_ingest, with retries configured:
missing, unusable (a bad URI) or with credentials Weaviate refuses. Each fails the run with a
task log and a notification that say what is wrong and how to fix it, never show the key, and
spend no retry (a retry cannot fix a Connection). The first task, check_store, finds each of them,
before any source is read. An unreachable Weaviate is in test_news_ingest.py."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dags.conftest import REPO, collect_logs, load_dag
from tests.ingest.feedgen import item, rss

pytestmark = pytest.mark.integration

KEY = "wv-wrong-key-5e1f0c2a9b"


@pytest.fixture
def ingest_env(airflow_db: str, weaviate_server: Any, feed_server: Any, collection_name: str, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """One fixture feed; three retries configured, so a retry would show in the try numbers."""
    feed_server.routes["/a.xml"] = (rss(feed_server.base, [item("alpha", 61)]), "application/rss+xml")
    registry = tmp_path / "sources.yaml"
    registry.write_text(yaml.safe_dump({"sources": [{"id": "alpha-news", "type": "feed",
                                                     "url": feed_server.url("/a.xml")}]}))
    home = tmp_path / "home"
    home.mkdir()
    (home / "weaviate.json").write_text((Path(os.environ["NEWSRAG_HOME"]) / "weaviate.json").read_text())
    for var in [v for v in os.environ if v.startswith("AIRFLOW_CONN_")] + ["NEWSRAG_NOTIFY_SLACK_WEBHOOK_URL"]:
        monkeypatch.delenv(var, raising=False)
    for var, value in {"NEWSRAG_INGEST_SOURCES_FILE": str(registry), "WEAVIATE_COLLECTION": collection_name,
                       "NEWSRAG_FETCH_ALLOW_PRIVATE": "true", "NEWSRAG_HOME": str(home),
                       "NEWSRAG_INGEST_RETRIES": "3", "NEWSRAG_REQUIRED_CONNECTIONS": "weaviate_default"}.items():
        monkeypatch.setenv(var, value)
    return {"collection": collection_name}


def run_and_collect() -> tuple[Any, str, dict[str, tuple[str, int]]]:
    """dag.test() with the notifier's and the tasks' log lines collected; (run, text, task -> (state, try))."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with collect_logs("", "newsrag.infra.notify") as logs:  # the root: the tasks' own lines too
        run = load_dag(REPO / "dags" / "news_ingest.py", "news_ingest").test()
    with create_session() as session:
        tis = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == "news_ingest",
                                                         TaskInstance.run_id == run.run_id)).all()
        tries = {ti.task_id: (str(ti.state).rsplit(".", 1)[-1], int(ti.try_number)) for ti in tis}
    lines = (f"{r.name}: {r.getMessage()}" for r in logs.records)
    return run, "\n\x1e".join(dict.fromkeys(lines)), tries  # \x1e separates the log records


def notifications(text: str) -> str:
    """The notifier's messages (each starts with its logger's name; bodies span several lines)."""
    return "\n".join(m for m in text.split("\n\x1e") if m.startswith("newsrag.infra.notify: "))


def assert_nothing_written(collection: str) -> None:
    from newsrag.core.settings import Settings
    from newsrag.store.weaviate import WeaviateStore

    with WeaviateStore(Settings(), collection=collection) as store:
        assert not store.exists()


def test_a_missing_connection_fails_the_task_at_once_and_says_how_to_create_it(ingest_env: dict[str, Any]) -> None:
    run, text, tries = run_and_collect()
    assert str(run.state) == "failed"
    assert tries["check_store"] == ("failed", 1), tries  # AirflowFailException: no retry
    assert tries["summarize"][0] == "upstream_failed", tries  # no source was read
    sent = notifications(text)
    assert "task check_store failed" in sent and "task summarize failed" not in sent, text[-3000:]
    assert "required Airflow connection 'weaviate_default' is not defined" in sent
    assert "airflow connections add weaviate_default --conn-uri" in sent and "AIRFLOW_CONN_WEAVIATE_DEFAULT" in sent
    assert_nothing_written(ingest_env["collection"])


def test_a_connection_with_a_bad_uri_fails_at_once_without_showing_the_key(
        ingest_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WEAVIATE_DEFAULT", f"http://:{KEY}@127.0.0.1:8080?grpc_port=fifty")
    run, text, tries = run_and_collect()
    assert str(run.state) == "failed"
    assert tries["check_store"] == ("failed", 1), tries
    sent = notifications(text)
    assert "Airflow connection 'weaviate_default' cannot be used: extra 'grpc_port'" in sent, text[-3000:]
    assert "must be a port number" in sent and "airflow connections add weaviate_default" in sent
    assert KEY not in text
    assert_nothing_written(ingest_env["collection"])


def test_credentials_weaviate_refuses_fail_the_first_task_without_retry_and_notify(
        ingest_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from newsrag.core.settings import Settings
    from newsrag.store.server import LocalWeaviate

    state = LocalWeaviate.from_settings(Settings()).read_state()
    assert state is not None
    # The real server (anonymous access) answers 401 to any key, as an API-key server does to a wrong one.
    monkeypatch.setenv("AIRFLOW_CONN_WEAVIATE_DEFAULT",
                       f"http://:{KEY}@{state.host}:{state.http_port}?grpc_port={state.grpc_port}")
    run, text, tries = run_and_collect()
    assert str(run.state) == "failed"
    assert tries["check_store"] == ("failed", 1), tries  # not retryable: no retry spent
    assert tries["summarize"][0] == "upstream_failed", tries
    sent = notifications(text)
    assert "task check_store failed" in sent, text[-3000:]
    assert f"Weaviate at http://{state.host}:{state.http_port} refused the credentials (HTTP 401)" in sent
    assert "the password of the weaviate_default Connection" in sent
    assert KEY not in text
    assert_nothing_written(ingest_env["collection"])
