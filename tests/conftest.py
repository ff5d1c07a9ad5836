"""Shared fixtures: a real weaviate-server for the session, one collection per test, the local
embedder, a private throwaway PostgreSQL cluster, and an isolated Airflow home. Every test carries
exactly one of unit/integration/e2e."""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
KINDS = ("unit", "integration", "e2e")

# Isolate everything newsrag and Airflow write before any of them is imported.
_SESSION_TMP = Path(tempfile.mkdtemp(prefix="newsrag-tests-"))
os.environ["NEWSRAG_HOME"] = str(_SESSION_TMP / "home")
os.environ.setdefault("NEWSRAG_ENV", "test")
os.environ["AIRFLOW_HOME"] = str(_SESSION_TMP / "airflow")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
for var in ("WEAVIATE_URL", "WEAVIATE_API_KEY", "OPENAI_API_KEY", "COHERE_API_KEY"):
    os.environ.pop(var, None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    bad = [item.nodeid for item in items if sum(1 for k in KINDS if item.get_closest_marker(k)) != 1]
    if bad:
        raise pytest.UsageError("tests need exactly one of the markers unit/integration/e2e: " + ", ".join(bad))


@pytest.fixture(scope="session")
def session_tmp() -> Path:
    return _SESSION_TMP


@pytest.fixture(scope="session")
def weaviate_server() -> Iterator[object]:
    """A real weaviate-server on free loopback ports in a temp folder, shared by the session. The
    tests are an edge: the root settings come from the session's environment (NEWSRAG_HOME above)."""
    from newsrag.core.settings import LocalWeaviateSettings, Settings
    from newsrag.store.server import LocalWeaviate

    server = LocalWeaviate.from_settings(Settings().replace(LocalWeaviateSettings(http_port=0, grpc_port=0)))
    server.install()
    state = server.start()
    try:
        yield state
    finally:
        server.stop()


@pytest.fixture
def collection_name(request: pytest.FixtureRequest) -> str:
    base = re.sub(r"[^A-Za-z0-9]", "", request.node.name.title())[:40]
    return f"T{base}{uuid.uuid4().hex[:6]}"


@pytest.fixture
def store(weaviate_server: object, collection_name: str) -> Iterator[object]:
    """A WeaviateStore on a collection of its own, dropped after the test (the session's server:
    the root settings of the session's environment)."""
    from newsrag.core.settings import Settings
    from newsrag.store.weaviate import WeaviateStore

    s = WeaviateStore(Settings(), collection=collection_name)
    try:
        yield s
    finally:
        if s.exists():
            s.drop()
        s.close()


@pytest.fixture(scope="session")
def embedder() -> Iterator[object]:
    from newsrag.embeddings.local import LocalEmbedder

    e = LocalEmbedder()
    yield e
    e.close()


class FeedServer:
    """A loopback HTTP server for fixture feeds and pages, with ETag/304 and canned failures.

    ``routes[path] = (body, content_type)`` or a callable ``handler -> None`` for special cases."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.routes: dict[str, object] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                route = server.routes.get(path)
                if route is None:
                    self.send_error(404)
                elif callable(route):
                    route(self)
                else:
                    server.serve_static(self, *route)

            def do_POST(self) -> None:
                path = self.path.split("?")[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                route = server.routes.get(path)
                if callable(route):
                    route(self)
                else:
                    self.send_error(405)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    @staticmethod
    def serve_static(h: object, body: bytes, content_type: str) -> None:
        import hashlib

        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if h.headers.get("If-None-Match") == etag:  # type: ignore[attr-defined]
            h.send_response(304)  # type: ignore[attr-defined]
            h.send_header("ETag", etag)  # type: ignore[attr-defined]
            h.end_headers()  # type: ignore[attr-defined]
            return
        h.send_response(200)  # type: ignore[attr-defined]
        h.send_header("Content-Type", content_type)  # type: ignore[attr-defined]
        h.send_header("Content-Length", str(len(body)))  # type: ignore[attr-defined]
        h.send_header("ETag", etag)  # type: ignore[attr-defined]
        h.end_headers()  # type: ignore[attr-defined]
        h.wfile.write(body)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def corpus_collection(weaviate_server: object, embedder: object, tmp_path_factory: pytest.TempPathFactory
                      ) -> Iterator[str]:
    """The project's example corpus ingested once into a collection of its own."""
    from newsrag.core.settings import IngestSettings, Settings
    from newsrag.ingest.context import IngestContext
    from newsrag.ingest.pipeline import run_source
    from newsrag.ingest.registry import load_registry
    from newsrag.store.weaviate import WeaviateStore

    name = f"TCorpus{uuid.uuid4().hex[:8]}"
    registry = load_registry(REPO / "examples" / "sources.offline.yaml")
    store = WeaviateStore(Settings(), collection=name)
    with IngestContext(IngestSettings(), store=store, embedder=embedder,  # type: ignore[arg-type]
                       home=tmp_path_factory.mktemp("corpus-ingest"), base_dir=Path(registry.base_dir)) as ctx:
        reports = [run_source(spec, ctx) for spec in registry.enabled()]
    assert all(r.status == "ok" for r in reports), [r.error for r in reports]
    try:
        yield name
    finally:
        store.drop()
        store.close()


# -- a private PostgreSQL cluster (Debian's postgresql package; scripts/setup installs it) ---------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster for the session; yields its URL (with a password)."""
    from tests.postgres import PrivatePostgres, require_bindir

    server = PrivatePostgres(require_bindir())
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose connections work in a fresh schema of their own (dropped after the test)."""
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{postgres_server}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
