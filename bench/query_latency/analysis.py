"""From the measured rounds to the figures: latency statistics per call, the overhead ratios, the
stage profiles of /v1/ask and /v1/search, and whether repeated identical calls return the same."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bench.harness.stats import ratio, summarize

if TYPE_CHECKING:
    from bench.query_latency.rounds import Rounds

STAGES = ("embed", "search", "rerank", "context", "generate", "total")
SEARCH_STAGES = ("embed_ms", "search_ms", "rerank_ms")
HybridCall = tuple[str, str, list[str]]  # (query, query-vector digest, result ids)


def results(rounds: Rounds, app_hybrid: list[HybridCall]) -> dict[str, Any]:
    """Everything one size reports from its rounds and the app's own hybrid calls."""
    lat = rounds.latency
    latency = {name: summarize(v) for name, v in lat.items()}
    latency["ask_all"] = summarize(lat["ask_cold"] + lat["ask_warm"])
    out: dict[str, Any] = {"latency_ms": latency, "determinism": repeatability(rounds, app_hybrid),
                           "mean_hybrid_hits": round(float(np.mean(rounds.hybrid_hits)), 1) if rounds.hybrid_hits else 0,
                           "ask_profile": {"cold": profile(rounds.ask_rows, True), "warm": profile(rounds.ask_rows, False)},
                           **warm_retrieval(rounds.ask_rows),
                           "ask_abstained_fraction": _share(sum(r["abstained"] for r in rounds.ask_rows),
                                                            len(rounds.ask_rows)),
                           "search_profile": search_profile(rounds.search_rows)}
    return {**out, **overhead(latency)}


def overhead(latency: dict[str, dict[str, float]]) -> dict[str, Any]:
    """``/v1/search p95 / (raw hybrid p95 + raw embed p95)``: what the app adds beyond the two calls
    it cannot avoid; also over only the requests that ran the model (no query-vector cache hit)."""
    unavoidable = latency["hybrid"]["p95"] + latency["embed"]["p95"]
    out = {"overhead_ratio": ratio(latency["search"]["p95"], unavoidable)}
    if latency["search_embedded"].get("n"):
        out["overhead_ratio_embedded_only"] = ratio(latency["search_embedded"]["p95"], unavoidable)
    out["search_over_hybrid"] = ratio(latency["search"]["p95"], latency["hybrid"]["p95"])
    return out


def _share(count: int, total: int) -> float:
    return round(count / max(1, total), 3)


def warm_retrieval(ask_rows: list[dict[str, Any]]) -> dict[str, float]:
    """Shares of WARM asks that retrieved other chunks than the COLD ask of their question (in
    order, and as a set): such an ask embeds new sentences, so it is not really warm."""
    first = {r["q"]: r["chunk_ids"] for r in reversed(ask_rows)}  # the cold ask's retrieval
    warm = [r for r in ask_rows if not r["cold"]]
    return {"warm_asks_with_other_retrieval": _share(sum(r["chunk_ids"] != first[r["q"]] for r in warm), len(warm)),
            "warm_asks_with_other_retrieval_set": _share(
                sum(set(r["chunk_ids"]) != set(first[r["q"]]) for r in warm), len(warm))}


def _changed(pairs: list[tuple[str, Any]]) -> str:
    """``differ/repeats``: each repeat of a question compared with its first call."""
    first: dict[str, Any] = {}
    repeats = differ = 0
    for q, value in pairs:
        if q in first:
            repeats += 1
            differ += value != first[q]
        else:
            first[q] = value
    return f"{differ}/{repeats}"


