"""Copy the SQLite stores of a home into one database (PostgreSQL: ``newsrag state migrate``).

Every table of every store is copied row by row through :mod:`newsrag.infra.sqldb`, keyed by its
primary key, so the copy is idempotent: a row the target already holds, equal in every column, is
left alone, and a second run copies nothing. A row the target holds under the same key with other
values is a conflict: the whole migration is refused (:class:`MigrationConflict`, naming the store,
the table and the key) before anything is written, because the target then holds data of its own
that a copy would silently mix with the home's.

This module knows no store: each comes in as a :class:`StoreSpec` whose ``prepare`` is the store's
own constructor, which creates its tables in that database's dialect (PostgreSQL's identity columns,
``BYTEA``, byte-wise collation) and brings an older SQLite file to the current layout. The tables to
copy are then read from the SQLite file itself, so a table a store gains later is copied too.

Each store is written in one transaction (holding :data:`MIGRATE_LOCK`), so a failure leaves that
store's tables as they were; the conflict check over all stores runs first, so a refused migration
writes nothing at all. Stop the writers (Airflow workers, the app) while migrating.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsrag.core.errors import ConfigError, NewsragError, StoreError
from newsrag.infra.redaction import display_url
from newsrag.infra.sqldb import SqlDb, is_postgres

MIGRATE_LOCK = "newsrag.state.migrate"
BATCH = 500  # source rows compared (and keys looked up) per round trip
SHOWN_KEY_CHARS = 200


class MigrationConflict(NewsragError):
    """The target already holds a different row under a key the home has; nothing was written."""

    def __init__(self, what: str, table: str, key: dict[str, Any]) -> None:
        self.what, self.table, self.key = what, table, key
        shown = repr(key)[:SHOWN_KEY_CHARS]
        super().__init__(f"table {table} ({what}): the target already holds a different row for {shown}; "
                         "nothing was written (empty the target, or point --to at another database)")


@dataclass(frozen=True)
class StoreSpec:
    """One store to copy. ``source``: its SQLite file. ``prepare(location)`` opens the store there
    and closes it again (its constructor creates its tables)."""

    what: str
    source: str
    prepare: Callable[[str], None]


@dataclass
class TableCount:
    """One table: rows in the home, rows copied now, rows the target already held (equal)."""

    table: str
    rows: int = 0
    copied: int = 0
    present: int = 0


@dataclass
class StoreReport:
    what: str
    source: str
    found: bool  # False: no SQLite file, nothing to copy
    tables: list[TableCount] = field(default_factory=list)

    @property
    def copied(self) -> int:
        return sum(t.copied for t in self.tables)


def migrate_stores(stores: Sequence[StoreSpec], target: str) -> list[StoreReport]:
    """Copy every table of every store whose SQLite file exists into ``target``; what was copied.
    Refuses (:class:`MigrationConflict`) before writing anything when the target holds a different
    row under a key of the home."""
    for spec in stores:
        if is_postgres(spec.source):
            raise ConfigError(f"{spec.what}: {display_url(spec.source)} is not a SQLite file")
    found = [spec for spec in stores if Path(spec.source.removeprefix("sqlite:///")).is_file()]
    for spec in found:
        spec.prepare(spec.source)  # an older file gets the current layout, as any run would give it
        spec.prepare(target)
    reports = {spec.what: StoreReport(spec.what, spec.source, spec in found) for spec in stores}
    dst = SqlDb(target, what="migration target")
    try:
        for spec in found:  # first every store, writing nothing: a conflict anywhere refuses them all
            copy_store(spec, dst, write=False)
        for spec in found:
            reports[spec.what].tables = copy_store(spec, dst, write=True)
    finally:
        dst.close()
    return list(reports.values())


def copy_store(spec: StoreSpec, dst: SqlDb, *, write: bool) -> list[TableCount]:
    """Compare (``write`` False) or copy every table of one store, in one transaction of ``dst``."""
    src = SqlDb(spec.source, what=spec.what)
    try:
        with dst.transaction(lock=MIGRATE_LOCK):
            return [copy_table(spec.what, src, dst, table, write=write) for table in source_tables(src)]
    finally:
        src.close()


def source_tables(src: SqlDb) -> list[str]:
    """The SQLite file's own tables, each after the tables its foreign keys reference."""
    names = sorted(t for t in src.tables() if not t.startswith("sqlite_"))
    ordered: list[str] = []

    def visit(name: str, seen: frozenset[str]) -> None:
        if name in ordered or name in seen:
            return
        for row in src.execute(f'PRAGMA foreign_key_list("{name}")'):
            if row[2] in names:
                visit(row[2], seen | {name})
        ordered.append(name)

    for name in names:
        visit(name, frozenset())
    return ordered


