#!/usr/bin/env python
"""Ingest throughput on the loopback cluster with 1 Celery worker against 2, as ratios measured in
one run (issue 13, item 6).

    .venv/bin/python bench/celery.py [--sources N] [--repetitions R] [--json]

1. ``scripts/cluster up`` in a temporary home, as a user runs it: 3 Weaviate nodes (RF 3, QUORUM),
   PostgreSQL, Redis, Airflow 3 on the CeleryExecutor with ``worker-1`` and ``worker-2``
   (concurrency 2 each), the app. The registry holds ``--sources`` feeds of ``../shared/data/feeds``
   (real third-party feeds), one mapped ``ingest_batch`` task each. ``down`` on the way out.
2. Each measurement is one ``news_ingest`` run through the REST API on a lost store: the collection
   is dropped (its ingest state is bound to the old generation, so everything is ingested again)
   and the shared embedding cache is emptied (``DELETE FROM vectors`` in the ``newsrag``
   database), so every run parses, embeds and writes every chunk, as a new deployment does.
   Throughput = chunks written / (the run's end - its start), from Airflow's own run times.
3. One worker: ``worker-2`` is stopped (its whole process session) and only ``worker-1`` consumes
   the queue; two workers: it is started again (``restart_component``). The runs alternate
   2, 1, 2, 1, ..., 2, so each 1-worker run's ratio divides by the mean of the 2-worker runs just
   before and just after it (a bracket: a busier machine moves both sides).

On 2 cores no speed-up is expected: embedding is CPU-bound and one worker with concurrency 2
already runs two tasks at once. The figure is the overhead (or gain) of spreading the same tasks
over two worker processes. The load average and CPU counts are printed with it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness.cli import logger
from bench.harness.stats import summarize
from bench.harness.usage import load_average_text

REPO = Path(__file__).resolve().parents[1]
PROG = "bench/celery.py"
FEEDS = REPO.parent / "shared" / "data" / "feeds"
NEVER = "0 0 29 2 *"
log = logger("celery")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sources", type=int, default=8, help="feeds of ../shared/data/feeds in the registry")
    p.add_argument("--repetitions", type=int, default=3, help="1-worker runs (each bracketed by 2-worker runs)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)
    if args.sources < 2 or args.repetitions < 1:
        p.error(f"--sources must be 2 or more (two workers need two tasks) and --repetitions 1 or more "
                f"(got --sources {args.sources}, --repetitions {args.repetitions})")
    return args


def registry(home: Path, count: int, folder: Path = FEEDS) -> Path:
    """A registry of the folder's first ``count`` feeds, one source each."""
    feeds = sorted(f for f in folder.iterdir() if f.suffix in (".rss", ".xml", ".atom"))[:count]
    if len(feeds) < count:
        raise SystemExit(f"{PROG}: {folder} holds {len(feeds)} feeds, {count} asked for")
    path = home / "sources.yaml"
    path.write_text(yaml.safe_dump({"sources": [
        {"id": f"feed-{i}", "type": "feed", "url": str(f)} for i, f in enumerate(feeds)]}))
    return path


class Cluster:
    """``scripts/cluster`` in ``home`` and the REST client of its Airflow."""

    def __init__(self, home: Path, sources: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WEAVIATE_", "NEWSRAG_"))}
        env.update({"NEWSRAG_HOME": str(home), "NEWSRAG_AIRFLOW_PORT": "0", "NEWSRAG_INGEST_RETRIES": "0",
                    "NEWSRAG_INGEST_SOURCES_FILE": str(registry(home, sources)),
                    "NEWSRAG_INGEST_SCHEDULE": NEVER, "NEWSRAG_EVAL_SCHEDULE": NEVER})
        self.home, self.env, self.folder = home, env, home / "cluster"
        self.api: httpx.Client | None = None

    def script(self, *args: str, timeout: float = 600) -> None:
        done = subprocess.run([str(REPO / "scripts" / "cluster"), *args], env=self.env, cwd=REPO,
                              capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{PROG}: scripts/cluster {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")

    def airflow(self) -> Any:
        from newsrag.cli.cluster_airflow import ClusterAirflow
        from newsrag.core.settings import Settings
        from newsrag.store.cluster import WeaviateCluster

        return ClusterAirflow(self.folder, {**self.env, **WeaviateCluster.from_settings(Settings(self.env)).client_environ()})

    def connect(self) -> None:
        state = self.airflow().state()
        password = json.loads((self.folder / "airflow" / "simple_auth_manager_passwords.json").read_text())["admin"]
        base = f"http://127.0.0.1:{state['api_port']}"
        token = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=30)
        self.api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token.json()['access_token']}"},
                                timeout=60)
        self.api.patch("/api/v2/dags/answer_quality", json={"is_paused": True}).raise_for_status()


