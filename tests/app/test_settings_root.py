"""The app is an edge: ``create_app()`` builds the root settings once from the process environment,
keeps them on ``app.state``, and every client of its Services is configured from that root (the
store, the embedder, search, the answerer, the generator and its provider account); a root handed
in is used as it is, without reading the environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from newsrag.app.main import create_app
from newsrag.app.services import Services
from newsrag.app.settings import AppSettings
from newsrag.core.settings import Settings
from newsrag.embeddings.registry import EMBEDDERS
from newsrag.retrieval.generators.openai_chat import OpenAIChatGenerator
from tests.app.scripted import ConstEmbedder, NoStore

pytestmark = pytest.mark.unit


@pytest.fixture
def const_embedder() -> Iterator[list[Any]]:
    """An embedder provider ``const`` set in process; records the settings each creation got."""
    made: list[Any] = []

    def create(settings: Any, root: Settings) -> ConstEmbedder:
        made.append((settings, root))
        return ConstEmbedder()

    EMBEDDERS["const"] = create
    try:
        yield made
    finally:
        del EMBEDDERS["const"]


def app_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **extra: str) -> dict[str, str]:
    variables = {"NEWSRAG_HOME": str(tmp_path / "home"), "NEWSRAG_EMBED_PROVIDER": "const",
                 "NEWSRAG_APP_FEEDBACK_DB": str(tmp_path / "feedback.sqlite"),
                 "NEWSRAG_APP_PROMPT_REGISTRY": str(tmp_path / "registry.sqlite"),
                 "NEWSRAG_APP_MODEL_NAME": "from-the-environment", "WEAVIATE_COLLECTION": "FromTheEnvironment",
                 "NEWSRAG_SEARCH_TOP_K": "3", "NEWSRAG_ANSWER_CONTEXT_TOKENS": "900",
                 "NEWSRAG_EXTRACTIVE_MAX_SENTENCES": "5", **extra}
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return variables


def test_create_app_builds_the_root_once_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                              const_embedder: list[Any]) -> None:
    app_environment(monkeypatch, tmp_path)
    app = create_app()  # what `uvicorn newsrag.app.main:create_app --factory` calls
    monkeypatch.setenv("NEWSRAG_APP_MODEL_NAME", "set-later")  # read once: a later change is not seen
    root = app.state.settings
    assert isinstance(root, Settings) and root.get(AppSettings).model_name == "from-the-environment"
    with TestClient(app) as client:
        assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["from-the-environment"]
        svc = app.state.services
    assert svc.root is root and svc.settings is root.get(AppSettings)
    assert (svc.store.name, svc.store.local.paths.home) == ("FromTheEnvironment", tmp_path / "home")
    assert [r for _, r in const_embedder] == [root]  # the embedder's factory got the same root
    assert (svc.searcher.settings.top_k, svc.answerer.settings.context_tokens) == (3, 900)
    assert svc.generator.settings.max_sentences == 5


def test_a_root_handed_in_is_used_without_reading_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    app_environment(monkeypatch, tmp_path, OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    root = Settings({"NEWSRAG_APP_GENERATOR": "openai", "NEWSRAG_OPENAI_CHAT_MODEL": "from-the-root",
                     "OPENAI_BASE_URL": "http://127.0.0.1:8/v1", "NEWSRAG_SEARCH_TOP_K": "4",
                     "NEWSRAG_APP_FEEDBACK_DB": str(tmp_path / "root-feedback.sqlite"),
                     "NEWSRAG_APP_PROMPT_REGISTRY": str(tmp_path / "root-registry.sqlite")})
    svc = Services(root, store=NoStore(), embedder=ConstEmbedder())  # type: ignore[arg-type]
    try:
        assert isinstance(svc.generator, OpenAIChatGenerator) and svc.generator.model == "from-the-root"
        assert svc.generator.provider_settings.base_url == "http://127.0.0.1:8/v1"
        assert (svc.searcher.settings.top_k, svc.answerer.settings.context_tokens) == (4, 1500)
        assert svc.settings.model_name == "newsrag" and svc.feedback.location == str(tmp_path / "root-feedback.sqlite")
        with TestClient(create_app(root, svc)) as client:
            assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["newsrag"]
    finally:
        svc.close()


def test_app_settings_alone_still_configure_the_app_over_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    app_environment(monkeypatch, tmp_path)
    given = AppSettings(model_name="given", feedback_db=str(tmp_path / "given.sqlite"))
    svc = Services(given, store=NoStore(), embedder=ConstEmbedder())  # type: ignore[arg-type]
    try:
        assert svc.settings is given and svc.root.get(AppSettings) is given
        assert svc.searcher.settings.top_k == 3  # the rest: the process environment, read by the app (an edge)
        with TestClient(create_app(given, svc)) as client:
            assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["given"]
    finally:
        svc.close()
