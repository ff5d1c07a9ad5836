"""Is anybody listening? news_ingest's check on the DAGs that consume its Asset.

``news_ingest`` emits ``Asset("weaviate://<collection>")``; ``answer_quality`` is scheduled on it
and scores the fresh data. Airflow 3 queues an Asset event only for consumers that are not paused
(``AssetManager._queue_dagruns``): while a consumer is paused its events are dropped, and unpausing
it later does not catch up on what was ingested meanwhile (its daily schedule runs again, the
Asset trigger waits for the next event). So the producer, after a successful run, reads each
consumer through the Task SDK (``RuntimeTaskInstance.get_dag``, the Execution API's
``GET /dags/{dag_id}``: no REST credentials, no metadata-DB access from task code) and, when one is
paused or missing:

* logs a WARNING in its own task log that names the consumer, the Asset and the fix;
* notifies through the shared notifier (``newsrag.airflow.notifier``; log, Slack, SMTP), once per
  run that changed the index (a run that wrote and deleted nothing left nothing to score).

The producer never fails because of this: its data landed. A check that cannot be made (the API
answered with an error) is logged and skipped. ``NEWSRAG_INGEST_CONSUMERS`` lists the consumers
(comma-separated, default ``answer_quality``; empty turns the check off), read from the settings
the task passes (default: the worker's environment).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from newsrag.core.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_CONSUMERS = "answer_quality"
ACTIVE, PAUSED, MISSING = "active", "paused", "missing"


def consumer_ids(settings: Settings) -> tuple[str, ...]:
    raw = settings.value("NEWSRAG_INGEST_CONSUMERS", DEFAULT_CONSUMERS) or ""
    return tuple(d.strip() for d in raw.split(",") if d.strip())


def dag_state(ti: Any, dag_id: str) -> str:
    """``active``, ``paused`` or ``missing`` (not in this Airflow); other API errors propagate."""
    from airflow.sdk.exceptions import AirflowRuntimeError

    try:
        return PAUSED if ti.get_dag(dag_id).is_paused else ACTIVE
    except AirflowRuntimeError as exc:
        detail = getattr(exc.error, "detail", None)
        if isinstance(detail, Mapping) and detail.get("status_code") == 404:
            return MISSING
        raise


def _problem(dag_id: str, state: str, asset_uri: str) -> str:
    if state == PAUSED:
        return (f"consumer DAG {dag_id!r} of Asset {asset_uri} is paused: this run's Asset event will not "
                f"schedule it, so nobody scores the fresh data (Airflow queues no Asset events for a paused "
                f"DAG; unpausing it later does not catch up). Unpause it: airflow dags unpause {dag_id}")
    return (f"consumer DAG {dag_id!r} of Asset {asset_uri} does not exist in this Airflow (not parsed, "
            f"an import error, or removed), so nobody scores the fresh data. Check the DAG folder and "
            f"`airflow dags list-import-errors`, or set NEWSRAG_INGEST_CONSUMERS")


def check_consumers(ti: Any, asset_uri: str, totals: Mapping[str, Any], dag_ids: Iterable[str] | None = None,
                    settings: Settings | None = None) -> dict[str, str]:
    """Check the Asset's consumers after a producer run; returns ``{dag_id: state}`` for those that
    are not listening (paused or missing). Logs and notifies as the module says; never raises.
    ``settings``: the task's (default: the worker's environment)."""
    from newsrag.airflow.ingest_run import index_changed
    from newsrag.airflow.notifier import notify

    settings = settings if settings is not None else Settings()
    problems: dict[str, str] = {}
    for dag_id in dag_ids if dag_ids is not None else consumer_ids(settings):
        try:
            state = dag_state(ti, dag_id)
        except Exception as exc:  # noqa: BLE001 - a monitoring check must not fail the producer
            log.warning("could not check consumer DAG %s of Asset %s: %s: %s", dag_id, asset_uri,
                        type(exc).__name__, exc)
            continue
        if state == ACTIVE:
            log.info("consumer DAG %s of Asset %s is active", dag_id, asset_uri)
            continue
        problems[dag_id] = state
        log.warning("%s", _problem(dag_id, state, asset_uri))
    if problems and index_changed(totals):
        subject = f"newsrag: {ti.dag_id} updated {asset_uri} but " + ", ".join(
            f"{d} is {s}" for d, s in problems.items())
        counts = ", ".join(f"{k} {totals.get(k, 0)}" for k in ("new", "changed", "chunks_written", "chunks_deleted"))
        head = f"DAG {ti.dag_id}, run {ti.run_id}, task {ti.task_id}: the run changed the index ({counts})."
        body = "\n".join([head, *(_problem(d, s, asset_uri) for d, s in problems.items())])
        notify(subject, body, level="warning", settings=settings)
    elif problems:
        log.info("this run changed nothing in %s: no notification", asset_uri)
    return problems
