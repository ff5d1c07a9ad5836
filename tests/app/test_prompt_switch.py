"""Promotion, rollback and A/B reach a running app within the TTL, with no restart. The app uses
the OpenAI generator against a local server speaking the OpenAI wire format."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest

from newsrag.core.templates import load_template, templates_dir
from newsrag.prompts.registry import PromptRegistry
from tests.app.conftest import EXAMPLES
from tests.embeddings.fake_providers import FakeProviderServer, Received, openai_chat_completion

pytestmark = pytest.mark.integration

QUESTION = json.loads((EXAMPLES / "news" / "questions.jsonl").read_text().splitlines()[0])["question"]


def answering_llm(req: Received) -> tuple[int, dict[str, str], Any]:
    """Quotes the first article's first sentence with a citation, like an obedient model."""
    user = req.json["messages"][-1]["content"]
    first = re.search(r'<article n="1"[^>]*>\ntitle: [^\n]*\n([^.]*\.)', user)
    return 200, {}, openai_chat_completion(f"{first.group(1).strip() if first else 'The sources do not say.'} [1]")


@pytest.fixture
def llm_app(make_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    server = FakeProviderServer()
    server.route("/v1/chat/completions", answering_llm)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url("/v1"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-local")
    registry = PromptRegistry(tmp_path / "registry.sqlite")
    registry.sync()
    v1 = load_template(templates_dir() / "news-answer" / "1.yaml")
    registry.register(v1.model_copy(update={"version": "2", "system": v1.system + "\nBe concise."}), author="t")
    for v in ("1", "2"):
        assert registry.validate("news-answer", v) == []
    registry.promote("news-answer", "1", who="test")
    client = make_client(generator="openai", prompt_registry=str(tmp_path / "registry.sqlite"),
                         prompt_ttl_seconds=0.3)
    yield client, registry, server
    registry.close()
    server.close()


def ask(client: Any, **extra: Any) -> dict[str, Any]:
    resp = client.post("/v1/ask", json={"question": QUESTION, **extra})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_promotion_and_rollback_reach_the_running_app_within_the_ttl(llm_app: Any) -> None:
    client, registry, server = llm_app
    first = ask(client)
    assert (first["prompt_name"], first["prompt_version"], first["generator"]) == ("news-answer", "1", "openai")
    assert first["citations"] and "Be concise." not in server.requests_to("/v1/chat/completions")[-1].json[
        "messages"][0]["content"]

    registry.promote("news-answer", "2", who="test", why="concise")
    time.sleep(0.4)  # past the TTL; the app was not restarted
    second = ask(client)
    assert second["prompt_version"] == "2"
    assert "Be concise." in server.requests_to("/v1/chat/completions")[-1].json["messages"][0]["content"]

    registry.rollback("news-answer", who="test", why="worse")
    time.sleep(0.4)
    assert ask(client)["prompt_version"] == "1"
    listed = client.get("/v1/prompts").json()["prompts"][0]
    assert (listed["name"], listed["active"], listed["versions"]) == ("news-answer", "1", ["1", "2"])


def test_ab_arms_are_sticky_per_conversation_and_recorded_with_feedback(llm_app: Any, tmp_path: Path) -> None:
    client, registry, _ = llm_app
    registry.set_ab("news-answer", "2", 0.5, who="test")
    time.sleep(0.4)
    seen = {}
    for i in range(12):
        a = ask(client, conversation_id=f"conv-{i}")
        b = ask(client, conversation_id=f"conv-{i}")
        assert (a["prompt_version"], a["prompt_arm"]) == (b["prompt_version"], b["prompt_arm"])
        seen[a["prompt_arm"]] = a["prompt_version"]
    assert seen == {"a": "1", "b": "2"}
    client.post("/v1/feedback", json={"trace_id": a["trace_id"], "rating": "down"})
    from newsrag.evaluation.feedback import FeedbackStore

    record = FeedbackStore(tmp_path / "feedback.sqlite").feedback()[-1]
    assert (record.prompt_name, record.prompt_version, record.arm) == ("news-answer", a["prompt_version"],
                                                                       a["prompt_arm"])


def test_an_empty_registry_falls_back_to_the_builtin_prompt_visibly(
        make_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Never synced (or a mistyped name): answers say they used the built-in prompt, the log says why
    once per TTL."""
    from newsrag.evaluation.feedback import FeedbackStore

    server = FakeProviderServer()
    server.route("/v1/chat/completions", answering_llm)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url("/v1"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-local")
    caplog.set_level(logging.WARNING, logger="newsrag.prompts.provider")
    registry = PromptRegistry(tmp_path / "registry.sqlite")  # never synced
    client = make_client(generator="openai", prompt_registry=str(tmp_path / "registry.sqlite"), prompt_ttl_seconds=30)
    answers = [ask(client, conversation_id=f"c{i}") for i in range(3)]
    assert {(a["prompt_name"], a["prompt_version"], a["prompt_arm"]) for a in answers} == {
        ("news-answer", "builtin", None)}
    chat = client.post("/v1/chat/completions", json={"model": "newsrag", "messages": [
        {"role": "user", "content": QUESTION}]}).json()["newsrag"]
    assert (chat["prompt_version"], chat["prompt_arm"]) == ("builtin", None)
    warnings = [r.getMessage() for r in caplog.records if r.name == "newsrag.prompts.provider"]
    assert len(warnings) == 1, warnings  # once per TTL, not once per request
    assert "unknown template 'news-answer'; known: none" in warnings[0] and "built-in prompt" in warnings[0]
    client.post("/v1/feedback", json={"trace_id": answers[0]["trace_id"], "rating": "up"})
    record = FeedbackStore(tmp_path / "feedback.sqlite").feedback()[-1]
    assert (record.prompt_name, record.prompt_version, record.arm) == ("news-answer", "builtin", None)
    registry.close()
    server.close()


def test_prompts_route_is_admin_only_when_auth_is_on(make_client: Any) -> None:
    client = make_client(api_keys="user-key", admin_keys="admin-key")
    assert client.get("/v1/prompts", headers={"Authorization": "Bearer user-key"}).status_code == 403
    assert client.get("/v1/prompts", headers={"Authorization": "Bearer admin-key"}).status_code == 200
