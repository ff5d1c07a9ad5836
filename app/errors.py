"""Errors become JSON with a clear message and the right status; never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from newsrag.core.errors import ConfigError, NewsragError, ProviderError, StoreUnavailable
from newsrag.evaluation.feedback import UnknownTrace
from newsrag.retrieval.search import InvalidQuery

log = logging.getLogger("newsrag.app")


def error_body(message: str, kind: str, status: int, openai: bool = False,
               param: str | None = None) -> dict[str, object]:
    """``param``: the one request field at fault, when there is one (OpenAI's ``param``)."""
    if openai:  # the OpenAI wire format, so SDKs surface the message
        return {"error": {"message": message, "type": kind, "param": param, "code": status}}
    return {"error": kind, "message": message, "status": status}


def is_openai_path(path: str) -> bool:
    return path.startswith(("/v1/chat", "/v1/models"))


def _respond(request: Request, status: int, kind: str, message: str,
             headers: dict[str, str] | None = None, param: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, kind, status, is_openai_path(request.url.path), param),
                        status_code=status, headers=headers)


def status_for(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, InvalidQuery | ValueError):
        return 400, "invalid_request"
    if isinstance(exc, UnknownTrace):
        return 404, "not_found"
    if isinstance(exc, StoreUnavailable):
        return 503, "unavailable"
    if isinstance(exc, ProviderError):
        return (503 if exc.retryable else 502), "provider_error"
    if isinstance(exc, ConfigError):
        return 500, "configuration_error"
    return 500, "internal_error"


STORE_DOWN = "the search index (Weaviate) is unavailable right now; try again in {wait} s"
DEFAULT_RETRY_AFTER = 5  # seconds, when the store's circuit does not say
INTERNAL = "internal error; see the server log"


class PublicError(NamedTuple):
    """What a client is told about a failure: status, kind, message and headers; no internals."""

    status: int
    kind: str
    message: str
    headers: dict[str, str]


def public_error(exc: NewsragError) -> PublicError:
    """A library error as the client sees it. The store's own text (gRPC status, hosts, collection)
    and any other 5xx detail stay in the log; a 4xx keeps its message, which is about the request,
    and so does a provider's error, which says what the model provider refused."""
    status, kind = status_for(exc)
    if isinstance(exc, StoreUnavailable):
        wait = exc.retry_after or DEFAULT_RETRY_AFTER
        log.warning("search index unavailable (Retry-After %d s): %s", wait, exc)
        return PublicError(status, kind, STORE_DOWN.format(wait=wait), {"Retry-After": str(wait)})
    if status >= 500 and not isinstance(exc, ProviderError):
        log.error("%s: %s", kind, exc)
        return PublicError(status, kind, INTERNAL, {})
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after and status in (429, 503) else {}
    return PublicError(status, kind, str(exc), headers)


def stream_error(exc: Exception, trace_id: str | None) -> tuple[str, str, int]:
    """(message, kind, status) for a stream that failed after its headers went out: what a JSON
    error would say (:func:`public_error`); anything else is logged here with its traceback and the
    client gets a generic message, no internals."""
    if isinstance(exc, NewsragError):
        log.warning("stream %s failed: %s", trace_id, exc)
        public = public_error(exc)
        return public.message, public.kind, public.status
    log.error("stream %s failed", trace_id, exc_info=exc)
    return INTERNAL, "internal_error", 500


def _where(loc: Sequence[object]) -> str:
    return ".".join(str(p) for p in loc if p != "body")


def _located(loc: Sequence[object], msg: str) -> str:
    msg = msg.removeprefix("Value error, ")  # pydantic's prefix for a validator's own message
    where = _where(loc)
    return f"{where}: {msg}" if where else msg


def install(app: FastAPI) -> None:
    @app.exception_handler(NewsragError)
    async def _library(request: Request, exc: NewsragError) -> JSONResponse:
        public = public_error(exc)
        return _respond(request, public.status, public.kind, public.message, public.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        parts = [_located(e["loc"], e["msg"]) for e in errors]
        param = (_where(errors[0]["loc"]) or None) if len(errors) == 1 else None
        return _respond(request, 422, "invalid_request", "; ".join(parts) or "invalid request", param=param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _respond(request, exc.status_code, "http_error", str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return _respond(request, 500, "internal_error", INTERNAL)
