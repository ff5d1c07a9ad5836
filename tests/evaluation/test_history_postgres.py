"""The evaluation history on a live private PostgreSQL (tests/conftest.py starts it): the same
behaviour as on SQLite, atomic saves, and a URL whose password never shows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from newsrag.core.errors import StoreError
from newsrag.evaluation.history import HistoryStore
from newsrag.evaluation.models import (
    EvalRun,
    IndexSnapshot,
    MetricValue,
    QuestionResult,
    RetrievalConfig,
)
from newsrag.evaluation.regression import aggregate

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def make_run(run_id: str, minutes: int, *, hit: float = 1.0, sha: str = "a" * 64, status: str = "ok",
             case_ids: tuple[str, ...] = ("q0", "q1", "q2")) -> EvalRun:
    results = [QuestionResult(case_id=c, question=f"question {c}", answer="an answer [1]",
                              metrics={"hit@k": MetricValue(value=hit, method="offline:document"),
                                       "mrr": MetricValue(value=0.5, method="offline:document")},
                              failure_reason=None if hit else "missed gold document")
               for c in case_ids]
    return EvalRun(run_id=run_id, started_at=T0 + timedelta(minutes=minutes), status=status,
                   golden_path="examples/news/questions.jsonl", golden_sha256=sha,
                   index=IndexSnapshot(collection="NewsChunk", object_count=120, last_ingest_at=T0, vector_name="v"),
                   prompt_name="news-answer", prompt_version=str(minutes), generator="openai", model="m",
                   retrieval=RetrievalConfig(), results=results, aggregates=aggregate(results))


@pytest.fixture
def history(postgres_url: str) -> Iterator[HistoryStore]:
    with HistoryStore(postgres_url) as h:
        yield h


def test_runs_round_trip_and_queries_match_sqlite_semantics(history: HistoryStore, postgres_url: str) -> None:
    r1, r2, r3 = make_run("r1", 0), make_run("r2", 10, hit=0.0, status="regression"), make_run("r3", 20, sha="b" * 64)
    for run in (r1, r2, r3):
        history.save(run)
    assert history.get("r1") == r1 and history.get("nope") is None
    assert [r.run_id for r in history.list_runs()] == ["r3", "r2", "r1"]
    assert [r.run_id for r in history.list_runs(golden_sha256="a" * 64)] == ["r2", "r1"]
    assert history.previous(r2) == r1
    assert history.last_good("a" * 64).run_id == "r1"  # type: ignore[union-attr]
    assert history.best("hit@k", golden_sha256="a" * 64).run_id == "r1"  # type: ignore[union-attr]
    assert [v for _, v in history.trend("hit@k")] == [1.0, 0.0, 1.0]
    assert [s.run_id for s in history.summaries()] == ["r3", "r2", "r1"]
    assert [(h[0], h[2], h[3]) for h in history.case_history("q1")] == [
        ("r3", {"hit@k": 1.0, "mrr": 0.5}, None), ("r2", {"hit@k": 0.0, "mrr": 0.5}, "missed gold document"),
        ("r1", {"hit@k": 1.0, "mrr": 0.5}, None)]
    history.save(r1.model_copy(update={"status": "failed"}))  # saving again replaces the run
    with HistoryStore(postgres_url) as again:
        assert again.get("r1").status == "failed"  # type: ignore[union-attr]
        assert len(again.list_runs(limit=10)) == 3


def test_a_failed_save_leaves_no_partial_run(history: HistoryStore) -> None:
    history.save(make_run("r1", 0))
    duplicate = make_run("r2", 10, case_ids=("q0", "q1", "q0"))  # the third question row collides
    with pytest.raises(StoreError, match=r"run r2 not saved: UniqueViolation"):
        history.save(duplicate)
    assert [r.run_id for r in history.list_runs()] == ["r1"]
    assert [h[0] for h in history.case_history("q0")] == ["r1"]  # no orphan question rows
    history.save(make_run("r3", 20))  # the store is still usable
    assert history.get("r3") is not None


def test_the_url_password_never_shows(postgres_url: str) -> None:
    password = postgres_url.split(":")[2].split("@")[0]
    with HistoryStore(postgres_url) as h:
        assert password not in repr(h) and "postgres:***@127.0.0.1" in repr(h)
    wrong = postgres_url.replace(f":{password}@", ":not-the-pw-42@")
    with pytest.raises(StoreError, match=r"cannot open the evaluation history at postgresql://postgres:\*\*\*@") as info:
        HistoryStore(wrong)
    assert "not-the-pw-42" not in str(info.value) and password not in str(info.value)
