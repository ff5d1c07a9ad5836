from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from evaluation.arms import feedback_by_arm, scores_by_version
from evaluation.feedback import FeedbackRecord
from evaluation.report import write_report
from tests.evaluation.factories import make_run

pytestmark = pytest.mark.unit


def record(version: str, arm: str, rating: int) -> FeedbackRecord:
    return FeedbackRecord(trace_id=f"t{version}{arm}{rating}", rating=rating, comment=None, created_at="2026-11-21",
                          question="q", answer="a", prompt_name="news-answer", prompt_version=version, arm=arm,
                          payload={})


def test_feedback_and_scores_per_version_and_arm(tmp_path: Path) -> None:
    records = [record("1", "a", 1), record("1", "a", -1), record("2", "b", 1), record("2", "b", 1),
               record("2", "b", -1)]
    rows = feedback_by_arm(records)
    assert [(r["version"], r["arm"], r["up"], r["down"]) for r in rows] == [("1", "a", 1, 1), ("2", "b", 2, 1)]
    assert rows[1]["share_up"] == pytest.approx(2 / 3)
    old = make_run("r1", datetime(2026, 11, 1, tzinfo=UTC), {"hit@k": 0.8}).model_copy(update={"prompt_version": "1"})
    new = make_run("r2", datetime(2026, 11, 2, tzinfo=UTC), {"hit@k": 0.9}).model_copy(update={"prompt_version": "2"})
    scores = scores_by_version([old, new])
    assert [(s["version"], s["run_id"], s["scores"]["hit@k"]) for s in scores] == [("1", "r1", 0.8), ("2", "r2", 0.9)]
    html = write_report(new, None, tmp_path, compare_run=old, feedback=records).read_text()
    assert "Live feedback per version and arm" in html and "67%" in html
