"""The Airflow edge's hook: Connections and Variables become newsrag's root :class:`Settings`.

Modelled on the Weaviate provider's ``WeaviateHook``: a hook reads its Connection through
``BaseHook.get_connection`` and hands the library a ready object. Here the object is the root
settings, built from the worker's environment with the Connections' values over it (see
:mod:`newsrag.airflow.connections` for what each connection maps to). Nothing is written to
``os.environ``: two tasks in one worker process, or one task's retry, never see each other's values.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from airflow.sdk import BaseHook

from newsrag.airflow.connections import (
    DEFAULT_CONN_IDS,
    required_connections,
    settings_env,
    variable_names,
)
from newsrag.core.settings import Settings


class NewsragHook(BaseHook):
    """``NewsragHook(required=("weaviate_default",)).get_settings()`` -> :class:`Settings`."""

    hook_name = "newsrag"

    def __init__(self, conn_ids: Iterable[str] = DEFAULT_CONN_IDS, required: Iterable[str] = (),
                 variables: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.conn_ids, self.required, self.variables = tuple(conn_ids), tuple(required), variables

    def get_conn(self) -> Settings:
        return self.get_settings()

    def get_settings(self) -> Settings:
        """The worker's environment with the Connections' (then the Variables') settings over it.
        A missing required connection or an unusable one raises AirflowFailException (no retry)."""
        mapped = settings_env(self.conn_ids, self.required, self.variables)
        return Settings({**os.environ, **mapped})


def task_settings() -> Settings:
    """The settings every newsrag task body passes to the library: the deployment's required
    Connections (``NEWSRAG_REQUIRED_CONNECTIONS``) and Variables (``NEWSRAG_AIRFLOW_VARIABLES``)."""
    return NewsragHook(required=required_connections(), variables=variable_names() or None).get_settings()
