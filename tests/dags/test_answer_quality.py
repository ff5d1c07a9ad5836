"""dag.test() of answer_quality on the example corpus in the real Weaviate: the report's numbers
equal a direct library computation and carry the live feedback per prompt version and arm; a broken
retrieval setting makes quality drop, which is flagged as a regression naming the metrics and
notified exactly once; a report that cannot be written fails the run, naming its path."""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.dags.conftest import REPO, load_dag

pytestmark = pytest.mark.integration

GOLDEN = REPO / "examples" / "news" / "questions.jsonl"
# A deliberately broken retrieval: alpha forced to pure BM25, over the titles only (the chunk text
# and its stemmed neighbourhood removed), one chunk per question. On the example corpus BM25 over
# the raw text alone (the title removed) loses nothing measurable (hit@k 1.0 at k=8, and only 2 of
# 24 documents at k=1); this one hands the generator an article's title chunk, seldom the passage
# holding the answer.
BROKEN = {"alpha": 0.0, "query_properties": ["title"], "top_k": 1}
FEEDBACK = [("t1", "1", "a", 1), ("t2", "1", "a", 1), ("t3", "1", "a", -1), ("t4", "2", "b", -1)]


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
    monkeypatch.setenv("NEWSRAG_APP_FEEDBACK_DB", str(tmp_path / "feedback.sqlite"))
    monkeypatch.setenv("NEWSRAG_NOTIFY_SLACK_WEBHOOK_URL", feed_server.url("/slack-hook"))
    return {"posts": posts, "reports": tmp_path / "reports", "history": tmp_path / "history.sqlite",
            "feedback": tmp_path / "feedback.sqlite", "tmp": tmp_path}


def record_feedback(path: Path) -> None:
    """Live feedback as the app records it: answers of the extractive prompt per version and arm."""
    from newsrag.evaluation.feedback import FeedbackStore
    from newsrag.retrieval.answer import Answer

    store = FeedbackStore(path)
    for trace, version, arm, rating in FEEDBACK:
        answer = Answer(text="An answer [1].", abstained=False, citations=[], trace_id=trace,
                        prompt_name="extractive", prompt_version=version, generator="extractive", model="m")
        store.record_answer(answer, "A question?", arm=arm)
        store.add_feedback(trace, rating)
    store.close()


def test_report_equals_library_computation_and_a_quality_drop_is_notified_once(
        eval_env: dict[str, Any], corpus_collection: str, embedder: Any) -> None:
    record_feedback(eval_env["feedback"])
    dag = load_dag(REPO / "dags" / "answer_quality.py", "answer_quality")
    good = dag.test()
    assert str(good.state) == "success"

    from newsrag.core.settings import Settings
    from newsrag.evaluation.golden import load_golden
    from newsrag.evaluation.history import HistoryStore
    from newsrag.evaluation.runner import run_eval
    from newsrag.store.weaviate import WeaviateStore

    with HistoryStore(str(eval_env["history"])) as history:
        runs = history.list_runs()
        assert len(runs) == 1 and runs[0].status == "ok"
        dag_run = runs[0]
    settings = Settings()  # the same environment as the DAG's tasks
    with WeaviateStore(settings, collection=corpus_collection) as store:
        direct = run_eval(load_golden(GOLDEN), store=store, embedder=embedder, settings=settings)
    for name, agg in direct.aggregates.items():
        if name != "latency_ms":
            assert dag_run.aggregates[name].mean == pytest.approx(agg.mean), name
    report = eval_env["reports"] / dag_run.run_id / "report.html"
    saved = json.loads((report.parent / "report.json").read_text())
    assert saved["aggregates"]["hit@k"]["mean"] == pytest.approx(direct.aggregates["hit@k"].mean)
    html = report.read_text()
    assert "Hit@k" in html
    # live feedback per version and arm (from the app's store) beside the offline scores (history)
    rows = {(r["version"], r["arm"]): r for r in saved["arms"]["rows"]}
    assert sorted(rows) == [("1", "a"), ("2", "b"), ("n/a", "-")]
    assert (rows[("1", "a")]["up"], rows[("1", "a")]["down"], rows[("2", "b")]["down"]) == (2, 1, 1)
    assert rows[("1", "a")]["share_up"] == pytest.approx(2 / 3)
    assert rows[("n/a", "-")]["run_id"] == dag_run.run_id
    for metric, value in rows[("n/a", "-")]["scores"].items():
        assert value == pytest.approx(dag_run.aggregates[metric].mean), metric
    arms = html.split('<section id="arms"')[1].split("</section>")[0]
    assert '<tr data-prompt="extractive" data-version="1" data-arm="a">' in arms and "67%" in arms
    hit_cell = f'<td class="num" data-metric="hit@k">{dag_run.aggregates["hit@k"].mean:.3f}</td>'
    assert hit_cell in arms
    assert eval_env["posts"] == []  # no regression, no alert

    broken = dag.test(run_conf=BROKEN)
    assert str(broken.state) == "failed"
    with HistoryStore(str(eval_env["history"])) as history:
        latest = history.list_runs()[0]
    retrieval = latest.retrieval
    assert latest.status == "regression" and (retrieval.alpha, retrieval.query_properties, retrieval.top_k) == (
        0.0, ["title"], 1)
    assert all(r.error is None and r.metrics for r in latest.results)  # every question was answered and scored
    dropped = {m.group(1): (float(m.group(2)), float(m.group(3)))
               for m in map(re.compile(r"^(\S+) dropped (\d\.\d+) -> (\d\.\d+) vs run (\S+)").match, latest.regressions)
               if m and m.group(4) == dag_run.run_id}
    # the extractive generator, given a title chunk, abstains on answerable questions
    assert "abstention_accuracy" in dropped, latest.regressions
    assert not any("failed with an error" in r for r in latest.regressions)  # quality, not crashes
    for metric, (before, after) in dropped.items():
        assert before == pytest.approx(dag_run.aggregates[metric].mean, abs=5e-4)
        assert after == pytest.approx(latest.aggregates[metric].mean, abs=5e-4) and after < before - 0.05
    [post] = eval_env["posts"]  # exactly one notification: the notify task's, not a failure callback's too
    assert latest.run_id in post["text"] and "REGRESSION" in post["text"]
    assert all(reason in post["text"] for reason in latest.regressions)
    assert os.environ["NEWSRAG_NOTIFY_SLACK_WEBHOOK_URL"] not in post["text"]  # the secret is never sent


