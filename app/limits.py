"""A cap on request bodies, as a pure ASGI middleware (``NEWSRAG_APP_MAX_BODY_BYTES``).

A declared ``Content-Length`` over the cap is refused before a byte is read. A body without one
(chunked) is counted as it arrives: at the first byte over the cap the client gets the 413 and the
app sees a disconnect, so it stops reading; whatever the app answers after that is dropped.
Pure ASGI, not ``BaseHTTPMiddleware``, because it must sit between the server and the body stream.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsrag.app.errors import error_body, is_openai_path

DISCONNECT: Message = {"type": "http.disconnect"}


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        await _CountedRequest(self, scope, receive, send).run()

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"the request body is too large (the limit is {self.max_bytes} bytes)"
        body = error_body(message, "payload_too_large", 413, is_openai_path(scope.get("path", "")))
        await JSONResponse(body, status_code=413, headers={"Connection": "close"})(scope, receive, send)


class _CountedRequest:
    """One request whose body is counted against the cap while the app reads it."""

    def __init__(self, limit: BodySizeLimit, scope: Scope, receive: Receive, send: Send) -> None:
        self.limit, self.scope, self._receive, self._send = limit, scope, receive, send
        self.received = 0
        self.refused = False
        self.started = False

    async def run(self) -> None:
        await self.limit.app(self.scope, self.receive, self.send)

    async def receive(self) -> Message:
        if self.refused:
            return DISCONNECT
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit.max_bytes:
                self.refused = True
                if not self.started:  # else the response is under way: the app just stops reading
                    await self.limit._refuse(self.scope, self._receive, self._send)
                return DISCONNECT
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


def _content_length(scope: Scope) -> int | None:
    """The declared length, or None when absent or not a number (then the body is counted)."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isascii() and text.isdigit() else None
    return None
