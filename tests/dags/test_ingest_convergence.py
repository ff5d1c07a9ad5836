"""Nothing is left half-written: a news_ingest run that Weaviate drops in the middle of its writes
fails, and the next run (Weaviate back) converges to exactly the objects one clean run leaves.

dag.test() runs every task in this process (``run_task_in_process``), so the fault is injected by
patching the Weaviate client here: after a budget of objects has landed, the insert in flight lands
only its first objects and raises the client's connection error, and every later call is refused."""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dags.conftest import REPO, load_dag
from tests.ingest.feedgen import Item, item, paragraphs, rss

pytestmark = pytest.mark.integration

Row = tuple[str, str, str, int]  # (uuid, doc_id, content_hash, chunk_index)


class WeaviateGoesDown:
    """Weaviate accepts ``budget`` objects, then stops answering, in the middle of a batch: the
    client's insert lands its first objects and raises a connection error, and every later store
    call is refused."""

    def __init__(self, budget: int) -> None:
        self.budget, self.written, self.down = budget, 0, False

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import weaviate.exceptions as wex
        from weaviate.collections.data import _DataCollection

        from newsrag.core.errors import StoreUnavailable
        from newsrag.store.weaviate import WeaviateStore

        real_insert, real_call = _DataCollection.insert_many, WeaviateStore._call
        fault = self

        def insert_many(data: Any, objects: Sequence[Any]) -> Any:
            room = fault.budget - fault.written
            if room >= len(objects):
                fault.written += len(objects)
                return real_insert(data, objects)
            if room > 0:  # the part of the batch the server took before it went away
                real_insert(data, list(objects)[:room])
                fault.written += room
            fault.down = True
            raise wex.WeaviateConnectionError("Connection to Weaviate failed: connection refused")

        def call(store: WeaviateStore, fn: Any) -> Any:
            if fault.down:
                raise StoreUnavailable(f"Weaviate unavailable ({store.name}): connection refused")
            return real_call(store, fn)

        monkeypatch.setattr(_DataCollection, "insert_many", insert_many)
        monkeypatch.setattr(WeaviateStore, "_call", call)


def long_item(slug: str, seed: int) -> Item:
    return item(slug, seed).with_paras(paragraphs(seed, n=6, sentences=9))  # several chunks each


def feeds(version: int) -> dict[str, list[Item]]:
    """Two sources. Version 2 changes two articles, adds one and keeps the rest."""
    alpha = [long_item("harbor-budget", 11), long_item("river-transit", 12), long_item("school-storm", 13)]
    beta = [long_item("senate-vote", 21), long_item("market-bridge", 22)]
    if version == 2:
        alpha[1] = long_item("river-transit", 112)  # same link, new text: changed
        beta[0] = long_item("senate-vote", 121)
        beta.append(long_item("museum-farmer", 23))  # new
    return {"alpha": alpha, "beta": beta}


def serve(feed_server: Any, version: int) -> None:
    for sid, items in feeds(version).items():
        feed_server.routes[f"/{sid}.xml"] = (rss(feed_server.base, items), "application/rss+xml")


def rows(collection: str) -> list[Row]:
    from newsrag.core.settings import Settings
    from newsrag.store.weaviate import WeaviateStore

    with WeaviateStore(Settings(), collection=collection) as store:
        found = [(u, p["doc_id"], p["content_hash"], int(p["chunk_index"]))
                 for u, p in store.iter_properties(["doc_id", "content_hash", "chunk_index"])]
        assert store.count() == len(found)
    return sorted(found)


class Deployment:
    """One collection with its own NEWSRAG_HOME (ingest state, embedding cache), as a deployment has."""

    def __init__(self, tmp: Path, name: str, collection: str, registry: Path) -> None:
        self.collection, self.registry = collection, registry
        self.home = tmp / name
        self.home.mkdir()
        session_home = Path(os.environ["AIRFLOW_HOME"]).parent / "home"
        (self.home / "weaviate.json").write_text((session_home / "weaviate.json").read_text())

    def run(self, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, Any]]:
        for var, value in {"NEWSRAG_INGEST_SOURCES_FILE": str(self.registry), "WEAVIATE_COLLECTION": self.collection,
                           "NEWSRAG_FETCH_ALLOW_PRIVATE": "true", "NEWSRAG_HOME": str(self.home),
                           "NEWSRAG_INGEST_RETRIES": "0"}.items():
            monkeypatch.setenv(var, value)
        run = load_dag(REPO / "dags" / "news_ingest.py", "news_ingest").test()
        return str(run.state), summary(run)


