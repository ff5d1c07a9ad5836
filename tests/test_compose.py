"""The production shape (docker-compose.yml, Dockerfile, .env.example, docker/): the compose client
accepts the file, every service is there with a healthcheck and conditional depends_on, Weaviate is
the development version with API-key auth, and no secret is written anywhere but .env.

No Docker engine is needed: `docker-compose config` (v1, Debian's package) and `docker compose
config` (the v2 plugin) only parse and interpolate. Only the test that runs the client is skipped
when neither is installed; the static checks always run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from newsrag.core.secret_names import is_secret_name
from newsrag.core.settings import PLACEHOLDER_SECRETS, WEAVIATE_VERSION

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "Dockerfile"
SCRIPTS = REPO / "docker"

WEAVIATE_NODES = ("weaviate", "weaviate-2", "weaviate-3")  # tests/test_compose_parity.py: as scripts/cluster up
SERVICES = {"postgres", "redis", *WEAVIATE_NODES, "airflow-init", "airflow-apiserver", "airflow-scheduler",
            "airflow-dag-processor", "airflow-triggerer", "airflow-worker", "app"}
ONE_SHOT = {"airflow-init"}
AIRFLOW = {s for s in SERVICES if s.startswith("airflow-")}
PLACEHOLDER = "change-me"
# ${VAR}, ${VAR:?message}, ${VAR?message}, ${VAR:-} (empty default): a reference, never a value.
REFERENCE = re.compile(r"^\$\{(?P<var>[A-Za-z_][A-Za-z0-9_]*)(?:(?::?\?[^}]*)|:-)?\}$")
ANY_REFERENCE = re.compile(r"\$\{(?P<var>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?[^}]*\}")
URL_PASSWORD = re.compile(r"://[^:/@\s]*:(?P<password>[^@\s]*)@")
INSTALL_HINT = ("install one: apt-get install -y --no-install-recommends docker-compose "
                "(or the docker-compose-plugin for `docker compose`)")


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())  # resolves the anchors and << merges
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    return load_compose()["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert "=" in line, f"{path.name}:{number}: not KEY=VALUE"
        key, value = line.split("=", 1)
        assert key not in values, f"{path.name}:{number}: {key} twice"
        values[key.strip()] = value.strip()
    return values


def compose_text_without_comments() -> str:
    return "\n".join(line for line in COMPOSE.read_text().splitlines() if not line.lstrip().startswith("#"))


def references() -> dict[str, set[str]]:
    """Every ${VAR...} in the compose file -> the operators it is used with ('' / ':?' / ':-' ...)."""
    found: dict[str, set[str]] = {}
    for m in ANY_REFERENCE.finditer(compose_text_without_comments()):
        found.setdefault(m.group("var"), set()).add(m.group("op") or "")
    return found


# -- the compose client ----------------------------------------------------------------------------

def compose_clients() -> list[list[str]]:
    clients = []
    if legacy := shutil.which("docker-compose"):
        clients.append([legacy])
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], check=False, capture_output=True, text=True, timeout=60)
        if probe.returncode == 0:
            clients.append([docker, "compose"])
    return clients


def run_config(client: list[str], env_file: Path) -> subprocess.CompletedProcess[str]:
    # A clean environment: variables of this shell must not stand in for the .env file.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    env["HOME"] = str(env_file.parent)
    return subprocess.run([*client, "--project-directory", str(REPO), "--env-file", str(env_file),
                           "-f", str(COMPOSE), "config"],
                          check=False, capture_output=True, text=True, timeout=120, env=env,
                          cwd=env_file.parent)


def test_compose_client_accepts_the_file(tmp_path: Path) -> None:
    clients = compose_clients()
    if not clients:
        reason = f"no compose client: neither `docker-compose` nor the `docker compose` plugin is on PATH; {INSTALL_HINT}"
        print(reason, file=sys.stderr)
        pytest.skip(reason)
    env_file = tmp_path / ".env"
    shutil.copy(ENV_EXAMPLE, env_file)
    for client in clients:
        result = run_config(client, env_file)
        assert result.returncode == 0, f"{' '.join(client)} config failed:\n{result.stderr[-3000:]}"
        resolved = yaml.safe_load(result.stdout)
        assert set(resolved["services"]) == SERVICES, " ".join(client)
        for name in SERVICES - ONE_SHOT:
            assert resolved["services"][name].get("healthcheck"), f"{' '.join(client)}: {name}"
        for node in WEAVIATE_NODES:  # resolved from the .env
            assert environment(resolved["services"][node])["AUTHENTICATION_APIKEY_ALLOWED_KEYS"] == PLACEHOLDER, node
        assert resolved["services"]["airflow-worker"]["deploy"]["replicas"] == 2, " ".join(client)

        # a required secret missing from .env stops `config` with a message naming it
        missing = tmp_path / ".env.missing"
        missing.write_text("".join(line + "\n" for line in env_file.read_text().splitlines()
                                   if not line.startswith("WEAVIATE_API_KEY=")))
        result = run_config(client, missing)
        assert result.returncode != 0
        assert "set WEAVIATE_API_KEY in .env" in result.stderr + result.stdout


# -- structure -------------------------------------------------------------------------------------

def test_the_services_the_readme_names_are_the_compose_services() -> None:
    readme = (REPO / "README.md").read_text()
    prose = readme[readme.index("## Production shape"):readme.index("## Benchmarks")].split("```")[0]
    named = set(re.findall(r"`([a-z][a-z0-9-]*)`", prose))
    assert named == set(yaml.safe_load(COMPOSE.read_text())["services"])


def test_no_version_key_and_every_service() -> None:
    data = load_compose()
    assert "version" not in data or str(data["version"]) == "3.8"
    assert set(data["services"]) == SERVICES


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, service in services().items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert service.get("restart") in ("unless-stopped", "always"), name


def test_depends_on_uses_conditions() -> None:
    for name, service in services().items():
        deps = service.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: depends_on must be a mapping with conditions"
        for dep, spec in deps.items():
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            want = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert isinstance(spec, dict) and spec.get("condition") == want, f"{name} -> {dep}"
    for name in AIRFLOW - ONE_SHOT:
        deps = services()[name]["depends_on"]
        assert {"postgres", "redis", "airflow-init"} <= set(deps), name
    assert "postgres" in services()["airflow-init"]["depends_on"]
    assert {*WEAVIATE_NODES, "airflow-apiserver"} <= set(services()["airflow-worker"]["depends_on"])
    assert set(WEAVIATE_NODES) <= set(services()["app"]["depends_on"])
    for node in WEAVIATE_NODES:  # they start together and wait for each other (Raft): no order among them
        assert not services()[node].get("depends_on"), node


def test_airflow_is_airflow3_with_celery_postgres_and_redis() -> None:
    commands = {name: " ".join(services()[name]["command"]) for name in AIRFLOW}
    assert commands["airflow-apiserver"].startswith("airflow api-server")
    assert commands["airflow-scheduler"] == "airflow scheduler --skip-serve-logs"
    assert commands["airflow-dag-processor"] == "airflow dag-processor"
    assert commands["airflow-triggerer"] == "airflow triggerer --skip-serve-logs"
    assert commands["airflow-worker"] == "airflow celery worker --skip-serve-logs"
    for name in AIRFLOW:
        env = environment(services()[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg://"), name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres:5432/airflow"), name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://"), name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql"), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert env["NEWSRAG_DATABASE_URL"].startswith("postgresql://"), name  # every store, no local disk
        assert env["WEAVIATE_URL"] == "http://weaviate:8080", name
        # one JWT secret for every component (scheduler signs, API server checks)
        assert REFERENCE.match(env["AIRFLOW__API_AUTH__JWT_SECRET"]), name


def test_airflow_init_does_the_one_time_setup() -> None:
    init = services()["airflow-init"]
    script_path = init["command"][-1]
    assert script_path == "/opt/newsrag/docker/airflow-init.sh"
    script = (SCRIPTS / "airflow-init.sh").read_text()
    for step in ("airflow db migrate", "airflow users create --role Admin", "airflow pools set",
                 "airflow connections import", "weaviate_default", "openai_default", "cohere_default"):
        assert step in script, step
    assert not re.search(r"^\s*set\s+-\w*x", script, re.MULTILINE)  # never trace: the commands carry secrets
    env = environment(init)
    assert REFERENCE.match(env["AIRFLOW_ADMIN_PASSWORD"])
    assert "AIRFLOW_ADMIN_PASSWORD" not in environment(services()["airflow-worker"])


def test_postgres_creates_the_airflow_and_newsrag_databases() -> None:
    pg = services()["postgres"]
    assert pg["image"] == "postgres:16"
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    mounts = [v for v in pg["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert mounts and mounts[0].startswith("./docker/postgres-init.sh:")
    script = (SCRIPTS / "postgres-init.sh").read_text()
    assert "CREATE DATABASE airflow" in script and "CREATE DATABASE newsrag" in script
    assert any(str(v).startswith("postgres-data:") for v in pg["volumes"])


def test_redis() -> None:
    redis = services()["redis"]
    assert str(redis["image"]).startswith("redis:7")
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])


def test_weaviate_pinned_to_the_development_version_with_api_key_auth() -> None:
    volumes = set()
    for node in WEAVIATE_NODES:
        weaviate = services()[node]
        assert weaviate["image"] == f"cr.weaviate.io/semitechnologies/weaviate:{WEAVIATE_VERSION}", node
        env = environment(weaviate)
        assert env["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"] == "false", node
        assert env["AUTHENTICATION_APIKEY_ENABLED"] == "true", node
        m = REFERENCE.match(env["AUTHENTICATION_APIKEY_ALLOWED_KEYS"])
        assert m and m.group("var") == "WEAVIATE_API_KEY", node
        assert env["DEFAULT_VECTORIZER_MODULE"] == "none", node
        assert env["ENABLE_MODULES"] == "", node
        assert env["PERSISTENCE_DATA_PATH"] == "/var/lib/weaviate", node
        (volume,) = [str(v) for v in weaviate["volumes"] if str(v).endswith(":/var/lib/weaviate")]
        volumes.add(volume.split(":")[0])
        assert "/v1/.well-known/ready" in " ".join(weaviate["healthcheck"]["test"]), node
    assert len(volumes) == len(WEAVIATE_NODES)  # each node its own data
    assert set(volumes) <= set(load_compose()["volumes"])
    # the clients authenticate with the same key
    for name in ("app", "airflow-worker"):
        client = REFERENCE.match(environment(services()[name])["WEAVIATE_API_KEY"])
        assert client and client.group("var") == "WEAVIATE_API_KEY", name


def test_app_runs_in_production_mode() -> None:
    app = services()["app"]
    assert " ".join(app["command"]) == ("uvicorn newsrag.app.main:create_app --factory --workers 2 "
                                        "--host 0.0.0.0 --port 8000")
    env = environment(app)
    assert env["NEWSRAG_ENV"] == "production"
    assert env["NEWSRAG_DATABASE_URL"].startswith("postgresql://")  # feedback log and registry shared
    assert REFERENCE.match(env["NEWSRAG_APP_API_KEYS"])
    assert "/healthz" in " ".join(app["healthcheck"]["test"])


def test_one_image_built_from_the_project_dockerfile() -> None:
    for name in AIRFLOW | {"app"}:
        build = services()[name]["build"]
        assert build["context"] == "." and build["dockerfile"] == "Dockerfile", name
    images = {services()[name]["image"] for name in AIRFLOW | {"app"}}
    assert len(images) == 1


# -- secrets ---------------------------------------------------------------------------------------

def test_no_literal_secret_in_the_compose_file() -> None:
    offenders = []
    for name, service in services().items():
        for key, value in environment(service).items():
            if is_secret_name(key) and not REFERENCE.match(value):
                offenders.append(f"{name}.{key}")
    assert not offenders, f"secrets must be ${{...}} references to .env: {offenders}"
    text = compose_text_without_comments()
    for m in URL_PASSWORD.finditer(text):
        assert REFERENCE.match(m.group("password")), f"a URL holds a literal password: ...{m.group(0)[:8]}"
    assert "env_file" not in text or ".env" in text


def test_secret_references_have_no_literal_default() -> None:
    text = compose_text_without_comments()
    for m in re.finditer(r"\$\{(?P<var>[A-Za-z0-9_]+):?-(?P<default>[^}]*)\}", text):
        if is_secret_name(m.group("var")):
            assert m.group("default") == "", f"{m.group('var')} has a default value in the compose file"


def test_env_example_holds_only_placeholders() -> None:
    example = read_env_file(ENV_EXAMPLE)
    refs = references()
    # everything the compose file requires (${VAR:?...}) is in .env.example, so a copy resolves
    required = {var for var, ops in refs.items() if ":?" in ops or "?" in ops}
    assert required <= set(example), f"missing from .env.example: {sorted(required - set(example))}"
    # the secrets: every secret-named variable, and every variable a secret setting or a URL uses
    secret_vars = {var for var in refs if is_secret_name(var)}
    for service in services().values():
        for key, value in environment(service).items():
            if is_secret_name(key) or URL_PASSWORD.search(value):
                secret_vars |= {m.group("var") for m in ANY_REFERENCE.finditer(value)}
    secret_vars |= {k for k in example if is_secret_name(k)}
    assert {"WEAVIATE_API_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "AIRFLOW_FERNET_KEY",
            "NEWSRAG_APP_API_KEYS", "AIRFLOW_ADMIN_PASSWORD"} <= secret_vars
    for var in sorted(secret_vars):
        value = example.get(var, "")
        if var in required:
            assert value == PLACEHOLDER, f".env.example {var} must be {PLACEHOLDER!r}"
        else:
            assert value in ("", PLACEHOLDER), f".env.example {var} must be blank or {PLACEHOLDER!r}"
    # and the library itself treats the placeholder as one (refused in production)
    assert PLACEHOLDER in PLACEHOLDER_SECRETS


def test_secrets_stay_out_of_the_image_and_the_repository() -> None:
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored and "!.env.example" in ignored
    assert {".git", ".venv", ".newsrag"} <= set(ignored)
    assert ".env" in (REPO / ".gitignore").read_text().splitlines()


# -- the image -------------------------------------------------------------------------------------

def test_dockerfile() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.MULTILINE)
    assert 'pip install ".[airflow,app,openai,cohere,postgres]"' in text
    assert "download.pytorch.org/whl/cpu" in text
    assert "grep -o '\"torch==[^\"]*\"' pyproject.toml" in text  # the pin comes from pyproject.toml
    assert re.search(r"^\s+HF_HUB_OFFLINE=1", text, re.MULTILINE)
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert "apache-airflow-providers-celery" in text
    # the Dockerfile COPYs only what .dockerignore keeps
    ignored = set((REPO / ".dockerignore").read_text().splitlines())
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, re.MULTILINE):
        assert source not in ignored and (REPO / source).exists(), source


def test_scripts_are_valid_bash() -> None:
    for script in sorted(SCRIPTS.glob("*.sh")):
        result = subprocess.run(["bash", "-n", str(script)], check=False, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, f"{script.name}: {result.stderr}"
        assert script.read_text().startswith("#!/usr/bin/env bash"), script.name


def test_entrypoint_drops_blank_settings_only() -> None:
    env = {"PATH": os.environ["PATH"], "OPENAI_API_KEY": "", "NEWSRAG_APP_CORS_ORIGINS": "",
           "WEAVIATE_URL": "http://weaviate:8080", "UNRELATED": ""}
    result = subprocess.run(["bash", str(SCRIPTS / "entrypoint.sh"), "env"], check=False,
                            capture_output=True, text=True, timeout=30, env=env)
    assert result.returncode == 0, result.stderr
    names = {line.split("=", 1)[0] for line in result.stdout.splitlines()}
    assert "OPENAI_API_KEY" not in names and "NEWSRAG_APP_CORS_ORIGINS" not in names
    assert {"WEAVIATE_URL", "UNRELATED"} <= names


def test_airflow_init_refuses_placeholders_without_echoing_values() -> None:
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "WEAVIATE_API_KEY": PLACEHOLDER, "AIRFLOW_ADMIN_PASSWORD": "Real-Admin-Pass-1234",
           "AIRFLOW__CORE__FERNET_KEY": PLACEHOLDER, "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-Real-Secret-5678",
           "AIRFLOW__API__SECRET_KEY": "api-Real-Secret-9012", "PYTHONPATH": str(REPO)}
    result = subprocess.run(["bash", str(SCRIPTS / "airflow-init.sh")], check=False,
                            capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "WEAVIATE_API_KEY" in output and "AIRFLOW_FERNET_KEY" in output
    assert "AIRFLOW_ADMIN_PASSWORD" not in output
    for secret in ("Real-Admin-Pass-1234", "jwt-Real-Secret-5678", "api-Real-Secret-9012"):
        assert secret not in output
    assert "db migrate" not in output  # stopped before touching anything
