"""The README's first command, without the server at the end: the embedded Weaviate, the offline
example sources ingested, the top hits printed with their sources, and a cited answer."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration


def test_quickstart_ingests_the_examples_and_answers_with_a_citation(weaviate_server: Any, collection_name: str,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Any) -> None:
    from rich.console import Console

    from newsrag.cli.quickstart import run_quickstart
    from newsrag.core.settings import Settings
    from newsrag.store.weaviate import WeaviateStore

    monkeypatch.setenv("WEAVIATE_COLLECTION", collection_name)
    monkeypatch.setenv("NEWSRAG_INGEST_STATE_FILE", str(tmp_path / "state.sqlite"))
    console = Console(record=True, width=240)
    try:
        run_quickstart("What rate did the Monetary Authority set?", console, serve=False, settings=Settings())
        out = console.export_text()
        with WeaviateStore(Settings(), collection=collection_name) as store:
            count = store.count()
            sources = {p["source_id"] for _, p in store.iter_properties(["source_id"])}
    finally:
        with WeaviateStore(Settings(), collection=collection_name) as store:
            if store.exists():
                store.drop()
    assert count > 0 and f"{count} chunks in {collection_name}" in out
    assert len(sources) >= 3  # feeds, the JSONL archive and the notes folder
    assert "Monetary Authority cuts benchmark rate" in out  # the top hit, with its source
    assert "3.50" in out and "[1] Monetary Authority" in out  # a cited answer
