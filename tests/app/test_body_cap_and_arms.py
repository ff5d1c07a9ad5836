"""Two contracts mutants showed untested (#20 item 12): the body cap counts a body that arrives in
many pieces (the ASGI middleware itself, since test clients hand the app one piece), and the prompt
registry's A/B arm reaches the answerer and every answer, streamed or not."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.app.conftest import sse_events

pytestmark = pytest.mark.unit


class BodyReader:
    """An ASGI app that reads the whole body, then answers 200 with the bytes it saw (or, with
    ``answer_first``, starts its answer before reading)."""

    def __init__(self, answer_first: bool = False) -> None:
        self.answer_first = answer_first
        self.seen: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.answer_first:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        body = b""
        while True:
            message = await receive()
            self.seen.append(message)
            if message["type"] == "http.disconnect":
                break
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if not self.answer_first:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})


def run(app: Any, pieces: list[bytes], headers: list[tuple[bytes, bytes]] | None = None) -> list[dict[str, Any]]:
    from newsrag.app.limits import BodySizeLimit

    messages = [{"type": "http.request", "body": p, "more_body": i < len(pieces) - 1} for i, p in enumerate(pieces)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/ask", "headers": headers or []}
    asyncio.run(BodySizeLimit(app, max_bytes=12)(scope, receive, send))
    return sent


def status_of(sent: list[dict[str, Any]]) -> list[int]:
    return [m["status"] for m in sent if m["type"] == "http.response.start"]


def test_a_body_in_small_pieces_is_counted_to_its_total() -> None:
    reader = BodyReader()
    sent = run(reader, [b"12345", b"12345", b"12345"])  # 15 bytes, each piece under the 12-byte cap
    assert status_of(sent) == [413]
    assert json.loads(sent[-1]["body"])["error"] == "payload_too_large"
    assert reader.seen[-1] == {"type": "http.disconnect"}  # the app stops reading
    ok = BodyReader()
    assert status_of(run(ok, [b"123456", b"123456"])) == [200]  # exactly the cap
    assert [m for m in ok.seen if m["type"] == "http.disconnect"] == []


def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    reader = BodyReader()
    sent = run(reader, [b"x"], headers=[(b"content-length", b" 13 ")])
    assert status_of(sent) == [413] and reader.seen == []
    assert status_of(run(BodyReader(), [b"x" * 12], headers=[(b"content-length", b"12")])) == [200]


@pytest.mark.parametrize("declared", [b"abc", b"1e3", "\uff11\uff13".encode(), b"-1", b""])
def test_a_declared_length_that_is_not_a_number_is_counted_instead(declared: bytes) -> None:
    assert status_of(run(BodyReader(), [b"x" * 5], headers=[(b"content-length", declared)])) == [200]
    assert status_of(run(BodyReader(), [b"x" * 13], headers=[(b"content-length", declared)])) == [413]


def test_an_answer_already_under_way_is_cut_not_answered_twice() -> None:
    reader = BodyReader(answer_first=True)
    sent = run(reader, [b"12345", b"12345", b"12345"])
    assert status_of(sent) == [200]  # no second start: the 413 can no longer be sent
    assert [m for m in sent if m["type"] == "http.response.body"] == []  # what the app says after is dropped
    assert reader.seen[-1] == {"type": "http.disconnect"}


# -- A/B arms -----------------------------------------------------------------------------------

@pytest.fixture
def ab_registry(tmp_path: Path) -> Any:
    """The app's registry (make_app's path) with version 1 active and version 2 a 50 % canary."""
    from newsrag.core.templates import load_template, templates_dir
    from newsrag.prompts.registry import PromptRegistry

    registry = PromptRegistry(tmp_path / "registry.sqlite")
    registry.sync()
    v1 = load_template(templates_dir() / "news-answer" / "1.yaml")
    registry.register(v1.model_copy(update={"version": "2", "system": v1.system + "\nBe concise."}), author="t")
    for version in ("1", "2"):
        assert registry.validate("news-answer", version) == []
    registry.promote("news-answer", "1", who="test")
    registry.set_ab("news-answer", "2", 0.5, who="test")
    yield registry
    registry.close()


def test_the_ab_arm_reaches_the_answerer_and_every_answer(make_app: Any, ab_registry: Any, tmp_path: Path) -> None:
    from newsrag.evaluation.feedback import FeedbackStore

    client, services = make_app()
    arms: dict[str, str] = {}
    for i in range(12):
        conversation = f"conv-{i}"
        plain = client.post("/v1/ask", json={"question": "harbor", "conversation_id": conversation}).json()
        prompt = services.answerer.calls[-1]["prompt"]
        template = ab_registry.template("news-answer", prompt.version)
        assert (prompt.name, prompt.system, prompt.user) == ("news-answer", template.system, template.user)
        streamed = json.loads(sse_events(client.post("/v1/ask", json={
            "question": "harbor", "conversation_id": conversation, "stream": True}).text)[-1][1])
        chat = [json.loads(d.removeprefix("data: ")) for d in client.post("/v1/chat/completions", json={
            "model": "newsrag", "stream": True, "user": conversation, "messages": [
                {"role": "user", "content": "harbor"}]}).text.splitlines() if d.startswith("data: {")]
        assert plain["prompt_arm"] in ("a", "b")
        assert streamed["prompt_arm"] == chat[-1]["newsrag"]["prompt_arm"] == plain["prompt_arm"]  # sticky
        arms[plain["prompt_arm"]] = prompt.version
    assert arms == {"a": "1", "b": "2"}
    client.post("/v1/feedback", json={"trace_id": streamed["trace_id"], "rating": "up"})
    record = FeedbackStore(tmp_path / "feedback.sqlite").feedback()[-1]
    assert record.arm == streamed["prompt_arm"]  # the streamed answer was logged with its arm
