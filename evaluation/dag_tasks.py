"""The answer_quality DAG's steps as plain functions over JSON-serializable data (XCom-sized).

snapshot (the index) → plan (run id, batches) → evaluate (mapped over case batches: answer and
score each question) → score (assemble, gate against the last good run, save) → report → notify →
check. The plan fixes the run id, so a retried score replaces its run (and does not ask for a
regression to be notified twice); notify also runs when the report failed. Nothing here knows
Airflow; the DAG file only wires these together.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsrag.core.errors import NewsragError, StoreError
from newsrag.core.settings import Settings
from newsrag.embeddings.base import vector_name
from newsrag.evaluation.feedback import feedback_location
from newsrag.evaluation.finish import gate_and_save, notify_regression, write_run_report
from newsrag.evaluation.golden import load_golden
from newsrag.evaluation.history import EvalSettings, HistoryStore, history_location, reports_path
from newsrag.evaluation.judge import LLMJudge
from newsrag.evaluation.models import EvalRun, IndexSnapshot, QuestionResult, RetrievalConfig
from newsrag.evaluation.regression import RegressionSettings
from newsrag.evaluation.runner import (
    PromptLookup,
    answerer_info,
    assemble_run,
    evaluate_batch,
    make_setup,
    new_run_id,
    plan_case_batches,
    retrieval_from_settings,
    snapshot_index,
)
from newsrag.infra.notify import NotifySettings, notifiers_from_settings
from newsrag.retrieval.search import SearchSettings


class RegressionDetected(NewsragError):
    """The run was gated as a regression (already saved, reported and notified)."""


@contextmanager
def _clients(settings: Settings) -> Iterator[tuple[Any, Any]]:
    from newsrag.embeddings import create_embedder
    from newsrag.store.weaviate import WeaviateStore

    embedder = create_embedder(settings)
    with WeaviateStore(settings) as store:
        yield store, embedder


def snapshot(settings: Settings | None = None) -> dict[str, Any]:
    """The index the run evaluates: collection, object count, last ingest (EmptyIndex when empty)."""
    with _clients(settings or Settings({})) as (store, embedder):
        return snapshot_index(store, vector_name(embedder.model_id)).model_dump(mode="json")


def plan(golden: str | None = None, sample: int | None = None, retrieval: dict[str, Any] | None = None,
         judge: bool = False, generator: str | None = None, index: dict[str, Any] | None = None,
         settings: Settings | None = None) -> dict[str, Any]:
    """Fix the run: id, retrieval, questions cut into batches, and the ``index`` snapshot (taken
    now when not given). With ``judge``, the judge's configuration is checked now (ConfigError)
    and its model recorded for the run. ``settings``: the root the task built (every step takes
    it; None: the defaults)."""
    settings = settings or Settings({})
    evals = settings.get(EvalSettings)
    gold = load_golden(golden or evals.golden_path)
    judge_model = _check_judge(settings) if judge else None
    config = retrieval_from_settings(settings.get(SearchSettings)).model_copy(
        update={k: v for k, v in (retrieval or {}).items() if v is not None})
    started_at = datetime.now(UTC)
    return {"golden": str(gold.path), "sample": sample, "judge": judge, "judge_model": judge_model,
            "generator": generator or evals.generator,
            "started_at": started_at.isoformat(), "run_id": new_run_id(started_at),
            "index": index or snapshot(settings), "retrieval": RetrievalConfig(**config.model_dump()).model_dump(),
            "batches": plan_case_batches(gold, sample, evals.batch_size)}


def _check_judge(settings: Settings) -> str:
    """The judge's model, after checking that a judge can be made (key or base URL, SDK)."""
    with LLMJudge.from_settings(settings) as judge:
        _ = judge.client
        return judge.settings.model


