from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest

from prompts.registry import PromptRegistry, RegistryError, arm_for
from prompts.template import PromptTemplate, load_template, templates_dir

pytestmark = pytest.mark.unit

V1 = load_template(templates_dir() / "news-answer" / "1.yaml")


def version(n: str, system_suffix: str = "") -> PromptTemplate:
    return V1.model_copy(update={"version": n, "system": V1.system + system_suffix})


@pytest.fixture
def registry(tmp_path: Path) -> PromptRegistry:
    reg = PromptRegistry(tmp_path / "registry.sqlite")
    reg.sync()
    for n in ("2", "3"):
        reg.register(version(n, f" Version {n}."), author="alice")
    for n in ("1", "2", "3"):
        assert reg.validate("news-answer", n) == []
    yield reg
    reg.close()


def test_sync_registers_shipped_templates_once(tmp_path: Path) -> None:
    reg = PromptRegistry(tmp_path / "r.sqlite")
    assert reg.sync() == ["news-answer@1"]
    assert reg.sync() == []
    assert reg.versions("news-answer") == ["1"]


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


def test_bad_operations_leave_the_active_version_untouched(registry: PromptRegistry, tmp_path: Path) -> None:
    registry.promote("news-answer", "1")
    bad = V1.model_copy(update={"version": "9", "user": "{{ question }} {{ context }}"})  # context undelimited
    registry.register(bad)
    assert registry.validate("news-answer", "9")
    with pytest.raises(RegistryError, match="has not passed validation"):
        registry.promote("news-answer", "9")
    with pytest.raises(RegistryError, match="unknown template version news-answer@42"):
        registry.promote("news-answer", "42")
    with pytest.raises(RegistryError, match="unknown template 'nope'"):
        registry.active("nope")
    assert registry.active("news-answer").active == "1"


def test_concurrent_promotions_end_consistent_with_both_recorded(tmp_path: Path) -> None:
    path = tmp_path / "race.sqlite"
    setup = PromptRegistry(path)
    setup.sync()
    setup.register(version("2", " two"))
    setup.validate("news-answer", "1")
    setup.validate("news-answer", "2")
    barrier = threading.Barrier(2)

    def promote(n: str) -> None:
        reg = PromptRegistry(path)  # separate connections, as two processes would have
        barrier.wait()
        reg.promote("news-answer", n, who=f"worker-{n}")
        reg.close()

    threads = [threading.Thread(target=promote, args=(n,)) for n in ("1", "2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = [e for e in setup.events("news-answer") if e.action == "promote"]
    assert sorted(e.version for e in events) == ["1", "2"]
    assert setup.active("news-answer").active == events[-1].version  # the last event wins, consistently
    assert events[-1].previous == events[0].version


def test_ab_split_is_sticky_and_within_binomial_bounds(registry: PromptRegistry) -> None:
    registry.promote("news-answer", "1")
    active = registry.set_ab("news-answer", "2", 0.1, who="dana", why="canary")
    arms = [arm_for(active, f"user-{i}") for i in range(1000)]
    canary = sum(1 for version, arm in arms if arm == "b" and version == "2")
    sd = math.sqrt(1000 * 0.1 * 0.9)
    assert 100 - 4 * sd <= canary <= 100 + 4 * sd  # 4 sigma: about 62..138
    assert all(arm_for(active, f"user-{i}") == arms[i] for i in range(1000))  # sticky per key
    ended = registry.set_ab("news-answer", None, 0.0)
    assert arm_for(ended, "user-1") == ("1", "a")
    with pytest.raises(RegistryError, match="between 0 and 1"):
        registry.set_ab("news-answer", "2", 1.5)
