"""dag.test() of prompt_release with an LLM served over loopback in the OpenAI wire format: a
candidate that is no worse is promoted; one that drops the citation instruction is rejected, the
active version is unchanged and the report says why; an invalid one never reaches evaluation."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from prompts.registry import PromptRegistry
from prompts.template import load_template, templates_dir
from tests.dags.conftest import REPO, load_dag
from tests.embeddings.fake_providers import FakeProviderServer, Received, openai_chat_completion

pytestmark = pytest.mark.integration

V1 = load_template(templates_dir() / "news-answer" / "1.yaml")
CITE = re.compile(r"Cite every claim.*?provided\.", re.S)


def obedient_llm(req: Received) -> tuple[int, dict[str, str], Any]:
    """Answers with article 1's most relevant-looking sentence; cites only when told to."""
    system, user = req.json["messages"][0]["content"], req.json["messages"][-1]["content"]
    body = re.search(r'<article n="1"[^>]*>\ntitle: [^\n]*\n(.*?)\n</article>', user, re.S)
    question = set(re.findall(r"\w{4,}", user.rsplit("Question:", 1)[-1].lower()))
    sentences = re.split(r"(?<=[.!?])\s+", body.group(1)) if body else []
    best = max(sentences, key=lambda s: len(question & set(re.findall(r"\w{4,}", s.lower()))), default="")
    text = best.strip() or "The sources do not say."
    return 200, {}, openai_chat_completion(text + (" [1]" if "Cite every claim" in system and best else ""))


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
    registry.register(V1.model_copy(update={"version": "2", "system": V1.system + "Be concise.\n"}))
    registry.register(V1.model_copy(update={"version": "3", "system": CITE.sub("", V1.system)}))
    registry.register(V1.model_copy(update={"version": "4", "user": "{{ question }}\n{{ context }}\n"}))
    yield registry
    registry.close()
    server.close()


def test_release_promotes_the_good_and_rejects_the_bad(release_env: PromptRegistry) -> None:
    assert "Cite every claim" not in release_env.template("news-answer", "3").system
    dag = load_dag(REPO / "dags" / "prompt_release.py", "prompt_release")

    good = dag.test(run_conf={"name": "news-answer", "version": "2"})
    assert str(good.state) == "success"
    assert release_env.active("news-answer").active == "2"

    bad = dag.test(run_conf={"name": "news-answer", "version": "3"})
    assert str(bad.state) == "success"
    assert release_env.active("news-answer").active == "2"  # untouched
    rejection = [e for e in release_env.events("news-answer") if e.action == "reject"][-1]
    assert rejection.version == "3" and "citation_precision" in (rejection.why or "")
    report = next(Path(p) for p in Path(release_env.path).parent.glob("reports/*/report.html")
                  if rejection.eval_run_id in str(p))
    html = report.read_text()
    assert "citation" in html.lower() and "regression" in html.lower()

    invalid = dag.test(run_conf={"name": "news-answer", "version": "4"})
    assert str(invalid.state) == "success"
    last = release_env.events("news-answer")[-1]
    assert (last.action, last.version) == ("reject", "4") and "between <context> and </context>" in (last.why or "")
    assert release_env.active("news-answer").active == "2"
