"""answer_quality: after every fresh ingestion (the Weaviate Asset) and daily, score retrieval and
answers on a golden set, write the report, gate regressions and notify. Wiring only.

An empty or missing collection skips the run at its first task (nothing to score, and a retry
cannot fill the index), and two runs may be active, so a scheduled run (the daily one, or the
latest missed one that Airflow starts when the DAG is unpaused) never holds back the run that an
Asset event starts for fresh data."""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import (
    Asset,
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    Param,
    dag,
    get_current_context,
    task,
)

from newsrag.airflow.notifier import on_failure

COLLECTION = os.environ.get("WEAVIATE_COLLECTION", "NewsChunk")
NEWS_INDEX = Asset(f"weaviate://{COLLECTION}", group="newsrag")
REPORT = Asset("newsrag://reports/answer_quality", group="newsrag")
DAILY = os.environ.get("NEWSRAG_EVAL_SCHEDULE", "0 6 * * *")


@dag(
    dag_id="answer_quality",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable(DAILY, timezone="UTC"), assets=[NEWS_INDEX]),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=2,  # a scheduled run and the Asset-triggered run of fresh data, side by side
    tags=["newsrag", "evaluation"],
    default_args={"retries": 1, "on_failure_callback": on_failure()},
    params={
        "golden": Param(None, type=["null", "string"], description="Golden set JSONL; default from settings."),
        "sample": Param(None, type=["null", "integer"], minimum=1, description="Evaluate a seeded sample."),
        "judge": Param(False, type="boolean", description="Use the LLM judge (needs a provider)."),
        "alpha": Param(None, type=["null", "number"], minimum=0, maximum=1),
        "mode": Param(None, type=["null", "string"], enum=[None, "hybrid", "vector", "bm25"]),
        "query_properties": Param(None, type=["null", "array"]),
        "top_k": Param(None, type=["null", "integer"], minimum=1, maximum=100,
                       description="Chunks retrieved per question; default NEWSRAG_SEARCH_TOP_K."),
        "generator": Param(None, type=["null", "string"],
                           description="extractive, openai, cohere...; default NEWSRAG_EVAL_GENERATOR."),
    },
)
def answer_quality() -> None:
    @task
    def snapshot_index() -> dict[str, Any]:
        from newsrag.airflow.hooks import task_settings
        from newsrag.airflow.skip import skip
        from newsrag.evaluation.dag_tasks import snapshot
        from newsrag.evaluation.runner import EmptyIndex

        try:
            return snapshot(settings=task_settings())
        except EmptyIndex as exc:  # skipped, not failed: no retry, and the rest of the run is skipped
            skip(f"nothing to evaluate: {exc}")

    @task
    def plan(index: dict[str, Any]) -> dict[str, Any]:
        from newsrag.airflow.hooks import task_settings
        from newsrag.evaluation.dag_tasks import plan

        p = get_current_context()["params"]
        retrieval = {k: p.get(k) for k in ("alpha", "mode", "query_properties", "top_k")}
        return plan(p.get("golden"), p.get("sample"), retrieval, bool(p.get("judge")), p.get("generator"), index,
                    settings=task_settings())

    @task
    def batches(planned: dict[str, Any]) -> list[list[str]]:
        return list(planned["batches"])

    @task(max_active_tis_per_dagrun=2)
    def evaluate(case_ids: list[str], planned: dict[str, Any]) -> list[dict[str, Any]]:
        from newsrag.airflow.hooks import task_settings
        from newsrag.evaluation.dag_tasks import evaluate
        from newsrag.prompts.release import prompt_lookup

        settings = task_settings()
        return evaluate(case_ids, planned, prompt_lookup=prompt_lookup(settings), settings=settings)

    @task
    def score(results: list[list[dict[str, Any]]], planned: dict[str, Any]) -> dict[str, Any]:
        from newsrag.airflow.hooks import task_settings
        from newsrag.evaluation.dag_tasks import score
        from newsrag.prompts.release import prompt_lookup

        settings = task_settings()
        return score(list(results), planned, prompt_lookup=prompt_lookup(settings), settings=settings)

    @task(outlets=[REPORT])
    def write_report(summary: dict[str, Any]) -> dict[str, Any]:
        from newsrag.airflow.hooks import task_settings
        from newsrag.evaluation.dag_tasks import report

        reported = report(summary, settings=task_settings())
        get_current_context()["outlet_events"][REPORT].extra = {
            k: reported[k] for k in ("run_id", "status", "report", "headline")}
        return reported

    # a regression is notified also when its report could not be written (that task's own
    # failure callback says why)
    @task(trigger_rule="all_done_min_one_success")
    def notify(summary: dict[str, Any], reported: dict[str, Any] | None) -> dict[str, Any]:
        from newsrag.airflow.hooks import task_settings
        from newsrag.evaluation.dag_tasks import notify

        return notify(summary, reported, settings=task_settings())

    # notify already sent the regression (with its figures): no failure callback here, or every
    # regression would be notified twice
    @task(retries=0, on_failure_callback=None)
    def check_regressions(summary: dict[str, Any]) -> dict[str, Any]:
        from newsrag.evaluation.dag_tasks import check

        return check(summary)

    planned = plan(snapshot_index())
    results = evaluate.partial(planned=planned).expand(case_ids=batches(planned))
    scored = score(results, planned)
    reported = write_report(scored)
    checked = check_regressions(notify(scored, reported))
    reported >> checked  # a report that failed fails the run (notify ran all the same)


answer_quality()
