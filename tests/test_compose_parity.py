"""docker-compose.yml against the shape `scripts/cluster up` starts and tests/e2e/test_cluster_up.py
proves. Nothing expected is written here twice: it comes from the code that starts the loopback
cluster (newsrag.store.cluster: node_env and client_environ for the Weaviate nodes and their
clients; ClusterAirflow: env, component_env, components and command for Airflow, its Celery workers
and the app; airflow_settings.load for the pool, the Connection and the Variables), called with
compose's ports and hostnames instead of loopback ones. Compose is read as a container sees it: the
image's ENV (Dockerfile), then the service's environment with `.env` a copy of .env.example, or
with no .env at all (the defaults in the file).

Every setting the cluster gives is equal in compose, or listed below with the reason it differs.
Every compose setting the cluster does not give is an operator's knob passed through from .env
(`KEY: ${KEY...}`) or listed with its reason. So a setting added or changed on either side fails
here until the other side follows or the difference is explained; each test also shows, on a
changed copy, that its comparison catches the drift. No server is started."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from newsrag.cli import airflow_settings
from newsrag.cli.airflow_local import DEFAULTS
from newsrag.cli.airflow_settings import AirflowObjects
from newsrag.cli.cluster_airflow import APP, WORKERS, ClusterAirflow
from newsrag.core.settings import WEAVIATE_VERSION, Settings
from newsrag.store.cluster import REPAIR_ENV, ClusterState, WeaviateCluster, node_env, plan_nodes
from tests.test_compose import (
    DOCKERFILE,
    ENV_EXAMPLE,
    WEAVIATE_NODES,
    environment,
    load_compose,
    read_env_file,
)

pytestmark = pytest.mark.unit

Compose = dict[str, Any]
# Weaviate's default ports: on loopback each node gets free ones, in compose each has its own address.
NODE_PORTS: dict[str, Any] = {"http_port": 8080, "grpc_port": 50051, "gossip_port": 7946, "data_port": 7947,
                              "raft_port": 8300}
NODE_DATA = Path("/var/lib/weaviate")
# The ports the cluster's state holds, set to those of the compose services that serve them.
STATE_PORTS = {"api_port": 8080, "postgres_port": 5432, "redis_port": 6379, "app_port": 8000}
LOOPBACK_SERVICE = {8080: "airflow-apiserver", 5432: "postgres", 6379: "redis"}
COMPONENT_OF = {"airflow-init": None, "airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer",
                "airflow-worker": WORKERS[0], "app": APP}  # compose service -> the cluster's component
KEY = "{WEAVIATE_API_KEY}"  # what ${WEAVIATE_API_KEY:?...} stands as here (see resolve): both sides get it
REF = re.compile(r"\$\{(?P<var>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
TOKEN = re.compile(r"^\{[A-Z0-9_]+\}$")  # a required ${VAR:?...}: a secret or what only .env knows
SCENARIOS = {"env-example": read_env_file(ENV_EXAMPLE), "no-env": {}}

# -- how a setting of the cluster compares with compose's (None: compose does not set it) --------
Rule = Callable[[str, "str | None"], bool]


def _norm(value: str) -> str:
    return value.lower() if value.lower() in ("true", "false") else value  # Airflow reads False == false


def _url_shape(url: str) -> tuple[Any, ...]:
    """Scheme (driver), host, port, database or db index, and whether a password is in it; the
    cluster's 127.0.0.1:port stands for the compose service that serves that port."""
    scheme, _, rest = url.partition("://")  # urlsplit takes no "_" in a scheme (psycopg_async)
    parts = urlsplit(f"x://{rest}")
    host = LOOPBACK_SERVICE.get(parts.port or 0, parts.hostname) if parts.hostname == "127.0.0.1" else parts.hostname
    return scheme, host, parts.port, parts.path, bool(parts.password)


def same(cluster: str, compose: str | None) -> bool:
    return compose is not None and _norm(compose) == _norm(cluster)


def url(cluster: str, compose: str | None) -> bool:
    return compose is not None and _url_shape(compose) == _url_shape(cluster)


def secret(cluster: str, compose: str | None) -> bool:
    return compose is not None and bool(TOKEN.match(compose))  # only ever a ${VAR:?...} of .env


def present(cluster: str, compose: str | None) -> bool:
    return compose is not None


def absent(cluster: str, compose: str | None) -> bool:
    return compose is None


