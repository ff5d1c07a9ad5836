"""Notifiers: the log, a Slack webhook (a loopback server capturing the POST), SMTP (a stand-in
smtplib.SMTP); secrets never leak; one failing notifier does not stop the others. (Moved from
tests/evaluation/test_notify.py with newsrag.infra.notify; the run message tests are in
tests/evaluation/test_messages.py, the redaction tests in tests/infra/test_redaction.py.)"""

from __future__ import annotations

import logging
import smtplib
import socket
from email.message import EmailMessage
from typing import Any, ClassVar, Self

import pytest
from pydantic import SecretStr

from newsrag.core.errors import ConfigError
from newsrag.core.settings import load
from newsrag.infra.notify import (
    LogNotifier,
    NotifyError,
    NotifySettings,
    SlackWebhookNotifier,
    SmtpNotifier,
    notifiers_from_settings,
    notify_all,
)
from tests.embeddings.fake_providers import FakeProviderServer, Received, Reply
from tests.evaluation.notifiers import Capture

pytestmark = pytest.mark.unit

HOOK_PATH = "/services/T0001/B0002/xoxSECRETtoken42"
SMTP_PASSWORD = "hunter2-smtp-pass"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in NotifySettings.model_fields:
        monkeypatch.delenv(f"NEWSRAG_NOTIFY_{field.upper()}", raising=False)


@pytest.fixture
def server() -> Any:
    with FakeProviderServer() as s:
        yield s


class Failing:
    name = "failing"

    def __init__(self, message: str) -> None:
        self.message = message

    def send(self, subject: str, body: str, *, level: Any = "info") -> None:
        raise RuntimeError(self.message)


class FakeSMTP:
    instances: ClassVar[list[FakeSMTP]] = []
    fail_login = False

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.calls: list[tuple[str, Any]] = []
        self.messages: list[EmailMessage] = []
        FakeSMTP.instances.append(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.calls.append(("quit", None))

    def starttls(self) -> None:
        self.calls.append(("starttls", None))

    def login(self, user: str, password: str) -> None:
        self.calls.append(("login", (user, password)))
        if FakeSMTP.fail_login:
            raise smtplib.SMTPAuthenticationError(535, f"5.7.8 rejected {user}/{password}".encode())

    def send_message(self, msg: EmailMessage) -> None:
        self.calls.append(("send_message", None))
        self.messages.append(msg)


@pytest.fixture
def fake_smtp(monkeypatch: pytest.MonkeyPatch) -> type[FakeSMTP]:
    FakeSMTP.instances, FakeSMTP.fail_login = [], False
    monkeypatch.setattr(smtplib, "SMTP", FakeSMTP)
    return FakeSMTP


def test_log_notifier_logs_at_the_level(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="newsrag.infra.notify"):
        LogNotifier().send("subject line", "body text", level="error")
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.getMessage() == "subject line\nbody text"


def test_slack_posts_json_text_to_the_webhook(server: FakeProviderServer) -> None:
    server.route(HOOK_PATH, (200, {"Content-Type": "text/plain"}, b"ok"))
    SlackWebhookNotifier(server.url(HOOK_PATH)).send("eval regression", "hit@k dropped", level="warning")
    [req] = server.requests_to(HOOK_PATH)
    assert req.method == "POST" and req.headers["content-type"] == "application/json"
    assert req.json == {"text": ":warning: *eval regression*\nhit@k dropped"}


def test_slack_failures_never_show_the_webhook_url(server: FakeProviderServer) -> None:
    def echo(req: Received) -> Reply:
        return 500, {"Content-Type": "text/plain"}, f"no such hook {req.path}".encode()

    url = server.url(HOOK_PATH)
    server.route(HOOK_PATH, echo)
    notifier = SlackWebhookNotifier(SecretStr(url))
    with pytest.raises(NotifyError) as caught:
        notifier.send("s", f"a body that quotes the hook {url}")
    assert str(caught.value) == "slack webhook: HTTP 500: no such hook ***"  # the reply echoed the path
    [req] = server.requests_to(HOOK_PATH)
    assert "xoxSECRETtoken42" not in req.json["text"]  # the body was redacted before it left
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}{HOOK_PATH}"
    with pytest.raises(NotifyError) as refused:
        SlackWebhookNotifier(closed, timeout=2).send("s", "b")
    assert str(refused.value) == "slack webhook: request failed (ConnectError)"
    assert refused.value.__cause__ is None and refused.value.__suppress_context__
    assert "xoxSECRETtoken42" not in repr(notifier)


def test_smtp_sends_a_mail_with_starttls_and_login(fake_smtp: type[FakeSMTP]) -> None:
    SmtpNotifier("smtp.example", 587, "evals@example.org", ["a@example.org", "b@example.org"], "bot",
                 SecretStr(SMTP_PASSWORD)).send("eval regression", "details here", level="error")
    [smtp] = fake_smtp.instances
    assert (smtp.host, smtp.port) == ("smtp.example", 587)
    assert [c[0] for c in smtp.calls] == ["starttls", "login", "send_message", "quit"]
    assert smtp.calls[1][1] == ("bot", SMTP_PASSWORD)
    [msg] = smtp.messages
    assert msg["Subject"] == "[error] eval regression" and msg["From"] == "evals@example.org"
    assert msg["To"] == "a@example.org, b@example.org" and msg.get_content().strip() == "details here"
    SmtpNotifier("localhost", 25, "x@example.org", ["y@example.org"], starttls=False).send("s", "b")
    assert [c[0] for c in fake_smtp.instances[1].calls] == ["send_message", "quit"]  # no TLS, no login


