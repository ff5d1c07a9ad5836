"""Searcher, rerankers, recency and the Answerer on a fake store: offline and fast."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from newsrag.core.errors import ConfigError, NewsragError
from newsrag.core.records import ChunkRecord, Hit, SearchFilters
from newsrag.retrieval.answer import Answerer, AnswerSettings
from newsrag.retrieval.generators.base import (
    Citation,
    Generation,
    GenerationDelta,
    PromptRef,
    stream_whole,
)
from newsrag.retrieval.search import (
    RERANKERS,
    InvalidQuery,
    MMRReranker,
    NoRerank,
    Searcher,
    SearchSettings,
    apply_recency,
    fuse_by_document,
    recency_decay,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 20, tzinfo=UTC)


class FakeEmbedder:
    model_id = "fake/const-4"
    dimensions = 4

    def __init__(self) -> None:
        self.queries: list[str] = []

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.tile(np.array([1, 0, 0, 0], dtype=np.float32), (len(texts), 1))

    def embed_query(self, text: str) -> np.ndarray:
        self.queries.append(text)
        return np.array([1, 0, 0, 0], dtype=np.float32)

    def close(self) -> None:
        pass


class FakeStore:
    """Records every search call and returns the canned hits, limited."""

    def __init__(self, hits: list[Hit]) -> None:
        self.hits = hits
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def hybrid(self, query: str, vector: Any, vector_name: str, **kw: Any) -> list[Hit]:
        self.calls.append(("hybrid", {"query": query, "vector_name": vector_name, **kw}))
        return self.hits[:kw["limit"]]

    def near_vector(self, vector: Any, vector_name: str, **kw: Any) -> list[Hit]:
        self.calls.append(("near_vector", {"vector_name": vector_name, **kw}))
        return self.hits[:kw["limit"]]

    def bm25(self, query: str, **kw: Any) -> list[Hit]:
        self.calls.append(("bm25", {"query": query, **kw}))
        return self.hits[:kw["limit"]]


def hit(name: str, score: float, text: str = "", published: datetime | None = None, doc: str | None = None,
        vector: list[float] | None = None) -> Hit:
    props = {"text": text or f"{name} distinct words {name}", "title": "", "doc_id": doc or name,
             "chunk_index": 0, "published_at": published, "url": f"https://x.test/{name}", "source_id": "s"}
    return Hit(uuid=name, score=score, chunk=ChunkRecord(**props), vector=vector)


def searcher(hits: list[Hit], **settings: Any) -> tuple[Searcher, FakeStore, FakeEmbedder]:
    store, embedder = FakeStore(hits), FakeEmbedder()
    return Searcher(store, embedder, SearchSettings(**settings)), store, embedder


# -- validation --------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "kw"), [
    ("", {}), ("   \n\t", {}), ("x" * 2001, {}), ("ok", {"alpha": -0.1}), ("ok", {"alpha": 1.5}),
    ("ok", {"alpha": float("nan")}), ("ok", {"top_k": 0}), ("ok", {"mode": "fuzzy"}),
])
def test_invalid_queries_raise_before_touching_the_store(query: str, kw: dict[str, Any]) -> None:
    s, store, embedder = searcher([hit("a", 1.0)])
    with pytest.raises(InvalidQuery):
        s.search(query, **kw)
    assert store.calls == [] and embedder.queries == []
    assert issubclass(InvalidQuery, NewsragError)


def test_a_2000_character_query_and_the_alpha_bounds_are_accepted() -> None:
    s, store, _ = searcher([hit("a", 1.0)])
    s.search("x" * 2000)
    s.search("ok", alpha=0.0)
    s.search("ok", alpha=1)
    assert [c[1]["alpha"] for c in store.calls] == [0.5, 0.0, 1.0]


# -- routing -----------------------------------------------------------------------------------

def test_hybrid_passes_settings_filters_and_candidate_count() -> None:
    s, store, embedder = searcher([hit(str(i), 1 - i / 100) for i in range(50)], candidates=30, top_k=5,
                                  fusion="ranked", rerank="none")
    filters = SearchFilters(source_ids=("metro",))
    result = s.search("  harbor line  ", filters=filters, alpha=0.3)
    kind, call = store.calls[0]
    assert kind == "hybrid" and call["limit"] == 30 and call["alpha"] == 0.3 and call["fusion"] == "ranked"
    assert call["filters"] is filters and call["query_properties"] == ("context",)
    assert call["vector_name"] == "v_fake_const_4" and call["query"] == "harbor line"
    assert embedder.queries == ["harbor line"] and result.query == "harbor line"
    assert [h.uuid for h in result.hits] == ["0", "1", "2", "3", "4"]
    assert set(result.timings) == {"embed_ms", "search_ms", "rerank_ms"}
    assert s.search("q", top_k=40).hits and store.calls[-1][1]["limit"] == 40  # never fewer than top_k


def test_bm25_mode_does_not_embed_and_vector_mode_uses_near_vector() -> None:
    s, store, embedder = searcher([hit("a", 1.0)])
    assert s.search("q", mode="bm25").query_vector is None
    assert embedder.queries == [] and store.calls[0][0] == "bm25"
    s.search("q", mode="vector")
    assert store.calls[1][0] == "near_vector" and embedder.queries == ["q"]


def test_min_score_drops_weak_hits() -> None:
    s, _, _ = searcher([hit("a", 0.9), hit("b", 0.2), hit("c", 0.05)], min_score=0.1, rerank="none")
    assert [h.uuid for h in s.search("q").hits] == ["a", "b"]


# -- recency -----------------------------------------------------------------------------------

def test_recency_orders_newer_above_older_for_equal_scores() -> None:
    old, new = hit("old", 0.8, published=NOW - timedelta(days=30)), hit("new", 0.8, published=NOW - timedelta(days=1))
    undated = hit("undated", 0.8)
    ranked = apply_recency([old, undated, new], half_life_days=7, now=NOW)
    assert [h.uuid for h in ranked] == ["new", "undated", "old"]
    assert ranked[0].score == pytest.approx(0.8 * (0.7 + 0.3 * 0.5 ** (1 / 7)))
    assert ranked[1].score == pytest.approx(0.8 * (0.7 + 0.3 * 0.5))  # undated: decay 0.5
    assert recency_decay("2026-11-13T00:00:00Z", 7, NOW) == pytest.approx(0.5)


def test_recency_is_applied_by_the_searcher_only_when_configured() -> None:
    hits = [hit("old", 0.8, published=NOW - timedelta(days=300)), hit("new", 0.8, published=datetime.now(UTC))]
    plain, _, _ = searcher(hits, rerank="none")
    weighted, _, _ = searcher(hits, rerank="none", recency_half_life_days=14)
    assert [h.uuid for h in plain.search("q").hits] == ["old", "new"]
    assert [h.uuid for h in weighted.search("q").hits] == ["new", "old"]


def test_bm25_gets_the_analysed_query_and_the_embedder_the_question_as_asked() -> None:
    s, store, embedder = searcher([hit("a", 1.0)], rerank="none")
    s.search("Why were the harbors CLOSING?")
    assert store.calls[0][1]["query"] == "whi were harbor close"
    assert embedder.queries == ["Why were the harbors CLOSING?"]
    raw, store, _ = searcher([hit("a", 1.0)], rerank="none", query_properties=("title", "text"))
    raw.search("Why were the harbors CLOSING?", mode="bm25")
    assert store.calls[0][1]["query"] == "Why were the harbors CLOSING?"  # raw fields get the raw query


# -- document-level fusion -----------------------------------------------------------------------


def test_document_fusion_gives_every_chunk_its_documents_best_keyword_score() -> None:
    keyword = [hit("a1", 9.0, doc="A"), hit("b0", 6.0, doc="B"), hit("a0", 3.0, doc="A"), hit("c0", 1.0, doc="C")]
    dense = [hit("b0", 0.9, doc="B"), hit("a0", 0.8, doc="A"), hit("d0", 0.5, doc="D")]
    fused = {h.uuid: h.score for h in fuse_by_document(keyword, dense, alpha=0.5)}
    # keyword per document: A 9 -> 1.0, B 6 -> 0.625, C 1 -> 0.0 (D absent: 0); dense: 0.9 -> 1, 0.8 -> 0.75, 0.5 -> 0
    assert fused == pytest.approx({"a0": 0.5 * 0.75 + 0.5 * 1.0, "a1": 0.5 * 0.0 + 0.5 * 1.0,
                                   "b0": 0.5 * 1.0 + 0.5 * 0.625, "c0": 0.0, "d0": 0.0})
    assert [h.uuid for h in fuse_by_document(keyword, dense, alpha=0.5)] == ["a0", "b0", "a1", "d0", "c0"]


def test_document_fusion_at_the_alpha_extremes_and_with_empty_lists() -> None:
    keyword = [hit("x", 2.0, doc="X"), hit("y", 1.0, doc="Y")]
    dense = [hit("y", 0.9, doc="Y"), hit("x", 0.1, doc="X")]
    assert [h.uuid for h in fuse_by_document(keyword, dense, alpha=1.0)] == ["y", "x"]
    assert [h.uuid for h in fuse_by_document(keyword, dense, alpha=0.0)] == ["x", "y"]
    assert [h.uuid for h in fuse_by_document([], dense, alpha=0.3)] == ["y", "x"]
    assert fuse_by_document([], [], alpha=0.5) == []
    single = fuse_by_document([hit("only", 4.0)], [], alpha=0.5)
    assert [(h.uuid, h.score) for h in single] == [("only", 0.5)]  # one candidate normalises to 1


def test_document_fusion_asks_the_store_for_both_lists_and_cuts_to_the_limit() -> None:
    hits = [hit(f"h{i}", 1.0 - i / 100, doc=f"D{i}") for i in range(50)]
    s, store, _ = searcher(hits, fusion="document", rerank="none", candidates=30, alpha=0.6)
    result = s.search("port strike", top_k=5)
    assert [c[0] for c in store.calls] == ["bm25", "near_vector"]
    assert all(c[1]["limit"] == 30 for c in store.calls)
    assert [h.uuid for h in result.hits] == ["h0", "h1", "h2", "h3", "h4"]


# -- reranking ---------------------------------------------------------------------------------

STORY = "dockworkers strike at port calder container terminals leaves thirty one ships waiting offshore"


def test_mmr_demotes_a_near_duplicate_and_is_deterministic() -> None:
    hits = [hit("orig", 1.0, STORY), hit("copy", 0.97, STORY + " reporting by wire"),
            hit("other", 0.8, "council approves harbor line light rail in seven to four vote")]
    mmr = MMRReranker(0.7)
    first = [h.uuid for h in mmr.rerank("q", None, hits, 3)]
    assert first == ["orig", "other", "copy"]
    assert all([h.uuid for h in mmr.rerank("q", None, hits, 3)] == first for _ in range(5))
    assert [h.uuid for h in NoRerank().rerank("q", None, hits, 3)] == ["orig", "copy", "other"]
    assert [h.uuid for h in MMRReranker(1.0).rerank("q", None, hits, 3)] == ["orig", "copy", "other"]
    assert [h.score for h in mmr.rerank("q", None, hits, 3)] == [1.0, 0.8, 0.97]  # scores untouched


def test_mmr_uses_hit_vectors_when_present() -> None:
    hits = [hit("a", 1.0, "alpha words", vector=[1, 0]), hit("b", 0.95, "beta words", vector=[1, 0.01]),
            hit("c", 0.8, "alpha words", vector=[0, 1])]
    # by text "c" duplicates "a"; by vector "b" does: vectors win
    assert [h.uuid for h in MMRReranker(0.7).rerank("q", None, hits, 3)] == ["a", "c", "b"]


def naive_mmr(hits: list[Hit], lambda_: float, top_k: int) -> list[str]:
    """MMR written out plainly, as the definition reads, to check the vectorised one against."""
    from newsrag.retrieval.search import word_set

    def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
        return len(a & b) / len(a | b) if a or b else 0.0

    best = max(h.score for h in hits)
    words = [word_set(f"{h.chunk.title} {h.chunk.text}") for h in hits]
    chosen: list[int] = []
    while len(chosen) < min(top_k, len(hits)):
        def gain(i: int) -> float:
            sim = max((jaccard(words[i], words[j]) for j in chosen), default=0.0)
            return lambda_ * hits[i].score / best - (1 - lambda_) * sim
        chosen.append(max((i for i in range(len(hits)) if i not in chosen), key=lambda i: (gain(i), -i)))
    return [hits[i].uuid for i in chosen]


def test_mmr_equals_the_textbook_definition_on_random_candidates() -> None:
    import random

    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(40)]
    for trial in range(30):
        hits = [hit(f"h{i}", round(rng.uniform(0.1, 1.0), 2), " ".join(rng.sample(vocab, rng.randint(3, 12))))
                for i in range(rng.randint(2, 25))]
        lam = rng.choice([0.0, 0.3, 0.7, 1.0])
        k = rng.randint(1, len(hits))
        assert [h.uuid for h in MMRReranker(lam).rerank("q", None, hits, k)] == naive_mmr(hits, lam, k), trial


def test_reranker_registry_and_unknown_reranker(monkeypatch: pytest.MonkeyPatch) -> None:
    assert {"none", "mmr", "cohere"} <= set(RERANKERS)
    s, _, _ = searcher([], rerank="mmr")
    assert isinstance(s.reranker, MMRReranker) and s.reranker.lambda_ == 0.7
    assert isinstance(searcher([], rerank="none")[0].reranker, NoRerank)
    monkeypatch.delitem(RERANKERS, "cohere")
    with pytest.raises(ConfigError, match="cohere"):
        searcher([], rerank="cohere")


# -- the Answerer over the fake store -----------------------------------------------------------

class EchoGenerator:
    """Cites the first sentence of block 1, or abstains without blocks."""

    name = "echo"
    model = "echo-1"

    def generate(self, question: str, blocks: list[Any], *, prompt: PromptRef | None = None) -> Generation:
        if not blocks:
            return Generation(text="none", abstained=True, model=self.model, generator=self.name)
        b = blocks[0]
        return Generation(text=f"{b.text} [1]", model=self.model, generator=self.name,
                          citations=[Citation(1, b.chunk_ids[0], b.doc_id, b.url, b.title, b.text)])

    def stream(self, question: str, blocks: list[Any], *, prompt: PromptRef | None = None
               ) -> Any:
        return stream_whole(self.generate(question, blocks, prompt=prompt))


def test_answerer_builds_the_contract_and_streams_the_same_answer() -> None:
    published = datetime(2026, 10, 1, tzinfo=UTC)
    s, _, _ = searcher([hit("a", 0.9, "Alpha text.", published=published), hit("b", 0.4, "Beta text.")])
    answerer = Answerer(s, EchoGenerator(), AnswerSettings())
    answer = answerer.ask("what?")
    assert answer.text == "Alpha text. [1]" and not answer.abstained
    assert (answer.prompt_name, answer.prompt_version, answer.generator, answer.model) == ("echo", "n/a", "echo",
                                                                                          "echo-1")
    c = answer.citations[0]
    assert (c.chunk_id, c.url, c.quote, c.published_at, c.source_id) == ("a", "https://x.test/a", "Alpha text.",
                                                                         published, "s")
    assert [(r.chunk_id, r.score) for r in answer.retrieval] == [("a", 0.9), ("b", 0.4)]
    assert set(answer.timings) == {"embed", "search", "rerank", "context", "generate", "total"}
    assert len(answer.trace_id) == 32
    events = list(answerer.ask_stream("what?"))
    assert [e.type for e in events][:1] == ["meta"] and events[-1].type == "done"
    assert events[0].retrieval == answer.retrieval and events[-1].answer is not None
    assert "".join(e.text for e in events if e.type == "delta") == events[-1].answer.text == answer.text
    assert events[-1].answer.trace_id == events[0].trace_id != answer.trace_id


def test_answerer_uses_the_prompt_ref_and_rejects_invalid_questions_before_any_event() -> None:
    s, store, _ = searcher([hit("a", 0.9)])
    answerer = Answerer(s, EchoGenerator(), AnswerSettings(), prompt=PromptRef("cited-answer", "3"))
    answer = answerer.ask("q")
    assert (answer.prompt_name, answer.prompt_version) == ("cited-answer", "3")
    stream = answerer.ask_stream(" ")
    with pytest.raises(InvalidQuery):
        next(stream)
    assert len(store.calls) == 1


def test_stream_without_final_generation_is_an_error() -> None:
    class Broken(EchoGenerator):
        def stream(self, question: str, blocks: list[Any], *, prompt: PromptRef | None = None) -> Any:
            yield GenerationDelta(text="partial")

    s, _, _ = searcher([hit("a", 0.9)])
    with pytest.raises(RuntimeError, match="final"):
        list(Answerer(s, Broken(), AnswerSettings()).ask_stream("q"))
