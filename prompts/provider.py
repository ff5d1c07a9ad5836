"""The live switch: which template version to use right now, read through a short TTL cache.

A promotion or rollback in the registry reaches a running app within ``ttl`` seconds, with no
restart. With an A/B split, each conversation or user key sticks to one arm.

When the registry has nothing to serve for the name (never synced, a mistyped name, no version
promoted yet), the generator's built-in prompt is used, visibly: the selection's arm is
:data:`BUILTIN` with the reason, the app labels such answers ``prompt_version="builtin"``, and a
warning says why once per name per TTL (the registry is read again only after the TTL).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from newsrag.core.templates import PromptTemplate
from newsrag.prompts.registry import ActivePrompt, PromptRegistry, RegistryError, arm_for

log = logging.getLogger(__name__)

BUILTIN = "builtin"  # the arm, and the answers' prompt_version, when the registry serves nothing


@dataclass(frozen=True)
class Selected:
    template: PromptTemplate | None  # None: the generator's built-in prompt (see ``reason``)
    arm: str  # "a" (active), "b" (canary) or BUILTIN
    reason: str | None = None  # why the registry served nothing


class PromptProvider:
    def __init__(self, registry: PromptRegistry, name: str = "news-answer", ttl: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry
        self.name = name
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, ActivePrompt | str] | None = None
        self._templates: dict[str, PromptTemplate] = {}

    def select(self, key: str) -> Selected:
        """The template for ``key`` (sticky A/B), or the built-in fallback and why."""
        state = self._state()
        if isinstance(state, str):
            return Selected(None, BUILTIN, state)
        version, arm = arm_for(state, key)
        assert version is not None  # _read returns only states with an active version
        if version not in self._templates:  # versions are immutable: cache them forever
            self._templates[version] = self.registry.template(self.name, version)
        return Selected(self._templates[version], arm)

    def _state(self) -> ActivePrompt | str:
        """The registry's state for the name, or why it has none to serve; read at most once per TTL."""
        now = self._clock()
        with self._lock:
            if self._cached is None or now - self._cached[0] >= self.ttl:
                self._cached = (now, self._read())
            return self._cached[1]

    def _read(self) -> ActivePrompt | str:
        try:
            state = self.registry.active(self.name)
        except RegistryError as exc:  # never synced or a mistyped name: reported below, and in every answer
            reason = str(exc)
        else:
            if state.active is not None:
                return state
            reason = f"{self.name} has no active version (none was ever promoted)"
        log.warning("prompt %s: %s; answers use the generator's built-in prompt (prompt_version %r) until the "
                    "registry %r has an active version", self.name, reason, BUILTIN, self.registry)
        return reason
