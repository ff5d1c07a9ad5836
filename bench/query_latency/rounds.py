"""One collection size: build it, serve the app on it, warm up, then the measured rounds.

Each round takes the next question of a seeded shuffle and makes four calls in an order that
rotates every round: raw hybrid (``store.hybrid`` with the app's own search settings and a
precomputed query vector), raw query embedding (one model forward pass), ``GET /v1/search`` and
``POST /v1/ask`` over one keep-alive HTTP client.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness.cli import logger
from bench.harness.servers import AppServer
from bench.harness.stats import ms_since
from bench.harness.usage import Usage, UsageSample, peak_rss_mib
from bench.query_latency.analysis import results
from bench.query_latency.constants import WARMUP_ROUNDS
from bench.query_latency.corpus import Corpus, build_collection
from bench.query_latency.probes import (
    Probe,
    ProbedEmbedder,
    ProfiledGenerator,
    RecordingStore,
    TimedFeedbackStore,
    digest,
    register_profiled_generator,
)

CALLS = ("hybrid", "embed", "search", "ask")
log = logger("bench")
Call = Callable[[str], tuple[float, Any]]


@dataclass
class Shared:
    """What every size is measured with, made once per run."""

    server_pid: int
    corpus: Corpus
    pool_vectors: np.ndarray
    vname: str
    emb_settings: Any
    raw_embedder: Any
    query_vectors: dict[str, list[float]]
    questions: list[str]
    warmup: list[str]
    tmp: Path


def usage_figures(sample: UsageSample) -> dict[str, Any]:
    return {"wall_s": round(sample.wall_s, 2), "python_cpu_s": round(sample.cpu_s, 2),
            "weaviate_cpu_s": round(sample.server_cpu_s, 2), "other_processes_cores": round(sample.other_cores, 2),
            "loadavg_start": sample.loadavg_start, "loadavg_end": sample.loadavg_end}


def build(n: int, args: argparse.Namespace, shared: Shared, store: Any) -> dict[str, Any]:
    """The collection of ``n`` chunks, written and counted; fails if the count differs."""
    log(f"[{n}] building collection {store.name} ...")
    usage = Usage(shared.server_pid)
    t = time.perf_counter()
    built = build_collection(store, shared.corpus, n, shared.pool_vectors, shared.vname, args.noise)
    built["total_s"] = round(time.perf_counter() - t, 2)
    built["count"] = store.count()
    built["usage"] = usage_figures(usage.done())
    log(f"[{n}] built in {built['total_s']}s (insert {built['insert_chunks_per_s']}/s), count {built['count']}")
    if built["count"] != n:
        raise RuntimeError(f"collection holds {built['count']} objects, expected {n}")
    return built


# -- the app ---------------------------------------------------------------------------------------
@dataclass
class AppUnderTest:
    svc: Any  # newsrag.app.services.Services
    server: AppServer
    probe: Probe
    store: RecordingStore

    @property
    def generator(self) -> ProfiledGenerator:
        assert isinstance(self.svc.generator, ProfiledGenerator)
        return self.svc.generator

    def stop(self) -> None:
        started = self.server.started
        self.server.stop()  # the lifespan closes the app's store and answer log
        if not started:
            self.svc.close()


def start_app(n: int, collection: str, shared: Shared) -> AppUnderTest:
    """The real app on this collection (extractive generator, rate limit off), built from the
    recording objects of :mod:`.probes` and served on loopback."""
    from newsrag.app.main import create_app
    from newsrag.app.services import Services
    from newsrag.app.settings import AppSettings

    probe = Probe()
    feedback_db = str(shared.tmp / f"feedback-{n}.sqlite")
    settings = AppSettings(rate_limit_per_minute=0, feedback_db=feedback_db,
                           generator=register_profiled_generator(probe))
    store = RecordingStore(collection)
    svc = Services(settings, store=store, embedder=ProbedEmbedder(shared.emb_settings, probe))
    svc.feedback.close()  # the same answer log, timed
    svc.feedback = TimedFeedbackStore(feedback_db, probe)
    try:
        app = AppUnderTest(svc, AppServer(create_app(settings, svc)), probe, store)
    except BaseException:
        svc.close()
        raise
    try:
        app.server.start()
    except BaseException:
        app.stop()
        raise
    return app


# -- the calls -------------------------------------------------------------------------------------
class Calls:
    """The four calls of a round; each returns (client-side ms, what it returned)."""

    def __init__(self, app: AppUnderTest, raw_store: Any, shared: Shared, http: Any) -> None:
        self.app, self.raw_store, self.shared, self.http = app, raw_store, shared, http
        self.settings = app.svc.searcher.settings

    def hybrid(self, q: str) -> tuple[float, Any]:
        s = self.settings
        started = time.perf_counter()
        # The query BM25 sees is the analysed one, as the app's Searcher sends it.
        hits = self.raw_store.hybrid(self.app.svc.searcher.keyword_query(q), self.shared.query_vectors[q],
                                     self.shared.vname, limit=max(s.candidates, s.top_k), alpha=s.alpha,
                                     fusion=s.fusion, query_properties=list(s.query_properties) or None)
        return ms_since(started), hits

    def embed(self, q: str) -> tuple[float, Any]:
        # the model's forward pass for one query, as embed_query did before it kept a query cache
        started = time.perf_counter()
        vector = self.shared.raw_embedder.embed_documents([q])[0]
        return ms_since(started), vector

    def _http(self, send: Callable[[], Any], route: str) -> tuple[float, Any]:
        self.app.probe.take()
        started = time.perf_counter()
        r = send()
        ms = ms_since(started)
        if r.status_code != 200:
            raise RuntimeError(f"{route} {r.status_code}: {r.text[:300]}")
        return ms, {"body": r.json(), "probe": self.app.probe.take()}

    def search(self, q: str) -> tuple[float, Any]:
        return self._http(lambda: self.http.get("/v1/search", params={"q": q}), "/v1/search")

    def ask(self, q: str) -> tuple[float, Any]:
        return self._http(lambda: self.http.post("/v1/ask", json={"question": q}), "/v1/ask")

    def in_order(self, k: int) -> list[tuple[str, Call]]:
        """Round ``k``'s calls: the order rotates every round, so none always runs first."""
        names = CALLS[k % 4:] + CALLS[:k % 4]
        return [(name, getattr(self, name)) for name in names]


