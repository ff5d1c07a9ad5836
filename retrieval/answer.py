"""Question -> cited :class:`Answer`: search, assemble context, generate; framework-free.

``Answerer.ask`` returns the whole answer. ``Answerer.ask_stream`` yields :class:`AnswerEvent`
items: one ``meta`` (trace id and retrieval), ``delta`` pieces of text, and one ``done`` carrying
the final answer. Invalid questions raise :class:`newsrag.retrieval.search.InvalidQuery` - from ``ask`` at
once, from ``ask_stream`` at the first iteration, before any event.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.core.records import SearchFilters
from newsrag.core.settings import defaults
from newsrag.retrieval.citations import Renumberer, renumber_text
from newsrag.retrieval.context import ContextBlock, assemble_context
from newsrag.retrieval.generators.base import Generation, Generator, PromptRef
from newsrag.retrieval.search import Searcher, SearchResult
from newsrag.retrieval.temporal import QueryWindow, query_window


class AnswerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSRAG_ANSWER_", extra="ignore")

    context_tokens: int = Field(1500, ge=50, le=100_000)  # budget for assemble_context
    # Recency priors a question's words ask for (#14): "the latest ..." and "recent ..." weigh age
    # with these half-lives; a question without a cue uses the searcher's own
    # (NEWSRAG_SEARCH_RECENCY_HALF_LIFE_DAYS). A window the question names ("last week") filters.
    latest_half_life_days: float = Field(7.0, gt=0)
    recent_half_life_days: float = Field(30.0, gt=0)
    temporal: bool = True  # read time expressions in questions (False: only explicit since/until)


class AnswerCitation(BaseModel):
    n: int  # the [n] marker in the text: the article's number, 1…n in order of first use
    chunk_id: str
    doc_id: str
    url: str
    title: str
    quote: str  # the cited sentence or span
    published_at: datetime | None = None
    source_id: str = ""


class AnswerSource(BaseModel):
    """One cited article, numbered as its ``[n]`` markers, with every quote of it in the answer."""

    n: int
    doc_id: str
    url: str
    title: str
    published_at: datetime | None = None
    source_id: str = ""
    quotes: list[str] = Field(default_factory=list)
    chunk_ids: list[str] = Field(default_factory=list)


class RetrievedChunk(BaseModel):
    chunk_id: str
    doc_id: str
    score: float


class Answer(BaseModel):
    text: str
    citations: list[AnswerCitation] = Field(default_factory=list)  # one per quote, in order of use
    sources: list[AnswerSource] = Field(default_factory=list)  # one per cited article: sources[n-1] is [n]
    abstained: bool = False
    prompt_name: str
    prompt_version: str
    generator: str
    model: str
    retrieval: list[RetrievedChunk] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)  # embed, search, rerank, context, generate, total (ms)
    trace_id: str
    prompt_arm: str | None = None  # A/B arm ("a" active, "b" canary) when a split is running
    as_of: datetime | None = None  # the instant answered as of: the one asked for, else the moment of asking
    window: AnswerWindow | None = None  # the publication window searched and why (#14)


class AnswerWindow(BaseModel):
    """The window an answer searched: ``source`` "explicit" (since/until given), "question" (a phrase
    such as "last week", in ``expression``) or "none"; ``recency`` the prior the question asked for."""

    since: datetime | None = None
    until: datetime | None = None
    source: str = "none"
    expression: str | None = None
    recency: str = "default"


class AnswerEvent(BaseModel):
    type: Literal["meta", "delta", "done"]
    trace_id: str
    text: str = ""  # delta
    retrieval: list[RetrievedChunk] = Field(default_factory=list)  # meta
    answer: Answer | None = None  # done


@dataclass
class _Retrieved:
    trace_id: str
    started: float
    result: SearchResult
    blocks: list[ContextBlock]
    timings: dict[str, float]
    window: QueryWindow | None = None

    @property
    def chunks(self) -> list[RetrievedChunk]:
        return [RetrievedChunk(chunk_id=h.uuid, doc_id=h.chunk.doc_id, score=h.score)
                for h in self.result.hits]


class Answerer:
    def __init__(self, searcher: Searcher, generator: Generator, settings: AnswerSettings | None = None,
                 prompt: PromptRef | None = None) -> None:
        self.searcher = searcher
        self.generator = generator
        self.settings = settings or defaults(AnswerSettings)
        self.prompt = prompt

    def ask(self, question: str, *, filters: SearchFilters | None = None, top_k: int | None = None,
            prompt: PromptRef | None = None, as_of: datetime | None = None) -> Answer:
        """``prompt`` overrides the answerer's template for this call (the live switch / A/B arm).
        ``as_of``: answer as of that instant (see :meth:`Searcher.search`); None: now."""
        got = self._retrieve(question, filters, top_k, as_of)
        started = time.perf_counter()
        generation = self.generator.generate(got.result.query, got.blocks, prompt=prompt or self.prompt)
        return self._answer(got, generation, _ms(started), prompt)

    def ask_stream(self, question: str, *, filters: SearchFilters | None = None,
                   top_k: int | None = None, prompt: PromptRef | None = None,
                   as_of: datetime | None = None) -> Iterator[AnswerEvent]:
        got = self._retrieve(question, filters, top_k, as_of)
        yield AnswerEvent(type="meta", trace_id=got.trace_id, retrieval=got.chunks)
        started = time.perf_counter()
        final: Generation | None = None
        renumberer = Renumberer(frozenset(b.n for b in got.blocks))
        for event in self.generator.stream(got.result.query, got.blocks, prompt=prompt or self.prompt):
            text = renumberer.feed(event.text) if event.text else ""
            if text:
                yield AnswerEvent(type="delta", trace_id=got.trace_id, text=text)
            final = event.final or final
        if rest := renumberer.flush():
            yield AnswerEvent(type="delta", trace_id=got.trace_id, text=rest)
        if final is None:
            raise RuntimeError(f"generator {self.generator.name!r} ended its stream without a final generation")
        yield AnswerEvent(type="done", trace_id=got.trace_id, answer=self._answer(got, final, _ms(started), prompt))

    def _retrieve(self, question: str, filters: SearchFilters | None, top_k: int | None,
                  as_of: datetime | None = None) -> _Retrieved:
        trace_id = uuid.uuid4().hex
        started = time.perf_counter()
        filters, window = self._window(question, filters, as_of)
        result = self.searcher.search(question, filters=filters, top_k=top_k, as_of=as_of,
                                      half_life_days=window.half_life_days if window else None)
        timings = {k.removesuffix("_ms"): v for k, v in result.timings.items()}
        context_started = time.perf_counter()
        blocks = assemble_context(result.hits, max_tokens=self.settings.context_tokens)
        timings["context"] = _ms(context_started)
        return _Retrieved(trace_id, started, result, blocks, timings, window)

    def _window(self, question: str, filters: SearchFilters | None,
                as_of: datetime | None) -> tuple[SearchFilters | None, QueryWindow | None]:
        """The filters with the publication window the question names (explicit since/until win)."""
        if not self.settings.temporal:
            return filters, None
        given = filters or SearchFilters()
        half_lives = {"latest": self.settings.latest_half_life_days, "recent": self.settings.recent_half_life_days}
        window = query_window(question, as_of or datetime.now(UTC), given.published_after,
                              given.published_before, half_lives)
        if window.source != "question":
            return filters, window
        return replace(given, published_after=window.since, published_before=window.until), window

    def _answer(self, got: _Retrieved, generation: Generation, generate_ms: float,
                prompt: PromptRef | None = None) -> Answer:
        text, citations, sources = cite(generation, got.blocks)
        name, version = self._prompt_ref(generation, prompt)
        timings = {**got.timings, "generate": generate_ms, "total": _ms(got.started)}
        return Answer(text=text, citations=citations, sources=sources, abstained=generation.abstained,
                      prompt_name=name, prompt_version=version, generator=generation.generator or self.generator.name,
                      model=generation.model or self.generator.model, retrieval=got.chunks, timings=timings,
                      trace_id=got.trace_id, as_of=got.result.as_of, window=_answer_window(got.window))

    def _prompt_ref(self, generation: Generation | None = None, prompt: PromptRef | None = None) -> tuple[str, str]:
        if prompt is not None and str(getattr(generation, "prompt_name", "")):
            return prompt.name, prompt.version  # the registry's name and version, even when rendered inline
        rendered = (getattr(generation, "prompt_name", ""), getattr(generation, "prompt_version", ""))
        if rendered[0]:
            return rendered  # LLM generators record the template they actually rendered
        if self.prompt is not None:
            return self.prompt.name, self.prompt.version
        return self.generator.name, "n/a"  # extractive: no prompt ("extractive", "n/a")


def cite(generation: Generation, blocks: list[ContextBlock]) -> tuple[str, list[AnswerCitation], list[AnswerSource]]:
    """The generation's text and citations in reading numbers (see :mod:`newsrag.retrieval.citations`),
    and one source entry per cited article."""
    by_n = {b.n: b for b in blocks}
    text, numbers = renumber_text(generation.text, by_n)
    citations = []
    for c in generation.citations:
        block = by_n.get(c.n)
        n = numbers.setdefault(c.n, len(numbers) + 1)  # cited without a marker: numbered after the rest
        citations.append(AnswerCitation(n=n, chunk_id=c.chunk_id, doc_id=c.doc_id, url=c.url, title=c.title,
                                        quote=c.quote, published_at=block.published_at if block else None,
                                        source_id=block.source_id if block else ""))
    return text, citations, _sources(citations, numbers, by_n)


def _sources(citations: list[AnswerCitation], numbers: dict[int, int],
             by_n: dict[int, ContextBlock]) -> list[AnswerSource]:
    sources = {n: AnswerSource(n=n, doc_id=by_n[b].doc_id, url=by_n[b].url, title=by_n[b].title,
                               published_at=by_n[b].published_at, source_id=by_n[b].source_id)
               for b, n in numbers.items() if b in by_n}
    for c in citations:
        entry = sources.setdefault(c.n, AnswerSource(n=c.n, doc_id=c.doc_id, url=c.url, title=c.title,
                                                     published_at=c.published_at, source_id=c.source_id))
        if c.quote and c.quote not in entry.quotes:
            entry.quotes.append(c.quote)
        entry.chunk_ids.append(c.chunk_id)
    return [sources[n] for n in sorted(sources)]


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _answer_window(window: QueryWindow | None) -> AnswerWindow | None:
    if window is None:
        return None
    return AnswerWindow(since=window.since, until=window.until, source=window.source,
                        expression=window.expression, recency=window.recency)
