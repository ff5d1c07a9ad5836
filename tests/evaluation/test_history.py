"""The run history on SQLite: round trips, ordering, previous/best/last good/trend, one
transaction per save (a crash mid-save leaves earlier runs intact and no partial run)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from newsrag.core.errors import StoreError
from newsrag.core.settings import Settings
from newsrag.evaluation.history import HistoryStore, display_url, history_location, reports_path
from newsrag.evaluation.models import (
    EvalRun,
    IndexSnapshot,
    MetricValue,
    QuestionResult,
    RetrievalConfig,
)
from newsrag.evaluation.regression import aggregate

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
SHA_A, SHA_B = "a" * 64, "b" * 64


def make_run(run_id: str, minutes: int, *, hit: float | None = 1.0, sha: str = SHA_A, status: str = "ok",
             n: int = 3) -> EvalRun:
    results = [QuestionResult(case_id=f"q{i}", question=f"question {i}", tags=["t"], answer="an answer [1]",
                              citations=[{"n": 1, "url": "https://x.example/a", "quote": "q"}],
                              retrieved=[{"chunk_id": "c1", "relevant": True, "score": 0.5}],
                              metrics={"hit@k": MetricValue(value=hit, method="offline:document", details={"k": 8}),
                                       "mrr": MetricValue(value=0.5, method="offline:document")},
                              latency_ms=12.5, failure_reason=None if hit else "missed gold document")
               for i in range(n)]
    return EvalRun(run_id=run_id, started_at=T0 + timedelta(minutes=minutes),
                   finished_at=T0 + timedelta(minutes=minutes, seconds=30), status=status,
                   golden_path="examples/news/questions.jsonl", golden_sha256=sha,
                   index=IndexSnapshot(collection="NewsChunk", object_count=120, last_ingest_at=T0, vector_name="v"),
                   prompt_name="extractive", prompt_version=f"v{minutes}", generator="extractive",
                   model="extractive", retrieval=RetrievalConfig(), results=results,
                   aggregates=aggregate(results), per_tag={"t": aggregate(results)},
                   timings={"total_s": 1.5}, notes=["note"])


def rid(run: EvalRun | None) -> str | None:
    return run.run_id if run is not None else None


@pytest.fixture
def history(tmp_path: Path) -> Any:
    with HistoryStore(tmp_path / "history.sqlite") as h:
        yield h


def test_a_saved_run_comes_back_equal_and_survives_reopening(history: HistoryStore, tmp_path: Path) -> None:
    run = make_run("r1", 0)
    history.save(run)
    assert history.get("r1") == run
    assert history.get("nope") is None
    history.close()
    with HistoryStore(tmp_path / "history.sqlite") as again:
        assert again.get("r1") == run
        assert again.case_history("q1") == [("r1", run.started_at, {"hit@k": 1.0, "mrr": 0.5}, None)]


def test_saving_a_run_id_again_replaces_it(history: HistoryStore) -> None:
    history.save(make_run("r1", 0, n=3))
    history.save(make_run("r1", 0, hit=0.0, n=2, status="regression"))
    got = history.get("r1")
    assert got is not None and got.status == "regression" and len(got.results) == 2
    assert [h[2]["hit@k"] for h in history.case_history("q0")] == [0.0]
    assert history.case_history("q2") == []


def test_list_runs_newest_first_with_limit_and_golden_filter(history: HistoryStore) -> None:
    for rid, minutes, sha in [("r2", 10, SHA_A), ("r1", 0, SHA_A), ("r3", 20, SHA_B), ("r4", 30, SHA_A)]:
        history.save(make_run(rid, minutes, sha=sha))
    assert [r.run_id for r in history.list_runs()] == ["r4", "r3", "r2", "r1"]
    assert [r.run_id for r in history.list_runs(2)] == ["r4", "r3"]
    assert [r.run_id for r in history.list_runs(golden_sha256=SHA_A)] == ["r4", "r2", "r1"]
    [summary] = history.summaries(1)
    assert (summary.run_id, summary.prompt_version, summary.object_count, summary.started_at) == \
        ("r4", "v30", 120, T0 + timedelta(minutes=30))
    assert summary.headline["hit@k"] == 1.0


def test_previous_is_the_last_earlier_run_on_the_same_golden_set(history: HistoryStore) -> None:
    r1, r2, r3, r4 = make_run("r1", 0), make_run("r2", 10), make_run("r3", 20, sha=SHA_B), make_run("r4", 30)
    for r in (r4, r3, r1, r2):
        history.save(r)
    assert rid(history.previous(r4)) == "r2"  # r3 used another golden set
    assert rid(history.previous(r2)) == "r1"
    assert history.previous(r1) is None and history.previous(r3) is None
    unsaved = make_run("r5", 25)  # works for a run not saved yet
    assert rid(history.previous(unsaved)) == "r2"


def test_best_last_good_and_trend(history: HistoryStore) -> None:
    history.save(make_run("r1", 0, hit=0.5))
    history.save(make_run("r2", 10, hit=0.75))
    history.save(make_run("r3", 20, hit=0.75))  # a tie: the newer wins
    history.save(make_run("r4", 30, hit=0.25, status="regression"))
    history.save(make_run("r5", 40, hit=None, sha=SHA_B))
    assert rid(history.best("hit@k")) == "r3"
    assert history.best("hit@k", golden_sha256=SHA_B) is None  # r5 has no defined hit@k
    assert history.best("ndcg@k") is None
    assert rid(history.last_good()) == "r5"
    assert rid(history.last_good(SHA_A)) == "r3"  # r4 is a regression
    assert rid(history.last_good(SHA_A, before=T0 + timedelta(minutes=15))) == "r2"
    assert history.last_good(SHA_A, before=T0) is None
    times = [T0 + timedelta(minutes=m) for m in (0, 10, 20, 30, 40)]
    assert history.trend("hit@k") == [(times[0], 0.5), (times[1], 0.75), (times[2], 0.75), (times[3], 0.25),
                                      (times[4], None)]
    assert history.trend("hit@k", 2) == [(times[3], 0.25), (times[4], None)]
    assert history.trend("hit@k", golden_sha256=SHA_B) == [(times[4], None)]


def test_a_crash_mid_save_leaves_earlier_runs_intact_and_no_partial_run(history: HistoryStore,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    r1, r2 = make_run("r1", 0), make_run("r2", 10)
    history.save(r1)
    history.save(r2)
    real = history._db.execute
    inserts: list[str] = []

    def crash_after_first_insert(sql: str, params: Any = ()) -> Any:
        if sql.lstrip().upper().startswith("INSERT"):
            inserts.append(sql)
            if len(inserts) > 1:
                raise RuntimeError("disk full")
        return real(sql, params)

    monkeypatch.setattr(history._db, "execute", crash_after_first_insert)
    with pytest.raises(RuntimeError, match="disk full"):
        history.save(make_run("r3", 20))
    inserts.clear()
    changed = make_run("r2", 10, hit=0.0, status="regression")
    with pytest.raises(RuntimeError, match="disk full"):
        history.save(changed)  # the replace deleted r2's rows first: the rollback must bring them back
    monkeypatch.setattr(history._db, "execute", real)
    assert history.get("r3") is None
    assert [r.run_id for r in history.list_runs()] == ["r2", "r1"]
    assert history.get("r1") == r1 and history.get("r2") == r2
    assert [h[0] for h in history.case_history("q0")] == ["r2", "r1"]
    history.save(make_run("r3", 20))  # the store is still usable
    assert history.get("r3") is not None


def test_a_database_error_becomes_a_store_error(history: HistoryStore, tmp_path: Path) -> None:
    history.save(make_run("r1", 0))
    with HistoryStore(tmp_path / "history.sqlite") as other:
        other._db.conn.execute("PRAGMA busy_timeout = 0")
        other._db.conn.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        history._db.conn.execute("PRAGMA busy_timeout = 0")
        with pytest.raises(StoreError, match=r"run r2 not saved: OperationalError: database is locked"):
            history.save(make_run("r2", 10))
        other._db.conn.execute("ROLLBACK")
    assert [r.run_id for r in history.list_runs()] == ["r1"]


def test_default_location_is_under_newsrag_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NEWSRAG_EVAL_HISTORY_URL", raising=False)
    monkeypatch.delenv("NEWSRAG_EVAL_REPORTS_DIR", raising=False)
    settings = Settings()  # what an edge builds
    with HistoryStore(history_location(settings)) as h:
        h.save(make_run("r1", 0))
    assert (tmp_path / "home" / "eval-history.sqlite").is_file()
    assert reports_path(settings) == tmp_path / "home" / "reports"
    monkeypatch.setenv("NEWSRAG_EVAL_HISTORY_URL", str(tmp_path / "elsewhere.sqlite"))
    with HistoryStore(history_location(Settings())) as h:
        assert h.list_runs() == []
    assert (tmp_path / "elsewhere.sqlite").is_file()
    assert history_location(Settings({})) == str(Path(".newsrag") / "eval-history.sqlite")  # no environment read


def test_a_postgres_url_never_shows_its_password() -> None:
    url = "postgresql://evaluser:s3cr3t-pw@127.0.0.1:1/evals"
    assert display_url(url) == "postgresql://evaluser:***@127.0.0.1:1/evals"
    with pytest.raises(StoreError) as caught:
        HistoryStore(url)  # nothing listens on port 1
    assert "s3cr3t-pw" not in str(caught.value) and "evaluser:***@127.0.0.1:1" in str(caught.value)
