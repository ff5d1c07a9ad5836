"""Notifications: log (always), Slack incoming webhook, e-mail (SMTP); used by evaluation, prompt
releases and the Airflow failure callbacks alike.

A notifier implements ``send(subject, body, *, level)`` and may raise; :func:`notify_all` calls
every notifier, logs and collects the failures, and never raises. A Slack webhook URL and an SMTP
password are secrets: they never appear in a log line, an error or a message
(:mod:`newsrag.infra.redaction`).

Settings (``NEWSRAG_NOTIFY_*``): ``SLACK_WEBHOOK_URL``, ``SMTP_HOST``, ``SMTP_PORT`` (587),
``SMTP_SENDER``, ``SMTP_RECIPIENTS`` (comma-separated), ``SMTP_USERNAME``, ``SMTP_PASSWORD``,
``SMTP_STARTTLS`` (true), ``TIMEOUT`` (10 s).
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterable, Mapping, Sequence
from email.message import EmailMessage
from typing import Annotated, Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx
from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from newsrag.core.errors import ConfigError, NewsragError
from newsrag.core.settings import check_secret, defaults
from newsrag.infra.redaction import environment_secrets, redact, redact_text

log = logging.getLogger(__name__)

Level = Literal["info", "warning", "error"]
LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class NotifyError(NewsragError):
    """A notifier could not deliver (the message names the notifier, never a secret)."""

    retryable = True


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


def notifiers_from_settings(settings: NotifySettings | None = None) -> list[Notifier]:
    """The log notifier, plus Slack and SMTP when ``settings`` configure them (None: the defaults,
    the log notifier only; an edge passes ``root.get(NotifySettings)``)."""
    settings = settings or defaults(NotifySettings)
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
               secrets: Iterable[str | SecretStr | None] = (), environ: Mapping[str, str] | None = None) -> list[str]:
    """Send to every notifier; returns ``"<name>: <error>"`` per failure. Never raises. Every
    notifier's secrets, ``secrets``, the secrets of ``environ`` (the edge's ``Settings.environ``)
    and URL credentials are redacted from the message and from the failures
    (:func:`~newsrag.infra.redaction.redact_text`). A notifier whose ``secrets()`` fails is
    skipped (a failure)."""
    items = [(n, _secrets_of(n)) for n in notifiers]
    hidden = [*secrets, *(s for _, own in items for s in own or [])]
    hidden += environment_secrets(environ) if environ is not None else []  # once, not per text
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
