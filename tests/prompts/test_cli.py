"""``newsrag prompts``: the lifecycle through the real entry point (a subprocess), and diff, ab and
bad input through typer's CliRunner. Bad input exits non-zero with one clear line, no traceback,
and leaves the active version and the A/B split untouched."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsrag.cli.main import app
from newsrag.core.templates import load_template, templates_dir
from newsrag.prompts.registry import ActivePrompt, PromptRegistry

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
V1 = load_template(templates_dir() / "news-answer" / "1.yaml")


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEWSRAG_HOME": str(home), "NEWSRAG_RELEASE_REGISTRY": str(home / "reg.sqlite")}
    return subprocess.run([sys.executable, "-m", "newsrag", "prompts", *args], capture_output=True, text=True,
                          env=env, timeout=120, cwd=REPO, check=False)


def test_prompts_cli_lifecycle_and_errors(tmp_path: Path) -> None:
    # A fresh registry: the CLI deploys the shipped templates first, which makes news-answer@1 active.
    assert re.search(r"news-answer\s*│\s*1\s*│\s*1\s*│", cli(tmp_path, "list").stdout)
    assert "no earlier active version" in cli(tmp_path, "rollback", "news-answer").stderr
    reg = PromptRegistry(tmp_path / "reg.sqlite")
    reg.register(V1.model_copy(update={"version": "9", "user": "{{ question }}\n{{ context }}\n"}))
    reg.close()
    bad_promote = cli(tmp_path, "promote", "news-answer", "9")  # validated now, and refused
    assert bad_promote.returncode == 1 and "has not passed validation (failed)" in bad_promote.stderr
    assert "between <context> and </context>" in bad_promote.stdout
    assert "active 1" in cli(tmp_path, "promote", "news-answer", "1").stdout
    shown = cli(tmp_path, "show", "news-answer")
    assert "news-answer@1" in shown.stdout and "<context>" in shown.stdout
    unknown = cli(tmp_path, "show", "nope", "1")
    assert unknown.returncode == 1 and "unknown template 'nope'; known: news-answer" in unknown.stderr
    assert "Traceback" not in unknown.stderr


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PromptRegistry]:
    """Versions 1 (active), 2 (shorter answers) and 3, all validated; the CLI opens the same file."""
    path = tmp_path / "registry.sqlite"
    monkeypatch.setenv("NEWSRAG_RELEASE_REGISTRY", str(path))
    reg = PromptRegistry(path)
    reg.sync()
    reg.register(V1.model_copy(update={"version": "2", "system": V1.system.replace(
        "Keep answers to at most three sentences.", "Keep answers to one sentence.")}))
    reg.register(V1.model_copy(update={"version": "3", "user": V1.user + "Answer in English.\n"}))
    for n in ("1", "2", "3"):
        reg.validate("news-answer", n)
    reg.promote("news-answer", "1", who="setup")
    yield reg
    reg.close()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["prompts", *args])
    return result.exit_code, result.stdout, result.stderr


def test_diff_shows_the_changed_lines_of_each_part(registry: PromptRegistry) -> None:
    code, out, _ = run("diff", "news-answer", "1", "2")
    assert code == 0
    assert "--- news-answer@1 system" in out and "+++ news-answer@2 system" in out
    assert "-Keep answers to at most three sentences. Today is {{ today }}." in out
    assert "+Keep answers to one sentence. Today is {{ today }}." in out
    assert "user" not in out.replace("system", "")  # the user templates are identical: no hunk
    code, out, _ = run("diff", "news-answer", "1", "3")
    assert code == 0 and "+Answer in English." in out and "news-answer@3 user" in out


def test_ab_starts_changes_and_stops_a_sticky_split(registry: PromptRegistry) -> None:
    code, out, _ = run("ab", "news-answer", "2", "--weight", "0.25")
    assert code == 0 and "active 1, canary 2 at 25%" in out
    assert registry.active("news-answer") == ActivePrompt("news-answer", "1", "2", 0.25)
    code, out, _ = run("ab", "news-answer", "--stop")
    assert code == 0 and "canary - at 0%" in out
    assert registry.active("news-answer") == ActivePrompt("news-answer", "1", None, 0.0)
    assert [(e.action, e.canary, e.canary_weight, e.who) for e in registry.events("news-answer")[-2:]] == [
        ("ab", "2", 0.25, "cli"), ("ab", None, 0.0, "cli")]


@pytest.mark.parametrize(("args", "message"), [
    (("diff", "nope", "1", "2"), "unknown template 'nope'; known: news-answer"),
    (("diff", "news-answer", "1", "42"), "unknown template version news-answer@42; known: 1, 2, 3"),
    (("ab", "nope", "2"), "unknown template 'nope'; known: news-answer"),
    (("ab", "news-answer", "42"), "unknown template version news-answer@42; known: 1, 2, 3"),
    (("ab", "news-answer", "2", "--weight", "1.5"), "A/B weight must be between 0 and 1, got 1.5"),
    (("ab", "news-answer", "2", "--weight", "-0.1"), "A/B weight must be between 0 and 1, got -0.1"),
    (("ab", "news-answer", "1"), "news-answer@1 is already the active version"),
    (("ab", "news-answer"), "name the canary version, or pass --stop"),
    (("promote", "nope", "1"), "unknown template 'nope'; known: news-answer"),
    (("promote", "news-answer", "42"), "unknown template version news-answer@42"),
    (("rollback", "nope"), "unknown template 'nope'; known: news-answer"),
    (("validate", "news-answer", "42"), "unknown template version news-answer@42"),
])
def test_bad_input_is_one_clear_line_and_changes_nothing(registry: PromptRegistry, args: tuple[str, ...],
                                                        message: str) -> None:
    registry.set_ab("news-answer", "3", 0.1, who="setup")
    before, events = registry.active("news-answer"), len(registry.events())
    code, out, err = run(*args)
    assert code in (1, 2) and message in err, (code, out, err)
    assert "Traceback" not in err + out
    assert registry.active("news-answer") == before == ActivePrompt("news-answer", "1", "3", 0.1)
    assert len(registry.events()) == events  # nothing recorded either
