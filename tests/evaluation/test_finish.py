"""After a run: a report that cannot be written is a clear error (path and reason) after the run is
saved and a regression notified, the history keeps every earlier run, a regression is notified
exactly once (also when the same run is finalized again), and the report carries the app's live
feedback per prompt version and arm."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from newsrag.core.settings import Settings
from newsrag.evaluation.feedback import FeedbackStore, feedback_location
from newsrag.evaluation.finish import ReportWriteError, finalize_run, write_run_report
from newsrag.evaluation.history import HistoryStore
from newsrag.evaluation.models import EvalRun, MetricValue
from newsrag.evaluation.regression import RegressionSettings, aggregate
from newsrag.retrieval.answer import Answer
from tests.evaluation.factories import T0, make_run, question
from tests.evaluation.notifiers import Capture

pytestmark = pytest.mark.unit

N = 20


def scored_run(run_id: str, hits: float, hours: int) -> EvalRun:
    """``N`` answerable questions, the first ``hits * N`` of them with their gold in the top k."""
    results = [question(f"q{i:02d}", metrics={"hit@k": 1.0 if i < hits * N else 0.0, "faithfulness": 0.9,
                                              "abstention_accuracy": 1.0}) for i in range(N)]
    run = make_run(run_id, T0 + timedelta(hours=hours), {}, results=results)
    run.aggregates = aggregate(results)
    return run


@pytest.fixture
def history(tmp_path: Path) -> Iterator[HistoryStore]:
    store = HistoryStore(tmp_path / "history.sqlite")
    yield store
    store.close()


def rows(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT run_id, status, run_json FROM eval_runs ORDER BY started_at").fetchall()


def test_a_report_that_cannot_be_written_is_a_clear_error_and_the_history_keeps_every_run(
        history: HistoryStore, tmp_path: Path) -> None:
    good = scored_run("r-good", 0.9, 0)
    finalize_run(good, history, out_dir=tmp_path / "ok-reports", gate=RegressionSettings(), notifiers=[])
    before = rows(tmp_path / "history.sqlite")
    blocked = tmp_path / "reports"
    blocked.write_text("a file where the reports folder should be")
    bad, capture = scored_run("r-bad", 0.3, 1), Capture()

    with pytest.raises(ReportWriteError) as caught:
        finalize_run(bad, history, out_dir=blocked, gate=RegressionSettings(), notifiers=[capture])
    message = str(caught.value)
    assert f"report of run r-bad not written to {blocked / 'r-bad' / 'report.html'}: NotADirectoryError" in message
    assert caught.value.path == blocked / "r-bad" / "report.html"
    assert isinstance(caught.value.__cause__, NotADirectoryError)
    after = rows(tmp_path / "history.sqlite")
    assert after[0] == before[0]  # the earlier run, byte for byte
    assert [(r[0], r[1]) for r in after] == [("r-good", "ok"), ("r-bad", "regression")]
    assert EvalRun.model_validate_json(after[1][2]).regressions == bad.regressions
    # the regression is still notified, saying why there is no report
    [(subject, body, level)] = capture.sent
    assert level == "error" and "REGRESSION" in subject and "hit@k dropped 0.900 -> 0.300" in body
    assert "report: NOT written: NotADirectoryError" in body
    assert caught.value.finalized is not None and caught.value.finalized.notified


def test_finalizing_the_same_regressed_run_again_does_not_notify_twice(history: HistoryStore,
                                                                       tmp_path: Path) -> None:
    """A retried DAG task finalizes the same run id again (the plan fixed it)."""
    finalize_run(scored_run("r-good", 0.9, 0), history, out_dir=tmp_path / "r", gate=RegressionSettings(),
                 notifiers=[])
    blocked = tmp_path / "blocked"
    blocked.write_text("x")
    capture = Capture()
    with pytest.raises(ReportWriteError):
        finalize_run(scored_run("r-bad", 0.3, 1), history, out_dir=blocked, gate=RegressionSettings(),
                     notifiers=[capture])
    retried = finalize_run(scored_run("r-bad", 0.3, 1), history, out_dir=tmp_path / "r",
                           gate=RegressionSettings(), notifiers=[capture])
    assert len(capture.sent) == 1 and not retried.notified
    assert retried.report == tmp_path / "r" / "r-bad" / "report.html" and retried.report.is_file()
    assert [r.run_id for r in history.list_runs()] == ["r-bad", "r-good"]  # replaced, not duplicated
    other = finalize_run(scored_run("r-bad-2", 0.3, 2), history, out_dir=tmp_path / "r",
                         gate=RegressionSettings(), notifiers=[capture])
    assert other.notified and len(capture.sent) == 2  # a new regressed run is notified


def test_an_ok_run_is_not_notified(history: HistoryStore, tmp_path: Path) -> None:
    capture = Capture()
    done = finalize_run(scored_run("r1", 0.9, 0), history, out_dir=tmp_path, gate=RegressionSettings(),
                        notifiers=[capture])
    assert capture.sent == [] and not done.notified and done.baseline is None and done.report is not None


def test_an_unreadable_feedback_store_fails_the_report_naming_it(history: HistoryStore, tmp_path: Path) -> None:
    broken = tmp_path / "feedback.sqlite"
    broken.write_bytes(b"this is not a database" * 100)
    run = scored_run("r1", 0.9, 0)
    history.save(run)
    with pytest.raises(ReportWriteError, match=rf"not written to .*r1.*StoreError: feedback store {broken} is "
                                               "unreadable: DatabaseError"):
        write_run_report(run, history, tmp_path / "reports", feedback_path=broken)


def test_the_report_carries_live_feedback_from_the_apps_store(history: HistoryStore, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The feedback store is found where the app keeps it (NEWSRAG_APP_FEEDBACK_DB)."""
    path = tmp_path / "app-feedback.sqlite"
    store = FeedbackStore(path)

    for trace, version, arm, rating in (("t1", "3", "a", 1), ("t2", "3", "a", 1), ("t3", "3", "a", -1),
                                        ("t4", "4", "b", -1)):
        answer = Answer(text="An answer [1].", trace_id=trace, prompt_name="news-answer", prompt_version=version,
                        generator="openai", model="m")
        store.record_answer(answer, "Q?", arm=arm)
        store.add_feedback(trace, rating)
    store.close()
    monkeypatch.setenv("NEWSRAG_APP_FEEDBACK_DB", str(path))
    run = scored_run("r1", 0.9, 0)
    done = finalize_run(run, history, out_dir=tmp_path / "reports", gate=RegressionSettings(), notifiers=[],
                        feedback_path=feedback_location(Settings()))
    assert done.report is not None
    arms = json.loads((done.report.parent / "report.json").read_text())["arms"]
    assert [(r["version"], r["arm"], r["up"], r["down"]) for r in arms["rows"]] == [("3", "a", 2, 1),
                                                                                    ("4", "b", 0, 1)]
    assert arms["rows"][0]["scores"]["hit@k"] == pytest.approx(0.9) and arms["rows"][0]["run_id"] == "r1"
    assert arms["rows"][1]["run_id"] is None  # version 4 has live feedback but no evaluation run
    assert "67%" in done.report.read_text() and 'data-version="4" data-arm="b"' in done.report.read_text()


