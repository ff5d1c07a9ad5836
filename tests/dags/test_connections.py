"""newsrag.airflow.connections: Airflow Connections (defined through AIRFLOW_CONN_* variables, as the
Task SDK reads them) become the library's environment-style settings; secrets never show."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "dags") not in sys.path:
    sys.path.append(str(REPO / "dags"))

from airflow.sdk.exceptions import AirflowFailException

from newsrag.airflow.connections import (
    DEFAULT_CONN_IDS,
    settings_env,
)

WEAVIATE_KEY = "wv-Secret-4f1c9a77e2"
OPENAI_KEY = "sk-test-Secret-9b0d3e5c1a"
COHERE_KEY = "co-test-Secret-2a7f6d4b8c"
SECRETS = (WEAVIATE_KEY, OPENAI_KEY, COHERE_KEY)
SETTINGS = ("WEAVIATE_URL", "WEAVIATE_GRPC_URL", "WEAVIATE_API_KEY", "WEAVIATE_COLLECTION", "WEAVIATE_TIMEOUT",
            "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_RPM", "COHERE_API_KEY", "COHERE_BASE_URL",
            "NEWSRAG_EMBED_MODEL", "NEWSRAG_EMBED_PROVIDER", "NEWSRAG_OPENAI_CHAT_MODEL",
            "NEWSRAG_COHERE_RERANK_MODEL")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No connection, variable or setting leaks in from the machine or another test."""
    for name in list(os.environ):
        if name.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_")) or name in SETTINGS:
            monkeypatch.delenv(name)
    yield


def conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, value: str | dict[str, object]) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value if isinstance(value, str) else json.dumps(value))


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# -- Weaviate --------------------------------------------------------------------------------------

def test_weaviate_uri_form(monkeypatch: pytest.MonkeyPatch) -> None:
    conn(monkeypatch, "weaviate_default", f"http://:{WEAVIATE_KEY}@weaviate:8080?grpc_port=50051&collection=NewsProd")
    env = settings_env(required=("weaviate_default",))
    assert dict(env) == {
        "WEAVIATE_URL": "http://weaviate:8080",
        "WEAVIATE_GRPC_URL": "http://weaviate:50051",
        "WEAVIATE_API_KEY": WEAVIATE_KEY,
        "WEAVIATE_COLLECTION": "NewsProd",
    }


def test_weaviate_json_form_https_and_separate_grpc_host(monkeypatch: pytest.MonkeyPatch) -> None:
    conn(monkeypatch, "weaviate_default", {
        "conn_type": "http", "host": "weaviate.example.org", "port": 443, "schema": "https",
        "extra": {"api_key": WEAVIATE_KEY, "grpc_host": "grpc.weaviate.example.org", "grpc_port": 443,
                  "timeout": 60},
    })
    env = settings_env(conn_ids=("weaviate_default",))
    assert env["WEAVIATE_URL"] == "https://weaviate.example.org:443"
    assert env["WEAVIATE_GRPC_URL"] == "https://grpc.weaviate.example.org:443"
    assert env["WEAVIATE_API_KEY"] == WEAVIATE_KEY
    assert env["WEAVIATE_TIMEOUT"] == "60"


def test_weaviate_cloud_https_uri_without_grpc_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    conn(monkeypatch, "weaviate_default", f"https://:{WEAVIATE_KEY}@my-cluster.weaviate.cloud")
    env = settings_env(conn_ids=("weaviate_default",))
    assert env["WEAVIATE_URL"] == "https://my-cluster.weaviate.cloud"
    assert "WEAVIATE_GRPC_URL" not in env  # the library derives it (and uses the cloud helper)


def test_weaviate_anonymous_and_host_with_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    conn(monkeypatch, "weaviate_default", {"conn_type": "generic", "host": "https://search.internal:8443",
                                           "extra": {"grpc_secure": "false"}})
    env = settings_env(conn_ids=("weaviate_default",))
    assert env == {"WEAVIATE_URL": "https://search.internal:8443", "WEAVIATE_GRPC_URL": "http://search.internal:50051"}


def test_percent_encoded_key_is_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    conn(monkeypatch, "weaviate_default", "http://:a%2Fb%40c%3Ad@weaviate:8080")
    assert settings_env(conn_ids=("weaviate_default",))["WEAVIATE_API_KEY"] == "a/b@c:d"


