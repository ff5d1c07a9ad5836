"""The collection measured: chunk ``i`` of N, its properties and embedding text, its vector derived
from a pool embedded for real, and the collection written in batches through ``WeaviateStore.upsert``.

Text is synthetic (:mod:`.synthetic`) or taken from real articles (``--corpus``, RealTimeQA-style
JSONL; questions from the sibling ``*_qa.jsonl`` files). Every chunk past the pool is about the same
topic as one pool chunk and gets that chunk's vector plus gaussian noise, so the vector space has
the real model's geometry without embedding N chunks.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness.cli import jsonl_objects, logger
from bench.query_latency.constants import (
    CHUNKS_PER_DOC,
    INSERT_BATCH,
    PROG,
    QUESTIONS,
    WARMUP_ROUNDS,
)
from bench.query_latency.news_templates import SOURCES
from bench.query_latency.synthetic import TOPICS, synthetic_doc, synthetic_text

MIN_ARTICLE_WORDS = 120  # a shorter real article makes no 150-200 word chunk
log = logger("bench")


# -- real corpus -----------------------------------------------------------------------------------
def _split_words(text: str, lo: int = 150, hi: int = 200) -> list[str]:
    """Paragraph-preserving chunks of about lo-hi words (long paragraphs are cut by words)."""
    chunks: list[str] = []
    current: list[str] = []
    count = 0
    for para in (p.strip() for p in re.split(r"\n\s*\n|\n", text)):
        if not para:
            continue
        words = para.split()
        while len(words) > hi:  # an over-long paragraph: cut it
            take = hi - count if count < lo else 0
            if take <= 0 and current:
                chunks.append("\n\n".join(current))
                current, count = [], 0
                continue
            take = take or hi
            current.append(" ".join(words[:take]))
            chunks.append("\n\n".join(current))
            current, count, words = [], 0, words[take:]
        current.append(" ".join(words))
        count += len(words)
        if count >= lo:
            chunks.append("\n\n".join(current))
            current, count = [], 0
    if current and count >= 60:
        chunks.append("\n\n".join(current))
    return chunks


def _questions_by_id(files: list[Path]) -> dict[str, str]:
    """RealTimeQA question sentences by question id, from the ``*_qa.jsonl`` beside each ``*_gcs.jsonl``."""
    found: dict[str, str] = {}
    for path in files:
        qa = path.with_name(path.name.replace("_gcs", "_qa"))
        if qa != path and qa.is_file():
            for r in jsonl_objects(qa):
                if r.get("question_id") and r.get("question_sentence"):
                    found[r["question_id"]] = r["question_sentence"]
    return found


def _author(article: dict[str, Any]) -> str:
    authors = article.get("authors")
    return ", ".join(authors) if isinstance(authors, list) else str(article.get("author") or "")


def _real_chunks(files: list[Path], pool: int) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Up to ``pool`` chunks (at most 3 per article of 120+ words, each url once), and the questions
    asked about each url."""
    by_id = _questions_by_id(files)
    base: list[dict[str, Any]] = []
    seen: set[str] = set()
    url_questions: dict[str, list[str]] = {}
    for path in files:
        for record in jsonl_objects(path):
            nested = record.get("search_result")
            articles = nested if isinstance(nested, list) else [record]
            question = by_id.get(str(record.get("question_id"))) or record.get("question")
            for a in (a for a in articles if isinstance(a, dict)):
                url, text = str(a.get("url") or ""), str(a.get("text") or "")
                if question and url:
                    url_questions.setdefault(url, []).append(question)
                if not url or url in seen or len(text.split()) < MIN_ARTICLE_WORDS or len(base) >= pool:
                    continue
                seen.add(url)
                base += [{"doc": f"real-{len(seen)}", "url": url, "title": str(a.get("title") or ""), "text": piece,
                          "chunk_index": k, "author": _author(a)}
                         for k, piece in enumerate(_split_words(text)[:CHUNKS_PER_DOC])]
    return base[:pool], url_questions


