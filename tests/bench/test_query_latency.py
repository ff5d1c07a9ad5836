"""bench/query_latency (bench/query.py split into parts): it measures through public names only,
its probes tell the generator's question lookups from its sentence embeddings, a fresh generator
makes the next asks COLD, and the figures are computed from the rounds as documented."""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from bench.query_latency.analysis import determinism, overhead, profile, warm_retrieval
from bench.query_latency.corpus import Corpus, derived_vectors
from bench.query_latency.probes import (
    GENERATOR,
    GeneratorEmbedder,
    Probe,
    ProfiledGenerator,
    register_profiled_generator,
)
from bench.query_latency.synthetic import TOPICS
from newsrag.retrieval.context import ContextBlock
from newsrag.retrieval.generators import create_generator

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "bench" / "query_latency"


def private_reaches(path: Path) -> list[str]:
    """``obj._name`` on anything but self, names imported with a leading underscore, setattr calls."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id == "self")):
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
        elif isinstance(node, ast.ImportFrom):
            found += [f"{path.name}:{node.lineno} import {a.name}" for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
            found.append(f"{path.name}:{node.lineno} setattr")
    return found


def test_the_query_benchmark_reaches_no_private_name() -> None:
    files = sorted(PACKAGE.glob("*.py"))
    assert len(files) >= 8
    assert [hit for f in files for hit in private_reaches(f)] == []


def test_the_private_name_check_sees_a_reach(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from x import _hidden\nwith gen._lock:\n    gen._cache.clear()\nsetattr(gen, 'a', 1)\n"
                   "self._mine = 1\nx.__dict__\n")
    assert sorted(private_reaches(bad)) == ["bad.py:1 import _hidden", "bad.py:2 ._lock", "bad.py:3 ._cache",
                                            "bad.py:4 setattr"]


class FakeEmbedder:
    """Deterministic 8-dimension vectors; a query cache like LocalEmbedder's, model runs recorded."""

    model_id = "fake/8"
    dimensions = 8

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.queries: dict[str, np.ndarray] = {}

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        with self.probe.span("embed", items=len(texts)):
            rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:32], dtype=np.uint8)[:8] for t in texts]
            a = np.asarray(rows, dtype=np.float32).reshape(len(texts), 8) + 1.0
            return a / np.linalg.norm(a, axis=1, keepdims=True)

    def embed_query(self, text: str) -> np.ndarray:
        if text not in self.queries:
            self.queries[text] = self.embed_documents([text])[0]
        return self.queries[text].copy()

    def close(self) -> None:
        pass


def test_probe_records_spans_nested_under_the_innermost_outer_one() -> None:
    probe = Probe()
    with probe.span("question"), probe.span("embed", items=1):
        pass
    with probe.span("embed", items=3):
        pass
    taken = probe.take()
    assert taken["embed@question_calls"] == 1 and taken["embed@question_items"] == 1
    assert taken["embed_calls"] == 1 and taken["embed_items"] == 3 and taken["question_calls"] == 1
    assert "question_items" not in taken and probe.take() == {}


def test_the_generators_embedder_tells_question_lookups_from_sentence_embeddings() -> None:
    probe = Probe()
    embedder = GeneratorEmbedder(FakeEmbedder(probe), probe)
    embedder.embed_query("q?")
    embedder.embed_query("q?")  # the query cache: no model run the second time
    embedder.embed_documents(["a", "b"])
    taken = probe.take()
    assert taken["question_calls"] == 2 and taken["embed@question_calls"] == 1
    assert taken["sentence_vectors_items"] == 2 and taken["embed@sentence_vectors_items"] == 2
    assert (embedder.model_id, embedder.dimensions) == ("fake/8", 8)


@pytest.fixture(autouse=True)
def _unregister_the_profiled_generator() -> Iterator[None]:
    """The profiled generator is registered in process; other tests list the generators' names."""
    from newsrag.retrieval.generators import GENERATORS

    yield
    if GENERATOR in GENERATORS:
        del GENERATORS[GENERATOR]


BLOCK = ContextBlock(
    n=1, doc_id="d1", url="https://harbor.example/a", title="Harbor Line extension delayed", published_at=None,
    source_id="s", chunk_ids=("c1",), score=1.0,
    text="The Harbor Line extension in Portmere is now expected to open in March 2027. "
         "Construction of the Harbor Line has cost $4.1 billion so far, officials said on Monday.")


def test_a_fresh_generator_embeds_the_sentences_again_as_a_cold_ask_does() -> None:
    probe = Probe()
    generator = create_generator(register_profiled_generator(probe), FakeEmbedder(probe))
    assert isinstance(generator, ProfiledGenerator) and generator.name == "extractive"
    question = "When will the Harbor Line extension in Portmere open?"

    def sentences_embedded() -> float:
        probe.take()
        generator.generate(question, [BLOCK])
        return probe.take().get("embed@sentence_vectors_items", 0)

    cold = sentences_embedded()
    assert cold > 0 and sentences_embedded() == 0  # warm: every sentence vector from the cache
    settings = generator.inner.settings
    generator.empty_sentence_cache()
    assert generator.inner.settings is settings and sentences_embedded() == cold


