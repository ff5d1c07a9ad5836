"""JSONL dumps and folders (snapshot semantics), the offline example registry, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from newsrag.core.settings import IngestSettings, Settings
from newsrag.ingest.context import IngestContext
from newsrag.ingest.fetch import FetchSettings
from newsrag.ingest.pipeline import run_registry, run_source
from newsrag.ingest.registry import parse_source
from newsrag.store.weaviate import WeaviateStore
from tests.ingest.feedgen import paragraphs

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def ctx(store: WeaviateStore, embedder: Any, tmp_path: Path) -> Any:
    c = IngestContext(IngestSettings(), store=store, embedder=embedder, home=tmp_path / "home", base_dir=tmp_path,
                      fetch_settings=FetchSettings(allow_private=True, retries=0))
    yield c
    c.close()


def record(n: int, **kw: Any) -> dict[str, Any]:
    return {"link": f"https://dump.example/{n}", "headline": f"Story {n}", "body": "\n\n".join(paragraphs(100 + n, 2)),
            "date": "2026-10-0%dT08:00:00Z" % (n % 9 + 1), "by": ["A. Writer"], **kw}


FIELDS = {"url": "link", "title": "headline", "text": "body", "published": "date", "author": "by"}


def urls(store: WeaviateStore, source: str) -> set[str]:
    return {p["url"] for _, p in store.iter_properties(["url", "source_id"]) if p["source_id"] == source}


def test_jsonl_field_mapping_bad_lines_and_snapshot_deletes(ctx: IngestContext, store: WeaviateStore,
                                                            tmp_path: Path) -> None:
    dump = tmp_path / "dump.jsonl"
    lines = [json.dumps(record(i)) for i in range(1, 5)]
    dump.write_text("\n".join([*lines, "{not json", json.dumps({"link": "https://dump.example/x"}), "[1, 2]"]) + "\n")
    spec = parse_source({"id": "dump", "type": "jsonl", "path": "dump.jsonl", "fields": FIELDS, "snapshot": True})
    first = run_source(spec, ctx)
    assert first.new == 4 and first.status == "partial"
    assert sorted(f.item for f in first.failed) == ["dump.jsonl:5", "dump.jsonl:6", "dump.jsonl:7"]
    assert any("invalid JSON" in f.reason for f in first.failed)
    assert any("missing or empty text field 'body'" in f.reason for f in first.failed)
    props = next(p for _, p in store.iter_properties(["author", "published_at", "url"]) if p["url"].endswith("/1"))
    assert props["author"] == "A. Writer" and props["published_at"].isoformat().startswith("2026-10-02")

    dump.write_text("\n".join(lines[:3]) + "\n{broken\n")  # story 4 gone, but the read was partial
    partial = run_source(spec, ctx)
    assert partial.chunks_deleted == 0 and "https://dump.example/4" in urls(store, "dump")

    dump.write_text("\n".join(lines[:3]) + "\n")  # a clean snapshot without story 4
    clean = run_source(spec, ctx)
    assert clean.status == "ok" and clean.unchanged == 3 and clean.chunks_deleted > 0
    assert urls(store, "dump") == {f"https://dump.example/{i}" for i in (1, 2, 3)}


def test_folder_snapshot_tracks_added_changed_and_removed_files(ctx: IngestContext, store: WeaviateStore,
                                                                tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# Alpha note\n\n" + "\n\n".join(paragraphs(201, 2)))
    (notes / "b.txt").write_text("Beta note\n" + "\n\n".join(paragraphs(202, 2)))
    (notes / "empty.md").write_text("")
    spec = parse_source({"id": "notes", "type": "folder", "path": "notes"})
    first = run_source(spec, ctx)
    assert first.new == 2 and [f.item for f in first.failed] == ["empty.md"]
    titles = {p["title"] for _, p in store.iter_properties(["title"])}
    assert titles == {"Alpha note", "Beta note"}
    again = run_source(spec, ctx)  # a partial read is not remembered: the folder is read again, cheaply
    assert (again.status, again.unchanged, again.chunks_embedded) == ("partial", 2, 0)

    (notes / "empty.md").unlink()
    (notes / "b.txt").unlink()
    (notes / "a.md").write_text("# Alpha note\n\n" + "\n\n".join(paragraphs(203, 2)))
    second = run_source(spec, ctx)
    assert (second.changed, second.status) == (1, "ok")
    assert {p["title"] for _, p in store.iter_properties(["title"])} == {"Alpha note"}
    assert len({p["content_hash"] for _, p in store.iter_properties(["content_hash"])}) == 1


def test_offline_example_registry_one_failing_source_never_fails_the_others(
        weaviate_server: Any, collection_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = tmp_path / "sources.yaml"
    examples = REPO / "examples"
    registry.write_text((examples / "sources.offline.yaml").read_text().replace("path: news/", f"path: {examples}/news/")
                        .replace("url: news/", f"url: {examples}/news/")
                        + "  - {id: missing, type: feed, url: /nonexistent/feed.xml}\n")
    monkeypatch.setenv("WEAVIATE_COLLECTION", collection_name)
    monkeypatch.setenv("NEWSRAG_INGEST_STATE_FILE", str(tmp_path / "state.sqlite"))
    monkeypatch.setenv("NEWSRAG_INGEST_EMBEDDING_CACHE", str(tmp_path / "cache.sqlite"))
    try:
        reports = {r.source_id: r for r in run_registry(str(registry), settings=Settings())}  # as `newsrag ingest`
        assert reports["missing"].status == "failed" and "/nonexistent/feed.xml" in reports["missing"].error
        assert all(r.status == "ok" for k, r in reports.items() if k != "missing")
        assert reports["world-brief"].duplicates == 1  # the syndicated port-strike story
        assert sum(r.new for r in reports.values()) == 21
        with WeaviateStore(Settings(), collection=collection_name) as store:
            assert store.count() == sum(r.chunks_written for r in reports.values())
            also = {p["url"]: p["also_sources"] for _, p in store.iter_properties(["url", "also_sources"])
                    if p.get("also_sources")}
            assert set(also) == {"https://metro-daily.example/2026/10/27/dockworkers-strike-port-calder.html"}

            env = {**os.environ, "WEAVIATE_COLLECTION": collection_name}
            cli = subprocess.run([sys.executable, "-m", "newsrag", "ingest", "--sources", str(registry)],
                                 capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
            assert cli.returncode == 1, cli.stderr  # a source failed
            assert "missing" in cli.stdout and "not_modified" in cli.stdout and "Traceback" not in cli.stderr
            only = subprocess.run([sys.executable, "-m", "newsrag", "ingest", "--sources", str(registry),
                                   "--source", "tech-wire", "--json"], capture_output=True, text=True, env=env,
                                  timeout=300, cwd=REPO)
            assert only.returncode == 0 and [r["source_id"] for r in json.loads(only.stdout)] == ["tech-wire"]
            assert store.count() == sum(r.chunks_written for r in reports.values())
    finally:
        with WeaviateStore(Settings(), collection=collection_name) as store:
            store.drop()