def determinism(raw_results: list[tuple[str, list[str]]], raw_vectors: list[tuple[str, str]],
                app_hybrid: list[HybridCall]) -> dict[str, Any]:
    """Do repeated identical requests return the same thing? Each repeat is compared with the first
    call for the same question. If hybrid results differ, a WARM /v1/ask meets other chunks than the
    COLD one did, and embeds their sentences again."""
    first_vec: dict[str, str] = {}
    for q, v, _ in app_hybrid:
        first_vec.setdefault(q, v)
    return {
        "raw hybrid, same vector: result list differs": _changed(list(raw_results)),
        "raw hybrid, same vector: result set differs": _changed([(q, set(ids)) for q, ids in raw_results]),
        "raw query embedding: vector differs (bitwise)": _changed(list(raw_vectors)),
        "app query vector differs (bitwise, search+ask)": _changed([(q, v) for q, v, _ in app_hybrid]),
        "app hybrid with an identical vector: result list differs": _changed(
            [(q, ids) for q, v, ids in app_hybrid if v == first_vec[q]]),
    }


def repeatability(rounds: Rounds, app_hybrid: list[HybridCall]) -> dict[str, Any]:
    out = determinism(rounds.raw_results, rounds.raw_vectors, app_hybrid)
    ties = rounds.raw_ties
    if ties:
        out["raw hybrid: calls with tied fused scores / tie at the limit"] = (
            f"{sum(t > 0 for t, _ in ties)}/{len(ties)} / {sum(c > 1 for _, c in ties)}/{len(ties)}")
    return out


def _generate_parts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Inside generate, as the generator's embedder saw it (probe keys: ``question`` = the question
    looked up again, ``embed@question`` = the model run for it on a query-cache miss,
    ``sentence_vectors`` / ``embed@sentence_vectors`` = sentence texts missing from its cache)."""
    g = [r["probe"] for r in rows]
    embedding = [x.get("question_ms", 0.0) + x.get("sentence_vectors_ms", 0.0) for x in g]
    return {
        "generate: question embedded again": summarize([x.get("embed@question_ms", 0.0) for x in g]),
        "generate: embed new sentence texts": summarize([x.get("embed@sentence_vectors_ms", 0.0) for x in g]),
        "generate: embedding (question + new sentences)": summarize(embedding),
        "generate: split + score + cache + select (rest)": summarize(
            [r["timings"].get("generate", 0.0) - e for r, e in zip(rows, embedding, strict=True)]),
    }


def profile(rows: list[dict[str, Any]], cold: bool) -> dict[str, Any]:
    """Where /v1/ask spends its time (the Answer's timings, the probes), for COLD or WARM asks."""
    rows = [r for r in rows if r["cold"] == cold]
    if not rows:
        return {}
    g = [r["probe"] for r in rows]
    return {
        "n": len(rows),
        **{stage: summarize([r["timings"].get(stage, 0.0) for r in rows]) for stage in STAGES},
        **_generate_parts(rows),
        "outside Answerer (HTTP, JSON, feedback log)": summarize(
            [r["client_ms"] - r["timings"].get("total", 0.0) for r in rows]),
        "  feedback.record_answer (sqlite commit)": summarize([x.get("record_answer_ms", 0.0) for x in g]),
        "client": summarize([r["client_ms"] for r in rows]),
        "sentence texts embedded per ask (cache misses)": round(
            float(np.mean([x.get("embed@sentence_vectors_items", 0) for x in g])), 1),
        "asks that ran the model on the question": f"{sum(x.get('embed_calls', 0) > 0 for x in g)}/{len(g)}",
        "embedder calls per ask": round(float(np.mean(
            [sum(v for k, v in x.items() if k.startswith("embed") and k.endswith("_calls")) for x in g])), 2),
        "citations per answer": round(float(np.mean([r["citations"] for r in rows])), 2),
        "abstained": round(sum(r["abstained"] for r in rows) / len(rows), 3),
    }


def search_profile(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Where /v1/search spends its time (the response's timings)."""
    if not rows:
        return {}
    return {
        "n": len(rows),
        **{stage: summarize([r["timings"].get(stage, 0.0) for r in rows]) for stage in SEARCH_STAGES},
        "outside Searcher (HTTP, JSON, routing)": summarize(
            [r["client_ms"] - sum(r["timings"].get(s, 0.0) for s in SEARCH_STAGES) for r in rows]),
        "client": summarize([r["client_ms"] for r in rows]),
    }
