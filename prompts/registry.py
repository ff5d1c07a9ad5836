"""The prompt registry: known versions per template, the active one, an optional A/B split, and an
append-only event log (who, when, why, evaluation run) so history and rollback are exact.

The same store choice as the evaluation history (:mod:`newsrag.infra.sqldb`): a SQLite file by default
(``$NEWSRAG_HOME/prompt-registry.sqlite``), a ``postgresql://`` URL in production. Every change runs
in one transaction holding the registry's write lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL
advisory lock), so concurrent promotions serialize: both are recorded, each event's ``previous`` is
the version the one before it set, and the active version is the one the last event set.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsrag.core.errors import NewsragError
from newsrag.core.templates import (
    PromptError,
    PromptTemplate,
    lint,
    load_folder,
    templates_dir,
    version_key,
)
from newsrag.infra.redaction import display_url
from newsrag.infra.sqldb import SqlDb

WRITE_LOCK = "newsrag.prompt_registry"
LEGACY_TABLES = {"versions": "prompt_versions", "events": "prompt_events", "state": "prompt_state"}


def schema(identity: str) -> list[str]:
    return [
        """CREATE TABLE IF NOT EXISTS prompt_versions (name TEXT NOT NULL, version TEXT NOT NULL,
           content_hash TEXT NOT NULL, author TEXT, created_at TEXT NOT NULL, template TEXT NOT NULL,
           validation TEXT, problems TEXT, PRIMARY KEY (name, version))""",
        f"""CREATE TABLE IF NOT EXISTS prompt_events (id {identity}, name TEXT NOT NULL,
           action TEXT NOT NULL, version TEXT, previous TEXT, canary TEXT, canary_weight DOUBLE PRECISION,
           who TEXT, at TEXT NOT NULL, why TEXT, eval_run_id TEXT)""",
        """CREATE TABLE IF NOT EXISTS prompt_state (name TEXT PRIMARY KEY, active TEXT, canary TEXT,
           canary_weight DOUBLE PRECISION NOT NULL DEFAULT 0, event_id BIGINT)""",
    ]


class RegistryError(NewsragError):
    """A registry operation was refused; nothing changed."""


@dataclass(frozen=True)
class Deployed:
    """What a deploy did: the refs it registered and the refs it made active (none was)."""

    registered: list[str]
    activated: list[str]


@dataclass(frozen=True)
class ActivePrompt:
    name: str
    active: str | None
    canary: str | None = None
    canary_weight: float = 0.0


EVENT_COLUMNS = "id, name, action, version, previous, canary, canary_weight, who, at, why, eval_run_id"


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
    """``location``: a SQLite path or a ``postgresql://`` URL (both the app and the DAGs open it)."""

    def __init__(self, location: str | Path) -> None:
        self.location = str(location)
        self._db = SqlDb(self.location, what="prompt registry")
        with self._db.transaction(lock=WRITE_LOCK):
            self._rename_legacy_tables()
            for stmt in schema(self._db.identity):
                self._db.execute(stmt)

    def __repr__(self) -> str:
        return f"PromptRegistry({display_url(self.location)!r})"

    def _rename_legacy_tables(self) -> None:
        """SQLite registries made before the tables were prefixed keep their data."""
        tables = self._db.tables()
        for old, new in LEGACY_TABLES.items():
            if old in tables and new not in tables and not self._db.postgres:
                self._db.execute(f"ALTER TABLE {old} RENAME TO {new}")

    # -- versions ---------------------------------------------------------------------------
    def register(self, template: PromptTemplate, author: str | None = None) -> bool:
        """Record a version. Same content again is a no-op (False); different content under an
        existing version is refused."""
        with self._db.transaction(lock=WRITE_LOCK):
            known = self._hash(template.name, template.version)
            if known == template.content_hash:
                return False
            if known is not None:
                raise RegistryError(_changed(template, known))
            self._insert(template, author)
        return True

    def sync(self, folder: Path | None = None, author: str | None = "deploy") -> list[str]:
        """Register every template file under ``folder`` (default: the shipped templates), all or
        nothing: every file is parsed and checked first, then all are registered in one transaction,
        so a bad file or a changed version registers none of them. The refs registered now."""
        return self._register_all(_found(folder), author)

    def deploy(self, folder: Path | None = None, author: str | None = "deploy") -> Deployed:
        """:meth:`sync`, then every template of the folder that has no active version (a new
        registry, a new template) gets the folder's newest version that passes validation as its
        active one. A registry with an active version is never changed here: that takes a release
        or a promotion."""
        found = _found(folder)
        registered = self._register_all(found, author)
        by_name: dict[str, list[str]] = {}
        for t in found.values():
            by_name.setdefault(t.name, []).append(t.version)
        activated = [ref for name, versions in sorted(by_name.items())
                     if (ref := self._activate_if_unset(name, versions, author))]
        return Deployed(registered, activated)

    def _register_all(self, found: dict[Path, PromptTemplate], author: str | None) -> list[str]:
        with self._db.transaction(lock=WRITE_LOCK):
            known = {t.ref: self._hash(t.name, t.version) for t in found.values()}
            changed = [f"{path}: {_changed(t, known[t.ref] or '')}" for path, t in found.items()
                       if known[t.ref] not in (None, t.content_hash)]
            if changed:
                raise RegistryError(f"{'; '.join(changed)}; nothing was registered")
            new = [t for t in found.values() if known[t.ref] is None]
            for t in new:
                self._insert(t, author)
        return [t.ref for t in new]

    def _activate_if_unset(self, name: str, versions: list[str], who: str | None) -> str | None:
        """The ref made active, None when one was active already or no version passes validation."""
        if self._state(name)[0] is not None:
            return None
        for version in sorted(versions, key=version_key, reverse=True):
            verdict = self.validation(name, version)
            if verdict is None:
                verdict = "failed" if self.validate(name, version, who=who) else "passed"
            if verdict == "passed":
                why = "deploy: no version was active; the newest validated version of the deployed folder"
                return f"{name}@{version}" if self._promote_if_unset(name, version, who, why) else None
        return None

    def _promote_if_unset(self, name: str, version: str, who: str | None, why: str) -> bool:
        """Promote inside one locked transaction that first checks nothing is active, so a deploy
        racing a manual promotion never overrides it."""
        with self._db.transaction(lock=WRITE_LOCK):
            if self._state(name)[0] is not None:
                return False
            event_id = self._event(name, "promote", version, who=who, why=why)
            self._set_state(name, version, None, 0.0, event_id)
        return True

    def template(self, name: str, version: str) -> PromptTemplate:
        rows = self._db.execute("SELECT template FROM prompt_versions WHERE name=? AND version=?", (name, version))
        if not rows:
            self._known(name)
            raise RegistryError(f"unknown template version {name}@{version}; known: "
                                f"{', '.join(self.versions(name))}")
        return PromptTemplate.model_validate_json(rows[0][0])

    def versions(self, name: str) -> list[str]:
        rows = self._db.execute("SELECT version FROM prompt_versions WHERE name=? ORDER BY created_at", (name,))
        return [r[0] for r in rows]

    def names(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT name FROM prompt_versions ORDER BY name")]

    def _known(self, name: str) -> None:
        if name not in self.names():
            raise RegistryError(f"unknown template {name!r}; known: {', '.join(self.names()) or 'none'}")

    def validate(self, name: str, version: str, who: str | None = None) -> list[str]:
        """Lint and test-render a version; the verdict is stored and gates promotion."""
        template = self.template(name, version)
        problems = lint(template)
        if not problems:
            try:
                template.render(**{v: f"<{v}>" for v in template.variables})
            except NewsragError as exc:
                problems.append(str(exc))
        with self._db.transaction(lock=WRITE_LOCK):
            self._db.execute("UPDATE prompt_versions SET validation=?, problems=? WHERE name=? AND version=?",
                             ("passed" if not problems else "failed", json.dumps(problems), name, version))
            self._event(name, "validate", version, who=who, why="; ".join(problems) or "passed")
        return problems

    def validation(self, name: str, version: str) -> str | None:
        rows = self._db.execute("SELECT validation FROM prompt_versions WHERE name=? AND version=?",
                                (name, version))
        return rows[0][0] if rows else None

    def _check_passed(self, name: str, version: str, role: str = "promoted") -> None:
        self.template(name, version)
        verdict = self.validation(name, version)
        if verdict != "passed":
            raise RegistryError(f"{name}@{version} has not passed validation ({verdict or 'not validated'}); "
                                f"it cannot be {role}: {'validate shows why' if verdict else 'run validate first'}")

    # -- the active version ------------------------------------------------------------------
    def active(self, name: str) -> ActivePrompt:
        rows = self._db.execute("SELECT active, canary, canary_weight FROM prompt_state WHERE name=?", (name,))
        if not rows:
            self._known(name)
            return ActivePrompt(name, None)
        active, canary, weight = rows[0]
        return ActivePrompt(name, active, canary, float(weight or 0.0))

    def promote(self, name: str, version: str, *, who: str | None = None, why: str | None = None,
                eval_run_id: str | None = None) -> ActivePrompt:
        self._check_passed(name, version)
        with self._db.transaction(lock=WRITE_LOCK):
            previous = self._state(name)[0]
            event_id = self._event(name, "promote", version, previous=previous, who=who, why=why,
                                   eval_run_id=eval_run_id)
            self._set_state(name, version, None, 0.0, event_id)
        return self.active(name)

    def rollback(self, name: str, *, who: str | None = None, why: str | None = None) -> ActivePrompt:
        """Make the version that was active before the current one active again."""
        self._known(name)
        with self._db.transaction(lock=WRITE_LOCK):
            stack = self._promotion_stack(name)
            if len(stack) < 2:
                raise RegistryError(f"{name} has no earlier active version to roll back to")
            event_id = self._event(name, "rollback", stack[-2], previous=stack[-1], who=who, why=why)
            self._set_state(name, stack[-2], None, 0.0, event_id)
        return self.active(name)

    def set_ab(self, name: str, canary: str | None, weight: float, *, who: str | None = None,
               why: str | None = None, eval_run_id: str | None = None) -> ActivePrompt:
        """Serve ``canary`` to a sticky ``weight`` share of keys (None or 0 ends the test)."""
        self._known(name)
        if not 0.0 <= weight <= 1.0:
            raise RegistryError(f"A/B weight must be between 0 and 1, got {weight}")
        if canary is not None:
            self._check_passed(name, canary, role="a canary")
        with self._db.transaction(lock=WRITE_LOCK):
            active = self._state(name)[0]
            if active is None:
                raise RegistryError(f"{name} has no active version; promote one before an A/B test")
            if canary == active:
                raise RegistryError(f"{name}@{canary} is already the active version; choose another canary")
            weight = weight if canary else 0.0
            event_id = self._event(name, "ab", active, canary=canary, canary_weight=weight, who=who,
                                   why=why, eval_run_id=eval_run_id)
            self._set_state(name, active, canary, weight, event_id)
        return self.active(name)

    def record(self, name: str, action: str, version: str | None, **kw: Any) -> int:
        """Record an event that changes no state (validate/reject outcomes from a release)."""
        with self._db.transaction(lock=WRITE_LOCK):
            return self._event(name, action, version, **kw)

    def events(self, name: str | None = None) -> list[Event]:
        sql = f"SELECT {EVENT_COLUMNS} FROM prompt_events" + (" WHERE name=?" if name else "") + " ORDER BY id"
        return [Event(*r) for r in self._db.execute(sql, (name,) if name else ())]

    def state_event_id(self, name: str) -> int | None:
        """The id of the event that set the current state (for consistency checks)."""
        rows = self._db.execute("SELECT event_id FROM prompt_state WHERE name=?", (name,))
        return int(rows[0][0]) if rows else None

    def close(self) -> None:
        self._db.close()

    # -- internals (inside a write transaction) ------------------------------------------------
    def _hash(self, name: str, version: str) -> str | None:
        rows = self._db.execute("SELECT content_hash FROM prompt_versions WHERE name=? AND version=?", (name, version))
        return str(rows[0][0]) if rows else None

    def _insert(self, template: PromptTemplate, author: str | None) -> None:
        self._db.execute("INSERT INTO prompt_versions VALUES (?,?,?,?,?,?,NULL,NULL)", (
            template.name, template.version, template.content_hash, author, _now(), template.model_dump_json()))
        self._event(template.name, "register", template.version, who=author)

    def _state(self, name: str) -> tuple[Any, ...]:
        rows = self._db.execute("SELECT active, canary, canary_weight FROM prompt_state WHERE name=?", (name,))
        return tuple(rows[0]) if rows else (None, None, 0.0)

    def _promotion_stack(self, name: str) -> list[str]:
        """Active versions in promotion order, with rolled-back ones popped: rollback goes one step back."""
        stack: list[str] = []
        for action, version in self._db.execute("SELECT action, version FROM prompt_events WHERE name=? AND "
                                                "action IN ('promote','rollback') ORDER BY id", (name,)):
            if action == "promote":
                stack.append(version)
            elif stack:
                stack.pop()
        return stack

    def _set_state(self, name: str, active: str | None, canary: str | None, weight: float, event_id: int) -> None:
        self._db.execute("INSERT INTO prompt_state VALUES (?,?,?,?,?) ON CONFLICT (name) DO UPDATE SET "
                         "active=excluded.active, canary=excluded.canary, canary_weight=excluded.canary_weight, "
                         "event_id=excluded.event_id", (name, active, canary, weight, event_id))

    def _event(self, name: str, action: str, version: str | None, *, previous: str | None = None,
               canary: str | None = None, canary_weight: float | None = None, who: str | None = None,
               why: str | None = None, eval_run_id: str | None = None) -> int:
        rows = self._db.execute("INSERT INTO prompt_events (name, action, version, previous, canary, canary_weight, "
                                "who, at, why, eval_run_id) VALUES (?,?,?,?,?,?,?,?,?,?) RETURNING id",
                                (name, action, version, previous, canary, canary_weight, who, _now(), why,
                                 eval_run_id))
        return int(rows[0][0])


def arm_for(active: ActivePrompt, key: str) -> tuple[str | None, str]:
    """Sticky A/B assignment: the same key always gets the same arm ('a' active, 'b' canary)."""
    if not active.canary or active.canary_weight <= 0:
        return active.active, "a"
    bucket = int(hashlib.sha256(f"{active.name}:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return (active.canary, "b") if bucket < active.canary_weight else (active.active, "a")


def _found(folder: Path | None) -> dict[Path, PromptTemplate]:
    """The folder's templates (default: the shipped ones), every file checked before any is used."""
    try:
        return load_folder(folder or templates_dir())
    except PromptError as exc:
        raise PromptError(f"{exc}; nothing was registered") from None


def _changed(template: PromptTemplate, known: str) -> str:
    return (f"{template.ref} is already registered with different content ({known} != {template.content_hash}); "
            "publish it as a new version")


def _now() -> str:
    return datetime.now(UTC).isoformat()
