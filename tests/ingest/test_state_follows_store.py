"""#21 items 1-3: ingestion state is a cache of the store, never the truth about it.

A deployment's later life, against the real Weaviate: the collection dropped behind the pipeline's
back, a source's objects deleted, a backfill window over articles a normal run has seen, a new
source id on a file another source has read. After each, the store holds what one clean run leaves,
and an unchanged re-run still costs nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from newsrag.core.settings import IngestSettings, Settings
from newsrag.ingest.context import IngestContext
from newsrag.ingest.fetch import FetchSettings
from newsrag.ingest.models import IngestReport
from newsrag.ingest.pipeline import run_batch, run_source
from newsrag.ingest.registry import load_registry, parse_source
from newsrag.ingest.verify import repair_sources, verify_sources
from newsrag.store.weaviate import WeaviateStore
from tests.ingest.feedgen import paragraphs

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
OFFLINE = REPO / "examples" / "sources.offline.yaml"
Row = tuple[str, str, str, int, tuple[str, ...]]  # (uuid, doc_id, content_hash, chunk_index, also_sources)


def rows(store: WeaviateStore) -> list[Row]:
    found = [(u, p["doc_id"], p["content_hash"], int(p["chunk_index"]), tuple(sorted(p.get("also_sources") or [])))
             for u, p in store.iter_properties(["doc_id", "content_hash", "chunk_index", "also_sources"])]
    assert store.count() == len(found)
    return sorted(found)


class Deployment:
    """Runs against one collection with one home (state file and embedding cache), a new context
    per run, as separate `newsrag ingest` or DAG runs have."""

    def __init__(self, store: WeaviateStore, embedder: Any, home: Path, base_dir: Path) -> None:
        self.store, self.embedder, self.home, self.base_dir = store, embedder, home, base_dir

    def context(self) -> IngestContext:
        return IngestContext(IngestSettings(), store=self.store, embedder=self.embedder, home=self.home,
                             base_dir=self.base_dir, fetch_settings=FetchSettings(allow_private=True, retries=0))

    def run(self, specs: list[Any], **kw: Any) -> dict[str, IngestReport]:
        with self.context() as ctx:
            return {s.id: run_source(s, ctx, **kw) for s in specs}


@pytest.fixture
def offline(store: WeaviateStore, embedder: Any, tmp_path: Path) -> Iterator[tuple[Deployment, list[Any]]]:
    registry = load_registry(OFFLINE)
    yield Deployment(store, embedder, tmp_path / "home", Path(registry.base_dir)), registry.enabled()


def total(reports: dict[str, IngestReport], field: str) -> int:
    return sum(int(getattr(r, field)) for r in reports.values())


def test_a_dropped_collection_is_restored_exactly_and_an_unchanged_rerun_costs_nothing(
        offline: tuple[Deployment, list[Any]], store: WeaviateStore) -> None:
    deployment, specs = offline
    first = deployment.run(specs)
    assert {r.status for r in first.values()} == {"ok"}
    clean = rows(store)
    generation = store.generation()
    assert generation is not None and len(clean) == total(first, "chunks_written") > 0

    store.drop()  # what `curl -X DELETE .../v1/schema/NewsChunk` does
    restored = deployment.run(specs)
    assert {r.status for r in restored.values()} == {"ok"}, {k: r.status for k, r in restored.items()}
    assert rows(store) == clean  # the same ids, documents, versions and also_sources as one clean run
    assert store.generation() not in (None, generation)
    assert total(restored, "chunks_embedded") == 0  # the embedding cache is a pure cache: it stays

    again = deployment.run(specs)  # the generation matches: validators and marks are trusted again
    assert {r.status for r in again.values()} == {"not_modified"}
    assert (total(again, "chunks_embedded"), total(again, "chunks_written"), total(again, "items_seen")) == (0, 0, 0)
    assert rows(store) == clean


def test_a_dropped_collection_is_restored_within_one_long_lived_context(
        offline: tuple[Deployment, list[Any]], store: WeaviateStore) -> None:
    """The check runs before each source, not once per context: a batch or a test sharing one
    context sees the collection go."""
    deployment, specs = offline
    with deployment.context() as ctx:
        first = [run_source(s, ctx) for s in specs]
        clean = rows(store)
        store.drop()
        second = [run_source(s, ctx) for s in specs]
    assert {r.status for r in first + second} == {"ok"}
    assert sum(r.duplicates for r in second) == 1  # near-duplicate signatures followed the collection
    assert rows(store) == clean


def test_a_source_whose_objects_were_deleted_is_read_again(offline: tuple[Deployment, list[Any]],
                                                           store: WeaviateStore) -> None:
    deployment, specs = offline
    deployment.run(specs)
    clean = rows(store)
    store.delete_docs(sorted(store.source_doc_ids("archive")))  # behind the pipeline's back
    assert store.source_doc_ids("archive") == set()

    second = deployment.run(specs)
    assert second["archive"].status == "ok" and second["archive"].new == 5  # had chunks, has none: read in full
    assert {r.status for k, r in second.items() if k != "archive"} == {"not_modified"}
    assert rows(store) == clean


def test_full_reads_every_source_and_writes_nothing_unchanged(offline: tuple[Deployment, list[Any]],
                                                              store: WeaviateStore) -> None:
    deployment, specs = offline
    first = deployment.run(specs)
    full = deployment.run(specs, full=True)
    assert {r.status for r in full.values()} == {"ok"}
    assert total(full, "items_seen") == total(first, "items_seen")
    assert total(full, "unchanged") == total(first, "new")
    assert (total(full, "chunks_embedded"), total(full, "chunks_written"), total(full, "chunks_deleted")) == (0, 0, 0)
    assert {r.status for r in deployment.run(specs).values()} == {"not_modified"}


# -- windows and new sources over JSONL files ------------------------------------------------------


def write_archive(path: Path, days: list[int], text_seed: int = 300) -> None:
    path.write_text("\n".join(json.dumps({
        "url": f"https://archive.example/{day}", "title": f"Story of October {day}",
        "text": "\n\n".join(paragraphs(text_seed + day, 2)), "published": f"2026-10-{day:02d}T09:00:00Z"})
        for day in days) + "\n")


def archive_spec(source_id: str = "archive", **kw: Any) -> Any:
    return parse_source({"id": source_id, "type": "jsonl", "path": "archive.jsonl", **kw})


@pytest.fixture
def files(store: WeaviateStore, embedder: Any, tmp_path: Path, session_tmp: Path) -> Deployment:
    return Deployment(store, embedder, home_of_its_own(tmp_path / "home", session_tmp), tmp_path)


def home_of_its_own(home: Path, session_tmp: Path) -> Path:
    """A NEWSRAG_HOME for code that opens its own context, sharing the session's Weaviate."""
    home.mkdir()
    (home / "weaviate.json").write_text((session_tmp / "home" / "weaviate.json").read_text())
    return home


