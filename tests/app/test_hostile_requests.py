"""Hostile requests get a 4xx, never a 500, and every stream ends with an error event or [DONE].

The real app (create_app, Services, the middleware and error handlers) with a scripted answerer in
place of retrieval, so no Weaviate is needed: the answer quotes the question back, and a stream can be
told to fail after its first delta.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.app.conftest import LiveServer, sse_events
from tests.app.scripted import build_app

pytestmark = pytest.mark.unit

VALID_KEY = "key-one-7f3a91c2d4"
ADMIN_KEY = "admin-key-5e6b8a0f1d"
LEAK = "secret-internal-detail-/srv/newsrag"


def message_of(resp: Any) -> str:
    body = resp.json()
    return body["error"]["message"] if isinstance(body.get("error"), dict) else body["message"]


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


# -- 1. bearer tokens with any bytes ------------------------------------------------------------

@pytest.mark.parametrize("raw", [b"Bearer cl\xc3\xa9-key", b"Bearer \xff\xfe\xfd", b"Bearer key-one-7f3a91c2d4\xe9",
                                 b"Bearer \xe2\x82\xac\xe2\x82\xac", b"Bearer \x80"])
def test_a_non_ascii_bearer_is_a_401_and_logs_no_traceback(make_app: Any, caplog: pytest.LogCaptureFixture,
                                                            raw: bytes) -> None:
    client, _ = make_app(api_keys=VALID_KEY)
    caplog.set_level(logging.DEBUG)
    resp = client.post("/v1/ask", json={"question": "port"}, headers={"Authorization": raw})
    assert resp.status_code == 401, resp.text
    assert message_of(resp) == "invalid API key" and resp.headers["WWW-Authenticate"] == "Bearer"
    assert tracebacks(caplog) == []
    ok = client.post("/v1/ask", json={"question": "port"}, headers={"Authorization": f"Bearer {VALID_KEY}"})
    assert ok.status_code == 200


def test_a_non_ascii_api_key_matches_the_utf8_bytes_a_client_sends(make_app: Any) -> None:
    client, _ = make_app(api_keys="clé-de-l-api-9f8e7d")
    resp = client.get("/v1/models", headers={"Authorization": "Bearer clé-de-l-api-9f8e7d".encode()})
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("header", ["Authorization", "User-Agent", "Accept", "Accept-Language", "X-Forwarded-For",
                                    "Cookie", "Origin", "Content-Type"])
@pytest.mark.parametrize("auth", [False, True])
def test_non_utf8_bytes_in_any_header_are_never_a_500(make_app: Any, header: str, auth: bool) -> None:
    client, _ = make_app(**({"api_keys": VALID_KEY} if auth else {}))
    headers = {"Content-Type": b"application/json", header: b"\xff\xfe \xc3( \xed\xa0\x80"}
    if header != "Authorization" and auth:
        headers["Authorization"] = f"Bearer {VALID_KEY}".encode()
    resp = client.post("/v1/ask", content=b'{"question": "port"}', headers=headers)
    assert 200 <= resp.status_code < 500 and resp.status_code != 500, resp.text
    expected = 401 if auth and header == "Authorization" else 422 if header == "Content-Type" else 200
    assert resp.status_code == expected, resp.text


def test_raw_header_bytes_through_uvicorn_get_a_401(tmp_path: Path) -> None:
    """The whole server stack, not just the ASGI app: raw latin-1 and broken UTF-8 bytes on the wire."""
    app, _ = build_app(tmp_path, api_keys=VALID_KEY)
    server = LiveServer(app)
    try:
        for token in (b"\xe9t\xe9", b"\xc3\xa9\xff", b"key-one-7f3a91c2d4\x80"):
            status, body = raw_request(server.port, b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                                       + token + b"\r\nConnection: close\r\n\r\n")
            assert status == 401 and json.loads(body)["error"]["message"] == "invalid API key"
    finally:
        server.stop()


def raw_request(port: int, request: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


# -- 7. lone surrogates and malformed bodies ----------------------------------------------------

SURROGATE_BODIES = [
    ("/v1/ask", rb'{"question": "harbor \ud800 line"}'),
    ("/v1/ask", rb'{"question": "harbor \udfff line", "stream": true}'),
    ("/v1/ask", rb'{"question": "harbor", "sources": ["\ud83d"]}'),
    ("/v1/ask", rb'{"question": "harbor", "conversation_id": "\udc00"}'),
    ("/v1/chat/completions", rb'{"model": "newsrag", "messages": [{"role": "user", "content": "hi \ud800"}]}'),
    ("/v1/chat/completions", rb'{"model": "newsrag", "stream": true, "messages": [{"role": "user", "content": "\ud800"}]}'),
    ("/v1/chat/completions", (rb'{"model": "newsrag", "messages": [{"role": "user", "content": [{"type": "text", '
                              rb'"text": "a \udbff b"}]}]}')),
    ("/v1/chat/completions", rb'{"model": "newsrag", "user": "\ud800", "messages": [{"role": "user", "content": "hi"}]}'),
    ("/v1/chat/completions", (rb'{"model": "newsrag", "stream": true, "\ud800": 1, "messages": [{"role": "user", '
                              rb'"content": "hi"}]}')),
    ("/v1/feedback", rb'{"trace_id": "abcdefgh", "rating": "up", "comment": "nice \ud800"}'),
]


@pytest.mark.parametrize(("path", "body"), SURROGATE_BODIES)
def test_a_lone_surrogate_anywhere_in_the_body_is_a_422(make_app: Any, path: str, body: bytes) -> None:
    client, _ = make_app()
    resp = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 422, resp.text
    assert "not valid Unicode" in message_of(resp)
    assert ("error" in resp.json() and isinstance(resp.json()["error"], dict)) == path.startswith("/v1/chat")


def test_a_lone_surrogate_in_a_feedback_comment_for_a_served_answer_is_a_422(make_app: Any) -> None:
    client, _ = make_app()
    trace = client.post("/v1/ask", json={"question": "harbor"}).json()["trace_id"]
    body = b'{"trace_id": "%s", "rating": "up", "comment": "nice \\ud800"}' % trace.encode()
    resp = client.post("/v1/feedback", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 422 and "not valid Unicode" in message_of(resp)


@pytest.mark.parametrize("path", ["/v1/ask", "/v1/chat/completions", "/v1/feedback"])
@pytest.mark.parametrize("body", [
    b'{"question": ', b"{'question': 'single quotes'}", b"[]", b"null", b"42", b'"a string"',
    b'{"question": "\xed\xa0\x80"}', b'{"question": "\xff\xfe"}', b"\xef\xbb\xbf{}", b"[" * 100_000,
    b'{"a":' * 5_000 + b"1" + b"}" * 5_000, b'{"question": NaN}', b"", b"\x00" * 64,
])
def test_malformed_bodies_are_a_4xx(make_app: Any, path: str, body: bytes, caplog: pytest.LogCaptureFixture) -> None:
    client, _ = make_app()
    resp = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:300])
    assert message_of(resp) and "Traceback" not in resp.text
    assert tracebacks(caplog) == []


# -- 9. body size cap ---------------------------------------------------------------------------

def test_a_body_over_the_cap_is_a_413_in_the_routes_error_shape(make_app: Any) -> None:
    client, _ = make_app(max_body_bytes=4096)
    resp = client.post("/v1/ask", json={"question": "x" * 20_000})
    assert resp.status_code == 413, resp.text
    assert resp.json() == {"error": "payload_too_large", "status": 413,
                           "message": "the request body is too large (the limit is 4096 bytes)"}
    chat = client.post("/v1/chat/completions", json={"model": "newsrag", "messages": [
        {"role": "user", "content": "x" * 20_000}]})
    assert chat.status_code == 413 and chat.json()["error"]["type"] == "payload_too_large"
    assert client.post("/v1/ask", json={"question": "x" * 1000}).status_code == 200  # under the cap


def test_the_default_cap_refuses_20_mb(make_app: Any) -> None:
    client, services = make_app()
    assert services.settings.max_body_bytes == 1_048_576
    resp = client.post("/v1/ask", content=b'{"question": "' + b"x" * 20_000_000 + b'"}',
                       headers={"Content-Type": "application/json"})
    assert resp.status_code == 413


def test_a_chunked_body_without_content_length_is_counted(make_app: Any) -> None:
    client, _ = make_app(max_body_bytes=4096)

    def chunks() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    resp = client.post("/v1/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert resp.status_code == 413 and resp.json()["error"] == "payload_too_large"
    small = client.post("/v1/ask", content=iter([b'{"question": ', b'"harbor"}']),
                        headers={"Content-Type": "application/json"})
    assert small.status_code == 200, small.text


def test_a_chunked_body_over_the_cap_through_uvicorn_is_a_413(tmp_path: Path) -> None:
    app, _ = build_app(tmp_path, max_body_bytes=4096)
    server = LiveServer(app)
    try:
        chunk = b"x" * 3000
        body = b'{"question": "' + chunk + chunk + b'"}'
        wire = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:3000], body[3000:])) + b"0\r\n\r\n"
        status, text = raw_request(server.port, b"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                                   b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + wire)
        assert status == 413 and json.loads(text)["error"] == "payload_too_large"
    finally:
        server.stop()


# -- 7. streams always end ----------------------------------------------------------------------

def test_an_ask_stream_that_fails_midway_ends_with_a_generic_error_event(
        make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    client, services = make_app()
    services.answerer.fail_with = RuntimeError(LEAK)
    with client.stream("POST", "/v1/ask", json={"question": "harbor", "stream": True}) as resp:
        assert resp.status_code == 200
        text = "".join(resp.iter_text())
    events = sse_events(text)
    assert [name for name, _ in events] == ["meta", "delta", "error"]
    error = json.loads(events[-1][1])
    assert error["message"] == "internal error; see the server log" and error["type"] == "internal_error"
    assert error["trace_id"] == json.loads(events[0][1])["trace_id"]
    assert LEAK not in text and "RuntimeError" not in text and "Traceback" not in text
    logged = [r for r in caplog.records if r.exc_info and LEAK in str(r.exc_info[1])]
    assert logged and error["trace_id"] in logged[0].getMessage()  # the detail stays in the server log


def test_a_chat_stream_that_fails_midway_sends_an_error_chunk_then_done(make_app: Any) -> None:
    client, services = make_app()
    services.answerer.fail_with = KeyError(LEAK)
    with client.stream("POST", "/v1/chat/completions", json={"model": "newsrag", "stream": True, "messages": [
            {"role": "user", "content": "harbor"}]}) as resp:
        assert resp.status_code == 200
        lines = [line for line in resp.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    error = json.loads(lines[-2].removeprefix("data: "))["error"]
    assert error == {"message": "internal error; see the server log", "type": "internal_error", "param": None,
                     "code": 500}
    assert json.loads(lines[1].removeprefix("data: "))["choices"][0]["delta"]["content"]  # the delta got out
    assert not any(LEAK in line for line in lines)


GRPC_TEXT = ("Weaviate unavailable (NewsChunk): Query call with protocol GRPC search failed with message "
             "<_InactiveRpcError of RPC that terminated with: status = StatusCode.UNAVAILABLE>")


def test_a_store_failure_midway_ends_both_streams_with_the_clean_503_message(
        make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    """#20 item 3: the store's own text (gRPC status, collection) stays in the log."""
    from newsrag.app.errors import STORE_DOWN
    from newsrag.core.errors import StoreUnavailable

    client, services = make_app()
    services.answerer.fail_with = StoreUnavailable(GRPC_TEXT, retry_after=3)
    text = client.post("/v1/ask", json={"question": "harbor", "stream": True}).text
    error = json.loads(sse_events(text)[-1][1])
    assert (error["message"], error["status"], error["type"]) == (STORE_DOWN.format(wait=3), 503, "unavailable")
    chat = client.post("/v1/chat/completions", json={"model": "newsrag", "stream": True, "messages": [
        {"role": "user", "content": "harbor"}]})
    lines = [line for line in chat.text.splitlines() if line]
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[-2].removeprefix("data: "))["error"] == {
        "message": STORE_DOWN.format(wait=3), "type": "unavailable", "param": None, "code": 503}
    for body in (text, chat.text):
        assert "GRPC" not in body and "InactiveRpc" not in body and "NewsChunk" not in body
    assert any(GRPC_TEXT in r.getMessage() for r in caplog.records)


