"""The live switch: which template version to use right now, read through a short TTL cache.

A promotion or rollback in the registry reaches a running app within ``ttl`` seconds, with no
restart. With an A/B split, each conversation or user key sticks to one arm.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from prompts.registry import ActivePrompt, PromptRegistry, RegistryError, arm_for
from prompts.template import PromptTemplate


@dataclass(frozen=True)
class Selected:
    template: PromptTemplate
    arm: str | None  # "a" (active) or "b" (canary); None when the registry has no active version


class PromptProvider:
    def __init__(self, registry: PromptRegistry, name: str = "news-answer", ttl: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry
        self.name = name
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, ActivePrompt] | None = None
        self._templates: dict[str, PromptTemplate] = {}

    def active(self) -> ActivePrompt:
        now = self._clock()
        with self._lock:
            if self._cached is None or now - self._cached[0] >= self.ttl:
                self._cached = (now, self.registry.active(self.name))
            return self._cached[1]

    def select(self, key: str) -> Selected | None:
        """The template for ``key`` (sticky A/B), or None when no version was ever promoted."""
        try:
            active = self.active()
        except RegistryError:
            return None
        version, arm = arm_for(active, key)
        if version is None:
            return None
        if version not in self._templates:  # versions are immutable: cache them forever
            self._templates[version] = self.registry.template(self.name, version)
        return Selected(self._templates[version], arm)
