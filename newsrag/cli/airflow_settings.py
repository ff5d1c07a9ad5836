"""``airflow_settings.yaml``: the Airflow objects the newsrag DAGs need, declared once.

The file has the Astro CLI's shape (``airflow: pools / connections / variables``) plus a
``newsrag: environment:`` mapping for the local Airflow's processes. ``scripts/airflow up`` and the
compose stack's ``docker/airflow-init.sh`` both read it. Values may hold ``${VAR}`` (the variable
must be set) or ``${VAR:-default}``; a value that ends up blank leaves its field out. This module
never imports Airflow: it renders the files that ``airflow pools set``, ``airflow connections
import`` and ``airflow variables import`` read.

    python -m newsrag.cli.airflow_settings airflow_settings.yaml OUT_DIR   # pools.tsv, connections.json, variables.json
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from newsrag.core.errors import ConfigError

TEMPLATE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}")
CONNECTION_FIELDS = {"conn_type": "conn_type", "conn_host": "host", "conn_port": "port", "conn_schema": "schema",
                     "conn_login": "login", "conn_password": "password", "conn_description": "description"}
SETTING_VARIABLE = re.compile(r"^newsrag_[a-z0-9_]+$")  # a Variable named after a setting supplies it
DERIVED = ("WEAVIATE_SCHEME", "WEAVIATE_HOST", "WEAVIATE_HTTP_PORT", "WEAVIATE_GRPC_HOST", "WEAVIATE_GRPC_PORT",
           "WEAVIATE_GRPC_SECURE")  # from WEAVIATE_URL / WEAVIATE_GRPC_URL (see weaviate_values)


@dataclass(frozen=True)
class Pool:
    name: str
    slots: int
    description: str = ""


@dataclass
class AirflowObjects:
    """What the file declares, with every template resolved."""

    pools: list[Pool] = field(default_factory=list)
    connections: dict[str, dict[str, Any]] = field(default_factory=dict)  # `airflow connections import` shape
    variables: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)

    def variable_settings(self) -> str:
        """``NEWSRAG_AIRFLOW_VARIABLES`` for the tasks: each ``newsrag_*`` Variable supplies the
        setting of the same name in upper case (``newsrag_eval_batch_size`` -> ``NEWSRAG_EVAL_BATCH_SIZE``)."""
        return ",".join(f"{key.upper()}={key}" for key in sorted(self.variables) if SETTING_VARIABLE.match(key))


def weaviate_values(url: str, grpc_url: str | None = None) -> dict[str, str]:
    """The ``WEAVIATE_*`` template values of the connection, from the URLs the library reads."""
    http = urlsplit(url)
    if http.scheme not in ("http", "https") or not http.hostname:
        raise ConfigError(f"WEAVIATE_URL must be an http(s) URL with a host (got {url!r})")
    grpc = urlsplit(grpc_url) if grpc_url else None
    return {
        "WEAVIATE_SCHEME": http.scheme,
        "WEAVIATE_HOST": http.hostname,
        "WEAVIATE_HTTP_PORT": str(http.port or (443 if http.scheme == "https" else 80)),
        "WEAVIATE_GRPC_HOST": (grpc.hostname if grpc else None) or http.hostname,
        "WEAVIATE_GRPC_PORT": str((grpc.port if grpc else None) or 50051),
        "WEAVIATE_GRPC_SECURE": str((grpc.scheme if grpc else http.scheme) in ("https", "grpcs")).lower(),
    }


def load(path: Path, values: Mapping[str, str]) -> AirflowObjects:
    """Read and resolve the file; every problem is a ConfigError naming the file and the entry."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with an 'airflow' key")
    airflow = _mapping(data.get("airflow") or {}, f"{path}: airflow")
    resolve = _Resolver(path, values)
    return AirflowObjects(
        pools=[_pool(resolve, entry, f"pools[{i}]") for i, entry in enumerate(_entries(airflow, "pools", path))],
        connections=dict(_connection(resolve, e, f"connections[{i}]")
                         for i, e in enumerate(_entries(airflow, "connections", path))),
        variables=dict(_variable(resolve, e, f"variables[{i}]")
                       for i, e in enumerate(_entries(airflow, "variables", path))),
        environment=_environment(resolve, data.get("newsrag") or {}, path),
    )


