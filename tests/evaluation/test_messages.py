"""What an evaluation run says: the notification's subject, body and level, and the terminal
summary (moved from tests/evaluation/test_notify.py with newsrag.evaluation.messages)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from rich.console import Console

from newsrag.evaluation.messages import print_summary, run_message
from newsrag.evaluation.models import Aggregate, EvalRun, IndexSnapshot, RetrievalConfig

pytestmark = pytest.mark.unit


def regression_run() -> tuple[EvalRun, EvalRun]:
    def run(run_id: str, hit: float, status: str, regressions: list[str]) -> EvalRun:
        return EvalRun(run_id=run_id, started_at=datetime(2026, 11, 2, tzinfo=UTC), status=status,
                       golden_path="examples/news/questions.jsonl", golden_sha256="a" * 64,
                       index=IndexSnapshot(collection="NewsChunk", object_count=120), prompt_name="answer",
                       prompt_version="v7", generator="openai", model="gpt-4o-mini", retrieval=RetrievalConfig(),
                       aggregates={"hit@k": Aggregate(mean=hit, low=hit - 0.1, high=min(1.0, hit + 0.1), n=24)},
                       regressions=regressions)
    base = run("run-good", 0.95, "ok", [])
    bad = run("run-bad", 0.40, "regression", ["hit@k 0.400 is below the floor 0.600 (NEWSRAG_EVAL_MIN_HIT_AT_K)"])
    return bad, base


def test_a_regression_message_names_run_prompt_metric_values_and_report() -> None:
    bad, base = regression_run()
    subject, body, level = run_message(bad, "/reports/run-bad/report.html", base)
    assert level == "error"
    assert subject == "newsrag eval REGRESSION: run run-bad (prompt answer v7, openai/gpt-4o-mini)"
    assert "baseline: run run-good (prompt answer v7)" in body
    assert "  - hit@k 0.400 is below the floor 0.600 (NEWSRAG_EVAL_MIN_HIT_AT_K)" in body
    assert "  hit@k: 0.400 [0.300, 0.500] (-0.550)" in body
    assert body.endswith("report: /reports/run-bad/report.html")
    ok_subject, ok_body, ok_level = run_message(base)
    assert ok_level == "info" and "ok: run run-good" in ok_subject and "report: not written" in ok_body
    assert "regressions:" not in ok_body


def test_print_summary_shows_the_headline_table() -> None:
    bad, base = regression_run()
    out = io.StringIO()
    print_summary(Console(file=out, width=200), bad, base, "/reports/x.html", ["slack: NotifyError: HTTP 500"])
    text = out.getvalue()
    assert "Δ vs run-good" in text and "hit@k" in text and "-0.550" in text and "[0.300, 0.500]" in text
    assert "regression: hit@k 0.400 is below the floor" in text
    assert "notification failed: slack: NotifyError: HTTP 500" in text and "report: /reports/x.html" in text
