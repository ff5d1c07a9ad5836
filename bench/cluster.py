#!/usr/bin/env python
"""Weaviate on the 3-node loopback cluster against the single node, as ratios measured in one run.

    .venv/bin/python bench/cluster.py [--quick] [--json]

1. A private single weaviate-server (as every bench starts it) and a private 3-node cluster
   (:class:`newsrag.store.cluster.WeaviateCluster`: Raft, API key) run side by side in a temporary
   folder, and are both stopped on the way out.
2. ``--chunks`` synthetic news chunks (bench/query_latency's generator) and the measured questions
   are embedded once up front with the local MiniLM embedder: no embedding time is measured.
3. **Insert rate**: each repetition writes the chunks through ``WeaviateStore.upsert`` into a fresh
   collection, on the cluster with replication factor 1 (the baseline), with factor 3 and QUORUM,
   and on the single node. The baseline runs once more at the end, so each repetition's ratio
   divides by the mean of the baseline just before and just after it (a bracket: drift on a
   shared machine moves both sides).
4. **Search p95**: every question through ``WeaviateStore.hybrid`` (the vector given), on the
   cluster's factor-3 collection against the single node's, bracketed the same way.
5. Ingest throughput with 1 Celery worker against 2 is bench/celery.py's (it runs the whole
   Airflow cluster): printed as measured elsewhere.

Each ratio is the median of the repetitions' ratios with its min, max and IQR. The load average
and CPU counts are printed with the figures: on 2 shared cores four servers compete for them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness.cli import logger
from bench.harness.servers import private_weaviate, use_private_home
from bench.harness.stats import ms_since, ratio, summarize
from bench.harness.usage import load_average_text

PROG = "bench/cluster.py"
ELSEWHERE = ("ingest throughput, 1 Celery worker against 2: measured by bench/celery.py (a whole "
             "Airflow cluster on Celery workers)")
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "newsrag" / "bench"
QUICK = {"chunks": 120, "repetitions": 3, "queries": 20}
log = logger("cluster")


# -- the pure parts: arguments, brackets and the summary ------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunks", type=int, default=1000, help="chunks written per insert measurement")
    p.add_argument("--repetitions", type=int, default=5, help="repetitions of every measurement")
    p.add_argument("--queries", type=int, default=50, help="hybrid queries per search measurement (max 50)")
    p.add_argument("--nodes", type=int, default=3, help="cluster nodes (the replication factor measured)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--quick", action="store_true",
                   help=f"a smoke run in under a minute: {QUICK['chunks']} chunks, "
                        f"{QUICK['repetitions']} repetitions, {QUICK['queries']} queries")
    p.add_argument("--vector-cache", type=Path, default=DEFAULT_CACHE,
                   help="folder keeping the embedded vectors between runs (keyed by model and texts)")
    p.add_argument("--no-vector-cache", dest="vector_cache", action="store_const", const=None,
                   help="embed everything again and keep nothing")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    args = p.parse_args(argv)
    if args.quick:
        args.chunks, args.repetitions, args.queries = QUICK["chunks"], QUICK["repetitions"], QUICK["queries"]
    for name in ("chunks", "repetitions", "queries"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.nodes < 2:
        p.error("--nodes must be at least 2 (a cluster)")
    return args


def bracketed_ratios(measured: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """Repetition ``i``'s ``measured[i]`` over the mean of ``baseline[i]`` and ``baseline[i + 1]``
    (the baseline run just before and just after it); needs one more baseline than measurements."""
    if len(baseline) != len(measured) + 1:
        raise ValueError(f"a bracket needs {len(measured) + 1} baseline runs for {len(measured)} "
                         f"measurements, got {len(baseline)}")
    out = []
    for i, value in enumerate(measured):
        r = ratio(value, (baseline[i] + baseline[i + 1]) / 2)
        if r is not None:
            out.append(r)
    return out


def ratio_summary(measured: Sequence[float], baseline: Sequence[float]) -> dict[str, float]:
    """The bracketed ratios' median, min, max and IQR (n: how many repetitions)."""
    s = summarize(bracketed_ratios(measured, baseline), digits=3)
    return {k: s[k] for k in ("n", "p50", "min", "max", "iqr") if k in s}


