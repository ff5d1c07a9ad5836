"""The answer_quality DAG's task functions without Airflow or Weaviate: a judge made for a mapped
evaluate is closed (also when the batch fails), and a judge that cannot be made fails the plan."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from newsrag.core.errors import ConfigError
from newsrag.core.settings import Settings
from newsrag.evaluation import dag_tasks
from newsrag.evaluation.judge import LLMJudge
from tests.evaluation.notifiers import Capture

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).resolve().parents[2] / "examples" / "news" / "questions.jsonl"


@pytest.fixture
def closed(monkeypatch: pytest.MonkeyPatch) -> list[LLMJudge]:
    done: list[LLMJudge] = []

    class RecordingJudge(LLMJudge):
        def close(self) -> None:
            done.append(self)
            super().close()

    @contextmanager
    def clients(settings: Settings) -> Iterator[tuple[Any, Any]]:
        yield object(), object()

    monkeypatch.setattr(dag_tasks, "LLMJudge", RecordingJudge)
    monkeypatch.setattr(dag_tasks, "_clients", clients)
    monkeypatch.setattr(dag_tasks, "make_setup", lambda *a, **kw: kw["judge"])
    return done


def test_a_mapped_evaluate_closes_its_judge_also_when_the_batch_fails(closed: list[LLMJudge],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    plan = {"golden": str(GOLDEN), "retrieval": {}, "judge": True}
    used: list[Any] = []
    monkeypatch.setattr(dag_tasks, "evaluate_batch", lambda ids, gold, setup: used.append(setup) or [])
    assert dag_tasks.evaluate(["q01"], plan) == []
    assert len(closed) == 1 and used == closed  # the judge the questions were scored with

    def boom(*_a: Any) -> Any:
        raise RuntimeError("batch failed")

    monkeypatch.setattr(dag_tasks, "evaluate_batch", boom)
    with pytest.raises(RuntimeError, match="batch failed"):
        dag_tasks.evaluate(["q01"], plan)
    assert len(closed) == 2
    monkeypatch.setattr(dag_tasks, "evaluate_batch", lambda ids, gold, setup: used.append(setup) or [])
    dag_tasks.evaluate(["q01"], {**plan, "judge": False})
    assert used[-1] is None and len(closed) == 2  # no judge, nothing to close


def test_a_judge_that_cannot_be_made_fails_the_plan(closed: list[LLMJudge], monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "NEWSRAG_JUDGE_API_KEY", "NEWSRAG_JUDGE_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="the judge needs an API key"):
        dag_tasks.plan(str(GOLDEN), judge=True, settings=Settings())
    monkeypatch.setenv("NEWSRAG_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("NEWSRAG_JUDGE_MODEL", "judge-x")
    assert dag_tasks._check_judge(Settings()) == "judge-x" and len(closed) == 2


def test_notify_sends_a_regression_once_also_when_its_report_failed(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from newsrag.evaluation.history import HistoryStore
    from tests.evaluation.factories import T0, make_run

    monkeypatch.setenv("NEWSRAG_EVAL_HISTORY_URL", str(tmp_path / "history.sqlite"))
    with HistoryStore(tmp_path / "history.sqlite") as history:
        history.save(make_run("r-good", T0, {"hit@k": 0.9}))
        history.save(make_run("r-bad", T0, {"hit@k": 0.3}, status="regression",
                              regressions=["hit@k dropped 0.900 -> 0.300 vs run r-good"]))
    capture = Capture()
    monkeypatch.setattr(dag_tasks, "notifiers_from_settings", lambda settings: [capture])
    summary = {"run_id": "r-bad", "status": "regression", "regressions": ["x"], "headline": {},
               "baseline": "r-good", "notify": True}
    out = dag_tasks.notify(summary, None, settings=Settings())  # the report task failed
    assert out["notified"] and out["report"] is None and out["notify_failures"] == []
    [(subject, body, level)] = capture.sent
    assert "REGRESSION" in subject and level == "error" and "baseline: run r-good" in body
    assert "hit@k dropped 0.900 -> 0.300 vs run r-good" in body
    assert "report: NOT written: the report task failed (see its log)" in body
    again = dag_tasks.notify({**summary, "notify": False}, {"report": "/reports/r-bad/report.html"}, Settings())
    assert not again["notified"] and again["report"] == "/reports/r-bad/report.html" and len(capture.sent) == 1
