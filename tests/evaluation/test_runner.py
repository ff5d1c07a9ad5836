"""Evaluation runs against the real Weaviate over the example corpus (ingested once per module with
the real pipeline) and the example golden set: aggregates are the means of per-question values
recomputed from what was retrieved, batched runs equal unbatched ones, a broken retrieval config is
caught as a regression and notified, and bad inputs fail clearly."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from rich.console import Console

from newsrag.core.records import ChunkRecord, Hit
from newsrag.embeddings.base import vector_name
from newsrag.evaluation.golden import GoldenSet, GoldenSetError, load_golden
from newsrag.evaluation.history import HistoryStore
from newsrag.evaluation.judge import JudgeSettings, LLMJudge
from newsrag.evaluation.metrics import (
    doc_relevance,
    hit_at_k,
    mrr,
    ndcg_at_k,
    recall_at_k,
    relevant_chunks,
    summarize,
)
from newsrag.evaluation.models import EvalRun, RetrievalConfig
from newsrag.evaluation.regression import RegressionSettings, apply_gate
from newsrag.evaluation.runner import (
    EXIT_BAD_INPUT,
    EXIT_REGRESSION,
    EXIT_REPORT_FAILED,
    EmptyIndex,
    answerer_info,
    assemble_run,
    evaluate_batch,
    make_setup,
    plan_case_batches,
    run_cli,
    run_eval,
    snapshot_index,
)
from newsrag.store.weaviate import WeaviateStore
from tests.embeddings.fake_providers import (
    FakeProviderServer,
    Received,
    Reply,
    openai_chat_completion,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
GOLDEN = EXAMPLES / "news" / "questions.jsonl"
RETRIEVAL_FNS = {"hit@k": hit_at_k, "recall@k": recall_at_k, "mrr": mrr, "ndcg@k": ndcg_at_k}


class CapturingNotifier:
    name = "capture"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def send(self, subject: str, body: str, *, level: Any = "info") -> None:
        self.sent.append((subject, body, level))


@pytest.fixture(scope="module")
def corpus(weaviate_server: Any, embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeaviateStore]:
    from newsrag.core.settings import IngestSettings, Settings
    from newsrag.ingest.context import IngestContext
    from newsrag.ingest.pipeline import run_source
    from newsrag.ingest.registry import load_registry

    store = WeaviateStore(Settings(), collection=f"TEvalRunner{uuid.uuid4().hex[:8]}")  # the session's settings
    registry = load_registry(EXAMPLES / "sources.offline.yaml")
    try:
        with IngestContext(IngestSettings(), store=store, embedder=embedder, home=tmp_path_factory.mktemp("eval"),
                           base_dir=Path(registry.base_dir)) as ctx:
            reports = [run_source(spec, ctx) for spec in registry.enabled()]
        assert all(r.status == "ok" for r in reports), [r.error for r in reports]
        yield store
    finally:
        if store.exists():
            store.drop()
        store.close()


@pytest.fixture(scope="module")
def golden() -> GoldenSet:
    return load_golden(GOLDEN)


@pytest.fixture(scope="module")
def good_run(corpus: WeaviateStore, embedder: Any, golden: GoldenSet) -> EvalRun:
    started = time.perf_counter()
    run = run_eval(golden, store=corpus, embedder=embedder)
    print(f"\nrun of {len(run.results)} questions in {time.perf_counter() - started:.1f}s; timings {run.timings}")
    for name, agg in run.aggregates.items():
        print(f"  {name:22s} {agg.mean:.4f} [{agg.low:.4f}, {agg.high:.4f}] n={agg.n} undefined={agg.n_undefined}")
    for r in run.results:
        if r.failure_reason:
            print(f"  failed {r.case_id}: {r.failure_reason}")
    return run


def _hits(retrieved: list[dict[str, Any]]) -> list[Hit]:
    return [Hit(uuid=d["chunk_id"], score=d["score"],
                chunk=ChunkRecord(doc_id=d["doc_id"], url=d["url"], title=d["title"], text=d["text"]))
            for d in retrieved]


def _comparable(run: EvalRun) -> dict[str, Any]:
    """Everything a run computes from its inputs (not its identity, timings, latencies or store
    scores, compared apart). Hybrid/BM25 results of Weaviate drift for a while after ingestion
    (scores by ~3e-4, enough to swap near-ties: BM25 statistics presumably still count replaced
    objects until compaction), so exact comparisons use vector search."""
    def aggs(a: dict[str, Any]) -> dict[str, Any]:
        return {k: v.model_dump() for k, v in a.items() if k != "latency_ms"}

    def unscored(r: Any) -> dict[str, Any]:
        data = r.model_dump(exclude={"latency_ms"})
        data["retrieved"] = [{**d, "score": None} for d in data["retrieved"]]
        return data

    return {
        "results": [unscored(r) for r in run.results],
        "aggregates": aggs(run.aggregates),
        "per_tag": {t: aggs(a) for t, a in run.per_tag.items()},
        "per_type": {t: aggs(a) for t, a in run.per_type.items()},
        "identity": (run.prompt_name, run.prompt_version, run.generator, run.model, run.golden_sha256,
                     run.retrieval, run.index.collection, run.index.object_count),
    }


def _scores(run: EvalRun) -> list[float]:
    return [d["score"] for r in run.results for d in r.retrieved]


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Paths where two JSON-like values differ (for a readable failure)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str) for d in _diff(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {str(a)[:150]!r} != {str(b)[:150]!r}"]


def test_aggregates_are_the_means_of_question_values_recomputed_from_the_retrieval(
        good_run: EvalRun, golden: GoldenSet, corpus: WeaviateStore) -> None:
    run, k = good_run, good_run.retrieval.top_k
    assert [r.case_id for r in run.results] == [c.id for c in golden.cases]
    assert run.index.object_count == corpus.count() > 0 and run.index.last_ingest_at is not None
    assert (run.prompt_name, run.prompt_version, run.generator) == ("extractive", "n/a", "extractive")
    assert run.status == "ok" and run.judge is None and all(r.error is None for r in run.results)
    for r in run.results:
        case = golden.by_id(r.case_id)
        hits = _hits(r.retrieved)
        assert 0 < len(hits) <= k
        gold = (case.gold_urls, case.gold_doc_ids, case.gold_spans)
        assert [d["relevant"] for d in r.retrieved] == relevant_chunks(hits, *gold)
        ranking, relevant = doc_relevance(hits, *gold)
        for name, fn in RETRIEVAL_FNS.items():
            expected = fn(ranking, relevant, k)
            assert r.metrics[name].value == (pytest.approx(expected) if expected is not None else None), (r.case_id, name)
        assert r.metrics["abstention_accuracy"].value == float(r.abstained != r.answerable)
    for name, agg in run.aggregates.items():
        values = [r.metrics[name].value if name in r.metrics else None for r in run.results] \
            if name != "latency_ms" else [r.latency_ms for r in run.results]
        summary = summarize(values)
        assert (agg.n, agg.n_undefined) == (summary.n, summary.n_undefined), name
        assert agg.mean == pytest.approx(summary.mean), name
        assert agg.mean is not None and agg.low is not None and agg.high is not None
        assert agg.low - 1e-9 <= agg.mean <= agg.high + 1e-9
    hit = run.aggregates["hit@k"]
    assert (hit.n, hit.n_undefined) == (len(golden.answerable), len(golden) - len(golden.answerable))
    assert hit.mean is not None and hit.mean >= 0.8
    assert run.aggregates["abstention_accuracy"].n == len(golden)
    assert set(run.per_type) == {"fact", "unanswerable"}
    tagged = [r for r in run.results if "transit" in r.tags]
    assert run.per_tag["transit"]["abstention_accuracy"].mean == pytest.approx(
        summarize(r.metrics["abstention_accuracy"].value for r in tagged).mean)


def test_batched_run_equals_the_unbatched_one(golden: GoldenSet, corpus: WeaviateStore, embedder: Any) -> None:
    """Vector search, so the store answers identically twice (its BM25 scores drift for a while
    after ingestion, see :func:`_comparable`); a seeded sample, batches evaluated in reverse."""
    vector = RetrievalConfig(mode="vector")
    unbatched = run_eval(golden, store=corpus, embedder=embedder, retrieval=vector, sample=12)
    batches = plan_case_batches(golden, 12, 5)
    assert [len(b) for b in batches] == [5, 5, 2]
    assert [i for b in batches for i in b] == [c.id for c in golden.sample(12)] == [r.case_id for r in unbatched.results]
    assert plan_case_batches(golden, None, 10) == [[c.id for c in golden.cases][i:i + 10] for i in (0, 10, 20)]
    setup = make_setup(corpus, embedder, vector)  # each mapped task builds its own
    results = [r for batch in reversed(batches) for r in evaluate_batch(batch, golden, setup)]
    batched = assemble_run(results, golden, index=snapshot_index(corpus, vector_name(embedder.model_id)),
                           retrieval=setup.retrieval, info=answerer_info(setup.answerer),
                           started_at=datetime.now(UTC), sample=12)
    differences = _diff(_comparable(batched), _comparable(unbatched))
    assert not differences, "\n".join(differences[:20])
    assert _scores(batched) == _scores(unbatched)
    assert batched.sample_size == unbatched.sample_size == 12


def test_a_degraded_retrieval_is_flagged_by_drops_beyond_noise(good_run: EvalRun, golden: GoldenSet,
                                                               corpus: WeaviateStore, embedder: Any) -> None:
    degraded = RetrievalConfig(mode="bm25", query_properties=["title"], top_k=1, rerank="none")
    run = run_eval(golden, store=corpus, embedder=embedder, retrieval=degraded)
    print({k: round(a.mean, 3) for k, a in run.aggregates.items() if a.mean is not None})
    reasons = apply_gate(run, good_run, RegressionSettings())
    print(reasons)
    assert run.status == "regression" and all(r.error is None for r in run.results)
    drops = {r.split(" ")[0] for r in reasons if " dropped " in r and "(paired diff" in r}
    assert "abstention_accuracy" in drops, reasons  # one chunk is too little context to abstain well


def test_broken_retrieval_is_a_regression_and_is_notified(good_run: EvalRun, golden: GoldenSet, corpus: WeaviateStore,
                                                          embedder: Any, tmp_path: Path) -> None:
    history = HistoryStore(tmp_path / "history.sqlite")
    history.save(good_run)
    capture = CapturingNotifier()
    out = io.StringIO()
    broken = RetrievalConfig(mode="bm25", query_properties=["url"])  # BM25 over a field holding no words
    code = run_cli(GOLDEN, out=tmp_path / "reports", console=Console(file=out, width=200), retrieval=broken,
                   store=corpus, embedder=embedder, history=history, notifiers=[capture])
    printed = out.getvalue()
    print(printed)
    assert code == EXIT_REGRESSION
    [run] = [r for r in history.list_runs() if r.run_id != good_run.run_id]
    assert run.status == "regression" and run.retrieval == broken
    assert f"regression baseline: run {good_run.run_id}" in run.notes
    # Weaviate refuses BM25 over a property without a searchable index: every question errors
    assert all(r.error and "requires inverted index" in r.error and not r.metrics for r in run.results)
    assert all((r.failure_reason or "").startswith("error: StoreError") for r in run.results)
    [reason] = run.regressions
    assert reason.startswith(f"{len(golden)} of {len(golden)} questions failed with an error")
    assert "most common: StoreError" in reason and "url" in reason
    assert history.previous(run) is not None and history.last_good() is not None
    assert history.last_good().run_id == good_run.run_id  # type: ignore[union-attr]
    [(subject, body, level)] = capture.sent
    assert level == "error" and "REGRESSION" in subject and run.run_id in subject and "n/a" in subject
    assert reason in body and f"baseline: run {good_run.run_id}" in body
    reports = list((tmp_path / "reports").rglob("report.html"))
    assert (f"report: {reports[0]}" in body) if reports else ("report: not written" in body)
    assert "regression:" in printed and run.run_id in printed


def test_an_empty_index_is_refused(store: WeaviateStore, embedder: Any, golden: GoldenSet, tmp_path: Path) -> None:
    name = vector_name(embedder.model_id)
    with pytest.raises(EmptyIndex, match=f"collection {store.name} has no objects: run ingestion first"):
        snapshot_index(store, name)  # no collection at all
    store.ensure_collection([name])
    with pytest.raises(EmptyIndex, match="run ingestion first"):
        run_eval(golden, store=store, embedder=embedder)
    out = io.StringIO()
    code = run_cli(GOLDEN, console=Console(file=out, width=200), store=store, embedder=embedder,
                   history=HistoryStore(tmp_path / "h.sqlite"), notifiers=[])
    assert code == EXIT_BAD_INPUT and "has no objects" in out.getvalue()


def test_a_judge_timeout_is_recorded_per_question_and_the_run_completes(
        corpus: WeaviateStore, embedder: Any, golden: GoldenSet) -> None:
    def slow(req: Received) -> Reply:
        time.sleep(1.0)
        return 200, {}, openai_chat_completion('{"score": 1, "reason": "late"}', model="judge-model")

    subset = GoldenSet(cases=[golden.by_id("q01"), golden.by_id("q25")], path=golden.path, sha256=golden.sha256)
    with FakeProviderServer() as server:
        server.route("/v1/chat/completions", slow)
        settings = JudgeSettings(model="judge-model", base_url=server.url("/v1"), api_key=SecretStr("sk-test-judge"),
                                 timeout=0.2, max_retries=0)
        with LLMJudge(settings, sleep=lambda _s: None) as judge:
            run = run_eval(subset, store=corpus, embedder=embedder, judge=judge)
        assert len(server.requests_to("/v1/chat/completions")) == 5  # q01 only: q25 abstains, has no reference
    answered, abstained = run.results
    assert run.judge == "judge-model" and run.status == "ok"
    assert not answered.abstained and answered.error is not None and "timed out" in answered.error
    assert "judge faithfulness" in (answered.failure_reason or "")
    for name in ("faithfulness_judge", "answer_relevance_judge", "correctness_judge", "citation_precision_judge",
                 "abstention_accuracy_judge"):
        assert answered.metrics[name].value is None and answered.metrics[name].method == "judge:judge-model"
        assert "timed out" in answered.metrics[name].details["error"]
        assert run.aggregates[name].n == (name == "abstention_accuracy_judge")  # q25's needs no request
    assert answered.metrics["hit@k"].value == 1.0 and answered.metrics["faithfulness"].value is not None
    assert abstained.abstained and abstained.error is None and abstained.failure_reason is None
    assert abstained.metrics["abstention_accuracy_judge"].value == 1.0  # flagged by the generator: not asked


def test_a_malformed_golden_line_exits_2_naming_the_line(tmp_path: Path, corpus: WeaviateStore, embedder: Any) -> None:
    bad = tmp_path / "golden.jsonl"
    first = GOLDEN.read_text().splitlines()[0]
    bad.write_text(first + "\n" + '{"id": "q99", "question": "unterminated\n')
    with pytest.raises(GoldenSetError) as caught:
        load_golden(bad)
    assert caught.value.errors[0].startswith(f"{bad}:2: invalid JSON")
    out = io.StringIO()
    code = run_cli(bad, console=Console(file=out, width=300), store=corpus, embedder=embedder,
                   history=HistoryStore(tmp_path / "h.sqlite"), notifiers=[])
    assert code == EXIT_BAD_INPUT
    assert "bad input" in out.getvalue() and f"{bad}:2: invalid JSON" in out.getvalue()


def test_a_report_that_cannot_be_written_exits_3_naming_the_path_and_keeps_the_history(
        good_run: EvalRun, corpus: WeaviateStore, embedder: Any, tmp_path: Path) -> None:
    history = HistoryStore(tmp_path / "history.sqlite")
    history.save(good_run)
    blocked = tmp_path / "reports"
    blocked.write_text("a file, not a folder")
    out = io.StringIO()
    code = run_cli(GOLDEN, out=blocked, sample=4, console=Console(file=out, width=400), store=corpus,
                   embedder=embedder, history=history, notifiers=[CapturingNotifier()])
    printed = " ".join(out.getvalue().split())
    assert code == EXIT_REPORT_FAILED
    [run] = [r for r in history.list_runs() if r.run_id != good_run.run_id]
    assert f"error: report of run {run.run_id} not written to {blocked / run.run_id / 'report.html'}: " \
           "NotADirectoryError" in printed
    assert "the run is saved in the evaluation history" in printed and "report: not written" in printed
    assert history.get(good_run.run_id) == good_run and len(run.results) == 4


def test_compare_run_id_is_the_reports_comparison_while_the_gate_keeps_the_last_good_run(
        good_run: EvalRun, corpus: WeaviateStore, embedder: Any, tmp_path: Path) -> None:
    history = HistoryStore(tmp_path / "history.sqlite")
    older = good_run.model_copy(update={"run_id": "r-older", "started_at": good_run.started_at.replace(year=2020)})
    history.save(older)
    history.save(good_run)
    out = io.StringIO()
    code = run_cli(GOLDEN, compare="r-older", sample=4, out=tmp_path / "reports", console=Console(file=out, width=300),
                   store=corpus, embedder=embedder, history=history, notifiers=[])
    printed = " ".join(out.getvalue().split())
    assert code == 0, printed
    [run] = [r for r in history.list_runs() if r.run_id not in ("r-older", good_run.run_id)]
    assert f"regression baseline: run {good_run.run_id}" in run.notes  # the last good run, not r-older
    assert "Δ vs r-older" in printed
    html = (tmp_path / "reports" / run.run_id / "report.html").read_text()
    section = html.split('<section id="comparison"')[1].split("</section>")[0]
    assert "r-older" in section and good_run.run_id not in section
