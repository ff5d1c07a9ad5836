"""The release's plain steps without Airflow: the candidate a deploy event names, the index check
that keeps both evaluations on one snapshot, and the comparison table's paired intervals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from newsrag.evaluation.models import (
    EvalRun,
    IndexSnapshot,
    MetricValue,
    QuestionResult,
    RetrievalConfig,
)
from newsrag.evaluation.regression import aggregate
from newsrag.prompts.release import deployed_candidate
from newsrag.prompts.release_eval import comparison, comparison_lines, index_moved

pytestmark = pytest.mark.unit

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_the_deployed_candidate_is_the_newest_version_of_the_template() -> None:
    events = [{"registered": ["news-answer@2", "other@9"]}, {"registered": ["news-answer@10", "news-answer@1.2.0"]},
              {"from_rest_api": True}, {"registered": None}]
    assert deployed_candidate("news-answer", events) == "10"  # numerically newest, not "2" > "10"
    assert deployed_candidate("other", events) == "9"
    assert deployed_candidate("missing", events) is None
    assert deployed_candidate("news", events) is None  # a prefix of another name is not that name


class FakeStore:
    def __init__(self, count: int, newest: datetime | None) -> None:
        self._count, self._newest = count, newest

    def exists(self) -> bool:
        return True

    def count(self) -> int:
        return self._count

    def newest_ingested_at(self) -> Any:
        return self._newest.isoformat() if self._newest else None


def test_an_evaluation_notices_when_the_index_moved_since_the_snapshot() -> None:
    snap = IndexSnapshot(collection="News", object_count=120, last_ingest_at=T0, vector_name="v")
    assert index_moved(FakeStore(120, T0), snap) is None
    moved = index_moved(FakeStore(121, datetime(2026, 12, 1, 9, 0, tzinfo=UTC)), snap)
    assert moved and "collection News changed during the release" in moved and "121" in moved
    assert index_moved(FakeStore(120, datetime(2026, 12, 1, 9, 0, tzinfo=UTC)), snap)  # re-ingested in place


def run(run_id: str, citation: list[float]) -> EvalRun:
    results = [QuestionResult(case_id=f"q{i}", question="q", metrics={
        "citation_precision": MetricValue(value=v, method="offline"), "hit@k": MetricValue(value=1.0, method="o")})
        for i, v in enumerate(citation)]
    return EvalRun(run_id=run_id, started_at=T0, golden_path="g", golden_sha256="s",
                   index=IndexSnapshot(collection="News", object_count=1), prompt_name="news-answer",
                   prompt_version=run_id, generator="openai", model="m", retrieval=RetrievalConfig(),
                   results=results, aggregates=aggregate(results))


def test_the_comparison_has_each_metrics_paired_difference_with_its_interval() -> None:
    active, candidate = run("1", [1.0] * 10), run("3", [0.0] * 8 + [1.0] * 2)
    table = comparison(candidate, active, n_resamples=500)
    mean, low, high = table["citation_precision"]["diff"]
    assert mean == pytest.approx(-0.8) and low <= mean <= high < 0  # the interval excludes no change
    assert table["hit@k"]["diff"] == [0.0, 0.0, 0.0]
    assert table["citation_precision"]["active"][0] == 1.0
    assert comparison_lines(table)[0].startswith("hit@k: 1.000 -> 1.000 (paired diff +0.000, 95% CI")
    assert "citation_precision: 1.000 -> 0.200 (paired diff -0.800" in "\n".join(comparison_lines(table))
    alone = comparison(candidate, None)  # the first release of a template: no active version
    assert "diff" not in alone["citation_precision"] and comparison_lines(alone) == []


def test_the_release_reads_the_feedback_store_the_app_writes(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from newsrag.core.errors import StoreError
    from newsrag.core.settings import Settings
    from newsrag.evaluation.feedback import FeedbackStore
    from newsrag.prompts.release_eval import _live_feedback

    path = tmp_path / "app" / "feedback.db"
    monkeypatch.setenv("NEWSRAG_APP_FEEDBACK_DB", str(path))
    assert _live_feedback(Settings()) == []  # the app never wrote one
    path.parent.mkdir()
    store = FeedbackStore(path)
    answer = SimpleNamespace(trace_id="t1", text="x", abstained=False, prompt_name="news-answer", prompt_version="2",
                             generator="extractive", model=None, model_dump=lambda mode: {})
    store.record_answer(answer, "q?", arm="canary")
    store.add_feedback("t1", 1)
    store.close()
    records = _live_feedback(Settings())
    assert [(r.prompt_version, r.arm, r.rating) for r in records] == [("2", "canary", 1)]
    path.write_bytes(b"not a database")
    with pytest.raises(StoreError, match="feedback"):
        _live_feedback(Settings())