SOURCES = ("the image ships sources.example.yaml; the loopback cluster defaults to the offline registry "
           "(airflow_settings.yaml, newsrag.environment)")
LAPTOP = "a laptop default of the local Airflow (airflow_local.DEFAULTS); compose keeps Airflow's"
# Every setting of the cluster's Airflow components and app: the rule and, where not `same`, why.
AIRFLOW_RULES: dict[str, tuple[Rule, str]] = {
    "AIRFLOW__CORE__EXECUTOR": (same, ""),
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": (same, ""),
    "AIRFLOW__CELERY__BROKER_URL": (url, "Redis: same URL shape, host and password per deployment"),
    "AIRFLOW__CELERY__RESULT_BACKEND": (url, "the airflow database: same shape, per-database role in compose"),
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (url, "the airflow database"),
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": (url, "the airflow database, psycopg's async driver"),
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": (url, "the api-server's /execution/"),
    "NEWSRAG_DATABASE_URL": (url, "every newsrag store in the newsrag database"),
    "NEWSRAG_AIRFLOW_VARIABLES": (same, ""),
    "WEAVIATE_URL": (same, ""), "WEAVIATE_GRPC_URL": (same, ""), "WEAVIATE_API_KEY": (same, ""),
    "WEAVIATE_REPLICATION_FACTOR": (same, ""), "WEAVIATE_CONSISTENCY_LEVEL": (same, ""),
    "AIRFLOW__CORE__LOAD_EXAMPLES": (same, ""), "HF_HUB_OFFLINE": (same, ""), "TOKENIZERS_PARALLELISM": (same, ""),
    "AIRFLOW__CORE__FERNET_KEY": (secret, "a secret of .env"),
    "AIRFLOW__API_AUTH__JWT_SECRET": (secret, "a secret of .env"),
    "AIRFLOW__API__SECRET_KEY": (secret, "a secret of .env"),
    "AIRFLOW_HOME": (present, "the image's path"), "AIRFLOW__CORE__DAGS_FOLDER": (present, "the image's path"),
    "PATH": (present, "the image's"),
    "NEWSRAG_HOME": (present, "the image's path, in each container its own (test_every_worker_and_the_app_keep_their_own_home)"),
    "NEWSRAG_INGEST_SOURCES_FILE": (present, SOURCES),
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": (present, "production: a new DAG waits for an operator (.env)"),
    "AIRFLOW__CORE__AUTH_MANAGER": (present, "FAB users in production, the simple auth manager on loopback"),
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": (absent, "the simple auth manager's; compose has FAB"),
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": (absent, "the simple auth manager's; compose has FAB"),
    "AIRFLOW__API__HOST": (absent, "loopback binding; in its container the api-server listens on every interface"),
    "AIRFLOW__API__PORT": (absent, "compose passes --port (test_commands_are_the_clusters)"),
    "AIRFLOW__API__BASE_URL": (absent, "a loopback address; compose publishes the api-server on AIRFLOW_PORT"),
    "AIRFLOW__API__WORKERS": (absent, LAPTOP),
    "AIRFLOW__CORE__PARALLELISM": (absent, LAPTOP + " (32), so --scale airflow-worker=N is not capped"),
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": (absent, LAPTOP + "; the image bakes its DAGs in"),
    "PYTHONPATH": (absent, "the image installs the package; the cluster runs from the checkout"),
    "TMPDIR": (absent, "every container has its own /tmp"),
}
APP_RULES = {**AIRFLOW_RULES,
             "NEWSRAG_AIRFLOW_VARIABLES": (absent, "the app reads no Airflow Variable (the cluster's inherits it)"),
             "NEWSRAG_INGEST_SOURCES_FILE": (absent, "the app ingests nothing (the cluster's inherits it)")}
