"""Tell people about an evaluation run: log (always), Slack incoming webhook, e-mail (SMTP).

A notifier implements ``send(subject, body, *, level)`` and may raise; :func:`notify_all` calls
every notifier, logs and collects the failures, and never raises. A Slack webhook URL and an SMTP
password are secrets: they never appear in a log line, an error or a message (:func:`redact`).

Settings (``NEWSRAG_NOTIFY_*``): ``SLACK_WEBHOOK_URL``, ``SMTP_HOST``, ``SMTP_PORT`` (587),
``SMTP_SENDER``, ``SMTP_RECIPIENTS`` (comma-separated), ``SMTP_USERNAME``, ``SMTP_PASSWORD``,
``SMTP_STARTTLS`` (true), ``TIMEOUT`` (10 s).
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
from collections.abc import Iterable, Mapping, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

import httpx
from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from newsrag.core.errors import ConfigError, NewsragError
from newsrag.core.settings import check_secret, load
from newsrag.evaluation.models import EvalRun

log = logging.getLogger(__name__)

Level = Literal["info", "warning", "error"]
LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
MASK = "***"


class NotifyError(NewsragError):
    """A notifier could not deliver (the message names the notifier, never a secret)."""

    retryable = True


def redact(text: str, secrets: Iterable[str | SecretStr | None]) -> str:
    """``text`` with every occurrence of every secret (as is and URL-encoded) replaced by ``***``."""
    values: set[str] = set()
    for s in secrets:
        raw = s.get_secret_value() if isinstance(s, SecretStr) else s
        if raw:
            values |= {raw, quote(raw, safe=""), quote(raw)}
    for value in sorted(values, key=len, reverse=True):  # longest first: no partial leftovers
        text = text.replace(value, MASK)
    return text


_SECRET_VARS = re.compile(r"(API_KEYS?|PASSWORD|TOKEN|SECRET|WEBHOOK_URL)$")
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of the environment variables that hold secrets (``*_API_KEY(S)``, ``*_PASSWORD``,
    ``*_TOKEN``, ``*_SECRET``, ``*_WEBHOOK_URL``; comma-separated key lists split): a task's
    error text may quote one of them, and a notification must not."""
    env = os.environ if environ is None else environ
    values = []
    for name, value in env.items():
        if value and _SECRET_VARS.search(name.upper()):
            values += [v.strip() for v in value.split(",") if len(v.strip()) >= 4]
    return values


def redact_text(text: str, secrets: Iterable[str | SecretStr | None] = ()) -> str:
    """:func:`redact` with the environment's secrets too, and any ``user:password@`` in a URL."""
    return _URL_USERINFO.sub(r"\g<scheme>***@", redact(text, [*secrets, *environment_secrets()]))


@runtime_checkable
class Notifier(Protocol):
    name: str

    def send(self, subject: str, body: str, *, level: Level = "info") -> None: ...


class LogNotifier:
    name = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or log

    def send(self, subject: str, body: str, *, level: Level = "info") -> None:
        self.logger.log(LOG_LEVELS.get(level, logging.INFO), "%s\n%s", subject, body)


class SlackWebhookNotifier:
    """POSTs ``{"text": ...}`` to a Slack incoming webhook."""

    name = "slack"

    def __init__(self, url: str | SecretStr, *, timeout: float = 10.0, client: httpx.Client | None = None) -> None:
        self._url = url if isinstance(url, SecretStr) else SecretStr(url)
        self._timeout = timeout
        self._client = client

    def __repr__(self) -> str:
        return "SlackWebhookNotifier(url='***')"

    def secrets(self) -> list[str]:
        """The URL, and its path and query on their own (a reply may echo just the path)."""
        url = self._url.get_secret_value()
        parts = urlsplit(url)
        return [url, *(p for p in (parts.path, parts.query) if len(p) > 1)]

    def send(self, subject: str, body: str, *, level: Level = "info") -> None:
        icon = {"info": ":information_source:", "warning": ":warning:", "error": ":rotating_light:"}.get(level, "")
        payload = {"text": redact(f"{icon} *{subject}*\n{body}", self.secrets())}
        try:
            if self._client is not None:
                response = self._client.post(self._url.get_secret_value(), json=payload, timeout=self._timeout)
            else:
                response = httpx.post(self._url.get_secret_value(), json=payload, timeout=self._timeout)
        except httpx.HTTPError as exc:  # the exception text may hold the URL: only its type is kept
            raise NotifyError(f"slack webhook: request failed ({type(exc).__name__})") from None
        if response.status_code >= 300:
            detail = redact(response.text[:200], self.secrets()).strip()
            raise NotifyError(f"slack webhook: HTTP {response.status_code}" + (f": {detail}" if detail else ""))


