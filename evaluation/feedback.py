"""Durable answer log and user feedback (SQLite by default, PostgreSQL with a ``postgresql://``
location, through :mod:`newsrag.infra.sqldb`), read later by evaluation.

Every served answer is recorded under its trace id (question, answer, citations, prompt version),
so a thumbs-up or thumbs-down can be turned into a regression case or a review item. Records are
bounded (:func:`bounded_payload`): a hostile article cannot make one ask write megabytes.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.core.errors import NewsragError, StoreError
from newsrag.core.settings import Settings, store_location
from newsrag.infra.redaction import display_url
from newsrag.infra.sqldb import SqlDb, is_postgres

SCHEMA_LOCK = "newsrag.feedback.schema"
ANSWER_COLUMNS = ("trace_id", "created_at", "question", "answer", "abstained", "prompt_name", "prompt_version",
                  "arm", "generator", "model", "payload")
# A served answer logged again under its trace id replaces the earlier record (its feedback stays).
RECORD_ANSWER = (f"INSERT INTO answers VALUES ({','.join('?' * len(ANSWER_COLUMNS))}) ON CONFLICT (trace_id) "
                 "DO UPDATE SET " + ", ".join(f"{c}=excluded.{c}" for c in ANSWER_COLUMNS[1:]))


def schema(identity: str) -> list[str]:
    return [
        """CREATE TABLE IF NOT EXISTS answers (trace_id TEXT PRIMARY KEY, created_at TEXT NOT NULL,
           question TEXT NOT NULL, answer TEXT NOT NULL, abstained INTEGER NOT NULL, prompt_name TEXT,
           prompt_version TEXT, arm TEXT, generator TEXT, model TEXT, payload TEXT NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS feedback (id {identity}, trace_id TEXT NOT NULL,
           created_at TEXT NOT NULL, rating INTEGER NOT NULL CHECK (rating IN (-1, 1)), comment TEXT,
           user_key TEXT, FOREIGN KEY (trace_id) REFERENCES answers(trace_id))""",
    ]


QUESTION_CHARS = 16_000
TEXT_CHARS = 16_000  # the answer text
FIELD_CHARS = {"text": TEXT_CHARS, "title": 500, "quote": 1_000, "url": 2_048}
OTHER_CHARS = 1_000  # any other string: ids, names, versions
COMMENT_CHARS = 2_000  # a feedback comment (the app refuses longer ones)
PAYLOAD_CHARS = 64 * 1024  # the stored JSON (ASCII: json.dumps escapes the rest)
TEXT_FLOOR = 2_000  # the answer text keeps this much before citations are dropped
TRUNCATED = " …[truncated]"


class UnknownTrace(NewsragError):
    """Feedback for a trace id this store never served."""


@dataclass(frozen=True)
class FeedbackRecord:
    trace_id: str
    rating: int
    comment: str | None
    created_at: str
    question: str
    answer: str
    prompt_name: str | None
    prompt_version: str | None
    arm: str | None
    payload: dict[str, Any]


class FeedbackStore:
    """``location``: a SQLite path or a ``postgresql://`` URL."""

    def __init__(self, location: str | Path) -> None:
        self.location = str(location)
        self._db = SqlDb(self.location, what="feedback store")
        self.errors = self._db.errors  # what a query may raise (sqlite3 or psycopg errors)
        with self._db.transaction(lock=SCHEMA_LOCK):
            for stmt in schema(self._db.identity):
                self._db.execute(stmt)

    def record_answer(self, answer: Any, question: str, arm: str | None = None) -> None:
        """Log an ``newsrag.retrieval.answer.Answer`` (anything with its fields and ``model_dump``)."""
        payload = bounded_payload(answer.model_dump(mode="json"))
        row = (answer.trace_id, _now(), bounded(question, QUESTION_CHARS), payload.get("text", ""),
               int(answer.abstained), *(_other(v) for v in (answer.prompt_name, answer.prompt_version, arm,
                                                            answer.generator, answer.model)), json.dumps(payload))
        self._db.execute(RECORD_ANSWER, row)

    def add_feedback(self, trace_id: str, rating: int, comment: str | None = None, user_key: str | None = None) -> int:
        if rating not in (-1, 1):
            raise ValueError("rating must be 1 (thumbs up) or -1 (thumbs down)")
        with self._db.transaction():
            if not self._db.execute("SELECT 1 FROM answers WHERE trace_id=?", (trace_id,)):
                raise UnknownTrace(f"no answer with trace id {trace_id!r} was served")
            rows = self._db.execute("INSERT INTO feedback (trace_id, created_at, rating, comment, user_key) "
                                    "VALUES (?,?,?,?,?) RETURNING id",
                                    (trace_id, _now(), rating, _other(comment, COMMENT_CHARS), user_key))
        return int(rows[0][0])

    def feedback(self) -> list[FeedbackRecord]:
        rows = self._db.execute(
            "SELECT f.trace_id, f.rating, f.comment, f.created_at, a.question, a.answer, a.prompt_name, "
            "a.prompt_version, a.arm, a.payload FROM feedback f JOIN answers a USING (trace_id) ORDER BY f.id")
        return [FeedbackRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], json.loads(r[9])) for r in rows]

    def answer(self, trace_id: str) -> dict[str, Any] | None:
        rows = self._db.execute("SELECT payload FROM answers WHERE trace_id=?", (trace_id,))
        return json.loads(rows[0][0]) if rows else None

    def close(self) -> None:
        self._db.close()


