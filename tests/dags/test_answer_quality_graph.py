"""The answer_quality graph shows the issue's steps, each task calling one library function:
snapshot the index -> plan -> evaluate (mapped in batches) -> score -> write the report -> notify ->
check regressions; notify runs also when the report failed, and such a failure still fails the run."""

from __future__ import annotations

import pytest

from tests.dags.conftest import REPO, load_dag

pytestmark = pytest.mark.unit


def test_the_graph_has_one_task_per_step(airflow_db: str) -> None:
    dag = load_dag(REPO / "dags" / "answer_quality.py", "answer_quality")
    upstream = {t.task_id: set(t.upstream_task_ids) for t in dag.tasks}  # type: ignore[attr-defined]
    assert upstream == {
        "snapshot_index": set(), "plan": {"snapshot_index"}, "batches": {"plan"},
        "evaluate": {"plan", "batches"}, "score": {"evaluate", "plan"}, "write_report": {"score"},
        "notify": {"score", "write_report"}, "check_regressions": {"notify", "write_report"}}
    tasks = {t.task_id: t for t in dag.tasks}  # type: ignore[attr-defined]
    assert tasks["notify"].trigger_rule == "all_done_min_one_success"
    assert [a.uri for a in tasks["write_report"].outlets] == ["newsrag://reports/answer_quality"]
    assert not tasks["check_regressions"].on_failure_callback and tasks["check_regressions"].retries == 0
    assert tasks["notify"].on_failure_callback  # the default one: a notify that fails is itself reported
