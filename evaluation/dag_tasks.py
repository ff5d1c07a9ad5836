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
from newsrag.core.settings import load
from newsrag.embeddings.base import vector_name
from newsrag.evaluation.finish import gate_and_save, notify_regression, write_run_report
from newsrag.evaluation.golden import load_golden
from newsrag.evaluation.history import EvalSettings, HistoryStore
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
from newsrag.infra.notify import notifiers_from_env


class RegressionDetected(NewsragError):
    """The run was gated as a regression (already saved, reported and notified)."""


@contextmanager
def _clients() -> Iterator[tuple[Any, Any]]:
    from newsrag.embeddings import create_embedder
    from newsrag.store.weaviate import WeaviateStore

    embedder = create_embedder()
    with WeaviateStore() as store:
        yield store, embedder


def snapshot() -> dict[str, Any]:
    """The index the run evaluates: collection, object count, last ingest (EmptyIndex when empty)."""
    with _clients() as (store, embedder):
        return snapshot_index(store, vector_name(embedder.model_id)).model_dump(mode="json")


def plan(golden: str | None = None, sample: int | None = None, retrieval: dict[str, Any] | None = None,
         judge: bool = False, generator: str | None = None, index: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fix the run: id, retrieval, questions cut into batches, and the ``index`` snapshot (taken
    now when not given). With ``judge``, the judge's configuration is checked now (ConfigError)
    and its model recorded for the run."""
    settings = load(EvalSettings)
    gold = load_golden(golden or settings.golden_path)
    judge_model = _check_judge() if judge else None
    config = retrieval_from_settings().model_copy(update={k: v for k, v in (retrieval or {}).items()
                                                          if v is not None})
    started_at = datetime.now(UTC)
    return {"golden": str(gold.path), "sample": sample, "judge": judge, "judge_model": judge_model,
            "generator": generator or settings.generator,
            "started_at": started_at.isoformat(), "run_id": new_run_id(started_at),
            "index": index or snapshot(), "retrieval": RetrievalConfig(**config.model_dump()).model_dump(),
            "batches": plan_case_batches(gold, sample, settings.batch_size)}


def _check_judge() -> str:
    """The judge's model, after checking that a judge can be made (key or base URL, SDK)."""
    with LLMJudge() as judge:
        _ = judge.client
        return judge.settings.model


def evaluate(case_ids: list[str], plan_: dict[str, Any],
             prompt_lookup: PromptLookup | None = None) -> list[dict[str, Any]]:
    gold = load_golden(plan_["golden"])
    with _clients() as (store, embedder), (LLMJudge() if plan_["judge"] else nullcontext()) as judge:
        setup = make_setup(store, embedder, RetrievalConfig(**plan_["retrieval"]), judge=judge,
                           generator=plan_.get("generator", "extractive"), prompt_lookup=prompt_lookup)
        return [r.model_dump(mode="json") for r in evaluate_batch(case_ids, gold, setup)]


def score(batches: list[list[dict[str, Any]]], plan_: dict[str, Any],
          prompt_lookup: PromptLookup | None = None) -> dict[str, Any]:
    """Assemble the run from the batches' results, gate it against the last good run, save it.
    ``notify`` says whether its regression is to be notified (not again for a retried run)."""
    settings = load(EvalSettings)
    gold = load_golden(plan_["golden"])
    results = [QuestionResult.model_validate(r) for batch in batches if batch for r in batch]
    retrieval = RetrievalConfig(**plan_["retrieval"])
    with _clients() as (store, embedder):
        info = answerer_info(make_setup(store, embedder, retrieval, generator=plan_.get("generator", "extractive"),
                                        prompt_lookup=prompt_lookup).answerer)
    run = assemble_run(results, gold, index=IndexSnapshot(**plan_["index"]), retrieval=retrieval, info=info,
                       started_at=datetime.fromisoformat(plan_["started_at"]), sample=plan_["sample"],
                       run_id=plan_.get("run_id"), judge_model=plan_.get("judge_model"))
    with HistoryStore(settings.history_location()) as history:
        baseline, first_regression = gate_and_save(run, history, load(RegressionSettings))
    return {"run_id": run.run_id, "status": run.status, "regressions": run.regressions,
            "headline": {k: a.mean for k, a in run.aggregates.items()},
            "baseline": baseline.run_id if baseline else None, "notify": first_regression}


def _saved(history: HistoryStore, summary: dict[str, Any]) -> tuple[EvalRun, EvalRun | None]:
    run = history.get(summary["run_id"])
    if run is None:
        raise StoreError(f"run {summary['run_id']} is not in the evaluation history {history!r}")
    return run, history.get(summary["baseline"]) if summary.get("baseline") else None


def report(summary: dict[str, Any], out_dir: str | None = None) -> dict[str, Any]:
    """Write the saved run's report (compared with its gate baseline); ``summary`` plus
    ``report``. Raises ``ReportWriteError`` (naming the path and why) when it cannot be written."""
    settings = load(EvalSettings)
    with HistoryStore(settings.history_location()) as history:
        run, baseline = _saved(history, summary)
        path = write_run_report(run, history, Path(out_dir) if out_dir else settings.reports_path(), baseline)
    return {**summary, "report": str(path)}


def notify(summary: dict[str, Any], reported: dict[str, Any] | None) -> dict[str, Any]:
    """Notify the run's regression when ``score`` said so; ``reported`` is None when the report
    task failed (the regression is notified all the same). ``summary`` plus ``report``,
    ``notified`` and ``notify_failures``."""
    path = reported["report"] if reported else None
    out = {**summary, "report": path, "notified": False, "notify_failures": []}
    if not summary["notify"]:
        return out
    with HistoryStore(load(EvalSettings).history_location()) as history:
        run, baseline = _saved(history, summary)
    failures = notify_regression(run, notifiers_from_env(), baseline, Path(path) if path else None,
                                 None if path else "the report task failed (see its log)")
    return {**out, "notified": True, "notify_failures": failures}


def check(summary: dict[str, Any]) -> dict[str, Any]:
    """Fail the DAG run when the run regressed (``notify`` already did: the DAG must not notify
    this failure again)."""
    if summary["status"] == "regression":
        raise RegressionDetected(f"answer quality regressed in run {summary['run_id']}: "
                                 + "; ".join(summary["regressions"]) + f" (report: {summary['report']})")
    return summary
