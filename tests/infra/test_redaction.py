"""Redaction (newsrag.infra.redaction) and its one secret-name detector (newsrag.core.secret_names):
every name any of the four former rules hid is still hidden, by every user of the detector."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.core.errors import ConfigError
from newsrag.core.secret_names import is_secret_name, may_hold_secret
from newsrag.core.settings import Settings, load
from newsrag.infra import redaction
from newsrag.infra.redaction import display_url, environment_secrets, redact, redact_text

pytestmark = pytest.mark.unit

# What each former rule hid (notification environment scan, Airflow settings mask, report scrub,
# settings error messages), and names that hold no secret.
FORMER_NOTIFY = ["OPENAI_API_KEY", "NEWSRAG_APP_API_KEYS", "NEWSRAG_NOTIFY_SMTP_PASSWORD", "GITHUB_TOKEN",
                 "AIRFLOW__API_AUTH__JWT_SECRET", "NEWSRAG_NOTIFY_SLACK_WEBHOOK_URL"]
FORMER_AIRFLOW = ["WEAVIATE_API_KEY", "COHERE_API_KEY", "NEWSRAG_APP_ADMIN_KEYS", "AIRFLOW__API__SECRET_KEY",
                  "DB_PASSWORD_FILE", "SECRETS_BACKEND", "REFRESH_TOKEN"]
FORMER_REPORT = ["api_key", "api-key", "apikey", "Authorization", "client_secret", "password", "passwd",
                 "access_token", "accessToken", "auth-token", "bearer", "X-Api-Key"]
FORMER_SETTINGS_FIELDS = ["api_key", "api_keys", "admin_keys", "smtp_password", "slack_webhook_url"]
NOT_SECRETS = ["tokens", "max_tokens", "budget_tokens", "chunk_tokens", "token_count", "key", "keyword",
               "monkey", "WEAVIATE_URL", "HOME", "NEWSRAG_HOME", "trace_id", "author"]


@pytest.mark.parametrize("name", FORMER_NOTIFY + FORMER_AIRFLOW + FORMER_REPORT + FORMER_SETTINGS_FIELDS)
def test_every_name_a_former_rule_hid_is_a_secret_name(name: str) -> None:
    assert is_secret_name(name) and may_hold_secret(name)


@pytest.mark.parametrize("name", NOT_SECRETS)
def test_counts_plain_keys_and_ordinary_names_are_not_secrets(name: str) -> None:
    assert not is_secret_name(name)


@pytest.mark.parametrize("name", ["url", "grpc_url", "history_url", "base_url", "gold_urls", "max_url_chars", "dsn"])
def test_a_url_may_hold_a_secret_but_is_not_one_by_name(name: str) -> None:
    assert may_hold_secret(name) and not is_secret_name(name)


def test_the_environment_scan_uses_the_one_detector() -> None:
    """Admin keys and ``*_SECRET_KEY`` names were missed by the notification scan's own rule."""
    env = {"NEWSRAG_APP_ADMIN_KEYS": "admin-key-1, admin-key-2", "AIRFLOW__API__SECRET_KEY": "flask-9999",
           "NEWSRAG_INGEST_CHUNK_TOKENS": "2000", "SHORT_TOKEN": "abc", "HOME": "/root"}
    assert sorted(environment_secrets(env)) == ["admin-key-1", "admin-key-2", "flask-9999"]


def test_redact_text_hides_environment_secrets_and_url_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_APP_ADMIN_KEYS", "adm-123456")
    environ = Settings().environ  # what an edge hands in
    text = redact_text("key adm-123456 at postgresql://u:pw@db/x, extra xyz-secret", ["xyz-secret"], environ)
    assert text == "key *** at postgresql://***@db/x, extra ***"
    # the library reads no environment itself: only what it is handed is hidden
    assert redact_text("key adm-123456", environ={"OTHER_TOKEN": "tok-98765"}) == "key adm-123456"
    assert redact_text("key tok-98765", environ={"OTHER_TOKEN": "tok-98765"}) == "key ***"


def test_redact_replaces_every_secret_form() -> None:
    text = "url https://hooks.example/a%2Fb?x=1 raw a/b and abc/abcdef"
    assert redact(text, ["a/b", None, "", SecretStr("abcdef")]) == "url https://hooks.example/***?x=1 raw *** and abc/***"
    assert redact("nothing to hide", []) == "nothing to hide"
    assert redaction.MASK == "***"


def test_display_url_masks_the_password_and_keeps_the_user() -> None:
    assert display_url("postgresql://evaluser:s3cr3t@db:5432/x") == "postgresql://evaluser:***@db:5432/x"
    assert display_url("postgresql://db/x?user=u&password=pw&sslmode=require") == \
        "postgresql://db/x?user=u&password=***&sslmode=require"
    assert display_url("/home/u/.newsrag/eval-history.sqlite") == "/home/u/.newsrag/eval-history.sqlite"


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="T_REDACT_", extra="ignore")

    admin_keys: list[int] = []
    history_url: int = 0
    chunk_tokens: int = 0


@pytest.mark.parametrize(("field", "variable"), [("admin_keys", "T_REDACT_ADMIN_KEYS"),
                                                 ("history_url", "T_REDACT_HISTORY_URL")])
def test_a_settings_error_never_echoes_a_secret_or_url_setting(field: str, variable: str) -> None:
    given: dict[str, Any] = {field: ["s3cret-value"] if field == "admin_keys" else "postgresql://u:s3cret-value@db/x"}
    with pytest.raises(ConfigError, match=variable) as caught:
        load(_Settings, **given)
    assert "s3cret-value" not in str(caught.value)


def test_a_settings_error_echoes_what_a_count_was_given() -> None:
    """``*_tokens`` counts are not secrets (the former rule hid anything containing "token")."""
    with pytest.raises(ConfigError, match=r"T_REDACT_CHUNK_TOKENS: .* \(got 'many'\)"):
        load(_Settings, chunk_tokens="many")