def test_compare_chooses_the_reports_baseline_but_the_gate_uses_the_last_good_run(history: HistoryStore,
                                                                                   tmp_path: Path) -> None:
    """``--compare`` picks what the report compares with; regressions stay "a drop relative to
    the last good run", whatever run the report is compared with."""
    gate = RegressionSettings(min_hit_at_k=0.0)
    old, good = scored_run("r-old", 0.3, 0), scored_run("r-good", 0.9, 1)
    for run in (old, good):
        finalize_run(run, history, out_dir=tmp_path / "reports", gate=gate, notifiers=[])
    assert (old.status, good.status) == ("ok", "ok")
    capture = Capture()
    new = scored_run("r-new", 0.6, 2)  # no drop from r-old, a drop from r-good
    done = finalize_run(new, history, out_dir=tmp_path / "reports", gate=gate, notifiers=[capture],
                        compare_run=history.get("r-old"))
    assert done.baseline is not None and done.baseline.run_id == "r-good"
    assert done.compared is not None and done.compared.run_id == "r-old"
    assert new.status == "regression" and any(r.startswith("hit@k dropped 0.900 -> 0.600 vs run r-good")
                                              for r in new.regressions)
    [(_, body, _)] = capture.sent
    assert "baseline: run r-good" in body
    assert done.report is not None
    section = done.report.read_text().split('<section id="comparison"')[1].split("</section>")[0]
    assert "r-old" in section and "r-good" not in section
    # without --compare the report compares with the gate's baseline
    plain = finalize_run(scored_run("r-plain", 0.9, 3), history, out_dir=tmp_path / "reports", gate=gate,
                         notifiers=[])
    assert plain.compared is not None and plain.baseline is not None
    assert plain.compared.run_id == "r-good" == plain.baseline.run_id


