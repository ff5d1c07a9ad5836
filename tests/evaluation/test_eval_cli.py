"""`newsrag eval` when what it evaluates cannot be reached: a clear error, no traceback, and the
history keeps its earlier runs."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def test_unreachable_weaviate_is_a_clear_error_and_history_is_untouched(tmp_path: Path) -> None:
    history = tmp_path / "history.sqlite"
    with sqlite3.connect(history) as db:
        db.execute("CREATE TABLE marker (x INTEGER)")
        db.execute("INSERT INTO marker VALUES (1)")
    env = {**os.environ, "NEWSRAG_HOME": str(tmp_path), "WEAVIATE_URL": "http://127.0.0.1:9",
           "WEAVIATE_GRPC_URL": "http://127.0.0.1:10", "WEAVIATE_TIMEOUT": "2",
           "NEWSRAG_EVAL_HISTORY_URL": str(history)}
    result = subprocess.run([sys.executable, "-m", "newsrag", "eval", "--golden",
                             str(REPO / "examples" / "news" / "questions.jsonl")],
                            capture_output=True, text=True, env=env, timeout=300, cwd=REPO, check=False)
    assert result.returncode != 0
    assert "cannot reach Weaviate" in result.stderr + result.stdout and "127.0.0.1:9" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    with sqlite3.connect(history) as db:
        assert db.execute("SELECT x FROM marker").fetchall() == [(1,)]