# Compose settings the cluster does not give, beyond the knobs passed through from .env.
COMPOSE_ONLY = {
    "NEWSRAG_ENV": "production: placeholder secrets refused, API keys required; the loopback cluster develops",
    "NEWSRAG_REQUIRED_CONNECTIONS": "tasks fail without retry when airflow-init did not create weaviate_default",
    "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "the scheduler's compose healthcheck",
    "PYTHONUNBUFFERED": "the image's", "PYTHONDONTWRITEBYTECODE": "the image's", "TRANSFORMERS_OFFLINE": "the image's",
    "AIRFLOW_HOME": "the image's, for its Airflow services; the app ignores it",
    "AIRFLOW__CORE__DAGS_FOLDER": "the image's, for its Airflow services; the app ignores it",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "the image's, for its Airflow services; the app ignores it",
}
NODE_LOOPBACK = {"CLUSTER_IN_LOCALHOST", "CLUSTER_BIND_ADDR", "CLUSTER_ADVERTISE_ADDR"}  # each container: its own address
NODE_COMPOSE_ONLY = {"ASYNC_INDEXING": "the bulk-load switch of .env (docs/scaling.md), off by default as on the cluster"}
# The command-line flags of the cluster that compose leaves out, and why.
DROPPED_FLAGS = {"--host": "loopback binding; in a container the default (every interface) or 0.0.0.0",
                 "--celery-hostname": "compose's workers are celery@<container hostname>, which their healthcheck pings",
                 "--concurrency": "compose sets AIRFLOW__CELERY__WORKER_CONCURRENCY (compared), which .env can change"}


# -- the two sides -------------------------------------------------------------------------------
@dataclass
class Proven:
    """What the loopback cluster's code gives, at compose's ports and hostnames."""

    nodes: dict[str, dict[str, str]]  # compose node service -> node_env
    env: dict[str, dict[str, str]]  # compose service -> its component's environment
    commands: dict[str, list[str]]  # compose service -> its component's command line
    objects: AirflowObjects  # what `up` created from airflow_settings.yaml
    settings_file: Path
    homes: list[str]  # NEWSRAG_HOME of every worker and the app


def cluster_size() -> int:
    return WeaviateCluster.size  # the nodes `scripts/cluster up` starts by default


def derive(folder: Path) -> Proven:
    # the cluster's nodes (their names), each on Weaviate's default ports instead of free loopback ones
    nodes = tuple(replace(n, **NODE_PORTS) for n in plan_nodes("127.0.0.1", cluster_size()))
    state = ClusterState(WEAVIATE_NODES[0], WEAVIATE_VERSION, nodes)  # host: how clients reach the first node
    weaviate = WeaviateCluster.from_settings(Settings({"WEAVIATE_API_KEY": KEY}), folder / "weaviate", len(nodes))
    airflow = ClusterAirflow(folder, weaviate.client_environ(state))
    objects = airflow_settings.load(airflow.settings_file, airflow_settings.template_values(airflow.environ))
    variables = objects.variable_settings()  # as LocalAirflow._start builds state["environment"]
    base = airflow.env({**STATE_PORTS, "environment": {**objects.environment, "NEWSRAG_AIRFLOW_VARIABLES": variables}})
    components = airflow.components()
    env = {service: airflow.component_env(name, base) if name else base for service, name in COMPONENT_OF.items()}
    commands = {service: airflow.command(name, components[name], STATE_PORTS)
                for service, name in COMPONENT_OF.items() if name}
    homes = [airflow.component_env(name, base)["NEWSRAG_HOME"] for name in (*WORKERS, APP)]
    return Proven(dict(zip(WEAVIATE_NODES, (node_env(n, state, NODE_DATA, KEY) for n in nodes), strict=True)),
                  env, commands, objects, airflow.settings_file, homes)


@pytest.fixture(scope="module")
def proven(tmp_path_factory: pytest.TempPathFactory) -> Proven:
    return derive(tmp_path_factory.mktemp("cluster"))


def resolve(value: str, dotenv: Mapping[str, str]) -> str:
    """A compose value as its container sees it: a knob ${VAR:-default} is .env's value or the
    default; a required ${VAR:?...} stands as {VAR}."""
    def one(m: re.Match[str]) -> str:
        if m.group("op") in (":-", "-"):
            return dotenv.get(m.group("var")) or m.group("arg")
        return "{" + m.group("var") + "}"
    return REF.sub(one, value)


