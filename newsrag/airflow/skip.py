"""Skipping a task with its reason in the task log."""

from __future__ import annotations

import logging
from typing import NoReturn

from airflow.sdk.exceptions import AirflowSkipException

log = logging.getLogger(__name__)


def skip(reason: str) -> NoReturn:
    """Skip the task (no retry; its downstream tasks are skipped too). The reason is logged through
    the standard logging before Airflow's own "Skipping task" line, so every log handler shows it."""
    log.info("skipped: %s", reason)
    raise AirflowSkipException(reason)
