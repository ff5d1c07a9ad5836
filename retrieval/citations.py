"""Citation numbers a reader can follow: the cited articles numbered 1…n in order of first use.

Generators mark sentences with the context block's number (``[3]``), which is a retrieval rank: an
answer could open with ``[2]`` and list one article three times. :class:`Renumberer` rewrites the
markers so the first article cited is ``[1]``, the next new one ``[2]``, and so on; it works on a
whole text or on a stream of deltas (a marker split across deltas is held back until complete).
:func:`group_sources` gives one entry per article with its quotes under it, numbered the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

MARKER = re.compile(r"\[(\d{1,3})\]")
# The start of a marker that may still be completed by the next delta: "[" or "[12".
_OPEN_TAIL = re.compile(r"\[\d{0,3}$")


@dataclass
class Renumberer:
    """Block numbers -> reading numbers, assigned at first use. Markers naming no known block
    (``known``) are dropped: a reader cannot follow them."""

    known: frozenset[int] | None = None
    numbers: dict[int, int] = field(default_factory=dict)
    _pending: str = ""

    def number(self, block_n: int) -> int:
        return self.numbers.setdefault(block_n, len(self.numbers) + 1)

    def rewrite(self, text: str) -> str:
        return MARKER.sub(self._replace, text)

    def feed(self, delta: str) -> str:
        """The rewritten part of ``self._pending + delta`` that can no longer change."""
        text = self._pending + delta
        tail = _OPEN_TAIL.search(text)
        cut = tail.start() if tail else len(text)
        self._pending = text[cut:]
        return self.rewrite(text[:cut])

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return self.rewrite(rest)

    def _replace(self, match: re.Match[str]) -> str:
        block_n = int(match.group(1))
        if self.known is not None and block_n not in self.known:
            return ""
        return f"[{self.number(block_n)}]"


def renumber_text(text: str, known: Iterable[int] | None = None) -> tuple[str, dict[int, int]]:
    """(text with reading numbers, block number -> reading number)."""
    renumberer = Renumberer(frozenset(known) if known is not None else None)
    return renumberer.rewrite(text), renumberer.numbers
