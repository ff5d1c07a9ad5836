from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from newsrag.evaluation.arms import breakdown_by_arm, feedback_by_arm, scores_by_version
from newsrag.evaluation.feedback import FeedbackRecord
from newsrag.evaluation.models import EvalRun
from newsrag.evaluation.report import write_report
from tests.evaluation.factories import make_run

pytestmark = pytest.mark.unit


def record(version: str, arm: str, rating: int, n: int = 0) -> FeedbackRecord:
    return FeedbackRecord(trace_id=f"t{version}{arm}{rating}{n}", rating=rating, comment=None,
                          created_at="2026-11-21", question="q", answer="a", prompt_name="news-answer",
                          prompt_version=version, arm=arm, payload={})


RECORDS = [record("1", "a", 1), record("1", "a", -1), record("2", "b", 1), record("2", "b", 1, 1),
           record("2", "b", -1), record("2", "a", 1)]


def run(run_id: str, day: int, version: str, hit: float, **extra: Any) -> EvalRun:
    return make_run(run_id, datetime(2026, 11, day, tzinfo=UTC),
                    {"hit@k": hit, "faithfulness": hit - 0.1}).model_copy(update={"prompt_version": version, **extra})


def test_feedback_and_scores_per_version_and_arm() -> None:
    rows = feedback_by_arm(RECORDS)
    assert [(r["version"], r["arm"], r["up"], r["down"]) for r in rows] == [
        ("1", "a", 1, 1), ("2", "a", 1, 0), ("2", "b", 2, 1)]
    assert rows[2]["share_up"] == pytest.approx(2 / 3)
    scores = scores_by_version([run("r1", 2, "1", 0.8), run("r2", 3, "2", 0.9), run("r0", 1, "1", 0.5)])
    assert [(s["version"], s["run_id"], s["scores"]["hit@k"]) for s in scores] == [("1", "r1", 0.8), ("2", "r2", 0.9)]


def test_breakdown_joins_live_feedback_per_arm_with_the_latest_scores_of_its_version() -> None:
    runs = [run("r1-old", 1, "1", 0.6), run("r1", 3, "1", 0.8), run("r2", 2, "2", 0.9), run("r3", 4, "3", 0.7)]
    rows = breakdown_by_arm(RECORDS, runs)
    assert [(r["version"], r["arm"], r["up"], r["down"], r["n"], r["run_id"]) for r in rows] == [
        ("1", "a", 1, 1, 2, "r1"), ("2", "a", 1, 0, 1, "r2"), ("2", "b", 2, 1, 3, "r2"),
        ("3", "-", 0, 0, 0, "r3")]  # version 3 has scores, no live feedback
    assert rows[0]["scores"]["hit@k"] == 0.8 and rows[0]["scores"]["faithfulness"] == pytest.approx(0.7)
    assert rows[0]["scores"]["citation_precision"] is None  # not measured by that run
    assert rows[3]["share_up"] is None and rows[2]["share_up"] == pytest.approx(2 / 3)
    no_runs = breakdown_by_arm([record("9", "b", -1)], [])
    assert no_runs[0]["run_id"] is None and set(no_runs[0]["scores"].values()) == {None}


class History:
    """The history's runs (newest first); it is asked for this golden set's."""

    def __init__(self, runs: list[EvalRun]) -> None:
        self.runs = runs
        self.asked: list[Any] = []

    def list_runs(self, limit: int = 20, *, golden_sha256: str | None = None) -> list[EvalRun]:
        self.asked.append((limit, golden_sha256))
        return [r for r in self.runs if golden_sha256 in (None, r.golden_sha256)][:limit]


def test_the_report_renders_the_breakdown_from_the_history_and_the_feedback(tmp_path: Path) -> None:
    current = run("r-now", 5, "2", 0.85)
    history = History([run("r1", 3, "1", 0.8), run("r-crash", 4, "1", 0.1, status="failed"),
                       run("r-other-set", 4, "3", 0.2, golden_sha256="0" * 64)])
    path = write_report(current, history, tmp_path, feedback=RECORDS)
    assert history.asked == [(100, current.golden_sha256)]
    saved = json.loads((path.parent / "report.json").read_text())["arms"]
    assert saved["metrics"] == ["hit@k", "faithfulness", "citation_precision", "abstention_accuracy"]
    got = [(r["version"], r["arm"], r["up"], r["down"], r["run_id"], r["scores"]["hit@k"]) for r in saved["rows"]]
    # failed runs and other golden sets are not scores of a version; this run is version 2's latest
    assert got == [("1", "a", 1, 1, "r1", 0.8), ("2", "a", 1, 0, "r-now", 0.85), ("2", "b", 2, 1, "r-now", 0.85)]
    assert EvalRun.model_validate_json((path.parent / "report.json").read_text()) == current

    html = path.read_text()
    section = html.split('<section id="arms"')[1].split("</section>")[0]
    assert "Live feedback and offline scores per prompt version and A/B arm" in section
    table = {(m.group(1), m.group(2)): [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", m.group(3))]
             for m in re.finditer(r'<tr data-prompt="news-answer" data-version="([^"]+)" data-arm="([^"]+)">(.*?)</tr>',
                                  section)}
    assert table == {
        ("1", "a"): ["news-answer", "1", "a", "1", "1", "50%", "0.800", "0.700", "—", "—", "r1"],
        ("2", "a"): ["news-answer", "2", "a", "1", "0", "100%", "0.850", "0.750", "—", "—", "r-now"],
        ("2", "b"): ["news-answer", "2", "b", "2", "1", "67%", "0.850", "0.750", "—", "—", "r-now"],
    }


def test_without_feedback_or_other_versions_there_is_no_section(tmp_path: Path) -> None:
    html = write_report(run("r-now", 5, "2", 0.85), History([]), tmp_path, feedback=[]).read_text()
    assert '<section id="arms"' not in html
