from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """An Airflow metadata DB (SQLite) in the session's AIRFLOW_HOME, migrated once."""
    home = os.environ["AIRFLOW_HOME"]
    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, check=False,
                            timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    return home


def load_dag(path: Path, dag_id: str) -> object:
    """Import a DAG file fresh (module-level settings such as the collection are read at import)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"dagfile_{dag_id}_{os.getpid()}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from airflow.sdk import DAG

    dags = [v for v in vars(module).values() if isinstance(v, DAG)]
    if not dags:
        from airflow.dag_processing.dagbag import DagBag

        return DagBag(dag_folder=str(path)).get_dag(dag_id)
    return next(d for d in dags if d.dag_id == dag_id)


class LogRecords(logging.Handler):
    """The records of the loggers it is attached to (the named loggers themselves: Airflow may
    restyle the root's handlers during dag.test)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, name: str | None = None, level: int = logging.DEBUG) -> list[str]:
        return [r.getMessage() for r in self.records if (name is None or r.name == name) and r.levelno >= level]

    def text(self, name: str | None = None, level: int = logging.DEBUG) -> str:
        return "\n".join(self.messages(name, level))


@contextlib.contextmanager
def collect_logs(*names: str) -> Iterator[LogRecords]:
    """Collect what the named loggers log ("" is the root) for the ``with`` block."""
    handler, loggers = LogRecords(), [logging.getLogger(n) for n in names]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