def test_mapping_lands_in_the_library_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from newsrag.core.settings import WeaviateSettings

    conn(monkeypatch, "weaviate_default", f"http://:{WEAVIATE_KEY}@weaviate:8080?grpc_port=50052")
    from newsrag.airflow.hooks import NewsragHook

    settings = NewsragHook(required=("weaviate_default",)).get_settings().get(WeaviateSettings)
    assert settings.url == "http://weaviate:8080"
    assert settings.grpc_url == "http://weaviate:50052"
    assert settings.api_key is not None and settings.api_key.get_secret_value() == WEAVIATE_KEY


# -- OpenAI and Cohere -----------------------------------------------------------------------------

def test_openai_uri_form_with_base_url_and_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_EMBED_PROVIDER", "openai")
    conn(monkeypatch, "openai_default",
         f"https://:{OPENAI_KEY}@llm-proxy.internal:4000/v1?model=text-embedding-3-large&rpm=500")
    env = settings_env(conn_ids=("openai_default",))
    assert dict(env) == {
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": "https://llm-proxy.internal:4000/v1",
        "NEWSRAG_EMBED_MODEL": "text-embedding-3-large",
        "OPENAI_RPM": "500",
    }


def test_openai_json_form_key_only_and_model_ignored_for_other_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_EMBED_PROVIDER", "local")
    conn(monkeypatch, "openai_default", {"conn_type": "generic", "password": OPENAI_KEY,
                                         "extra": {"model": "text-embedding-3-small", "chat_model": "gpt-4o-mini"}})
    env = settings_env(conn_ids=("openai_default",))
    assert dict(env) == {"OPENAI_API_KEY": OPENAI_KEY, "NEWSRAG_OPENAI_CHAT_MODEL": "gpt-4o-mini"}


def test_openai_host_holding_a_url_and_keyless_compatible_server(monkeypatch: pytest.MonkeyPatch) -> None:
    conn(monkeypatch, "openai_default", {"conn_type": "openai", "host": "https://api.openai.com/v1",
                                         "password": OPENAI_KEY})
    assert settings_env(conn_ids=("openai_default",))["OPENAI_BASE_URL"] == "https://api.openai.com/v1"
    conn(monkeypatch, "openai_default", "http://vllm:8000/v1")
    assert dict(settings_env(conn_ids=("openai_default",))) == {"OPENAI_BASE_URL": "http://vllm:8000/v1"}


def test_cohere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_EMBED_PROVIDER", "cohere")
    conn(monkeypatch, "cohere_default", {"conn_type": "generic", "password": COHERE_KEY,
                                         "extra": {"model": "embed-v4.0", "rerank_model": "rerank-v3.5"}})
    env = settings_env(conn_ids=("cohere_default",), required=("cohere_default",))
    assert dict(env) == {"COHERE_API_KEY": COHERE_KEY, "NEWSRAG_EMBED_MODEL": "embed-v4.0",
                         "NEWSRAG_COHERE_RERANK_MODEL": "rerank-v3.5"}


def test_all_three_together(monkeypatch: pytest.MonkeyPatch) -> None:
    conn(monkeypatch, "weaviate_default", f"http://:{WEAVIATE_KEY}@weaviate:8080")
    conn(monkeypatch, "openai_default", f"https://:{OPENAI_KEY}@api.openai.com/v1")
    conn(monkeypatch, "cohere_default", f"https://:{COHERE_KEY}@api.cohere.com")
    env = settings_env(DEFAULT_CONN_IDS, required=DEFAULT_CONN_IDS)
    assert {k: env[k] for k in ("WEAVIATE_API_KEY", "OPENAI_API_KEY", "COHERE_API_KEY")} == dict(
        zip(("WEAVIATE_API_KEY", "OPENAI_API_KEY", "COHERE_API_KEY"), SECRETS))
    assert env["COHERE_BASE_URL"] == "https://api.cohere.com"


# -- missing and unusable connections --------------------------------------------------------------

def test_missing_required_connection_fails_without_retry_and_says_how_to_create_it() -> None:
    with pytest.raises(AirflowFailException) as info:
        settings_env(required=("weaviate_default",))
    message = str(info.value)
    assert "weaviate_default" in message
    create = "airflow connections add weaviate_default --conn-uri 'http://:API_KEY@weaviate:8080?grpc_port=50051'"
    assert create in message
    assert "AIRFLOW_CONN_WEAVIATE_DEFAULT" in message


