"""The root settings: one environment mapping captured at an edge, concerns built from it on use."""

from __future__ import annotations

import pickle

import pytest

from newsrag.core.errors import ConfigError
from newsrag.core.settings import EmbeddingSettings, Settings, WeaviateSettings, load

pytestmark = pytest.mark.unit


def test_a_mapping_is_read_instead_of_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEAVIATE_URL", "http://process:1")
    monkeypatch.setenv("WEAVIATE_TIMEOUT", "99")
    built = load(WeaviateSettings, {"WEAVIATE_URL": "http://conn:8080", "WEAVIATE_API_KEY": "k"})
    assert (built.url, built.timeout, built.collection) == ("http://conn:8080", 30.0, "NewsChunk")
    assert type(built) is WeaviateSettings and built.api_key is not None
    assert pickle.loads(pickle.dumps(built)).url == "http://conn:8080"  # a plain class, not the reading one
    assert load(WeaviateSettings).url == "http://process:1"  # no mapping: the process, as before


def test_a_bad_value_in_the_mapping_names_its_variable() -> None:
    with pytest.raises(ConfigError, match=r"WEAVIATE_TIMEOUT: Input should be greater than 0"):
        load(WeaviateSettings, {"WEAVIATE_TIMEOUT": "-1"})


def test_the_root_builds_each_concern_once_and_keeps_it() -> None:
    root = Settings({"WEAVIATE_URL": "http://a:1", "NEWSRAG_EMBED_BATCH_SIZE": "8"})
    assert root.get(WeaviateSettings) is root.get(WeaviateSettings)
    assert root.get(EmbeddingSettings).batch_size == 8


def test_an_unused_bad_concern_does_not_stop_the_others() -> None:
    root = Settings({"WEAVIATE_URL": "http://a:1", "NEWSRAG_EMBED_BATCH_SIZE": "0"})
    assert root.get(WeaviateSettings).url == "http://a:1"
    with pytest.raises(ConfigError, match="NEWSRAG_EMBED_BATCH_SIZE"):
        root.get(EmbeddingSettings)


def test_replace_swaps_one_concern_and_leaves_the_original_alone() -> None:
    root = Settings({"WEAVIATE_URL": "http://a:1"})
    other = root.replace(load(WeaviateSettings, {"WEAVIATE_URL": "http://b:2"}))
    assert (other.get(WeaviateSettings).url, root.get(WeaviateSettings).url) == ("http://b:2", "http://a:1")


def test_the_root_never_shows_its_environment() -> None:
    root = Settings({"WEAVIATE_API_KEY": "sk-very-secret"})
    assert "sk-very-secret" not in repr(root) and "sk-very-secret" not in str(root)
    assert root.value("WEAVIATE_API_KEY") == "sk-very-secret" and root.value("NOPE", "d") == "d"


def test_placeholder_secrets_are_refused_when_the_mapping_says_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_ENV", "development")  # the worker's own environment
    with pytest.raises(ConfigError, match="WEAVIATE_API_KEY"):
        Settings({"NEWSRAG_ENV": "production", "WEAVIATE_API_KEY": "changeme"}).get(WeaviateSettings)
    assert Settings({"WEAVIATE_API_KEY": "changeme"}).get(WeaviateSettings).api_key is not None  # development
