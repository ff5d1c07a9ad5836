from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from newsrag.core.errors import ConfigError
from newsrag.core.settings import Settings
from newsrag.ingest.registry import batches, load_registry, parse_source
from newsrag.ingest.sources import SourceContext

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(text)
    return path


def test_shipped_registries_are_valid() -> None:
    offline = load_registry(REPO / "examples" / "sources.offline.yaml")
    assert [s.type for s in offline.enabled()] == ["feed", "feed", "feed", "jsonl", "folder"]
    example = load_registry(REPO / "sources.example.yaml")
    assert {s.type for s in example.sources} == {"feed", "sitemap", "page", "jsonl", "folder"}


def test_unknown_key_names_file_source_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "sources:\n  - {id: ok, type: feed, url: 'http://a'}\n"
                           "  - {id: bad, type: feed, url: 'http://b', max_itmes: 3}\n")
    with pytest.raises(ConfigError) as info:
        load_registry(path)
    message = str(info.value)
    assert str(path) in message and "source #2 ('bad')" in message and "max_itmes: unknown key" in message


@pytest.mark.parametrize(("text", "fragment"), [
    ("sources: [{id: a, type: rss, url: 'http://x'}]", "'type' must be one of"),
    ("sources: [{id: a, type: feed}]", "url: Field required"),
    ("sources: [{id: 'Has Space', type: feed, url: 'http://x'}]", "id: String should match"),
    ("sources: [{id: a, type: feed, url: 'http://x'}, {id: a, type: feed, url: 'http://y'}]", "duplicate source id 'a'"),
    ("sources: [{id: a, type: page, urls: []}]", "urls"),
    ("sources: [{id: a, type: feed, url: 'http://x', max_age_days: -1}]", "max_age_days"),
    ("sources: [{id: a, type: feed, url: 'http://x', chunking: {chunk_tokens: 10}}]", "chunk_tokens"),
    ("feeds: []", "single key 'sources'"),
    ("sources: [unclosed", "invalid YAML"),
])
def test_invalid_registries_give_clear_errors(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        load_registry(write(tmp_path, text))
    assert fragment in str(info.value)


def test_missing_registry_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_registry(tmp_path / "nope.yaml")


def test_enabled_and_only(tmp_path: Path) -> None:
    reg = load_registry(write(tmp_path, "sources:\n  - {id: a, type: feed, url: 'http://a'}\n"
                                        "  - {id: b, type: feed, url: 'http://b', enabled: false}\n"))
    assert [s.id for s in reg.enabled()] == ["a"]
    with pytest.raises(ConfigError, match="no enabled source with id 'b'"):
        reg.enabled("b")


def token_spec() -> Any:
    return parse_source({"id": "a", "type": "feed", "url": "http://x",
                         "http": {"headers": {"Authorization": "Bearer ${FEED_TOKEN}"}}})


def test_header_values_expand_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = token_spec()
    monkeypatch.setenv("FEED_TOKEN", "s3cret")
    assert spec.http.resolved_headers(Settings().environ) == {"Authorization": "Bearer s3cret"}  # the edge's root
    monkeypatch.delenv("FEED_TOKEN")
    with pytest.raises(ConfigError, match=r"\$\{FEED_TOKEN\}") as info:
        spec.http.resolved_headers(Settings().environ)
    assert "s3cret" not in str(info.value)


def test_header_values_come_from_the_mapping_given_never_the_process_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    spec = token_spec()
    monkeypatch.setenv("FEED_TOKEN", "from-the-process")
    assert spec.http.resolved_headers({"FEED_TOKEN": "from-the-root"}) == {"Authorization": "Bearer from-the-root"}
    with pytest.raises(ConfigError, match=r"\$\{FEED_TOKEN\}, which is not set"):
        spec.http.resolved_headers({})


def test_a_source_context_resolves_headers_from_the_environment_it_was_given(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What every source type sends: the ``${VAR}`` values of the root the run was built from (an
    Airflow Variable, say), not the worker's environment."""
    monkeypatch.delenv("FEED_TOKEN", raising=False)
    ctx = SourceContext(fetcher=None, state=None, base_dir=tmp_path,  # type: ignore[arg-type]
                        environ=Settings({"FEED_TOKEN": "t0k"}).environ)
    assert ctx.headers(token_spec()) == {"Authorization": "Bearer t0k"}


def test_batches_respect_the_mapping_limit() -> None:
    specs = [parse_source({"id": f"s{i}", "type": "feed", "url": f"http://x/{i}"}) for i in range(5)]
    assert [len(b) for b in batches(specs, 10)] == [1, 1, 1, 1, 1]
    two = batches(specs, 2)
    assert len(two) <= 2 and sum(len(b) for b in two) == 5
    assert [s["id"] for b in two for s in b] == [f"s{i}" for i in range(5)]
    assert batches([], 3) == []
