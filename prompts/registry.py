"""The prompt registry: known versions per template, the active one, an optional A/B split, and an
append-only event log (who, when, why, evaluation run) so history and rollback are exact.

SQLite by default (``$NEWSRAG_HOME/prompt-registry.sqlite``). Every change runs in one
``BEGIN IMMEDIATE`` transaction, so concurrent promotions serialize: both are recorded and the
active version is the one the last event set.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsrag.errors import NewsragError
from prompts.template import PromptTemplate, lint, load_template, templates_dir

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS versions (name TEXT NOT NULL, version TEXT NOT NULL, content_hash TEXT NOT NULL,
       author TEXT, created_at TEXT NOT NULL, template TEXT NOT NULL, validation TEXT, problems TEXT,
       PRIMARY KEY (name, version))""",
    """CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,
       action TEXT NOT NULL, version TEXT, previous TEXT, canary TEXT, canary_weight REAL, who TEXT,
       at TEXT NOT NULL, why TEXT, eval_run_id TEXT)""",
    """CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, active TEXT, canary TEXT,
       canary_weight REAL NOT NULL DEFAULT 0, event_id INTEGER)""",
]


class RegistryError(NewsragError):
    """A registry operation was refused; nothing changed."""


@dataclass(frozen=True)
class ActivePrompt:
    name: str
    active: str | None
    canary: str | None = None
    canary_weight: float = 0.0


@dataclass(frozen=True)
class Event:
    id: int
    name: str
    action: str
    version: str | None
    previous: str | None
    canary: str | None
    canary_weight: float | None
    who: str | None
    at: str
    why: str | None
    eval_run_id: str | None


