"""dag.test() of prompt_release with an LLM served over loopback in the OpenAI wire format: a
candidate that is no worse is promoted; one that drops the citation instruction is rejected, the
active version is unchanged and the report says why; an invalid one never reaches evaluation. Both
evaluations of a release record the one snapshot taken upstream; a canary release starts an A/B
arm instead of promoting."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from newsrag.core.templates import PromptTemplate, load_template, templates_dir
from newsrag.evaluation.history import HistoryStore
from newsrag.prompts.registry import ActivePrompt, PromptRegistry
from tests.dags.conftest import REPO, collect_logs, load_dag
from tests.e2e.fakes import obedient_llm
from tests.embeddings.fake_providers import FakeProviderServer

pytestmark = pytest.mark.integration

V1 = load_template(templates_dir() / "news-answer" / "1.yaml")
CITE = re.compile(r"Cite every claim.*?provided\.", re.DOTALL)
GOOD = V1.model_copy(update={"version": "2", "system": V1.system + "Be concise.\n"})


@pytest.fixture
def release_env(airflow_db: str, corpus_collection: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    server = FakeProviderServer()
    server.route("/v1/chat/completions", obedient_llm)
    for var, value in {"OPENAI_BASE_URL": server.url("/v1"), "OPENAI_API_KEY": "sk-test-local",
                       "WEAVIATE_COLLECTION": corpus_collection, "NEWSRAG_RELEASE_SAMPLE": "10",
                       "NEWSRAG_RELEASE_REGISTRY": str(tmp_path / "registry.sqlite"),
                       "NEWSRAG_EVAL_HISTORY_URL": str(tmp_path / "history.sqlite"),
                       "NEWSRAG_EVAL_REPORTS_DIR": str(tmp_path / "reports"),
                       "NEWSRAG_EVAL_GOLDEN_PATH": str(REPO / "examples" / "news" / "questions.jsonl")}.items():
        monkeypatch.setenv(var, value)
    registry = PromptRegistry(tmp_path / "registry.sqlite")
    registry.sync()
    registry.validate("news-answer", "1")
    registry.promote("news-answer", "1", who="setup")
    registry.register(GOOD)
    registry.register(V1.model_copy(update={"version": "3", "system": CITE.sub("", V1.system)}))
    registry.register(V1.model_copy(update={"version": "4", "user": "{{ question }}\n{{ context }}\n"}))
    yield registry
    registry.close()
    server.close()


SLACK_PATH = "/services/T0000/B0000/slack-secret-token-42"


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A Slack incoming webhook on loopback; yields the texts posted to it."""
    server = FakeProviderServer()
    server.route(SLACK_PATH, lambda req: (200, {}, "ok"))
    monkeypatch.setenv("NEWSRAG_NOTIFY_SLACK_WEBHOOK_URL", server.url(SLACK_PATH))
    yield lambda: [r.json["text"] for r in server.requests_to(SLACK_PATH)]
    server.close()


def assert_no_secret(text: str) -> None:
    for secret in ("slack-secret-token-42", "sk-test-local"):  # the webhook URL's token, the LLM's API key
        assert secret not in text, text


def regressions_note(html: str) -> list[str]:
    """The report's regression-gate note (its reasons), empty when the report has none."""
    import html as markup

    note = re.search(r'<div class="callout [a-z]+" role="alert" id="regressions">(.*?)</div>', html, re.DOTALL)
    return [markup.unescape(li) for li in re.findall(r"<li>(.*?)</li>", note.group(1), re.DOTALL)] if note else []


