#!/usr/bin/env python
"""Retrieval quality on any BEIR-format folder, measured through the real pipeline and search.

    .venv/bin/python bench/retrieval_quality.py ../shared/data/beir-scifact --split train

1. The folder is loaded and checked (:func:`newsrag.evaluation.beir.load_beir`: every error names the file
   and line).
2. The corpus is ingested by ``run_source`` as a ``jsonl`` source (``fields: {id: _id}``) into a
   fresh collection of a private weaviate-server: the real chunking, the real embedder and the real
   embedding cache. The cache lives outside the temporary folder (``--cache``), so a re-run embeds
   nothing and tuning is cheap.
3. Every query goes through ``newsrag.retrieval.search.Searcher`` three times: BM25 only, vector only
   (both without reranking), and hybrid with the shipped defaults (``SearchSettings`` as loaded,
   so ``NEWSRAG_SEARCH_*`` variables try other settings). Chunk hits become documents in the order
   of each document's best chunk.
4. nDCG@10, Recall@100 and MRR@10 (``newsrag.evaluation.metrics``, the golden-set implementation) are
   printed side by side, all from this one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness.cli import logger
from bench.harness.servers import private_weaviate, use_private_home

TARGET_HYBRID_NDCG10 = 0.74  # issue 8, SciFact train split
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "newsrag" / "bench" / "embedding-cache.sqlite"
log = logger("retrieval_quality", clock=False)


def modes(search_settings: Any, depth: int) -> list[tuple[str, str, Any]]:
    """``(label, mode, settings)`` per row: the baselines rank by their own scores only."""
    deep = search_settings.model_copy(update={"candidates": max(search_settings.candidates, depth)})
    plain = deep.model_copy(update={"rerank": "none", "recency_half_life_days": None})
    return [("BM25 only", "bm25", plain), ("vector only", "vector", plain),
            ("hybrid (shipped defaults)", "hybrid", deep)]


def parse_try(text: str) -> tuple[dict[str, Any], tuple[float, float] | None]:
    """``"alpha=0.7,fusion=ranked,query_properties=title^3+text,bm25_b=0.4"`` -> search settings
    updates and, when ``bm25_k1``/``bm25_b`` are named, the collection's BM25 parameters."""
    updates: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise SystemExit(f"bench/retrieval_quality.py: --try expects key=value pairs, got {part!r}")
        updates[key.strip()] = tuple(value.split("+")) if key.strip() == "query_properties" else value.strip()
    k1, b = updates.pop("bm25_k1", None), updates.pop("bm25_b", None)
    return updates, None if k1 is None and b is None else (float(k1 or 1.2), float(b or 0.75))


def score_rows(dataset: Any, store: Any, embedder: Any, rows: list[tuple[str, str, Any]], depth: int,
               qids: list[str]) -> dict[str, Any]:
    from newsrag.evaluation.beir import ranked_documents, score_run
    from newsrag.ingest.models import doc_id_for
    from newsrag.retrieval.search import Searcher

    corpus_id = {doc_id_for(doc): doc for doc in dataset.corpus}
    qrels = {q: dataset.qrels[q] for q in qids}
    out: dict[str, Any] = {}
    for label, mode, settings in rows:
        searcher = Searcher(store, embedder, settings)
        started = time.perf_counter()
        run = {q: ranked_documents(searcher.search(dataset.queries[q], top_k=depth, mode=mode).hits, corpus_id)
               for q in qids}
        seconds = time.perf_counter() - started
        out[label] = {"mode": mode, **score_run(run, qrels), "ms_per_query": round(1000 * seconds / len(qids), 1),
                      "settings": _settings_summary(settings, mode)}
        log(f"{label}: " + ", ".join(f"{k} {out[label][k]:.4f}" for k in ("ndcg@10", "recall@100", "mrr@10")))
    return out


def evaluate(dataset: Any, store: Any, embedder: Any, search_settings: Any, depth: int,
             limit: int | None = None, tries: Sequence[str] = ()) -> dict[str, Any]:
    """Run every judged query through each row's Searcher; returns the scores per row. Each of
    ``tries`` adds a hybrid row with those settings on the same collection."""
    qids = sorted(dataset.queries)[:limit] if limit else sorted(dataset.queries)
    rows = modes(search_settings, depth)
    results = score_rows(dataset, store, embedder, rows, depth, qids)
    shipped = rows[-1][2]
    shipped_bm25 = store.bm25_params()
    for text in tries:
        updates, bm25 = parse_try(text)
        mode = str(updates.pop("mode", "hybrid"))
        settings = type(shipped).model_validate({**shipped.model_dump(), **updates})
        store.set_bm25(*(bm25 or shipped_bm25))
        results.update(score_rows(dataset, store, embedder, [(f"try {text}", mode, settings)], depth, qids))
    store.set_bm25(*shipped_bm25)
    return {"queries": len(qids), "rows": results, "bm25": {"k1": shipped_bm25[0], "b": shipped_bm25[1]}}


def _settings_summary(settings: Any, mode: str) -> dict[str, Any]:
    keys = {"bm25": ("query_properties",), "vector": (),
            "hybrid": ("alpha", "fusion", "query_properties", "rerank", "candidates")}[mode]
    return {k: getattr(settings, k) for k in keys}