class _Resolver:
    """Replaces ``${VAR}`` / ``${VAR:-default}`` in one value; names the entry when a variable is unset."""

    def __init__(self, path: Path, values: Mapping[str, str]) -> None:
        self.path, self.values = path, values

    def __call__(self, value: Any, where: str) -> str:
        def one(m: re.Match[str]) -> str:
            name, has_default, default = m.group(1), m.group(2), m.group(3)
            if self.values.get(name):
                return self.values[name]
            if has_default is not None:
                return default or ""
            hint = " (it comes from WEAVIATE_URL: set WEAVIATE_URL)" if name in DERIVED else ""
            raise ConfigError(f"{self.path}: {where} uses ${{{name}}}, which is not set{hint}")

        return TEMPLATE.sub(one, "" if value is None else str(value)).strip()


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping")
    return value


def _entries(airflow: dict[str, Any], key: str, path: Path) -> list[dict[str, Any]]:
    entries = airflow.get(key) or []
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: airflow.{key} must be a list")
    return [_mapping(e, f"{path}: airflow.{key}[{i}]") for i, e in enumerate(entries)]


def _integer(text: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{where} must be a whole number (got {text!r})") from None


def _pool(resolve: _Resolver, entry: dict[str, Any], where: str) -> Pool:
    name = resolve(entry.get("pool_name"), f"{where}.pool_name")
    if not name:
        raise ConfigError(f"{resolve.path}: {where} has no pool_name")
    slots = _integer(resolve(entry.get("pool_slot"), f"{where}.pool_slot"), f"{resolve.path}: {where}.pool_slot")
    return Pool(name, slots, resolve(entry.get("pool_description"), f"{where}.pool_description"))


def _connection(resolve: _Resolver, entry: dict[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    conn_id = resolve(entry.get("conn_id"), f"{where}.conn_id")
    if not conn_id or not entry.get("conn_type"):
        raise ConfigError(f"{resolve.path}: {where} needs conn_id and conn_type")
    conn: dict[str, Any] = {}
    for key, target in CONNECTION_FIELDS.items():
        if value := resolve(entry.get(key), f"{conn_id}.{key}"):
            conn[target] = value
    if "port" in conn:
        conn["port"] = _integer(conn["port"], f"{resolve.path}: {conn_id}.conn_port")
    extra = _mapping(entry.get("conn_extra") or {}, f"{resolve.path}: {conn_id}.conn_extra")
    resolved = {k: resolve(v, f"{conn_id}.conn_extra.{k}") for k, v in extra.items()}
    if resolved := {k: v for k, v in resolved.items() if v}:
        conn["extra"] = json.dumps(resolved)
    return conn_id, conn


def _variable(resolve: _Resolver, entry: dict[str, Any], where: str) -> tuple[str, str]:
    key = resolve(entry.get("variable_name"), f"{where}.variable_name")
    if not key:
        raise ConfigError(f"{resolve.path}: {where} has no variable_name")
    return key, resolve(entry.get("variable_value"), f"{key}.variable_value")


def _environment(resolve: _Resolver, newsrag: Any, path: Path) -> dict[str, str]:
    env = _mapping(_mapping(newsrag, f"{path}: newsrag").get("environment") or {}, f"{path}: newsrag.environment")
    resolved = {str(k): resolve(v, f"newsrag.environment.{k}") for k, v in env.items()}
    return {k: v for k, v in resolved.items() if v}


def write_import_files(objects: AirflowObjects, out_dir: Path) -> None:
    """pools.tsv (name, slots, description), connections.json and variables.json, readable only by
    the owner: connections may hold secrets."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"pools.tsv": "".join(f"{p.name}\t{p.slots}\t{p.description}\n" for p in objects.pools),
             "connections.json": json.dumps(objects.connections, indent=2),
             "variables.json": json.dumps(objects.variables, indent=2)}
    for name, text in files.items():
        target = out_dir / name
        target.unlink(missing_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)


def template_values(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment plus the connection's ``WEAVIATE_*`` values derived from ``WEAVIATE_URL``."""
    values = dict(environ)
    if environ.get("WEAVIATE_URL"):
        values.update(weaviate_values(environ["WEAVIATE_URL"], environ.get("WEAVIATE_GRPC_URL")))
    return values


def main(argv: list[str]) -> int:
    """Render for docker/airflow-init.sh; prints only names, never values."""
    if len(argv) != 2:
        print("usage: python -m newsrag.cli.airflow_settings SETTINGS_FILE OUT_DIR", file=sys.stderr)
        return 2
    try:
        objects = load(Path(argv[0]), template_values(os.environ))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    write_import_files(objects, Path(argv[1]))
    print(f"pools: {', '.join(p.name for p in objects.pools) or '-'}; connections: "
          f"{', '.join(objects.connections) or '-'}; variables: {', '.join(objects.variables) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
