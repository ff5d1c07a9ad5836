"""Evaluation runs: every golden question through retrieval and answering, scored, aggregated.

Per question (:func:`evaluate_case`) ONE search with the run's :class:`RetrievalConfig` (mode,
alpha, fusion, top_k, query properties, reranker) feeds both the retrieval metrics and the answer.
Metrics (names: ``newsrag.evaluation.regression.KNOWN_METRICS``): ``hit@k``, ``recall@k``, ``mrr``,
``ndcg@k`` at k = top_k on *documents* (None without gold; ``retrieved`` flags relevant chunks);
offline ``faithfulness``, ``answer_relevance`` (cosine, run's embedder), ``correctness``,
``citation_precision``, ``abstention_accuracy``; with a judge also ``<name>_judge`` for
faithfulness, answer_relevance, correctness, citation_precision and abstention_accuracy (method
``judge:<model>``), so the offline figures stay comparable across runs with and without a judge. An exception in one question - or a judge
failure - is recorded in its ``error``, never fatal; ``failure_reason`` says why it failed. Airflow: :func:`plan_case_batches` -> :func:`evaluate_batch` per batch ->
:func:`assemble_run` gives what :func:`run_eval` gives for the same inputs.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import quantiles
from typing import Any, NamedTuple

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from newsrag.core.errors import ConfigError, NewsragError
from newsrag.core.records import Hit, SearchFilters
from newsrag.core.settings import Settings, defaults, load
from newsrag.embeddings.base import vector_name
from newsrag.evaluation import answer_metrics as am
from newsrag.evaluation import metrics as em
from newsrag.evaluation.feedback import feedback_location
from newsrag.evaluation.finish import Finalized, ReportWriteError, finalize_run, redact_result
from newsrag.evaluation.golden import GoldenCase, GoldenSet, GoldenSetError, load_golden
from newsrag.evaluation.history import EvalSettings, HistoryStore, history_location, reports_path
from newsrag.evaluation.judge import JudgeSettings, LLMJudge
from newsrag.evaluation.messages import print_summary
from newsrag.evaluation.models import (
    EvalRun,
    IndexSnapshot,
    MetricValue,
    QuestionResult,
    RetrievalConfig,
)
from newsrag.evaluation.regression import (
    JUDGE_SUFFIX,
    RegressionSettings,
    aggregate,
    aggregate_groups,
    failure_reason,
)
from newsrag.infra.notify import Notifier, NotifySettings, notifiers_from_settings
from newsrag.infra.redaction import environment_secrets, redact_text
from newsrag.retrieval.answer import Answer, Answerer, AnswerSettings
from newsrag.retrieval.generators import PromptRef, create_generator
from newsrag.retrieval.search import (
    RERANKERS,
    Searcher,
    SearchResult,
    SearchSettings,
    create_reranker,
)
from newsrag.store.protocol import ChunkSearch, ChunkStore

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int, QuestionResult], None]  # (done, total, the result just made)
PromptLookup = Callable[[str], PromptRef | None]  # a prompt name -> its active version, None when none
Embed = Callable[[Sequence[str]], Any]
EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT, EXIT_REPORT_FAILED = 0, 1, 2, 3


class EmptyIndex(NewsragError):
    """The collection to evaluate does not exist or has no objects."""


def snapshot_index(store: ChunkStore, vector_name: str) -> IndexSnapshot:
    """Object count and newest ``ingested_at`` of the store's collection; :class:`EmptyIndex` when
    it is missing or empty."""
    count = store.count() if store.exists() else 0
    if count == 0:
        raise EmptyIndex(f"collection {store.name} has no objects: run ingestion first (newsrag ingest)")
    return IndexSnapshot(collection=store.name, object_count=count, last_ingest_at=store.newest_ingested_at(),
                         vector_name=vector_name)


def retrieval_from_settings(s: SearchSettings | None = None) -> RetrievalConfig:
    """The retrieval the app uses (hybrid, ``NEWSRAG_SEARCH_*``: the root's ``SearchSettings``;
    None: the defaults) as a run's config."""
    s = s or defaults(SearchSettings)
    return RetrievalConfig(alpha=s.alpha, fusion=s.fusion, top_k=s.top_k, query_properties=list(s.query_properties),
                           rerank=s.rerank)


