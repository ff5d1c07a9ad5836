"""Hand-built evaluation runs for the report tests: plain data, no runner, no history store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from newsrag.evaluation.models import (
    Aggregate,
    EvalRun,
    IndexSnapshot,
    MetricValue,
    QuestionResult,
    RetrievalConfig,
)

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
OFFLINE = {"hit@k", "recall@k", "mrr", "ndcg@k", "faithfulness", "answer_relevance",
           "correctness", "citation_precision", "abstention_accuracy", "latency_ms"}


def method_of(metric: str) -> str:
    return "judge:gpt-judge-1" if metric.endswith("_judge") else f"offline:{metric}"


def agg(mean: float | None, half: float | None = 0.05, n: int = 12, metric: str = "") -> Aggregate:
    if mean is None or half is None:
        return Aggregate(mean=mean, n=n, method=method_of(metric))
    return Aggregate(mean=mean, low=mean - half, high=mean + half, n=n, n_undefined=1,
                     method=method_of(metric))


def chunk(n: int, relevant: bool | None, *, title: str | None = None, url: str | None = None,
          score: float = 0.5, text: str = "") -> dict[str, Any]:
    return {"chunk_id": f"c{n}", "doc_id": f"d{n}", "url": url or f"https://news.example/a/{n}",
            "title": title or f"Article {n}", "score": score, "relevant": relevant,
            "text": text or f"Snippet of article {n}: the council voted 7-4 to approve the budget."}


def question(case_id: str, *, text: str | None = None, metrics: dict[str, float | None] | None = None,
             tags: list[str] | None = None, type: str = "fact", answer: str = "An answer [1].",
             abstained: bool = False, error: str | None = None, failure_reason: str | None = None,
             retrieved: list[dict[str, Any]] | None = None, latency_ms: float = 900.0,
             answerable: bool = True) -> QuestionResult:
    return QuestionResult(
        case_id=case_id, question=text or f"What happened in case {case_id}?", tags=tags or ["politics"],
        type=type, answerable=answerable, answer=answer, abstained=abstained,
        retrieved=retrieved if retrieved is not None else [chunk(1, True, score=0.91), chunk(2, False, score=0.42)],
        metrics={m: MetricValue(value=v, method=method_of(m)) for m, v in (metrics or {}).items()},
        latency_ms=latency_ms, error=error, failure_reason=failure_reason)


def make_run(run_id: str, started_at: datetime, means: dict[str, float | None], *,
             results: list[QuestionResult] | None = None, status: str = "ok",
             prompt_version: str = "3", prompt_arm: str | None = None,
             per_tag: dict[str, dict[str, Aggregate]] | None = None,
             per_type: dict[str, dict[str, Aggregate]] | None = None,
             regressions: list[str] | None = None, judge: str | None = "gpt-judge-1",
             ci: bool = True) -> EvalRun:
    return EvalRun(
        run_id=run_id, started_at=started_at, finished_at=started_at + timedelta(seconds=95),
        status=status, golden_path="examples/news/golden.jsonl",
        golden_sha256="3f7a9c1e5b2d4f6a8c0e1b3d5f7a9c1e5b2d4f6a8c0e1b3d5f7a9c1e5b2d4f6a",
        sample_size=None,
        index=IndexSnapshot(collection="NewsChunks", object_count=18234,
                            last_ingest_at=started_at - timedelta(hours=2), vector_name="minilm"),
        prompt_name="news-answer", prompt_version=prompt_version, prompt_arm=prompt_arm,
        generator="extractive", model="local-extractive-1", retrieval=RetrievalConfig(),
        judge=judge, results=results or [],
        aggregates={m: agg(v, 0.05 if ci and m != "latency_ms" else 80.0 if ci else None, metric=m)
                    for m, v in means.items()},
        per_tag=per_tag or {}, per_type=per_type or {},
        timings={"retrieval_s": 12.5, "generation_s": 61.0, "judge_s": 20.25},
        regressions=regressions or [])


# -- the scenario both report test modules use -------------------------------------------------

XSS = "<script>alert(1)</script> Who won the vote?"
CURRENT = {"hit@k": 0.80, "recall@k": 0.72, "mrr": 0.61, "ndcg@k": 0.64, "faithfulness": 0.75,
           "answer_relevance": 0.81, "correctness": 0.58, "citation_precision": 0.88,
           "abstention_accuracy": 0.90, "latency_ms": 1200.0, "faithfulness_judge": 0.79,
           "custom_freshness": 0.42}
OLDER = {"hit@k": 0.90, "faithfulness": 0.60, "abstention_accuracy": 0.85, "latency_ms": 900.0,
         "ndcg@k": 0.70, "mrr": 0.66}
PREVIOUS = {"hit@k": 0.70, "faithfulness": 0.70, "abstention_accuracy": 0.95, "latency_ms": 1500.0,
            "ndcg@k": 0.60, "mrr": 0.58}


def current_results() -> list[QuestionResult]:
    hostile = chunk(3, False, title="<b>Hostile</b> title", url="javascript:alert(3)",
                    text="<img src=x onerror=alert(4)> text")
    return [
        question("q-ok-1", metrics={"faithfulness": 0.95, "ndcg@k": 0.90, "hit@k": 1.0}),
        question("q-low-faith", metrics={"faithfulness": 0.20, "ndcg@k": 0.80, "hit@k": 1.0},
                 tags=["economy"], answer="The budget was approved by a 9-2 vote [2]."),
        question("q-fail", metrics={"faithfulness": 0.90, "ndcg@k": 0.0, "hit@k": 0.0},
                 failure_reason="no relevant chunk in the top 8", type="multi-hop",
                 retrieved=[chunk(4, False, score=0.33), chunk(5, False, score=0.31)]),
        question("q-error", metrics={"faithfulness": None, "ndcg@k": None}, error="judge timeout after 30 s",
                 answer="", retrieved=[]),
        question("q-xss", text=XSS, metrics={"faithfulness": 0.40, "ndcg@k": 0.50, "hit@k": 1.0},
                 answer="Evil <img src=x onerror=alert(2)> answer", retrieved=[hostile, chunk(6, True)],
                 tags=["sports"]),
        question("q-tie-a", metrics={"faithfulness": 0.60, "ndcg@k": 0.70, "hit@k": 1.0}),
        question("q-tie-b", metrics={"faithfulness": 0.60, "ndcg@k": 0.30, "hit@k": 1.0}, tags=["sports"]),
        question("q-abstain", metrics={"faithfulness": None, "ndcg@k": 0.40, "abstention_accuracy": 1.0},
                 abstained=True, answerable=False, answer="", type="unanswerable"),
        question("q-ok-2", metrics={"faithfulness": 0.85, "ndcg@k": 0.95, "hit@k": 1.0}, tags=["economy"]),
        question("q-ok-3", metrics={"faithfulness": 1.0, "ndcg@k": 1.0, "hit@k": 1.0}),
        question("q-ok-4", metrics={"faithfulness": 0.99, "ndcg@k": 0.20, "hit@k": 1.0}),
        question("q-ok-5", metrics={"faithfulness": 0.97, "ndcg@k": 0.85, "hit@k": 1.0}),
    ]


WORST_ORDER = ["q-error", "q-fail", "q-low-faith", "q-xss", "q-tie-b", "q-tie-a", "q-ok-2",
               "q-ok-1", "q-ok-5", "q-ok-4"]  # q-ok-3 (1.0) and q-abstain (faithfulness n/a) are left out


BASELINE_CHANGES = {  # case -> the baseline's values where they differ from the current run's
    "q-low-faith": {"faithfulness": 0.70}, "q-tie-a": {"faithfulness": 0.30},
    "q-tie-b": {"faithfulness": 0.20}, "q-ok-2": {"faithfulness": 0.50}, "q-ok-4": {"faithfulness": 0.60},
    "q-ok-5": {"faithfulness": 0.70}, "q-fail": {"hit@k": 1.0, "ndcg@k": 0.45},
    "q-ok-1": {"faithfulness": 0.95},  # the same value: not a change
}


def baseline_results() -> list[QuestionResult]:
    """The compare run: same questions, prompt v2; a few of them score differently."""
    out = []
    for q in current_results():
        for metric, value in BASELINE_CHANGES.get(q.case_id, {}).items():
            q.metrics[metric] = MetricValue(value=value, method=method_of(metric))
        out.append(q)
    return out


def tag_breakdown() -> dict[str, dict[str, Aggregate]]:
    return {"politics": {"hit@k": agg(0.92), "faithfulness": agg(0.81), "latency_ms": agg(1100.0, 90)},
            "economy": {"hit@k": agg(0.55), "faithfulness": agg(0.52), "latency_ms": agg(1400.0, 90)},
            "sports": {"hit@k": agg(0.74), "faithfulness": agg(0.68), "latency_ms": agg(980.0, 90)}}


def type_breakdown() -> dict[str, dict[str, Aggregate]]:
    return {"fact": {"hit@k": agg(0.86), "faithfulness": agg(0.79)},
            "multi-hop": {"hit@k": agg(0.40), "faithfulness": agg(0.62)},
            "unanswerable": {"abstention_accuracy": agg(1.0, 0.0)}}


def scenario() -> tuple[list[EvalRun], EvalRun, EvalRun]:
    """``(older runs, the current run, the compare run)``: two earlier runs for the trends and
    deltas, the run under report (a regression) and its A/B baseline."""
    older = [make_run("2026-03-02-a", T0, OLDER), make_run("2026-03-03-a", T0 + timedelta(days=1), PREVIOUS)]
    current = make_run(
        "2026-03-04-a", T0 + timedelta(days=2), CURRENT, results=current_results(),
        status="regression", prompt_arm="B", per_tag=tag_breakdown(), per_type=type_breakdown(),
        regressions=["hit@k fell below the best run by more than 0.05", "latency_ms rose 20 %"])
    baseline = make_run("2026-03-04-base", T0 + timedelta(days=2, minutes=-30),
                        {**CURRENT, "faithfulness": 0.63, "hit@k": 0.88, "ndcg@k": 0.68}, results=baseline_results(),
                        prompt_version="2", prompt_arm="A")
    return older, current, baseline
