"""airflow_settings.yaml, as `scripts/airflow up` and the compose stack's init render it, the
process helpers that let `scripts/airflow down` leave nothing behind, and `scripts/airflow parse`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from newsrag.cli import processes
from newsrag.cli.airflow_local import LocalAirflow
from newsrag.cli.airflow_settings import load, template_values, weaviate_values, write_import_files
from newsrag.core.errors import ConfigError

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "airflow_settings.yaml"


def test_the_shipped_file_for_the_embedded_weaviate() -> None:
    values = weaviate_values("http://127.0.0.1:8079", "http://127.0.0.1:50060")
    objects = load(SHIPPED, values)
    assert [(p.name, p.slots) for p in objects.pools] == [("newsrag_embeddings", 2)]
    conn = objects.connections["weaviate_default"]
    assert (conn["conn_type"], conn["host"], conn["port"]) == ("http", "127.0.0.1", 8079)
    assert "password" not in conn  # ${WEAVIATE_API_KEY:-} is blank: the field is left out
    assert json.loads(conn["extra"]) == {"grpc_host": "127.0.0.1", "grpc_port": "50060", "grpc_secure": "false",
                                         "collection": "NewsChunk"}
    assert objects.variables == {"newsrag_eval_batch_size": "100", "newsrag_eval_generator": "extractive"}
    assert objects.environment == {"NEWSRAG_INGEST_SOURCES_FILE": "examples/sources.offline.yaml"}
    assert objects.variable_settings() == ("NEWSRAG_EVAL_BATCH_SIZE=newsrag_eval_batch_size,"
                                           "NEWSRAG_EVAL_GENERATOR=newsrag_eval_generator")


def test_the_shipped_file_for_the_compose_stack() -> None:
    env = {"WEAVIATE_URL": "https://weaviate.example:8443", "WEAVIATE_API_KEY": "k-123",
           "WEAVIATE_COLLECTION": "Wire", "NEWSRAG_EMBED_POOL_SLOTS": "6",
           "NEWSRAG_INGEST_SOURCES_FILE": "/srv/sources.yaml"}
    objects = load(SHIPPED, template_values(env))
    conn = objects.connections["weaviate_default"]
    assert (conn["conn_type"], conn["host"], conn["port"], conn["password"]) == ("https", "weaviate.example", 8443,
                                                                                 "k-123")
    extra = json.loads(conn["extra"])
    assert (extra["grpc_port"], extra["grpc_secure"], extra["collection"]) == ("50051", "true", "Wire")
    assert objects.pools[0].slots == 6
    assert objects.environment["NEWSRAG_INGEST_SOURCES_FILE"] == "/srv/sources.yaml"


def test_an_unset_variable_is_named_with_its_entry(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"weaviate_default\.conn_type uses \$\{WEAVIATE_SCHEME\}, which is not "
                                          r"set \(it comes from WEAVIATE_URL: set WEAVIATE_URL\)"):
        load(SHIPPED, {})
    own = tmp_path / "airflow_settings.yaml"
    own.write_text("airflow:\n  variables:\n    - variable_name: token\n      variable_value: ${MY_TOKEN}\n")
    with pytest.raises(ConfigError, match=r"token\.variable_value uses \$\{MY_TOKEN\}, which is not set$"):
        load(own, {})


def test_bad_values_name_the_file_and_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "airflow_settings.yaml"
    bad.write_text("airflow:\n  pools:\n    - pool_name: p\n      pool_slot: many\n")
    with pytest.raises(ConfigError, match=r"airflow_settings.yaml: pools\[0\].pool_slot must be a whole number"):
        load(bad, {})
    bad.write_text("airflow:\n  connections: {conn_id: x}\n")
    with pytest.raises(ConfigError, match="airflow.connections must be a list"):
        load(bad, {})


def test_import_files_are_private_and_in_airflows_shapes(tmp_path: Path) -> None:
    objects = load(SHIPPED, weaviate_values("http://127.0.0.1:8079"))
    write_import_files(objects, tmp_path)
    assert (tmp_path / "pools.tsv").read_text() == "newsrag_embeddings\t2\tembedding concurrency (newsrag)\n"
    assert set(json.loads((tmp_path / "connections.json").read_text())) == {"weaviate_default"}
    assert json.loads((tmp_path / "variables.json").read_text())["newsrag_eval_batch_size"] == "100"
    for name in ("pools.tsv", "connections.json", "variables.json"):
        assert (tmp_path / name).stat().st_mode & 0o077 == 0, name


def test_stop_session_ends_a_process_and_the_children_it_moved_to_their_own_group(tmp_path: Path) -> None:
    # The child does what Airflow's task supervisor does: setpgid into a group of its own.
    script = ("import os, subprocess, sys, time\n"
              "child = subprocess.Popen([sys.executable, '-c', 'import os, time; os.setpgid(0, 0); time.sleep(300)'])\n"
              "print(child.pid, flush=True)\n"
              "time.sleep(300)\n")
    log = tmp_path / "leader.log"
    leader = processes.spawn([sys.executable, "-c", script], dict(os.environ), tmp_path, log)
    deadline = time.monotonic() + 30
    while not log.read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.1)
    child = int(log.read_text().split()[0])
    assert processes.alive(leader) and processes.alive(child)
    assert set(processes.session_members(leader)) >= {leader, child}
    assert processes.stop_session(leader, timeout=10)
    assert not processes.alive(leader) and not processes.alive(child)
    assert processes.session_members(leader) == []
    assert not processes.stop_session(leader)  # nothing left to stop


def test_a_sigterm_resistant_process_is_killed(tmp_path: Path) -> None:
    script = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(300)\n"
    log = tmp_path / "stubborn.log"
    pid = processes.spawn([sys.executable, "-c", script], dict(os.environ), tmp_path, log)
    deadline = time.monotonic() + 30
    while "ready" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes.stop_session(pid, timeout=1)
    assert not processes.alive(pid)


def test_the_compose_init_renders_the_same_file(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "WEAVIATE_URL": "http://weaviate:8080",
           "WEAVIATE_GRPC_URL": "http://weaviate:50051", "WEAVIATE_API_KEY": "Real-Key-42"}
    result = subprocess.run([sys.executable, "-m", "newsrag.cli.airflow_settings", str(SHIPPED), str(tmp_path)],
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "connections: weaviate_default" in result.stdout and "Real-Key-42" not in result.stdout
    conn = json.loads((tmp_path / "connections.json").read_text())["weaviate_default"]
    assert (conn["host"], conn["port"], conn["password"]) == ("weaviate", 8080, "Real-Key-42")
    missing = subprocess.run([sys.executable, "-m", "newsrag.cli.airflow_settings", str(SHIPPED), str(tmp_path)],
                             env={**env, "WEAVIATE_URL": ""}, capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 2 and "set WEAVIATE_URL" in missing.stderr


def test_parse_reports_the_file_that_fails_to_import(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "good.py").write_text("import pendulum\nfrom airflow.sdk import dag\n\n\n"
                                  "@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1))\n"
                                  "def good():\n    pass\n\n\ngood()\n")
    (dags / "broken.py").write_text("from airflow.sdk import dag\nimport no_such_module_here\n")
    result = LocalAirflow(home=tmp_path / "home").parse(dags)
    assert result["dags"] == ["good"]
    assert list(result["errors"]) == ["broken.py"]
    assert "No module named 'no_such_module_here'" in result["errors"]["broken.py"]