class FeedbackSettings(BaseSettings):
    """Where the app logs answers and feedback: its own ``NEWSRAG_APP_FEEDBACK_DB``, default
    ``$NEWSRAG_HOME/feedback.sqlite`` (read here too, so the evaluation report finds it)."""

    model_config = SettingsConfigDict(env_prefix="NEWSRAG_APP_", extra="ignore")

    feedback_db: str | None = None  # a SQLite path or a postgresql:// URL


def feedback_location(settings: Settings) -> str:
    """The app's feedback store: ``NEWSRAG_APP_FEEDBACK_DB``, else ``NEWSRAG_DATABASE_URL``, else
    ``$NEWSRAG_HOME/feedback.sqlite``."""
    return store_location(settings, settings.get(FeedbackSettings).feedback_db, "feedback.sqlite")


def read_feedback(location: str | Path) -> list[FeedbackRecord]:
    """Every feedback record of the store at ``location`` (the app's: :func:`feedback_location`),
    oldest first; none when the app never wrote one (no SQLite file, which is then not created). A
    store that is not a readable feedback store raises :class:`StoreError` naming it."""
    where = str(location)
    if not is_postgres(where) and not Path(where.removeprefix("sqlite:///")).exists():
        return []
    try:
        store = FeedbackStore(where)
    except sqlite3.Error as exc:  # not a SQLite database at all
        raise _unreadable(where, exc) from exc
    try:
        return store.feedback()
    except store.errors as exc:
        raise _unreadable(where, exc) from exc
    finally:
        store.close()


def _unreadable(where: str, exc: Exception) -> StoreError:
    return StoreError(f"feedback store {display_url(where)} is unreadable: {type(exc).__name__}: {exc}")


def bounded(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marker included, and made storable: a lone surrogate,
    which neither database can encode, and a NUL, which PostgreSQL text cannot hold, become "?"."""
    if len(text) > limit:
        text = text[: max(0, limit - len(TRUNCATED))] + TRUNCATED
    text = text.replace("\x00", "?")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _other(value: str | None, limit: int = OTHER_CHARS) -> str | None:
    return None if value is None else bounded(value, limit)


def bounded_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """An answer's JSON with every string cut to its field's cap (``FIELD_CHARS``, else
    ``OTHER_CHARS``), then, while it is still over ``PAYLOAD_CHARS``, halved: the retrieval list,
    the text down to ``TEXT_FLOOR``, the citations, then the text further. ``truncated`` says so."""
    out: dict[str, Any] = _bound_strings(payload)
    while len(json.dumps(out)) > PAYLOAD_CHARS and _shrink(out):
        out["truncated"] = True
    return out


def _bound_strings(value: Any, field: str | None = None) -> Any:
    if isinstance(value, str):
        return bounded(value, FIELD_CHARS.get(field or "", OTHER_CHARS))
    if isinstance(value, dict):
        return {k: _bound_strings(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_bound_strings(v, field) for v in value]
    return value


def _shrink(out: dict[str, Any]) -> bool:
    """One cut towards the size cap; False when nothing is left to cut."""
    return (_halve_list(out, "retrieval") or _halve_text(out, TEXT_FLOOR) or _halve_list(out, "citations")
            or _halve_text(out, 0))


def _halve_list(out: dict[str, Any], key: str) -> bool:
    items = out.get(key)
    if not isinstance(items, list) or not items:
        return False
    out[key] = items[: len(items) // 2]
    return True


def _halve_text(out: dict[str, Any], floor: int) -> bool:
    text = out.get("text")
    if not isinstance(text, str) or len(text) <= max(floor, 2 * len(TRUNCATED)):
        return False
    out["text"] = bounded(text, max(floor, len(text) // 2))
    return True


def _now() -> str:
    return datetime.now(UTC).isoformat()
