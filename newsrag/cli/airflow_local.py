"""A local Airflow 3 with the project's DAGs, without Docker (``scripts/airflow`` / ``newsrag airflow``).

The LocalExecutor on a private PostgreSQL cluster (so that backfills work), the api-server,
scheduler, dag-processor and triggerer as background processes on loopback, the embedded Weaviate
(unless ``WEAVIATE_URL`` is set), and the pools, connections and variables of
``airflow_settings.yaml``. Everything lives in ``$NEWSRAG_HOME/airflow`` (``AIRFLOW_HOME``), beside
the Weaviate data the ``newsrag`` CLI uses; component logs go to ``$NEWSRAG_HOME/logs/airflow-*.log``.

This module never imports Airflow: it runs the virtualenv's ``airflow`` command and reads files.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.cli import airflow_settings, processes
from newsrag.cli.airflow_settings import (
    AirflowObjects,
    template_values,
    weaviate_values,
    write_import_files,
)
from newsrag.cli.dag_files import PARSE_SCRIPT, dag_files, looks_like_dag_file, placeholder_weaviate
from newsrag.cli.local_postgres import LocalPostgres
from newsrag.core.errors import ServerError, SetupError
from newsrag.core.settings import LocalWeaviateSettings, PathSettings, load
from newsrag.store.server import LocalWeaviate, pick_port

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
ADMIN = "admin"
COMPONENTS: dict[str, list[str]] = {
    "api-server": ["api-server", "--host", HOST, "--port", "{api_port}"],
    # Tasks write their logs into AIRFLOW_HOME/logs, which the api-server reads directly: no log
    # server (it would listen on every interface).
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
# Defaults for a laptop; an AIRFLOW__* variable set in the environment wins.
DEFAULTS = {
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    "AIRFLOW__CORE__PARALLELISM": "4",
    "AIRFLOW__API__WORKERS": "1",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",  # a new DAG file shows up within 30 s
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
Say = Callable[[str], None]


class LocalAirflowSettings(BaseSettings):
    """``NEWSRAG_AIRFLOW_PORT``: the UI/API port (taken: any free one; 0: any free one)."""

    model_config = SettingsConfigDict(env_prefix="NEWSRAG_AIRFLOW_", extra="ignore")

    port: int = Field(8080, ge=0, le=65535)


@dataclass(frozen=True)
class Process:
    name: str
    pid: int | None
    port: int | None
    alive: bool
    note: str = ""


class LocalAirflow:
    """One local Airflow, identified by its ``NEWSRAG_HOME``."""

    def __init__(self, home: Path | None = None, venv_bin: Path | None = None,
                 environ: dict[str, str] | None = None) -> None:
        # ``environ``: the environment the components start from (default this process's); the
        # cluster (newsrag.cli.cluster_airflow) hands in the Weaviate cluster's variables this way.
        self.environ = dict(os.environ if environ is None else environ)
        self.home = (home or load(PathSettings).home).absolute()
        self.airflow_home = self.home / "airflow"
        self.state_file = self.airflow_home / "local-airflow.json"
        self.secrets_file = self.airflow_home / "local-secrets.json"
        self.passwords_file = self.airflow_home / "simple_auth_manager_passwords.json"
        self.settings_file = REPO / "airflow_settings.yaml"
        self.postgres = LocalPostgres(self.airflow_home / "postgres")
        self.airflow = (venv_bin or Path(sys.executable).parent) / "airflow"
        # The CLI is an edge: the server's child processes (go install, weaviate-server) get its environment.
        self.weaviate = LocalWeaviate(load(PathSettings, home=self.home), load(LocalWeaviateSettings), self.environ)

    # -- what a subclass changes (the cluster: CeleryExecutor, workers, Redis) ----------------------
    def components(self) -> dict[str, list[str]]:
        """Each component's ``airflow`` arguments (``{api_port}`` is filled in)."""
        return COMPONENTS

    def component_env(self, name: str, env: dict[str, str]) -> dict[str, str]:
        """The environment of one component (a worker gets a home of its own)."""
        return env

    def executor_env(self, state: dict[str, Any]) -> dict[str, str]:
        return {"AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}

    def component_port(self, name: str, state: dict[str, Any]) -> int | None:
        """The port a component listens on (the api-server's; the others listen on none)."""
        return state.get("api_port") if name == "api-server" else None

    def command(self, name: str, args: list[str], state: dict[str, Any]) -> list[str]:
        """The command line of one component: ``airflow ARGS`` with the ports filled in."""
        return [str(self.airflow), *(a.format(**state) for a in args)]

    # -- files -------------------------------------------------------------------------------------
    def log_file(self, component: str) -> Path:
        if component == "postgres":
            return self.postgres.log
        if component == "weaviate":
            return self.weaviate.log_file
        if component not in self.components():
            raise SetupError(f"no component {component!r}: one of "
                             f"{', '.join([*self.components(), 'postgres', 'weaviate'])}")
        return self.home / "logs" / f"airflow-{component}.log"

    def state(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        return state if state.get("boot_id") == processes.boot_id() else None

    def admin_password(self) -> str:
        return str(json.loads(self.passwords_file.read_text())[ADMIN])

    def _private_json(self, path: Path, make: Callable[[], dict[str, str]]) -> dict[str, str]:
        """A JSON file only the owner reads, created once (secrets must stay stable across restarts:
        the database holds values encrypted with the Fernet key)."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(make(), f)
        return dict(json.loads(path.read_text()))

    def _secrets(self) -> dict[str, str]:
        self._private_json(self.passwords_file, lambda: {ADMIN: secrets.token_urlsafe(12)})
        return self._private_json(self.secrets_file, lambda: {
            "fernet_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "jwt_secret": secrets.token_urlsafe(32), "api_secret_key": secrets.token_urlsafe(32),
            "postgres_password": secrets.token_urlsafe(24)})

    # -- environment -------------------------------------------------------------------------------
    def base_env(self, environment: dict[str, str]) -> dict[str, str]:
        """What every Airflow process here sees (no database, ports or secrets)."""
        env = {**DEFAULTS, **self.environ, **environment}
        env.update({
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "NEWSRAG_HOME": str(self.home),
            "PATH": f"{self.airflow.parent}{os.pathsep}{self.environ.get('PATH', '')}",
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), self.environ.get("PYTHONPATH")) if p),
        })
        return env

    def env(self, state: dict[str, Any]) -> dict[str, str]:
        """The environment of the components and of ``run``."""
        keys, port = self._secrets(), state["api_port"]
        env = self.base_env(state["environment"])
        env.update(self.executor_env(state))
        env.update({
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url(keys["postgres_password"], state["postgres_port"]),
            # Airflow would derive asyncpg, which is not installed; psycopg 3 serves asyncio too
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": self.postgres.url(
                keys["postgres_password"], state["postgres_port"], "psycopg_async"),
            "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
            # one secret for every component: the scheduler signs task tokens the api-server checks
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
            "AIRFLOW__API__SECRET_KEY": keys["api_secret_key"],
            "AIRFLOW__API__HOST": HOST,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://{HOST}:{port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{HOST}:{port}/execution/",
            "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
        })
        return env

    def cli(self, state: dict[str, Any], *args: str, timeout: float = 600) -> str:
        """Run ``airflow ARGS`` against this instance; a failure raises with the command's output."""
        result = subprocess.run([str(self.airflow), *args], env=self.env(state), cwd=REPO, capture_output=True,
                                text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise ServerError(f"`airflow {' '.join(args[:3])}` failed (exit {result.returncode}):\n"
                              f"{(result.stderr or result.stdout).strip()[-3000:]}")
        return result.stdout

    # -- objects from airflow_settings.yaml ---------------------------------------------------------
    def objects(self) -> AirflowObjects:
        """The file's objects, the Weaviate values taken from WEAVIATE_URL or the embedded server."""
        values = template_values(self.environ)
        if not self.environ.get("WEAVIATE_URL"):
            running = self.weaviate.read_state()
            if running is None:
                raise ServerError("the embedded Weaviate does not run: `scripts/airflow up` starts it")
            values.update(weaviate_values(running.http_url, f"http://{running.host}:{running.grpc_port}"))
        return airflow_settings.load(self.settings_file, values)

    def apply(self, state: dict[str, Any], objects: AirflowObjects) -> None:
        """Create or overwrite the pools, connections and variables (the file wins)."""
        work = self.airflow_home / "import"
        write_import_files(objects, work)
        try:
            for pool in objects.pools:
                self.cli(state, "pools", "set", pool.name, str(pool.slots), pool.description)
            if objects.connections:
                self.cli(state, "connections", "import", "--overwrite", str(work / "connections.json"))
            if objects.variables:
                self.cli(state, "variables", "import", "--action-on-existing-key", "overwrite",
                         str(work / "variables.json"))
        finally:
            for f in work.glob("*"):
                f.unlink()

    # -- lifecycle -------------------------------------------------------------------------------------
    def processes(self) -> list[Process]:
        state = self.state() or {}
        pids: dict[str, int] = state.get("components", {})
        rows = [Process(n, pids.get(n), self.component_port(n, state), processes.alive(pids.get(n)))
                for n in self.components()]
        pg = self.postgres.pid()
        rows.append(Process("postgres", pg, state.get("postgres_port") if pg else None, pg is not None))
        if not self.environ.get("WEAVIATE_URL"):
            w = self.weaviate.read_state()
            note = "started by scripts/airflow" if state.get("weaviate_started") else "shared: left running by down"
            rows.append(Process("weaviate", w.pid if w else None, w.http_port if w else None,
                                w is not None and processes.alive(w.pid), note if w else ""))
        return rows

    def running(self) -> bool:
        return bool(self.state()) and all(p.alive for p in self.processes())

    def up(self, say: Say) -> dict[str, Any]:
        """Start everything (or report the running instance); returns the state."""
        if self.running():
            say("already running")
            return self.state() or {}
        if self.state_file.exists() or self.postgres.pid():
            say("a previous run is partly up: stopping it first")
            self.down(say)
        try:
            return self._start(say)
        except BaseException:
            say("start failed: stopping what was started")
            self.down(say)
            raise

    def _start(self, say: Say) -> dict[str, Any]:
        if not self.airflow.exists():
            raise SetupError(f"Airflow is not installed in this virtualenv ({self.airflow}): run scripts/setup")
        state: dict[str, Any] = {"boot_id": processes.boot_id(), "components": {}, "weaviate_started": False}
        if not self.environ.get("WEAVIATE_URL"):
            state["weaviate_started"] = self.weaviate.status() is None  # a running one is shared, not ours
            self.weaviate.install()
            w = self.weaviate.start()
            say(f"weaviate: {w.http_url} (grpc {w.grpc_port})")
        self._save(state)  # from here on, `down` knows what to stop
        objects = self.objects()
        variables = objects.variable_settings()
        state["environment"] = {**objects.environment, **({"NEWSRAG_AIRFLOW_VARIABLES": variables} if variables else {})}
        self._start_database(state, say)
        say(f"objects from {self.settings_file.name}")
        self.apply(state, objects)
        self._spawn_components(state, say)
        self.wait_ready(state, say)
        self._save(state)
        return state

    def _start_database(self, state: dict[str, Any], say: Say) -> None:
        state["api_port"] = pick_port(HOST, load(LocalAirflowSettings).port)
        state["postgres_port"] = pick_port(HOST, 0, avoid={state["api_port"]})
        say(f"postgres: 127.0.0.1:{state['postgres_port']} ({self.postgres.root})")
        self.postgres.start(self._secrets()["postgres_password"], state["postgres_port"])
        self._save(state)
        say("airflow db migrate")
        self.cli(state, "db", "migrate", timeout=900)

    def _spawn_components(self, state: dict[str, Any], say: Say) -> None:
        state["started_at"] = datetime.now(UTC).isoformat()
        for name in self.components():
            say(f"{name}: pid {self.start_component(name, state)}")
        self._save(state)

    def start_component(self, name: str, state: dict[str, Any]) -> int:
        """Start one component in a session of its own (its log appended); returns its pid."""
        command = self.command(name, self.components()[name], state)
        pid = processes.spawn(command, self.component_env(name, self.env(state)), REPO, self.log_file(name))
        state["components"][name] = pid
        return pid

    def restart_component(self, name: str) -> int:
        """Stop one component (its whole session) and start it again, as a supervisor would; the
        other components go on. Returns the new pid."""
        state = self.state()
        if not state or name not in self.components():
            raise SetupError(f"no running component {name!r}: one of {', '.join(self.components())}")
        processes.stop_session(state["components"][name])
        pid = self.start_component(name, state)
        self._save(state)
        return pid

    def _save(self, state: dict[str, Any]) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(state, indent=2))

    def down(self, say: Say) -> None:
        """Stop every component, the cluster, and the Weaviate that ``up`` started."""
        state = self.state() or {}
        components: dict[str, int] = state.get("components", {})
        stopped = processes.stop_sessions(list(components.values()))
        for name, pid in components.items():
            if pid in stopped:
                say(f"{name}: stopped")
        if self.postgres.stop():
            say("postgres: stopped")
        if state.get("weaviate_started") and self.weaviate.stop():
            say("weaviate: stopped")
        self.state_file.unlink(missing_ok=True)

    # -- readiness -------------------------------------------------------------------------------------
    def client(self, state: dict[str, Any], timeout: float = 180) -> httpx.Client:
        """A REST client with a token, once the api-server answers."""
        base = f"http://{HOST}:{state['api_port']}"
        deadline = time.monotonic() + timeout
        while True:
            self._check_components(state)
            try:
                resp = httpx.post(f"{base}/auth/token", json={"username": ADMIN, "password": self.admin_password()},
                                  timeout=10)
                if resp.status_code in (200, 201):
                    token = resp.json()["access_token"]
                    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"the api-server did not answer within {timeout:.0f}s:\n{self.tail('api-server')}")
            time.sleep(1)

    def wait_ready(self, state: dict[str, Any], say: Say, timeout: float = 300) -> None:
        """Until every DAG file is parsed (as DAGs or as import errors) by this start's dag-processor:
        a database kept from an earlier run already lists the DAGs as they were then."""
        expected = {p.name for p in (REPO / "dags").glob("*.py") if looks_like_dag_file(p)}
        since = datetime.fromisoformat(state["started_at"])
        with self.client(state) as api:
            deadline = time.monotonic() + timeout
            while True:
                dags, errors = dag_files(api, since)
                if expected <= set(dags) | set(errors):
                    break
                self._check_components(state)
                if time.monotonic() > deadline:
                    raise ServerError(f"DAG files not parsed within {timeout:.0f}s: {sorted(expected - set(dags))}\n"
                                      f"{self.tail('dag-processor')}")
                time.sleep(2)
        state["dags"] = sorted(d for ids in dags.values() for d in ids)
        state["import_errors"] = errors
        say(f"DAGs parsed: {', '.join(state['dags'])}")

    def _check_components(self, state: dict[str, Any]) -> None:
        for name, pid in state["components"].items():
            if not processes.alive(pid):
                raise ServerError(f"airflow {name} exited during startup; last lines of {self.log_file(name)}:\n"
                                  f"{self.tail(name)}")

    def tail(self, component: str, lines: int = 30) -> str:
        try:
            text = self.log_file(component).read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.rstrip().splitlines()[-lines:])

    # -- checks --------------------------------------------------------------------------------------
    def parse(self, dags_dir: Path = REPO / "dags") -> dict[str, Any]:
        """Import every DAG file as the dag-processor does (``astro dev parse``); no server needed."""
        environment = (self.state() or {}).get("environment") or airflow_settings.load(
            self.settings_file, {**template_values(self.environ), **placeholder_weaviate()}).environment
        result = subprocess.run([str(self.airflow.parent / "python"), "-c", PARSE_SCRIPT, str(dags_dir)],
                                env=self.base_env(environment), cwd=REPO, capture_output=True, text=True,
                                timeout=300, check=False)
        lines = [line for line in result.stdout.splitlines() if line.startswith('{"dags"')]  # logs share stdout
        try:
            return dict(json.loads(lines[-1]))
        except (ValueError, IndexError):
            raise ServerError(f"the parse check did not run (exit {result.returncode}):\n{result.stderr[-3000:]}") from None
