"""Search over the chunk store: validate the query, embed it, fetch candidates, weight by recency,
rerank, cut to ``top_k``.

``Searcher.search`` is framework-free and synchronous; it returns the hits with their original store
scores (recency weighting changes the score, reranking only changes the order) and per-stage timings.

Reranking is behind the small :class:`Reranker` protocol. :data:`RERANKERS` maps a name of the
``newsrag.rerankers`` entry-point group to a factory ``(SearchSettings, Embedder, Settings) -> Reranker``
(``Settings``: the configuration root, where a reranker reads its own settings; a factory without
that argument is still called): newsrag's own ``none``, ``mmr`` and ``cohere``
(``newsrag.retrieval.rerank_cohere``, imported on first use), or a plugin's.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.core.errors import NewsragError
from newsrag.core.plugins import PluginRegistry, call_factory
from newsrag.core.records import Hit, SearchFilters
from newsrag.core.settings import Settings
from newsrag.embeddings.base import Embedder, vector_name
from newsrag.store.analysis import AnalysisSettings, bm25_terms
from newsrag.store.protocol import ChunkSearch

MAX_QUERY_CHARS = 2000
MAX_TOP_K = 1000  # the library bound (benchmarks go deep); the app sets its own, lower one
UNDATED_DECAY = 0.5  # an undated chunk counts as one half-life old
Mode = Literal["hybrid", "vector", "bm25"]


class InvalidQuery(NewsragError):
    """The query (or a search parameter) cannot be searched: empty, too long, alpha out of range."""


class SearchSettings(BaseSettings):
    """How search fetches and orders candidates (``NEWSRAG_SEARCH_*``)."""

    model_config = SettingsConfigDict(env_prefix="NEWSRAG_SEARCH_", extra="ignore")

    alpha: float = Field(0.5, ge=0, le=1)  # 0 = BM25 only, 1 = vector only
    # relative_score / ranked: Weaviate fuses chunk by chunk. document: newsrag fuses here, with
    # BM25 evidence per document (see fuse_by_document and README, "Retrieval quality").
    fusion: Literal["relative_score", "ranked", "document"] = "relative_score"
    normalize: Literal["min_max", "z_score"] = "min_max"  # score normalisation of document fusion
    top_k: int = Field(8, ge=1, le=200)
    candidates: int = Field(30, ge=1, le=1000)  # fetched before reranking
    # BM25 searches the stemmed title + chunk + neighbours ("context", see newsrag.store.analysis);
    # tuned on BEIR SciFact train and checked on news (README, "Retrieval quality").
    query_properties: tuple[str, ...] = ("context",)
    rerank: str = "mmr"  # a name of the newsrag.rerankers group: none, mmr, cohere or a plugin's
    mmr_lambda: float = Field(0.7, ge=0, le=1)
    recency_half_life_days: float | None = Field(None, gt=0)
    min_score: float = 0.0


@dataclass
class SearchResult:
    query: str
    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)  # embed_ms, search_ms, rerank_ms
    query_vector: list[float] | None = None
    as_of: datetime | None = None  # the instant searched as of: the one asked for, else the call's now


# -- recency ---------------------------------------------------------------------------------

def as_datetime(value: Any) -> datetime | None:
    """A stored ``published_at`` (datetime or RFC 3339 string) as an aware UTC datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            return as_datetime(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def recency_decay(published: Any, half_life_days: float, now: datetime) -> float:
    when = as_datetime(published)
    if when is None:
        return UNDATED_DECAY
    age_days = max((now - when).total_seconds() / 86400.0, 0.0)
    return float(0.5 ** (age_days / half_life_days))


def apply_recency(hits: Sequence[Hit], half_life_days: float, now: datetime | None = None) -> list[Hit]:
    """``score * (0.7 + 0.3 * decay)``, decay = 0.5 ** (age / half-life); re-sorted, stable on ties."""
    now = now or datetime.now(UTC)
    weighted = [replace(h, score=h.score * (0.7 + 0.3 * recency_decay(h.chunk.published_at, half_life_days,
                                                                          now)))
                for h in hits]
    return sorted(weighted, key=lambda h: -h.score)


# -- rerankers -------------------------------------------------------------------------------

class Reranker(Protocol):
    def rerank(self, query: str, query_vector: Sequence[float] | None, hits: Sequence[Hit],
               top_k: int) -> list[Hit]: ...


class NoRerank:
    def rerank(self, query: str, query_vector: Sequence[float] | None, hits: Sequence[Hit],
               top_k: int) -> list[Hit]:
        return list(hits[:top_k])


_WORD = re.compile(r"[a-z0-9]+")


def word_set(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


class MMRReranker:
    """Maximal marginal relevance: ``lambda * relevance - (1 - lambda) * max similarity to the
    already selected hits``.

    Relevance is the store score scaled by the best candidate's (the fused hybrid score already is
    the best relevance signal there is; re-embedding 30 candidates per query would cost more than
    the search). Similarity is the cosine of ``Hit.vector`` when both hits carry one, else the
    Jaccard overlap of their word sets: redundancy in news is mostly lexical (syndicated copies,
    overlapping chunks, rewrites of a wire story), Jaccard catches exactly that and costs no model
    call. Ties keep the store order, so the result is deterministic.
    """

    def __init__(self, lambda_: float = 0.7) -> None:
        self.lambda_ = lambda_

    def rerank(self, query: str, query_vector: Sequence[float] | None, hits: Sequence[Hit],
               top_k: int) -> list[Hit]:
        if len(hits) <= 1:
            return list(hits[:top_k])
        best = max(h.score for h in hits)
        relevance = np.array([h.score / best if best > 0 else 0.0 for h in hits])
        similarity = similarity_matrix(hits)
        max_sim = np.zeros(len(hits))
        available = np.ones(len(hits), dtype=bool)
        chosen: list[int] = []
        for _ in range(min(top_k, len(hits))):
            gain = np.where(available, self.lambda_ * relevance - (1 - self.lambda_) * max_sim, -np.inf)
            pick = int(np.argmax(gain))  # the first of equal gains: ties keep the store order
            chosen.append(pick)
            available[pick] = False
            max_sim = np.maximum(max_sim, similarity[pick])
        return [hits[i] for i in chosen]


def similarity_matrix(hits: Sequence[Hit]) -> np.ndarray:
    """Pairwise similarity: the cosine of ``Hit.vector`` where both hits carry one, else the
    Jaccard overlap of their word sets (one sparse-ish matrix product instead of n^2 set operations)."""
    words = [word_set(f"{h.chunk.title} {h.chunk.text}") for h in hits]
    vocab = {w: i for i, w in enumerate(sorted(set().union(*words)))}
    member = np.zeros((len(hits), max(len(vocab), 1)), dtype=np.float32)
    for row, ws in enumerate(words):
        member[row, [vocab[w] for w in ws]] = 1.0
    inter = member @ member.T
    sizes = member.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - inter
    sim = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0).astype(np.float64)
    has_vec = [h.vector is not None for h in hits]
    if any(has_vec):
        dims = len(next(h.vector for h in hits if h.vector is not None) or [])
        vecs = np.array([h.vector if h.vector is not None else [0.0] * dims for h in hits], dtype=np.float64)
        norms = np.linalg.norm(vecs, axis=1)
        cos = (vecs @ vecs.T) / np.maximum(np.outer(norms, norms), 1e-12)
        both = np.outer(has_vec, has_vec)
        sim = np.where(both, cos, sim)
    return sim


def no_reranker(settings: SearchSettings, embedder: Embedder, root: Settings | None = None) -> Reranker:
    return NoRerank()


def mmr_reranker(settings: SearchSettings, embedder: Embedder, root: Settings | None = None) -> Reranker:
    return MMRReranker(settings.mmr_lambda)


def cohere_reranker(settings: SearchSettings, embedder: Embedder, root: Settings | None = None) -> Reranker:
    from newsrag.providers.cohere import CohereSettings
    from newsrag.retrieval.rerank_cohere import (  # imported on use: the cohere client
        CohereReranker,
        CohereRerankSettings,
    )

    root = root or Settings({})
    return CohereReranker(root.get(CohereRerankSettings), root.get(CohereSettings))


RerankerFactory = Callable[..., Reranker]  # (SearchSettings, Embedder, Settings); older ones without Settings
# The three above are newsrag's entry points of the group (pyproject.toml), as a plugin's would be.
RERANKERS: PluginRegistry[RerankerFactory] = PluginRegistry(
    "newsrag.rerankers", "reranker", setting="NEWSRAG_SEARCH_RERANK")


def create_reranker(settings: SearchSettings, embedder: Embedder, root: Settings | None = None) -> Reranker:
    """The reranker ``settings.rerank`` names; it reads its own settings from ``root`` (default:
    ``settings`` over the documented defaults)."""
    root = root or Settings({}, settings)
    return call_factory(RERANKERS.load(settings.rerank), settings, embedder, settings=root)


# -- search ----------------------------------------------------------------------------------

class Searcher:
    """Query -> ranked hits over one store with one embedder (whose named vector it searches).

    ``settings`` is the configuration root (search, query analysis and the reranker's own settings
    come from it) or just the search settings (the rest: the documented defaults); None: the defaults.
    """

    def __init__(self, store: ChunkSearch, embedder: Embedder, settings: SearchSettings | Settings | None = None,
                 reranker: Reranker | None = None) -> None:
        root = _root(settings)
        self.store = store
        self.embedder = embedder
        self.settings = root.get(SearchSettings)
        self.reranker = reranker or create_reranker(self.settings, embedder, root)
        self.vector_name = vector_name(embedder.model_id)
        self.analysis = root.get(AnalysisSettings)

    def search(self, query: str, *, filters: SearchFilters | None = None, top_k: int | None = None,
               alpha: float | None = None, mode: Mode = "hybrid", as_of: datetime | None = None,
               half_life_days: float | None = None) -> SearchResult:
        """``as_of``: search as of that instant (see :class:`SearchFilters`: only what was published
        and ingested by then), with recency counted from it; None: now, without that filter (nothing
        stored was ingested after now). ``half_life_days``: the recency prior for this search (a
        question asking for "the latest"), instead of ``NEWSRAG_SEARCH_RECENCY_HALF_LIFE_DAYS``."""
        query, top_k, alpha = self._validate(query, top_k, alpha, mode)
        now, filters = _as_of(as_of, filters)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        vector = None if mode == "bm25" else self.embedder.embed_query(query)
        timings["embed_ms"] = _ms(started)
        started = time.perf_counter()
        hits = self._fetch(query, vector, mode, alpha, max(self.settings.candidates, top_k), filters)
        timings["search_ms"] = _ms(started)
        started = time.perf_counter()
        hits = [h for h in hits if h.score >= self.settings.min_score]
        if half_life := half_life_days or self.settings.recency_half_life_days:
            hits = apply_recency(hits, half_life, now=now)
        qv = None if vector is None else [float(x) for x in vector]
        hits = self.reranker.rerank(query, qv, hits, top_k)
        timings["rerank_ms"] = _ms(started)
        return SearchResult(query=query, hits=hits, timings=timings, query_vector=qv, as_of=now)

    def keyword_query(self, query: str) -> str:
        """What BM25 is asked: the analysed (stemmed) query when it searches the analysed
        ``context`` property, else the query as typed."""
        if any(p.split("^")[0] == "context" for p in self.settings.query_properties):
            return bm25_terms(query, self.analysis.stemmer) or query
        return query

    def _validate(self, query: str, top_k: int | None, alpha: float | None,
                  mode: str) -> tuple[str, int, float]:
        if not isinstance(query, str) or not query.strip():
            raise InvalidQuery("the query is empty")
        query = query.strip()
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidQuery(f"the query is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}")
        alpha = self.settings.alpha if alpha is None else alpha
        if isinstance(alpha, bool) or not (isinstance(alpha, int | float) and 0.0 <= alpha <= 1.0):
            raise InvalidQuery(f"alpha must be between 0 and 1 (got {alpha!r})")
        top_k = self.settings.top_k if top_k is None else top_k
        if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
            raise InvalidQuery(f"top_k must be an integer between 1 and {MAX_TOP_K} (got {top_k!r})")
        if mode not in ("hybrid", "vector", "bm25"):
            raise InvalidQuery(f"mode must be hybrid, vector or bm25 (got {mode!r})")
        return query, top_k, float(alpha)

    def _fetch(self, query: str, vector: Any, mode: str, alpha: float, limit: int,
               filters: SearchFilters | None) -> list[Hit]:
        props = self.settings.query_properties or None
        query = self.keyword_query(query)
        if mode == "bm25":
            return list(self.store.bm25(query, limit=limit, filters=filters, query_properties=props))
        if mode == "vector":
            return list(self.store.near_vector(vector, self.vector_name, limit=limit, filters=filters))
        if self.settings.fusion == "document":
            keyword = self.store.bm25(query, limit=limit, filters=filters, query_properties=props)
            dense = self.store.near_vector(vector, self.vector_name, limit=limit, filters=filters)
            return fuse_by_document(keyword, dense, alpha, self.settings.normalize)[:limit]
        return list(self.store.hybrid(query, vector, self.vector_name, limit=limit, alpha=alpha,
                                      fusion=self.settings.fusion, filters=filters, query_properties=props))


def _as_of(as_of: datetime | None, filters: SearchFilters | None) -> tuple[datetime, SearchFilters | None]:
    """The instant a search is as of (a naive one is UTC; None: now, taken once here) and its filters:
    with ``as_of`` set when one was asked for."""
    if as_of is None:
        return datetime.now(UTC), filters
    if not isinstance(as_of, datetime):
        raise InvalidQuery(f"as_of must be a datetime (got {type(as_of).__name__})")
    as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    return as_of, replace(filters or SearchFilters(), as_of=as_of)


def _root(settings: SearchSettings | Settings | None) -> Settings:
    """The root a searcher reads from: the one given, else the defaults (with these search settings)."""
    if isinstance(settings, Settings):
        return settings
    return Settings({}) if settings is None else Settings({}, settings)


def _min_max(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    return {k: (v - low) / (high - low) if high > low else 1.0 for k, v in scores.items()}


def _z_score(scores: dict[str, float]) -> dict[str, float]:
    """Standard scores, shifted so the list's lowest is 0 (the value of an absent candidate)."""
    if not scores:
        return {}
    values = np.array(list(scores.values()), dtype=np.float64)
    std = float(values.std()) or 1.0
    z = (values - values.mean()) / std
    return dict(zip(scores, (z - z.min()).tolist(), strict=True))


NORMALIZERS = {"min_max": _min_max, "z_score": _z_score}


def fuse_by_document(keyword: Sequence[Hit], dense: Sequence[Hit], alpha: float,
                     normalize: str = "min_max") -> list[Hit]:
    """Relative-score fusion with keyword evidence per document::

        score(chunk) = alpha * dense(chunk) + (1 - alpha) * keyword(its document)

    ``dense`` is the chunk's vector similarity and ``keyword(document)`` the best BM25 score of any
    of the document's chunks, each min-max normalised over the candidates of its own list (absent:
    0), as Weaviate's relativeScoreFusion does per chunk. The words that make an article relevant
    are spread over it while a passage's embedding is about that passage, so a chunk inherits its
    article's keyword relevance and keeps its own semantic one. Ties keep dense order."""
    best_keyword: dict[str, float] = {}
    for h in keyword:
        best_keyword[h.doc_id] = max(best_keyword.get(h.doc_id, h.score), h.score)
    kw = NORMALIZERS[normalize](best_keyword)
    dn = NORMALIZERS[normalize]({h.uuid: h.score for h in dense})
    chunks = {h.uuid: h for h in [*dense, *keyword]}  # dense first, so ties keep dense order
    fused = [replace(h, score=alpha * dn.get(uid, 0.0) + (1 - alpha) * kw.get(h.doc_id, 0.0))
             for uid, h in chunks.items()]
    return sorted(fused, key=lambda h: -h.score)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
