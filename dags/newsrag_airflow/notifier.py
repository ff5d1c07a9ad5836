"""One place that configures failure and regression notifications for every DAG.

An Airflow notifier that forwards to newsrag's own notifiers (log by default; Slack webhook and
SMTP when NEWSRAG_NOTIFY_* is set). Secrets are redacted by the library; task context values
that could carry secrets (conf, params) are never included.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseNotifier


class NewsragNotifier(BaseNotifier):
    template_fields = ("subject",)

    def __init__(self, subject: str = "newsrag: {{ dag.dag_id }} task {{ ti.task_id }} failed") -> None:
        super().__init__()
        self.subject = subject

    def notify(self, context: Any) -> None:
        from evaluation.notify import notifiers_from_env, notify_all

        ti = context.get("ti")
        error = context.get("exception")
        body = (f"DAG {context['dag'].dag_id}, run {context.get('run_id')}, task {getattr(ti, 'task_id', '?')}"
                f" (try {getattr(ti, 'try_number', '?')}): {error}")
        notify_all(notifiers_from_env(), self.subject, body, level="error")


def on_failure() -> NewsragNotifier:
    return NewsragNotifier()
