from __future__ import annotations

import numpy as np
import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.core.errors import ConfigError
from newsrag.core.settings import EmbeddingSettings, Settings
from newsrag.embeddings import Embedder, available, create_embedder
from newsrag.embeddings.base import normalize, vector_name
from newsrag.embeddings.local import LocalEmbedder
from newsrag.embeddings.registry import EMBEDDERS


@pytest.mark.unit
def test_normalize_gives_unit_float32_rows_and_keeps_zero_rows() -> None:
    out = normalize([[3.0, 4.0], [0.0, 0.0]])
    assert out.dtype == np.float32
    assert np.allclose(out[0], [0.6, 0.8])
    assert np.allclose(out[1], [0.0, 0.0])


@pytest.mark.unit
def test_vector_name_is_a_valid_weaviate_name() -> None:
    assert vector_name("local/all-MiniLM-L6-v2") == "v_local_all_minilm_l6_v2"
    assert vector_name("openai/text-embedding-3-small@512") == "v_openai_text_embedding_3_small_512"


@pytest.mark.unit
def test_registry_lists_builtins_and_rejects_unknown_provider() -> None:
    assert {"local", "openai", "cohere"} <= set(available())
    with pytest.raises(ConfigError, match="NEWSRAG_EMBED_PROVIDER"):
        create_embedder(EmbeddingSettings(provider="nope"))


class GreetingSettings(BaseSettings):
    """A plugin's own settings class, read from the root like newsrag's."""

    model_config = SettingsConfigDict(env_prefix="GREETING_", extra="ignore")

    word: str = "hello"


@pytest.mark.unit
def test_a_factory_gets_the_root_and_an_older_one_argument_factory_is_still_called(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def current(settings: EmbeddingSettings, root: Settings) -> object:
        seen["current"] = (settings.model, root.get(GreetingSettings).word)
        return "embedder"

    def older(settings: EmbeddingSettings) -> object:
        seen["older"] = settings.model
        return "older embedder"

    EMBEDDERS["greeting"], EMBEDDERS["older"] = current, older  # type: ignore[assignment]
    try:
        monkeypatch.setenv("GREETING_WORD", "from-the-process")
        root = Settings({"NEWSRAG_EMBED_PROVIDER": "greeting", "NEWSRAG_EMBED_MODEL": "m1", "GREETING_WORD": "hi"})
        assert create_embedder(root) == "embedder" and seen["current"] == ("m1", "hi")
        assert create_embedder(EmbeddingSettings(provider="greeting")) == "embedder"
        assert seen["current"] == (None, "hello")  # the concern alone: the plugin's own settings are the defaults
        assert create_embedder(root.replace(EmbeddingSettings(provider="older", model="m2"))) == "older embedder"
        assert seen["older"] == "m2"
    finally:
        del EMBEDDERS["greeting"], EMBEDDERS["older"]


@pytest.mark.unit
def test_no_settings_means_the_defaults_not_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_EMBED_PROVIDER", "nope")
    monkeypatch.setenv("NEWSRAG_EMBED_BATCH_SIZE", "3")
    assert LocalEmbedder().settings.batch_size == 16
    with pytest.raises(ConfigError, match="unknown provider 'nope'"):
        create_embedder(Settings())  # the edge's root does read it
    assert create_embedder().model_id == "local/all-MiniLM-L6-v2"  # nothing loaded until first use


@pytest.mark.unit
def test_local_embedder_is_an_embedder_and_vectors_are_normalized(embedder: LocalEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    vectors = embedder.embed_documents(["Stocks fell on Tuesday.", "Markets dropped sharply.", "A recipe for bread."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    related, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert related > unrelated + 0.2


@pytest.mark.unit
def test_batching_does_not_change_vectors(embedder: LocalEmbedder) -> None:
    texts = [f"Sentence number {i} about the news." for i in range(7)]
    small = LocalEmbedder(EmbeddingSettings(batch_size=2))
    assert np.allclose(small.embed_documents(texts), embedder.embed_documents(texts), atol=1e-5)
    assert embedder.embed_documents([]).shape == (0, 384)
    assert embedder.embed_query("hello").shape == (384,)


@pytest.mark.unit
def test_model_is_shared_within_a_process_and_close_releases_it() -> None:
    a, b = LocalEmbedder(), LocalEmbedder()
    assert a.model is b.model
    a.close()
    assert a._model is None
    assert LocalEmbedder().model is not b.model  # reloaded after close