def summary(run: Any) -> dict[str, Any]:
    """The summarize task's return value, or {} when it failed."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        value = session.scalars(select(XComModel.value).where(
            XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id, XComModel.task_id == "summarize",
            XComModel.key == "return_value")).first()
    value = json.loads(value) if isinstance(value, str) else value
    return value if isinstance(value, dict) else {}


def drop(*collections: str) -> None:
    from newsrag.core.settings import Settings
    from newsrag.store.weaviate import WeaviateStore

    for name in collections:
        with WeaviateStore(Settings(), collection=name) as store:
            if store.exists():
                store.drop()


def test_a_run_cut_short_by_weaviate_is_repaired_by_the_next_run(
        airflow_db: str, weaviate_server: Any, feed_server: Any, collection_name: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    registry = tmp_path / "sources.yaml"
    registry.write_text(yaml.safe_dump({"sources": [
        {"id": sid, "type": "feed", "url": feed_server.url(f"/{sid}.xml")} for sid in ("alpha", "beta")]}))
    reference = Deployment(tmp_path, "reference-home", f"{collection_name}Ref", registry)
    deployed = Deployment(tmp_path, "deployed-home", collection_name, registry)
    try:
        serve(feed_server, 2)
        state, clean = reference.run(monkeypatch)  # one clean run of the current content
        assert state == "success" and clean["sources_failed"] == 0, clean
        expected = rows(reference.collection)
        chunks_per_doc = Counter(doc for _, doc, _, _ in expected)
        assert len(chunks_per_doc) == 6 and min(chunks_per_doc.values()) >= 3, chunks_per_doc

        serve(feed_server, 1)
        state, first = deployed.run(monkeypatch)  # yesterday's content, stored cleanly
        assert state == "success" and first["new"] == 5, first
        before = rows(deployed.collection)

        serve(feed_server, 2)  # two articles changed, one added; Weaviate dies in the middle of writing them
        fault = WeaviateGoesDown(budget=2)  # inside the first article written (each has 3+ chunks)
        with monkeypatch.context() as patch:
            fault.install(patch)
            state, _ = deployed.run(monkeypatch)
        assert fault.down and state == "failed"  # every source failed: the run fails
        torn = rows(deployed.collection)
        assert torn != before and torn != expected  # half-written: some of the new chunks landed
        new_rows = set(torn) - set(before)
        assert new_rows and set(expected) - set(torn)

        state, repair = deployed.run(monkeypatch)  # Weaviate is back
        assert state == "success" and repair["sources_failed"] == 0, repair
        assert rows(deployed.collection) == expected  # the same ids, docs, hashes and chunks; nothing stale

        state, again = deployed.run(monkeypatch)  # and it stays there
        assert state == "success" and again["chunks_written"] == again["chunks_deleted"] == 0, again
        assert rows(deployed.collection) == expected
    finally:
        drop(reference.collection, deployed.collection)


def test_a_version_with_a_refused_chunk_keeps_no_marker(store: Any) -> None:
    """At the store: the first chunk, which marks a version as stored, is held back when another
    chunk of its version is refused, so doc_versions does not see the torn version."""
    from newsrag.core.errors import BatchWriteError
    from newsrag.core.records import ChunkRecord, StoredObject

    store.ensure_collection(["v"])

    def chunk(doc: str, index: int, **bad: Any) -> StoredObject:
        record = ChunkRecord(doc_id=doc, content_hash="h1", chunk_index=index, text=f"{doc} part {index}")
        # model_copy does not validate: a wrongly typed field reaches the store, which refuses it
        return StoredObject(str(uuid.uuid5(uuid.NAMESPACE_URL, f"{doc}:{index}")), record.model_copy(update=bad),
                            [0.1 * (index + 1), 0.2, 0.3])

    torn = [chunk("torn", 0), chunk("torn", 1), chunk("torn", 2, token_count="many")]
    whole = [chunk("whole", 0), chunk("whole", 1)]
    with pytest.raises(BatchWriteError) as info:
        store.upsert(torn + whole, "v")
    assert set(info.value.failures) == {torn[2].uuid, torn[0].uuid}
    assert info.value.failures[torn[0].uuid].startswith("held back: another chunk of this version failed")
    assert store.doc_versions(["torn", "whole"]) == {"whole": {"h1"}}
    assert store.count() == 3  # torn chunk 1 and both of whole's: the next run rewrites torn (same ids)
