"""Build this checkout's wheel the way `pip wheel --no-build-isolation .` does (uv's venvs have no pip)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# What the build reads: the package (its subpackages are symlinks to these folders) and the metadata.
SOURCES = ("newsrag", "ingest", "embeddings", "retrieval", "evaluation", "prompts", "app")


def build_wheel(tmp_path: Path) -> Path:
    """Copy the sources (symlinks kept, as a clone has them) and call setuptools' PEP 517 hook."""
    src, dist = tmp_path / "src", tmp_path / "dist"
    for folder in SOURCES:
        shutil.copytree(REPO / folder, src / folder, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    dist.mkdir()
    build = f"import setuptools.build_meta as b; b.build_wheel({str(dist)!r})"
    subprocess.run([sys.executable, "-c", build], cwd=src, check=True, capture_output=True, timeout=300)
    [wheel] = dist.glob("newsrag-*.whl")
    return wheel