def test_a_report_that_cannot_be_written_fails_the_run_naming_the_path(
        eval_env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = eval_env["tmp"] / "reports-is-a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("NEWSRAG_EVAL_REPORTS_DIR", str(blocked))
    dag = load_dag(REPO / "dags" / "answer_quality.py", "answer_quality")
    for t in dag.tasks:
        t.retry_delay = timedelta(0)  # write_report is retried at once (and fails again)
    run = dag.test()
    assert str(run.state) == "failed"

    from newsrag.evaluation.history import HistoryStore

    with HistoryStore(str(eval_env["history"])) as history:
        [saved] = history.list_runs()  # the retry replaced the run it had saved: no duplicate
    assert saved.status == "ok" and len(saved.results) == 28
    assert not (blocked.parent / "reports").exists()
    [post] = eval_env["posts"]  # the failure callback, once: the run did not regress
    assert f"report of run {saved.run_id} not written to {blocked / saved.run_id / 'report.html'}" in post["text"]
    assert "NotADirectoryError" in post["text"] and "task write_report" in post["text"]


def judge_reply(req: Any) -> Any:
    """The judge's verdict in the format its system prompt asks for (OpenAI wire format)."""
    from tests.embeddings.fake_providers import openai_chat_completion

    system, user = req.json["messages"][0]["content"], req.json["messages"][-1]["content"]
    if '"supported"' in system:
        body: dict[str, Any] = {"supported": [True] * len(re.findall(r'<answer citation="\d+">', user)), "reason": "ok"}
    elif '"abstained"' in system:
        body = {"abstained": False, "reason": "ok"}
    else:
        body = {"score": 0.75, "reason": "ok"}
    return 200, {}, openai_chat_completion(json.dumps(body), model="judge-model")


def report_events() -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                                 .where(AssetModel.uri == "newsrag://reports/answer_quality")).all()
        return [dict(e.extra) for e in events]


def test_judge_sample_and_golden_params_and_the_report_asset_event(eval_env: dict[str, Any],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from newsrag.evaluation.history import HistoryStore
    from tests.embeddings.fake_providers import FakeProviderServer

    golden = eval_env["tmp"] / "other-golden.jsonl"
    lines = GOLDEN.read_text().splitlines()
    golden.write_text("\n".join(lines[:6]) + "\n")
    subset = {json.loads(line)["id"] for line in lines[:6]}
    events_before = len(report_events())
    with FakeProviderServer() as server:
        server.route("/v1/chat/completions", judge_reply)
        monkeypatch.setenv("NEWSRAG_JUDGE_BASE_URL", server.url("/v1"))
        monkeypatch.setenv("NEWSRAG_JUDGE_API_KEY", "sk-judge-dag-test-1234")
        monkeypatch.setenv("NEWSRAG_JUDGE_MODEL", "judge-model")
        dag = load_dag(REPO / "dags" / "answer_quality.py", "answer_quality")
        run = dag.test(run_conf={"judge": True, "sample": 4, "golden": str(golden)})
        asked = len(server.requests_to("/v1/chat/completions"))
    assert str(run.state) == "success"
    with HistoryStore(str(eval_env["history"])) as history:
        [saved] = history.list_runs()
    assert saved.judge == "judge-model" and asked > 0
    assert saved.golden_path == str(golden) and saved.sample_size == 4
    assert len(saved.results) == 4 and {r.case_id for r in saved.results} <= subset
    for name in ("faithfulness_judge", "answer_relevance_judge", "correctness_judge", "citation_precision_judge",
                 "abstention_accuracy_judge"):
        assert saved.aggregates[name].method == "judge:judge-model" and saved.aggregates[name].n > 0, name
        assert all(r.metrics[name].method == "judge:judge-model" for r in saved.results)
    assert all(r.error is None for r in saved.results)
    assert saved.aggregates["faithfulness_judge"].mean == pytest.approx(0.75)
    [extra] = report_events()[events_before:]
    report = eval_env["reports"] / saved.run_id / "report.html"
    assert extra["run_id"] == saved.run_id and extra["status"] == "ok" and extra["report"] == str(report)
    assert report.is_file()
    assert extra["headline"]["hit@k"] == pytest.approx(saved.aggregates["hit@k"].mean)
    assert extra["headline"]["faithfulness_judge"] == pytest.approx(0.75)
    assert json.dumps(extra)  # plain JSON for subscribers