def test_the_profiled_generator_needs_the_apps_embedder() -> None:
    register_profiled_generator(Probe())
    with pytest.raises(ValueError, match="app's own embedder"):
        create_generator(GENERATOR, None)


def ask_row(q: str, cold: bool, chunk_ids: list[str], generate: float, probe: dict[str, float]) -> dict[str, object]:
    return {"q": q, "cold": cold, "client_ms": generate + 20.0, "chunk_ids": chunk_ids, "probe": probe,
            "abstained": False, "citations": 2, "retrieved": len(chunk_ids),
            "timings": {"embed": 5.0, "search": 8.0, "rerank": 1.0, "context": 1.0, "generate": generate,
                        "total": generate + 15.0}}


def test_the_ask_profile_splits_generate_into_embedding_and_the_rest() -> None:
    rows = [ask_row("a", True, ["1", "2"], 100.0, {"question_ms": 1.0, "sentence_vectors_ms": 79.0,
                                                    "embed@sentence_vectors_ms": 78.0,
                                                    "embed@sentence_vectors_items": 18, "embed_calls": 1,
                                                    "embed@sentence_vectors_calls": 1, "record_answer_ms": 2.0}),
            ask_row("a", False, ["2", "1"], 10.0, {"question_ms": 1.0}),
            ask_row("a", False, ["1", "2"], 12.0, {"question_ms": 1.0})]
    cold, warm = profile(rows, True), profile(rows, False)
    assert cold["generate: embedding (question + new sentences)"]["mean"] == 80.0
    assert cold["generate: split + score + cache + select (rest)"]["mean"] == 20.0
    assert cold["generate: embed new sentence texts"]["mean"] == 78.0
    assert cold["sentence texts embedded per ask (cache misses)"] == 18.0
    assert cold["asks that ran the model on the question"] == "1/1" and cold["embedder calls per ask"] == 2.0
    assert cold["outside Answerer (HTTP, JSON, feedback log)"]["mean"] == 5.0
    assert warm["n"] == 2 and warm["generate: split + score + cache + select (rest)"]["mean"] == 10.0
    assert warm["asks that ran the model on the question"] == "0/2"
    assert profile(rows[:1], False) == {}
    assert warm_retrieval(rows) == {"warm_asks_with_other_retrieval": 0.5, "warm_asks_with_other_retrieval_set": 0.0}


def test_repeats_are_compared_with_the_first_call_of_their_question() -> None:
    out = determinism([("a", ["1", "2"]), ("a", ["2", "1"]), ("b", ["3"]), ("b", ["3"])],
                      [("a", "v1"), ("a", "v1")],
                      [("a", "x", ["1"]), ("a", "y", ["2"]), ("a", "x", ["9"])])
    assert out["raw hybrid, same vector: result list differs"] == "1/2"
    assert out["raw hybrid, same vector: result set differs"] == "0/2"
    assert out["raw query embedding: vector differs (bitwise)"] == "0/1"
    assert out["app query vector differs (bitwise, search+ask)"] == "1/2"  # y differs from a's first, x
    assert out["app hybrid with an identical vector: result list differs"] == "1/1"


def test_the_overhead_ratio_is_search_over_what_the_app_cannot_avoid() -> None:
    latency = {"hybrid": {"n": 5, "p95": 10.0}, "embed": {"n": 5, "p95": 15.0}, "search": {"n": 5, "p95": 30.0},
               "search_embedded": {"n": 0}}
    assert overhead(latency) == {"overhead_ratio": 1.2, "search_over_hybrid": 3.0}
    latency["search_embedded"] = {"n": 2, "p95": 35.0}
    assert overhead(latency)["overhead_ratio_embedded_only"] == 1.4


def test_the_synthetic_collection_is_reproducible_and_news_sized() -> None:
    first, again = Corpus(7, 30, None), Corpus(7, 30, None)
    assert first.pool == 3 * len(TOPICS)  # a whole number of topic cycles
    for i in (0, 1, first.pool + 4, 5000):
        (props, text), (props2, text2) = first.chunk(i), again.chunk(i)
        assert text == text2 and props["doc_id"] == props2["doc_id"] and props["url"] == props2["url"]
        assert 150 <= len(props["text"].split()) <= 205 and props["title"] in text
    derived = first.pool + 4
    assert first.parent(derived) == 4 and first.chunk(derived)[0]["tags"] == first.chunk(4)[0]["tags"]


def test_pool_chunks_keep_their_vector_and_the_others_are_noisy_unit_copies() -> None:
    corpus = Corpus(7, 30, None)
    pool = np.random.default_rng(0).normal(size=(corpus.pool, 16)).astype(np.float32)
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    vectors = derived_vectors(corpus, pool, corpus.pool - 2, corpus.pool + 2, noise=0.02)
    assert np.allclose(vectors[:2], pool[corpus.pool - 2:], atol=1e-6)  # normalized again, no noise
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert 0.9 < float(vectors[2] @ pool[0]) < 1.0 and 0.9 < float(vectors[3] @ pool[1]) < 1.0
