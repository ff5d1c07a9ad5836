"""Settings reach the query path as objects: generator and reranker factories get the root settings
(a plugin reads its own class from it), a factory written before the root was passed is still
called, and the Searcher and the built-in generators read the root, never the process environment."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.core.plugins import call_factory
from newsrag.core.records import Hit
from newsrag.core.settings import Settings
from newsrag.retrieval.generators import GENERATORS, create_generator
from newsrag.retrieval.generators.extractive import ExtractiveGenerator
from newsrag.retrieval.search import (
    RERANKERS,
    MMRReranker,
    Searcher,
    SearchSettings,
    create_reranker,
)
from tests.retrieval.test_extractive import BagOfWordsEmbedder

pytestmark = pytest.mark.unit


class GreeterSettings(BaseSettings):
    """A plugin's own settings class (``GREETER_*``), read from the root like newsrag's own."""

    model_config = SettingsConfigDict(env_prefix="GREETER_", extra="ignore")

    greeting: str = "hello"


class Greeter:
    name = model = "greeter"

    def __init__(self, greeting: str) -> None:
        self.greeting = greeting


class Keep:
    def __init__(self, label: str) -> None:
        self.label = label

    def rerank(self, query: str, query_vector: Sequence[float] | None, hits: Sequence[Hit], top_k: int) -> list[Hit]:
        return list(hits[:top_k])


@pytest.fixture
def plugins() -> Iterator[None]:
    """A plugin generator and reranker of each contract, set in process for one test."""
    GENERATORS["greeter"] = lambda embedder, settings: Greeter(settings.get(GreeterSettings).greeting)
    GENERATORS["old-greeter"] = lambda embedder: Greeter("old")
    RERANKERS["keep"] = lambda search, embedder, settings: Keep(settings.get(GreeterSettings).greeting)
    RERANKERS["old-keep"] = lambda search, embedder: Keep(f"old, lambda {search.mmr_lambda}")
    try:
        yield
    finally:
        for registry, name in ((GENERATORS, "greeter"), (GENERATORS, "old-greeter"), (RERANKERS, "keep"),
                               (RERANKERS, "old-keep")):
            del registry[name]  # type: ignore[attr-defined]


def test_a_factory_gets_the_root_and_an_older_one_its_own_arguments_only() -> None:
    root = Settings({"GREETER_GREETING": "hi"})
    got: list[tuple[Any, ...]] = []
    assert call_factory(lambda *args: got.append(args) or "new", 1, settings=root) == "new"
    assert call_factory(lambda a: got.append((a,)) or "old", 1, settings=root) == "old"
    assert call_factory(lambda a, settings=None: got.append((a, settings)) or "kw", 1, settings=root) == "kw"
    assert got == [(1, root), (1,), (1, root)]


def test_plugin_generators_read_their_own_settings_from_the_root(plugins: None) -> None:
    greeter = create_generator("greeter", None, Settings({"GREETER_GREETING": "good morning"}))
    assert isinstance(greeter, Greeter) and greeter.greeting == "good morning"
    assert create_generator("greeter").greeting == "hello"  # type: ignore[attr-defined]  # defaults
    assert create_generator("old-greeter", None, Settings({})).greeting == "old"  # type: ignore[attr-defined]


def test_plugin_rerankers_read_their_own_settings_from_the_root(plugins: None) -> None:
    embedder = BagOfWordsEmbedder()
    root = Settings({"GREETER_GREETING": "hey", "NEWSRAG_SEARCH_RERANK": "keep"})
    searcher = Searcher(FakeStore(), embedder, root)  # type: ignore[arg-type]
    assert isinstance(searcher.reranker, Keep) and searcher.reranker.label == "hey"
    old = create_reranker(SearchSettings.model_validate({"rerank": "old-keep", "mmr_lambda": 0.3}), embedder)
    assert isinstance(old, Keep) and old.label == "old, lambda 0.3"


def test_the_searcher_reads_search_and_analysis_from_the_root(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Settings({"NEWSRAG_SEARCH_TOP_K": "3", "NEWSRAG_SEARCH_MMR_LAMBDA": "0.2", "NEWSRAG_BM25_STEMMER": "none"})
    searcher = Searcher(FakeStore(), BagOfWordsEmbedder(), root)  # type: ignore[arg-type]
    assert (searcher.settings.top_k, searcher.analysis.stemmer) == (3, "none")
    assert isinstance(searcher.reranker, MMRReranker) and searcher.reranker.lambda_ == 0.2
    assert searcher.keyword_query("running ferries") == "running ferries"  # not stemmed: the root said none


def test_without_settings_the_query_path_has_the_defaults_not_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("NEWSRAG_SEARCH_TOP_K", "3"), ("NEWSRAG_BM25_STEMMER", "none"),
                        ("NEWSRAG_EXTRACTIVE_MAX_SENTENCES", "7"), ("NEWSRAG_SEARCH_RERANK", "none")):
        monkeypatch.setenv(name, value)
    searcher = Searcher(FakeStore(), BagOfWordsEmbedder())  # type: ignore[arg-type]
    assert (searcher.settings.top_k, searcher.analysis.stemmer) == (8, "english")
    assert isinstance(searcher.reranker, MMRReranker)
    given = Searcher(FakeStore(), BagOfWordsEmbedder(), SearchSettings.model_validate({"top_k": 4}))  # type: ignore[arg-type]
    assert (given.settings.top_k, given.analysis.stemmer) == (4, "english")
    generator = create_generator("extractive", BagOfWordsEmbedder())
    assert isinstance(generator, ExtractiveGenerator) and generator.settings.max_sentences == 3
    configured = create_generator("extractive", BagOfWordsEmbedder(), Settings())  # an edge's root
    assert isinstance(configured, ExtractiveGenerator) and configured.settings.max_sentences == 7


class FakeStore:
    def hybrid(self, *args: Any, **kwargs: Any) -> list[Hit]:
        return []
