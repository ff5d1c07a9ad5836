"""The golden set and the prompt templates ship inside the package, so answer_quality and
prompt_release find them wherever the process starts (Airflow started from any folder); a relative
golden-set path that is configured resolves against the current directory, and the error names the
resolved path and that directory."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from newsrag.core.settings import load
from newsrag.core.templates import templates_dir
from newsrag.evaluation.golden import GoldenSetError, load_golden, shipped_golden_path
from newsrag.evaluation.history import EvalSettings
from tests.wheel import build_wheel

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "news" / "questions.jsonl"


def test_the_shipped_golden_set_is_the_example_golden_set_byte_for_byte() -> None:
    """Two copies (the user-facing example, the package's data) that must never drift."""
    assert shipped_golden_path().read_bytes() == EXAMPLE.read_bytes()


def test_the_default_golden_set_is_found_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSRAG_EVAL_GOLDEN_PATH", raising=False)
    monkeypatch.chdir(tmp_path)  # not the repository, as an Airflow started elsewhere
    golden = load_golden(load(EvalSettings).golden_path)
    assert len(golden) == 28 and golden.path.is_absolute()
    assert (templates_dir() / "news-answer" / "1.yaml").is_file()


def test_a_configured_relative_path_resolves_against_the_current_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mine.jsonl").write_bytes(EXAMPLE.read_bytes())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSRAG_EVAL_GOLDEN_PATH", "mine.jsonl")
    assert load_golden(load(EvalSettings).golden_path).path == tmp_path / "mine.jsonl"

    monkeypatch.setenv("NEWSRAG_EVAL_GOLDEN_PATH", "examples/news/questions.jsonl")
    with pytest.raises(GoldenSetError) as info:
        load_golden(load(EvalSettings).golden_path)
    message = str(info.value)
    assert f"{tmp_path}/examples/news/questions.jsonl: cannot read" in message  # the resolved path
    assert f"resolves against the current directory {tmp_path}" in message  # and the base


def test_the_wheel_carries_the_golden_set_and_the_templates_and_finds_them_from_any_folder(tmp_path: Path) -> None:
    """Built from this checkout's files (not an editable install) and imported from another folder."""
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"newsrag/evaluation/data/questions.jsonl", "newsrag/prompts/templates/news-answer/1.yaml"} <= names

    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)  # a wheel is installed by unpacking it
    probe = ("from newsrag.evaluation.golden import load_golden; from newsrag.evaluation.history import EvalSettings; "
             "from newsrag.core.templates import templates_dir; g = load_golden(EvalSettings().golden_path); "
             "print(len(g), g.path); print((templates_dir() / 'news-answer' / '1.yaml').is_file())")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("NEWSRAG_EVAL_GOLDEN_PATH", None)
    done = subprocess.run([sys.executable, "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    count, path, templates = done.stdout.split()
    assert (count, templates) == ("28", "True") and path == str(site / "newsrag" / "evaluation" / "data" / "questions.jsonl")
