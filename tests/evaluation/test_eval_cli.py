"""`newsrag eval` when what it evaluates cannot be reached: a clear error, no traceback, and the
history keeps its earlier runs."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def test_unreachable_weaviate_is_a_clear_error_and_history_is_untouched(tmp_path: Path) -> None:
    history = tmp_path / "history.sqlite"
    with sqlite3.connect(history) as db:
        db.execute("CREATE TABLE marker (x INTEGER)")
        db.execute("INSERT INTO marker VALUES (1)")
    env = {**os.environ, "NEWSRAG_HOME": str(tmp_path), "WEAVIATE_URL": "http://127.0.0.1:9",
           "WEAVIATE_GRPC_URL": "http://127.0.0.1:10", "WEAVIATE_TIMEOUT": "2",
           "NEWSRAG_EVAL_HISTORY_URL": str(history)}
    result = subprocess.run([sys.executable, "-m", "newsrag", "eval", "--golden",
                             str(REPO / "examples" / "news" / "questions.jsonl")],
                            capture_output=True, text=True, env=env, timeout=300, cwd=REPO, check=False)
    assert result.returncode != 0
    assert "cannot reach Weaviate" in result.stderr + result.stdout and "127.0.0.1:9" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    with sqlite3.connect(history) as db:
        assert db.execute("SELECT x FROM marker").fetchall() == [(1,)]


def test_compare_with_an_unknown_run_id_exits_2_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from newsrag.cli.main import app
    from newsrag.evaluation.history import HistoryStore
    from tests.evaluation.factories import T0, make_run

    history = tmp_path / "history.sqlite"
    with HistoryStore(history) as store:
        store.save(make_run("r-known", T0, {"hit@k": 0.9}))
    before = history.read_bytes()
    monkeypatch.setenv("NEWSRAG_HOME", str(tmp_path))
    monkeypatch.setenv("NEWSRAG_EVAL_HISTORY_URL", str(history))
    monkeypatch.setenv("WEAVIATE_URL", "http://127.0.0.1:9")  # never reached: the id is checked first
    result = CliRunner().invoke(app, ["eval", "--golden", str(REPO / "examples" / "news" / "questions.jsonl"),
                                      "--compare", "r-missing"])
    printed = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "bad input: --compare: no run 'r-missing'" in printed and "newest runs: r-known" in printed
    assert "Traceback" not in result.output and history.read_bytes() == before


def test_eval_feedback_writes_regression_cases_and_a_review_file_from_the_apps_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from newsrag.cli.main import app
    from newsrag.evaluation.feedback import FeedbackStore
    from newsrag.evaluation.golden import load_golden
    from newsrag.retrieval.answer import Answer, AnswerCitation

    db = tmp_path / "app" / "feedback.sqlite"
    store = FeedbackStore(db)
    cite = AnswerCitation(n=1, chunk_id="c1", doc_id="d1", url="https://news.example/harbor", title="Harbor",
                          quote="The Harbor Line light rail is expected to open in March 2027.")
    for trace, text, citations, abstained, rating in (
            ("up", "It opens in March 2027 [1].", [cite], False, 1),
            ("abstain", "The sources do not say.", [], True, 1),
            ("uncited", "Probably soon.", [], False, 1),
            ("down", "It opened in 1999 [1].", [cite], False, -1)):
        store.record_answer(Answer(text=text, citations=citations, abstained=abstained, trace_id=trace,
                                   prompt_name="news-answer", prompt_version="2", generator="openai", model="m"),
                            f"Question {trace}?")
        store.add_feedback(trace, rating, comment="wrong year" if rating < 0 else None)
    store.close()
    monkeypatch.setenv("NEWSRAG_APP_FEEDBACK_DB", str(db))
    cases, review = tmp_path / "out" / "cases.jsonl", tmp_path / "out" / "review.jsonl"
    result = CliRunner().invoke(app, ["eval-feedback", "--cases", str(cases), "--review", str(review)])
    printed = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert f"4 feedback record(s) in {db}: 2 regression case(s) -> {cases}, 2 to review -> {review}" in printed
    gold = load_golden(cases)  # a valid golden set, ready to review and append
    up, abstain = gold.by_id("feedback-up"), gold.by_id("feedback-abstain")
    assert up.gold_urls == ["https://news.example/harbor"] and up.reference_answer == "It opens in March 2027 [1]."
    assert up.gold_spans == ["The Harbor Line light rail is expected to open in March 2027."] and up.answerable
    assert not abstain.answerable and abstain.tags == ["feedback"]
    items = [json.loads(line) for line in review.read_text().splitlines()]
    assert [(i["trace_id"], i["reason"]) for i in items] == [("uncited", "thumbs-up answer without citations"),
                                                             ("down", "thumbs-down")]
    assert items[1]["comment"] == "wrong year" and items[1]["prompt_version"] == "2"


def test_eval_feedback_on_a_corrupt_store_is_a_clear_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from newsrag.cli.main import app

    bad = tmp_path / "feedback.sqlite"
    bad.write_bytes(b"not a database" * 200)
    result = CliRunner().invoke(app, ["eval-feedback", "--feedback-db", str(bad), "--cases",
                                      str(tmp_path / "c.jsonl"), "--review", str(tmp_path / "r.jsonl")])
    assert result.exit_code == 1 and f"feedback store {bad} is unreadable" in " ".join(result.output.split())
    assert not (tmp_path / "c.jsonl").exists() and "Traceback" not in result.output
