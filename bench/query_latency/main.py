"""The run: the corpus and questions, the model and the pool's real embeddings, a private
weaviate-server, then every size in turn (:mod:`.rounds`), and the command line."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

import bench.query_latency
from bench.harness.cli import expand_inputs, logger, scratch_folder
from bench.harness.servers import private_weaviate, use_private_home
from bench.harness.usage import load_average, peak_rss_mib
from bench.query_latency.constants import (
    CODE,
    PROG,
    TARGET_ASK_P95_MS,
    TARGET_ASK_SIZE,
    TARGET_OVERHEAD,
    WARMUP_ROUNDS,
)
from bench.query_latency.corpus import Corpus, load_corpus, pool_vectors
from bench.query_latency.report import render
from bench.query_latency.synthetic import synthetic_questions

ROOT = Path(__file__).resolve().parents[2]
log = logger("bench")


def code_fingerprint(root: Path = ROOT) -> dict[str, Any]:
    """What was measured: a digest of the app's query-path sources and the newest change among them
    (the figures describe the code as it was when the run started)."""
    files = sorted(f for c in CODE for f in ((root / c).rglob("*.py") if (root / c).is_dir() else [root / c])
                   if f.is_file())
    h = hashlib.sha256()
    newest = (0.0, "")
    for f in files:
        h.update(str(f.relative_to(root)).encode() + b"\x00" + f.read_bytes())
        newest = max(newest, (f.stat().st_mtime, str(f.relative_to(root))))
    return {"digest": h.hexdigest()[:12], "files": len(files),
            "newest_change": f"{newest[1]} at {datetime.fromtimestamp(newest[0], UTC).isoformat(timespec='seconds')}"}


def _corpus(args: argparse.Namespace, res: dict[str, Any]) -> tuple[Corpus, list[str], list[str]]:
    """The collection's text source and the measured and warm-up questions."""
    if args.corpus_files:
        real, questions, warmup = load_corpus(args.corpus_files, args.pool)
        corpus = Corpus(args.seed, args.pool, real)
    else:
        questions, warmup = synthetic_questions(args.seed)
        corpus = Corpus(args.seed, args.pool, None)
    res["pool_chunks"] = corpus.pool
    res["questions"] = questions
    res["warmup_questions"] = warmup
    log(f"{len(questions)} questions, {len(warmup)} warm-up questions; pool of {corpus.pool} chunks")
    return corpus, questions, warmup


def _embed(args: argparse.Namespace, res: dict[str, Any], corpus: Corpus,
           questions: list[str]) -> tuple[Any, np.ndarray, dict[str, list[float]]]:
    """The model loaded, the pool embedded for real (or read from --pool-cache), every question's vector."""
    from newsrag.core.settings import EmbeddingSettings, load
    from newsrag.embeddings.local import LocalEmbedder

    raw_embedder = LocalEmbedder(load(EmbeddingSettings, provider="local"))
    t = time.perf_counter()
    raw_embedder.embed_query("load the model")
    res["model_load_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    vectors, cached = pool_vectors(corpus, raw_embedder, args.pool_cache)
    res["pool_embed_s"] = round(time.perf_counter() - t, 2)
    if cached is not None:
        res["pool_vectors_from_cache"] = str(cached)
    log(f"pool ready in {res['pool_embed_s']}s" + (f" (from {cached})" if cached is not None
                                                      else f" ({corpus.pool / res['pool_embed_s']:.1f} chunks/s)"))
    query_vectors = {q: np.asarray(raw_embedder.embed_documents([q])[0], dtype=np.float32).tolist()
                     for q in dict.fromkeys(questions)}
    return raw_embedder, vectors, query_vectors


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from bench.query_latency.rounds import Shared, run_size
    from newsrag.embeddings.base import vector_name

    home = tmp / "home"
    use_private_home(home)  # before anything reads PathSettings
    t_total = time.perf_counter()
    res: dict[str, Any] = {
        "code": code_fingerprint(),
        "sizes": args.sizes, "queries": args.queries, "warmup_rounds": WARMUP_ROUNDS, "seed": args.seed,
        "noise_sigma": args.noise, "cpu_count": os.cpu_count(), "loadavg_start": load_average(),
        "corpus": [str(p) for p in args.corpus_files] if args.corpus_files else "synthetic",
        "targets": {"ask_p95_ms": TARGET_ASK_P95_MS, "ask_target_size": TARGET_ASK_SIZE,
                    "overhead_ratio": TARGET_OVERHEAD},
        "results": [],
    }
    corpus, questions, warmup = _corpus(args, res)
    raw_embedder, vectors, query_vectors = _embed(args, res, corpus, questions + warmup)
    with private_weaviate(home) as weaviate:
        state = weaviate.state
        res["weaviate_version"], res["server_start_s"] = state.version, round(weaviate.start_s, 2)
        log(f"weaviate-server {state.version} pid {state.pid} on {state.http_url} (grpc {state.grpc_port})")
        shared = Shared(state.pid, corpus, vectors, vector_name(raw_embedder.model_id), raw_embedder.settings,
                        raw_embedder, query_vectors, questions, warmup, tmp)
        for n in args.sizes:
            res["results"].append(run_size(n, args, shared))
            _log_size(res["results"][-1])
    res["weaviate_peak_rss_mib"] = weaviate.peak_rss_at_stop
    res["code_at_end"] = code_fingerprint()
    res["peak_rss_mib"] = peak_rss_mib()
    res["loadavg_end"] = load_average()
    res["total_s"] = round(time.perf_counter() - t_total, 1)
    return res


def _log_size(r: dict[str, Any]) -> None:
    lm = r["latency_ms"]
    log(f"[{r['chunks']}] hybrid p95 {lm['hybrid']['p95']} ms, embed p95 {lm['embed']['p95']} ms, "
        f"search p95 {lm['search']['p95']} ms, ask cold/warm p95 "
        f"{lm['ask_cold'].get('p95')}/{lm['ask_warm'].get('p95')} ms")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    doc = bench.query_latency.__doc__ or ""
    parser = argparse.ArgumentParser(prog=PROG, description=doc.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,50000", help="collection sizes in chunks (default 10000,50000)")
    parser.add_argument("--queries", type=int, default=200, help="requests per endpoint per size (default 200)")
    parser.add_argument("--corpus", nargs="*", default=None, metavar="PATH",
                        help="JSONL files or globs of real articles for chunk text (default: synthetic news)")
    parser.add_argument("--pool", type=int, default=1000, help="chunk texts embedded for real (default ~1000)")
    parser.add_argument("--noise", type=float, default=0.02, help="gaussian noise sigma per dimension (default 0.02)")
    parser.add_argument("--pool-cache", default=None, metavar="DIR",
                        help="keep the pool's real embeddings in DIR and reuse them (default: embed every run)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--json", action="store_true", help="print one JSON line of results at the end")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes must be comma-separated integers")
    if not args.sizes or min(args.sizes) < 1 or args.queries < 1 or args.pool < 10:
        parser.error("--sizes, --queries must be >= 1 and --pool >= 10")
    args.corpus_files = expand_inputs(args.corpus, PROG) if args.corpus else None
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with scratch_folder("newsrag-bench-query-", args.keep, log) as tmp:
        res = run(args, tmp)
    render(res)
    if args.json:
        print(json.dumps(res, default=str))
    return 0
