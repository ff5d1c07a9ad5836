"""Moving a home's five SQLite stores into one database (``newsrag state migrate``, the library's
newsrag.infra.migrate): an exact copy of every table, a second run that changes nothing, and a
target holding other rows under the home's keys refused with nothing written. The library runs on
both targets (SQLite: unit; the private PostgreSQL: integration); the command targets PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from newsrag.cli.main import app
from newsrag.cli.state import home_stores
from newsrag.core.settings import Settings
from newsrag.embeddings.cache import EmbeddingCache, text_key
from newsrag.evaluation.feedback import FeedbackStore, feedback_location
from newsrag.evaluation.history import HistoryStore, history_location
from newsrag.infra.migrate import MigrationConflict, copy_store, migrate_stores
from newsrag.infra.sqldb import SqlDb
from newsrag.ingest.context import embedding_cache_location, state_location
from newsrag.ingest.state import IngestState, StoredDoc
from newsrag.prompts.release import open_registry
from tests.evaluation.factories import T0, make_run, question
from tests.infra.test_stores import answer

BACKENDS = [pytest.param("sqlite", marks=pytest.mark.unit), pytest.param("postgres", marks=pytest.mark.integration)]
TABLES = {  # every table of every store, as the stores create them today
    "ingest-state.sqlite": {"source_validators", "source_reads", "source_docs", "doc_signatures"},
    "embedding-cache.sqlite": {"vectors"},
    "feedback.sqlite": {"answers", "feedback"},
    "eval-history.sqlite": {"eval_runs", "eval_results"},
    "prompt-registry.sqlite": {"prompt_versions", "prompt_events", "prompt_state"},
}


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "target" / "all.sqlite")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home whose five stores all hold rows, written through the stores themselves."""
    home = tmp_path / "home"
    root = Settings({"NEWSRAG_HOME": str(home)})
    state = IngestState(state_location(root), scope="NewsChunk/v", generation="g1")
    state.save_validators("metro", "http://metro.test/feed", '"e1"', "Mon, 01 Jan 2026 00:00:00 GMT")
    state.record_read("metro", 12)
    state.remember_docs("metro", [StoredDoc("d1", "https://x/1", T0), StoredDoc("d2", "https://x/2")])
    state.save_signature("d1", "metro", "https://x/1", np.arange(128, dtype=np.uint64) * np.uint64(2**61))
    state.close()
    cache = EmbeddingCache(embedding_cache_location(root))
    cache.put_many("m/1", {text_key(f"t{i}"): np.full(4, i, dtype=np.float32) for i in range(3)})
    cache.close()
    feedback = FeedbackStore(feedback_location(root))
    for trace in ("t1", "t2"):
        feedback.record_answer(answer(trace), f"question {trace}?")
    feedback.add_feedback("t1", 1, "good")
    feedback.add_feedback("t2", -1, "wrong date")
    feedback.close()
    with HistoryStore(history_location(root)) as history:
        history.save(make_run("run-1", T0, {"hit@k": 0.5}, results=[question("q1"), question("q2")]))
    registry = open_registry(root)
    registry.deploy(author="test")
    registry.close()
    assert sorted(p.name for p in home.glob("*.sqlite")) == sorted(TABLES)
    return home


def stores_of(home: Path) -> list[Any]:
    return home_stores(Settings({"NEWSRAG_HOME": str(home)}))


def rows(location: str, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    """Every row of ``table`` (those ``columns``, the home's), sorted."""
    db = SqlDb(location)
    try:
        found = db.execute(f"SELECT {', '.join(columns)} FROM {table}")
    finally:
        db.close()
    return sorted((tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in found), key=repr)


def home_tables(home: Path) -> list[tuple[str, list[str], list[tuple[Any, ...]]]]:
    """(table, columns, rows) of every table of every store of the home (at least those of TABLES:
    a table a store gains later is copied too)."""
    found = []
    for name, tables in TABLES.items():
        db = SqlDb(str(home / name))
        present = {t for t in db.tables() if not t.startswith("sqlite_")}
        assert tables <= present
        for table in sorted(present):
            columns = [r[1] for r in db.execute(f'PRAGMA table_info("{table}")')]
            found.append((table, columns, rows(str(home / name), table, columns)))
        db.close()
    return found


def held(location: str) -> dict[str, int]:
    """Rows per table of every store at ``location``."""
    db = SqlDb(location)
    try:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}")[0][0] for tables in TABLES.values() for t in tables
                if t in db.tables()}
    finally:
        db.close()


def test_every_table_of_every_store_is_copied_exactly_and_again_changes_nothing(home: Path, target: str) -> None:
    before = home_tables(home)
    assert all(found for table, _, found in before if any(table in t for t in TABLES.values()))  # rows everywhere
    reports = migrate_stores(stores_of(home), target)
    counts = {t.table: (t.rows, t.copied, t.present) for r in reports for t in r.tables}
    assert counts == {table: (len(found), len(found), 0) for table, _, found in before}
    for table, columns, found in before:
        assert rows(target, table, columns) == found, table
    again = migrate_stores(stores_of(home), target)
    assert {t.table: (t.rows, t.copied, t.present) for r in again for t in r.tables} == \
        {table: (len(found), 0, len(found)) for table, _, found in before}
    assert sum(r.copied for r in again) == 0
    for table, columns, found in before:
        assert rows(target, table, columns) == found, table
    assert home_tables(home) == before  # the home is read, not changed


