"""Chunking, the embedding cache, near-duplicate index, ingest state and the run summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from newsrag.embeddings.cache import EmbeddingCache, embed_cached, text_key
from newsrag.ingest.chunking import Chunker, embedding_text, is_content
from newsrag.ingest.dedup import NearDuplicateIndex, signature
from newsrag.ingest.models import Article, chunk_uuid, content_hash
from newsrag.ingest.state import IngestState, StoredDoc
from newsrag.ingest.summary import AllSourcesFailed, summarize
from newsrag.store.analysis import bm25_terms
from tests.ingest.feedgen import paragraphs

pytestmark = pytest.mark.unit


def article(text: str, title: str = "Title") -> Article:
    return Article(source_id="s", url="https://example.com/a", title=title, text=text)


def test_chunks_fit_the_token_budget_and_keep_order(embedder) -> None:
    chunker = Chunker(embedder.tokenizer, chunk_tokens=64, overlap_tokens=8)
    text = "\n\n".join(paragraphs(7, n=6))
    chunks = chunker.split(article(text))
    assert len(chunks) > 3
    assert all(c.token_count <= 64 for c in chunks)
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    assert all(len(embedder.tokenizer.encode(embedding_text("Title", c.text))) <= 256 for c in chunks)
    assert chunks[0].text.split()[0] == text.split()[0]


def test_each_chunk_carries_its_neighbours_as_bm25_context(embedder) -> None:
    text = "\n\n".join(paragraphs(11, n=6))
    chunks = Chunker(embedder.tokenizer, chunk_tokens=64, overlap_tokens=0, context_chunks=1).split(article(text))
    assert len(chunks) >= 3
    terms = [bm25_terms(c.text) for c in chunks]  # analysed for BM25: stemmed, stopwords out
    assert chunks[0].context == "\n\n".join(terms[:2])  # the first has no chunk before it
    assert chunks[1].context == "\n\n".join(terms[:3])
    assert chunks[-1].context == "\n\n".join(terms[-2:])
    alone = Chunker(embedder.tokenizer, chunk_tokens=64, overlap_tokens=0, context_chunks=0).split(article(text))
    assert [c.context for c in alone] == terms
    raw = Chunker(embedder.tokenizer, chunk_tokens=64, overlap_tokens=0, context_chunks=0, stemmer="none")
    assert [c.context for c in raw.split(article(text))] == [bm25_terms(c.text, "none") for c in chunks]
    # The context never changes what is embedded, nor the ids: only the BM25 index sees it.
    assert [c.uuid for c in alone] == [c.uuid for c in chunks]


def test_boilerplate_and_tiny_pieces_are_dropped(embedder) -> None:
    assert not is_content("Advertisement")
    assert not is_content("Subscribe now")
    assert not is_content("Too short.")
    assert is_content("The council approved the light rail line on a seven to four vote.")
    chunker = Chunker(embedder.tokenizer, chunk_tokens=40, overlap_tokens=0)
    chunks = chunker.split(article("Advertisement\n\n" + paragraphs(3, n=1)[0] + "\n\nAll rights reserved."))
    assert chunks and not any(c.text.lower().startswith(("advertisement", "all rights")) for c in chunks)


def test_chunk_ids_are_deterministic_and_change_with_content() -> None:
    a = article("one two three")
    assert a.content_hash == content_hash("Title\none two three")
    assert chunk_uuid(a.doc_id, 0, a.content_hash) == chunk_uuid(a.doc_id, 0, a.content_hash)
    assert chunk_uuid(a.doc_id, 0, a.content_hash) != chunk_uuid(a.doc_id, 0, article("one two four").content_hash)
    assert article("  one   two three ").content_hash == a.content_hash  # whitespace-normalized


class CountingEmbedder:
    model_id = "test/counting"
    dimensions = 3

    def __init__(self) -> None:
        self.seen: list[str] = []

    def embed_documents(self, texts):
        self.seen += list(texts)
        return np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)

    def embed_query(self, text):
        return self.embed_documents([text])[0]

    def close(self) -> None:
        pass


def test_embedding_cache_embeds_each_text_once(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    emb = CountingEmbedder()
    vectors, n = embed_cached(emb, cache, ["a", "bb", "a"])
    assert n == 2 and sorted(emb.seen) == ["a", "bb"]
    assert vectors.shape == (3, 3) and vectors[0][0] == vectors[2][0] == 1.0
    again, n2 = embed_cached(emb, cache, ["bb", "ccc"])
    assert n2 == 1 and emb.seen[-1] == "ccc" and again[0][0] == 2.0
    cache.close()
    reopened = EmbeddingCache(tmp_path / "c.sqlite")
    assert set(reopened.get_many("test/counting", [text_key("a")])) == {text_key("a")}
    assert reopened.get_many("other/model", [text_key("a")]) == {}


def test_near_duplicate_index_finds_copies_not_related_stories() -> None:
    base = " ".join(paragraphs(1, n=2))
    copy = "PORT CALDER (Wire) - " + base + " Reporting by A. Writer."
    other = " ".join(paragraphs(2, n=2))
    index = NearDuplicateIndex(0.5)
    index.add("orig", "agency", "https://a/1", signature(base))
    found = index.find("copy", signature(copy))
    assert found is not None and found.doc_id == "orig" and found.source_id == "agency" and found.similarity > 0.5
    assert index.find("other", signature(other)) is None
    assert index.find("orig", signature(base)) is None  # a document never duplicates itself
    assert signature("too short to matter") is None


def test_state_round_trips_validators_and_signatures(tmp_path: Path) -> None:
    state = IngestState(tmp_path / "s.sqlite")
    state.save_validators("metro", "http://x", '"e1"', "Mon, 01 Jan 2026 00:00:00 GMT")
    assert state.validators("metro", "http://x") == ('"e1"', "Mon, 01 Jan 2026 00:00:00 GMT")
    state.forget_validators("metro", "http://x")
    assert state.validators("metro", "http://x") == (None, None)
    sig = signature(" ".join(paragraphs(4, n=2)))
    state.save_signature("d1", "s", "http://x", sig.hashvalues)
    restored = NearDuplicateIndex()
    for doc_id, source_id, url, values in state.signatures():
        restored.add_hashvalues(doc_id, source_id, url, values)
    assert restored.find("d2", sig).doc_id == "d1"


def test_state_markers_belong_to_one_source_and_one_collection_generation(tmp_path: Path) -> None:
    """#21: a marker of another source id, or of a collection since re-created, is never used."""
    state = IngestState(tmp_path / "s.sqlite", scope="NewsChunk/v", generation="g1")
    state.save_validators("archive", "jsonl:/data/archive.jsonl", "fingerprint", None)
    state.record_read("archive", 12)
    state.remember_docs("archive", [StoredDoc("d1", "https://x/1")])
    sig = signature(" ".join(paragraphs(4, n=2)))
    state.save_signature("d1", "archive", "https://x/1", sig.hashvalues)
    assert state.validators("archive-bf", "jsonl:/data/archive.jsonl") == (None, None)  # a new source reads
    assert state.validators("archive", "jsonl:/data/archive.jsonl") == ("fingerprint", None)
    state.bind("g2")  # the collection was dropped and created again
    assert state.validators("archive", "jsonl:/data/archive.jsonl") == (None, None)
    assert (state.chunks_stored("archive"), state.docs("archive"), list(state.signatures())) == (None, {}, [])
    assert state.docs("archive", generation="g1") == {"d1": "https://x/1"}  # kept for `ingest verify`
    assert state.generations() == ["g1"]
    assert state.forget_other_generations() == 4
    state.bind("g1")
    assert (state.validators("archive", "jsonl:/data/archive.jsonl"), state.docs("archive")) == ((None, None), {})


