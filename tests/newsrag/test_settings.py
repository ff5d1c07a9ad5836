from __future__ import annotations

import pytest

from newsrag.core.errors import ConfigError
from newsrag.core.settings import EmbeddingSettings, LocalWeaviateSettings, WeaviateSettings, load

pytestmark = pytest.mark.unit


def test_invalid_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_WEAVIATE_HTTP_PORT", "not-a-port")
    with pytest.raises(ConfigError) as info:
        load(LocalWeaviateSettings)
    assert "NEWSRAG_WEAVIATE_HTTP_PORT" in str(info.value)
    assert "not-a-port" in str(info.value)


def test_out_of_range_batch_size_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_EMBED_BATCH_SIZE", "0")
    with pytest.raises(ConfigError, match="NEWSRAG_EMBED_BATCH_SIZE"):
        load(EmbeddingSettings)


def test_collection_name_must_be_a_weaviate_class_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEAVIATE_COLLECTION", "lower-case")
    with pytest.raises(ConfigError, match="WEAVIATE_COLLECTION"):
        load(WeaviateSettings)


def test_placeholder_secret_refused_outside_development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_ENV", "production")
    monkeypatch.setenv("WEAVIATE_API_KEY", "changeme")
    with pytest.raises(ConfigError) as info:
        load(WeaviateSettings)
    assert "WEAVIATE_API_KEY" in str(info.value)
    assert "changeme" not in str(info.value)  # the value itself is never echoed


def test_placeholder_secret_allowed_in_development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_ENV", "development")
    monkeypatch.setenv("WEAVIATE_API_KEY", "changeme")
    assert load(WeaviateSettings).api_key is not None


def test_secret_is_not_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEAVIATE_API_KEY", "real-secret-value-123")
    settings = load(WeaviateSettings)
    assert "real-secret-value-123" not in repr(settings)
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "real-secret-value-123"
