from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Airflow's bundle DagBag puts the DAG folder on sys.path (dags/newsrag_airflow is imported from it).
if str(REPO / "dags") not in sys.path:
    sys.path.append(str(REPO / "dags"))


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """An Airflow metadata DB (SQLite) in the session's AIRFLOW_HOME, migrated once."""
    home = os.environ["AIRFLOW_HOME"]
    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True,
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