FAKE_KEY = "sk-live-FAKEFAKE0123456789abcdef"


def test_secrets_in_error_text_never_reach_the_history_the_report_or_a_message(
        history: HistoryStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_TEST_PROVIDER_API_KEY", FAKE_KEY)
    leak = (f"AuthenticationError: Incorrect API key provided: {FAKE_KEY} calling "
            "https://svc-user:hunter2pass@llm.example/v1/chat/completions")
    results = [question(f"q{i:02d}", error=leak, failure_reason=f"error: {leak}") for i in range(N)]
    run = make_run("r-leak", T0, {}, results=results)
    run.results[0].metrics = {"faithfulness_judge": MetricValue(value=None, method="judge:m",
                                                                details={"error": leak, "attempts": [leak]})}
    run.notes = [f"note: {leak}"]
    capture = Capture()
    done = finalize_run(run, history, out_dir=tmp_path / "reports", gate=RegressionSettings(), notifiers=[capture],
                        environ=Settings().environ)
    assert run.status == "regression"  # every question crashed
    assert done.report is not None
    texts = {"history": json.dumps(rows(tmp_path / "history.sqlite")),
             "report.html": done.report.read_text(), "report.json": (done.report.parent / "report.json").read_text(),
             "index.html": (tmp_path / "reports" / "index.html").read_text(),
             "messages": json.dumps(capture.sent)}
    with sqlite3.connect(tmp_path / "history.sqlite") as db:
        texts["eval_results"] = json.dumps(db.execute("SELECT * FROM eval_results").fetchall())
    for where, text in texts.items():
        assert FAKE_KEY not in text and "hunter2pass" not in text and "svc-user" not in text, where
    assert "Incorrect API key provided: *** calling https://***@llm.example/v1" in texts["report.html"]
    saved = history.get("r-leak")
    assert saved is not None and saved.results[1].error == (
        "AuthenticationError: Incorrect API key provided: *** calling https://***@llm.example/v1/chat/completions")


def test_a_question_whose_exception_quotes_a_secret_records_it_redacted(monkeypatch: pytest.MonkeyPatch,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    from newsrag.evaluation.golden import GoldenCase
    from newsrag.evaluation.models import RetrievalConfig
    from newsrag.evaluation.runner import evaluate_case

    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)

    class LeakyAnswerer:
        @property
        def searcher(self) -> Any:
            raise RuntimeError(f"POST https://svc-user:hunter2pass@llm.example/v1 refused key {FAKE_KEY}")

    case = GoldenCase(id="q1", question="Who?", gold_urls=["https://news.example/a"])
    with caplog.at_level("WARNING"):
        r = evaluate_case(case, LeakyAnswerer(), RetrievalConfig(), settings=Settings())  # type: ignore[arg-type]
    assert r.error == "RuntimeError: POST https://***@llm.example/v1 refused key ***"
    assert r.failure_reason == f"error: {r.error}"
    assert FAKE_KEY not in caplog.text and "hunter2pass" not in caplog.text and "refused key ***" in caplog.text