def test_missing_optional_connections_set_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    conn(monkeypatch, "weaviate_default", "http://weaviate:8080")
    env = settings_env(required=("weaviate_default",))  # openai_default and cohere_default are optional
    assert dict(env) == {"WEAVIATE_URL": "http://weaviate:8080"}
    assert not any(k.startswith(("OPENAI_", "COHERE_")) for k in env)
    assert settings_env(conn_ids=("openai_default", "cohere_default")) == {}


def test_unusable_connection_fails_without_echoing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_OPENAI_DEFAULT", json.dumps({"conn_type": "generic", "extra": {"model": "x"}}))
    with pytest.raises(AirflowFailException, match="openai_default.*neither an API key"):
        settings_env(conn_ids=("openai_default",))
    conn(monkeypatch, "weaviate_default", {"conn_type": "http", "host": "weaviate", "password": WEAVIATE_KEY,
                                           "extra": {"grpc_port": "not-a-port"}})
    with pytest.raises(AirflowFailException, match="grpc_port") as info:
        settings_env(conn_ids=("weaviate_default",))
    assert_no_secret(str(info.value))


def test_unknown_connection_id_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="postgres_default"):
        settings_env(conn_ids=("postgres_default",))


def test_other_ids_map_by_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    conn(monkeypatch, "weaviate_staging", "http://weaviate-staging:8080")
    assert settings_env(conn_ids=("weaviate_staging",))["WEAVIATE_URL"] == "http://weaviate-staging:8080"


# -- variables fallback ----------------------------------------------------------------------------

def test_variables_supply_what_connections_do_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_NEWSRAG_WEAVIATE_URL", "http://weaviate-from-var:8080")
    monkeypatch.setenv("AIRFLOW_VAR_NEWSRAG_WEAVIATE_API_KEY", WEAVIATE_KEY)
    names = {"WEAVIATE_URL": "newsrag_weaviate_url", "WEAVIATE_API_KEY": "newsrag_weaviate_api_key",
             "WEAVIATE_COLLECTION": "newsrag_not_defined"}
    env = settings_env(required=("weaviate_default",), variables=names)
    assert dict(env) == {"WEAVIATE_URL": "http://weaviate-from-var:8080", "WEAVIATE_API_KEY": WEAVIATE_KEY}
    assert "***" in repr(env) and WEAVIATE_KEY not in repr(env)


def test_connection_wins_over_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    conn(monkeypatch, "weaviate_default", "http://weaviate:8080")
    monkeypatch.setenv("AIRFLOW_VAR_NEWSRAG_WEAVIATE_URL", "http://elsewhere:8080")
    env = settings_env(conn_ids=("weaviate_default",), variables={"WEAVIATE_URL": "newsrag_weaviate_url"})
    assert env["WEAVIATE_URL"] == "http://weaviate:8080"


