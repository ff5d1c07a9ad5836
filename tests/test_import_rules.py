"""The library does not know its frameworks, nothing imports app or dags, and only the store imports weaviate."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
LIBRARY = ["newsrag", "ingest", "embeddings", "retrieval", "evaluation", "prompts"]
ALL_CODE = LIBRARY + ["app", "dags", "bench"]


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def files(packages: list[str]) -> list[Path]:
    return [p for pkg in packages for p in sorted((REPO / pkg).rglob("*.py"))]


@pytest.mark.parametrize("path", files(LIBRARY), ids=lambda p: str(p.relative_to(REPO)))
def test_library_never_imports_frameworks(path: Path) -> None:
    assert not imports_of(path) & {"airflow", "fastapi", "starlette"}


@pytest.mark.parametrize("path", files(LIBRARY + ["app", "dags"]), ids=lambda p: str(p.relative_to(REPO)))
def test_nothing_imports_app_or_dags(path: Path) -> None:
    """bench/ is a harness like tests/: it may start the app it measures."""
    own = path.relative_to(REPO).parts[0]
    forbidden = {"app", "dags"} - {own}
    assert not imports_of(path) & forbidden


def test_only_the_store_imports_weaviate() -> None:
    importers = [p.relative_to(REPO).as_posix() for p in files(ALL_CODE) if "weaviate" in imports_of(p)]
    assert importers == ["retrieval/store.py"]


def test_only_dags_import_airflow_and_only_app_imports_fastapi() -> None:
    airflow = {p.relative_to(REPO).parts[0] for p in files(ALL_CODE) if "airflow" in imports_of(p)}
    fastapi = {p.relative_to(REPO).parts[0] for p in files(ALL_CODE) if "fastapi" in imports_of(p)}
    assert airflow <= {"dags"}
    assert fastapi <= {"app"}


def test_rules_see_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("import airflow.sdk\nfrom fastapi import FastAPI\nimport weaviate.classes\n")
    assert imports_of(bad) == {"airflow", "fastapi", "weaviate"}