class PromptRegistry:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        for stmt in SCHEMA:
            self._db.execute(stmt)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- versions ---------------------------------------------------------------------------
    def register(self, template: PromptTemplate, author: str | None = None) -> bool:
        """Record a version. Same content again is a no-op (False); different content under an
        existing version is refused."""
        with self._tx() as db:
            row = db.execute("SELECT content_hash FROM versions WHERE name=? AND version=?",
                             (template.name, template.version)).fetchone()
            if row and row[0] == template.content_hash:
                return False
            if row:
                raise RegistryError(f"{template.ref} is already registered with different content "
                                    f"({row[0]} != {template.content_hash}); publish it as a new version")
            db.execute("INSERT INTO versions VALUES (?,?,?,?,?,?,NULL,NULL)", (
                template.name, template.version, template.content_hash, author, _now(),
                template.model_dump_json()))
            self._event(db, template.name, "register", template.version, who=author)
        return True

    def sync(self, folder: Path | None = None, author: str | None = "deploy") -> list[str]:
        """Register every template file under ``folder`` (default: the shipped templates)."""
        added = []
        for path in sorted((folder or templates_dir()).glob("*/*.yaml")):
            template = load_template(path)
            if self.register(template, author):
                added.append(template.ref)
        return added

    def template(self, name: str, version: str) -> PromptTemplate:
        row = self._db.execute("SELECT template FROM versions WHERE name=? AND version=?", (name, version)).fetchone()
        if row is None:
            raise RegistryError(f"unknown template version {name}@{version}; known: {self.versions(name) or 'none'}")
        return PromptTemplate.model_validate_json(row[0])

    def versions(self, name: str) -> list[str]:
        rows = self._db.execute("SELECT version FROM versions WHERE name=? ORDER BY created_at", (name,)).fetchall()
        return [r[0] for r in rows]

    def names(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT name FROM versions ORDER BY name").fetchall()]

    def validate(self, name: str, version: str, who: str | None = None) -> list[str]:
        """Lint and test-render a version; the verdict is stored and gates promotion."""
        template = self.template(name, version)
        problems = lint(template)
        if not problems:
            try:
                template.render(**{v: f"<{v}>" for v in template.variables})
            except NewsragError as exc:
                problems.append(str(exc))
        with self._tx() as db:
            db.execute("UPDATE versions SET validation=?, problems=? WHERE name=? AND version=?",
                       ("passed" if not problems else "failed", json.dumps(problems), name, version))
            self._event(db, name, "validate", version, who=who, why="; ".join(problems) or "passed")
        return problems

    def validation(self, name: str, version: str) -> str | None:
        row = self._db.execute("SELECT validation FROM versions WHERE name=? AND version=?", (name, version)).fetchone()
        return row[0] if row else None

    # -- the active version ------------------------------------------------------------------
    def active(self, name: str) -> ActivePrompt:
        row = self._db.execute("SELECT active, canary, canary_weight FROM state WHERE name=?", (name,)).fetchone()
        if row is None:
            if name not in self.names():
                raise RegistryError(f"unknown template {name!r}; known: {self.names() or 'none'}")
            return ActivePrompt(name, None)
        return ActivePrompt(name, row[0], row[1], float(row[2] or 0.0))

    def promote(self, name: str, version: str, *, who: str | None = None, why: str | None = None,
                eval_run_id: str | None = None) -> ActivePrompt:
        self.template(name, version)
        if self.validation(name, version) != "passed":
            raise RegistryError(f"{name}@{version} has not passed validation "
                                f"({self.validation(name, version) or 'not validated'}); run validate first")
        with self._tx() as db:
            previous = self._state(db, name)[0]
            event_id = self._event(db, name, "promote", version, previous=previous, who=who, why=why,
                                   eval_run_id=eval_run_id)
            self._set_state(db, name, version, None, 0.0, event_id)
        return self.active(name)

    def rollback(self, name: str, *, who: str | None = None, why: str | None = None) -> ActivePrompt:
        """Make the version that was active before the current one active again."""
        with self._tx() as db:
            stack = self._promotion_stack(db, name)
            if len(stack) < 2:
                raise RegistryError(f"{name} has no earlier active version to roll back to")
            event_id = self._event(db, name, "rollback", stack[-2], previous=stack[-1], who=who, why=why)
            self._set_state(db, name, stack[-2], None, 0.0, event_id)
        return self.active(name)

    def set_ab(self, name: str, canary: str | None, weight: float, *, who: str | None = None,
               why: str | None = None, eval_run_id: str | None = None) -> ActivePrompt:
        """Serve ``canary`` to a sticky ``weight`` share of keys (None or 0 ends the test)."""
        if not 0.0 <= weight <= 1.0:
            raise RegistryError(f"A/B weight must be between 0 and 1, got {weight}")
        if canary is not None:
            self.template(name, canary)
            if self.validation(name, canary) != "passed":
                raise RegistryError(f"{name}@{canary} has not passed validation; it cannot be a canary")
        with self._tx() as db:
            active = self._state(db, name)[0]
            if active is None:
                raise RegistryError(f"{name} has no active version; promote one before an A/B test")
            weight = weight if canary else 0.0
            event_id = self._event(db, name, "ab", active, canary=canary, canary_weight=weight, who=who,
                                   why=why, eval_run_id=eval_run_id)
            self._set_state(db, name, active, canary, weight, event_id)
        return self.active(name)

    def record(self, name: str, action: str, version: str | None, **kw: Any) -> int:
        """Record an event that changes no state (validate/reject outcomes from a release)."""
        with self._tx() as db:
            return self._event(db, name, action, version, **kw)

    def events(self, name: str | None = None) -> list[Event]:
        sql = "SELECT * FROM events" + (" WHERE name=?" if name else "") + " ORDER BY id"
        return [Event(*r) for r in self._db.execute(sql, (name,) if name else ()).fetchall()]

    def close(self) -> None:
        self._db.close()

    # -- internals ---------------------------------------------------------------------------
    @staticmethod
    def _state(db: sqlite3.Connection, name: str) -> tuple[Any, ...]:
        row = db.execute("SELECT active, canary, canary_weight FROM state WHERE name=?", (name,)).fetchone()
        return tuple(row) if row else (None, None, 0.0)

    @staticmethod
    def _promotion_stack(db: sqlite3.Connection, name: str) -> list[str]:
        """Active versions in promotion order, with rolled-back ones popped: rollback goes one step back."""
        stack: list[str] = []
        for action, version in db.execute("SELECT action, version FROM events WHERE name=? AND action IN "
                                          "('promote','rollback') ORDER BY id", (name,)):
            if action == "promote":
                stack.append(version)
            elif stack:
                stack.pop()
        return stack

    @staticmethod
    def _set_state(db: sqlite3.Connection, name: str, active: str | None, canary: str | None, weight: float,
                   event_id: int) -> None:
        db.execute("INSERT INTO state VALUES (?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET active=excluded.active, "
                   "canary=excluded.canary, canary_weight=excluded.canary_weight, event_id=excluded.event_id",
                   (name, active, canary, weight, event_id))

    @staticmethod
    def _event(db: sqlite3.Connection, name: str, action: str, version: str | None, *, previous: str | None = None,
               canary: str | None = None, canary_weight: float | None = None, who: str | None = None,
               why: str | None = None, eval_run_id: str | None = None) -> int:
        cur = db.execute("INSERT INTO events (name, action, version, previous, canary, canary_weight, who, at, "
                         "why, eval_run_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
                         (name, action, version, previous, canary, canary_weight, who, _now(), why, eval_run_id))
        return int(cur.lastrowid or 0)


def arm_for(active: ActivePrompt, key: str) -> tuple[str | None, str]:
    """Sticky A/B assignment: the same key always gets the same arm ('a' active, 'b' canary)."""
    if not active.canary or active.canary_weight <= 0:
        return active.active, "a"
    bucket = int(hashlib.sha256(f"{active.name}:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return (active.canary, "b") if bucket < active.canary_weight else (active.active, "a")


def _now() -> str:
    return datetime.now(UTC).isoformat()
