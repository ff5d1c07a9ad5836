"""A source type from an installed plugin, declared in sources.yaml, ingests end to end: a tiny plugin
distribution is built into a wheel in a temporary folder, installed (unpacked) on PYTHONPATH, and
`python -m newsrag ingest` writes its articles into the real Weaviate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from newsrag.core.records import SearchFilters
from newsrag.ingest.models import doc_id_for
from newsrag.store.weaviate import WeaviateStore

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

PYPROJECT = """\
[build-system]
requires = ["setuptools>=75"]
build-backend = "setuptools.build_meta"

[project]
name = "newsrag-greeting"
version = "0.3.0"

[project.entry-points."newsrag.sources"]
greeting = "newsrag_greeting:GreetingSource"

[tool.setuptools]
py-modules = ["newsrag_greeting"]
"""

MODULE = '''\
"""A source type that greets each name of its options: one article per name."""
from typing import Any, Literal

from newsrag.ingest.models import Article
from newsrag.ingest.registry import SourceSpec
from newsrag.ingest.sources import Collected


class GreetingSpec(SourceSpec):
    type: Literal["greeting"]
    greeting: str = "Hello"
    names: tuple[str, ...]


class GreetingSource:
    spec = GreetingSpec

    def collect(self, spec: GreetingSpec, ctx: Any) -> Collected:
        articles = [Article(source_id=spec.id, url=f"https://greeting.example/{name.lower()}",
                            title=f"{spec.greeting}, {name}",
                            text=f"{spec.greeting}, {name}! The harbour of Calder reopened today after the strike.",
                            tags=spec.tags)
                    for name in spec.names]
        return Collected(articles, complete=True)
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin built with setuptools' PEP 517 hook (as pip would) and unpacked as an installer would."""
    root = tmp_path_factory.mktemp("plugin")
    src, dist, site = root / "src", root / "dist", root / "site"
    src.mkdir()
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "newsrag_greeting.py").write_text(MODULE)
    dist.mkdir()
    build = f"import setuptools.build_meta as b; b.build_wheel({str(dist)!r})"
    subprocess.run([sys.executable, "-c", build], cwd=src, check=True, capture_output=True, timeout=300)
    [wheel] = dist.glob("newsrag_greeting-0.3.0-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        whl.extractall(site)
    return site


def ingest(registry: Path, collection: str, tmp_path: Path, site: Path | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WEAVIATE_COLLECTION": collection,
           "NEWSRAG_INGEST_STATE_FILE": str(tmp_path / "state.sqlite"),
           "NEWSRAG_INGEST_EMBEDDING_CACHE": str(tmp_path / "cache.sqlite")}
    env.pop("PYTHONPATH", None)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run([sys.executable, "-m", "newsrag", "ingest", "--sources", str(registry), "--json"],
                          check=False, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)


def test_a_plugin_source_declared_in_sources_yaml_ingests_into_the_store(
        plugin_site: Path, store: WeaviateStore, tmp_path: Path) -> None:
    registry = tmp_path / "sources.yaml"
    registry.write_text("sources:\n"
                        "  - id: greetings\n    type: greeting\n    greeting: Welcome\n"
                        "    names: [Ada, Alan]\n    tags: [plugins]\n")
    run = ingest(registry, store.name, tmp_path, plugin_site)
    assert run.returncode == 0, run.stderr
    [report] = json.loads(run.stdout)
    assert (report["source_id"], report["status"], report["new"]) == ("greetings", "ok", 2)
    urls = ["https://greeting.example/ada", "https://greeting.example/alan"]
    assert store.source_doc_ids("greetings") == {doc_id_for(u) for u in urls}
    assert store.count(SearchFilters(source_ids=("greetings",), tags=("plugins",))) == report["chunks_written"] >= 2


def test_without_the_plugin_or_with_a_wrong_type_the_error_names_source_type_and_known_types(
        plugin_site: Path, weaviate_server: object, collection_name: str, tmp_path: Path) -> None:
    registry = tmp_path / "sources.yaml"
    registry.write_text("sources:\n  - {id: greetings, type: greeting, names: [Ada]}\n")
    missing = ingest(registry, collection_name, tmp_path, site=None)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    said = " ".join(missing.stderr.split())  # the console wraps long lines
    assert "source #1 ('greetings'): unknown source type 'greeting'" in said
    assert "must be one of feed, folder, jsonl, page, sitemap" in said
    registry.write_text("sources:\n  - {id: greetings, type: greetings, names: [Ada]}\n")
    typo = ingest(registry, collection_name, tmp_path, plugin_site)
    said = " ".join(typo.stderr.split())
    assert typo.returncode == 2 and "unknown source type 'greetings'" in said
    assert "must be one of feed, folder, greeting, jsonl, page, sitemap" in said  # the installed plugin's too