def test_smtp_failure_hides_the_password(fake_smtp: type[FakeSMTP]) -> None:
    fake_smtp.fail_login = True
    notifier = SmtpNotifier("smtp.example", 587, "e@example.org", ["a@example.org"], "bot", SMTP_PASSWORD)
    with pytest.raises(NotifyError) as caught:
        notifier.send("s", f"the password is {SMTP_PASSWORD}")
    assert "SMTPAuthenticationError" in str(caught.value) and SMTP_PASSWORD not in str(caught.value)
    assert "***" in str(caught.value)
    with pytest.raises(ConfigError, match="at least one recipient"):
        SmtpNotifier("h", 25, "e@example.org", [])


def test_a_failing_notifier_does_not_stop_the_others_and_secrets_stay_hidden(
        caplog: pytest.LogCaptureFixture) -> None:
    capture = Capture()
    with caplog.at_level(logging.WARNING, logger="newsrag.infra.notify"):
        failures = notify_all([Failing("token sk-live-123 rejected"), capture, Failing("boom")],
                              "run r1 regressed", "the key sk-live-123 leaked into the body", level="error",
                              secrets=[SecretStr("sk-live-123"), None, ""])
    assert capture.sent == [("run r1 regressed", "the key *** leaked into the body", "error")]
    assert failures == ["failing: RuntimeError: token *** rejected", "failing: RuntimeError: boom"]
    assert "sk-live-123" not in caplog.text and "notification via failing failed" in caplog.text


def test_a_notifier_whose_secrets_cannot_be_read_is_not_used_and_that_is_reported(
        caplog: pytest.LogCaptureFixture) -> None:
    """What it would have to hide is unknown, so it must not send (and the failure is not hidden)."""
    class Broken(Capture):
        name = "broken"

        def secrets(self) -> list[str]:
            raise RuntimeError("vault sk-vault-9876 unreachable")

    broken, capture = Broken(), Capture()
    with caplog.at_level(logging.WARNING, logger="newsrag.infra.notify"):
        failures = notify_all([broken, capture], "run r1 regressed", "body")
    assert broken.sent == [] and capture.sent == [("run r1 regressed", "body", "info")]
    assert failures == ["broken: its secrets() failed, so it was not used"]
    assert "notifier broken: secrets() failed (RuntimeError)" in caplog.text and "sk-vault" not in caplog.text


def test_notify_all_redacts_the_secrets_of_the_environment_it_is_handed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_APP_ADMIN_KEYS", "process-admin-key")  # not handed: not read
    capture = Capture()
    environ = {"OPENAI_API_KEY": "sk-handed-123456", "HOME": "/root"}
    assert notify_all([capture], "s sk-handed-123456", "body sk-handed-123456 /root", environ=environ) == []
    assert capture.sent == [("s ***", "body *** /root", "info")]
    notify_all([capture], "s", "process-admin-key")
    assert capture.sent[-1][1] == "process-admin-key"  # the library reads no environment of its own


def test_notify_all_redacts_each_notifiers_own_secrets(fake_smtp: type[FakeSMTP]) -> None:
    capture = Capture()
    smtp = SmtpNotifier("smtp.example", 587, "e@example.org", ["a@example.org"], "bot", SMTP_PASSWORD)
    assert notify_all([smtp, capture], "s", f"oops {SMTP_PASSWORD}") == []
    assert capture.sent[0][1] == "oops ***"
    assert fake_smtp.instances[0].messages[0].get_content().strip() == "oops ***"


def test_notifiers_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert [type(n) for n in notifiers_from_settings(load(NotifySettings))] == [LogNotifier]
    monkeypatch.setenv("NEWSRAG_NOTIFY_SLACK_WEBHOOK_URL", "https://hooks.slack.example" + HOOK_PATH)
    monkeypatch.setenv("NEWSRAG_NOTIFY_SMTP_HOST", "smtp.example")
    monkeypatch.setenv("NEWSRAG_NOTIFY_SMTP_SENDER", "evals@example.org")
    monkeypatch.setenv("NEWSRAG_NOTIFY_SMTP_RECIPIENTS", "a@example.org, b@example.org")
    monkeypatch.setenv("NEWSRAG_NOTIFY_SMTP_PASSWORD", SMTP_PASSWORD)
    log, slack, smtp = notifiers_from_settings(load(NotifySettings))
    assert isinstance(log, LogNotifier) and isinstance(slack, SlackWebhookNotifier)
    assert isinstance(smtp, SmtpNotifier) and smtp.recipients == ["a@example.org", "b@example.org"]
    assert smtp.port == 587 and "xoxSECRETtoken42" not in repr(slack) and SMTP_PASSWORD not in repr(smtp)
    # the library never reads the environment: without settings, the defaults (the log only)
    assert [type(n) for n in notifiers_from_settings()] == [LogNotifier]
    monkeypatch.delenv("NEWSRAG_NOTIFY_SMTP_RECIPIENTS")
    with pytest.raises(ConfigError, match="NEWSRAG_NOTIFY_SMTP_RECIPIENTS are required"):
        notifiers_from_settings(load(NotifySettings))
    monkeypatch.setenv("NEWSRAG_NOTIFY_SMTP_RECIPIENTS", "a@example.org")
    monkeypatch.setenv("NEWSRAG_ENV", "production")
    monkeypatch.setenv("NEWSRAG_NOTIFY_SMTP_PASSWORD", "changeme")
    with pytest.raises(ConfigError, match="NEWSRAG_NOTIFY_SMTP_PASSWORD") as caught:
        load(NotifySettings)
    assert "changeme" not in str(caught.value)
