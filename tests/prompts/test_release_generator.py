"""The release's generator check (newsrag.prompts.release_generator): no LLM, an unreachable one, a refused
key or a generator that ignores templates fails at once naming NEWSRAG_RELEASE_GENERATOR, the
settings to set and the URL it tried, never the key; a server that answers passes. And a release
evaluation in which the generator crashed on most questions is a failed run, not a verdict."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from newsrag.core.settings import Settings
from newsrag.prompts.release_eval import errored_reason
from newsrag.prompts.release_generator import GeneratorUnavailable, check_generator
from tests.embeddings.fake_providers import FakeProviderServer

pytestmark = pytest.mark.unit

KEY = "sk-test-release-key-77"


@pytest.fixture(autouse=True)
def no_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    """What an offline machine has: no key and no base URL for any LLM."""
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "COHERE_API_KEY", "COHERE_BASE_URL", "NEWSRAG_RELEASE_GENERATOR",
                "NEWSRAG_OPENAI_CHAT_BASE_URL", "NEWSRAG_OPENAI_CHAT_API_KEY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as s:
        yield s


def dead_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unavailable(**kw: Any) -> str:
    """The check's refusal, with the settings an edge builds from the environment the test set."""
    with pytest.raises(GeneratorUnavailable) as info:
        check_generator(settings=Settings(), **kw)
    return str(info.value)


def test_no_llm_configured_names_the_generator_variable_and_the_settings() -> None:
    message = unavailable()
    assert "NEWSRAG_RELEASE_GENERATOR=openai" in message
    assert "OPENAI_API_KEY" in message and "NEWSRAG_OPENAI_CHAT_BASE_URL" in message


def test_without_settings_the_check_reads_no_environment(server: FakeProviderServer,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_RELEASE_GENERATOR", "cohere")
    monkeypatch.setenv("OPENAI_BASE_URL", server.url("/v1"))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with pytest.raises(GeneratorUnavailable, match="NEWSRAG_RELEASE_GENERATOR=openai, but the openai generator "
                                                   "is not configured"):
        check_generator()  # the defaults (openai, no key): the caller passed no settings
    assert server.requests_to("/v1/models") == []


def test_an_unreachable_server_names_the_url_it_tried_and_never_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    port = dead_port()
    monkeypatch.setenv("NEWSRAG_OPENAI_CHAT_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("NEWSRAG_OPENAI_CHAT_API_KEY", KEY)
    message = unavailable()
    assert f"at http://127.0.0.1:{port}/v1 (GET http://127.0.0.1:{port}/v1/models)" in message
    assert "unreachable" in message and "NEWSRAG_RELEASE_GENERATOR=openai" in message
    assert KEY not in message


def test_credentials_in_the_base_url_are_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://user:pa55word@127.0.0.1:{dead_port()}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    message = unavailable()
    assert "pa55word" not in message and KEY not in message and "://***@127.0.0.1" in message


def test_a_refused_key_fails_and_a_server_that_answers_passes(server: FakeProviderServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.url("/v1"))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server.script("/v1/models", (401, {}, {"error": {"message": "bad key"}}))
    refused = unavailable()
    assert "refused the key (HTTP 401)" in refused and KEY not in refused
    # The model list answers (or 404 from a server without that route): the server is there.
    assert check_generator(settings=Settings()) == {"generator": "openai", "model": "gpt-4o-mini", "url": server.url("/v1")}
    assert [r.bearer for r in server.requests_to("/v1/models")] == [KEY, KEY]


def test_a_server_error_fails_the_check(server: FakeProviderServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_OPENAI_CHAT_BASE_URL", server.url("/v1"))
    server.script("/v1/models", (503, {}, {"error": {"message": "loading"}}))
    assert "answered HTTP 503" in unavailable()


def test_cohere_is_probed_at_its_base_url(server: FakeProviderServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_RELEASE_GENERATOR", "cohere")
    assert "COHERE_API_KEY" in unavailable()
    monkeypatch.setenv("COHERE_API_KEY", KEY)
    monkeypatch.setenv("COHERE_BASE_URL", server.base_url)
    assert check_generator(settings=Settings())["url"] == server.base_url
    assert [r.bearer for r in server.requests_to("/v1/models")] == [KEY]


@pytest.mark.parametrize(("name", "says"), [
    ("extractive", "does not use prompt templates"),
    ("no-such-generator", "unknown generator 'no-such-generator'"),
])
def test_a_generator_that_cannot_release_prompts_is_refused(name: str, says: str) -> None:
    message = unavailable(name=name)
    assert f"NEWSRAG_RELEASE_GENERATOR={name}" in message and says in message


class Result:
    def __init__(self, error: str | None) -> None:
        self.error, self.metrics = error, {} if error else {"hit@k": 1.0}


def test_an_evaluation_whose_generator_crashed_is_errored_not_a_verdict() -> None:
    crashed = [Result("ProviderError: openai: connection failed")] * 9 + [Result(None)]
    reason = errored_reason(crashed)
    assert reason is not None and reason.startswith("9 of 10 questions failed with an error")
    assert "connection failed" in reason
    assert errored_reason([Result("one flaky answer")] + [Result(None)] * 9) is None
