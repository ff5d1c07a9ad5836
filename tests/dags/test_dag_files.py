"""Every DAG file parses, defines what it should, and opens no connection while being parsed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((REPO / "dags").glob("*.py"))
assert DAG_FILES

NO_NETWORK = r"""
import socket, sys
def refuse(*a, **k):
    raise AssertionError(f"DAG parsing opened a connection: {a!r}")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
import importlib.util, os
sys.path.append(os.path.dirname(sys.argv[1]))  # as Airflow's bundle DagBag does
spec = importlib.util.spec_from_file_location("dagfile", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
heavy = sorted(m for m in ("weaviate", "torch", "sentence_transformers", "feedparser", "trafilatura", "ingest", "retrieval")
               if m in sys.modules)
assert not heavy, f"DAG parsing imported heavy libraries: {heavy}"
print("ok")
"""


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_parses_without_connections_or_heavy_imports(path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", NO_NETWORK, str(path)], capture_output=True, text=True, check=False,
                            timeout=120, cwd=REPO)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]


def test_dagbag_has_no_import_errors_and_expected_dags(airflow_db: str) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    assert {"news_ingest", "answer_quality"} <= set(bag.dag_ids)
    dag = bag.get_dag("news_ingest")
    assert dag.catchup is False
    assert {t.task_id for t in dag.tasks} == {"check_store", "plan_batches", "ingest_batch", "summarize",
                                              "publish_index"}
    upstream = {t.task_id: set(t.upstream_task_ids) for t in dag.tasks}
    assert upstream["plan_batches"] == {"check_store"}  # the store is checked before any source is read
    assert upstream["publish_index"] == {"summarize"}


def test_news_ingest_runs_cover_hour_wide_data_intervals_for_backfills(airflow_db: str) -> None:
    """A backfill run ingests its data interval, so the schedule must give intervals a width."""
    import pendulum
    from airflow.timetables.base import TimeRestriction

    from tests.dags.conftest import load_dag

    dag = load_dag(REPO / "dags" / "news_ingest.py", "news_ingest")
    restriction = TimeRestriction(earliest=pendulum.datetime(2026, 10, 1, tz="UTC"), latest=None, catchup=True)
    info = dag.timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)  # type: ignore[attr-defined]
    assert info is not None
    assert (info.data_interval.start, info.data_interval.end) == (
        pendulum.datetime(2026, 10, 1, 0, tz="UTC"), pendulum.datetime(2026, 10, 1, 1, tz="UTC"))


def test_news_ingest_protects_the_machine_and_retries_with_backoff(airflow_db: str) -> None:
    from datetime import timedelta

    from tests.dags.conftest import load_dag

    dag = load_dag(REPO / "dags" / "news_ingest.py", "news_ingest")
    ingest = dag.get_task("ingest_batch")
    assert ingest.pool == "newsrag_embeddings" and ingest.max_active_tis_per_dagrun == 2
    assert ingest.retries == 3 and ingest.retry_exponential_backoff
    assert ingest.retry_delay == timedelta(seconds=30) and ingest.max_retry_delay == timedelta(minutes=10)
    # summarize runs after failed batches (their reports are pushed), not when check_store failed
    assert dag.get_task("summarize").trigger_rule == "all_done_min_one_success" and dag.get_task("summarize").retries == 0
    assert dag.timetable.summary == "0 * * * *" and dag.max_active_runs == 1  # hourly by default
    assert dag.get_task("summarize").outlets == []  # the event comes from publish_index, only on a change
    assert [o.uri.rstrip("/") for o in dag.get_task("publish_index").outlets] == ["weaviate://NewsChunk"]
    assert dag.get_task("check_store").retries == 3  # an outage is retried with the others' backoff


def test_news_ingest_retries_and_their_delay_come_from_the_environment(
        airflow_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from tests.dags.conftest import load_dag

    monkeypatch.setenv("NEWSRAG_INGEST_RETRIES", "2")
    monkeypatch.setenv("NEWSRAG_INGEST_RETRY_DELAY", "5")
    ingest = load_dag(REPO / "dags" / "news_ingest.py", "news_ingest").get_task("ingest_batch")
    assert (ingest.retries, ingest.retry_delay) == (2, timedelta(seconds=5))
