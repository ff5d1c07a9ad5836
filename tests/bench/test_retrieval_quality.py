"""bench/retrieval_quality.py on the tiny BEIR fixture, through the real pipeline, embedder and
Weaviate: rows for BM25, vector and hybrid, documents mapped from chunks, the cache reused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from newsrag.evaluation.beir import load_beir
from newsrag.retrieval.search import SearchSettings
from tests.bench.conftest import load_script

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "beir-tiny"


def test_the_harness_ingests_scores_every_mode_and_reuses_the_cache(store: Any, embedder: Any,
                                                                     tmp_path: Path) -> None:
    bench = load_script("retrieval_quality")
    dataset = load_beir(TINY, "test")
    cache = tmp_path / "cache.sqlite"
    (tmp_path / "run1").mkdir()
    facts = bench.ingest(dataset, tmp_path / "run1", cache, store, embedder)
    assert facts["new"] == 5 and facts["objects"] == 5  # one short chunk per document
    assert facts["chunks_embedded"] == 5 and facts["chunks_cached"] == 0

    result = bench.evaluate(dataset, store, embedder, SearchSettings(), depth=20,
                            tries=["rerank=none,alpha=0.9,bm25_b=0.3"])
    rows = result["rows"]
    assert list(rows) == ["BM25 only", "vector only", "hybrid (shipped defaults)",
                          "try rerank=none,alpha=0.9,bm25_b=0.3"]
    assert result["queries"] == 3
    for label, row in rows.items():
        assert row["mrr@10"] == 1.0, label  # every query's first document is a judged one
    # BM25 cannot find d4 for q2 (no shared word); the embedding finds more of the judged documents.
    assert rows["BM25 only"]["recall@100"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert rows["vector only"]["recall@100"] >= rows["BM25 only"]["recall@100"]
    assert rows["try rerank=none,alpha=0.9,bm25_b=0.3"]["settings"]["alpha"] == 0.9
    assert store.bm25_params() == (1.2, 0.4)  # the try's BM25 parameters were put back (shipped default)

    # A second run into a fresh collection embeds nothing: the cache outside the temp folder serves it.
    store.drop()
    (tmp_path / "run2").mkdir()
    again = bench.ingest(dataset, tmp_path / "run2", cache, store, embedder)
    assert again["chunks_embedded"] == 0 and again["chunks_cached"] == 5 and again["objects"] == 5


def test_a_malformed_folder_exits_2_with_the_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    # main() is a command: it may point NEWSRAG_HOME at its own folder. Restore it for later tests.
    monkeypatch.setenv("NEWSRAG_HOME", os.environ.get("NEWSRAG_HOME", str(tmp_path)))
    bad = tmp_path / "beir"
    (bad / "qrels").mkdir(parents=True)
    (bad / "corpus.jsonl").write_text('{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n')
    (bad / "queries.jsonl").write_text('{"_id": "q", "text": "x?"}\n')
    (bad / "qrels" / "train.tsv").write_text("q\ta\t1\n")
    assert load_script("retrieval_quality").main([str(bad), "--cache", str(tmp_path / "c.sqlite")]) == 2
    assert "corpus.jsonl:2: duplicate document id 'a' (first on line 1)" in capsys.readouterr().err