def image_env() -> dict[str, str]:
    """The ENV of the Dockerfile's last stage: what every newsrag container starts with."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text[text.rindex("\nFROM "):].splitlines():
        if line.startswith("ENV "):
            env.update({k: v for k, _, v in (pair.partition("=") for pair in line[4:].split())})
    return env


def raw_env(compose: Compose, service: str) -> dict[str, str]:
    spec = compose["services"][service]
    return {**(image_env() if "build" in spec else {}), **environment(spec)}


def container_env(compose: Compose, service: str, dotenv: Mapping[str, str]) -> dict[str, str]:
    return {k: resolve(v, dotenv) for k, v in raw_env(compose, service).items()}


def _shown(value: str | None, rule: Rule) -> str:
    """A value for a message: never a password (the cluster's are generated, compose's are .env's)."""
    if value is None:
        return "(not set)"
    return "<secret>" if rule is secret else repr(re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", value))


# -- the comparisons: each returns what differs, naming the key and both values -------------------
def env_mismatches(compose: Compose, proven: Proven, dotenv: Mapping[str, str]) -> list[str]:
    found = []
    for service in COMPONENT_OF:
        rules = APP_RULES if service == "app" else AIRFLOW_RULES
        derived, raw = proven.env[service], raw_env(compose, service)
        theirs = container_env(compose, service, dotenv)
        for key, value in sorted(derived.items()):
            if key not in rules:
                found.append(f"{service}: the cluster sets {key}={value!r}, compose has {_shown(theirs.get(key), same)}:"
                             " set it in docker-compose.yml or give the reason it differs in AIRFLOW_RULES")
            elif not rules[key][0](value, theirs.get(key)):
                rule, why = rules[key]
                found.append(f"{service}: {key}: cluster {_shown(value, rule)}, compose "
                             f"{_shown(theirs.get(key), rule)} (rule {rule.__name__}{': ' + why if why else ''})")
        for key in sorted(set(theirs) - set(derived)):
            knob = REF.fullmatch(raw[key])
            if not (knob and knob.group("var") == key) and key not in COMPOSE_ONLY:
                found.append(f"{service}: compose sets {key}={theirs[key]!r}, the cluster does not: "
                             "give it to the cluster or the reason in COMPOSE_ONLY")
    return found


def _joined(value: str, services: list[str]) -> str:
    """The cluster's CLUSTER_JOIN (127.0.0.1:port of each other node, in order) on compose's hostnames."""
    entries = value.split(",")
    assert all(e.startswith("127.0.0.1:") for e in entries) and len(entries) == len(services), value
    return ",".join(f"{host}:{e.rsplit(':', 1)[1]}" for host, e in zip(services, entries, strict=True))


def node_mismatches(compose: Compose, proven: Proven, dotenv: Mapping[str, str]) -> list[str]:
    found = []
    for service, derived in proven.nodes.items():
        theirs = container_env(compose, service, dotenv)
        expected = {**derived, "CLUSTER_JOIN": _joined(derived["CLUSTER_JOIN"], [s for s in proven.nodes if s != service])}
        for key, value in sorted(expected.items()):
            if key in NODE_LOOPBACK or key in REPAIR_ENV:  # REPAIR_ENV: loopback timings (its comment)
                if key in theirs and not (key in REPAIR_ENV and theirs[key] == value):
                    found.append(f"{service}: {key}: cluster {value!r} (loopback only), compose {theirs[key]!r}")
            elif theirs.get(key) != value:
                found.append(f"{service}: {key}: cluster {value!r}, compose {_shown(theirs.get(key), same)}")
        found += [f"{service}: compose sets {k}={theirs[k]!r}, the cluster does not; give the reason in NODE_COMPOSE_ONLY"
                  for k in sorted(set(theirs) - set(expected) - set(NODE_COMPOSE_ONLY))]
    return found


SUPERVISED = ["-m", "newsrag.cli.supervise", "--"]  # the cluster's restart policy: compose's `restart:`


def _unsupervised(command: list[str]) -> list[str]:
    return command[1 + len(SUPERVISED):] if command[1:1 + len(SUPERVISED)] == SUPERVISED else command


def _without_dropped(command: list[str]) -> list[str]:
    command = _unsupervised(command)
    words = [Path(command[0]).name, *command[1:]]
    return [w for i, w in enumerate(words) if w not in DROPPED_FLAGS and not (i and words[i - 1] in DROPPED_FLAGS)]


def command_mismatches(compose: Compose, proven: Proven) -> list[str]:
    found = []
    for service, command in proven.commands.items():
        ours, theirs = _without_dropped(command), _without_dropped(compose["services"][service]["command"])
        if ours != theirs:
            found.append(f"{service}: command: cluster {' '.join(ours)!r}, compose {' '.join(theirs)!r}")
        restart = compose["services"][service].get("restart")
        if _unsupervised(command) != command and restart not in ("unless-stopped", "always", "on-failure"):
            found.append(f"{service}: restart: cluster restarts it when it exits (newsrag.cli.supervise), "
                         f"compose {restart!r}")
    replicas = compose["services"]["airflow-worker"].get("deploy", {}).get("replicas", 1)
    if replicas != len(WORKERS):
        found.append(f"airflow-worker: deploy.replicas: cluster {len(WORKERS)} workers ({', '.join(WORKERS)}), compose {replicas}")
    return found


def objects_mismatches(compose: Compose, proven: Proven, dotenv: Mapping[str, str]) -> list[str]:
    """The pool, Connections and Variables airflow-init renders from airflow_settings.yaml in its
    environment against those `scripts/cluster up` created, and the pool the tasks use."""
    init = container_env(compose, "airflow-init", dotenv)
    ours = airflow_settings.load(proven.settings_file, airflow_settings.template_values(init))
    found = [f"airflow_settings.yaml {part} rendered in airflow-init: cluster {mine!r}, compose {theirs!r}"
             for part, mine, theirs in (("pools", proven.objects.pools, ours.pools),
                                        ("connections", proven.objects.connections, ours.connections),
                                        ("variables", proven.objects.variables, ours.variables)) if mine != theirs]
    for service in (s for s in COMPONENT_OF if s.startswith("airflow-")):
        used = container_env(compose, service, dotenv).get("NEWSRAG_EMBED_POOL")
        if [used] != [p.name for p in ours.pools]:
            found.append(f"{service}: NEWSRAG_EMBED_POOL: the pool airflow-init creates {[p.name for p in ours.pools]}, "
                         f"the tasks use {used!r}")
    return found


# -- the tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_airflow_and_app_environment_is_the_clusters(proven: Proven, scenario: str) -> None:
    compose, dotenv = load_compose(), SCENARIOS[scenario]
    assert env_mismatches(compose, proven, dotenv) == []
    assert {k for k, (rule, why) in AIRFLOW_RULES.items() if LAPTOP in why} <= set(DEFAULTS)  # the reason holds
    stale = set(AIRFLOW_RULES) - {k for env in proven.env.values() for k in env}
    assert not stale, f"classified in AIRFLOW_RULES, but the cluster no longer sets {sorted(stale)}"
    # a drift on either side is caught, naming the key and both values
    changed = copy.deepcopy(compose)
    changed["services"]["airflow-worker"]["environment"]["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = "4"
    del changed["services"]["app"]["environment"]["WEAVIATE_CONSISTENCY_LEVEL"]
    changed["services"]["app"]["environment"]["NEWSRAG_SOMETHING_NEW"] = "1"
    drift = "\n".join(env_mismatches(changed, proven, dotenv))
    assert "airflow-worker: AIRFLOW__CELERY__WORKER_CONCURRENCY: cluster '2', compose '4'" in drift
    assert "app: WEAVIATE_CONSISTENCY_LEVEL: cluster 'QUORUM', compose (not set)" in drift
    assert "app: compose sets NEWSRAG_SOMETHING_NEW='1', the cluster does not" in drift
    grown = copy.deepcopy(proven)
    grown.env["airflow-scheduler"]["NEWSRAG_NEW_SETTING"] = "x"
    assert "airflow-scheduler: the cluster sets NEWSRAG_NEW_SETTING='x', compose has (not set)" in "\n".join(
        env_mismatches(compose, grown, dotenv))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_weaviate_nodes_are_the_clusters(proven: Proven, scenario: str) -> None:
    compose = load_compose()
    weaviate = {s for s, spec in compose["services"].items() if "weaviate" in str(spec.get("image", ""))}
    assert weaviate == set(WEAVIATE_NODES) and len(WEAVIATE_NODES) == cluster_size()
    assert node_mismatches(compose, proven, SCENARIOS[scenario]) == []
    for service in WEAVIATE_NODES:  # started as the cluster's nodes: http on the node's port
        assert compose["services"][service]["command"] == ["--host", "0.0.0.0", "--port", str(NODE_PORTS["http_port"]),
                                                           "--scheme", "http"], service
    assert proven.nodes["weaviate-2"]["RAFT_BOOTSTRAP_EXPECT"] == str(cluster_size())
    changed = copy.deepcopy(compose)
    changed["services"]["weaviate-2"]["environment"]["RAFT_BOOTSTRAP_EXPECT"] = "1"
    changed["services"]["weaviate-3"]["environment"]["CLUSTER_JOIN"] = "weaviate:7946"
    changed["services"]["weaviate"]["environment"]["CLUSTER_IN_LOCALHOST"] = "true"
    drift = "\n".join(node_mismatches(changed, proven, SCENARIOS[scenario]))
    assert "weaviate-2: RAFT_BOOTSTRAP_EXPECT: cluster '3', compose '1'" in drift
    assert "weaviate-3: CLUSTER_JOIN: cluster 'weaviate:7946,weaviate-2:7946', compose 'weaviate:7946'" in drift
    assert "weaviate: CLUSTER_IN_LOCALHOST: cluster 'true' (loopback only), compose 'true'" in drift


def test_commands_are_the_clusters(proven: Proven) -> None:
    compose = load_compose()
    assert command_mismatches(compose, proven) == []
    worker = proven.commands["airflow-worker"]
    concurrency = worker[worker.index("--concurrency") + 1]  # dropped from the command, compared as a setting
    assert concurrency == proven.env["airflow-worker"]["AIRFLOW__CELERY__WORKER_CONCURRENCY"]
    changed = copy.deepcopy(compose)
    app = changed["services"]["app"]["command"]
    app[app.index("--workers") + 1] = "1"
    changed["services"]["airflow-worker"]["deploy"]["replicas"] = 3
    changed["services"]["airflow-scheduler"]["command"] = ["airflow", "scheduler"]
    changed["services"]["airflow-triggerer"]["restart"] = "no"
    drift = "\n".join(command_mismatches(changed, proven))
    assert "airflow-triggerer: restart: cluster restarts it when it exits (newsrag.cli.supervise), compose 'no'" in drift
    assert "app: command: cluster 'uvicorn newsrag.app.main:create_app --factory --workers 2 --port 8000', " \
           "compose 'uvicorn newsrag.app.main:create_app --factory --workers 1 --port 8000'" in drift
    assert "airflow-worker: deploy.replicas: cluster 2 workers (worker-1, worker-2), compose 3" in drift
    assert "airflow-scheduler: command: cluster 'airflow scheduler --skip-serve-logs', compose 'airflow scheduler'" in drift


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_pool_connection_and_variables_are_the_clusters(proven: Proven, scenario: str) -> None:
    compose, dotenv = load_compose(), SCENARIOS[scenario]
    assert proven.objects.pools and proven.objects.variables and "weaviate_default" in proven.objects.connections
    assert objects_mismatches(compose, proven, dotenv) == []
    changed = copy.deepcopy(compose)
    changed["services"]["airflow-worker"]["environment"]["NEWSRAG_EMBED_POOL"] = "other_pool"
    changed["services"]["airflow-init"]["environment"]["WEAVIATE_URL"] = "http://weaviate-2:8080"
    drift = "\n".join(objects_mismatches(changed, proven, dotenv))
    assert "airflow-worker: NEWSRAG_EMBED_POOL: the pool airflow-init creates ['newsrag_embeddings'], " \
           "the tasks use 'other_pool'" in drift
    assert "airflow_settings.yaml connections rendered in airflow-init: cluster" in drift and "weaviate-2" in drift


def test_every_worker_and_the_app_keep_their_own_home(proven: Proven) -> None:
    """The cluster gives each worker and the app a NEWSRAG_HOME of its own (every store is in
    PostgreSQL): in compose no named volume at NEWSRAG_HOME is shared or on a replicated service."""
    assert len(set(proven.homes)) == len(proven.homes)
    compose = load_compose()

    def shared_homes(spec: Compose) -> list[str]:
        mounts: dict[str, list[str]] = {}
        for service in ("airflow-worker", "app"):
            home = container_env(spec, service, {})["NEWSRAG_HOME"]
            for volume in spec["services"][service].get("volumes", []):
                name, _, target = str(volume).partition(":")
                if target.split(":")[0] == home:
                    mounts.setdefault(name, []).append(service)
        replicated = spec["services"]["airflow-worker"].get("deploy", {}).get("replicas", 1) > 1
        return [f"volume {name} at NEWSRAG_HOME of {', '.join(users)}" for name, users in mounts.items()
                if len(users) > 1 or (replicated and "airflow-worker" in users)]

    assert shared_homes(compose) == []
    changed = copy.deepcopy(compose)
    changed["services"]["airflow-worker"]["volumes"].append("newsrag-home:/var/lib/newsrag")
    assert shared_homes(changed) == ["volume newsrag-home at NEWSRAG_HOME of airflow-worker"]
