"""news_ingest: check the store, read the source registry at run time, map one task per source
batch, total the reports, and emit the Weaviate Asset (with the counts) only when the index changed.
Wiring only: every task body calls one function, imported inside the body so that parsing this file
stays cheap and opens no connection (the decisions are in newsrag/airflow/ingest_run.py)."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

from newsrag.airflow.notifier import on_failure

COLLECTION = os.environ.get("WEAVIATE_COLLECTION", "NewsChunk")
NEWS_INDEX = Asset(f"weaviate://{COLLECTION}", group="newsrag")
SCHEDULE = os.environ.get("NEWSRAG_INGEST_SCHEDULE", "@hourly")
EMBED_POOL = os.environ.get("NEWSRAG_EMBED_POOL", "newsrag_embeddings")
RETRIES = int(os.environ.get("NEWSRAG_INGEST_RETRIES", "3"))
RETRY_DELAY = timedelta(seconds=float(os.environ.get("NEWSRAG_INGEST_RETRY_DELAY", "30")))
EMBED_QUEUE = os.environ.get("NEWSRAG_EMBED_QUEUE", "default")  # e.g. "gpu": see docs/scaling.md
# Backfills cannot reach before the start date: set it before the oldest archive you will backfill.
START_DATE = pendulum.parse(os.environ.get("NEWSRAG_INGEST_START_DATE", "2026-01-01"), tz="UTC")


@dag(
    dag_id="news_ingest",
    # Data intervals (not cron triggers), so that a backfill run knows which hour it covers.
    schedule=CronDataIntervalTimetable(SCHEDULE, timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["newsrag", "ingest"],
    default_args={
        "retries": RETRIES,
        "retry_delay": RETRY_DELAY,
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "on_failure_callback": on_failure(),
    },
    params={
        "sources_file": Param(None, type=["null", "string"], description="Registry file; default from settings."),
        "source": Param(None, type=["null", "string"], description="Only this source id."),
        "since": Param(None, type=["null", "string"], description="Backfill: articles published from (ISO)."),
        "until": Param(None, type=["null", "string"], description="Backfill: articles published before (ISO)."),
        "full": Param(False, type="boolean",
                      description="Read every source in full, whatever its HTTP validators and file markers say."),
    },
)
def news_ingest() -> None:
    # First, so that an outage shows even when every source is unchanged (nothing would be written).
    @task
    def check_store() -> dict[str, Any]:
        from newsrag.airflow.hooks import task_settings
        from newsrag.airflow.ingest_run import check_store

        return check_store(settings=task_settings())

    @task
    def plan_batches() -> list[list[dict[str, Any]]]:
        from newsrag.airflow.hooks import task_settings
        from newsrag.ingest.summary import plan_batches

        params = get_current_context()["params"]
        return plan_batches(params.get("sources_file"), params.get("source"), settings=task_settings())

    @task(pool=EMBED_POOL, queue=EMBED_QUEUE, max_active_tis_per_dagrun=2)
    def ingest_batch(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from newsrag.airflow.hooks import task_settings
        from newsrag.airflow.ingest_run import fail_failed_sources
        from newsrag.ingest.pipeline import run_batch
        from newsrag.ingest.summary import run_window

        context = get_current_context()
        ti, params, run = context["ti"], context["params"], context["dag_run"]
        window = run_window(run.run_type, run.data_interval_start, run.data_interval_end,
                            params.get("since"), params.get("until"))
        # Retryable errors (timeouts, 5xx, Weaviate down) raise so Airflow retries with backoff;
        # on the last try they are reported instead, so the other sources' results still land.
        reports = run_batch(batch, raise_retryable=ti.try_number <= ti.max_tries, window=window,
                            full=bool(params.get("full")), settings=task_settings())
        fail_failed_sources(ti, reports)  # a failed source fails its batch, after the others landed
        return reports

    # No retries: the totals of the same results cannot change (and a wrong Connection is notified
    # at once). Runs when at least one batch ran, failed ones included; not after check_store failed.
    @task(trigger_rule="all_done_min_one_success", retries=0)
    def summarize(results: list[list[dict[str, Any]]], batches: list[list[dict[str, Any]]]) -> dict[str, Any]:
        from newsrag.airflow.consumers import check_consumers
        from newsrag.ingest.summary import summarize

        totals = summarize(list(results), expected=sum(len(b) for b in batches))
        check_consumers(get_current_context()["ti"], NEWS_INDEX.uri, totals)  # a paused answer_quality is logged
        return totals

    # The Asset event only when chunks were written or deleted (as prompts_deploy: skipped, no event).
    @task(outlets=[NEWS_INDEX], retries=0)
    def publish_index(totals: dict[str, Any]) -> dict[str, Any]:
        from newsrag.airflow.ingest_run import publish_or_skip

        return publish_or_skip(get_current_context(), NEWS_INDEX, totals)

    batches = plan_batches()
    check_store() >> batches
    publish_index(summarize(ingest_batch.expand(batch=batches), batches))


news_ingest()
