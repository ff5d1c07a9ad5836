"""A real Weaviate collection holding the example corpus, and the app wired to it."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="package")
def corpus(corpus_collection: str) -> str:
    return corpus_collection


@pytest.fixture
def make_client(corpus: str, embedder: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Build a TestClient for the app with settings overrides; closes them all at the end."""
    from fastapi.testclient import TestClient

    from newsrag.app.main import create_app
    from newsrag.app.services import Services
    from newsrag.app.settings import AppSettings
    from newsrag.core.settings import Settings
    from newsrag.store.weaviate import WeaviateStore

    clients: list[Any] = []

    def make(**overrides: Any) -> Any:
        # The tests are the edge: the root of the session's environment, with these app settings.
        root = Settings().replace(AppSettings(feedback_db=str(tmp_path / "feedback.sqlite"), **overrides))
        services = Services(root, store=WeaviateStore(root, collection=corpus), embedder=embedder)
        client = TestClient(create_app(root, services))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


class LiveServer:
    """The app served by uvicorn on a free loopback port in a thread (for SDK and browser tests)."""

    def __init__(self, app: Any) -> None:
        import socket

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started, "uvicorn did not start"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def make_live_app(corpus: str, embedder: Any, tmp_path: Path) -> Iterator[Any]:
    """Serve the app on the corpus with settings overrides (uvicorn in a thread); stops them all."""
    from newsrag.app.main import create_app
    from newsrag.app.services import Services
    from newsrag.app.settings import AppSettings
    from newsrag.core.settings import Settings
    from newsrag.store.weaviate import WeaviateStore

    servers: list[LiveServer] = []

    def make(**overrides: Any) -> LiveServer:
        # Built after the test's monkeypatch.setenv calls (OPENAI_BASE_URL, ...): they configure the app.
        root = Settings().replace(AppSettings(feedback_db=str(tmp_path / "feedback.sqlite"), **overrides))
        services = Services(root, store=WeaviateStore(root, collection=corpus), embedder=embedder)
        server = LiveServer(create_app(root, services))
        server.services = services  # type: ignore[attr-defined]
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def live_app(make_live_app: Any) -> LiveServer:
    return make_live_app()  # type: ignore[no-any-return]


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Any]:
    """A TestClient that reports a 500 as a 500 (not as a raised exception), and the services."""
    from fastapi.testclient import TestClient

    clients: list[Any] = []

    def make(**overrides: Any) -> tuple[Any, Any]:
        from tests.app.scripted import build_app

        app, services = build_app(tmp_path, **overrides)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client, services

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def sse_events(text: str) -> list[tuple[str, str]]:
    out = []
    for block in text.strip().split("\n\n"):
        name = re.search(r"^event: (.*)$", block, re.MULTILINE)
        data = re.search(r"^data: (.*)$", block, re.MULTILINE)
        out.append((name.group(1) if name else "message", data.group(1) if data else ""))
    return out
