"""Settings are built at the edges and handed inward: the library never reads the process
environment (only the settings loader, newsrag/core/settings.py, which the edges call) and no edge
writes it to configure the library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
LIBRARY = ["ingest", "embeddings", "retrieval", "evaluation", "prompts", "newsrag/core", "newsrag/infra",
           "newsrag/store", "newsrag/providers"]
LOADER = REPO / "newsrag" / "core" / "settings.py"
EDGES = ["dags", "newsrag/airflow"]


def library_files() -> list[Path]:
    return [p for pkg in LIBRARY for p in sorted((REPO / pkg).rglob("*.py")) if p != LOADER]


def _is_os_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") and \
        isinstance(node.value, ast.Name) and node.value.id == "os"


def environment_reads(path: Path) -> list[str]:
    """``os.environ``/``os.getenv``, ``load(X)`` without a mapping, and ``XSettings(...)``
    constructed directly (pydantic-settings reads the process environment in its constructor)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if _is_os_environ(node):
            found.append(f"{path.name}:{node.lineno} os.{node.attr}")  # type: ignore[attr-defined]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.func.id
            if name == "load" and len(node.args) < 2 and not node.keywords:
                found.append(f"{path.name}:{node.lineno} load() from the process environment")
            elif name.endswith("Settings") and name != "Settings" or name == "Settings" and not node.args:
                found.append(f"{path.name}:{node.lineno} {name}() reads the process environment")
    return found


def environment_writes(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Subscript) and _is_os_environ(node.value) and isinstance(node.ctx, ast.Store):
            found.append(f"{path.name}:{node.lineno} os.environ[...] =")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                _is_os_environ(node.func.value) and node.func.attr in ("update", "setdefault", "pop", "clear"):
            found.append(f"{path.name}:{node.lineno} os.environ.{node.func.attr}()")
    return found


@pytest.mark.parametrize("path", library_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_the_library_never_reads_the_process_environment(path: Path) -> None:
    assert environment_reads(path) == []


@pytest.mark.parametrize("path", [p for e in EDGES for p in sorted((REPO / e).rglob("*.py"))],
                         ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_airflow_task_writes_the_environment(path: Path) -> None:
    assert environment_writes(path) == []


def test_the_rules_see_each_kind_of_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom x import load, WeaviateSettings, Settings\n"
                   "a = os.environ.get('A')\nb = os.getenv('B')\nc = load(WeaviateSettings)\n"
                   "d = WeaviateSettings()\ne = Settings()\nf = load(WeaviateSettings, {})\n"
                   "os.environ['X'] = '1'\nos.environ.update({})\n")
    assert sorted(int(f.split(" ", 1)[0].split(":")[1]) for f in environment_reads(bad)) == [3, 4, 5, 6, 7, 9, 10]
    assert environment_writes(bad) == ["bad.py:9 os.environ[...] =", "bad.py:10 os.environ.update()"]