def test_state_forgets_documents_by_the_stores_retention_rule(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    state = IngestState(tmp_path / "s.sqlite")
    now = datetime.now(UTC)
    state.remember_docs("metro", [StoredDoc("old", "u1", now - timedelta(days=40)),
                                  StoredDoc("fresh", "u2", now - timedelta(days=2)), StoredDoc("undated", "u3")])
    state.forget_docs_older_than("metro", now - timedelta(days=30))
    assert set(state.docs("metro")) == {"fresh", "undated"}  # undated: stored just now
    state.forget_docs("metro", ["fresh"])
    assert set(state.docs("metro")) == {"undated"}
    later = datetime.now(UTC)
    state.remember_docs("metro", [StoredDoc("undated", "u3")], written=False)  # found unchanged, not written
    state.forget_docs_older_than("metro", later)
    assert state.docs("metro") == {}  # undated: by the time it was written, as the store's retention goes


def test_summary_fails_only_when_every_source_failed() -> None:
    ok = {"source_id": "a", "status": "ok", "new": 2, "chunks_written": 5, "failed": []}
    bad = {"source_id": "b", "status": "failed", "error": "boom", "failed": []}
    totals = summarize([[ok], [bad]])
    assert totals["sources"] == 2 and totals["sources_failed"] == 1 and totals["chunks_written"] == 5
    assert totals["failed_sources"] == ["b"]
    with pytest.raises(AllSourcesFailed, match="b: boom"):
        summarize([[bad]])
    missing = summarize([[ok], None], expected=2)  # a batch whose task died counts as failed
    assert missing["sources_failed"] == 1
    assert summarize([])["sources"] == 0