# -- the rounds ------------------------------------------------------------------------------------
@dataclass
class Rounds:
    """What the measured rounds returned, kept for :func:`.analysis.results`."""

    latency: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in (
        "hybrid", "embed", "search", "search_embedded", "search_cached_vector", "ask_cold", "ask_warm")})
    ask_rows: list[dict[str, Any]] = field(default_factory=list)
    search_rows: list[dict[str, Any]] = field(default_factory=list)
    asked: set[str] = field(default_factory=set)
    hybrid_hits: list[int] = field(default_factory=list)
    raw_results: list[tuple[str, list[str]]] = field(default_factory=list)
    raw_vectors: list[tuple[str, str]] = field(default_factory=list)
    raw_ties: list[tuple[int, int]] = field(default_factory=list)  # (tied scores, ties at the limit)

    def record(self, name: str, q: str, ms: float, out: Any) -> None:
        {"ask": self._ask, "search": self._search, "hybrid": self._hybrid, "embed": self._embed}[name](q, ms, out)

    def _ask(self, q: str, ms: float, out: Any) -> None:
        cold = q not in self.asked
        self.asked.add(q)
        self.latency["ask_cold" if cold else "ask_warm"].append(ms)
        body = out["body"]
        self.ask_rows.append({"q": q, "cold": cold, "client_ms": ms, "timings": body["timings"],
                              "chunk_ids": [c["chunk_id"] for c in body["retrieval"]], "probe": out["probe"],
                              "abstained": body["abstained"], "citations": len(body["citations"]),
                              "retrieved": len(body["retrieval"])})

    def _search(self, q: str, ms: float, out: Any) -> None:
        self.latency["search"].append(ms)
        embedded = out["probe"].get("embed_calls", 0) > 0
        self.latency["search_embedded" if embedded else "search_cached_vector"].append(ms)
        self.search_rows.append({"client_ms": ms, "timings": out["body"]["timings"],
                                 "hits": len(out["body"]["hits"]), "embedded": embedded})

    def _hybrid(self, q: str, ms: float, hits: Any) -> None:
        self.latency["hybrid"].append(ms)
        self.hybrid_hits.append(len(hits))
        self.raw_results.append((q, [h.uuid for h in hits]))
        scores = [round(h.score, 6) for h in hits]
        self.raw_ties.append((len(scores) - len(set(scores)), scores.count(scores[-1]) if scores else 0))

    def _embed(self, q: str, ms: float, vector: Any) -> None:
        self.latency["embed"].append(ms)
        self.raw_vectors.append((q, digest(vector)))


