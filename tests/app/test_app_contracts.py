"""The app's contracts that need no Weaviate (the real app with a scripted answerer): the rate-limit
window rolling over, store errors as clean 503s before a stream starts, usage counting, and the
OpenAI citation extension (#20 items 3, 4, 8 and 12)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from newsrag.app.errors import DEFAULT_RETRY_AFTER, INTERNAL, STORE_DOWN
from newsrag.core.errors import StoreError, StoreUnavailable
from newsrag.retrieval.answer import Answer, AnswerCitation, AnswerEvent, AnswerSource

pytestmark = pytest.mark.unit

KEY = "key-one-7f3a91c2d4"
CHAT = {"model": "newsrag", "messages": [{"role": "user", "content": "harbor"}]}
GRPC = "Weaviate unavailable (NewsChunk): Query call with protocol GRPC search failed: <_InactiveRpcError>"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the rate-limit window ----------------------------------------------------------------------

def test_the_rate_limit_window_rolls_over(make_app: Any) -> None:
    client, services = make_app(rate_limit_per_minute=2)
    services.limiter.clock = clock = Clock()
    codes = [client.get("/v1/models") for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    assert codes[-1].headers["Retry-After"] == "30"  # 2 a minute: one token every 30 s
    clock.now += 29.0
    refused = client.get("/v1/models")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    clock.now += 1.0
    assert [client.get("/v1/models").status_code for _ in range(2)] == [200, 429]
    clock.now += 3600.0  # a long pause refills the bucket to its size, not beyond
    assert [client.get("/v1/models").status_code for _ in range(3)] == [200, 200, 429]


def test_the_wrong_key_throttle_rolls_over_too(make_app: Any) -> None:
    client, services = make_app(api_keys=KEY, auth_failures_per_minute=2)
    services.auth_failures.clock = clock = Clock()
    wrong = {"Authorization": "Bearer wrong"}
    codes = [client.get("/v1/models", headers=wrong) for _ in range(3)]
    assert [r.status_code for r in codes] == [401, 401, 429]
    assert codes[-1].headers["Retry-After"] == "30"  # two a minute: the next in 30 s
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 429
    clock.now += 30.0
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert [client.get("/v1/models", headers=wrong).status_code for _ in range(2)] == [401, 429]


def test_limits_are_per_key_and_zero_disables_them(make_app: Any) -> None:
    from newsrag.app.services import RateLimiter

    limiter = RateLimiter(1, clock=Clock())
    assert [limiter.allow("a"), limiter.allow("a"), limiter.allow("b")] == [True, False, True]
    assert limiter.exhausted("a") and not limiter.exhausted("c")
    off = RateLimiter(0)
    assert all(off.allow("a") for _ in range(100)) and not off.exhausted("a") and off.retry_after("a") == 1


def test_idle_buckets_are_pruned_past_max_keys() -> None:
    from newsrag.app.services import RateLimiter

    clock = Clock()
    limiter = RateLimiter(1, max_keys=2, clock=clock)
    for key in ("a", "b"):
        limiter.allow(key)
    clock.now += 61.0
    limiter.allow("c")  # three buckets: the two idle ones go
    assert set(limiter._buckets) == {"c"}
    limiter.allow("d")
    assert set(limiter._buckets) == {"c", "d"}  # not over max_keys: nothing is dropped


# -- store errors -------------------------------------------------------------------------------

def failing(exc: Exception) -> Any:
    def ask(*_: Any, **__: Any) -> Any:
        raise exc

    def ask_stream(*_: Any, **__: Any) -> Iterator[AnswerEvent]:
        raise exc
        yield  # a generator: it fails at its first event, as retrieval does

    return ask, ask_stream


@pytest.mark.parametrize(("retry_after", "expected"), [(None, DEFAULT_RETRY_AFTER), (2, 2)])
@pytest.mark.parametrize(("path", "body"), [
    ("/v1/ask", {"question": "harbor"}), ("/v1/ask", {"question": "harbor", "stream": True}),
    ("/v1/chat/completions", CHAT), ("/v1/chat/completions", {**CHAT, "stream": True}),
])
def test_a_store_that_is_down_is_a_503_before_any_stream_starts(make_app: Any, path: str, body: Any,
                                                                 retry_after: int | None, expected: int) -> None:
    client, services = make_app()
    services.answerer.ask, services.answerer.ask_stream = failing(StoreUnavailable(GRPC, retry_after=retry_after))
    resp = client.post(path, json=body)
    assert resp.status_code == 503 and resp.headers["Retry-After"] == str(expected)
    assert resp.headers["content-type"].startswith("application/json")
    payload = resp.json()
    message = payload["error"]["message"] if path.startswith("/v1/chat") else payload["message"]
    assert message == STORE_DOWN.format(wait=expected) and "GRPC" not in resp.text


def test_a_store_that_refuses_is_a_500_without_its_text(make_app: Any) -> None:
    client, services = make_app()
    services.answerer.ask, services.answerer.ask_stream = failing(StoreError(GRPC))
    resp = client.post("/v1/ask", json={"question": "harbor"})
    assert resp.status_code == 500 and resp.json()["message"] == INTERNAL and "GRPC" not in resp.text
    assert resp.json()["error"] == "internal_error"
    assert "Retry-After" not in resp.headers


def test_readyz_says_when_to_ask_again(make_app: Any) -> None:
    client, services = make_app()
    services.store.ping = lambda: False
    resp = client.get("/readyz")
    assert resp.status_code == 503 and resp.headers["Retry-After"] == str(DEFAULT_RETRY_AFTER)
    services.store.ping = lambda: True
    ready = client.get("/readyz")
    assert ready.status_code == 200 and "Retry-After" not in ready.headers


def test_an_invalid_question_in_a_stream_is_a_plain_400(make_app: Any) -> None:
    from newsrag.retrieval.search import InvalidQuery

    client, services = make_app()
    services.answerer.ask, services.answerer.ask_stream = failing(InvalidQuery("the query has no searchable words"))
    resp = client.post("/v1/ask", json={"question": "???", "stream": True})
    assert resp.status_code == 400 and resp.json()["message"] == "the query has no searchable words"


# -- usage and citations ------------------------------------------------------------------------

def test_usage_is_estimated_and_says_so_without_a_tokenizer(make_app: Any) -> None:
    client, _ = make_app()
    body = client.post("/v1/chat/completions", json={**CHAT, "messages": [
        {"role": "user", "content": "How many beds does the new hospital have?"}]}).json()
    text = body["choices"][0]["message"]["content"]
    assert body["newsrag"]["usage_counted_by"] == "estimate:chars/4"
    assert body["usage"] == {"prompt_tokens": 11, "completion_tokens": -(-len(text) // 4),
                             "total_tokens": 11 + -(-len(text) // 4)}


def test_a_stream_without_include_usage_has_no_usage_field(make_app: Any) -> None:
    client, _ = make_app()
    chunks = [json.loads(line.removeprefix("data: ")) for line in client.post(
        "/v1/chat/completions", json={**CHAT, "stream": True, "stream_options": {"include_usage": False}}
    ).text.splitlines() if line.startswith("data: {")]
    assert chunks and all("usage" not in c and c["choices"] for c in chunks)


def test_the_usage_chunk_comes_last_before_done(make_app: Any) -> None:
    client, _ = make_app()
    lines = [line for line in client.post("/v1/chat/completions", json={
        **CHAT, "stream": True, "stream_options": {"include_usage": True}}).text.splitlines() if line]
    assert lines[-1] == "data: [DONE]"
    usage = json.loads(lines[-2].removeprefix("data: "))
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] > 0 and usage["object"] == "chat.completion.chunk"
    final = json.loads(lines[-3].removeprefix("data: "))
    assert final["choices"][0]["finish_reason"] == "stop" and final["usage"] is None
    assert usage["id"] == final["id"] != "chatcmpl-pending"


def two_article_answer(question: str) -> Answer:
    def cite(n: int, doc: str, quote: str) -> AnswerCitation:
        return AnswerCitation(n=n, chunk_id=f"c{doc}{n}", doc_id=doc, url=f"https://news.test/{doc}", title=doc,
                              quote=quote)

    return Answer(text="One. [1] Two. [2] Three. [1]", citations=[cite(1, "a", "One."), cite(2, "b", "Two."),
                                                                 cite(1, "a", "Three.")],
                  sources=[AnswerSource(n=1, doc_id="a", url="https://news.test/a", title="a", quotes=["One.", "Three."]),
                           AnswerSource(n=2, doc_id="b", url="https://news.test/b", title="b", quotes=["Two."])],
                  prompt_name="p", prompt_version="1", generator="g", model="m", trace_id="a" * 32)


def test_openai_citations_are_one_url_per_article_in_marker_order(make_app: Any) -> None:
    client, services = make_app()
    services.answerer.answer = two_article_answer
    body = client.post("/v1/chat/completions", json=CHAT).json()
    assert body["citations"] == ["https://news.test/a", "https://news.test/b"]
    assert [(s["n"], s["quotes"]) for s in body["newsrag"]["sources"]] == [(1, ["One.", "Three."]), (2, ["Two."])]
    assert [c["n"] for c in body["newsrag"]["citations"]] == [1, 2, 1]
