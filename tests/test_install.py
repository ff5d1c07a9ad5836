"""Installs that cannot drift or cross (#20, item 11): each checkout runs its own code from its own
.venv, installed exactly from uv.lock."""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO

WHERE = "import newsrag, sys; print(newsrag.__file__); print(sys.prefix)"


def _imports_from(python: Path) -> list[str]:
    """Where ``python`` imports newsrag from, asked from another folder (no checkout on sys.path)."""
    out = subprocess.run([str(python), "-c", WHERE], cwd="/", capture_output=True, text=True, check=True,
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    return out.stdout.split()


@pytest.mark.unit
def test_this_checkout_runs_its_own_code_from_its_own_venv() -> None:
    module, prefix = _imports_from(REPO / ".venv" / "bin" / "python")
    assert Path(module).resolve().is_relative_to(REPO.resolve())
    assert Path(prefix).resolve() == (REPO / ".venv").resolve()
    assert not (REPO / ".venv").is_symlink()  # never a venv shared with other clones


@pytest.mark.unit
def test_the_lock_is_committed_and_setup_installs_from_it() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    assert any(p["name"] == "apache-airflow" for p in lock["package"])
    setup = (REPO / "scripts" / "setup").read_text()
    assert "sync --locked" in setup
    pinned = project["tool"]["uv"]["required-version"].removeprefix("==")
    assert f'uv_version="{pinned}"' in setup


@pytest.mark.e2e
def test_a_second_clone_set_up_beside_this_one_runs_its_own_code(tmp_path: Path) -> None:
    clone = tmp_path / "second-clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    env = {**os.environ, "NEWSRAG_SETUP_BROWSER": "0", "NEWSRAG_SETUP_POSTGRES": "0",
           "NEWSRAG_HOME": str(tmp_path / "home")}
    env.pop("PYTHONPATH", None)
    subprocess.run(["bash", "scripts/setup"], cwd=clone, env=env, check=True, capture_output=True, timeout=900)
    theirs, mine = _imports_from(clone / ".venv" / "bin" / "python"), _imports_from(REPO / ".venv" / "bin" / "python")
    assert Path(theirs[0]).resolve().is_relative_to(clone.resolve())
    assert Path(mine[0]).resolve().is_relative_to(REPO.resolve())  # setting up the clone did not re-point ours
