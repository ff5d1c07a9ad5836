"""Errors become JSON with a clear message and the right status; never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from evaluation.feedback import UnknownTrace
from newsrag.errors import ConfigError, NewsragError, ProviderError, StoreUnavailable
from retrieval.search import InvalidQuery

log = logging.getLogger("newsrag.app")


def error_body(message: str, kind: str, status: int, openai: bool = False) -> dict[str, object]:
    if openai:  # the OpenAI wire format, so SDKs surface the message
        return {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return {"error": kind, "message": message, "status": status}


def is_openai_path(path: str) -> bool:
    return path.startswith(("/v1/chat", "/v1/models"))


def _respond(request: Request, status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse(error_body(message, kind, status, is_openai_path(request.url.path)), status_code=status)


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


def stream_error(exc: Exception, trace_id: str | None) -> tuple[str, str, int]:
    """(message, kind, status) for a stream that failed after its headers went out. A library error
    keeps its message, as it would in a JSON error; anything else is logged here with its traceback
    and the client gets a generic message, no internals."""
    if isinstance(exc, NewsragError):
        status, kind = status_for(exc)
        log.warning("stream %s failed: %s", trace_id, exc)
        return str(exc), kind, status
    log.error("stream %s failed", trace_id, exc_info=exc)
    return "internal error; see the server log", "internal_error", 500


def _located(loc: Sequence[object], msg: str) -> str:
    where = ".".join(str(p) for p in loc if p != "body")
    return f"{where}: {msg}" if where else msg


def install(app: FastAPI) -> None:
    @app.exception_handler(NewsragError)
    async def _library(request: Request, exc: NewsragError) -> JSONResponse:
        status, kind = status_for(exc)
        return _respond(request, status, kind, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [_located(e["loc"], e["msg"]) for e in exc.errors()]
        return _respond(request, 422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = _respond(request, exc.status_code, "http_error", str(exc.detail))
        for k, v in (exc.headers or {}).items():
            response.headers[k] = v
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return _respond(request, 500, "internal_error", "internal error; see the server log")