def search_settings(retrieval: RetrievalConfig, base: SearchSettings | None = None) -> SearchSettings:
    """``base`` (default: the defaults) with the run's retrieval fields; ConfigError if invalid."""
    if retrieval.mode not in ("hybrid", "vector", "bm25"):
        raise ConfigError(f"retrieval mode must be hybrid, vector or bm25 (got {retrieval.mode!r})")
    if retrieval.rerank not in RERANKERS:
        raise ConfigError(f"reranker {retrieval.rerank!r} is not available; choose one of {sorted(RERANKERS)}")
    fields = (base or defaults(SearchSettings)).model_dump()
    fields.update(alpha=retrieval.alpha, fusion=retrieval.fusion, top_k=retrieval.top_k,
                  query_properties=tuple(retrieval.query_properties), rerank=retrieval.rerank)
    return load(SearchSettings, {}, **fields)  # every field given: validated, no environment read


class _RunSearcher(Searcher):
    """A searcher sharing ``inner``'s store and embedder that searches with a run's retrieval
    config and keeps its last result (so the answer and the metrics see the same hits)."""

    def __init__(self, inner: Searcher, retrieval: RetrievalConfig,
                 settings: Settings | None = None) -> None:  # no super(): shares parts
        self.store, self.embedder, self.vector_name = inner.store, inner.embedder, inner.vector_name
        self.analysis = inner.analysis
        self.settings = search_settings(retrieval, inner.settings)
        same = (inner.settings.rerank, inner.settings.mmr_lambda) == (self.settings.rerank, self.settings.mmr_lambda)
        # another reranker reads its own settings (a Cohere key) from the run's root
        self.reranker = inner.reranker if same else create_reranker(self.settings, inner.embedder, settings)
        self.mode: Any = retrieval.mode  # top_k and alpha default to the settings' (the run's)
        self.last: SearchResult | None = None

    def search(self, query: str, *, filters: SearchFilters | None = None, top_k: int | None = None,
               alpha: float | None = None, mode: Any = None, as_of: datetime | None = None,
               half_life_days: float | None = None) -> SearchResult:
        self.last = super().search(query, filters=filters, top_k=top_k, alpha=alpha, mode=mode or self.mode,
                                   as_of=as_of, half_life_days=half_life_days)
        return self.last


class AnswererInfo(NamedTuple):  # what an Answer reports about its making
    prompt_name: str
    prompt_version: str
    generator: str
    model: str


def answerer_info(answerer: Answerer) -> AnswererInfo:
    """What the answerer's answers will report (prompt, generator, model), without asking."""
    gen = answerer.generator
    ref = answerer.prompt or getattr(gen, "prompt", None)
    name, version = (ref.name, ref.version) if ref else (gen.name, "n/a")
    return AnswererInfo(name, version, gen.name, gen.model)


@dataclass
class EvalSetup:
    """What every question of a run is evaluated with."""

    answerer: Answerer
    retrieval: RetrievalConfig
    judge: LLMJudge | None = None
    embed: Embed | None = None
    settings: Settings = field(default_factory=lambda: Settings({}))  # the root the run is configured by


def make_setup(store: ChunkSearch, embedder: Any, retrieval: RetrievalConfig | None = None, *,
               generator: str = "extractive", judge: LLMJudge | None = None,
               prompt: PromptRef | None = None, prompt_lookup: PromptLookup | None = None,
               settings: Settings | None = None) -> EvalSetup:
    """The answerer for ``retrieval`` (default: :func:`retrieval_from_settings`) and ``generator``,
    configured by ``settings`` (the root an edge built; None: the defaults). An LLM generator
    answers with ``prompt``, else with what ``prompt_lookup`` (the edges pass the registry's
    :func:`newsrag.prompts.release.active_prompt_ref`: prompts sit above evaluation) finds for the
    configured name. A judge's configuration is checked now (ConfigError/SetupError)."""
    settings = settings or Settings({})
    base = settings.get(SearchSettings)
    retrieval = retrieval or retrieval_from_settings(base)
    if prompt is None and generator != "extractive" and prompt_lookup is not None:
        prompt = prompt_lookup(settings.get(EvalSettings).prompt_name)
    searcher = Searcher(store, embedder, settings.replace(search_settings(retrieval, base)))
    if judge is not None:
        _ = judge.client
    answerer = Answerer(searcher, create_generator(generator, embedder, settings=settings),
                        settings.get(AnswerSettings), prompt=prompt)
    return EvalSetup(answerer, retrieval, judge, embedder.embed_documents, settings)


# -- one question ----------------------------------------------------------------------------------


def _mv(result: am.MetricResult) -> MetricValue:
    return MetricValue(value=result.value, method=result.method, details=result.details)