def test_variables_that_lack_the_main_setting_do_not_satisfy_a_required_connection(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_NEWSRAG_WEAVIATE_API_KEY", WEAVIATE_KEY)
    with pytest.raises(AirflowFailException, match="weaviate_default") as info:
        settings_env(required=("weaviate_default",), variables={"WEAVIATE_API_KEY": "newsrag_weaviate_api_key"})
    assert_no_secret(str(info.value))


# -- the hook's settings: connections over the worker's environment, which stays untouched --------

def test_the_hooks_settings_take_the_connection_over_the_worker_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from newsrag.airflow.hooks import NewsragHook
    from newsrag.core.settings import WeaviateSettings

    monkeypatch.setenv("WEAVIATE_URL", "http://before:1")
    conn(monkeypatch, "weaviate_default", f"http://:{WEAVIATE_KEY}@weaviate:8080?collection=NewsProd")
    settings = NewsragHook(required=("weaviate_default",)).get_settings()
    assert (settings.value("WEAVIATE_URL"), settings.value("WEAVIATE_API_KEY")) == ("http://weaviate:8080", WEAVIATE_KEY)
    assert settings.get(WeaviateSettings).collection == "NewsProd"
    assert os.environ["WEAVIATE_URL"] == "http://before:1"
    assert "WEAVIATE_API_KEY" not in os.environ and "WEAVIATE_COLLECTION" not in os.environ


def test_missing_required_leaves_environ_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    from newsrag.airflow.hooks import NewsragHook

    conn(monkeypatch, "openai_default", f"https://:{OPENAI_KEY}@api.openai.com/v1")
    before = dict(os.environ)
    with pytest.raises(AirflowFailException):
        NewsragHook(required=("weaviate_default",)).get_settings()
    assert dict(os.environ) == before


# -- secrets never show ----------------------------------------------------------------------------

def test_secrets_absent_from_logs_reprs_and_messages(monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("NEWSRAG_EMBED_PROVIDER", "openai")
    conn(monkeypatch, "weaviate_default", f"http://:{WEAVIATE_KEY}@weaviate:8080?grpc_port=50051")
    conn(monkeypatch, "openai_default", {"conn_type": "generic", "password": OPENAI_KEY,
                                         "extra": {"api_key": OPENAI_KEY, "model": "text-embedding-3-small"}})
    conn(monkeypatch, "cohere_default", f"https://:{COHERE_KEY}@api.cohere.com")
    caplog.set_level(logging.DEBUG)
    from newsrag.airflow.hooks import NewsragHook

    env = settings_env(required=DEFAULT_CONN_IDS)
    settings = NewsragHook(required=DEFAULT_CONN_IDS).get_settings()
    shown = [repr(env), str(env), f"{env}", f"{env!r}"]
    logging.getLogger("test").info("task env: %s", env)
    logging.getLogger("test").info("task settings: %s", settings)
    assert env["OPENAI_API_KEY"] == OPENAI_KEY and settings.value("OPENAI_API_KEY") == OPENAI_KEY  # never shown
    assert_no_secret(repr(settings))
    for text in shown:
        assert_no_secret(text)
        assert "http://weaviate:8080" in text and "***" in text
    assert_no_secret(caplog.text)
    assert "settings from Airflow connection weaviate_default" in caplog.text
    assert "WEAVIATE_API_KEY" in caplog.text  # names are logged, values are not


def test_task_settings_read_the_variables_the_deployment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from newsrag.airflow.hooks import task_settings
    from newsrag.core.settings import WeaviateSettings

    monkeypatch.delenv("WEAVIATE_URL", raising=False)
    monkeypatch.setenv("NEWSRAG_REQUIRED_CONNECTIONS", "weaviate_default")
    monkeypatch.setenv("NEWSRAG_AIRFLOW_VARIABLES", "WEAVIATE_URL=newsrag_weaviate_url")
    monkeypatch.setenv("AIRFLOW_VAR_NEWSRAG_WEAVIATE_URL", "http://weaviate-from-var:8080")
    assert task_settings().get(WeaviateSettings).url == "http://weaviate-from-var:8080"
    assert "WEAVIATE_URL" not in os.environ
    monkeypatch.setenv("NEWSRAG_AIRFLOW_VARIABLES", "WEAVIATE_URL")
    with pytest.raises(AirflowFailException, match="SETTING=variable_key"):
        task_settings()


# -- the hook: the same values as a Settings object, the environment untouched ---------------------

def test_the_hook_builds_settings_from_connections_without_writing_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from newsrag.airflow.hooks import NewsragHook
    from newsrag.core.settings import WeaviateSettings

    conn(monkeypatch, "weaviate_default", f"http://:{WEAVIATE_KEY}@weaviate:8080?collection=NewsProd")
    monkeypatch.setenv("WEAVIATE_TIMEOUT", "7")  # the worker's own environment stays underneath
    before = dict(os.environ)
    settings = NewsragHook(required=("weaviate_default",)).get_settings()
    weaviate = settings.get(WeaviateSettings)
    assert (weaviate.url, weaviate.collection, weaviate.timeout) == ("http://weaviate:8080", "NewsProd", 7.0)
    assert weaviate.api_key is not None and weaviate.api_key.get_secret_value() == WEAVIATE_KEY
    assert dict(os.environ) == before
    assert_no_secret(repr(settings) + repr(weaviate))


def test_the_hook_fails_without_retry_when_a_required_connection_is_missing() -> None:
    from newsrag.airflow.hooks import NewsragHook

    with pytest.raises(AirflowFailException, match="required Airflow connection 'weaviate_default'"):
        NewsragHook(required=("weaviate_default",)).get_settings()