def load_corpus(files: list[Path], pool: int) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Up to ``pool`` real chunks, the measured questions about their articles (the dataset's own,
    then one per title), and the warm-up questions."""
    base, url_questions = _real_chunks(files, pool)
    if not base:
        raise SystemExit(f"{PROG}: the corpus holds no article text of {MIN_ARTICLE_WORDS}+ words")
    in_base = {b["url"] for b in base}
    questions = list(dict.fromkeys(q for url in in_base for q in url_questions.get(url, [])))
    random.Random("corpus-questions").shuffle(questions)
    titles = list(dict.fromkeys(b["title"] for b in base if b["title"]))
    title_qs = [f"What is the latest news about {t.split(' - ')[0].split(' | ')[0].rstrip(' .')}?" for t in titles]
    measured = (questions + title_qs)[:QUESTIONS]
    warm = (questions + title_qs)[QUESTIONS:][:WARMUP_ROUNDS] or [f"News about {t}" for t in titles][:WARMUP_ROUNDS]
    return base, measured, warm


def vary(text: str, rng: random.Random) -> str:
    """A lightly different copy of a real chunk: one sentence dropped, a dateline added."""
    from newsrag.retrieval.generators.extractive import split_sentences

    sentences = split_sentences(text)
    if len(sentences) > 4:
        del sentences[rng.randrange(1, len(sentences))]
    city = rng.choice(("LONDON", "NEW YORK", "WASHINGTON", "SYDNEY", "TORONTO", "PARIS", "BERLIN", "TOKYO"))
    return f"{city} ({rng.choice(SOURCES)}) — " + " ".join(sentences)


# -- the collection -------------------------------------------------------------------------------
class Corpus:
    """Chunk ``i`` of the collection: properties, embedding text, and the pool chunk it derives from.
    Chunks ``0 .. pool-1`` are the pool themselves (embedded for real)."""

    def __init__(self, seed: int, pool_target: int, real: list[dict[str, Any]] | None) -> None:
        self.seed = seed
        self.real = real
        self.now = datetime.now(UTC)
        if real is None:
            step = CHUNKS_PER_DOC * len(TOPICS)  # pool docs: a whole number of topic cycles
            self.pool_docs = max(1, round(pool_target / step)) * len(TOPICS)
            self.pool = self.pool_docs * CHUNKS_PER_DOC
        else:
            self.pool = len(real)

    def parent(self, i: int) -> int:
        if self.real is not None:
            return i % self.pool
        d, c = divmod(i, CHUNKS_PER_DOC)
        return (d % self.pool_docs) * CHUNKS_PER_DOC + c  # same topic (pool_docs is a multiple of topics)

    def _synthetic(self, i: int) -> dict[str, Any]:
        d, c = divmod(i, CHUNKS_PER_DOC)
        doc = synthetic_doc(d, self.seed, len(TOPICS))
        return {"text": synthetic_text(d, c, self.seed, doc), "chunk_index": c, "doc_id": f"synth-{d}",
                "title": doc["title"], "url": f"https://{doc['source_id']}.example/news/{d}",
                "source_id": doc["source_id"], "days": doc["days_ago"], "author": doc["author"], "tags": [doc["tag"]]}

    def _real(self, i: int) -> dict[str, Any]:
        assert self.real is not None
        rep, b = divmod(i, self.pool)
        base = self.real[b]
        drng = random.Random(f"{self.seed}:realdoc:{base['doc']}:{rep}")
        text = base["text"] if rep == 0 else vary(base["text"], random.Random(f"{self.seed}:real:{i}"))
        return {"text": text, "chunk_index": base["chunk_index"], "doc_id": f"{base['doc']}-{rep}",
                "title": base["title"], "url": base["url"] if rep == 0 else f"{base['url']}#copy-{rep}",
                "source_id": drng.choice(SOURCES), "days": drng.uniform(0, 365), "author": base["author"], "tags": []}

    def chunk(self, i: int) -> tuple[dict[str, Any], str]:
        """Chunk ``i``'s properties (``context`` included) and the text its vector stands for."""
        from newsrag.ingest.chunking import embedding_text
        from newsrag.store.analysis import bm25_terms

        c = self._synthetic(i) if self.real is None else self._real(i)
        text, title, doc_id = c["text"], c["title"], c["doc_id"]
        props = {
            "text": text, "title": title, "url": c["url"], "source_id": c["source_id"], "doc_id": doc_id,
            "content_hash": uuid.uuid5(uuid.NAMESPACE_URL, f"{doc_id}:{self.seed}").hex, "author": c["author"],
            "language": "en", "tags": c["tags"], "also_sources": [],
            "published_at": self.now - timedelta(days=c["days"]), "ingested_at": self.now,
            "chunk_index": c["chunk_index"], "token_count": math.ceil(len(text.split()) * 1.3),
            # As ingestion writes it: analysed title and text (one chunk, no neighbours here).
            "context": bm25_terms(f"{title}\n\n{text}"),
        }
        return props, embedding_text(title, text)