def _score(r: QuestionResult, case: GoldenCase, answer: Answer, hits: list[Hit], k: int,
           judge: LLMJudge | None, embed: Embed | None) -> None:
    gold = (case.gold_urls, case.gold_doc_ids, case.gold_spans)
    flags = em.relevant_chunks(hits, *gold)
    r.retrieved = [{"rank": i, "chunk_id": h.uuid, "doc_id": h.chunk.doc_id, "doc_key": em.doc_key(h),
                    "url": h.chunk.url, "title": h.chunk.title, "score": h.score, "text": h.chunk.text,
                    "relevant": flag}
                   for i, (h, flag) in enumerate(zip(hits, flags, strict=True), start=1)]
    ranking, relevant = em.doc_relevance(hits, *gold)
    details = {"k": k, "level": "document", "gold_docs": sorted(relevant), "relevant_chunks": sum(flags)}
    for name, fn in (("hit@k", em.hit_at_k), ("recall@k", em.recall_at_k), ("mrr", em.mrr), ("ndcg@k", em.ndcg_at_k)):
        r.metrics[name] = MetricValue(value=fn(ranking, relevant, k), method="offline:document", details=details)
    r.answer, r.abstained, r.latency_ms = answer.text, answer.abstained, am.latency(answer)
    r.citations = [c.model_dump(mode="json") for c in answer.citations]
    texts, ab, q = {h.uuid: h.chunk.text for h in hits}, answer.abstained, case.question
    for m in (am.faithfulness_offline(answer.text, am.contexts_by_marker(answer.citations, texts), abstained=ab),
              am.answer_relevance_offline(q, answer.text, embed, abstained=ab),
              am.correctness_offline(answer.text, case.reference_answer, abstained=ab),
              am.answer_first_offline(answer.text, case.reference_answer, abstained=ab),
              am.citation_precision_offline(answer.citations, texts, case.gold_spans, abstained=ab)):
        r.metrics[m.name] = _mv(m)
    r.metrics["abstention_accuracy"] = MetricValue(
        value=float(am.abstention_correct(ab, case.answerable)), method="offline:abstention",
        details={"abstained": ab, "answerable": case.answerable})
    if judge is None:
        return
    errors = []
    for m in (judge.faithfulness(q, answer.text, list(texts.values()), abstained=ab),
              judge.relevance(q, answer.text, abstained=ab),
              judge.correctness(q, answer.text, case.reference_answer, abstained=ab),
              judge.citation_precision(q, answer.text, answer.citations, texts, abstained=ab),
              judge.abstention(q, answer.text, case.answerable, abstained=ab)):
        r.metrics[m.name + JUDGE_SUFFIX] = _mv(m)
        if m.details.get("error"):
            errors.append(f"judge {m.name}: {m.details['error']}")
    r.error = "; ".join(errors) or None


def _evaluate(case: GoldenCase, setup: EvalSetup, secrets: Sequence[str]) -> tuple[QuestionResult, AnswererInfo | None]:
    """One question with ``setup``; an error's text without ``secrets`` (the environment's)."""
    r = QuestionResult(case_id=case.id, question=case.question, tags=list(case.tags),
                       type=case.type or "fact", answerable=case.answerable)
    info, answerer, retrieval = None, setup.answerer, setup.retrieval
    try:
        searcher = _RunSearcher(answerer.searcher, retrieval, setup.settings)
        answer = Answerer(searcher, answerer.generator, answerer.settings, answerer.prompt).ask(
            case.question, top_k=retrieval.top_k, as_of=case.as_of)  # replayed at the moment it was asked
        info = AnswererInfo(answer.prompt_name, answer.prompt_version, answer.generator, answer.model)
        _score(r, case, answer, searcher.last.hits if searcher.last else [], retrieval.top_k, setup.judge, setup.embed)
    except Exception as exc:  # noqa: BLE001 - one question's failure is recorded, never fatal
        r.error = redact_text(f"{type(exc).__name__}: {exc}", secrets)[:500]  # before the cut: no partial secret
        log.warning("evaluation of %s failed: %s", case.id, r.error)
    r.failure_reason = failure_reason(redact_result(r, secrets))
    return r, info


def evaluate_case(case: GoldenCase, answerer: Answerer, retrieval: RetrievalConfig, *,
                  judge: LLMJudge | None = None, embed: Embed | None = None,
                  settings: Settings | None = None) -> QuestionResult:
    """One question: search with ``retrieval``, answer from those hits, score (an error's text
    without the secrets of ``settings``' environment). Never raises."""
    setup = EvalSetup(answerer, retrieval, judge, embed, settings or Settings({}))
    return _evaluate(case, setup, environment_secrets(setup.settings.environ))[0]