def evaluate(case_ids: list[str], plan_: dict[str, Any], prompt_lookup: PromptLookup | None = None,
             settings: Settings | None = None) -> list[dict[str, Any]]:
    settings = settings or Settings({})
    gold = load_golden(plan_["golden"])
    with _clients(settings) as (store, embedder), \
            (LLMJudge.from_settings(settings) if plan_["judge"] else nullcontext()) as judge:
        setup = make_setup(store, embedder, RetrievalConfig(**plan_["retrieval"]), judge=judge,
                           generator=plan_.get("generator", "extractive"), prompt_lookup=prompt_lookup,
                           settings=settings)
        return [r.model_dump(mode="json") for r in evaluate_batch(case_ids, gold, setup)]


def score(batches: list[list[dict[str, Any]]], plan_: dict[str, Any], prompt_lookup: PromptLookup | None = None,
          settings: Settings | None = None) -> dict[str, Any]:
    """Assemble the run from the batches' results, gate it against the last good run, save it.
    ``notify`` says whether its regression is to be notified (not again for a retried run)."""
    settings = settings or Settings({})
    gold = load_golden(plan_["golden"])
    results = [QuestionResult.model_validate(r) for batch in batches if batch for r in batch]
    retrieval = RetrievalConfig(**plan_["retrieval"])
    with _clients(settings) as (store, embedder):
        info = answerer_info(make_setup(store, embedder, retrieval, generator=plan_.get("generator", "extractive"),
                                        prompt_lookup=prompt_lookup, settings=settings).answerer)
    run = assemble_run(results, gold, index=IndexSnapshot(**plan_["index"]), retrieval=retrieval, info=info,
                       started_at=datetime.fromisoformat(plan_["started_at"]), sample=plan_["sample"],
                       run_id=plan_.get("run_id"), judge_model=plan_.get("judge_model"))
    with HistoryStore(history_location(settings)) as history:
        baseline, first_regression = gate_and_save(run, history, settings.get(RegressionSettings), settings.environ)
    return {"run_id": run.run_id, "status": run.status, "regressions": run.regressions,
            "headline": {k: a.mean for k, a in run.aggregates.items()},
            "baseline": baseline.run_id if baseline else None, "notify": first_regression}


def _saved(history: HistoryStore, summary: dict[str, Any]) -> tuple[EvalRun, EvalRun | None]:
    run = history.get(summary["run_id"])
    if run is None:
        raise StoreError(f"run {summary['run_id']} is not in the evaluation history {history!r}")
    return run, history.get(summary["baseline"]) if summary.get("baseline") else None


def report(summary: dict[str, Any], out_dir: str | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """Write the saved run's report (compared with its gate baseline); ``summary`` plus
    ``report``. Raises ``ReportWriteError`` (naming the path and why) when it cannot be written."""
    settings = settings or Settings({})
    with HistoryStore(history_location(settings)) as history:
        run, baseline = _saved(history, summary)
        path = write_run_report(run, history, Path(out_dir) if out_dir else reports_path(settings), baseline,
                                feedback_location(settings))
    return {**summary, "report": str(path)}


def notify(summary: dict[str, Any], reported: dict[str, Any] | None,
           settings: Settings | None = None) -> dict[str, Any]:
    """Notify the run's regression when ``score`` said so; ``reported`` is None when the report
    task failed (the regression is notified all the same). ``summary`` plus ``report``,
    ``notified`` and ``notify_failures``."""
    settings = settings or Settings({})
    path = reported["report"] if reported else None
    out = {**summary, "report": path, "notified": False, "notify_failures": []}
    if not summary["notify"]:
        return out
    with HistoryStore(history_location(settings)) as history:
        run, baseline = _saved(history, summary)
    failures = notify_regression(run, notifiers_from_settings(settings.get(NotifySettings)), baseline,
                                 Path(path) if path else None,
                                 None if path else "the report task failed (see its log)", settings.environ)
    return {**out, "notified": True, "notify_failures": failures}


def check(summary: dict[str, Any]) -> dict[str, Any]:
    """Fail the DAG run when the run regressed (``notify`` already did: the DAG must not notify
    this failure again)."""
    if summary["status"] == "regression":
        raise RegressionDetected(f"answer quality regressed in run {summary['run_id']}: "
                                 + "; ".join(summary["regressions"]) + f" (report: {summary['report']})")
    return summary
