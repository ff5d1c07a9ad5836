"""Scheduled evaluation measures what users get: `newsrag eval --generator openai` answers with the
registry's active prompt version, over a local server that speaks the OpenAI wire format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from newsrag.core.settings import Settings
from newsrag.core.templates import load_template, templates_dir
from newsrag.evaluation.history import HistoryStore
from newsrag.evaluation.runner import run_cli
from newsrag.prompts.registry import PromptRegistry
from newsrag.prompts.release import prompt_lookup
from tests.embeddings.fake_providers import FakeProviderServer, Received, openai_chat_completion

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
V1 = load_template(templates_dir() / "news-answer" / "1.yaml")


def test_eval_with_an_llm_generator_uses_the_active_prompt_version(corpus_collection: str, embedder: Any,
                                                                    tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    systems: list[str] = []

    def llm(req: Received) -> tuple[int, dict[str, str], Any]:
        systems.append(req.json["messages"][0]["content"])
        return 200, {}, openai_chat_completion("The sources do not say.")

    server = FakeProviderServer()
    server.route("/v1/chat/completions", llm)
    registry_path = tmp_path / "registry.sqlite"
    for var, value in {"OPENAI_BASE_URL": server.url("/v1"), "OPENAI_API_KEY": "sk-test-local",
                       "WEAVIATE_COLLECTION": corpus_collection, "NEWSRAG_RELEASE_REGISTRY": str(registry_path),
                       "NEWSRAG_EVAL_GENERATOR": "openai"}.items():
        monkeypatch.setenv(var, value)
    registry = PromptRegistry(registry_path)
    registry.sync()
    registry.register(V1.model_copy(update={"version": "2", "system": V1.system + "Answer in one line.\n"}))
    for version in ("1", "2"):
        registry.validate("news-answer", version)
        registry.promote("news-answer", version, who="test")
    registry.close()
    try:
        with HistoryStore(str(tmp_path / "history.sqlite")) as history, \
                (tmp_path / "out.txt").open("w") as printed:
            settings = Settings()  # what `newsrag eval` builds, and its prompt lookup
            code = run_cli(REPO / "examples" / "news" / "questions.jsonl", sample=3, out=tmp_path / "reports",
                           console=Console(file=printed), embedder=embedder, history=history, notifiers=[],
                           settings=settings, prompt_lookup=prompt_lookup(settings))
            runs = history.list_runs(limit=5)
    finally:
        server.close()
    assert code in (0, 1)
    assert len(runs) == 1
    run = runs[0]
    assert (run.generator, run.prompt_name, run.prompt_version) == ("openai", "news-answer", "2")
    assert len(systems) == 3 and all(s.rstrip().endswith("Answer in one line.") for s in systems)


def test_an_unreachable_llm_provider_is_recorded_per_question_and_the_history_keeps_its_runs(
        corpus_collection: str, embedder: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from newsrag.evaluation.runner import EXIT_REGRESSION
    from tests.evaluation.factories import T0, make_run

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    registry_path = tmp_path / "registry.sqlite"
    for var, value in {"OPENAI_BASE_URL": f"http://127.0.0.1:{closed}/v1", "OPENAI_API_KEY": "sk-test-local",
                       "NEWSRAG_OPENAI_CHAT_MAX_RETRIES": "0", "NEWSRAG_OPENAI_CHAT_TIMEOUT": "5",
                       "WEAVIATE_COLLECTION": corpus_collection, "NEWSRAG_RELEASE_REGISTRY": str(registry_path),
                       "NEWSRAG_APP_FEEDBACK_DB": str(tmp_path / "feedback.sqlite")}.items():
        monkeypatch.setenv(var, value)
    registry = PromptRegistry(registry_path)
    registry.sync()
    registry.validate("news-answer", "1")
    registry.promote("news-answer", "1", who="test")
    registry.close()
    earlier = make_run("r-earlier", T0, {"hit@k": 0.9})
    with HistoryStore(str(tmp_path / "history.sqlite")) as history:
        history.save(earlier)
        with (tmp_path / "out.txt").open("w") as printed:
            code = run_cli(REPO / "examples" / "news" / "questions.jsonl", sample=3, out=tmp_path / "reports",
                           generator="openai", console=Console(file=printed, width=300), embedder=embedder,
                           history=history, notifiers=[], settings=Settings())
        runs = history.list_runs(limit=5)
        kept = history.get("r-earlier")
    printed_text = " ".join((tmp_path / "out.txt").read_text().split())
    assert code == EXIT_REGRESSION
    assert kept == earlier and [r.run_id for r in runs][1:] == ["r-earlier"]
    run = runs[0]
    assert run.status == "regression" and run.generator == "openai" and len(run.results) == 3
    for r in run.results:  # each question's failure is recorded, naming the provider's error
        assert r.error and "connect" in r.error.lower() and not r.metrics, r.error
        assert (r.failure_reason or "").startswith("error: ")
    [reason] = run.regressions
    assert reason.startswith("3 of 3 questions failed with an error") and "most common:" in reason
    assert "regression" in printed_text and run.run_id in printed_text