def _run_cases(case_ids: Sequence[str], golden: GoldenSet, setup: EvalSetup,
               progress: ProgressFn | None) -> tuple[list[QuestionResult], list[AnswererInfo]]:
    try:
        cases = [golden.by_id(i) for i in case_ids]
    except KeyError as exc:
        raise ConfigError(f"case id {exc.args[0]!r} is not in the golden set {golden.path}") from None
    results, infos, secrets = [], [], environment_secrets(setup.settings.environ)
    for done, case in enumerate(cases, start=1):
        result, info = _evaluate(case, setup, secrets)
        results.append(result)
        if info is not None:
            infos.append(info)
        if progress is not None:
            progress(done, len(cases), result)
    return results, infos


def select_case_ids(golden: GoldenSet, sample: int | None = None, seed: int = 0) -> list[str]:
    return [c.id for c in (golden.sample(sample, seed) if sample else golden.cases)]


def plan_case_batches(golden: GoldenSet, sample: int | None = None, batch_size: int = 10,
                      seed: int = 0) -> list[list[str]]:
    """The run's case ids (all, or a seeded sample) cut into batches of ``batch_size``."""
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1 (got {batch_size})")
    ids = select_case_ids(golden, sample, seed)
    return [ids[i:i + batch_size] for i in range(0, len(ids), batch_size)]


def evaluate_batch(case_ids: Sequence[str], golden: GoldenSet, setup: EvalSetup,
                   progress: ProgressFn | None = None) -> list[QuestionResult]:
    """Evaluate some of the golden set's questions (one mapped task of a DAG)."""
    return _run_cases(case_ids, golden, setup, progress)[0]


def new_run_id(started_at: datetime) -> str:
    """A run id: the start time (UTC) and a random suffix."""
    return f"{started_at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def assemble_run(results: Sequence[QuestionResult], golden: GoldenSet, *, index: IndexSnapshot,
                 retrieval: RetrievalConfig, info: AnswererInfo, started_at: datetime,
                 finished_at: datetime | None = None, sample: int | None = None, judge_model: str | None = None,
                 run_id: str | None = None, timings: dict[str, float] | None = None,
                 notes: Sequence[str] = ()) -> EvalRun:
    """The run from its questions' results (in golden-set order, whatever the batches' order)."""
    order = {c.id: i for i, c in enumerate(golden.cases)}
    ordered = sorted(results, key=lambda r: order.get(r.case_id, len(order)))
    timings = dict(timings or {})
    latencies = [r.latency_ms for r in ordered if r.latency_ms is not None]
    if len(latencies) > 1:  # the mean is the latency_ms aggregate
        timings["latency_p95_ms"] = round(quantiles(latencies, n=20, method="inclusive")[-1], 2)
    return EvalRun(
        run_id=run_id or new_run_id(started_at),
        started_at=started_at, finished_at=finished_at or datetime.now(UTC), golden_path=str(golden.path),
        golden_sha256=golden.sha256, sample_size=sample, index=index, prompt_name=info.prompt_name,
        prompt_version=info.prompt_version, generator=info.generator, model=info.model, retrieval=retrieval,
        judge=judge_model, results=list(ordered), aggregates=aggregate(ordered),
        per_tag=aggregate_groups(ordered, lambda r: r.tags),
        per_type=aggregate_groups(ordered, lambda r: [r.type]),
        timings=timings, notes=list(notes))


def run_eval(golden: GoldenSet, *, store: ChunkStore, embedder: Any, retrieval: RetrievalConfig | None = None,
             generator: str = "extractive", setup: EvalSetup | None = None, sample: int | None = None,
             judge: LLMJudge | None = None, progress: ProgressFn | None = None, seed: int = 0,
             prompt_lookup: PromptLookup | None = None, settings: Settings | None = None) -> EvalRun:
    """Evaluate the golden set (or a seeded sample) against the store. Raises :class:`EmptyIndex`
    and configuration errors; per-question failures are recorded in the results. A custom answerer
    comes in through ``setup`` (:class:`EvalSetup`), else :func:`make_setup` builds it from
    ``settings`` (the root an edge built; None: the defaults)."""
    started_at, t0 = datetime.now(UTC), time.perf_counter()
    index = snapshot_index(store, vector_name(embedder.model_id))
    setup = setup or make_setup(store, embedder, retrieval, generator=generator, judge=judge,
                                prompt_lookup=prompt_lookup, settings=settings)
    t1 = time.perf_counter()
    results, infos = _run_cases(select_case_ids(golden, sample, seed), golden, setup, progress)
    counts = Counter(infos)  # the answers say which prompt/generator/model made them
    info = counts.most_common(1)[0][0] if counts else answerer_info(setup.answerer)
    notes = [f"answers disagree on prompt/generator/model: {dict(counts)}"] if len(counts) > 1 else []
    t2 = time.perf_counter()
    return assemble_run(results, golden, index=index, retrieval=setup.retrieval, info=info, started_at=started_at,
                        sample=sample, judge_model=setup.judge.settings.model if setup.judge else None,
                        timings={"setup_s": round(t1 - t0, 3), "questions_s": round(t2 - t1, 3),
                                 "total_s": round(time.perf_counter() - t0, 3)}, notes=notes)


