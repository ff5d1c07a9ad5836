"""Guards a user relies on, through the real app on the real Weaviate (#20 item 12): every route ×
{no key, wrong key, right key, admin key} with auth on, and feedback on an answer served before the
app restarted on the same feedback store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.app.conftest import EXAMPLES

pytestmark = pytest.mark.integration

USER_KEY = "user-key-3b7c9d1e5f"
ADMIN_KEY = "admin-key-8a2f6c4e0d"
QUESTION = json.loads((EXAMPLES / "news" / "questions.jsonl").read_text().splitlines()[0])["question"]
CHAT = {"model": "newsrag", "messages": [{"role": "user", "content": QUESTION}]}

# (method, path, json body, status for an allowed key, admin only)
ROUTES = [
    ("get", "/v1/models", None, 200, False),
    ("post", "/v1/chat/completions", CHAT, 200, False),
    ("post", "/v1/chat/completions", {**CHAT, "stream": True}, 200, False),
    ("post", "/v1/ask", {"question": QUESTION}, 200, False),
    ("post", "/v1/ask", {"question": QUESTION, "stream": True}, 200, False),
    ("get", "/v1/search?q=harbor", None, 200, False),
    ("post", "/v1/feedback", {"rating": "up"}, 201, False),  # the trace id of an answer is added
    ("get", "/v1/prompts", None, 200, True),
    ("get", "/metrics", None, 200, True),
]
CREDENTIALS = {"none": None, "wrong": "Bearer wrong-key-0000", "user": f"Bearer {USER_KEY}",
               "admin": f"Bearer {ADMIN_KEY}", "not bearer": f"Basic {USER_KEY}"}


def expected_status(who: str, allowed: int, admin_only: bool) -> int:
    if who in ("none", "wrong", "not bearer"):
        return 401
    return 403 if admin_only and who == "user" else allowed


@pytest.mark.parametrize("who", list(CREDENTIALS))
@pytest.mark.parametrize(("method", "path", "body", "allowed", "admin_only"), ROUTES,
                         ids=[f"{m} {p}{' stream' if b and b.get('stream') else ''}" for m, p, b, *_ in ROUTES])
def test_every_route_checks_its_key(make_client: Any, who: str, method: str, path: str, body: Any, allowed: int,
                                    admin_only: bool) -> None:
    client = make_client(api_keys=USER_KEY, admin_keys=ADMIN_KEY)
    if path == "/v1/feedback":
        answer = client.post("/v1/ask", json={"question": QUESTION}, headers={"Authorization": f"Bearer {USER_KEY}"})
        body = {**body, "trace_id": answer.json()["trace_id"]}
    headers = {"Authorization": CREDENTIALS[who]} if CREDENTIALS[who] else {}
    resp = getattr(client, method)(path, headers=headers, **({"json": body} if body is not None else {}))
    assert resp.status_code == expected_status(who, allowed, admin_only), resp.text[:300]
    if resp.status_code == 401:
        assert resp.headers["WWW-Authenticate"] == "Bearer"
        body_json = resp.json()
        message = body_json["error"]["message"] if isinstance(body_json["error"], dict) else body_json["message"]
        assert message in ("missing API key: send 'Authorization: Bearer <key>'", "invalid API key")
    if resp.status_code == 403:
        assert "admin API key" in resp.json()["message"]
    if resp.status_code == 200 and body is not None and body.get("stream"):
        assert "data: " in resp.text and '"error"' not in resp.text


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/", "/static/app.js"])
def test_health_and_the_page_need_no_key(make_client: Any, path: str) -> None:
    assert make_client(api_keys=USER_KEY).get(path).status_code == 200


def test_an_answer_served_before_a_restart_can_be_rated_after_it(corpus: str, embedder: Any, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from newsrag.app.main import create_app
    from newsrag.app.services import Services
    from newsrag.app.settings import AppSettings
    from newsrag.core.settings import Settings
    from newsrag.evaluation.feedback import FeedbackStore
    from newsrag.store.weaviate import WeaviateStore

    def app() -> Any:
        settings = AppSettings(feedback_db=str(tmp_path / "feedback.sqlite"),
                               prompt_registry=str(tmp_path / "registry.sqlite"))
        store = WeaviateStore(Settings(), collection=corpus)  # the session's server
        return create_app(settings, Services(settings, store=store, embedder=embedder))

    with TestClient(app()) as before:
        answer = before.post("/v1/ask", json={"question": QUESTION}).json()
    with TestClient(app()) as after:  # a new process's app on the same feedback store
        resp = after.post("/v1/feedback", json={"trace_id": answer["trace_id"], "rating": "down", "comment": "old"})
        assert resp.status_code == 201, resp.text
        assert after.post("/v1/feedback", json={"trace_id": "f" * 32, "rating": "up"}).status_code == 404
    records = FeedbackStore(tmp_path / "feedback.sqlite").feedback()
    assert [(r.trace_id, r.rating, r.comment, r.question) for r in records] == [
        (answer["trace_id"], -1, "old", QUESTION)]
    assert records[0].payload["text"] == answer["text"]
