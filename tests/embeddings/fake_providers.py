"""A loopback HTTP server that speaks the OpenAI and Cohere wire formats, for offline tests.

Replies are scripted per path: ``server.script(path, reply, ...)`` queues replies that are used
once each, in order; ``server.route(path, responder)`` sets the reply used when the queue is empty.
A reply is ``(status, headers, body)`` where ``body`` is JSON-serializable, or ``bytes``/``str``
sent as-is (for malformed replies); a responder is a callable ``Received -> reply`` (it may sleep
to simulate a slow server). Every request is recorded in ``server.requests``; a responder that
raises gets status 599 and its exception lands in ``server.errors``.

Reusable beyond embeddings: ``openai_chat_completion`` / ``cohere_chat_response`` build the
bodies a generator test needs.

    with FakeProviderServer() as server:
        server.route("/v1/embeddings", openai_embeddings())
        server.script("/v1/embeddings", (429, {"Retry-After": "2"}, {"error": {"message": "slow"}}))
        ... OpenAI(base_url=server.url("/v1")) ...
        assert server.requests[0].json["model"] == "text-embedding-3-small"
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import numpy as np

Reply = tuple[int, dict[str, str], Any]
Responder = Callable[["Received"], Reply]


@dataclass
class Received:
    """One request as the server saw it. Header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None

    @property
    def bearer(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[len("Bearer "):] if auth.startswith("Bearer ") else None


@dataclass
class _Route:
    queue: deque[Reply | Responder] = field(default_factory=deque)
    default: Reply | Responder | None = None


class FakeProviderServer:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.errors: list[Exception] = []  # raised by responders
        self._routes: dict[str, _Route] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                server._handle(self)

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    # -- configuration -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str = "") -> str:
        return self.base_url + path

    def script(self, path: str, *replies: Reply | Responder) -> None:
        """Queue replies for ``path``, each used once, before the route's default."""
        with self._lock:
            self._routes.setdefault(path, _Route()).queue.extend(replies)

    def route(self, path: str, reply: Reply | Responder) -> None:
        """The reply for ``path`` whenever its queue is empty."""
        with self._lock:
            self._routes.setdefault(path, _Route()).default = reply

    def requests_to(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # -- serving -------------------------------------------------------------------------------

    def _handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        path = h.path.split("?")[0]
        req = Received(h.command, path, {k.lower(): v for k, v in h.headers.items()}, raw, parsed)
        with self._lock:
            self.requests.append(req)
            route = self._routes.get(path)
            reply: Reply | Responder | None = None
            if route is not None:
                reply = route.queue.popleft() if route.queue else route.default
        if reply is None:
            reply = (404, {}, {"error": {"message": f"no route for {path}"}})
        try:
            status, headers, body = reply(req) if callable(reply) else reply
        except Exception as exc:  # noqa: BLE001 - a broken responder is a test bug: record, answer 599
            self.errors.append(exc)
            status, headers, body = 599, {}, {"error": {"message": f"responder failed: {exc!r}"}}
        if isinstance(body, bytes):
            payload = body
        elif isinstance(body, str):
            payload = body.encode()
        else:
            payload = json.dumps(body).encode()
        try:
            h.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                h.send_header(name, value)
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            h.close_connection = True

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


# -- wire formats ------------------------------------------------------------------------------


def fake_vector(text: str, dims: int) -> list[float]:
    """A deterministic, deliberately non-normalized vector for ``text``."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return [float(x) for x in np.random.default_rng(seed).standard_normal(dims) * 3.0]


def openai_embeddings(native_dims: int = 1536, *, shuffle: bool = False,
                      length: int | None = None) -> Responder:
    """Responder for ``POST /v1/embeddings``; honours ``dimensions``. ``shuffle`` returns the
    items out of index order, ``length`` forces a (wrong) vector length."""

    def respond(req: Received) -> Reply:
        body = req.json or {}
        inputs = body.get("input", [])
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        dims = length or body.get("dimensions") or native_dims
        data = [{"object": "embedding", "index": i, "embedding": fake_vector(t, dims)}
                for i, t in enumerate(inputs)]
        if shuffle:  # reversed: out of order for any n >= 2
            data.reverse()
        tokens = sum(max(1, len(t) // 4) for t in inputs)
        return 200, {}, {"object": "list", "data": data, "model": body.get("model"),
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    return respond


def cohere_embed(native_dims: int = 1536, *, length: int | None = None) -> Responder:
    """Responder for ``POST /v2/embed``; honours ``output_dimension``."""

    def respond(req: Received) -> Reply:
        body = req.json or {}
        texts: Sequence[str] = body.get("texts", [])
        dims = length or body.get("output_dimension") or native_dims
        tokens = sum(max(1, len(t) // 4) for t in texts)
        return 200, {}, {
            "id": "emb-1", "response_type": "embeddings_by_type", "texts": list(texts),
            "embeddings": {"float": [fake_vector(t, dims) for t in texts]},
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
        }

    return respond


def openai_error(status: int, message: str = "error", **headers: str) -> Reply:
    return status, dict(headers), {"error": {"message": message, "type": "error", "code": None}}


def cohere_error(status: int, message: str = "error", **headers: str) -> Reply:
    return status, dict(headers), {"message": message}


def openai_chat_completion(content: str, model: str = "gpt-4o-mini") -> dict[str, Any]:
    """A ``POST /v1/chat/completions`` reply body with one assistant message."""
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def cohere_chat_response(text: str) -> dict[str, Any]:
    """A ``POST /v2/chat`` reply body with one assistant message."""
    return {
        "id": "chat-1", "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": [{"type": "text", "text": text}]},
        "usage": {"billed_units": {"input_tokens": 1, "output_tokens": 1},
                  "tokens": {"input_tokens": 1, "output_tokens": 1}},
    }
