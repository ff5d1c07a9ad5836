"""The live switch when the registry has nothing to serve (never synced, a mistyped name, nothing
promoted): the app falls back to the generator's built-in prompt visibly, with one warning per
name per TTL saying why, and recovers within the TTL once a version is active."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsrag.prompts.provider import BUILTIN, PromptProvider
from newsrag.prompts.registry import PromptRegistry

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[PromptRegistry]:
    reg = PromptRegistry(tmp_path / "registry.sqlite")
    yield reg
    reg.close()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "newsrag.prompts.provider" and r.levelno == logging.WARNING]


def test_a_registry_that_was_never_synced_is_a_visible_fallback(registry: PromptRegistry,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="newsrag.prompts.provider")
    clock = Clock()
    provider = PromptProvider(registry, "news-answer", ttl=5.0, clock=clock)
    chosen = provider.select("user-1")
    assert (chosen.template, chosen.arm) == (None, BUILTIN)
    assert chosen.reason == "unknown template 'news-answer'; known: none"
    for key in ("user-2", "user-3"):  # within the TTL: no second lookup, no second warning
        assert provider.select(key).arm == BUILTIN
    [warning] = warnings_of(caplog)
    assert "news-answer" in warning and "unknown template 'news-answer'; known: none" in warning
    assert "built-in prompt" in warning and "prompt_version 'builtin'" in warning

    clock.now += 5.0  # the TTL passed: the registry is read again, and still says why
    provider.select("user-1")
    assert len(warnings_of(caplog)) == 2

    registry.sync()
    registry.validate("news-answer", "1")
    registry.promote("news-answer", "1")
    clock.now += 5.0
    chosen = provider.select("user-1")
    assert (chosen.template.ref if chosen.template else None, chosen.arm, chosen.reason) == ("news-answer@1", "a", None)
    assert len(warnings_of(caplog)) == 2  # served from the registry: no warning


def test_a_mistyped_name_and_a_name_never_promoted_say_why(registry: PromptRegistry,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="newsrag.prompts.provider")
    registry.sync()
    typo = PromptProvider(registry, "news-answr", ttl=5.0, clock=Clock()).select("k")
    assert typo.template is None and typo.reason == "unknown template 'news-answr'; known: news-answer"
    never = PromptProvider(registry, "news-answer", ttl=5.0, clock=Clock()).select("k")
    assert never.template is None and never.reason == "news-answer has no active version (none was ever promoted)"
    assert [w.split(":")[0] for w in warnings_of(caplog)] == ["prompt news-answr", "prompt news-answer"]
