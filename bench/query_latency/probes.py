"""What the app does inside one request, seen through the objects the bench hands it.

Nothing of the app or the library is patched. The app is built with public constructors and
parameters, from objects of the bench's own that record as they work:

* :class:`ProbedEmbedder`, the app's embedder (``Services(embedder=...)``): a ``LocalEmbedder``
  whose model runs are recorded (a query found in its query cache runs nothing);
* :class:`ProfiledGenerator`, registered as a generator (``newsrag.retrieval.generators.register``,
  chosen by ``AppSettings.generator``): the extractive generator built by its public constructor
  around a :class:`GeneratorEmbedder`, which records its question lookups and sentence embeddings
  apart; a fresh one replaces it to empty its sentence cache;
* :class:`RecordingStore`, the app's store (``Services(store=...)``): keeps each hybrid query's
  vector digest and result ids, for the repeatability check;
* :class:`TimedFeedbackStore`, the answer log the app writes each ``/v1/ask`` to.

What only the generator's private methods could show (how many sentence texts it scored, the time
in its cache lookups) is not measured.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from newsrag.core.settings import Settings
from newsrag.embeddings.base import Embedder, Vectors
from newsrag.embeddings.local import LocalEmbedder
from newsrag.evaluation.feedback import FeedbackStore
from newsrag.retrieval.context import ContextBlock
from newsrag.retrieval.generators import Generation, GenerationDelta, PromptRef, register
from newsrag.retrieval.generators.extractive import ExtractiveGenerator
from newsrag.store.weaviate import WeaviateStore

GENERATOR = "bench-extractive"  # the name the profiled generator is registered under


class Probe:
    """Time, calls and item counts per named span, taken per request. A span inside another is
    recorded as ``name@outer`` (the innermost outer span). The bench sends one request at a time,
    so one stack serves the app's worker threads."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self._stack: list[str] = []

    @contextmanager
    def span(self, name: str, items: int | None = None) -> Iterator[None]:
        key = f"{name}@{self._stack[-1]}" if self._stack else name
        self._stack.append(name)
        started = time.perf_counter()
        try:
            yield
        finally:
            self._stack.pop()
            v = self.values
            v[f"{key}_ms"] = v.get(f"{key}_ms", 0.0) + (time.perf_counter() - started) * 1000
            v[f"{key}_calls"] = v.get(f"{key}_calls", 0) + 1
            if items is not None:
                v[f"{key}_items"] = v.get(f"{key}_items", 0) + items

    def take(self) -> dict[str, float]:
        """What was recorded since the last take, and a fresh start."""
        out, self.values = self.values, {}
        return out


class ProbedEmbedder(LocalEmbedder):
    """The app's embedder: every model run is an ``embed`` span (``embed_query`` runs the model
    through ``embed_documents`` on a query-cache miss, so a cached query records nothing)."""

    def __init__(self, settings: Any, probe: Probe) -> None:
        super().__init__(settings)
        self.probe = probe

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        with self.probe.span("embed", items=len(texts)):
            return super().embed_documents(texts)


class GeneratorEmbedder:
    """The app's embedder as the generator is given it: the question it embeds again is a
    ``question`` span, the sentence texts missing from its cache a ``sentence_vectors`` span."""

    def __init__(self, inner: Embedder, probe: Probe) -> None:
        self.inner, self.probe = inner, probe

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    def embed_query(self, text: str) -> Vectors:
        with self.probe.span("question"):
            return self.inner.embed_query(text)

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        with self.probe.span("sentence_vectors", items=len(texts)):
            return self.inner.embed_documents(texts)

    def close(self) -> None:
        self.inner.close()


class ProfiledGenerator:
    """The extractive generator the app answers with, around a :class:`GeneratorEmbedder`."""

    def __init__(self, embedder: Embedder, probe: Probe) -> None:
        self.embedder = GeneratorEmbedder(embedder, probe)
        self.inner = ExtractiveGenerator(self.embedder)
        self.name, self.model = self.inner.name, self.inner.model

    def generate(self, question: str, blocks: list[ContextBlock], *,
                 prompt: PromptRef | None = None) -> Generation:
        return self.inner.generate(question, blocks, prompt=prompt)

    def stream(self, question: str, blocks: list[ContextBlock], *,
               prompt: PromptRef | None = None) -> Iterator[GenerationDelta]:
        return self.inner.stream(question, blocks, prompt=prompt)

    def empty_sentence_cache(self) -> None:
        """A fresh generator, same settings: COLD asks meet sentences it never embedded."""
        self.inner = ExtractiveGenerator(self.embedder, self.inner.settings)


def register_profiled_generator(probe: Probe) -> str:
    """Register the profiled generator (recording into ``probe``); returns the name to choose it by."""

    def create(embedder: Embedder | None) -> ProfiledGenerator:
        if embedder is None:
            raise ValueError("the profiled generator measures the app's own embedder: pass it")
        return ProfiledGenerator(embedder, probe)

    register(GENERATOR)(create)
    return GENERATOR


def digest(vector: Any) -> str:
    """A vector's bytes as float32, hashed: equal digests are bitwise-equal vectors."""
    return hashlib.sha1(np.asarray(vector, dtype=np.float32).tobytes()).hexdigest()


class RecordingStore(WeaviateStore):
    """The app's store: ``hybrid_calls`` keeps (query, vector digest, result ids) per hybrid query."""

    def __init__(self, collection: str) -> None:
        super().__init__(Settings(), collection=collection)  # the private home the bench set
        self.hybrid_calls: list[tuple[str, str, list[str]]] = []

    def hybrid(self, query: str, vector: Sequence[float], vector_name: str, **options: Any) -> Any:
        hits = super().hybrid(query, vector, vector_name, **options)
        self.hybrid_calls.append((query, digest(vector), [h.uuid for h in hits]))
        return hits


class TimedFeedbackStore(FeedbackStore):
    """The answer log: writing an answer (a sqlite commit) is a ``record_answer`` span."""

    def __init__(self, path: Any, probe: Probe) -> None:
        super().__init__(path)
        self.probe = probe

    def record_answer(self, answer: Any, question: str, arm: str | None = None) -> None:
        with self.probe.span("record_answer"):
            super().record_answer(answer, question, arm)