def assemble(inserts: dict[str, list[float]], p95s: dict[str, list[float]]) -> dict[str, Any]:
    """The figures from the raw runs: ``inserts`` holds chunks/s of ``rf1`` (one more run than the
    others: the bracket), ``rf3`` and ``single``; ``p95s`` holds hybrid p95 ms of ``single`` (the
    bracketed baseline) and ``cluster``."""
    return {
        "insert_per_s": {k: summarize(v, digits=1) for k, v in inserts.items()},
        "search_p95_ms": {k: summarize(v, digits=2) for k, v in p95s.items()},
        "ratios": {
            "insert rf3 QUORUM / rf1 (cluster)": ratio_summary(inserts["rf3"], inserts["rf1"]),
            "insert single node / rf1 (cluster)": ratio_summary(inserts["single"], inserts["rf1"]),
            "search p95 cluster rf3 / single node": ratio_summary(p95s["cluster"], p95s["single"]),
        },
        "elsewhere": [ELSEWHERE],
    }


def machine() -> dict[str, Any]:
    """What the figures ran on: the load average (1, 5, 15 min) and the CPUs."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"loadavg": load_average_text(), "cpus": os.cpu_count(), "cpus_usable": usable}


# -- the measurements ------------------------------------------------------------------------
def prepare(args: argparse.Namespace) -> tuple[list[Any], list[str], dict[str, list[float]], str]:
    """The chunks (props, vector) and the questions with their vectors, all embedded now (or read
    from ``--vector-cache``: the model is then not even loaded)."""
    from bench.query_latency.corpus import Corpus
    from bench.query_latency.synthetic import synthetic_questions
    from newsrag.embeddings.base import vector_name
    from newsrag.embeddings.local import LocalEmbedder

    corpus = Corpus(args.seed, args.chunks, None)
    chunks = [corpus.chunk(i) for i in range(args.chunks)]
    questions = synthetic_questions(args.seed)[0][:args.queries]
    embedder = LocalEmbedder()
    started = time.perf_counter()
    vectors, query_vectors = embedded(embedder, [text for _, text in chunks], questions, args.vector_cache)
    log(f"{len(chunks)} chunks and {len(questions)} questions embedded in {time.perf_counter() - started:.1f}s")
    objects = [(props, list(map(float, v))) for (props, _), v in zip(chunks, vectors, strict=True)]
    return objects, questions, dict(zip(questions, query_vectors, strict=True)), vector_name(embedder.model_id)


def embedded(embedder: Any, texts: list[str], questions: list[str], cache: Path | None) -> tuple[Any, Any]:
    """The texts' document vectors and the questions' query vectors, read from or saved to a file
    in ``cache`` named by a digest of the model and every text (None: no file)."""
    import numpy as np

    digest = hashlib.sha256("\x00".join([embedder.model_id, *texts, "\x01", *questions]).encode()).hexdigest()
    path = None if cache is None else cache / f"bench-cluster-{digest[:16]}.npz"
    if path is not None and path.is_file():
        saved = np.load(path)
        return saved["documents"], saved["queries"].tolist()
    documents = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    queries = np.asarray([embedder.embed_query(q) for q in questions], dtype=np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, documents=documents, queries=queries)
    return documents, queries.tolist()


def fresh_store(settings: Any, vname: str) -> Any:
    from newsrag.store.weaviate import WeaviateStore

    store = WeaviateStore(settings, collection=f"Bench{uuid.uuid4().hex[:10]}")
    store.ensure_collection([vname])
    return store


def insert_rate(settings: Any, objects: list[Any], vname: str, keep: bool = False) -> tuple[float, Any]:
    """Chunks/s of one ``upsert`` of every object into a fresh collection (created beforehand,
    not timed); the collection is dropped unless ``keep`` (then the open store is returned)."""
    from bench.query_latency.corpus import stored_object

    store = fresh_store(settings, vname)
    batch = [stored_object(str(uuid.uuid5(uuid.NAMESPACE_URL, f"{store.name}:{i}")), props, vector)
             for i, (props, vector) in enumerate(objects)]
    started = time.perf_counter()
    store.upsert(batch, vname)
    rate = len(batch) / (time.perf_counter() - started)
    if keep:
        return rate, store
    store.drop()
    store.close()
    return rate, None


def hybrid_p95(store: Any, questions: list[str], vectors: dict[str, list[float]], vname: str) -> float:
    """p95 ms of one hybrid query per question, after one unmeasured pass (warm caches)."""
    def ask(q: str) -> None:
        store.hybrid(q, vectors[q], vname, limit=10)

    for q in questions:
        ask(q)
    times = []
    for q in questions:
        started = time.perf_counter()
        ask(q)
        times.append(ms_since(started))
    return float(summarize(times)["p95"])


def measure_inserts(targets: dict[str, Any], objects: list[Any], vname: str, reps: int) -> dict[str, list[float]]:
    """rf1, rf3, single per repetition, then rf1 once more (the bracket's end)."""
    out: dict[str, list[float]] = {"rf1": [], "rf3": [], "single": []}
    for rep in range(reps):
        for name in ("rf1", "rf3", "single"):
            out[name].append(insert_rate(targets[name], objects, vname)[0])
        log(f"insert repetition {rep + 1}/{reps}: " + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in out.items()))
    out["rf1"].append(insert_rate(targets["rf1"], objects, vname)[0])
    return out


