"""The prompt CLI on a fresh install: the README's prompt examples, read from README.md so they
cannot drift, run as written (a shell, the installed ``newsrag`` command, the repository's folder)
on a fresh NEWSRAG_HOME; and the quickstart makes a shipped version active through the deploy
function the prompts_deploy DAG calls."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from newsrag.cli.main import app
from newsrag.prompts.registry import ActivePrompt, PromptRegistry

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def readme_prompt_commands() -> list[str]:
    """The ``newsrag prompts`` lines of the first bash block of the README's "Prompt templates"."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Prompt templates\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, "the README's Prompt templates section has no bash block"
    return [line for line in block.group(1).splitlines() if line.startswith("newsrag prompts ")]


@pytest.fixture
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A new NEWSRAG_HOME and no registry setting: the default registry file does not exist yet."""
    monkeypatch.setenv("NEWSRAG_HOME", str(tmp_path / "home"))
    for var in ("NEWSRAG_RELEASE_REGISTRY", "NEWSRAG_RELEASE_PROMPTS_DIR"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "home"


def test_the_readme_prompt_examples_run_as_written_on_a_fresh_install(fresh_home: Path) -> None:
    commands = readme_prompt_commands()
    used = {shlex.split(c, comments=True)[2] for c in commands}
    assert used >= {"list", "show", "deploy", "diff", "validate", "ab", "promote", "rollback"}, used
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        assert "error" not in done.stderr, f"{command}\n{done.stderr}"
    registry = PromptRegistry(fresh_home / "prompt-registry.sqlite")
    try:
        assert registry.active("news-answer") == ActivePrompt("news-answer", "1")  # rolled back to 1
        assert [(e.action, e.version) for e in registry.events("news-answer") if e.action in ("promote", "rollback")] \
            == [("promote", "1"), ("promote", "2"), ("rollback", "1")]
    finally:
        registry.close()


def test_show_works_at_once_on_a_fresh_install(fresh_home: Path) -> None:
    shown = CliRunner().invoke(app, ["prompts", "show", "news-answer"])
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.startswith("news-answer@1 ") and "<context>" in shown.stdout


class WeaviateNotNeeded(Exception):
    """Stops the quickstart right after its prompt step."""


class StopHere:
    @staticmethod
    def from_settings(*_: object) -> None:
        raise WeaviateNotNeeded


def test_the_quickstart_makes_a_shipped_version_active_through_the_deploy_function(
        fresh_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import newsrag.cli.quickstart
    import newsrag.prompts.release

    calls: list[tuple[str | None, str]] = []
    real_deploy = newsrag.prompts.release.deploy

    def deploy_spy(folder: str | None = None, who: str = "deploy", settings: object = None) -> dict[str, object]:
        calls.append((folder, who))
        return real_deploy(folder, who, settings)  # type: ignore[arg-type]

    monkeypatch.setattr(newsrag.prompts.release, "deploy", deploy_spy)  # what the prompts_deploy DAG calls
    monkeypatch.setattr(newsrag.cli.quickstart, "LocalWeaviate", StopHere)
    console = Console(record=True, width=200)
    with pytest.raises(WeaviateNotNeeded):
        newsrag.cli.quickstart.run_quickstart("q", console, serve=False)
    assert calls == [(None, "quickstart")]
    assert "Prompt templates: news-answer@1 active" in console.export_text()
    registry = PromptRegistry(fresh_home / "prompt-registry.sqlite")
    try:
        assert registry.active("news-answer") == ActivePrompt("news-answer", "1")
    finally:
        registry.close()
