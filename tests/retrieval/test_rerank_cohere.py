"""The Cohere reranker against ``FakeProviderServer`` on 127.0.0.1: request shape, reordering,
retries, and the fallback to the search order when Cohere fails or answers nonsense."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from newsrag.core.errors import ConfigError
from newsrag.core.records import ChunkRecord, Hit
from newsrag.core.settings import Settings
from newsrag.providers.cohere import CohereSettings
from newsrag.retrieval.rerank_cohere import CohereReranker, CohereRerankSettings
from newsrag.retrieval.search import Reranker, Searcher, SearchSettings, create_reranker
from tests.embeddings import fake_providers as fp
from tests.embeddings.fake_providers import FakeProviderServer, Received, Reply

pytestmark = pytest.mark.unit

KEY = "co-test-0123456789abcdef"
PATH = "/v2/rerank"
QUERY = "When did the Harbor Line ferry open?"
Srv = FakeProviderServer
Waits = list[float]
_MADE: list[CohereReranker] = []


def cohere_rerank(scores: dict[int, float] | None = None) -> Callable[[Received], Reply]:
    """Responder for ``POST /v2/rerank``: ``top_n`` results, best first, by ``scores[index]``
    (default: the reverse of the input order)."""

    def respond(req: Received) -> Reply:
        body = req.json or {}
        n = len(body.get("documents", []))
        table = scores or {i: round(0.1 + 0.8 * i / max(n - 1, 1), 4) for i in range(n)}
        ranked = sorted(table.items(), key=lambda kv: -kv[1])[:body.get("top_n") or n]
        return 200, {}, {"id": "rr-1", "results": [{"index": i, "relevance_score": s} for i, s in ranked],
                         "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}}

    return respond


def hits(n: int = 4) -> list[Hit]:
    return [Hit(uuid=f"h{i}", score=1.0 - i / 10, chunk=ChunkRecord(
        title=f"Title {i}" if i != 2 else "", text=f"Chunk text number {i}.", doc_id=f"d{i}"))
        for i in range(n)]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("COHERE_API_KEY", "COHERE_BASE_URL", "CO_API_URL", "NEWSRAG_COHERE_RERANK_MODEL",
                 "NEWSRAG_COHERE_RERANK_MAX_RETRIES", "NEWSRAG_COHERE_RERANK_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    yield
    while _MADE:
        _MADE.pop().close()


@pytest.fixture
def server() -> Iterator[Srv]:
    with FakeProviderServer() as s:
        s.route(PATH, cohere_rerank())
        yield s


@pytest.fixture
def waits() -> Waits:
    return []


def make(server: Srv, sleep: Callable[[float], None] = time.sleep, **settings: Any) -> CohereReranker:
    reranker = CohereReranker(CohereRerankSettings(**{"timeout": 5.0, **settings}),
                              CohereSettings(api_key=SecretStr(KEY), base_url=server.url()), sleep=sleep)
    _MADE.append(reranker)
    return reranker


def test_request_shape_and_reordering_by_relevance(server: Srv, waits: Waits) -> None:
    reranker: Reranker = make(server, waits.append)
    got = reranker.rerank(QUERY, [0.1, 0.2], hits(4), 3)
    (req,) = server.requests
    assert (req.method, req.path, req.headers["authorization"]) == ("POST", PATH, f"Bearer {KEY}")
    assert req.json["model"] == "rerank-v3.5" and req.json["query"] == QUERY and req.json["top_n"] == 3
    assert req.json["documents"] == ["Title 0\nChunk text number 0.", "Title 1\nChunk text number 1.",
                                     "Chunk text number 2.", "Title 3\nChunk text number 3."]
    assert [h.uuid for h in got] == ["h3", "h2", "h1"] and [h.score for h in got] == [0.9, 0.6333, 0.3667]
    assert got[0].chunk == hits(4)[3].chunk


def test_top_n_is_capped_at_the_number_of_hits_and_tiny_inputs_send_nothing(server: Srv) -> None:
    reranker = make(server)
    assert [h.uuid for h in reranker.rerank(QUERY, None, hits(3), 8)] == ["h2", "h1", "h0"]
    assert server.requests[0].json["top_n"] == 3
    assert reranker.rerank(QUERY, None, hits(1), 5) == hits(1) and reranker.rerank(QUERY, None, [], 5) == []
    assert len(server.requests) == 1


@pytest.mark.parametrize("replies", [[fp.cohere_error(429, "slow down", **{"Retry-After": "1"})],
                                     [fp.cohere_error(500, "boom"), fp.cohere_error(503, "down")]],
                         ids=["429-retry-after", "5xx-twice"])
def test_transient_errors_are_retried(replies: list[Reply], server: Srv, waits: Waits) -> None:
    server.script(PATH, *replies)
    got = make(server, waits.append).rerank(QUERY, None, hits(4), 2)
    assert [h.uuid for h in got] == ["h3", "h2"] and len(server.requests) == len(replies) + 1
    assert len(waits) == len(replies) and (waits == [1.0] if len(replies) == 1 else True)


MALFORMED: dict[str, Reply | Callable[[Received], Reply]] = {
    "no-results": (200, {}, {"id": "rr-1"}),
    "index-out-of-range": (200, {}, {"results": [{"index": 9, "relevance_score": 0.9},
                                                 {"index": 0, "relevance_score": 0.5}]}),
    "duplicate": (200, {}, {"results": [{"index": 1, "relevance_score": 0.9}, {"index": 1, "relevance_score": 0.5}]}),
    "too-few": (200, {}, {"results": [{"index": 1, "relevance_score": 0.9}]}),
    "bad-score": (200, {}, {"results": [{"index": 1, "relevance_score": "high"}, {"index": 0, "relevance_score": 0.5}]}),
    "not-json": (200, {}, "<html>gateway</html>"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_reply_falls_back_to_the_search_order(case: str, server: Srv, waits: Waits,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    server.route(PATH, MALFORMED[case])
    with caplog.at_level(logging.WARNING, logger="newsrag.retrieval.rerank_cohere"):
        got = make(server, waits.append).rerank(QUERY, None, hits(4), 2)
    assert got == hits(4)[:2] and len(server.requests) == 1 and waits == []
    assert any("keeping the search order" in r.getMessage() and "malformed reply" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize(("reply", "requests"), [
    (fp.cohere_error(503, "down"), 3),  # max_retries=2: three attempts, then the fallback
    (fp.cohere_error(429, "busy", **{"Retry-After": "60"}), 1),  # longer than max_retry_wait: no wait
    (fp.cohere_error(401, f"bad key {KEY}"), 1),
    (fp.cohere_error(400, "too many documents"), 1),
])
def test_provider_failures_fall_back_without_failing_the_search(reply: Reply, requests: int, server: Srv,
                                                                waits: Waits, caplog: pytest.LogCaptureFixture) -> None:
    server.route(PATH, reply)
    with caplog.at_level(logging.WARNING, logger="newsrag.retrieval.rerank_cohere"):
        got = make(server, waits.append).rerank(QUERY, None, hits(4), 3)
    assert got == hits(4)[:3] and len(server.requests) == requests and all(w <= 5 for w in waits)
    assert caplog.records and all(KEY not in r.getMessage() for r in caplog.records)


def test_a_missing_key_is_a_config_error(server: Srv) -> None:
    reranker = CohereReranker(CohereRerankSettings(), CohereSettings())
    with pytest.raises(ConfigError, match="COHERE_API_KEY"):
        reranker.rerank(QUERY, None, hits(3), 2)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_COHERE_RERANK_MODEL", "rerank-english-v3.0")
    monkeypatch.setenv("COHERE_BASE_URL", "http://127.0.0.1:9")
    root = Settings()  # what an edge builds from the environment and hands to the searcher
    reranker = create_reranker(SearchSettings(rerank="cohere"), _Embedder(), root)  # type: ignore[arg-type]
    assert isinstance(reranker, CohereReranker) and reranker.model == "rerank-english-v3.0"
    assert reranker.provider_settings.base_url == "http://127.0.0.1:9"
    searcher = Searcher(_Store(), _Embedder(), root.replace(SearchSettings(rerank="cohere")))  # type: ignore[arg-type]
    assert isinstance(searcher.reranker, CohereReranker) and searcher.reranker.model == "rerank-english-v3.0"


def test_without_root_settings_the_defaults_apply_not_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_COHERE_RERANK_MODEL", "rerank-english-v3.0")
    monkeypatch.setenv("COHERE_API_KEY", KEY)
    for reranker in (CohereReranker(), create_reranker(SearchSettings(rerank="cohere"), _Embedder())):  # type: ignore[arg-type]
        assert isinstance(reranker, CohereReranker) and reranker.model == "rerank-v3.5"
        assert reranker.provider_settings.api_key is None


class _Store:
    def hybrid(self, query: str, vector: Any, vector_name: str, **kwargs: Any) -> list[Hit]:
        return hits(5)


class _Embedder:
    model_id = "fake/embedder"
    dimensions = 2

    def embed_query(self, text: str) -> list[float]:
        return [0.0, 1.0]


def test_a_searcher_with_the_cohere_reranker(server: Srv) -> None:
    searcher = Searcher(_Store(), _Embedder(), SearchSettings(rerank="none"), reranker=make(server))  # type: ignore[arg-type]
    result = searcher.search(QUERY, top_k=2)
    assert [h.uuid for h in result.hits] == ["h4", "h3"] and len(server.requests[0].json["documents"]) == 5
