"""Framework rules beside the import-linter layers (tests/test_layers.py): the library does not know its
frameworks, only the store imports weaviate, and every import uses the one ``newsrag`` namespace."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[1]
LIBRARY = ["ingest", "embeddings", "retrieval", "evaluation", "prompts", "newsrag/core", "newsrag/infra",
           "newsrag/store"]
EDGES = ["app", "dags", "newsrag/cli", "newsrag/airflow"]
ALL_CODE = LIBRARY + EDGES + ["bench", "tests"]
OLD_TOP_LEVEL = {"ingest", "embeddings", "retrieval", "evaluation", "prompts", "app", "newsrag_airflow"}


def imports_of(path: Path, depth: int = 1) -> set[str]:
    """The first ``depth`` parts of every absolute import, function-local ones included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {".".join(alias.name.split(".")[:depth]) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(".".join(node.module.split(".")[:depth]))
    return names


def files(packages: list[str]) -> list[Path]:
    return [p for pkg in packages for p in sorted((REPO / pkg).rglob("*.py"))]


def where(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


@pytest.mark.parametrize("path", files(LIBRARY), ids=where)
def test_library_never_imports_frameworks(path: Path) -> None:
    assert not imports_of(path) & {"airflow", "fastapi", "starlette"}


@pytest.mark.parametrize("path", files(ALL_CODE), ids=where)
def test_every_import_uses_the_newsrag_namespace(path: Path) -> None:
    assert not imports_of(path) & OLD_TOP_LEVEL


def test_only_the_store_imports_weaviate() -> None:
    importers = [where(p) for p in files(LIBRARY + EDGES + ["bench"]) if "weaviate" in imports_of(p)]
    assert importers == ["newsrag/store/weaviate.py", "newsrag/store/weaviate_client.py",
                         "newsrag/store/weaviate_schema.py"]


def test_only_the_airflow_edge_imports_airflow_and_only_app_imports_fastapi() -> None:
    code = files(LIBRARY + EDGES)
    airflow = {where(p).rsplit("/", 1)[0] for p in code if "airflow" in imports_of(p)}
    fastapi = {where(p).split("/")[0] for p in code if "fastapi" in imports_of(p)}
    assert airflow <= {"dags", "newsrag/airflow"}
    assert fastapi <= {"app"}


def test_rules_see_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("import airflow.sdk\nfrom fastapi import FastAPI\nimport weaviate.classes\n"
                   "def late():\n    from ingest.fetch import fetch\n")
    assert imports_of(bad) == {"airflow", "fastapi", "weaviate", "ingest"}
