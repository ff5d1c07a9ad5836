"""The prompt registry on both stores: SQLite (unit) and a live private PostgreSQL (integration)."""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from newsrag.core.errors import StoreError
from newsrag.core.templates import PromptTemplate, load_template, templates_dir
from newsrag.prompts.registry import ActivePrompt, PromptRegistry, RegistryError, arm_for

V1 = load_template(templates_dir() / "news-answer" / "1.yaml")
BACKENDS = [pytest.param("sqlite", marks=pytest.mark.unit), pytest.param("postgres", marks=pytest.mark.integration)]


def version(n: str, system_suffix: str = "") -> PromptTemplate:
    return V1.model_copy(update={"version": n, "system": V1.system + system_suffix})


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "registry.sqlite")


@pytest.fixture
def registry(location: str) -> Iterator[PromptRegistry]:
    reg = PromptRegistry(location)
    reg.sync()
    for n in ("2", "3"):
        reg.register(version(n, f" Version {n}."), author="alice")
    for n in ("1", "2", "3"):
        assert reg.validate("news-answer", n) == []
    yield reg
    reg.close()


def test_sync_registers_shipped_templates_once(location: str) -> None:
    reg = PromptRegistry(location)
    assert reg.sync() == ["news-answer@1"]
    assert reg.sync() == []
    assert reg.versions("news-answer") == ["1"]
    reg.close()


def test_duplicate_version_with_different_content_is_refused(registry: PromptRegistry) -> None:
    with pytest.raises(RegistryError, match="already registered with different content"):
        registry.register(version("2", " changed"))
    assert registry.register(version("2", " Version 2.")) is False  # same content: a no-op


def test_promote_rollback_and_events(registry: PromptRegistry) -> None:
    for n in ("1", "2", "3"):
        registry.promote("news-answer", n, who="bob", why=f"ship {n}", eval_run_id=f"run-{n}")
    assert registry.active("news-answer").active == "3"
    assert registry.rollback("news-answer", who="carol", why="bad answers").active == "2"
    assert registry.rollback("news-answer", who="carol").active == "1"
    with pytest.raises(RegistryError, match="no earlier active version"):
        registry.rollback("news-answer")
    promotions = [(e.action, e.version, e.previous, e.who) for e in registry.events("news-answer")
                  if e.action in ("promote", "rollback")]
    assert promotions == [("promote", "1", None, "bob"), ("promote", "2", "1", "bob"), ("promote", "3", "2", "bob"),
                          ("rollback", "2", "3", "carol"), ("rollback", "1", "2", "carol")]
    assert [e.eval_run_id for e in registry.events() if e.action == "promote"] == ["run-1", "run-2", "run-3"]
    assert registry.state_event_id("news-answer") == registry.events("news-answer")[-1].id


def test_bad_operations_leave_the_active_version_untouched(registry: PromptRegistry) -> None:
    registry.promote("news-answer", "1")
    bad = V1.model_copy(update={"version": "9", "user": "{{ question }} {{ context }}"})  # context undelimited
    registry.register(bad)
    assert registry.validate("news-answer", "9")
    with pytest.raises(RegistryError, match="has not passed validation"):
        registry.promote("news-answer", "9")
    with pytest.raises(RegistryError, match="unknown template version news-answer@42; known: 1, 2, 3, 9"):
        registry.promote("news-answer", "42")
    for call in (lambda: registry.active("nope"), lambda: registry.promote("nope", "1"),
                 lambda: registry.rollback("nope"), lambda: registry.set_ab("nope", "2", 0.1)):
        with pytest.raises(RegistryError, match="unknown template 'nope'; known: news-answer"):
            call()
    with pytest.raises(RegistryError, match="already the active version"):
        registry.set_ab("news-answer", "1", 0.1)
    assert registry.active("news-answer") == ActivePrompt("news-answer", "1")


