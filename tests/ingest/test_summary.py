"""Which publication window a DAG run ingests (``newsrag.ingest.summary.run_window``)."""

from __future__ import annotations

import pendulum
import pytest

from newsrag.core.errors import NewsragError
from newsrag.ingest.summary import run_window

pytestmark = pytest.mark.unit

START = pendulum.datetime(2026, 10, 5, 9, tz="UTC")
END = START.add(hours=1)


def sdk_backfill() -> object:
    from airflow.sdk.api.datamodels._generated import DagRunType

    assert str(DagRunType.BACKFILL) == "DagRunType.BACKFILL"  # why str() cannot be compared
    return DagRunType.BACKFILL


@pytest.mark.parametrize("run_type", [sdk_backfill, lambda: "backfill"], ids=["task-sdk-enum", "string"])
def test_a_backfill_run_covers_its_data_interval(run_type: object) -> None:
    assert run_window(run_type(), START, END, "2020-01-01", None) == (  # type: ignore[operator]
        "2026-10-05T09:00:00+00:00", "2026-10-05T10:00:00+00:00")


@pytest.mark.parametrize("run_type", ["manual", "scheduled", "asset_triggered", None])
def test_other_runs_use_their_params(run_type: object) -> None:
    assert run_window(run_type, START, END, "2026-10-01", "2026-10-02") == ("2026-10-01", "2026-10-02")
    assert run_window(run_type, START, END, None, None) == (None, None)


def test_a_backfill_without_a_data_interval_is_a_clear_error() -> None:
    with pytest.raises(NewsragError, match="needs a data interval with a start before its end"):
        run_window("backfill", START, START, None, None)  # a cron *trigger* timetable's zero-width run
