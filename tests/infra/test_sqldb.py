"""The one SQL layer (newsrag.infra.sqldb) on both databases: SQLite (unit) and a live private
PostgreSQL (integration): the same SQL, with ``?`` placeholders, gives the same answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from newsrag.infra.sqldb import SqlDb

BACKENDS = [pytest.param("sqlite", marks=pytest.mark.unit), pytest.param("postgres", marks=pytest.mark.integration)]


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlDb]:
    location = str(request.getfixturevalue("postgres_url")) if request.param == "postgres" else \
        str(tmp_path / "nested" / "db.sqlite")
    opened = SqlDb(location, what="test store")
    yield opened
    opened.close()


def test_many_rows_in_one_transaction_and_the_count_of_rows_changed(db: SqlDb) -> None:
    db.execute(f"CREATE TABLE items (k TEXT PRIMARY KEY, v {db.blob} NOT NULL)")
    with db.transaction():
        db.executemany("INSERT INTO items VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v=excluded.v",
                       [("a", b"\x00\x01"), ("b", b"\xff"), ("a", b"\x02")])
    assert db.execute("SELECT k, v FROM items ORDER BY k") == [("a", b"\x02"), ("b", b"\xff")]
    assert db.rows_changed("DELETE FROM items WHERE k <> ?", ("zzz",)) == 2
    assert db.rows_changed("DELETE FROM items") == 0


def test_a_failed_transaction_leaves_nothing(db: SqlDb) -> None:
    db.execute("CREATE TABLE items (k TEXT PRIMARY KEY)")
    with pytest.raises(db.errors), db.transaction():
        db.executemany("INSERT INTO items VALUES (?)", [("a",), ("a",)])
    assert db.execute("SELECT k FROM items") == []


def test_foreign_keys_are_enforced_on_both_databases(db: SqlDb) -> None:
    """SQLite checks them only when asked (per connection); PostgreSQL always does."""
    db.execute("CREATE TABLE parents (id TEXT PRIMARY KEY)")
    db.execute("CREATE TABLE children (parent TEXT NOT NULL REFERENCES parents (id))")
    with pytest.raises(db.errors):
        db.execute("INSERT INTO children VALUES (?)", ("nobody",))
    db.execute("INSERT INTO parents VALUES (?)", ("p",))
    db.execute("INSERT INTO children VALUES (?)", ("p",))
    assert db.execute("SELECT parent FROM children") == [("p",)]


def test_ordered_text_sorts_byte_by_byte(db: SqlDb) -> None:
    db.execute(f"CREATE TABLE times (t {db.ordered_text})")
    db.executemany("INSERT INTO times VALUES (?)", [("2026-03-01T12:00:00.5+00:00",), ("2026-03-01T12:00:00+00:00",)])
    assert [r[0] for r in db.execute("SELECT t FROM times ORDER BY t")] == \
        ["2026-03-01T12:00:00+00:00", "2026-03-01T12:00:00.5+00:00"]


@pytest.mark.unit
def test_a_sqlite_location_may_carry_the_sqlite_prefix_and_a_busy_timeout(tmp_path: Path) -> None:
    db = SqlDb(f"sqlite:///{tmp_path / 'x.sqlite'}", timeout=5)
    db.execute("CREATE TABLE t (a INTEGER)")
    assert (tmp_path / "x.sqlite").exists() and db.tables() == {"t"}
    assert db.execute("PRAGMA busy_timeout") == [(5000,)] and db.execute("PRAGMA foreign_keys") == [(1,)]
    db.close()
