"""The ingestion run's summary: totals over every source report, and the run-level verdict."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from newsrag.core.errors import NewsragError
from newsrag.core.settings import IngestSettings, Settings

COUNTS = ("items_seen", "new", "changed", "unchanged", "duplicates", "skipped", "chunks_embedded",
          "chunks_cached", "chunks_written", "chunks_deleted")


class AllSourcesFailed(NewsragError):
    """Every source of the run failed: the run itself should fail (one failing source does not)."""


def summarize(results: Iterable[Any], expected: int | None = None) -> dict[str, Any]:
    """Totals over reports (dicts, possibly nested per batch). A missing batch result counts as a
    failed source. Raises AllSourcesFailed when no source succeeded."""
    reports = [r for r in _flatten(results)]
    totals: dict[str, Any] = {k: sum(int(r.get(k, 0)) for r in reports) for k in COUNTS}
    failed = [r["source_id"] for r in reports if r.get("status") == "failed"]
    missing = max(0, (expected or 0) - len(reports))
    totals.update(sources=len(reports) + missing, sources_failed=len(failed) + missing, failed_sources=failed,
                  items_failed=sum(len(r.get("failed", [])) for r in reports),
                  items_warned=sum(len(r.get("warnings", [])) for r in reports))  # a field was cut
    if totals["sources"] and totals["sources_failed"] == totals["sources"]:
        errors = [f"{r['source_id']}: {r.get('error')}" for r in reports if r.get("status") == "failed"]
        if missing:
            errors.append(f"{missing} source(s) without a report (their ingest task failed: see its log)")
        raise AllSourcesFailed(f"all {totals['sources']} source(s) failed: {'; '.join(errors)}")
    return totals


def _flatten(results: Iterable[Any]) -> Iterable[dict[str, Any]]:
    for item in results:
        if item is None:
            continue
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


def plan_batches(sources_file: str | None, only: str | None, max_map_length: int | None = None, *,
                 settings: Settings | None = None) -> list[list[dict[str, Any]]]:
    """Read the registry at run time and split enabled sources into mapped batches. ``settings``:
    the root (an Airflow task's ``task_settings()``; None: the defaults) for the registry file and
    the batch count when they are not given."""
    from newsrag.ingest.registry import batches, load_registry

    ingest = (settings or Settings({})).get(IngestSettings)
    registry = load_registry(sources_file or ingest.sources_file)
    specs = registry.enabled(only)
    return [[{**s, "_base_dir": registry.base_dir} for s in batch]
            for batch in batches(specs, max_map_length or ingest.max_map_length)]


def run_window(run_type: Any, interval_start: Any, interval_end: Any, since: str | None,
               until: str | None) -> tuple[str | None, str | None]:
    """The publication window a DAG run ingests: a backfill run covers its data interval, any other
    run the ``since``/``until`` it was given (both None: everything).

    ``run_type`` may be a plain string or either of Airflow's ``DagRunType`` enums; the Task SDK's
    enum prints as ``DagRunType.BACKFILL``, so its ``value`` is compared, not its ``str``."""
    kind = str(getattr(run_type, "value", run_type) or "").lower()
    if kind != "backfill":
        return since, until
    if interval_start is None or interval_end is None or not interval_start < interval_end:
        raise NewsragError(f"a backfill run needs a data interval with a start before its end (got "
                           f"{interval_start} to {interval_end}); schedule the DAG with a data-interval "
                           f"timetable such as CronDataIntervalTimetable")
    return _iso(interval_start), _iso(interval_end)


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
