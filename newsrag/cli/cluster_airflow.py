"""The Airflow of ``scripts/cluster up``: the local Airflow (:mod:`newsrag.cli.airflow_local`) in its
production shape. The CeleryExecutor with a private Redis as the broker (:mod:`newsrag.cli.celery_local`),
two ``airflow celery worker`` processes that each have their own ``NEWSRAG_HOME`` and ``TMPDIR``
(as two hosts would), the metadata database and a ``newsrag`` database (every newsrag store,
through ``NEWSRAG_DATABASE_URL``) on the one private PostgreSQL, and the Weaviate cluster's
variables (URL, API key, replication factor, QUORUM) for the ``weaviate_default`` Connection of
``airflow_settings.yaml`` and every component.

Everything lives in ``<cluster folder>/airflow`` and ``<cluster folder>/logs``; the workers' homes
in ``<cluster folder>/workers/<name>``."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Any

from newsrag.cli import processes
from newsrag.cli.airflow_local import COMPONENTS, HOST, LocalAirflow, Process, Say
from newsrag.cli.celery_local import LocalRedis, celery_env
from newsrag.store.server import pick_port

WORKERS = ("worker-1", "worker-2")
NEWSRAG_DATABASE = "newsrag"


class ClusterAirflow(LocalAirflow):
    """The cluster's Airflow in ``folder``, its components started from ``environ`` (which holds the
    Weaviate cluster's client variables)."""

    def __init__(self, folder: Path, environ: dict[str, str], venv_bin: Path | None = None) -> None:
        super().__init__(home=folder, venv_bin=venv_bin or Path(sys.executable).parent, environ=environ)
        self.redis = LocalRedis(self.airflow_home / "redis")

    def worker_home(self, name: str) -> Path:
        return self.home / "workers" / name

    def components(self) -> dict[str, list[str]]:
        workers = {name: ["celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency", "2",
                          "--skip-serve-logs"] for name in WORKERS}
        return {**COMPONENTS, **workers}

    def component_env(self, name: str, env: dict[str, str]) -> dict[str, str]:
        if name not in WORKERS:
            return env
        home = self.worker_home(name)
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        return {**env, "NEWSRAG_HOME": str(home), "TMPDIR": str(home / "tmp")}

    def executor_env(self, state: dict[str, Any]) -> dict[str, str]:
        keys = self._secrets()
        password, port = keys["postgres_password"], state["postgres_port"]
        backend = "db+" + self.postgres.url(password, port)
        shared_state = self.postgres.url(password, port, driver="psycopg", database=NEWSRAG_DATABASE)
        return {**celery_env(self.redis.url(self._redis_password(), state["redis_port"]), backend),
                "NEWSRAG_DATABASE_URL": shared_state.replace("postgresql+psycopg://", "postgresql://", 1)}

    def _redis_password(self) -> str:
        return self._private_json(self.airflow_home / "redis-secret.json",
                                  lambda: {"password": secrets.token_urlsafe(24)})["password"]

    def _start_database(self, state: dict[str, Any], say: Say) -> None:
        """Redis first (every component's environment names it), then PostgreSQL with both databases."""
        state["redis_port"] = pick_port(HOST, 0)
        state["redis_pid"] = self.redis.start(self._redis_password(), state["redis_port"])
        say(f"redis: 127.0.0.1:{state['redis_port']} (pid {state['redis_pid']})")
        self._save(state)
        super()._start_database(state, say)
        if self.postgres.ensure_database(NEWSRAG_DATABASE, self._secrets()["postgres_password"],
                                         state["postgres_port"]):
            say(f"postgres: database {NEWSRAG_DATABASE} created (NEWSRAG_DATABASE_URL)")

    def processes(self) -> list[Process]:
        state = self.state() or {}
        pid = state.get("redis_pid")
        rows = [row for row in super().processes() if row.name != "weaviate"]  # the cluster's nodes are listed apart
        return [*rows, Process("redis", pid, state.get("redis_port"), processes.alive(pid))]

    def down(self, say: Say) -> None:
        """Every Airflow component and PostgreSQL (the base class), then Redis."""
        pid = (self.state() or {}).get("redis_pid")
        super().down(say)
        if pid and processes.stop_session(pid):
            say("redis: stopped")
