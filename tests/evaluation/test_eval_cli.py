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


def test_compare_with_an_unknown_run_id_exits_2_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from evaluation.history import HistoryStore
    from newsrag.cli import app
    from tests.evaluation.factories import T0, make_run

    history = tmp_path / "history.sqlite"
    with HistoryStore(history) as store:
        store.save(make_run("r-known", T0, {"hit@k": 0.9}))
    before = history.read_bytes()
    monkeypatch.setenv("NEWSRAG_HOME", str(tmp_path))
    monkeypatch.setenv("NEWSRAG_EVAL_HISTORY_URL", str(history))
    monkeypatch.setenv("WEAVIATE_URL", "http://127.0.0.1:9")  # never reached: the id is checked first
    result = CliRunner().invoke(app, ["eval", "--golden", str(REPO / "examples" / "news" / "questions.jsonl"),
                                      "--compare", "r-missing"])
    printed = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "bad input: --compare: no run 'r-missing'" in printed and "newest runs: r-known" in printed
    assert "Traceback" not in result.output and history.read_bytes() == before