# -- after a run, and the command line -----------------------------------------------------------


def _clients(stack: ExitStack, settings: Settings, store: ChunkStore | None, embedder: Any) -> tuple[ChunkStore, Any]:
    """The given store and embedder, else the ones ``settings`` configure (closed with ``stack``)."""
    if embedder is None:
        from newsrag.embeddings import create_embedder

        embedder = create_embedder(settings)
        stack.callback(embedder.close)
    if store is None:
        from newsrag.store.weaviate import WeaviateStore

        store = stack.enter_context(WeaviateStore(settings))
    return store, embedder


def run_cli(golden: str | Path | None = None, *, compare: str | None = None, out: str | Path | None = None,
            sample: int | None = None, judge: bool | None = None, console: Console | None = None,
            retrieval: RetrievalConfig | None = None, generator: str | None = None, store: ChunkStore | None = None,
            embedder: Any = None, history: HistoryStore | None = None,
            notifiers: Sequence[Notifier] | None = None, prompt_lookup: PromptLookup | None = None,
            settings: Settings | None = None) -> int:
    """``newsrag eval``: run with a progress bar, gate, save, report, notify, print the headline
    table, all configured by ``settings`` (the root the CLI built; None: the defaults). Returns 0
    (ok), 1 (regression), 2 (bad input: golden set, a setting, an unknown ``compare`` run id, an
    empty index) or 3 (the report could not be written: the error names its path and why; the run
    is saved). Other errors (Weaviate down, ...) propagate."""
    console, settings = console or Console(), settings or Settings({})
    with ExitStack() as stack:
        try:
            evals = settings.get(EvalSettings)
            gold = load_golden(golden or evals.golden_path)
            gate = settings.get(RegressionSettings)
            channels = list(notifiers) if notifiers is not None else notifiers_from_settings(settings.get(NotifySettings))
            if sample is not None and sample < 1:
                raise ConfigError(f"--sample must be >= 1 (got {sample})")
            if history is None:
                history = stack.enter_context(HistoryStore(history_location(settings)))
            compare_run = history.get(compare) if compare else None
            if compare and compare_run is None:
                recent = ", ".join(s.run_id for s in history.summaries(5)) or "none yet"
                raise ConfigError(f"--compare: no run {compare!r} in {history!r} (newest runs: {recent})")
            use_judge = judge if judge is not None else settings.get(JudgeSettings).enabled
            llm_judge = LLMJudge.from_settings(settings) if use_judge else None
            if llm_judge is not None:
                stack.callback(llm_judge.close)
            store, embedder = _clients(stack, settings, store, embedder)
            with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                          TimeElapsedColumn(), console=console, transient=True) as bar:
                task = bar.add_task("evaluating", total=min(sample or len(gold), len(gold)))

                def progress(done: int, total: int, r: QuestionResult) -> None:
                    bar.update(task, completed=done, total=total, description=f"evaluating [bold]{r.case_id}[/]")

                run = run_eval(gold, store=store, embedder=embedder, retrieval=retrieval,
                               generator=generator or evals.generator, sample=sample, judge=llm_judge,
                               progress=progress, prompt_lookup=prompt_lookup, settings=settings)
        except (GoldenSetError, ConfigError, EmptyIndex) as exc:
            kind = "error" if isinstance(exc, EmptyIndex) else "bad input"
            console.print(f"[bold red]{kind}:[/] {escape(str(exc))}", highlight=False)
            return EXIT_BAD_INPUT
        try:
            done = finalize_run(run, history, out_dir=Path(out) if out else reports_path(settings), gate=gate,
                                notifiers=channels, compare_run=compare_run,
                                feedback_path=feedback_location(settings), environ=settings.environ)
        except ReportWriteError as exc:
            done = exc.finalized or Finalized(None)
            print_summary(console, run, compare_run or history.previous(run), None, done.notify_failures)
            console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            return EXIT_REPORT_FAILED
        print_summary(console, run, compare_run or history.previous(run), done.report, done.notify_failures)
        return EXIT_REGRESSION if run.status == "regression" else EXIT_OK