def pool_vectors(corpus: Corpus, embedder: Any, cache_dir: str | None) -> tuple[np.ndarray, Path | None]:
    """The pool chunks embedded for real (or read from ``cache_dir``, keyed by model and texts);
    returns the vectors and the cache file they came from (None when embedded now)."""
    texts = [corpus.chunk(i)[1] for i in range(corpus.pool)]
    log(f"embedding the pool: {len(texts)} chunk texts with MiniLM (batch {embedder.settings.batch_size}) ...")
    cache = None
    if cache_dir:
        digest = hashlib.sha256("\x00".join([embedder.model_id, *texts]).encode()).hexdigest()[:16]
        cache = Path(cache_dir).expanduser() / f"bench-query-pool-{digest}.npy"
    if cache is not None and cache.is_file():
        return np.load(cache), cache
    vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, vectors)
    return vectors, None


def derived_vectors(corpus: Corpus, pool: np.ndarray, start: int, stop: int, noise: float) -> np.ndarray:
    """Vectors of chunks ``start .. stop-1``: the pool chunks keep their real vector, the others get
    their parent's plus N(0, noise²) per dimension, L2-normalized."""
    vectors = pool[np.array([corpus.parent(i) for i in range(start, stop)])].copy()
    derived = np.arange(start, stop) >= corpus.pool
    if derived.any():
        rng = np.random.default_rng([corpus.seed, start])
        vectors[derived] += rng.normal(0.0, noise, size=(int(derived.sum()), vectors.shape[1])).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def stored_object(uid: str, props: dict[str, Any], vector: list[float]) -> Any:
    """One chunk as the store writes it: its record, its BM25 context and its vector."""
    from newsrag.core.records import ChunkRecord, StoredObject

    record = ChunkRecord(**{k: v for k, v in props.items() if k != "context" and v is not None})
    return StoredObject(uuid=uid, chunk=record, vector=vector, context=props["context"])


def build_collection(store: Any, corpus: Corpus, n: int, pool: np.ndarray, vname: str,
                     noise: float) -> dict[str, Any]:
    """Write chunks ``0 .. n-1`` in batches of ``INSERT_BATCH``; returns where the time went."""
    store.ensure_collection([vname])
    gen_s = vec_s = insert_s = 0.0
    words = 0
    for start in range(0, n, INSERT_BATCH):
        stop = min(n, start + INSERT_BATCH)
        t = time.perf_counter()
        chunks = [corpus.chunk(i) for i in range(start, stop)]
        gen_s += time.perf_counter() - t
        t = time.perf_counter()
        vectors = derived_vectors(corpus, pool, start, stop, noise)
        objects = [stored_object(str(uuid.uuid5(uuid.NAMESPACE_URL, f"{store.name}:{i}")), props, vector.tolist())
                   for i, (props, _), vector in zip(range(start, stop), chunks, vectors, strict=True)]
        words += sum(len(p["text"].split()) for p, _ in chunks)
        vec_s += time.perf_counter() - t
        t = time.perf_counter()
        store.upsert(objects, vname)
        insert_s += time.perf_counter() - t
        if (stop // INSERT_BATCH) % 10 == 0 or stop == n:
            log(f"  {stop}/{n} chunks written ({stop / insert_s:.0f}/s insert)")
    return {"generate_text_s": round(gen_s, 2), "vectors_s": round(vec_s, 2), "insert_s": round(insert_s, 2),
            "insert_chunks_per_s": round(n / insert_s, 1), "mean_words_per_chunk": round(words / n, 1)}
