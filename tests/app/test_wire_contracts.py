"""What clients parse, exactly: the wire shapes, messages, headers and limits that mutants of app/
changed while the earlier unit tests stayed green (#20 item 12; README "Mutation testing of the app").
The real app with the scripted answerer, so they are fast enough for the mutation run."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.app.conftest import sse_events
from tests.app.scripted import build_app

pytestmark = pytest.mark.unit

KEY = "key-one-7f3a91c2d4"
ADMIN = "admin-key-5e6b8a0f1d"
CHAT = {"model": "newsrag", "messages": [{"role": "user", "content": "harbor"}]}
NEWSRAG_KEYS = {"trace_id", "abstained", "prompt_name", "prompt_version", "prompt_arm", "generator",
                "usage_counted_by", "sources", "citations", "as_of"}


def data_lines(text: str) -> list[str]:
    return [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: ")]


# -- streams and extensions ---------------------------------------------------------------------

def test_the_ask_stream_events_carry_what_the_page_reads(make_app: Any) -> None:
    client, _ = make_app()
    events = sse_events(client.post("/v1/ask", json={"question": "harbor", "stream": True}).text)
    assert [name for name, _ in events] == ["meta", "delta", "delta", "done"]
    meta, done = json.loads(events[0][1]), json.loads(events[-1][1])
    assert meta == {"trace_id": done["trace_id"], "retrieval": [{"chunk_id": "c1", "doc_id": "d1", "score": 1.0}]}
    assert "".join(json.loads(d)["text"] for n, d in events if n == "delta") == done["text"]
    assert done["sources"] == [{"n": 1, "doc_id": "d1", "url": "https://news.test/harbor", "title": "Harbor line opens",
                                "published_at": "2026-09-12T21:20:00Z", "source_id": "metro",
                                "quotes": ["The harbor line opened on Monday."],
                                "chunk_ids": ["c1"]}]


def test_the_chat_stream_chunks_have_openais_shape(make_app: Any) -> None:
    client, _ = make_app()
    chunks = [json.loads(d) for d in data_lines(client.post("/v1/chat/completions", json={
        **CHAT, "stream": True, "stream_options": {"include_usage": True}}).text) if d != "[DONE]"]
    first, final, usage = chunks[0], chunks[-2], chunks[-1]
    trace = final["newsrag"]["trace_id"]
    for chunk in chunks:
        assert chunk["id"] == f"chatcmpl-{trace}" and chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == "newsrag" and isinstance(chunk["created"], int) and chunk["created"] > 1_700_000_000
    assert first["choices"] == [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
    assert all(c["choices"][0]["index"] == 0 for c in chunks[:-1])
    assert final["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert final["citations"] == ["https://news.test/harbor"] and set(final["newsrag"]) == NEWSRAG_KEYS
    assert final["newsrag"]["usage_counted_by"] == "estimate:chars/4"
    assert final["newsrag"]["sources"][0]["published_at"] == "2026-09-12T21:20:00Z"
    assert usage["choices"] == [] and usage["usage"]["prompt_tokens"] == 2  # "harbor": 6 chars -> 2 (chars/4)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    assert usage["usage"]["completion_tokens"] == -(-len(text) // 4)


def test_the_chat_completion_extension_has_every_field(make_app: Any) -> None:
    client, services = make_app()
    body = client.post("/v1/chat/completions", json=CHAT).json()
    extension = body["newsrag"]
    assert set(extension) == NEWSRAG_KEYS
    assert (extension["abstained"], extension["prompt_name"], extension["generator"]) == (False, "news-answer", "scripted")
    assert extension["prompt_version"] == "n/a" and extension["prompt_arm"] is None  # no template rendered
    services.answerer.prompt_version = "3"  # a template rendered, but the registry has no active version
    assert client.post("/v1/chat/completions", json=CHAT).json()["newsrag"]["prompt_version"] == "builtin"
    assert extension["citations"][0]["quote"] == "The harbor line opened on Monday."
    assert body["id"] == f"chatcmpl-{extension['trace_id']}" and body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant" and body["choices"][0]["finish_reason"] == "stop"


def test_content_parts_are_joined_text_parts_only(make_app: Any) -> None:
    client, _ = make_app()
    parts = [{"type": "text", "text": "harbor"}, {"type": "image_url", "image_url": {"url": "x"}},
             {"type": "text", "text": "line"}, {"type": "text"}]
    body = client.post("/v1/chat/completions", json={"model": "newsrag", "messages": [
        {"role": "user", "content": "an earlier question"}, {"role": "assistant", "content": "x"},
        {"role": "user", "content": parts}]}).json()
    assert body["choices"][0]["message"]["content"].endswith("(asked: harbor line)")  # the last user message


def test_a_chat_without_a_user_message_is_a_400_saying_so(make_app: Any) -> None:
    client, _ = make_app()
    resp = client.post("/v1/chat/completions", json={"model": "newsrag", "messages": [
        {"role": "system", "content": "be brief"}]})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == "messages must contain at least one 'user' message"
    null = client.post("/v1/chat/completions", json={"model": "newsrag", "messages": [
        {"role": "user", "content": None}]})
    assert (null.status_code, null.json()["error"]["message"]) == (400, "the question is empty")


def test_validation_messages_name_where_the_problem_is(make_app: Any) -> None:
    client, _ = make_app()
    query = client.get("/v1/search", params={"q": "harbor", "since": "soon"})
    assert query.json()["message"].startswith("query.since: expected a date")
    body = client.post("/v1/ask", content=b'{"question": "a \\ud800"}', headers={"Content-Type": "application/json"})
    assert body.json()["message"] == "the body holds text that is not valid Unicode (a lone surrogate such as \\ud800)"


def test_the_question_limit_is_inclusive_and_the_messages_say_why(make_app: Any) -> None:
    client, _ = make_app(max_question_chars=20)
    assert client.post("/v1/ask", json={"question": "x" * 20}).status_code == 200
    too_long = client.post("/v1/ask", json={"question": "x" * 21})
    assert too_long.status_code == 400
    assert too_long.json()["message"] == "the question is too long (21 characters; the limit is 20)"
    empty = client.post("/v1/ask", json={"question": "  \n "})
    assert (empty.status_code, empty.json()["message"]) == (400, "the question is empty")


# -- filters reach the answerer -----------------------------------------------------------------

def test_ask_hands_the_parsed_filters_and_top_k_to_the_answerer(make_app: Any) -> None:
    client, services = make_app()
    for stream in (False, True):
        resp = client.post("/v1/ask", json={"question": "harbor", "sources": ["metro-daily,archive", "archive"],
                                            "tags": ["local, tech"], "since": "2026-09-12",
                                            "until": "2026-09-12T23:00+02:00", "top_k": 3, "stream": stream})
        assert resp.status_code == 200
        call = services.answerer.calls[-1]
        f = call["filters"]
        assert (f.source_ids, f.tags, call["top_k"]) == (("metro-daily", "archive"), ("local", "tech"), 3)
        assert (f.published_after, f.published_before) == (datetime(2026, 9, 12, tzinfo=UTC),
                                                           datetime(2026, 9, 12, 21, tzinfo=UTC))
    client.post("/v1/ask", json={"question": "harbor", "until": "2026-09-12"})
    assert services.answerer.calls[-1]["filters"].published_before == datetime(2026, 9, 13, tzinfo=UTC)
    client.post("/v1/ask", json={"question": "harbor", "sources": [" , "], "since": ""})
    assert services.answerer.calls[-1]["filters"] is None  # nothing to filter on


def test_filter_errors_name_the_problem(make_app: Any) -> None:
    client, _ = make_app()
    bad = client.post("/v1/ask", json={"question": "harbor", "sources": ["Metro Daily"]})
    assert bad.status_code == 422 and bad.json()["message"].startswith("source: 'Metro Daily' is not a source id")
    empty = client.post("/v1/ask", json={"question": "harbor", "since": "2026-09-13", "until": "2026-09-12"})
    assert empty.status_code == 422 and empty.json()["message"].startswith("since: 'since' must be before 'until'")
    unreadable = client.post("/v1/ask", json={"question": "harbor", "until": "soon"})
    assert unreadable.status_code == 422 and unreadable.json()["message"].startswith("until: expected a date")


# -- auth, limits, errors -----------------------------------------------------------------------

def test_auth_refusals_say_what_to_do(make_app: Any) -> None:
    client, _ = make_app(api_keys=KEY, admin_keys=ADMIN, rate_limit_per_minute=1)
    missing = client.get("/v1/models")
    assert missing.json()["error"]["message"] == "missing API key: send 'Authorization: Bearer <key>'"
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    wrong = client.get("/v1/prompts", headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()["message"], wrong.headers["WWW-Authenticate"]) == (
        401, "invalid API key", "Bearer")
    user = {"Authorization": f"Bearer {KEY}"}
    forbidden = client.get("/v1/prompts", headers=user)
    assert (forbidden.status_code, forbidden.json()["message"]) == (403, "this route needs an admin API key")
    limited = client.get("/v1/models", headers=user)
    assert limited.status_code == 429 and limited.json()["error"]["message"] == "rate limit exceeded; slow down"
    assert limited.headers["Retry-After"] == "60"  # one a minute, just spent


def test_limits_are_per_client_address(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    app, _ = build_app(tmp_path, rate_limit_per_minute=1, api_keys="", auth_failures_per_minute=1)
    with TestClient(app, client=("10.0.0.1", 1000)) as one, TestClient(app, client=("10.0.0.2", 1000)) as two:
        assert [one.get("/v1/models").status_code, one.get("/v1/models").status_code] == [200, 429]
        assert two.get("/v1/models").status_code == 200  # another address has its own bucket
    keyed, _ = build_app(tmp_path / "k", api_keys=KEY, auth_failures_per_minute=1)
    with TestClient(keyed, client=("10.0.0.1", 1000)) as one, TestClient(keyed, client=("10.0.0.2", 1000)) as two:
        wrong = {"Authorization": "Bearer wrong"}
        assert [one.get("/v1/models", headers=wrong).status_code for _ in range(2)] == [401, 429]
        assert one.get("/v1/models", headers=wrong).json()["error"]["message"] == (
            "too many failed authentication attempts; slow down")
        assert two.get("/v1/models", headers=wrong).status_code == 401  # not throttled by the other address


def test_a_one_per_minute_limit_waits_a_minute() -> None:
    from newsrag.app.services import RateLimiter

    limiter = RateLimiter(1, clock=lambda: 100.0)
    assert limiter.allow("k") and not limiter.allow("k") and limiter.retry_after("k") == 60


@pytest.mark.parametrize(("exc", "status", "kind", "message"), [
    ("unknown", 404, "not_found", None),
    ("provider", 502, "provider_error", "openai: the model refused"),
    ("config", 500, "configuration_error", "internal error; see the server log"),
    ("invalid", 400, "invalid_request", "the query has no searchable words"),
])
def test_library_errors_map_to_status_and_kind(make_app: Any, exc: str, status: int, kind: str,
                                               message: str | None) -> None:
    from newsrag.core.errors import ConfigError, ProviderError
    from newsrag.retrieval.search import InvalidQuery

    client, services = make_app()
    if exc == "unknown":
        resp = client.post("/v1/feedback", json={"trace_id": "0" * 32, "rating": "up"})
    else:
        error = {"provider": ProviderError("openai", "the model refused"), "config": ConfigError("NEWSRAG_X: bad"),
                 "invalid": InvalidQuery("the query has no searchable words")}[exc]

        def ask(*_: Any, **__: Any) -> Any:
            raise error

        services.answerer.ask = ask
        resp = client.post("/v1/ask", json={"question": "harbor"})
    assert (resp.status_code, resp.json()["error"], resp.json()["status"]) == (status, kind, status)
    if message:
        assert resp.json()["message"] == message
    assert "Retry-After" not in resp.headers


@pytest.mark.parametrize(("retry_after", "header"), [(7.4, "7"), (0.4, "1")])
def test_a_retryable_provider_error_is_a_503_with_its_retry_after(make_app: Any, retry_after: float,
                                                                  header: str) -> None:
    from newsrag.core.errors import ProviderError

    client, services = make_app()
    error = ProviderError("openai", "rate limited", retryable=True)
    error.retry_after = retry_after  # type: ignore[attr-defined]

    def ask(*_: Any, **__: Any) -> Any:
        raise error

    services.answerer.ask = ask
    resp = client.post("/v1/chat/completions", json=CHAT)
    assert resp.status_code == 503 and resp.headers["Retry-After"] == header  # whole seconds, at least 1
    assert resp.json()["error"] == {"message": "openai: rate limited", "type": "provider_error", "param": None,
                                    "code": 503}


def test_an_unexpected_library_error_is_an_internal_error(make_app: Any) -> None:
    from newsrag.core.errors import StoreError

    client, services = make_app()

    def ask(*_: Any, **__: Any) -> Any:
        raise StoreError("Weaviate refused an operation on NewsChunk: details")

    services.answerer.ask = ask
    resp = client.post("/v1/ask", json={"question": "harbor"})
    assert resp.json() == {"error": "internal_error", "message": "internal error; see the server log", "status": 500}


def test_a_failed_chat_stream_logs_its_trace_id(make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    client, services = make_app()
    services.answerer.fail_with = RuntimeError("boom")
    chunks = data_lines(client.post("/v1/chat/completions", json={**CHAT, "stream": True}).text)
    trace = json.loads(chunks[0])["id"].removeprefix("chatcmpl-")
    assert any(r.exc_info and f"stream {trace} failed" in r.getMessage() for r in caplog.records)


# -- body cap, metrics, readiness ---------------------------------------------------------------

def test_the_body_cap_is_inclusive_and_a_413_closes_the_connection(make_app: Any) -> None:
    client, _ = make_app(max_body_bytes=1024)
    body = b'{"question": "' + b"x" * (1024 - 16) + b'"}'
    assert len(body) == 1024
    ok = client.post("/v1/ask", content=body, headers={"Content-Type": "application/json"})
    assert ok.status_code != 413
    over = client.post("/v1/ask", content=body[:-2] + b'x"}', headers={"Content-Type": "application/json"})
    assert over.status_code == 413 and over.headers["Connection"] == "close"
    chunked = client.post("/v1/ask", content=iter([body[:600], body[600:]]), headers={"Content-Type": "application/json"})
    assert chunked.status_code != 413  # counted as it arrives: exactly the cap is allowed


def test_metrics_keep_their_names_and_labels(make_app: Any) -> None:
    client, _ = make_app()
    trace = client.post("/v1/ask", json={"question": "harbor"}).json()["trace_id"]
    client.post("/v1/feedback", json={"trace_id": trace, "rating": "down"})
    text = client.get("/metrics").text
    for line in ('newsrag_requests_total{route="/v1/ask",status="200"} 1.0',
                 'newsrag_answers_total{abstained="false"} 1.0', 'newsrag_feedback_total{rating="down"} 1.0',
                 'newsrag_request_seconds_count{route="/v1/ask"} 1.0', "# HELP newsrag_requests_total HTTP requests",
                 "# HELP newsrag_answers_total Answers served", "# HELP newsrag_feedback_total Feedback received",
                 "# HELP newsrag_request_seconds Request latency",
                 'newsrag_request_seconds_bucket{le="2.5",route="/v1/ask"} 1.0'):
        assert line in text, line
    buckets = re.findall(r'newsrag_request_seconds_bucket\{le="([^"]+)",route="/v1/ask"\}', text)
    assert buckets == ["0.01", "0.025", "0.05", "0.1", "0.15", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf"]


def test_readyz_reports_each_part(make_app: Any) -> None:
    client, services = make_app()
    assert client.get("/readyz").json() == {"weaviate": True, "model_loaded": True, "ready": True}
    services.embedder._model = None
    resp = client.get("/readyz")
    assert resp.status_code == 503 and resp.json() == {"weaviate": True, "model_loaded": False, "ready": False}


# -- usage counting -----------------------------------------------------------------------------

class FakeBackend:
    def __init__(self) -> None:
        self.padding, self.truncation = True, True

    def no_padding(self) -> None:
        self.padding = False

    def no_truncation(self) -> None:
        self.truncation = False

    def encode(self, text: str, add_special_tokens: bool = True) -> list[str]:
        assert not self.padding and not self.truncation, "count with padding/truncation off"
        return (["[CLS]"] if add_special_tokens else []) + [c for c in text if c != " "]


class TokenizingEmbedder:
    model_id = "fake/chars"

    def __init__(self) -> None:
        self.loads = 0
        self.backend = FakeBackend()

    @property
    def tokenizer(self) -> Any:
        self.loads += 1
        return type("Tokenizer", (), {"backend_tokenizer": self.backend})()


def test_the_embedders_tokenizer_counts_without_special_tokens_on_a_copy() -> None:
    from newsrag.app.usage import TokenCounter

    embedder = TokenizingEmbedder()
    counter = TokenCounter(embedder)
    assert counter.counted_by == "tokenizer:fake/chars"
    assert counter.usage("a b", "cde") == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert counter.count("") == 0
    assert counter.count("xy") == 2 and embedder.loads == 1  # loaded once, not per count
    assert embedder.backend.padding  # the embedder's own tokenizer is left as it was


def test_without_a_tokenizer_usage_is_estimated() -> None:
    from newsrag.app.usage import TokenCounter

    counter = TokenCounter(object())
    assert counter.usage("abcde", "") == {"prompt_tokens": 2, "completion_tokens": 0, "total_tokens": 2}
    assert counter.counted_by == "estimate:chars/4"