def ingest(dataset: Any, tmp: Path, cache: Path, store: Any, embedder: Any) -> dict[str, Any]:
    """Ingest the corpus with ``run_source`` into ``store`` (a fresh collection); returns what it did."""
    from newsrag.core.settings import IngestSettings, load
    from newsrag.evaluation.beir import write_corpus_jsonl
    from newsrag.ingest.context import IngestContext
    from newsrag.ingest.pipeline import run_source
    from newsrag.ingest.registry import parse_source

    data = write_corpus_jsonl(dataset, tmp / "corpus.jsonl")
    settings = load(IngestSettings, state_file=tmp / "ingest-state.sqlite", embedding_cache=cache)
    spec = parse_source({"id": "beir", "type": "jsonl", "path": str(data),
                         "fields": {"id": "_id", "published": None, "author": None}})
    with IngestContext(settings, store=store, embedder=embedder, base_dir=tmp, home=tmp) as ctx:
        report = run_source(spec, ctx)  # an injected store and embedder stay open
    if report.status == "failed":
        raise SystemExit(f"bench/retrieval_quality.py: ingestion failed: {report.error}")
    facts = {"chunk_tokens": settings.chunk_tokens, "overlap_tokens": settings.overlap_tokens,
             "embedder": embedder.model_id, "documents": len(dataset.corpus), "objects": store.count(),
             **report.model_dump(mode="json", include={"new", "duplicates", "chunks_embedded",
                                                       "chunks_cached", "chunks_written", "seconds"}),
             "item_failures": [f.model_dump() for f in report.failed][:10]}
    log(f"ingested {facts['documents']} documents -> {facts['objects']} chunks "
        f"({facts['chunks_embedded']} embedded, {facts['chunks_cached']} from the cache) in {facts['seconds']}s")
    return facts


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from newsrag.evaluation.beir import load_beir

    dataset = load_beir(args.folder, args.split)  # a bad folder fails before anything is touched
    home = tmp / "home"
    use_private_home(home)  # before anything reads PathSettings
    from newsrag.core.settings import Settings, load
    from newsrag.embeddings import create_embedder
    from newsrag.retrieval.search import SearchSettings
    from newsrag.store.weaviate import WeaviateStore

    log(f"{args.folder}: {len(dataset.corpus)} documents, {len(dataset.queries)} judged queries "
        f"({args.split}), {sum(len(j) for j in dataset.qrels.values())} judgments")
    with private_weaviate(home):
        root = Settings()  # the bench is an edge: the private home it set, and NEWSRAG_EMBED_*
        store = WeaviateStore(root, collection=f"Beir{uuid.uuid4().hex[:10]}")
        embedder = create_embedder(root)
        try:
            facts = ingest(dataset, tmp, args.cache, store, embedder)
            result = evaluate(dataset, store, embedder, load(SearchSettings), args.depth, args.limit_queries,
                              args.tries)
        finally:
            store.close()
            embedder.close()
    return {"folder": str(args.folder), "split": args.split, "unknown_judged_docs": len(dataset.unknown_docs),
            "ingest": facts, **result}


def render(res: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{res['folder']} ({res['split']}, {res['queries']} queries, "
                        f"{res['ingest']['documents']} documents, {res['ingest']['objects']} chunks)")
    for col in ("retrieval", "nDCG@10", "Recall@100", "MRR@10", "ms/query"):
        table.add_column(col, justify="left" if col == "retrieval" else "right")
    for label, row in res["rows"].items():
        table.add_row(label, f"{row['ndcg@10']:.4f}", f"{row['recall@100']:.4f}", f"{row['mrr@10']:.4f}",
                      f"{row['ms_per_query']}")
    console = Console()
    console.print(table)
    hybrid = res["rows"]["hybrid (shipped defaults)"]
    best_single = max(res["rows"]["BM25 only"]["ndcg@10"], res["rows"]["vector only"]["ndcg@10"])
    console.print(f"hybrid settings: {hybrid['settings']}; chunking {res['ingest']['chunk_tokens']}/"
                  f"{res['ingest']['overlap_tokens']} tokens")
    console.print(f"hybrid nDCG@10 ÷ best single method: {hybrid['ndcg@10'] / best_single:.3f}; "
                  f"hybrid nDCG@10 {hybrid['ndcg@10']:.4f} vs target {TARGET_HYBRID_NDCG10} (SciFact train)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path, help="a BEIR-format folder (corpus.jsonl, queries, qrels/<split>.tsv)")
    p.add_argument("--split", default="train")
    p.add_argument("--depth", type=int, default=300, help="chunk hits fetched per query (Recall@100 needs >= 100 documents)")
    p.add_argument("--limit-queries", type=int, default=None, help="only the first N judged queries (by id)")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="embedding cache kept between runs")
    p.add_argument("--try", dest="tries", action="append", default=[], metavar="K=V,...",
                   help="one more hybrid row with these settings, e.g. 'alpha=0.7,fusion=ranked,bm25_b=0.4' "
                        "(SearchSettings fields, bm25_k1, bm25_b, mode; query_properties joined with +)")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from newsrag.evaluation.beir import BeirFormatError

    args.cache.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="newsrag-beir-") as tmp:
        try:
            res = run(args, Path(tmp))
        except BeirFormatError as exc:
            print(f"bench/retrieval_quality.py: {exc}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(res, indent=2, default=str))
    else:
        render(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