def copy_table(what: str, src: SqlDb, dst: SqlDb, table: str, *, write: bool) -> TableCount:
    columns, key = _columns(src, what, table)
    if table not in dst.tables():
        raise StoreError(f"table {table} ({what}): the target has no such table")
    count = TableCount(table)
    for rows in _batches(src, table, columns):
        held = _target_rows(dst, table, columns, key, rows)
        new = []
        for row in rows:
            row_key = tuple(row[i] for i in key)
            if row_key not in held:
                new.append(row)
            elif not _same(held[row_key], row):
                raise MigrationConflict(what, table, {columns[i]: row[i] for i in key})
        count.rows += len(rows)
        count.present += len(rows) - len(new)
        count.copied += len(new)
        if write and new:
            dst.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                            new)
    if write and count.copied and dst.postgres and len(key) == 1:
        _advance_identity(dst, table, columns[key[0]])
    return count


def _columns(src: SqlDb, what: str, table: str) -> tuple[list[str], list[int]]:
    """The table's column names and the positions of its primary key, in key order."""
    info = src.execute(f'PRAGMA table_info("{table}")')  # cid, name, type, notnull, default, pk
    columns = [row[1] for row in info]
    key = [columns.index(row[1]) for row in sorted((r for r in info if r[5]), key=lambda r: r[5])]
    if not key:  # without one, "already there" cannot be told from "a second copy"
        raise StoreError(f"table {table} ({what}) has no primary key: it cannot be copied idempotently")
    return columns, key


def _batches(src: SqlDb, table: str, columns: list[str]) -> Iterator[list[tuple[Any, ...]]]:
    """The source rows, ``BATCH`` at a time in rowid order (never the whole table in memory)."""
    last = None
    while True:
        after = "" if last is None else "WHERE rowid > ? "
        rows = src.execute(f"SELECT rowid, {', '.join(columns)} FROM {table} {after}ORDER BY rowid LIMIT {BATCH}",
                           () if last is None else (last,))
        if not rows:
            return
        last = rows[-1][0]
        yield [tuple(row[1:]) for row in rows]


def _target_rows(dst: SqlDb, table: str, columns: list[str], key: list[int],
                 rows: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """The target's rows under the keys of ``rows``, by key."""
    names = [columns[i] for i in key]
    one = "(" + ", ".join("?" * len(key)) + ")"
    where = f"({', '.join(names)}) IN ({', '.join([one] * len(rows))})" if len(key) > 1 else \
        f"{names[0]} IN ({', '.join('?' * len(rows))})"
    params = [row[i] for row in rows for i in key]
    found = dst.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE {where}", params)
    return {tuple(row[i] for i in key): tuple(row) for row in found}


def _same(held: tuple[Any, ...], row: tuple[Any, ...]) -> bool:
    return all(_plain(a) == _plain(b) for a, b in zip(held, row, strict=True))


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview | bytearray) else value


def _advance_identity(dst: SqlDb, table: str, column: str) -> None:
    """Copied ids were given explicitly, so the column's sequence has not moved: move it past them,
    or the store's next insert would be handed an id a copied row already has."""
    [(sequence,)] = dst.execute("SELECT pg_get_serial_sequence(?, ?)", (table, column))
    if sequence is None:  # not an identity column
        return
    dst.execute(f"SELECT setval(CAST(? AS regclass), GREATEST((SELECT MAX({column}) FROM {table}), "
                "COALESCE(pg_sequence_last_value(CAST(? AS regclass)), 1)))", (sequence, sequence))
