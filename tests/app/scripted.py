"""The real app (create_app, Services, middleware, error handlers) with a scripted answerer in place
of retrieval, so no Weaviate is needed: the answer quotes the question back, and a stream can be told
to fail after its first delta. Shared by the app's unit tests and the SDK tests of stream failures."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from newsrag.retrieval.answer import (
    Answer,
    AnswerCitation,
    AnswerEvent,
    AnswerSource,
    RetrievedChunk,
)

PUBLISHED = datetime(2026, 9, 12, 21, 20, tzinfo=UTC)  # a date, as real citations carry: JSON must encode it


class ScriptedAnswerer:
    """Quotes the question back with one citation. ``fail_with`` makes a stream raise after its first
    delta; ``title``/``quote`` are what the cited (possibly hostile) article holds."""

    def __init__(self) -> None:
        self.fail_with: Exception | None = None
        self.title = "Harbor line opens"
        self.quote = "The harbor line opened on Monday."
        self.prompt_version = "n/a"  # what the generator says it rendered ("n/a": no template)
        self.calls: list[dict[str, Any]] = []  # the keyword arguments of each ask / ask_stream

    def answer(self, question: str) -> Answer:
        citation = AnswerCitation(n=1, chunk_id="c1", doc_id="d1", url="https://news.test/harbor",
                                  title=self.title, quote=self.quote, published_at=PUBLISHED, source_id="metro")
        source = AnswerSource(n=1, doc_id="d1", url=citation.url, title=self.title, quotes=[self.quote],
                              chunk_ids=["c1"], published_at=PUBLISHED, source_id="metro")
        return Answer(text=f"{self.quote} [1] (asked: {question})", citations=[citation], sources=[source],
                      prompt_name="news-answer", prompt_version=self.prompt_version, generator="scripted", model="none",
                      retrieval=[RetrievedChunk(chunk_id="c1", doc_id="d1", score=1.0)], trace_id=uuid.uuid4().hex)

    def ask(self, question: str, **kwargs: Any) -> Answer:
        self.calls.append(kwargs)
        return self.answer(question)

    def ask_stream(self, question: str, **kwargs: Any) -> Iterator[AnswerEvent]:
        self.calls.append(kwargs)
        answer = self.answer(question)
        yield AnswerEvent(type="meta", trace_id=answer.trace_id, retrieval=answer.retrieval)
        yield AnswerEvent(type="delta", trace_id=answer.trace_id, text=answer.text[:10])
        if self.fail_with is not None:
            raise self.fail_with
        yield AnswerEvent(type="delta", trace_id=answer.trace_id, text=answer.text[10:])
        yield AnswerEvent(type="done", trace_id=answer.trace_id, answer=answer)


class NoStore:
    """Stands in for Weaviate: the scripted answerer never searches."""

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        return None


class ConstEmbedder:
    model_id = "fake/const-4"
    dimensions = 4

    def embed_query(self, text: str) -> np.ndarray:
        return np.array([1, 0, 0, 0], dtype=np.float32)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return np.tile(np.array([1, 0, 0, 0], dtype=np.float32), (len(texts), 1))

    def close(self) -> None:
        return None


def build_app(tmp_path: Path, **overrides: Any) -> tuple[Any, Any]:
    from newsrag.app.main import create_app
    from newsrag.app.services import Services
    from newsrag.app.settings import AppSettings

    settings = AppSettings(feedback_db=str(tmp_path / "feedback.sqlite"),
                           prompt_registry=str(tmp_path / "registry.sqlite"), **overrides)
    services = Services(settings, store=NoStore(), embedder=ConstEmbedder())  # type: ignore[arg-type]
    services.answerer = ScriptedAnswerer()  # type: ignore[assignment]
    return create_app(settings, services), services