@pytest.fixture
def snapshots(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every index snapshot taken (the tasks run in this process)."""
    import newsrag.evaluation.runner

    taken: list[Any] = []
    real = newsrag.evaluation.runner.snapshot_index

    def spy(*args: Any, **kwargs: Any) -> Any:
        taken.append(real(*args, **kwargs))
        return taken[-1]

    monkeypatch.setattr(newsrag.evaluation.runner, "snapshot_index", spy)
    return taken


def history_runs(tmp_path: Path) -> list[Any]:
    with HistoryStore(str(tmp_path / "history.sqlite")) as hist:
        return hist.list_runs(limit=100)


def test_release_promotes_the_good_and_rejects_the_bad(release_env: PromptRegistry, snapshots: list[Any],
                                                       slack: Any, tmp_path: Path) -> None:
    assert "Cite every claim" not in release_env.template("news-answer", "3").system
    dag = load_dag(REPO / "dags" / "prompt_release.py", "prompt_release")

    good = dag.test(run_conf={"name": "news-answer", "version": "2"})
    assert str(good.state) == "success"
    assert release_env.active("news-answer").active == "2"
    # One snapshot, taken upstream, recorded by both evaluations, on the same questions.
    active_run, candidate_run = sorted(history_runs(tmp_path), key=lambda r: r.prompt_version)
    assert len(snapshots) == 1
    assert (active_run.prompt_version, candidate_run.prompt_version) == ("1", "2")
    assert active_run.index == candidate_run.index == snapshots[0]
    assert active_run.golden_sha256 == candidate_run.golden_sha256
    assert [r.case_id for r in active_run.results] == [r.case_id for r in candidate_run.results]
    assert len(candidate_run.results) == 10
    good_report = next((tmp_path / "reports").glob(f"*{candidate_run.run_id}*/report.html")).read_text()
    assert regressions_note(good_report) == []
    [promoted] = slack()
    assert promoted.startswith(":information_source: *newsrag prompt release: news-answer@2 promoted*\n") and "active now: 2" in promoted
    assert re.search(r"citation_precision: [\d.]+ -> [\d.]+ \(paired diff [-+][\d.]+, 95% CI", promoted), promoted
    assert f"report: {tmp_path / 'reports'}" in promoted
    assert_no_secret(promoted)

    bad = dag.test(run_conf={"name": "news-answer", "version": "3"})
    assert str(bad.state) == "success"
    assert release_env.active("news-answer").active == "2"  # untouched
    rejection = [e for e in release_env.events("news-answer") if e.action == "reject"][-1]
    assert rejection.version == "3" and "citation_precision" in (rejection.why or "")
    assert re.search(r"paired diff .*95% CI \[-[\d.]+, -[\d.]+\]", rejection.why or "")  # the gate's interval
    report = next(p for p in (tmp_path / "reports").glob("*/report.html") if rejection.eval_run_id in str(p))
    [why] = [r for r in regressions_note(report.read_text()) if r.startswith("citation_precision dropped")]
    assert why in (rejection.why or "") and "95% CI" in why  # the note names the drop and its interval
    rejected = slack()[-1]
    assert rejected.startswith(":warning: *newsrag prompt release: news-answer@3 rejected*\n") and "active now: 2" in rejected
    assert f"- {why}" in rejected and str(report) in rejected, rejected
    assert_no_secret(rejected)

    invalid = dag.test(run_conf={"name": "news-answer", "version": "4"})
    assert str(invalid.state) == "success"
    last = release_env.events("news-answer")[-1]
    assert (last.action, last.version) == ("reject", "4") and "between <context> and </context>" in (last.why or "")
    assert release_env.active("news-answer").active == "2"
    invalid_note = slack()[-1]
    assert invalid_note.startswith(":warning: *newsrag prompt release: news-answer@4 rejected*") and "active now: 2" in invalid_note
    assert "between <context> and </context>" in invalid_note
    assert len(slack()) == 3  # one message per release, no failure callback
    assert_no_secret(invalid_note)


def test_a_canary_release_starts_an_ab_arm_instead_of_promoting(release_env: PromptRegistry, slack: Any) -> None:
    dag = load_dag(REPO / "dags" / "prompt_release.py", "prompt_release")
    run = dag.test(run_conf={"name": "news-answer", "version": "2", "canary_weight": 0.1})
    assert str(run.state) == "success"
    assert release_env.active("news-answer") == ActivePrompt("news-answer", "1", "2", 0.1)
    ab = release_env.events("news-answer")[-1]
    assert (ab.action, ab.version, ab.canary, ab.canary_weight, ab.who) == ("ab", "1", "2", 0.1, "prompt_release")
    assert ab.eval_run_id and "evaluation passed" in (ab.why or "")
    assert not [e for e in release_env.events("news-answer") if e.action == "promote" and e.version == "2"]
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["promote"] == "success" and states["reject_after_eval"] == "skipped"
    [note] = slack()
    assert note.startswith(":information_source: *newsrag prompt release: news-answer@2 started as a canary*") and \
        "active now: 1 (canary 2 at 10%)" in note, note
    assert_no_secret(note)


def write_templates(folder: Path, *templates: PromptTemplate) -> Path:
    import yaml

    for t in templates:
        path = folder / t.name / f"{t.version}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(t.model_dump(mode="json"), sort_keys=False))
    return folder


def deploy_events(after_id: int = 0) -> list[Any]:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(select(AssetEvent).where(AssetEvent.source_dag_id == "prompts_deploy",
                                                        AssetEvent.id > after_id).order_by(AssetEvent.id)).all()
        return [(e.id, dict(e.extra)) for e in rows]


def consume_events(monkeypatch: pytest.MonkeyPatch, event_ids: list[int]) -> None:
    """The next dag.test() run consumes these asset events, as a run the scheduler creates for them."""
    import airflow.models.dagrun as dagrun_module
    from airflow.models.asset import AssetEvent
    from airflow.utils.types import DagRunType
    from sqlalchemy import select

    create = dagrun_module.get_or_create_dagrun

    def asset_triggered(*args: Any, **kwargs: Any) -> Any:
        run, session = create(*args, **kwargs), kwargs["session"]
        run.consumed_asset_events.extend(session.scalars(select(AssetEvent).where(AssetEvent.id.in_(event_ids))))
        run.run_type = DagRunType.ASSET_TRIGGERED
        session.commit()
        return run

    monkeypatch.setattr(dagrun_module, "get_or_create_dagrun", asset_triggered)


def test_the_deploy_step_emits_the_prompts_asset_and_the_release_takes_its_version(
        release_env: PromptRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v5 = V1.model_copy(update={"version": "5", "system": V1.system + "Prefer the newest article.\n"})
    monkeypatch.setenv("NEWSRAG_RELEASE_PROMPTS_DIR", str(write_templates(tmp_path / "prompts", V1, v5)))
    deploy = load_dag(REPO / "dags" / "prompts_deploy.py", "prompts_deploy")
    seen = max([i for i, _ in deploy_events()], default=0)

    assert str(deploy.test().state) == "success"
    events = deploy_events(seen)
    assert len(events) == 1 and events[0][1]["registered"] == ["news-answer@5"]
    assert release_env.versions("news-answer")[-1] == "5"
    again = deploy.test()  # nothing new: the task is skipped and no event schedules a release
    assert str(again.state) == "success" and deploy_events(events[0][0]) == []
    assert {str(ti.state) for ti in again.get_task_instances()} == {"skipped"}

    release_env.register(V1.model_copy(update={"version": "6", "system": V1.system + "Six.\n"}))  # not deployed
    consume_events(monkeypatch, [events[0][0]])
    release = load_dag(REPO / "dags" / "prompt_release.py", "prompt_release")
    run = release.test()  # no Params: the candidate comes from the asset event
    assert str(run.state) == "success"
    assert release_env.active("news-answer").active == "5"
    promoted = release_env.events("news-answer")[-1]
    assert (promoted.action, promoted.version, promoted.previous) == ("promote", "5", "1")


def test_an_asset_event_without_a_version_of_the_template_releases_nothing(
        release_env: PromptRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.sdk import Asset
    from airflow.utils.session import create_session
    from sqlalchemy import select

    prompts = Asset("newsrag://prompts", group="newsrag")  # its uri is normalised to newsrag://prompts/
    with create_session() as session:  # as a CI job posting to /api/v2/assets/events would
        asset = session.scalars(select(AssetModel).where(AssetModel.name == prompts.name)).first()
        if asset is None:
            asset = AssetModel(name=prompts.name, uri=prompts.uri, group=prompts.group)
            session.add(asset)
            session.flush()
        event = AssetEvent(asset_id=asset.id, extra={"registered": ["other-template@7"], "from_rest_api": True})
        session.add(event)
        session.flush()
        event_id = event.id
    consume_events(monkeypatch, [event_id])
    events_before = len(release_env.events())
    run = load_dag(REPO / "dags" / "prompt_release.py", "prompt_release").test()
    assert str(run.state) == "success"
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states.pop("validate") == "success" and states.pop("valid") == "success"
    assert set(states.values()) == {"skipped"}, str(sorted(states.items()))
    assert release_env.active("news-answer") == ActivePrompt("news-answer", "1")
    assert len(release_env.events()) == events_before  # nothing validated, promoted or rejected


@pytest.fixture
def deploy_registry(airflow_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A registry with news-answer@1 active, no index or LLM: the deploy step needs neither."""
    monkeypatch.setenv("NEWSRAG_RELEASE_REGISTRY", str(tmp_path / "registry.sqlite"))
    registry = PromptRegistry(tmp_path / "registry.sqlite")
    registry.sync()
    registry.validate("news-answer", "1")
    registry.promote("news-answer", "1", who="setup")
    yield registry
    registry.close()


def test_a_deploy_with_a_malformed_file_registers_and_announces_nothing_until_it_is_fixed(
        deploy_registry: PromptRegistry, tmp_path: Path) -> None:
    a1, z1 = (V1.model_copy(update={"name": n, "version": "1"}) for n in ("a-tmpl", "z-tmpl"))
    folder = write_templates(tmp_path / "prompts", a1)
    (folder / "z-tmpl").mkdir()
    (folder / "z-tmpl" / "1.yaml").write_text("name: z-tmpl\nversion: 1\nsystem: [unclosed\n")
    deploy = load_dag(REPO / "dags" / "prompts_deploy.py", "prompts_deploy")
    seen, events_before = max([i for i, _ in deploy_events()], default=0), len(deploy_registry.events())

    with collect_logs("newsrag.infra.notify") as logs:  # the failure callback logs what it sends
        failed = deploy.test(run_conf={"folder": str(folder)})
    assert str(failed.state) == "failed" and deploy_events(seen) == []  # no Asset event
    assert deploy_registry.names() == ["news-answer"] and len(deploy_registry.events()) == events_before
    error = logs.text()
    assert f"{folder}/z-tmpl/1.yaml: malformed YAML" in error and "nothing was registered" in error, error
    assert deploy_registry.active("news-answer") == ActivePrompt("news-answer", "1")

    write_templates(folder, z1)  # the fix: the redeploy registers and announces both templates
    fixed = deploy.test(run_conf={"folder": str(folder)})
    assert str(fixed.state) == "success"
    [(_, extra)] = deploy_events(seen)
    assert extra["registered"] == ["a-tmpl@1", "z-tmpl@1"]
    assert deploy_registry.names() == ["a-tmpl", "news-answer", "z-tmpl"]
    assert deploy_registry.active("news-answer") == ActivePrompt("news-answer", "1")


def dead_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_generator_fails_the_release_at_once_and_decides_nothing(
        release_env: PromptRegistry, snapshots: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    port = dead_port()
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")  # the LLM is gone; the key stays set
    dag = load_dag(REPO / "dags" / "prompt_release.py", "prompt_release")
    started = time.monotonic()
    with collect_logs("newsrag.infra.notify") as logs:  # the failure callback logs what it sends
        run = dag.test(run_conf={"name": "news-answer", "version": "2"})
    elapsed = time.monotonic() - started

    assert str(run.state) == "failed"
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["validate"] == "success" and states["check_generator"] == "failed", states
    assert {states[t] for t in ("snapshot", "evaluate_active", "evaluate_candidate", "compare", "promote",
                                "reject_after_eval", "notify")} == {"upstream_failed"}, states
    error = logs.text()
    assert "NEWSRAG_RELEASE_GENERATOR=openai" in error and f"http://127.0.0.1:{port}/v1" in error, error
    assert "NEWSRAG_OPENAI_CHAT_BASE_URL" in error and "unreachable" in error
    assert_no_secret(error)
    assert snapshots == [] and history_runs(tmp_path) == []  # nothing evaluated, nothing in the report index
    assert not [e for e in release_env.events("news-answer") if e.action == "reject"]  # no "rejected" decision
    assert release_env.active("news-answer") == ActivePrompt("news-answer", "1")
    assert elapsed < 60, f"the failed release took {elapsed:.0f} s"


def test_the_first_deploy_makes_the_shipped_version_active_and_its_release_has_nothing_to_do(
        airflow_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh registry: the deploy registers news-answer@1 and makes it active (the app and the CLI
    use it at once); the release that its event triggers finds the version active already."""
    monkeypatch.setenv("NEWSRAG_RELEASE_REGISTRY", str(tmp_path / "fresh.sqlite"))
    deploy = load_dag(REPO / "dags" / "prompts_deploy.py", "prompts_deploy")
    seen = max([i for i, _ in deploy_events()], default=0)
    assert str(deploy.test().state) == "success"
    [(event_id, extra)] = deploy_events(seen)
    assert extra["registered"] == extra["activated"] == ["news-answer@1"]
    registry = PromptRegistry(tmp_path / "fresh.sqlite")
    try:
        assert registry.active("news-answer") == ActivePrompt("news-answer", "1")
        promoted = registry.events("news-answer")[-1]
        assert (promoted.action, promoted.version, promoted.who) == ("promote", "1", "deploy")
        events_before = len(registry.events())

        consume_events(monkeypatch, [event_id])
        run = load_dag(REPO / "dags" / "prompt_release.py", "prompt_release").test()
        assert str(run.state) == "success"
        states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        assert states.pop("validate") == "success" and states.pop("valid") == "success"
        assert set(states.values()) == {"skipped"}, str(sorted(states.items()))
        assert len(registry.events()) == events_before  # nothing validated, evaluated or decided again
    finally:
        registry.close()


def test_a_generator_that_fails_every_question_fails_the_release_with_failed_runs_and_no_verdict(
        release_env: PromptRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The generator answers the check but refuses every question (a model that is not served):
    the evaluations are saved as failed runs and the release fails, rather than rejecting v2."""
    server = FakeProviderServer()
    server.route("/v1/chat/completions", (400, {}, {"error": {"message": "model 'gpt-4o-mini' not found"}}))
    monkeypatch.setenv("OPENAI_BASE_URL", server.url("/v1"))
    try:
        with collect_logs("newsrag.infra.notify") as logs:
            run = load_dag(REPO / "dags" / "prompt_release.py", "prompt_release").test(
                run_conf={"name": "news-answer", "version": "2"})
    finally:
        server.close()
    assert str(run.state) == "failed"
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["check_generator"] == "success" and "failed" in (states["evaluate_active"],
                                                                   states["evaluate_candidate"]), states
    assert states["compare"] == states["promote"] == states["reject_after_eval"] == "upstream_failed", states
    runs = history_runs(tmp_path)
    assert runs and {r.status for r in runs} == {"failed"}  # kept apart from evaluations
    assert "questions failed with an error" in logs.text() and "NEWSRAG_RELEASE_GENERATOR=openai" in logs.text()
    assert not [e for e in release_env.events("news-answer") if e.action == "reject"]
    assert release_env.active("news-answer") == ActivePrompt("news-answer", "1")
