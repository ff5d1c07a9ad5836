"""answer_quality on an empty index (#21 item 13): the run is skipped at its first task with the
reason, without a retry (it used to fail, then retry after 5 minutes, holding back the evaluation
of fresh data), and a scheduled run leaves room for the Asset-triggered one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.dags.conftest import REPO, collect_logs, load_dag

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("empty", ["missing", "no objects"])
def test_an_empty_index_skips_the_run_with_the_reason_and_no_retry(
        empty: str, airflow_db: str, weaviate_server: Any, collection_name: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from newsrag.core.settings import Settings
    from newsrag.store.weaviate import WeaviateStore

    for var in [v for v in os.environ if v.startswith("AIRFLOW_CONN_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("WEAVIATE_COLLECTION", collection_name)
    monkeypatch.setenv("NEWSRAG_EVAL_HISTORY_URL", str(tmp_path / "history.sqlite"))
    monkeypatch.setenv("NEWSRAG_EVAL_REPORTS_DIR", str(tmp_path / "reports"))
    store = WeaviateStore(Settings(), collection=collection_name)
    if empty == "no objects":
        store.ensure_collection(["v"])
    try:
        dag = load_dag(REPO / "dags" / "answer_quality.py", "answer_quality")
        assert dag.get_task("snapshot_index").retries == 1  # a retry is configured, and not spent
        with collect_logs("") as logs:
            run = dag.test()
    finally:
        if store.exists():
            store.drop()
        store.close()
    assert str(run.state) == "success"  # not failed: nothing was there to evaluate
    with create_session() as session:
        tis = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == "answer_quality",
                                                         TaskInstance.run_id == run.run_id)).all()
        states = {ti.task_id: (str(ti.state).rsplit(".", 1)[-1], int(ti.try_number)) for ti in tis}
    assert states["snapshot_index"] == ("skipped", 1), states
    assert {s for t, (s, _) in states.items() if t != "snapshot_index"} == {"skipped"}, states
    text = logs.text()
    assert f"nothing to evaluate: collection {collection_name} has no objects: run ingestion first" in text, text[-3000:]
    assert not (tmp_path / "reports").exists()  # no report for a run that evaluated nothing


def test_a_scheduled_run_leaves_room_for_the_asset_triggered_one(airflow_db: str) -> None:
    dag = load_dag(REPO / "dags" / "answer_quality.py", "answer_quality")
    assert dag.max_active_runs == 2 and dag.catchup is False