class SmtpNotifier:
    """Sends a plain-text e-mail through an SMTP server (STARTTLS and login when configured)."""

    name = "smtp"

    def __init__(self, host: str, port: int, sender: str, recipients: Sequence[str], username: str | None = None,
                 password: str | SecretStr | None = None, *, starttls: bool = True, timeout: float = 10.0) -> None:
        if not recipients:
            raise ConfigError("NEWSRAG_NOTIFY_SMTP_RECIPIENTS: at least one recipient is needed")
        self.host, self.port, self.sender = host, port, sender
        self.recipients = list(recipients)
        self.username = username
        self._password = SecretStr(password) if isinstance(password, str) else password
        self.starttls, self.timeout = starttls, timeout

    def __repr__(self) -> str:
        return f"SmtpNotifier(host={self.host!r}, port={self.port}, recipients={self.recipients!r})"

    def secrets(self) -> list[str]:
        return [self._password.get_secret_value()] if self._password else []

    def send(self, subject: str, body: str, *, level: Level = "info") -> None:
        msg = EmailMessage()
        msg["Subject"] = redact(f"[{level}] {subject}", self.secrets())
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg.set_content(redact(body, self.secrets()))
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username and self._password:
                    smtp.login(self.username, self._password.get_secret_value())
                smtp.send_message(msg)
        except (smtplib.SMTPException, OSError) as exc:
            raise NotifyError(f"smtp {self.host}:{self.port}: "
                              f"{redact(f'{type(exc).__name__}: {exc}', self.secrets())}"[:300]) from None


class NotifySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSRAG_NOTIFY_", extra="ignore")

    slack_webhook_url: SecretStr | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_sender: str | None = None
    smtp_recipients: Annotated[list[str], NoDecode] = Field(default_factory=list)  # comma-separated
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    timeout: float = Field(10.0, gt=0)

    @field_validator("smtp_recipients", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return [p.strip() for p in v.split(",") if p.strip()] if isinstance(v, str) else v

    @field_validator("slack_webhook_url", "smtp_password")
    @classmethod
    def _not_placeholder(cls, v: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        try:
            return check_secret(v, f"NEWSRAG_NOTIFY_{str(info.field_name).upper()}")
        except ValueError as exc:  # ConfigError passes pydantic unwrapped: the value is never echoed
            raise ConfigError(str(exc)) from None

    @model_validator(mode="after")
    def _smtp_complete(self) -> NotifySettings:
        if self.smtp_host and not (self.smtp_sender and self.smtp_recipients):
            raise ConfigError("NEWSRAG_NOTIFY_SMTP_HOST is set: NEWSRAG_NOTIFY_SMTP_SENDER and "
                             "NEWSRAG_NOTIFY_SMTP_RECIPIENTS are required too")
        return self


def notifiers_from_env(settings: NotifySettings | None = None) -> list[Notifier]:
    """The log notifier, plus Slack and SMTP when configured."""
    settings = settings or load(NotifySettings)
    out: list[Notifier] = [LogNotifier()]
    if settings.slack_webhook_url is not None:
        out.append(SlackWebhookNotifier(settings.slack_webhook_url, timeout=settings.timeout))
    if settings.smtp_host:
        out.append(SmtpNotifier(settings.smtp_host, settings.smtp_port, settings.smtp_sender or "",
                                settings.smtp_recipients, settings.smtp_username, settings.smtp_password,
                                starttls=settings.smtp_starttls, timeout=settings.timeout))
    return out


def _secrets_of(notifier: Any) -> list[str] | None:
    """The notifier's secrets; None (logged) when its ``secrets()`` fails: it is then not used,
    since what it must hide is unknown."""
    try:
        return list(getattr(notifier, "secrets", list)())
    except Exception as exc:  # noqa: BLE001 - reported as that notifier's failure by notify_all
        log.warning("notifier %s: secrets() failed (%s); not sending through it",
                    getattr(notifier, "name", type(notifier).__name__), type(exc).__name__)
        return None


def notify_all(notifiers: Iterable[Notifier], subject: str, body: str, *, level: Level = "info",
               secrets: Iterable[str | SecretStr | None] = ()) -> list[str]:
    """Send to every notifier; returns ``"<name>: <error>"`` per failure. Never raises. Every
    notifier's secrets, ``secrets``, the environment's secrets (:func:`environment_secrets`) and
    URL credentials are redacted from the message and from the failures. A notifier whose
    ``secrets()`` fails is skipped (a failure)."""
    items = [(n, _secrets_of(n)) for n in notifiers]
    hidden = [*secrets, *(s for _, own in items for s in own or [])]  # redact_text adds the environment's
    subject, body = redact_text(subject, hidden), redact_text(body, hidden)
    failures: list[str] = []
    for notifier, own in items:
        name = str(getattr(notifier, "name", type(notifier).__name__))
        if own is None:
            failures.append(f"{name}: its secrets() failed, so it was not used")
            continue
        try:
            notifier.send(subject, body, level=level)
        except Exception as exc:  # noqa: BLE001 - one failing channel must not silence the others
            failure = redact_text(f"{name}: {type(exc).__name__}: {exc}", hidden)
            log.warning("notification via %s failed: %s", name, failure)
            failures.append(failure)
    return failures


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def headline_rows(run: EvalRun, previous: EvalRun | None = None) -> list[tuple[str, str, str, str]]:
    """``(metric, mean, "[low, high]", delta vs previous)`` per aggregate, as text (CLI, messages)."""
    rows = []
    for name, agg in run.aggregates.items():
        base = previous.aggregates.get(name) if previous is not None else None
        delta = "" if base is None or base.mean is None or agg.mean is None else f"{agg.mean - base.mean:+.3f}"
        rows.append((name, _fmt(agg.mean), f"[{_fmt(agg.low)}, {_fmt(agg.high)}]", delta))
    return rows


def run_message(run: EvalRun, report_path: str | Path | None = None, baseline: EvalRun | None = None,
                report_error: str | None = None) -> tuple[str, str, Level]:
    """``(subject, body, level)`` describing a run: its regressions (if any), every metric with its
    interval and its change against the baseline, and where the report is (or why it is not)."""
    regression = run.status == "regression"
    verdict = "REGRESSION" if regression else run.status
    subject = (f"newsrag eval {verdict}: run {run.run_id} (prompt {run.prompt_name} {run.prompt_version}, "
               f"{run.generator}/{run.model})")
    lines = [f"run: {run.run_id}  started {run.started_at.isoformat(timespec='seconds')}",
             f"prompt: {run.prompt_name} version {run.prompt_version}; generator {run.generator} ({run.model})",
             f"index: {run.index.collection} ({run.index.object_count} objects)",
             f"golden set: {run.golden_path} ({len(run.results)} questions)"]
    if baseline is not None:
        lines.append(f"baseline: run {baseline.run_id} (prompt {baseline.prompt_name} {baseline.prompt_version})")
    if run.regressions:
        lines += ["", "regressions:", *(f"  - {r}" for r in run.regressions)]
    lines += ["", "metrics: mean [95% CI]" + (" (change vs baseline)" if baseline else "")]
    lines += [f"  {name}: {value} {ci}" + (f" ({delta})" if delta else "")
              for name, value, ci, delta in headline_rows(run, baseline)]
    lines += ["", f"report: {report_path}" if report_path else
              f"report: NOT written: {report_error}" if report_error else "report: not written"]
    return subject, "\n".join(lines), "error" if regression else "info"


def print_summary(console: Console, run: EvalRun, previous: EvalRun | None = None,
                  report_path: str | Path | None = None, notify_failures: Sequence[str] = ()) -> None:
    """The run on a terminal: headline table (metric, mean, interval, change vs ``previous``),
    failed-question counts, regressions, notification failures and the report's path."""
    table = Table("metric", "mean", "95% CI", f"Δ vs {previous.run_id}" if previous else "Δ vs previous",
                  title=f"run {run.run_id} · {run.prompt_name} {run.prompt_version} · {run.status}")
    for row in headline_rows(run, previous):
        table.add_row(*row)
    console.print(table)
    failed = sum(1 for r in run.results if r.failure_reason)
    errors = sum(1 for r in run.results if r.error)
    console.print(f"{len(run.results)} questions, {failed} failed, {errors} with errors", highlight=False)
    for reason in run.regressions:
        console.print(f"[bold red]regression:[/] {escape(reason)}", highlight=False)
    for failure in notify_failures:
        console.print(f"[yellow]notification failed:[/] {escape(failure)}", highlight=False)
    console.print(f"report: {report_path}" if report_path else "report: not written", highlight=False)
