"""The answer_quality DAG's steps as plain functions over JSON-serializable data (XCom-sized).

plan → evaluate (mapped over case batches) → finalize (assemble, gate, save, report, notify) →
check. The plan fixes the run id, so a retried finalize replaces its run (and does not notify a
regression twice). Nothing here knows Airflow; the DAG file only wires these together.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from embeddings.base import vector_name
from evaluation.finish import finalize_run
from evaluation.golden import load_golden
from evaluation.history import EvalSettings, HistoryStore
from evaluation.judge import LLMJudge
from evaluation.models import QuestionResult, RetrievalConfig
from evaluation.notify import notifiers_from_env
from evaluation.regression import RegressionSettings
from evaluation.runner import (
    assemble_run,
    evaluate_batch,
    make_setup,
    new_run_id,
    plan_case_batches,
    retrieval_from_settings,
    snapshot_index,
)
from newsrag.errors import NewsragError
from newsrag.settings import load


class RegressionDetected(NewsragError):
    """The run was gated as a regression (already saved, reported and notified)."""


@contextmanager
def _clients() -> Iterator[tuple[Any, Any]]:
    from embeddings import create_embedder
    from retrieval.store import WeaviateStore

    embedder = create_embedder()
    with WeaviateStore() as store:
        yield store, embedder


def plan(golden: str | None = None, sample: int | None = None, retrieval: dict[str, Any] | None = None,
         judge: bool = False, generator: str | None = None) -> dict[str, Any]:
    """Snapshot the index, pick the questions and cut them into batches. With ``judge``, the
    judge's configuration is checked now (ConfigError) and its model recorded for the run."""
    settings = load(EvalSettings)
    gold = load_golden(golden or settings.golden_path)
    judge_model = _check_judge() if judge else None
    config = retrieval_from_settings().model_copy(update={k: v for k, v in (retrieval or {}).items()
                                                          if v is not None})
    with _clients() as (store, embedder):
        index = snapshot_index(store, vector_name(embedder.model_id))
    started_at = datetime.now(UTC)
    return {"golden": str(gold.path), "sample": sample, "judge": judge, "judge_model": judge_model,
            "generator": generator or settings.generator,
            "started_at": started_at.isoformat(), "run_id": new_run_id(started_at),
            "index": index.model_dump(mode="json"), "retrieval": RetrievalConfig(**config.model_dump()).model_dump(),
            "batches": plan_case_batches(gold, sample, settings.batch_size)}


def _check_judge() -> str:
    """The judge's model, after checking that a judge can be made (key or base URL, SDK)."""
    with LLMJudge() as judge:
        _ = judge.client
        return judge.settings.model


def evaluate(case_ids: list[str], plan_: dict[str, Any]) -> list[dict[str, Any]]:
    gold = load_golden(plan_["golden"])
    with _clients() as (store, embedder), (LLMJudge() if plan_["judge"] else nullcontext()) as judge:
        setup = make_setup(store, embedder, RetrievalConfig(**plan_["retrieval"]), judge=judge,
                           generator=plan_.get("generator", "extractive"))
        return [r.model_dump(mode="json") for r in evaluate_batch(case_ids, gold, setup)]


def finalize(batches: list[list[dict[str, Any]]], plan_: dict[str, Any], out_dir: str | None = None) -> dict[str, Any]:
    """Assemble the run, gate it against the last good run, save, write the report, notify.
    Raises ``ReportWriteError`` (naming the path and why) when the report could not be written."""
    from evaluation.models import IndexSnapshot
    from evaluation.runner import answerer_info

    settings = load(EvalSettings)
    gold = load_golden(plan_["golden"])
    results = [QuestionResult.model_validate(r) for batch in batches if batch for r in batch]
    retrieval = RetrievalConfig(**plan_["retrieval"])
    with _clients() as (store, embedder):
        info = answerer_info(make_setup(store, embedder, retrieval,
                                        generator=plan_.get("generator", "extractive")).answerer)
    run = assemble_run(results, gold, index=IndexSnapshot(**plan_["index"]), retrieval=retrieval, info=info,
                       started_at=datetime.fromisoformat(plan_["started_at"]), sample=plan_["sample"],
                       run_id=plan_.get("run_id"), judge_model=plan_.get("judge_model"))
    with HistoryStore(settings.history_location()) as history:
        done = finalize_run(run, history, out_dir=Path(out_dir) if out_dir else settings.reports_path(),
                            gate=load(RegressionSettings), notifiers=notifiers_from_env())
    headline = {k: a.mean for k, a in run.aggregates.items()}
    return {"run_id": run.run_id, "status": run.status, "report": str(done.report) if done.report else None,
            "regressions": run.regressions, "headline": headline, "notified": done.notified,
            "notify_failures": done.notify_failures}


def check(summary: dict[str, Any]) -> dict[str, Any]:
    """Fail the DAG run when the run regressed (finalize already notified: the DAG must not
    notify this failure again)."""
    if summary["status"] == "regression":
        raise RegressionDetected(f"answer quality regressed in run {summary['run_id']}: "
                                 + "; ".join(summary["regressions"]) + f" (report: {summary['report']})")
    return summary