def test_concurrent_promotions_end_consistent_with_both_recorded(location: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    setup = PromptRegistry(location)
    setup.sync()
    setup.register(version("2", " two"))
    setup.validate("news-answer", "1")
    setup.validate("news-answer", "2")
    read_state = PromptRegistry._state

    def slow_state(self: PromptRegistry, name: str) -> tuple[Any, ...]:
        state = read_state(self, name)
        time.sleep(0.3)  # both promotions would read the same state here without the write lock
        return state

    monkeypatch.setattr(PromptRegistry, "_state", slow_state)
    barrier, errors = threading.Barrier(2), []

    def promote(n: str) -> None:
        try:
            reg = PromptRegistry(location)  # separate connections, as two processes would have
            barrier.wait()
            reg.promote("news-answer", n, who=f"worker-{n}")
            reg.close()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=(n,)) for n in ("1", "2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    events = [e for e in setup.events("news-answer") if e.action == "promote"]
    assert sorted(e.version for e in events) == ["1", "2"]
    assert events[0].previous is None and events[1].previous == events[0].version  # serialized, in order
    assert setup.active("news-answer").active == events[-1].version  # the last event wins, consistently
    assert setup.state_event_id("news-answer") == events[-1].id
    setup.close()


def test_ab_split_is_sticky_and_within_binomial_bounds(registry: PromptRegistry) -> None:
    registry.promote("news-answer", "1")
    active = registry.set_ab("news-answer", "2", 0.1, who="dana", why="canary")
    assert (active.active, active.canary, active.canary_weight) == ("1", "2", 0.1)
    arms = [arm_for(active, f"user-{i}") for i in range(1000)]
    canary = sum(1 for version, arm in arms if arm == "b" and version == "2")
    sd = math.sqrt(1000 * 0.1 * 0.9)
    assert 100 - 4 * sd <= canary <= 100 + 4 * sd  # 4 sigma: about 62..138
    assert all(arm_for(active, f"user-{i}") == arms[i] for i in range(1000))  # sticky per key
    ended = registry.set_ab("news-answer", None, 0.0)
    assert arm_for(ended, "user-1") == ("1", "a")
    with pytest.raises(RegistryError, match="between 0 and 1"):
        registry.set_ab("news-answer", "2", 1.5)
    assert registry.active("news-answer").canary is None


@pytest.mark.unit
def test_a_registry_made_before_the_table_prefix_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE versions (name TEXT NOT NULL, version TEXT NOT NULL, content_hash TEXT NOT NULL, "
                    "author TEXT, created_at TEXT NOT NULL, template TEXT NOT NULL, validation TEXT, problems TEXT, "
                    "PRIMARY KEY (name, version))")
        old.execute("CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, action TEXT NOT "
                    "NULL, version TEXT, previous TEXT, canary TEXT, canary_weight REAL, who TEXT, at TEXT NOT NULL, "
                    "why TEXT, eval_run_id TEXT)")
        old.execute("CREATE TABLE state (name TEXT PRIMARY KEY, active TEXT, canary TEXT, "
                    "canary_weight REAL NOT NULL DEFAULT 0, event_id INTEGER)")
        old.execute("INSERT INTO versions VALUES ('news-answer', '1', ?, 'x', '2026-01-01', ?, 'passed', '[]')",
                    (V1.content_hash, V1.model_dump_json()))
        old.execute("INSERT INTO events (name, action, version, at) VALUES ('news-answer', 'promote', '1', 't')")
        old.execute("INSERT INTO state VALUES ('news-answer', '1', NULL, 0, 1)")
    old.close()
    reg = PromptRegistry(path)
    assert reg.active("news-answer").active == "1" and reg.sync() == []
    assert [e.action for e in reg.events()] == ["promote"]
    reg.close()


@pytest.mark.integration
def test_a_postgres_registry_never_shows_its_password(postgres_url: str) -> None:
    reg = PromptRegistry(postgres_url)
    password = postgres_url.split(":")[2].split("@")[0]
    assert password not in repr(reg) and "postgres:***@" in repr(reg)
    reg.close()
    wrong = postgres_url.replace(f":{password}@", ":wrong-pw-123@")
    with pytest.raises(StoreError, match=r"cannot open the prompt registry at postgresql://postgres:\*\*\*@") as info:
        PromptRegistry(wrong)
    assert "wrong-pw-123" not in str(info.value)


@pytest.mark.integration
def test_a_postgres_registry_survives_a_dropped_connection(postgres_server: str, postgres_url: str) -> None:
    import psycopg

    reg = PromptRegistry(postgres_url)
    reg.sync()
    reg.register(version("2", " two"))
    for n in ("1", "2"):
        reg.validate("news-answer", n)
    reg.promote("news-answer", "1")

    def drop_connection() -> None:  # as a server restart or failover would
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (reg._db.conn.info.backend_pid,))

    drop_connection()
    assert reg.active("news-answer").active == "1"  # the read reconnects
    drop_connection()
    assert reg.promote("news-answer", "2", who="after-restart").active == "2"
    assert [e.version for e in reg.events("news-answer") if e.action == "promote"] == ["1", "2"]
    reg.close()
