"""One place that configures failure, regression and warning notifications for every DAG.

An Airflow notifier that forwards to newsrag's own notifiers (log by default; Slack webhook and
SMTP when NEWSRAG_NOTIFY_* is set), and :func:`notify` for task code that has something to report
without failing (a paused consumer DAG). Secrets are redacted by the library (the settings'
environment's too); task context values that could carry secrets (conf, params) are never included.

Its settings: what the caller passes (a task body's ``task_settings()``), else the worker's
environment: a failure callback must not depend on the Connections whose absence may be the failure.
"""

from __future__ import annotations

from typing import Any, Literal

from airflow.sdk import BaseNotifier

from newsrag.core.settings import Settings


def notify(subject: str, body: str, level: Literal["info", "warning", "error"] = "error",
           settings: Settings | None = None) -> list[str]:
    """Send through every channel ``settings`` configure (default: the worker's environment);
    returns the failures (never raises, never a secret)."""
    from newsrag.infra.notify import NotifySettings, notifiers_from_settings, notify_all

    settings = settings if settings is not None else Settings()
    return notify_all(notifiers_from_settings(settings.get(NotifySettings)), subject, body, level=level,
                      environ=settings.environ)


class NewsragNotifier(BaseNotifier):
    template_fields = ("subject",)

    def __init__(self, subject: str = "newsrag: {{ dag.dag_id }} task {{ ti.task_id }} failed") -> None:
        super().__init__()
        self.subject = self._template = subject

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        # Rendering replaces self.subject; tasks sharing this instance (default_args, several tasks
        # in one process as under dag.test) must each render the template, not the last subject.
        self.subject = self._template
        super().render_template_fields(context, jinja_env)

    def notify(self, context: Any) -> None:
        ti = context.get("ti")
        error = context.get("exception")
        body = (f"DAG {context['dag'].dag_id}, run {context.get('run_id')}, task {getattr(ti, 'task_id', '?')}"
                f" (try {getattr(ti, 'try_number', '?')}): {error}")
        notify(self.subject, body, level="error")


def on_failure() -> NewsragNotifier:
    return NewsragNotifier()
