"""The DAG files as the local Airflow sees them: which ones its dag-processor has parsed (through the
REST API), and the parse check that imports them as the dag-processor does, without a server
(:meth:`newsrag.cli.airflow_local.LocalAirflow.parse`). Never imports Airflow."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx

from newsrag.cli.airflow_settings import weaviate_values


def dag_files(api: httpx.Client, since: datetime) -> tuple[dict[str, list[str]], dict[str, str]]:
    """({file name: its DAG ids}, {file name: import error}) parsed at or after ``since``."""
    dags: dict[str, list[str]] = {}
    resp = api.get("/api/v2/dags", params={"limit": 1000})
    resp.raise_for_status()
    for dag in resp.json()["dags"]:
        if dag.get("last_parsed_time") and datetime.fromisoformat(dag["last_parsed_time"]) >= since:
            dags.setdefault(Path(dag["fileloc"]).name, []).append(dag["dag_id"])
    resp = api.get("/api/v2/importErrors", params={"limit": 1000})
    resp.raise_for_status()
    errors = {Path(e["filename"]).name: e["stack_trace"] for e in resp.json()["import_errors"]
              if datetime.fromisoformat(e["timestamp"]) >= since}
    return dags, errors


def looks_like_dag_file(path: Path) -> bool:
    """Airflow's safe-mode rule: only files that mention both words are parsed."""
    text = path.read_bytes().lower()
    return b"airflow" in text and b"dag" in text


def placeholder_weaviate() -> dict[str, str]:
    """The parse check needs the file's environment, not a reachable Weaviate."""
    return weaviate_values("http://127.0.0.1:8080")


# Runs in the virtualenv's python (this module never imports Airflow): the dag-processor's DagBag.
PARSE_SCRIPT = """
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
folder = sys.argv[1]
bag = BundleDagBag(dag_folder=folder, bundle_path=Path(folder), safe_mode=True)
print(json.dumps({"dags": sorted(bag.dag_ids), "errors": {str(k): str(v) for k, v in bag.import_errors.items()}}))
"""
