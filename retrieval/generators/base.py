"""What every answer generator implements, and the value types it returns.

A generator turns a question and numbered context blocks into text that cites the blocks as
``[n]``. ``generate`` returns the whole :class:`Generation`; ``stream`` yields
:class:`GenerationDelta` events whose ``text`` pieces concatenate to the final text, and whose last
event carries the final :class:`Generation` (``final`` is ``None`` on every other event).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from newsrag.retrieval.context import ContextBlock


@dataclass(frozen=True)
class PromptRef:
    """A versioned prompt template (placeholder until the prompt registry lands; LLM generators
    render ``system`` and ``user`` with the question and the blocks)."""

    name: str
    version: str
    system: str = ""
    user: str = ""


@dataclass(frozen=True)
class Citation:
    """``[n]`` in the text refers to context block ``n``; ``quote`` is the cited sentence or span."""

    n: int
    chunk_id: str
    doc_id: str
    url: str
    title: str
    quote: str


@dataclass(frozen=True)
class Generation:
    text: str
    citations: list[Citation] = field(default_factory=list)
    abstained: bool = False
    model: str = ""
    generator: str = ""


@dataclass(frozen=True)
class GenerationDelta:
    text: str = ""
    final: Generation | None = None


@runtime_checkable
class Generator(Protocol):
    name: str
    model: str

    def generate(self, question: str, blocks: list[ContextBlock], *,
                 prompt: PromptRef | None = None) -> Generation: ...

    def stream(self, question: str, blocks: list[ContextBlock], *,
               prompt: PromptRef | None = None) -> Iterator[GenerationDelta]: ...


def stream_whole(generation: Generation) -> Iterator[GenerationDelta]:
    """Stream an already complete generation: its text in word-sized deltas, then the final event."""
    words = generation.text.split(" ")
    for i, word in enumerate(words):
        yield GenerationDelta(text=word if i == 0 else " " + word)
    yield GenerationDelta(final=generation)


def final_of(events: Iterator[GenerationDelta]) -> Generation:
    """Drain a stream and return its final generation."""
    final = None
    for event in events:
        final = event.final or final
    if final is None:
        raise RuntimeError("the generator's stream ended without a final generation")
    return final
