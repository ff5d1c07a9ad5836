"""One installed namespace, and layers that import-linter enforces (pyproject.toml [tool.importlinter])."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.wheel import build_wheel

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path, config: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports over the ``newsrag`` found first on PYTHONPATH=root (a copy, or this checkout)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--config", str(config), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def copy_of_the_package(tmp_path: Path) -> Path:
    """A resolved copy of the package (symlinked subpackages become folders) that a test may break."""
    root = tmp_path / "copy"
    shutil.copytree(REPO / "newsrag", root / "newsrag", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_contracts_hold_on_this_checkout() -> None:
    done = lint(REPO, REPO / "pyproject.toml")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "Contracts: 2 kept, 0 broken." in done.stdout


def test_an_upward_import_breaks_the_layers(tmp_path: Path) -> None:
    root = copy_of_the_package(tmp_path)
    errors = root / "newsrag" / "core" / "errors.py"
    errors.write_text(errors.read_text() + "\n\ndef late():\n    from newsrag.retrieval import search  # upward\n")
    done = lint(root, root / "pyproject.toml")
    assert done.returncode == 1
    assert "newsrag.core is not allowed to import newsrag.retrieval" in done.stdout
    assert "newsrag.core.errors -> newsrag.retrieval.search" in done.stdout


def test_a_cycle_inside_a_layer_breaks_the_acyclic_contract(tmp_path: Path) -> None:
    root = copy_of_the_package(tmp_path)
    common = root / "newsrag" / "cli" / "common.py"
    common.write_text(common.read_text() + "\n\ndef late():\n    from newsrag.cli import main  # a cycle\n")
    done = lint(root, root / "pyproject.toml")
    assert done.returncode == 1
    assert "No cycles are allowed in newsrag.cli" in done.stdout


def test_the_wheel_holds_only_the_newsrag_package(tmp_path: Path) -> None:
    names = zipfile.ZipFile(build_wheel(tmp_path)).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"newsrag", "newsrag-0.1.0.dist-info"}
    for sub in ("ingest", "embeddings", "retrieval", "evaluation", "prompts", "app", "core", "infra", "store", "providers",
                "cli", "airflow"):
        assert f"newsrag/{sub}/__init__.py" in names