def test_the_migrated_stores_go_on_where_the_home_left_off(home: Path, target: str) -> None:
    """Copied ids are given explicitly: the target's next feedback and event get the next ids."""
    migrate_stores(stores_of(home), target)
    feedback = FeedbackStore(target)
    assert feedback.add_feedback("t1", 1) == 3
    assert [f.comment for f in feedback.feedback()] == ["good", "wrong date", None]
    feedback.close()
    registry = open_registry(Settings({"NEWSRAG_RELEASE_REGISTRY": target}))
    last = max(e.id for e in registry.events())
    assert registry.record("news-answer", "note", None, who="test") == last + 1
    registry.close()


def test_a_target_holding_other_rows_under_the_homes_keys_is_refused_with_nothing_written(
        home: Path, target: str) -> None:
    other = FeedbackStore(target)  # the third store: the two before it must not be copied either
    other.record_answer(answer("t2", "Another answer. [1]"), "question t2?")
    other.close()
    with pytest.raises(MigrationConflict) as refused:
        migrate_stores(stores_of(home), target)
    assert refused.value.table == "answers" and refused.value.key == {"trace_id": "t2"}
    assert "table answers (feedback store)" in str(refused.value)
    assert held(target) == {t: 1 if t == "answers" else 0 for tables in TABLES.values() for t in tables}


def test_a_conflict_found_while_writing_rolls_the_whole_store_back(home: Path, target: str) -> None:
    """The store's tables are written in one transaction: a conflict in its last table (a writer
    that raced the check) leaves the tables copied before it empty."""
    [spec] = [s for s in stores_of(home) if s.what == "ingestion state"]
    spec.prepare(target)
    db = SqlDb(target)
    db.execute("INSERT INTO source_validators VALUES ('NewsChunk/v', 'g1', 'metro', 'http://metro.test/feed', "
               "'\"other\"', NULL)")
    with pytest.raises(MigrationConflict, match="source_validators"):
        copy_store(spec, db, write=True)  # doc_signatures, source_docs, source_reads come first
    assert [db.execute(f"SELECT COUNT(*) FROM {t}")[0][0] for t in
            ("doc_signatures", "source_docs", "source_reads", "source_validators")] == [0, 0, 0, 1]
    db.close()


@pytest.mark.unit
def test_missing_stores_are_reported_and_nothing_is_created_in_the_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    reports = migrate_stores(stores_of(home), str(tmp_path / "target.sqlite"))
    assert [(r.what, r.found, r.tables) for r in reports] == [
        ("ingestion state", False, []), ("embedding cache", False, []), ("feedback store", False, []),
        ("evaluation history", False, []), ("prompt registry", False, [])]
    assert list(home.iterdir()) == []


# -- the command ------------------------------------------------------------------------------------


def run(*args: str, home: Path, **env: str) -> Any:
    return CliRunner().invoke(app, ["state", "migrate", *args],
                              env={"NEWSRAG_HOME": str(home), "NEWSRAG_DATABASE_URL": "", **env})


@pytest.mark.integration
def test_the_command_copies_a_home_into_postgresql_once(home: Path, postgres_url: str) -> None:
    before = home_tables(home)
    first = run("--to", postgres_url, home=home)
    assert first.exit_code == 0, first.output
    total = sum(len(found) for _, _, found in before)
    assert f"copied {total} row(s) into postgresql://postgres:***@" in first.output
    for table, columns, found in before:
        assert rows(postgres_url, table, columns) == found, table
        assert table in first.output
    password = postgres_url.split(":")[2].split("@")[0]
    assert password not in first.output
    second = run(home=home, NEWSRAG_DATABASE_URL=postgres_url)  # --to defaults to NEWSRAG_DATABASE_URL
    assert second.exit_code == 0, second.output
    assert "nothing to copy" in second.output and "nothing changed" in second.output
    for table, columns, found in before:
        assert rows(postgres_url, table, columns) == found, table


@pytest.mark.integration
def test_the_command_refuses_a_conflicting_target_with_exit_2_naming_the_table(
        home: Path, postgres_url: str) -> None:
    with HistoryStore(postgres_url) as history:  # the same run id, other results
        history.save(make_run("run-1", T0, {"hit@k": 0.9}, results=[question("q1")]))
    refused = run("--to", postgres_url, home=home)
    assert refused.exit_code == 2
    assert "table eval_runs (evaluation history)" in refused.output and "nothing was written" in refused.output
    assert held(postgres_url) == {t: {"eval_runs": 1, "eval_results": 1}.get(t, 0)
                                  for tables in TABLES.values() for t in tables}


@pytest.mark.unit
@pytest.mark.parametrize("given", [[], ["--to", "/tmp/elsewhere.sqlite"]])
def test_the_command_needs_a_postgresql_target(tmp_path: Path, given: list[str]) -> None:
    result = run(*given, home=tmp_path / "home")
    assert result.exit_code == 2
    assert "must be a postgresql:// URL" in result.output
    assert not (tmp_path / "home").exists()