def test_a_provider_error_midway_keeps_its_message_and_status(make_app: Any) -> None:
    from newsrag.core.errors import ProviderError

    client, services = make_app()
    services.answerer.fail_with = ProviderError("openai", "rate limited", retryable=True)
    text = client.post("/v1/ask", json={"question": "harbor", "stream": True}).text
    error = json.loads(sse_events(text)[-1][1])
    assert (error["message"], error["status"], error["type"]) == ("openai: rate limited", 503, "provider_error")


def test_a_stream_whose_answer_log_fails_still_ends(make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Recording the answer is the last step of a stream; its failure must not cut the stream short."""
    client, services = make_app()
    services.feedback.close()  # every write now raises sqlite3.ProgrammingError
    text = client.post("/v1/ask", json={"question": "harbor", "stream": True}).text
    assert sse_events(text)[-1][0] == "error"
    chat = client.post("/v1/chat/completions", json={"model": "newsrag", "stream": True, "messages": [
        {"role": "user", "content": "harbor"}]}).text
    assert chat.strip().endswith("data: [DONE]") and '"internal_error"' in chat
    assert any(r.exc_info and isinstance(r.exc_info[1], sqlite3.ProgrammingError) for r in caplog.records)


# -- 8. rate limits -----------------------------------------------------------------------------

def test_without_auth_random_tokens_share_the_client_address_limit(make_app: Any) -> None:
    client, _ = make_app(rate_limit_per_minute=3)
    codes = [client.get("/v1/models", headers={"Authorization": f"Bearer {uuid.uuid4().hex}"}) for _ in range(4)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    assert int(codes[-1].headers["Retry-After"]) >= 1
    assert client.get("/v1/models").status_code == 429  # and no token at all is the same client


def test_wrong_keys_are_throttled_per_address_before_the_key_is_checked(make_app: Any) -> None:
    client, _ = make_app(api_keys=VALID_KEY)
    codes = [client.get("/v1/models", headers={"Authorization": f"Bearer wrong-{i}"}) for i in range(20)]
    assert [r.status_code for r in codes] == [401] * 10 + [429] * 10
    assert all(int(r.headers["Retry-After"]) >= 1 for r in codes[10:])
    assert "failed authentication" in message_of(codes[-1])
    right = client.get("/v1/models", headers={"Authorization": f"Bearer {VALID_KEY}"})
    assert right.status_code == 429  # a right guess from the address is not confirmed either


def test_keys_sharing_their_last_characters_have_their_own_limits(make_app: Any) -> None:
    client, _ = make_app(api_keys="alpha-4f9c21e8,bravo-4f9c21e8", rate_limit_per_minute=2)
    alpha = [client.get("/v1/models", headers={"Authorization": "Bearer alpha-4f9c21e8"}).status_code
             for _ in range(3)]
    bravo = client.get("/v1/models", headers={"Authorization": "Bearer bravo-4f9c21e8"}).status_code
    assert alpha == [200, 200, 429] and bravo == 200


# -- 11. the answer and feedback log ------------------------------------------------------------

def test_feedback_stores_a_key_fingerprint_not_key_characters(make_app: Any, tmp_path: Path) -> None:
    client, _ = make_app(api_keys=VALID_KEY)
    auth = {"Authorization": f"Bearer {VALID_KEY}"}
    for _ in range(2):
        trace = client.post("/v1/ask", json={"question": "harbor"}, headers=auth).json()["trace_id"]
        assert client.post("/v1/feedback", json={"trace_id": trace, "rating": "up"}, headers=auth).status_code == 201
    with sqlite3.connect(tmp_path / "feedback.sqlite") as db:
        keys = [row[0] for row in db.execute("SELECT user_key FROM feedback")]
    expected = "key:" + hashlib.sha256(b"newsrag-api-key:" + VALID_KEY.encode()).hexdigest()[:12]
    assert keys == [expected, expected]
    assert not any(VALID_KEY[i:i + 4] in keys[0].removeprefix("key:") for i in range(len(VALID_KEY) - 3))


def test_a_hostile_article_cannot_make_the_answer_log_write_megabytes(make_app: Any, tmp_path: Path) -> None:
    from newsrag.evaluation.feedback import PAYLOAD_CHARS, TRUNCATED

    client, services = make_app()
    services.answerer.title = "T" * 5_000_000
    services.answerer.quote = "Q" * 1_000_000 + "."
    trace = client.post("/v1/ask", json={"question": "harbor"}).json()["trace_id"]
    with sqlite3.connect(tmp_path / "feedback.sqlite") as db:
        question, answer, payload = db.execute("SELECT question, answer, payload FROM answers WHERE trace_id=?",
                                               (trace,)).fetchone()
    assert len(payload) <= PAYLOAD_CHARS and len(answer) <= 16_000 and question == "harbor"
    cited = json.loads(payload)["citations"][0]
    assert len(cited["title"]) == 500 and cited["title"].endswith(TRUNCATED)
    assert len(cited["quote"]) == 1_000 and cited["quote"].endswith(TRUNCATED)


# -- 9. /metrics --------------------------------------------------------------------------------

def test_metrics_need_an_api_key_when_auth_is_on(make_app: Any) -> None:
    client, _ = make_app(api_keys=VALID_KEY)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = client.get("/metrics", headers={"Authorization": f"Bearer {VALID_KEY}"})
    assert ok.status_code == 200 and "newsrag_requests_total" in ok.text


def test_metrics_need_an_admin_key_when_admin_keys_are_configured(make_app: Any) -> None:
    client, _ = make_app(api_keys=VALID_KEY, admin_keys=ADMIN_KEY)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {VALID_KEY}"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200


def test_metrics_are_open_without_auth_and_count_refusals(make_app: Any) -> None:
    client, _ = make_app(max_body_bytes=2048)
    client.post("/v1/ask", json={"question": "x" * 5000})
    text = client.get("/metrics").text
    assert 'status="413"' in text
