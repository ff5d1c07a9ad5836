"""The README's configuration tables and the settings cannot drift (#21 item 11): every variable of
every pydantic-settings class in the newsrag packages, every variable a DAG file reads and every
newsrag variable the DAG sections name is in a table of the Configuration section, in one row only;
and each variable there is one of those (no row for a setting that is gone)."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections import Counter
from collections.abc import Iterator

import pytest
from pydantic_settings import BaseSettings

from tests.conftest import REPO

pytestmark = pytest.mark.unit

PACKAGES = ("newsrag", "ingest", "retrieval", "embeddings", "evaluation", "prompts", "app")
NAME = re.compile(r"`((?:NEWSRAG|WEAVIATE|OPENAI|COHERE)_[A-Z0-9_]*[A-Z0-9])`")
# Variables the tables may leave out on purpose, each with the reason (none today: every setting
# has its row).
EXCLUDED: dict[str, str] = {}

# airflow_settings.yaml's values that scripts/airflow derives (from WEAVIATE_URL or the embedded
# server): a user sets WEAVIATE_URL / WEAVIATE_GRPC_URL, never these.
DERIVED = {"WEAVIATE_SCHEME", "WEAVIATE_HOST", "WEAVIATE_HTTP_PORT", "WEAVIATE_GRPC_HOST", "WEAVIATE_GRPC_PORT",
           "WEAVIATE_GRPC_SECURE"}


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def settings_classes() -> list[type[BaseSettings]]:
    """Every BaseSettings subclass defined in the newsrag packages (each module imported first)."""
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if not info.name.endswith("__main__"):  # runs the CLI
                importlib.import_module(info.name)
    return sorted({c for c in _subclasses(BaseSettings) if c.__module__.split(".")[0] in PACKAGES},
                  key=lambda c: f"{c.__module__}.{c.__name__}")


def env_names(cls: type[BaseSettings]) -> set[str]:
    """The variables a settings class reads: its alias, else env_prefix + field name, upper-case."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names = set()
    for name, field in cls.model_fields.items():
        alias = field.validation_alias if isinstance(field.validation_alias, str) else field.alias
        names.add((alias or prefix + name).upper())
    return names


def dag_file_names() -> set[str]:
    """Variables the DAG files and their helpers read from the environment, or from the root
    settings' captured environment (``settings.value("NAME")``)."""
    files = [*(REPO / "dags").glob("*.py"), *(REPO / "newsrag" / "airflow").glob("*.py")]
    pattern = re.compile(r"(?:environ(?:\.get)?[\[(]|\.value\()\s*\"([A-Z][A-Z0-9_]+)\"")
    return {m for f in files for m in pattern.findall(f.read_text())}


def airflow_settings_names() -> set[str]:
    """Variables airflow_settings.yaml reads (scripts/airflow, the compose init), but those that
    scripts/airflow derives itself from WEAVIATE_URL or the embedded server."""
    text = re.sub(r"#.*", "", (REPO / "airflow_settings.yaml").read_text())  # not the comments' examples
    names = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", text))
    return names - DERIVED


def section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


def table_names() -> list[str]:
    """The variables the first column of the Configuration section's tables names (with repeats)."""
    rows = [line for line in section("Configuration").splitlines() if line.startswith("| `")]
    return [name for row in rows for name in NAME.findall(row.split(" | ")[0])]


def test_every_setting_is_in_the_configuration_table() -> None:
    classes = settings_classes()
    assert len(classes) >= 20, [c.__name__ for c in classes]  # the walk found the packages' settings
    documented = set(table_names())
    missing = {f"{name} ({c.__module__}.{c.__name__})" for c in classes for name in env_names(c)
               if name not in documented and name not in EXCLUDED}
    assert not missing, "not in the README's Configuration table: " + ", ".join(sorted(missing))


def test_every_variable_a_dag_or_airflow_settings_reads_is_in_the_table() -> None:
    read = dag_file_names() | airflow_settings_names()
    assert {"NEWSRAG_INGEST_SCHEDULE", "NEWSRAG_EMBED_POOL", "NEWSRAG_EVAL_SCHEDULE",
            "NEWSRAG_EMBED_POOL_SLOTS"} <= read  # the scans work
    assert not read - set(table_names()), sorted(read - set(table_names()))


def test_every_variable_the_dag_sections_name_is_in_the_table() -> None:
    named = {n for title in ("Run the DAGs locally", "Ingestion", "Evaluation") for n in NAME.findall(section(title))}
    assert "NEWSRAG_INGEST_SOURCES_FILE" in named
    assert not named - set(table_names()), sorted(named - set(table_names()))


def test_each_variable_has_one_row_and_names_a_real_setting() -> None:
    names = table_names()
    assert not [n for n, k in Counter(names).items() if k > 1], Counter(names).most_common(5)
    known = {n for c in settings_classes() for n in env_names(c)} | dag_file_names() | airflow_settings_names()
    assert not set(names) - known, f"rows for variables nothing reads: {sorted(set(names) - known)}"
    assert set(EXCLUDED) <= known - set(names)  # an exclusion names a real setting that has no row