def lose_the_store(cluster: Cluster) -> None:
    """Drop the collection and empty the shared embedding cache: the next run does all the work."""
    import psycopg

    from newsrag.core.settings import Settings
    from newsrag.store.cluster import WeaviateCluster
    from newsrag.store.weaviate import WeaviateStore

    with WeaviateStore(WeaviateCluster.from_settings(Settings(cluster.env)).client_settings()) as store:
        if store.exists():
            store.drop()
    airflow = cluster.airflow()
    url = airflow.executor_env(airflow.state())["NEWSRAG_DATABASE_URL"]
    with psycopg.connect(url) as conn:  # the cache's table exists from the first run on
        if conn.execute("SELECT to_regclass('vectors')").fetchone() != (None,):
            conn.execute("DELETE FROM vectors")


def use_workers(cluster: Cluster, count: int) -> None:
    from newsrag.cli import processes

    airflow = cluster.airflow()
    pid = airflow.state()["components"]["worker-2"]
    if count == 1 and processes.alive(pid):
        processes.stop_session(pid)
    elif count == 2 and not processes.alive(pid):
        airflow.restart_component("worker-2")
        time.sleep(10)  # until it has joined the broker (its "ready." line)


def ingest_run(cluster: Cluster) -> dict[str, float]:
    """One news_ingest run: chunks written, seconds, chunks/s."""
    assert cluster.api is not None
    resp = cluster.api.post("/api/v2/dags/news_ingest/dagRuns", json={"logical_date": None, "conf": {}})
    resp.raise_for_status()
    run_id, run = resp.json()["dag_run_id"], {"state": "queued"}
    while run["state"] not in ("success", "failed"):
        time.sleep(2)
        run = cluster.api.get(f"/api/v2/dags/news_ingest/dagRuns/{run_id}").json()
    if run["state"] != "success":
        raise SystemExit(f"{PROG}: news_ingest run {run_id} failed: see {cluster.folder / 'logs'}")
    totals = cluster.api.get(f"/api/v2/dags/news_ingest/dagRuns/{run_id}/taskInstances/summarize/xcomEntries/"
                             "return_value", params={"deserialize": "true"}).json()["value"]
    seconds = (datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])).total_seconds()
    return {"chunks": totals["chunks_written"], "seconds": round(seconds, 1),
            "per_s": round(totals["chunks_written"] / seconds, 2)}


def measure(cluster: Cluster, repetitions: int) -> dict[str, list[dict[str, float]]]:
    runs: dict[str, list[dict[str, float]]] = {"2": [], "1": []}
    for workers in [2, *[w for _ in range(repetitions) for w in (1, 2)]]:
        use_workers(cluster, workers)
        lose_the_store(cluster)
        runs[str(workers)].append(ingest_run(cluster))
        log(f"{workers} worker(s): {runs[str(workers)][-1]} (load {load_average_text()})")
    return runs


def ratios(runs: dict[str, list[dict[str, float]]]) -> dict[str, float]:
    """Each 1-worker run's throughput over the mean of the 2-worker runs around it."""
    two, one = [r["per_s"] for r in runs["2"]], [r["per_s"] for r in runs["1"]]
    values = [one[i] / ((two[i] + two[i + 1]) / 2) for i in range(len(one))]
    s = summarize(values, digits=3)
    return {k: s[k] for k in ("n", "p50", "min", "max", "iqr") if k in s}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="newsrag-celery-bench-") as tmp:
        home = Path(tmp)
        home.chmod(0o755)  # as root, PostgreSQL runs as the postgres user, which must reach its folder
        cluster, before = Cluster(home, args.sources), load_average_text()
        try:
            cluster.script("up")
            cluster.connect()
            runs = measure(cluster, args.repetitions)
        finally:
            if cluster.api is not None:
                cluster.api.close()
            cluster.script("down")
    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "sources": args.sources,
           "cpus": os.cpu_count(), "load_before": before, "load_after": load_average_text(), "runs": runs,
           "throughput 1 worker / 2 workers": ratios(runs)}
    print(json.dumps(res, indent=2) if args.json else render(res))
    return 0


def render(res: dict[str, Any]) -> str:
    r = res["throughput 1 worker / 2 workers"]
    lines = [f"{PROG} {res['date']}: news_ingest over {res['sources']} feeds on the loopback cluster, {res['cpus']} cpus",
             f"  load average before {res['load_before']}, after {res['load_after']}"]
    lines += [f"  {w} worker(s): " + ", ".join(f"{x['chunks']} chunks in {x['seconds']} s" for x in res["runs"][w])
              for w in ("2", "1")]
    lines.append(f"  ratio throughput 1 worker / 2 workers  median {r['p50']:.3f}  min {r['min']:.3f}  "
                 f"max {r['max']:.3f}  iqr {r['iqr']:.3f}  n {r['n']}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
