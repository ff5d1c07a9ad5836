"""The one Airflow notifier every DAG uses: what a failure notification says, and what it never says."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.dags.conftest import collect_logs

pytestmark = pytest.mark.unit

KEY = "wv-live-key-0f3c9a71"
OPENAI = "sk-test-abcdef123456"


def test_a_task_failure_is_notified_without_any_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from newsrag.airflow.notifier import NewsragNotifier

    monkeypatch.setenv("WEAVIATE_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI)
    for var in ("NEWSRAG_NOTIFY_SLACK_WEBHOOK_URL", "NEWSRAG_NOTIFY_SMTP_HOST"):
        monkeypatch.delenv(var, raising=False)
    error = RuntimeError(f"cannot reach https://admin:{KEY}@weaviate:8080 (Authorization: Bearer {OPENAI}); "
                         f"postgresql://airflow:s3cr3t-pw@db/airflow refused")
    context = {"dag": SimpleNamespace(dag_id="news_ingest"), "run_id": "manual__1",
               "ti": SimpleNamespace(task_id="ingest_batch", try_number=2), "exception": error}
    with collect_logs("newsrag.infra.notify") as logs:  # the log notifier's logger
        NewsragNotifier(subject="news_ingest failed").notify(context)
    text = logs.text()
    assert "news_ingest failed" in text and "ingest_batch" in text and "try 2" in text and "cannot reach" in text
    for secret in (KEY, OPENAI, "s3cr3t-pw"):
        assert secret not in text
    assert "https://***@weaviate:8080" in text and "postgresql://***@db/airflow" in text


def test_environment_secrets_are_found_by_name() -> None:
    from newsrag.infra.redaction import environment_secrets

    env = {"WEAVIATE_API_KEY": "k-123456", "NEWSRAG_APP_API_KEYS": "alpha-key, beta-key", "HOME": "/root",
           "NEWSRAG_NOTIFY_SMTP_PASSWORD": "pw-9999", "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-secret-1",
           "EMPTY_TOKEN": ""}
    assert sorted(environment_secrets(env)) == ["alpha-key", "beta-key", "jwt-secret-1", "k-123456", "pw-9999"]


def test_notify_hides_the_secrets_of_the_settings_it_is_handed() -> None:
    """A task body passes its settings (a Connection's key is in them, not in the process environment)."""
    from newsrag.airflow.notifier import notify
    from newsrag.core.settings import Settings

    settings = Settings({"WEAVIATE_API_KEY": "wv-connection-key-4242"})
    with collect_logs("newsrag.infra.notify") as logs:
        assert notify("newsrag: check", "store said wv-connection-key-4242", level="warning", settings=settings) == []
    assert "store said ***" in logs.text() and "wv-connection-key-4242" not in logs.text()
