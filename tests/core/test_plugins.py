"""The one plugin mechanism (newsrag.core.plugins): names come from entry points, built-ins included;
an unknown name lists the known ones; a broken plugin is named with its distribution; a source type
validates its own options in sources.yaml."""

from __future__ import annotations

from importlib.metadata import distribution
from pathlib import Path
from typing import Any, Literal

import pytest

from newsrag.core.errors import ConfigError
from newsrag.core.plugins import PluginLoadError, PluginRegistry
from newsrag.embeddings.registry import EMBEDDERS
from newsrag.ingest.registry import (
    SOURCE_TYPES,
    SourceSpec,
    as_source_type,
    load_registry,
    parse_source,
)
from newsrag.ingest.sources import Collected, get_source
from newsrag.retrieval.generators import GENERATORS
from newsrag.retrieval.search import RERANKERS

pytestmark = pytest.mark.unit

BUILTINS = {
    "newsrag.sources": (SOURCE_TYPES, {"feed", "sitemap", "page", "jsonl", "folder"}),
    "newsrag.embedders": (EMBEDDERS, {"local", "openai", "cohere"}),
    "newsrag.generators": (GENERATORS, {"extractive", "openai", "cohere"}),
    "newsrag.rerankers": (RERANKERS, {"none", "mmr", "cohere"}),
}


def fake_distribution(site: Path, name: str, entry_points: str, modules: dict[str, str]) -> Path:
    """An installed distribution as an installer leaves it: a dist-info folder and its modules."""
    info = site / f"{name.replace('-', '_')}-1.2.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(entry_points)
    for module, code in modules.items():
        (site / f"{module}.py").write_text(code)
    return site


@pytest.mark.parametrize("group", sorted(BUILTINS))
def test_builtins_are_entry_points_of_the_newsrag_distribution(group: str) -> None:
    registry, builtins = BUILTINS[group]
    declared = {ep.name for ep in distribution("newsrag").entry_points if ep.group == group}
    assert declared == builtins and builtins <= set(registry)
    fresh = PluginRegistry(group, registry.kind, check=registry.check)  # nothing set in process
    for name in builtins:  # each loads and passes its group's check (a renamed factory fails here)
        assert fresh.provider(name).startswith("distribution newsrag 0.1.0 (newsrag."), name
        assert fresh[name] is not None


def test_a_registry_knows_only_what_entry_points_and_the_process_give_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("newsrag.core.plugins.entry_points", lambda group: [])
    empty: PluginRegistry[Any] = PluginRegistry("newsrag.embedders", "provider")
    assert list(empty) == []  # no list of built-ins hides anywhere else
    empty["fake"] = object
    assert list(empty) == ["fake"] and empty.provider("fake") == "set in process"
    del empty["fake"]
    assert "fake" not in empty and len(empty) == 0


def test_an_unknown_name_is_named_with_the_setting_and_the_known_names() -> None:
    with pytest.raises(ConfigError) as info:
        EMBEDDERS.load("openia")
    assert str(info.value) == ("NEWSRAG_EMBED_PROVIDER: unknown provider 'openia'; "
                               "choose one of cohere, local, openai")
    with pytest.raises(ConfigError, match=r"^unknown generator 'gpt'; choose one of cohere, extractive, openai$"):
        GENERATORS.load("gpt")


def test_a_deleted_name_is_unknown_until_set_again(monkeypatch: pytest.MonkeyPatch) -> None:
    factory = RERANKERS["none"]
    monkeypatch.delitem(RERANKERS, "none")
    assert "none" not in RERANKERS and "none" not in RERANKERS.names()
    with pytest.raises(ConfigError, match="NEWSRAG_SEARCH_RERANK: unknown reranker 'none'; choose one of cohere, mmr"):
        RERANKERS.load("none")
    monkeypatch.undo()
    assert RERANKERS.load("none") is factory


def test_a_plugin_that_raises_on_import_is_named_with_its_distribution(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = fake_distribution(tmp_path, "broken-greeter", "[newsrag.generators]\ngreeter = broken_greeter_mod:make\n",
                             {"broken_greeter_mod": "raise RuntimeError('needs GREETER_HOME')\n"})
    monkeypatch.syspath_prepend(str(site))
    generators: PluginRegistry[Any] = PluginRegistry("newsrag.generators", "generator")
    assert "greeter" in generators  # listed without importing it
    with pytest.raises(PluginLoadError) as info:
        generators.load("greeter")
    assert str(info.value) == ("newsrag.generators plugin 'greeter' from distribution broken-greeter 1.2 "
                               "(broken_greeter_mod:make) cannot be used: RuntimeError: needs GREETER_HOME")
    assert isinstance(info.value, ConfigError)  # the CLI's "config error", exit 2


def test_a_plugin_of_the_wrong_shape_or_declared_twice_is_refused_by_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_distribution(tmp_path / "a", "shapeless", "[newsrag.sources]\nblob = shapeless_mod:Blob\n",
                      {"shapeless_mod": "class Blob:\n    def collect(self, spec, ctx): ...\n"})
    fake_distribution(tmp_path / "b", "twin-one", "[newsrag.embedders]\ntwin = twin_mod:make\n", {})
    fake_distribution(tmp_path / "c", "twin-two", "[newsrag.embedders]\ntwin = twin_mod:make\n", {})
    for folder in "abc":
        monkeypatch.syspath_prepend(str(tmp_path / folder))
    sources = PluginRegistry("newsrag.sources", "source type", check=as_source_type)
    with pytest.raises(PluginLoadError, match=r"'blob' from distribution shapeless 1.2 .*'spec' is a SourceSpec"):
        sources.load("blob")
    embedders: PluginRegistry[Any] = PluginRegistry("newsrag.embedders", "provider")
    with pytest.raises(PluginLoadError, match="declared by more than one distribution") as info:
        embedders.load("twin")
    assert "twin-one 1.2" in str(info.value) and "twin-two 1.2" in str(info.value)


# -- a source type validates its own options ------------------------------------------------------

class GreetingSpec(SourceSpec):
    type: Literal["greeting"]
    names: tuple[str, ...]


class GreetingSource:
    spec = GreetingSpec

    def collect(self, spec: GreetingSpec, ctx: Any) -> Collected:
        return Collected(complete=True)


def test_a_plugin_source_type_is_declared_and_validated_like_a_builtin(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = tmp_path / "sources.yaml"
    registry.write_text("sources:\n  - {id: hello, type: greeting, names: [Ada, Alan]}\n")
    with pytest.raises(ConfigError, match=r"source #1 \('hello'\): unknown source type 'greeting'"):
        load_registry(registry)  # before the plugin is there
    monkeypatch.setitem(SOURCE_TYPES, "greeting", GreetingSource)
    [spec] = load_registry(registry).sources
    assert isinstance(spec, GreetingSpec) and spec.names == ("Ada", "Alan") and spec.max_items is None
    assert isinstance(get_source("greeting"), GreetingSource)
    with pytest.raises(ConfigError) as info:
        parse_source({"id": "hello", "type": "greeting", "names": ["Ada"], "nmaes": ["Alan"]})
    assert str(info.value) == "source ('hello'): nmaes: unknown key"


def test_an_unknown_source_type_names_the_source_the_type_and_every_installed_type(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SOURCE_TYPES, "greeting", GreetingSource)
    with pytest.raises(ConfigError) as info:
        parse_source({"id": "hello", "type": "greetings", "names": []})
    assert str(info.value) == ("source ('hello'): unknown source type 'greetings'; 'type' must be one of "
                               "feed, folder, greeting, jsonl, page, sitemap (newsrag's or an installed plugin's)")
