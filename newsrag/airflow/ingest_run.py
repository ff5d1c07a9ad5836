"""news_ingest's run-level decisions, kept out of the DAG file (which only wires tasks):

* :func:`check_store`: the run's first task. An unreachable Weaviate raises the library's
  retryable ``StoreUnavailable`` (Airflow retries, then the run fails naming the URL); a refusal
  (wrong credentials) fails at once; a missing collection is logged (the run creates it).
* :func:`fail_failed_sources`: a batch whose sources ran but one failed ends ``failed`` on its
  last try, after its reports are pushed as its return value, so ``summarize`` still counts every
  source and the grid shows which batch holds the broken source.
* :func:`publish_or_skip`: the Asset event only when the run changed the index (chunks written or
  deleted); otherwise the task is skipped (no event, so no evaluation is scheduled) and its log
  says why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from newsrag.airflow.skip import skip
from newsrag.core.settings import Settings

log = logging.getLogger(__name__)


def index_changed(totals: Mapping[str, Any]) -> bool:
    """Whether a run wrote or deleted any chunk (what a consumer of the index cares about)."""
    return int(totals.get("chunks_written", 0)) + int(totals.get("chunks_deleted", 0)) > 0


def check_store(settings: Settings | None = None) -> dict[str, Any]:
    """The store's check (``newsrag.ingest.preflight``) with the task's settings (its Connections:
    ``task_settings()`` when none are given); a non-retryable library error fails the task without
    spending its retries."""
    from newsrag.airflow.hooks import task_settings
    from newsrag.core.errors import NewsragError
    from newsrag.ingest.preflight import check_store as preflight

    try:
        return preflight(settings=settings or task_settings()).as_dict()
    except NewsragError as exc:
        if exc.retryable:
            raise
        raise AirflowFailException(str(exc)) from None


def fail_failed_sources(ti: Any, reports: Sequence[Mapping[str, Any]]) -> None:
    """Fail the batch task (no retry: retryable errors were raised while tries remained) when one
    of its sources failed, after pushing the reports as its return value for ``summarize``."""
    failed = [r for r in reports if r.get("status") == "failed"]
    if not failed:
        return
    ti.xcom_push(key="return_value", value=list(reports))
    listed = "; ".join(f"{r['source_id']}: {r.get('error')}" for r in failed)
    raise AirflowFailException(f"{len(failed)} of {len(reports)} source(s) of this batch failed (the others' "
                               f"articles were written and are counted by summarize): {listed}")


def no_event_reason(totals: Mapping[str, Any]) -> str:
    failed = int(totals.get("sources_failed", 0))
    tail = f"; {failed} source(s) failed: {', '.join(totals.get('failed_sources', []))}" if failed else ""
    return (f"the index did not change in this run (0 chunks written or deleted, {totals.get('sources', 0)} "
            f"source(s), {totals.get('unchanged', 0)} unchanged article(s){tail}): no Asset event, so no "
            f"evaluation is scheduled")


def publish_or_skip(context: Mapping[str, Any], asset: Any, totals: Mapping[str, Any]) -> dict[str, Any]:
    """Set the Asset event's extra when the index changed; else skip the task (no event)."""
    if not index_changed(totals):
        skip(no_event_reason(totals))
    context["outlet_events"][asset].extra = dict(totals)
    log.info("the index changed (%s chunks written, %s deleted): Asset event for %s", totals.get("chunks_written"),
             totals.get("chunks_deleted"), asset.uri)
    return dict(totals)
