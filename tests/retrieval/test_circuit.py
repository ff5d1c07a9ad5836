"""Weaviate down: a query fails within about ``query_probe_after`` seconds with StoreUnavailable
instead of sitting through the client's 63 s of retries, later queries fail at once while the
circuit is open, and the store recovers by itself when the server is back (#20, item 3)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from newsrag.core.errors import StoreUnavailable
from newsrag.core.records import ChunkRecord, StoredObject
from newsrag.core.settings import LocalWeaviateSettings, PathSettings, Settings, WeaviateSettings
from newsrag.embeddings.base import vector_name
from newsrag.store.server import LocalWeaviate
from newsrag.store.weaviate import WeaviateStore

pytestmark = pytest.mark.integration


@pytest.fixture
def own_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LocalWeaviate, WeaviateSettings]]:
    """A local server of this test's own (the session's must stay up), found through its state file
    in this test's NEWSRAG_HOME as the CLI and the app find theirs."""
    home = tmp_path / "home"
    monkeypatch.setenv("NEWSRAG_HOME", str(home))
    server = LocalWeaviate(PathSettings(home=home), LocalWeaviateSettings(http_port=0, grpc_port=0))
    server.install()
    server.start()
    try:
        yield server, WeaviateSettings(query_probe_after=1.0, circuit_open_seconds=2.0)
    finally:
        server.stop()


def _fill(store: WeaviateStore, embedder: Any) -> None:
    name = vector_name(embedder.model_id)
    store.ensure_collection([name])
    text = "The harbor museum reopened on Saturday after a two-year renovation."
    store.upsert([StoredObject(str(uuid.uuid4()), ChunkRecord(text=text, title="Museum", doc_id="m", chunk_index=0,
                                                              content_hash="h", source_id="s", url="https://x.test/m"),
                               embedder.embed_documents([text])[0].tolist())], name)


def _timed(fn: Any) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        fn()
    except StoreUnavailable as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def test_queries_fail_fast_while_weaviate_is_down_and_recover(own_server: Any, embedder: Any) -> None:
    server, settings = own_server
    store = WeaviateStore(Settings().replace(settings), collection="Circuit")  # NEWSRAG_HOME: this test's server
    try:
        _fill(store, embedder)
        assert [h.chunk.doc_id for h in store.bm25("museum")] == ["m"]
        server.stop()

        first, error = _timed(lambda: store.bm25("museum"))
        assert isinstance(error, StoreUnavailable) and error.retryable
        assert first < 3.0, f"the first query took {first:.1f} s (the client alone retries for 63 s)"
        assert store.guard.is_open

        second, error = _timed(lambda: store.bm25("museum"))
        assert isinstance(error, StoreUnavailable) and "next check" in str(error)
        assert second < 0.5 and error.retry_after and error.retry_after >= 1

        server.start()  # its old ports may still be held: the local state file says where it is now
        deadline = time.monotonic() + 30
        while True:  # no restart of the store: the half-open probe lets a query through
            _, error = _timed(lambda: store.bm25("museum"))
            if error is None or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert error is None, f"still unavailable 30 s after the restart: {error}"
        assert [h.chunk.doc_id for h in store.bm25("museum")] == ["m"]
        assert not store.guard.is_open
    finally:
        store.close()