def warm_up(calls: Calls, questions: list[str]) -> None:
    """Every call on other questions than the measured ones, ``WARMUP_ROUNDS`` rounds."""
    for k in range(WARMUP_ROUNDS):
        q = questions[k % len(questions)]
        for _, call in calls.in_order(k):
            call(q)


def measure_rounds(n: int, args: argparse.Namespace, shared: Shared, calls: Calls,
                   app: AppUnderTest) -> tuple[Rounds, dict[str, Any]]:
    """``args.queries`` rounds, each question ``queries / len(questions)`` times in a seeded order."""
    schedule = [shared.questions[k % len(shared.questions)] for k in range(args.queries)]
    random.Random(f"{args.seed}:schedule:{n}").shuffle(schedule)
    rounds = Rounds()
    app.store.hybrid_calls.clear()  # measured rounds only
    usage = Usage(shared.server_pid)
    log(f"[{n}] measuring {args.queries} rounds x 4 calls ({len(set(schedule))} distinct questions) ...")
    for k, q in enumerate(schedule):
        for name, call in calls.in_order(k):
            ms, out = call(q)
            rounds.record(name, q, ms, out)
        if (k + 1) % 50 == 0:
            log(f"[{n}]   {k + 1}/{len(schedule)} rounds")
    return rounds, usage_figures(usage.done())


def search_settings(s: Any) -> dict[str, Any]:
    return {"alpha": s.alpha, "fusion": s.fusion, "candidates": s.candidates, "top_k": s.top_k,
            "query_properties": list(s.query_properties), "rerank": s.rerank}


def run_size(n: int, args: argparse.Namespace, shared: Shared) -> dict[str, Any]:
    """Build a collection of ``n`` chunks, measure it, drop it."""
    import httpx

    from newsrag.core.settings import Settings
    from newsrag.store.weaviate import WeaviateStore

    collection = f"BenchQuery{n}x{uuid.uuid4().hex[:8]}"
    res: dict[str, Any] = {"chunks": n, "collection": collection}
    build_store, raw_store = WeaviateStore(Settings(), collection=collection), WeaviateStore(Settings(), collection=collection)
    app: AppUnderTest | None = None
    try:
        res["build"] = build(n, args, shared, build_store)
        app = start_app(n, collection, shared)
        log(f"[{n}] app on {app.server.url}")
        res["search_settings"] = search_settings(app.svc.searcher.settings)
        with httpx.Client(base_url=app.server.url, timeout=300, trust_env=False) as http:
            calls = Calls(app, raw_store, shared, http)
            warm_up(calls, shared.warmup)
            app.generator.empty_sentence_cache()  # cold = sentences never embedded by this app
            res["sentence_cache_cleared_after_warmup"] = True
            rounds, res["measure_usage"] = measure_rounds(n, args, shared, calls, app)
        res.update(results(rounds, app.store.hybrid_calls))
    finally:
        if app is not None:
            app.stop()
        _drop(build_store, n)
        raw_store.close()
    res["peak_rss_mib"] = peak_rss_mib()
    res["weaviate_peak_rss_mib"] = peak_rss_mib(shared.server_pid)
    return res


def _drop(store: Any, n: int) -> None:
    try:
        if store.exists():
            store.drop()
    except Exception as exc:  # noqa: BLE001 - report, keep cleaning up
        log(f"[{n}] could not drop {store.name}: {exc}")
    store.close()
