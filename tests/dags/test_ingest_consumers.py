"""news_ingest's check on the DAGs consuming its Asset: a paused or missing consumer is a WARNING in
the producer's task log and one notification (without secrets) per run that changed the index;
the producer never fails because of it. (On a real Airflow: tests/e2e/test_airflow_loop.py.)"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from tests.dags.conftest import LogRecords, collect_logs

pytestmark = pytest.mark.unit

ASSET = "weaviate://NewsChunk"
CHANGED = {"new": 3, "changed": 1, "chunks_written": 17, "chunks_deleted": 4}
UNCHANGED = {"new": 0, "changed": 0, "chunks_written": 0, "chunks_deleted": 0}


class FakeTI:
    """The Task SDK's RuntimeTaskInstance as far as the check uses it."""

    dag_id, run_id, task_id = "news_ingest", "manual__2026-12-06", "summarize"

    def __init__(self, states: dict[str, Any]) -> None:
        self.states = states
        self.asked: list[str] = []

    def get_dag(self, dag_id: str) -> Any:
        self.asked.append(dag_id)
        state = self.states[dag_id]
        if isinstance(state, Exception):
            raise state
        return SimpleNamespace(dag_id=dag_id, is_paused=state)


def api_error(status: int) -> Exception:
    from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
    from airflow.sdk.execution_time.comms import ErrorResponse

    return AirflowRuntimeError(ErrorResponse(error=ErrorType.API_SERVER_ERROR,
                                             detail={"status_code": status, "message": "from the API"}))


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Any:
    for var in ("NEWSRAG_NOTIFY_SLACK_WEBHOOK_URL", "NEWSRAG_NOTIFY_SMTP_HOST", "NEWSRAG_INGEST_CONSUMERS"):
        monkeypatch.delenv(var, raising=False)
    with collect_logs("newsrag.airflow.consumers", "newsrag.infra.notify") as handler:
        yield handler


def test_a_paused_consumer_is_a_warning_and_a_notification_and_the_producer_goes_on(logs: LogRecords) -> None:
    from newsrag.airflow.consumers import check_consumers

    ti = FakeTI({"answer_quality": True})
    assert check_consumers(ti, ASSET, CHANGED) == {"answer_quality": "paused"}
    assert ti.asked == ["answer_quality"]  # the default consumer
    warning = logs.text("newsrag.airflow.consumers", logging.WARNING)
    assert "consumer DAG 'answer_quality' of Asset weaviate://NewsChunk is paused" in warning
    assert "nobody scores the fresh data" in warning and "airflow dags unpause answer_quality" in warning
    sent = [r for r in logs.records if r.name == "newsrag.infra.notify"]
    assert len(sent) == 1 and sent[0].levelno == logging.WARNING
    note = sent[0].getMessage()
    assert "news_ingest updated weaviate://NewsChunk but answer_quality is paused" in note
    assert "run manual__2026-12-06" in note and "new 3, changed 1, chunks_written 17" in note


def test_an_active_consumer_is_only_an_info_line(logs: LogRecords) -> None:
    from newsrag.airflow.consumers import check_consumers

    assert check_consumers(FakeTI({"answer_quality": False}), ASSET, CHANGED) == {}
    assert "answer_quality of Asset weaviate://NewsChunk is active" in logs.text("newsrag.airflow.consumers")
    assert not logs.text("newsrag.airflow.consumers", logging.WARNING) and not logs.text("newsrag.infra.notify")


def test_a_run_that_changed_nothing_warns_without_notifying(logs: LogRecords) -> None:
    from newsrag.airflow.consumers import check_consumers

    assert check_consumers(FakeTI({"answer_quality": True}), ASSET, UNCHANGED) == {"answer_quality": "paused"}
    assert "is paused" in logs.text("newsrag.airflow.consumers", logging.WARNING)
    assert not logs.text("newsrag.infra.notify")


def test_missing_consumers_and_failed_checks(logs: LogRecords, monkeypatch: pytest.MonkeyPatch) -> None:
    from newsrag.airflow.consumers import check_consumers

    monkeypatch.setenv("NEWSRAG_INGEST_CONSUMERS", "answer_quality, daily_digest ,ops_board")
    ti = FakeTI({"answer_quality": False, "daily_digest": api_error(404), "ops_board": api_error(500)})
    assert check_consumers(ti, ASSET, CHANGED) == {"daily_digest": "missing"}  # 500: not known, not reported
    warning = logs.text("newsrag.airflow.consumers", logging.WARNING)
    assert "consumer DAG 'daily_digest' of Asset weaviate://NewsChunk does not exist in this Airflow" in warning
    assert "could not check consumer DAG ops_board" in warning
    assert "daily_digest is missing" in logs.text("newsrag.infra.notify")


def test_no_consumers_configured_means_no_check(logs: LogRecords, monkeypatch: pytest.MonkeyPatch) -> None:
    from newsrag.airflow.consumers import check_consumers

    monkeypatch.setenv("NEWSRAG_INGEST_CONSUMERS", "")
    ti = FakeTI({})
    assert check_consumers(ti, ASSET, CHANGED) == {} and ti.asked == []


def test_the_notification_reaches_slack_without_secrets(logs: LogRecords, monkeypatch: pytest.MonkeyPatch,
                                                         feed_server: Any) -> None:
    import json

    from newsrag.airflow.consumers import check_consumers

    posted: list[dict[str, Any]] = []

    def hook(h: Any) -> None:
        posted.append(json.loads(h.rfile.read(int(h.headers["Content-Length"]))))
        h.send_response(200)
        h.end_headers()

    feed_server.routes["/services/T000/B000/secret-webhook-path-77"] = hook
    url = feed_server.url("/services/T000/B000/secret-webhook-path-77")
    monkeypatch.setenv("NEWSRAG_NOTIFY_SLACK_WEBHOOK_URL", url)
    monkeypatch.setenv("WEAVIATE_API_KEY", "wv-key-that-must-not-show-1234")
    ti = FakeTI({"answer_quality": True})
    ti.run_id = "manual__wv-key-that-must-not-show-1234"  # a run id quoting a secret is redacted too
    check_consumers(ti, ASSET, CHANGED)
    assert len(posted) == 1 and ":warning:" in posted[0]["text"] and "answer_quality is paused" in posted[0]["text"]
    for text in (posted[0]["text"], logs.text("newsrag.infra.notify")):
        assert "run manual__***" in text
        assert "wv-key-that-must-not-show-1234" not in text and "secret-webhook-path-77" not in text


def test_the_settings_the_task_passes_name_the_consumers_and_the_secrets(logs: LogRecords,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A task hands its settings (Connections and Variables over the worker's environment): the
    consumers and the secrets to hide come from them, not from the process environment."""
    from newsrag.airflow.consumers import check_consumers
    from newsrag.core.settings import Settings

    monkeypatch.setenv("NEWSRAG_INGEST_CONSUMERS", "answer_quality")  # the worker's: overridden
    settings = Settings({"NEWSRAG_INGEST_CONSUMERS": "daily_digest", "WEAVIATE_API_KEY": "wv-from-a-connection-99"})
    ti = FakeTI({"daily_digest": True})
    ti.run_id = "manual__wv-from-a-connection-99"
    assert check_consumers(ti, ASSET, CHANGED, settings=settings) == {"daily_digest": "paused"}
    assert ti.asked == ["daily_digest"]
    note = logs.text("newsrag.infra.notify")
    assert "daily_digest is paused" in note and "run manual__***" in note and "wv-from-a-connection-99" not in note
