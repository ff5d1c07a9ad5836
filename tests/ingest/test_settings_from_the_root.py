"""The ingest path is configured by the root Settings an edge hands it, never by the process
environment: the context's concerns, the store it opens, the batches a DAG run plans and the URL the
preflight names all come from the root; without one, from the documented defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsrag.core.settings import IngestSettings, Settings, WeaviateSettings
from newsrag.ingest.context import IngestContext
from newsrag.ingest.preflight import store_url
from newsrag.ingest.summary import plan_batches
from newsrag.store.weaviate import WeaviateStore

pytestmark = pytest.mark.unit


@pytest.fixture
def process_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """What the process environment says: none of it may reach the library."""
    monkeypatch.setenv("WEAVIATE_COLLECTION", "FromTheProcess")
    monkeypatch.setenv("NEWSRAG_HOME", str(tmp_path / "process-home"))
    monkeypatch.setenv("NEWSRAG_INGEST_WRITE_GROUP", "3")
    monkeypatch.setenv("NEWSRAG_INGEST_MAX_TITLE_CHARS", "33")
    monkeypatch.setenv("NEWSRAG_FETCH_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("NEWSRAG_BM25_STEMMER", "german")
    return tmp_path


def test_a_context_takes_every_concern_from_the_root(process_env: Path) -> None:
    home = process_env / "root-home"
    root = Settings({"WEAVIATE_COLLECTION": "FromTheRoot", "NEWSRAG_HOME": str(home),
                     "NEWSRAG_INGEST_WRITE_GROUP": "7", "NEWSRAG_INGEST_MAX_TITLE_CHARS": "99",
                     "NEWSRAG_BM25_STEMMER": "none", "FEED_TOKEN": "t0k"})
    ctx = IngestContext(root)
    assert (ctx.home, ctx.settings.write_group, ctx.limits.max_title_chars) == (home, 7, 99)
    assert ctx.analysis.stemmer == "none" and not ctx.fetcher.settings.allow_private
    assert ctx.store.name == "FromTheRoot"  # created, not connected
    assert isinstance(ctx.store, WeaviateStore) and ctx.store.local.state_file == home / "weaviate.json"
    assert ctx.root.environ["FEED_TOKEN"] == "t0k"
    ctx.close()


def test_a_context_without_a_root_uses_the_defaults(process_env: Path) -> None:
    ctx = IngestContext()
    assert (ctx.home, ctx.settings.write_group, ctx.limits.max_title_chars) == (Path(".newsrag"), 32, 500)
    assert ctx.analysis.stemmer == "english" and not ctx.fetcher.settings.allow_private
    assert ctx.store.name == "NewsChunk"
    ctx.close()
    alone = IngestContext(IngestSettings(write_group=5), home=process_env)  # one concern given, the rest defaults
    assert (alone.settings.write_group, alone.home, alone.limits.max_title_chars) == (5, process_env, 500)
    alone.close()


def test_the_store_reads_its_settings_and_its_local_server_from_the_root(process_env: Path) -> None:
    root = Settings({"WEAVIATE_COLLECTION": "FromTheRoot", "NEWSRAG_HOME": str(process_env / "root-home")})
    store = WeaviateStore(root)
    assert store.name == "FromTheRoot" and store.local.paths.home == process_env / "root-home"
    assert not store.remote
    assert WeaviateStore().name == "NewsChunk" and WeaviateStore().local.paths.home == Path(".newsrag")
    given = WeaviateStore(WeaviateSettings(collection="Given"), "Named")
    assert given.name == "Named" and given.local.paths.home == Path(".newsrag")


def test_the_preflight_names_the_roots_server(process_env: Path) -> None:
    assert store_url(WeaviateSettings(url="https://user:pw@weaviate.example:8443")) == "https://weaviate.example:8443"
    home = process_env / "root-home"
    store = WeaviateStore(Settings({"NEWSRAG_HOME": str(home)}))
    assert "not started" in store_url(store.settings, store.local)
    home.mkdir()
    (home / "weaviate.json").write_text('{"pid": 1, "host": "127.0.0.1", "http_port": 8111, "grpc_port": 50111, '
                                        '"data_dir": "d", "log_file": "l", "version": "v"}')
    assert store_url(store.settings, store.local) == "http://127.0.0.1:8111"


def test_a_dag_run_plans_its_batches_from_the_root(process_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = process_env / "sources.yaml"
    registry.write_text("sources:\n" + "".join(f"  - {{id: s{i}, type: feed, url: 'http://x/{i}'}}\n"
                                               for i in range(4)))
    monkeypatch.setenv("NEWSRAG_INGEST_SOURCES_FILE", str(process_env / "not-this.yaml"))
    root = Settings({"NEWSRAG_INGEST_SOURCES_FILE": str(registry), "NEWSRAG_INGEST_MAX_MAP_LENGTH": "2"})
    planned = plan_batches(None, None, settings=root)
    assert [[s["id"] for s in batch] for batch in planned] == [["s0", "s1"], ["s2", "s3"]]
    assert {s["_base_dir"] for batch in planned for s in batch} == {str(process_env)}
