"""Durable history of evaluation runs: SQLite by default, PostgreSQL with a ``postgresql://`` URL.

Two tables, written by :meth:`HistoryStore.save` in one transaction (a crash mid-save leaves the
earlier runs as they were and no partial run):

* ``eval_runs`` - one row per run: identity columns (started_at, status, golden_sha256, prompt,
  generator, model, collection, object_count), ``headline`` (JSON ``{metric: mean}``) and
  ``run_json`` (the whole :class:`EvalRun`).
* ``eval_results`` - one row per question of a run (case id, position, error, failure reason,
  ``metrics`` JSON ``{metric: value}``, the whole :class:`QuestionResult`), for per-question history.

Times are stored as fixed-width UTC ISO strings, so ordering by ``started_at`` is chronological in
both databases. The same SQL runs on both (the connection layer is :mod:`newsrag.infra.sqldb`, shared
with the prompt registry).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.core.errors import ConfigError, StoreError
from newsrag.core.settings import PathSettings, Settings, store_location
from newsrag.evaluation.golden import shipped_golden_path
from newsrag.evaluation.models import EvalRun
from newsrag.infra.redaction import display_url
from newsrag.infra.sqldb import SqlDb

__all__ = ["EvalSettings", "HistoryStore", "RunSummary", "display_url", "history_location", "reports_path"]

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS eval_runs (run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL,
       finished_at TEXT, status TEXT NOT NULL, golden_path TEXT, golden_sha256 TEXT NOT NULL,
       prompt_name TEXT, prompt_version TEXT, generator TEXT, model TEXT, collection TEXT,
       object_count INTEGER, headline TEXT NOT NULL, run_json TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS eval_runs_started ON eval_runs (started_at)",
    """CREATE TABLE IF NOT EXISTS eval_results (run_id TEXT NOT NULL REFERENCES eval_runs (run_id),
       case_id TEXT NOT NULL, position INTEGER NOT NULL, error TEXT, failure_reason TEXT,
       metrics TEXT NOT NULL, result_json TEXT NOT NULL, PRIMARY KEY (run_id, case_id))""",
    "CREATE INDEX IF NOT EXISTS eval_results_case ON eval_results (case_id)",
]
RUN_COLUMNS = ("run_id, started_at, finished_at, status, golden_path, golden_sha256, prompt_name, "
               "prompt_version, generator, model, collection, object_count, headline, run_json")
SUMMARY_COLUMNS = ("run_id, started_at, status, golden_sha256, prompt_name, prompt_version, generator, "
                   "model, collection, object_count, headline")


class EvalSettings(BaseSettings):
    """Where evaluation keeps its state (``NEWSRAG_EVAL_*``; thresholds: regression.RegressionSettings)."""

    model_config = SettingsConfigDict(env_prefix="NEWSRAG_EVAL_", extra="ignore")

    history_url: str | None = None  # sqlite path or postgresql:// URL; default $NEWSRAG_HOME/eval-history.sqlite
    reports_dir: Path | None = None  # default $NEWSRAG_HOME/reports
    # Default: the golden set shipped inside the package (found wherever the process starts); a
    # relative path set here resolves against the current directory (newsrag.evaluation.golden.load_golden).
    golden_path: Path = Field(default_factory=shipped_golden_path)
    batch_size: int = Field(10, ge=1, le=1000)  # questions per mapped task in the DAG
    # What answers: set it to the app's NEWSRAG_APP_GENERATOR (e.g. openai) to measure what users
    # get; an LLM generator renders the registry's active version of prompt_name.
    generator: str = "extractive"
    prompt_name: str = "news-answer"


def history_location(settings: Settings) -> str:
    """``NEWSRAG_EVAL_HISTORY_URL``, else ``NEWSRAG_DATABASE_URL``, else ``$NEWSRAG_HOME/eval-history.sqlite``."""
    return store_location(settings, settings.get(EvalSettings).history_url, "eval-history.sqlite")


def reports_path(settings: Settings) -> Path:
    """``NEWSRAG_EVAL_REPORTS_DIR``, else ``$NEWSRAG_HOME/reports``."""
    return settings.get(EvalSettings).reports_dir or settings.get(PathSettings).home / "reports"


def _ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")


def _headline(run: EvalRun) -> dict[str, float | None]:
    return {name: agg.mean for name, agg in run.aggregates.items()}


@dataclass(frozen=True)
class RunSummary:
    """A run without its questions (cheap to list)."""

    run_id: str
    started_at: datetime
    status: str
    golden_sha256: str
    prompt_name: str | None
    prompt_version: str | None
    generator: str | None
    model: str | None
    collection: str | None
    object_count: int | None
    headline: dict[str, float | None]


class HistoryStore:
    """Evaluation runs over time. ``location``: a sqlite path or a ``postgresql://`` URL (the
    configured one: :func:`history_location`)."""

    def __init__(self, location: str | Path) -> None:
        self.location = str(location)
        if not self.location:
            raise ConfigError("NEWSRAG_EVAL_HISTORY_URL: empty location")
        self._lock = threading.RLock()
        self._db = SqlDb(self.location, what="evaluation history")
        with self._lock, self._db.transaction(lock="newsrag.eval_history.schema"):
            for stmt in SCHEMA:
                self._db.execute(stmt)

    def __repr__(self) -> str:
        return f"HistoryStore({display_url(self.location)!r})"

    # -- writes --------------------------------------------------------------------------------

    def save(self, run: EvalRun) -> None:
        """Insert or replace ``run`` and its questions, all in one transaction (StoreError when the
        database refuses; nothing of the run is then stored)."""
        try:
            self._save(run)
        except self._db.errors as exc:
            raise StoreError(f"evaluation history {display_url(self.location)}: run {run.run_id} not saved: "
                             f"{type(exc).__name__}: {exc}") from None

    def _save(self, run: EvalRun) -> None:
        with self._lock, self._db.transaction():
            self._db.execute("DELETE FROM eval_results WHERE run_id = ?", (run.run_id,))
            self._db.execute("DELETE FROM eval_runs WHERE run_id = ?", (run.run_id,))
            self._db.execute(f"INSERT INTO eval_runs ({RUN_COLUMNS}) VALUES ({', '.join('?' * 14)})", (
                run.run_id, _ts(run.started_at), _ts(run.finished_at), run.status, run.golden_path,
                run.golden_sha256, run.prompt_name, run.prompt_version, run.generator, run.model,
                run.index.collection, run.index.object_count, json.dumps(_headline(run)),
                run.model_dump_json()))
            for position, r in enumerate(run.results):
                metrics = {name: m.value for name, m in r.metrics.items()}
                self._db.execute(
                    "INSERT INTO eval_results (run_id, case_id, position, error, failure_reason, metrics, "
                    "result_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run.run_id, r.case_id, position, r.error, r.failure_reason, json.dumps(metrics),
                     r.model_dump_json()))

    # -- reads ---------------------------------------------------------------------------------

    def _runs(self, where: str = "", params: Sequence[Any] = (), order: str = "DESC",
              limit: int | None = None) -> list[EvalRun]:
        sql = f"SELECT run_json FROM eval_runs {where} ORDER BY started_at {order}, run_id {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._db.execute(sql, params)
        return [EvalRun.model_validate_json(r[0]) for r in rows]

    @staticmethod
    def _sha_filter(golden_sha256: str | None, clauses: list[str], params: list[Any]) -> str:
        if golden_sha256 is not None:
            clauses.append("golden_sha256 = ?")
            params.append(golden_sha256)
        return ("WHERE " + " AND ".join(clauses)) if clauses else ""

    def get(self, run_id: str) -> EvalRun | None:
        runs = self._runs("WHERE run_id = ?", (run_id,))
        return runs[0] if runs else None

    def list_runs(self, limit: int = 20, *, golden_sha256: str | None = None) -> list[EvalRun]:
        """The newest ``limit`` runs, newest first."""
        params: list[Any] = []
        return self._runs(self._sha_filter(golden_sha256, [], params), params, limit=limit)

    def summaries(self, limit: int = 50, *, golden_sha256: str | None = None) -> list[RunSummary]:
        """Like :meth:`list_runs` without loading the questions."""
        params: list[Any] = []
        where = self._sha_filter(golden_sha256, [], params)
        with self._lock:
            rows = self._db.execute(f"SELECT {SUMMARY_COLUMNS} FROM eval_runs {where} "
                                    f"ORDER BY started_at DESC, run_id DESC LIMIT {int(limit)}", params)
        return [RunSummary(run_id=r[0], started_at=datetime.fromisoformat(r[1]), status=r[2], golden_sha256=r[3],
                           prompt_name=r[4], prompt_version=r[5], generator=r[6], model=r[7], collection=r[8],
                           object_count=r[9], headline=json.loads(r[10])) for r in rows]

    def previous(self, run: EvalRun) -> EvalRun | None:
        """The newest run started before ``run`` on the same golden set (same sha256)."""
        runs = self._runs("WHERE golden_sha256 = ? AND started_at < ? AND run_id <> ?",
                          (run.golden_sha256, _ts(run.started_at), run.run_id), limit=1)
        return runs[0] if runs else None

    def last_good(self, golden_sha256: str | None = None, *, before: datetime | None = None) -> EvalRun | None:
        """The newest run with status "ok" (on that golden set, started before ``before``)."""
        clauses: list[str] = ["status = ?"]
        params: list[Any] = ["ok"]
        if before is not None:
            clauses.append("started_at < ?")
            params.append(_ts(before))
        runs = self._runs(self._sha_filter(golden_sha256, clauses, params), params, limit=1)
        return runs[0] if runs else None

    def best(self, metric: str, *, golden_sha256: str | None = None) -> EvalRun | None:
        """The run with the highest mean of ``metric`` (the newest on a tie); None if none has it."""
        params: list[Any] = []
        where = self._sha_filter(golden_sha256, [], params)
        with self._lock:
            rows = self._db.execute(f"SELECT run_id, headline FROM eval_runs {where} "
                                    "ORDER BY started_at DESC, run_id DESC", params)
        scored = [(json.loads(h).get(metric), rid) for rid, h in rows]
        scored = [(v, rid) for v, rid in scored if v is not None]
        if not scored:
            return None
        best_value = max(v for v, _ in scored)
        return self.get(next(rid for v, rid in scored if v == best_value))

    def trend(self, metric: str, limit: int = 50, *,
              golden_sha256: str | None = None) -> list[tuple[datetime, float | None]]:
        """``(started_at, mean of metric)`` for the newest ``limit`` runs, oldest first (None when
        a run did not measure it)."""
        return [(s.started_at, s.headline.get(metric))
                for s in reversed(self.summaries(limit, golden_sha256=golden_sha256))]

    def case_history(self, case_id: str, limit: int = 20) -> list[tuple[str, datetime, dict[str, float | None],
                                                                         str | None]]:
        """``(run_id, started_at, {metric: value}, failure_reason)`` of one question, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT r.run_id, r.started_at, q.metrics, q.failure_reason FROM eval_results q "
                "JOIN eval_runs r ON r.run_id = q.run_id WHERE q.case_id = ? "
                f"ORDER BY r.started_at DESC LIMIT {int(limit)}", (case_id,))
        return [(r[0], datetime.fromisoformat(r[1]), json.loads(r[2]), r[3]) for r in rows]

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
