"""dag.test() of answer_quality on the example corpus in the real Weaviate: the report's numbers
equal a direct library computation, and a broken retrieval setting is a notified regression."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.dags.conftest import REPO, load_dag

pytestmark = pytest.mark.integration

GOLDEN = REPO / "examples" / "news" / "questions.jsonl"


@pytest.fixture
def eval_env(airflow_db: str, corpus_collection: str, feed_server: Any, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    posts: list[dict[str, Any]] = []

    def webhook(h: Any) -> None:
        length = int(h.headers.get("Content-Length", 0))
        posts.append(json.loads(h.rfile.read(length)))
        h.send_response(200)
        h.end_headers()

    feed_server.routes["/slack-hook"] = webhook
    monkeypatch.setenv("WEAVIATE_COLLECTION", corpus_collection)
    monkeypatch.setenv("NEWSRAG_EVAL_HISTORY_URL", str(tmp_path / "history.sqlite"))
    monkeypatch.setenv("NEWSRAG_EVAL_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("NEWSRAG_EVAL_GOLDEN_PATH", str(GOLDEN))
    monkeypatch.setenv("NEWSRAG_NOTIFY_SLACK_WEBHOOK_URL", feed_server.url("/slack-hook"))
    return {"posts": posts, "reports": tmp_path / "reports", "history": tmp_path / "history.sqlite"}


def test_report_equals_library_computation_and_broken_retrieval_is_a_notified_regression(
        eval_env: dict[str, Any], corpus_collection: str, embedder: Any) -> None:
    dag = load_dag(REPO / "dags" / "answer_quality.py", "answer_quality")
    good = dag.test()
    assert str(good.state) == "success"

    from evaluation.golden import load_golden
    from evaluation.history import HistoryStore
    from evaluation.runner import run_eval
    from retrieval.store import WeaviateStore

    with HistoryStore(str(eval_env["history"])) as history:
        runs = history.list_runs()
        assert len(runs) == 1 and runs[0].status == "ok"
        dag_run = runs[0]
    with WeaviateStore(collection=corpus_collection) as store:
        direct = run_eval(load_golden(GOLDEN), store=store, embedder=embedder)
    for name, agg in direct.aggregates.items():
        if name != "latency_ms":
            assert dag_run.aggregates[name].mean == pytest.approx(agg.mean), name
    report = eval_env["reports"] / dag_run.run_id / "report.html"
    saved = json.loads((report.parent / "report.json").read_text())
    assert saved["aggregates"]["hit@k"]["mean"] == pytest.approx(direct.aggregates["hit@k"].mean)
    assert "hit@k" in report.read_text() or "Hit@k" in report.read_text()
    assert eval_env["posts"] == []  # no regression, no alert

    broken = dag.test(run_conf={"mode": "bm25", "query_properties": ["url"]})
    assert str(broken.state) == "failed"
    with HistoryStore(str(eval_env["history"])) as history:
        latest = history.list_runs()[0]
    assert latest.status == "regression" and latest.retrieval.mode == "bm25"
    assert latest.regressions and all(r.error for r in latest.results)  # every search was refused
    texts = [p["text"] for p in eval_env["posts"]]
    assert any(latest.run_id in t and "regress" in t.lower() for t in texts)
    assert all(os.environ["NEWSRAG_NOTIFY_SLACK_WEBHOOK_URL"] not in t for t in texts)  # the secret is never sent
