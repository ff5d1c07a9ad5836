"""The Airflow of ``scripts/cluster up``: the local Airflow (:mod:`newsrag.cli.airflow_local`) in its
production shape. The CeleryExecutor with a private Redis as the broker (:mod:`newsrag.cli.celery_local`),
two ``airflow celery worker`` processes that each have their own ``NEWSRAG_HOME`` and ``TMPDIR``
(as two hosts would), the metadata database and a ``newsrag`` database (every newsrag store,
through ``NEWSRAG_DATABASE_URL``) on the one private PostgreSQL, and the Weaviate cluster's
variables (URL, API key, replication factor, QUORUM) for the ``weaviate_default`` Connection of
``airflow_settings.yaml`` and every component.

Everything lives in ``<cluster folder>/airflow`` and ``<cluster folder>/logs``; the workers' homes
in ``<cluster folder>/workers/<name>``.

The app runs beside them as one more component: uvicorn with two worker processes
(``NEWSRAG_APP_PORT``, default 8000 or any free port), on the same Weaviate nodes and the same
``newsrag`` database (feedback, answer log, prompt registry), so a promotion by ``prompt_release``
reaches it within its prompt TTL. It gets no Airflow setting or secret."""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from newsrag.cli import processes
from newsrag.cli.airflow_local import COMPONENTS, HOST, LocalAirflow, Process, Say
from newsrag.cli.celery_local import LocalRedis, celery_env
from newsrag.core.errors import ServerError, SetupError
from newsrag.core.settings import ServeSettings, load
from newsrag.store.server import pick_port

WORKERS = ("worker-1", "worker-2")
APP = "app"
APP_WORKERS = 2
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
        app = ["newsrag.app.main:create_app", "--factory", "--workers", str(APP_WORKERS), "--host", HOST,
               "--port", "{app_port}"]
        return {**COMPONENTS, **workers, APP: app}

    def command(self, name: str, args: list[str], state: dict[str, Any]) -> list[str]:
        """The component's command under a restart policy (:mod:`newsrag.cli.supervise`), as compose
        and Kubernetes run it: the scheduler exits when PostgreSQL restarts, and comes back."""
        if name == APP:
            command = [str(self.airflow.parent / "uvicorn"), *(a.format(**state) for a in args)]
        else:
            command = super().command(name, args, state)
        return [str(self.airflow.parent / "python"), "-m", "newsrag.cli.supervise", "--", *command]

    def component_port(self, name: str, state: dict[str, Any]) -> int | None:
        return state.get("app_port") if name == APP else super().component_port(name, state)

    def component_env(self, name: str, env: dict[str, str]) -> dict[str, str]:
        if name == APP:  # the app is no Airflow component: none of Airflow's settings or secrets
            app = {k: v for k, v in env.items() if not k.startswith("AIRFLOW")}
            return {**app, "NEWSRAG_HOME": str(self.home / APP)}
        if name not in WORKERS:
            return env
        home = self.worker_home(name)
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        return {**env, "NEWSRAG_HOME": str(home), "TMPDIR": str(home / "tmp")}

    def log_file(self, component: str) -> Path:
        return self.home / "logs" / "app.log" if component == APP else super().log_file(component)

    def app_url(self, state: dict[str, Any]) -> str:
        return f"http://{HOST}:{state['app_port']}"

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
        state["app_port"] = pick_port(HOST, load(ServeSettings, self.environ).port, avoid={state["redis_port"]})
        state["redis_pid"] = self.redis.start(self._redis_password(), state["redis_port"])
        say(f"redis: 127.0.0.1:{state['redis_port']} (pid {state['redis_pid']})")
        self._save(state)
        super()._start_database(state, say)
        if self.postgres.ensure_database(NEWSRAG_DATABASE, self._secrets()["postgres_password"],
                                         state["postgres_port"]):
            say(f"postgres: database {NEWSRAG_DATABASE} created (NEWSRAG_DATABASE_URL)")

    def wait_ready(self, state: dict[str, Any], say: Say, timeout: float = 300) -> None:
        """The DAGs parsed (the base class), then the app answering ``/readyz`` (its store is reachable)."""
        super().wait_ready(state, say, timeout)
        deadline = time.monotonic() + timeout
        while not _ready(self.app_url(state)):
            self._check_components(state)
            if time.monotonic() > deadline:
                raise ServerError(f"the app did not become ready within {timeout:.0f}s:\n{self.tail(APP)}")
            time.sleep(1)
        say(f"app: {self.app_url(state)} ({APP_WORKERS} uvicorn workers)")

    def restart(self, name: str) -> int | None:
        """Restart one part as its supervisor would after a crash, the others running on: a
        component (a worker, the app, the scheduler...), ``redis`` or ``postgres`` (on the same port
        and password; their clients reconnect). Returns the new pid."""
        state = self.state()
        if not state:
            raise SetupError("the cluster's Airflow does not run: `scripts/cluster up` starts it")
        if name == "redis":
            processes.stop_session(state["redis_pid"])
            state["redis_pid"] = self.redis.start(self._redis_password(), state["redis_port"])
            self._save(state)
            return int(state["redis_pid"])
        if name == "postgres":
            self.postgres.stop()
            self.postgres.start(self._secrets()["postgres_password"], state["postgres_port"])
            return self.postgres.pid()
        return self.restart_component(name)

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


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False