def urls(store: WeaviateStore) -> set[str]:
    return {p["url"] for _, p in store.iter_properties(["url"])}


WINDOW = ("2026-10-05T00:00:00+00:00", "2026-10-20T00:00:00+00:00")
IN_WINDOW = {"https://archive.example/5", "https://archive.example/9", "https://archive.example/12"}


def windowed(deployment: Deployment, specs: list[Any], window: tuple[str, str] | None = WINDOW) -> dict[str, Any]:
    """run_batch as the DAG's ingest_batch calls it (with the registry folder of plan_batches, and
    the root settings of the environment the test set up, as a task's ``task_settings()``)."""
    dumped = [{**s.model_dump(mode="json"), "_base_dir": str(deployment.base_dir)} for s in specs]
    reports = run_batch(dumped, window=window, settings=Settings())
    return reports[0]


def test_a_window_run_after_a_normal_run_writes_exactly_the_window(
        files: Deployment, store: WeaviateStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEAVIATE_COLLECTION", store.name)
    monkeypatch.setenv("NEWSRAG_HOME", str(files.home))  # run_batch's own context: the same state file
    write_archive(tmp_path / "archive.jsonl", [2, 5, 9, 12, 20, 27])
    spec = archive_spec()
    assert files.run([spec])["archive"].new == 6
    clean = rows(store)
    store.delete_docs(sorted(_doc_ids(store, IN_WINDOW)))  # the window's articles are gone; the source still has others
    assert files.run([spec])["archive"].status == "not_modified"  # a normal run trusts its marks

    backfill = windowed(files, [spec])
    assert (backfill["status"], backfill["new"], backfill["skipped"]) == ("ok", 3, 3)
    assert rows(store) == clean  # exactly the window's articles came back, with their ids
    again = windowed(files, [spec])  # idempotent: read again, compared with the store, nothing written
    assert (again["status"], again["unchanged"], again["chunks_written"]) == ("ok", 3, 0)
    assert files.run([spec])["archive"].status == "not_modified"  # the normal run's validators are intact


def _doc_ids(store: WeaviateStore, wanted: set[str]) -> set[str]:
    return {p["doc_id"] for _, p in store.iter_properties(["doc_id", "url"]) if p["url"] in wanted}


def test_a_window_run_never_saves_validators_for_a_changed_file(
        files: Deployment, store: WeaviateStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEAVIATE_COLLECTION", store.name)
    monkeypatch.setenv("NEWSRAG_HOME", str(files.home))
    write_archive(tmp_path / "archive.jsonl", [2, 9])
    spec = archive_spec()
    files.run([spec])
    write_archive(tmp_path / "archive.jsonl", [2, 9, 12, 27])  # one new article inside the window, one after
    assert windowed(files, [spec])["new"] == 1
    assert urls(store) == {f"https://archive.example/{d}" for d in (2, 9, 12)}
    normal = files.run([spec])["archive"]  # the window saw part of the file: the normal run reads it all
    assert (normal.status, normal.new, normal.unchanged) == ("ok", 1, 3)
    assert urls(store) == {f"https://archive.example/{d}" for d in (2, 9, 12, 27)}


def test_a_new_source_on_an_already_read_file_reads_and_writes_its_items(files: Deployment, store: WeaviateStore,
                                                                         tmp_path: Path) -> None:
    write_archive(tmp_path / "archive.jsonl", [2, 5, 9, 12])
    first = files.run([archive_spec(max_items=2)])["archive"]  # the first two lines only
    assert first.new == 2 and len(urls(store)) == 2
    backfill = files.run([archive_spec("archive-bf")])["archive-bf"]  # same file, a new source id
    assert (backfill.status, backfill.items_seen, backfill.new, backfill.unchanged) == ("ok", 4, 2, 2)
    assert urls(store) == {f"https://archive.example/{d}" for d in (2, 5, 9, 12)}
    assert files.run([archive_spec("archive-bf")])["archive-bf"].status == "not_modified"  # its own mark now


# -- verify and repair -----------------------------------------------------------------------------


def test_verify_forgets_what_a_repair_cannot_bring_back(files: Deployment, store: WeaviateStore,
                                                        tmp_path: Path) -> None:
    """A document the source no longer has cannot be restored: after a clean full read the state
    forgets it (the store is the truth), and the next verification is clean."""
    write_archive(tmp_path / "archive.jsonl", [2, 5, 9])
    spec = archive_spec()
    files.run([spec])
    write_archive(tmp_path / "archive.jsonl", [2, 5])  # day 9 is gone from the source...
    gone = _doc_ids(store, {"https://archive.example/5", "https://archive.example/9"})
    store.delete_docs(sorted(gone))  # ...and day 5 and day 9 from the store
    with files.context() as ctx:
        before = verify_sources([spec], ctx)
        assert set(before.sources[0].missing) == gone and before.missing == 2
        after = repair_sources([spec], ctx, before)
        check = after.sources[0]
        assert (check.repair.status, check.restored, list(check.lost.values()), after.missing) == (
            "ok", 1, ["https://archive.example/9"], 0)
        assert verify_sources([spec], ctx).sources[0].remembered == 2
    assert urls(store) == {"https://archive.example/2", "https://archive.example/5"}


def test_ingest_verify_finds_a_deleted_sources_articles_and_repair_restores_them(
        store: WeaviateStore, tmp_path: Path, session_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from newsrag.cli.main import app

    monkeypatch.setenv("WEAVIATE_COLLECTION", store.name)
    monkeypatch.setenv("NEWSRAG_HOME", str(home_of_its_own(tmp_path / "home", session_tmp)))
    cli = CliRunner()

    def verify(*args: str) -> tuple[int, dict[str, Any]]:
        result = cli.invoke(app, ["ingest", "verify", "--sources", str(OFFLINE), "--json", *args])
        return result.exit_code, json.loads(result.stdout)

    assert cli.invoke(app, ["ingest", "--sources", str(OFFLINE)]).exit_code == 0
    clean = rows(store)
    code, report = verify()
    assert code == 0 and report["missing"] == 0 and {s["read"] for s in report["sources"]} == {True}

    archive = store.source_doc_ids("archive")
    metro_one = min(store.source_doc_ids("metro-daily"))
    store.delete_docs(sorted(archive | {metro_one}))  # one source's articles, and one of another's
    code, report = verify()
    by_source = {s["source_id"]: s for s in report["sources"]}
    assert code == 1 and report["missing"] == 6
    assert set(by_source["archive"]["missing_docs"]) == archive and by_source["archive"]["stored"] == 0
    assert list(by_source["metro-daily"]["missing_docs"]) == [metro_one]
    assert {k for k, s in by_source.items() if s["missing"]} == {"archive", "metro-daily"}

    code, report = verify("--repair")
    by_source = {s["source_id"]: s for s in report["sources"]}
    assert code == 0 and report["missing"] == 0
    assert (by_source["archive"]["restored"], by_source["metro-daily"]["restored"]) == (5, 1)
    assert "repair_status" not in by_source["tech-wire"]  # only sources with missing articles are read
    assert rows(store) == clean
    assert verify()[0] == 0
    full = cli.invoke(app, ["ingest", "--sources", str(OFFLINE), "--full", "--json"])
    reports = json.loads(full.stdout)
    assert full.exit_code == 0 and {r["status"] for r in reports} == {"ok"}
    assert sum(r["chunks_written"] for r in reports) == 0 and rows(store) == clean


def test_a_collection_without_a_generation_gets_one_and_a_new_collection_another(store: WeaviateStore) -> None:
    store.client.collections.create(store.name)  # made before generations, or by another tool
    assert store.generation() is None
    first = store.ensure_generation()
    assert store.generation() == first == store.ensure_generation()
    store.drop()
    store.ensure_collection(["v"])
    assert store.generation() not in (None, first)
