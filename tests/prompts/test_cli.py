from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEWSRAG_HOME": str(home), "NEWSRAG_RELEASE_REGISTRY": str(home / "reg.sqlite")}
    return subprocess.run([sys.executable, "-m", "newsrag", "prompts", *args], capture_output=True, text=True,
                          env=env, timeout=120, cwd=REPO, check=False)


def test_prompts_cli_lifecycle_and_errors(tmp_path: Path) -> None:
    assert "news-answer" in cli(tmp_path, "list").stdout
    bad_promote = cli(tmp_path, "promote", "news-answer", "1")
    assert bad_promote.returncode == 1 and "has not passed validation" in bad_promote.stderr
    assert cli(tmp_path, "validate", "news-answer", "1").returncode == 0
    assert "active 1" in cli(tmp_path, "promote", "news-answer", "1").stdout
    shown = cli(tmp_path, "show", "news-answer")
    assert "news-answer@1" in shown.stdout and "<context>" in shown.stdout
    unknown = cli(tmp_path, "show", "nope", "1")
    assert unknown.returncode == 1 and "unknown template version nope@1" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    assert "no earlier active version" in cli(tmp_path, "rollback", "news-answer").stderr
