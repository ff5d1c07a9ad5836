"""App factory: ``create_app()`` (uvicorn: ``newsrag.app.main:create_app --factory``), the app's edge:
it builds the root settings once (from the process environment) and keeps them on ``app.state``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from newsrag.app import errors
from newsrag.app.limits import BodySizeLimit
from newsrag.app.routes_api import observe
from newsrag.app.routes_api import router as api_router
from newsrag.app.routes_openai import router as openai_router
from newsrag.app.services import Services
from newsrag.app.settings import AppSettings, app_root
from newsrag.core.settings import Settings

STATIC = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings | AppSettings | None = None, services: Services | None = None) -> FastAPI:
    """``settings``: the root (None: built here from the process environment), or the AppSettings
    alone (:func:`app_root`). Ready-made ``services`` (tests, benchmarks) bring their own root."""
    root = services.root if services is not None else app_root(settings)
    app_settings = root.get(AppSettings)  # invalid (production without API keys): ConfigError now, not later

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = services or Services(root)
        svc.warm_up()
        app.state.services = svc
        try:
            yield
        finally:
            svc.close()

    app = FastAPI(title="newsrag", version="0.1.0", lifespan=lifespan,
                  description="Cited answers over fresh news. OpenAI-compatible at /v1/chat/completions.")
    app.state.settings = root
    app.add_middleware(BodySizeLimit, max_bytes=app_settings.max_body_bytes)  # inside CORS and the metrics count
    if app_settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=app_settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    errors.install(app)
    app.include_router(api_router)
    app.include_router(openai_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.middleware("http")
    async def count(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        svc = getattr(request.app.state, "services", None)
        if svc is not None:
            observe(svc, getattr(route, "path", "unmatched"), response.status_code, started)
        return response

    return app