def measure_search(stores: dict[str, Any], questions: list[str], vectors: dict[str, list[float]], vname: str,
                   reps: int) -> dict[str, list[float]]:
    """single, cluster per repetition, then single once more (the bracket's end)."""
    out: dict[str, list[float]] = {"single": [], "cluster": []}
    run: Callable[[str], None] = lambda name: out[name].append(hybrid_p95(stores[name], questions, vectors, vname))
    for rep in range(reps):
        run("single")
        run("cluster")
        log(f"search repetition {rep + 1}/{reps}: p95 single {out['single'][-1]:.1f} ms, "
            f"cluster {out['cluster'][-1]:.1f} ms")
    run("single")
    return out


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    home = tmp / "home"
    use_private_home(home)  # before anything reads PathSettings
    from newsrag.core.settings import Settings
    from newsrag.store.cluster import WeaviateCluster

    objects, questions, query_vectors, vname = prepare(args)
    before = machine()
    with private_weaviate(home):
        root = Settings()
        cluster = WeaviateCluster.from_settings(root, folder=tmp / "cluster", size=args.nodes)
        started = time.perf_counter()
        try:
            cluster.up()
            log(f"{args.nodes}-node cluster up in {time.perf_counter() - started:.1f}s")
            rf3 = cluster.client_settings()
            targets = {"rf1": rf3.model_copy(update={"replication_factor": 1}), "rf3": rf3, "single": root}
            inserts = measure_inserts(targets, objects, vname, args.repetitions)
            stores = {"single": insert_rate(root, objects, vname, keep=True)[1],
                      "cluster": insert_rate(rf3, objects, vname, keep=True)[1]}
            try:
                p95s = measure_search(stores, questions, query_vectors, vname, args.repetitions)
            finally:
                for store in stores.values():
                    store.drop()
                    store.close()
        finally:
            cluster.down()
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "chunks": args.chunks,
            "repetitions": args.repetitions, "queries": len(questions), "nodes": args.nodes,
            "machine_before": before, "machine_after": machine(), **assemble(inserts, p95s)}


def render(res: dict[str, Any]) -> None:
    print(f"{PROG} {res['date']}: {res['chunks']} chunks per insert, {res['queries']} hybrid queries, "
          f"{res['repetitions']} repetitions, {res['nodes']}-node cluster on loopback")
    for when in ("before", "after"):
        m = res[f"machine_{when}"]
        print(f"  load average {when}: {m['loadavg']} (cpus {m['cpus']}, usable {m['cpus_usable']})")
    for name, s in res["insert_per_s"].items():
        print(f"  insert {name:<7} chunks/s  median {s['p50']:>8.1f}  min {s['min']:.1f}  max {s['max']:.1f}  n {s['n']}")
    for name, s in res["search_p95_ms"].items():
        print(f"  search p95 {name:<7} ms   median {s['p50']:>8.2f}  min {s['min']:.2f}  max {s['max']:.2f}  n {s['n']}")
    for name, r in res["ratios"].items():
        print(f"  ratio {name:<38} median {r['p50']:.3f}  min {r['min']:.3f}  max {r['max']:.3f}  "
              f"iqr {r['iqr']:.3f}  n {r['n']}")
    for elsewhere in res["elsewhere"]:
        print(f"  elsewhere: {elsewhere}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="newsrag-cluster-bench-") as tmp:
        res = run(args, Path(tmp))
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        render(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
