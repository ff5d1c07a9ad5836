"""Golden question sets (JSONL, one :class:`GoldenCase` per line) and cases mined from feedback.

A line looks like ``examples/news/questions.jsonl``::

    {"id": "q01", "question": "...", "reference_answer": "...", "gold_urls": ["https://..."],
     "gold_spans": ["voted 7-4 late Tuesday"], "tags": ["transit"], "answerable": true}

A case may carry ``"as_of": "2026-10-19"`` (or a time): it is evaluated as of that instant (a date:
the end of that day, UTC; see :func:`newsrag.retrieval.dates.as_of_point`), as when it was asked.

:func:`load_golden` checks every line and raises one :class:`GoldenSetError` listing the bad ones
(``file:line: reason``), so a broken set is fixed in one pass. Blank lines are skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from newsrag.core.errors import NewsragError
from newsrag.core.settings import Settings
from newsrag.evaluation.feedback import FeedbackRecord, feedback_location, read_feedback
from newsrag.infra.redaction import display_url
from newsrag.retrieval.dates import InvalidDate, as_of_point

MAX_LISTED_ERRORS = 20
FEEDBACK_SPAN_WORDS = 20


class GoldenSetError(NewsragError):
    """A golden set file is unusable. ``errors`` holds every ``file:line: reason``."""

    def __init__(self, path: str | Path, errors: list[str]) -> None:
        self.path = str(path)
        self.errors = list(errors)
        shown = "\n  ".join(self.errors[:MAX_LISTED_ERRORS])
        more = "" if len(self.errors) <= MAX_LISTED_ERRORS else \
            f"\n  (+{len(self.errors) - MAX_LISTED_ERRORS} more)"
        super().__init__(f"golden set {self.path}: {len(self.errors)} problem(s):\n  {shown}{more}")


class GoldenCase(BaseModel):
    """One question. ``type`` defaults to "unanswerable" when not answerable, else "fact"."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    question: str
    reference_answer: str | None = None
    gold_urls: list[str] = Field(default_factory=list)
    gold_doc_ids: list[str] = Field(default_factory=list)
    gold_spans: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    answerable: bool = True
    type: str | None = None
    as_of: datetime | None = None  # asked as of this instant (UTC); None: the moment of evaluation

    @field_validator("question")
    @classmethod
    def _question_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("question is empty")
        return v.strip()

    @field_validator("as_of", mode="before")
    @classmethod
    def _as_of_rule(cls, v: Any) -> Any:
        """The API's rule (a date is the end of its day), without the API's "not in the future":
        the set is read at evaluation time, when a replayed moment is always past."""
        if v is not None and not isinstance(v, str | datetime):
            raise ValueError(f"expected a date or a time, got {type(v).__name__}")
        return parse_as_of(v)

    @model_validator(mode="after")
    def _derive_and_check(self) -> GoldenCase:
        if self.type is None:
            self.type = "fact" if self.answerable else "unanswerable"
        if self.answerable and not self.has_gold:
            raise ValueError("answerable case has no gold evidence (gold_urls, gold_doc_ids or gold_spans)")
        return self

    @property
    def has_gold(self) -> bool:
        return bool(self.gold_urls or self.gold_doc_ids or any(s.strip() for s in self.gold_spans))


@dataclass(frozen=True)
class GoldenSet:
    cases: list[GoldenCase]
    path: Path
    sha256: str  # of the file's bytes: a run records which version of the set it used

    def __len__(self) -> int:
        return len(self.cases)

    def __iter__(self) -> Iterator[GoldenCase]:
        return iter(self.cases)

    @property
    def answerable(self) -> list[GoldenCase]:
        return [c for c in self.cases if c.answerable]

    def by_id(self, case_id: str) -> GoldenCase:
        for case in self.cases:
            if case.id == case_id:
                return case
        raise KeyError(case_id)

    def sample(self, n: int, seed: int = 0) -> list[GoldenCase]:
        """``n`` cases drawn without replacement with ``random.Random(seed)``, kept in file order;
        all cases when ``n`` >= the set's size."""
        if n < 0:
            raise ValueError(f"sample size must be >= 0 (got {n})")
        if n >= len(self.cases):
            return list(self.cases)
        chosen = set(random.Random(seed).sample(range(len(self.cases)), n))
        return [c for i, c in enumerate(self.cases) if i in chosen]


def parse_as_of(value: str | datetime | None) -> datetime | None:
    """A case's ``as_of`` in UTC: the rule of :func:`~newsrag.retrieval.dates.as_of_point`, with no
    upper bound (``datetime.max`` as now)."""
    try:
        return as_of_point(value, datetime.max.replace(tzinfo=UTC) - timedelta(days=1), name="")
    except InvalidDate as exc:
        raise ValueError(str(exc)) from None


def _reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown field {field!r}")
        elif err["type"] == "missing":
            parts.append(f"missing field {field!r}")
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            parts.append(f"{field}: {msg}" if field else msg)
    return "; ".join(parts)


def shipped_golden_path() -> Path:
    """The golden set shipped inside the package (``evaluation/data/questions.jsonl``, the same
    bytes as ``examples/news/questions.jsonl``): the default, found wherever the process starts."""
    return Path(str(resources.files("newsrag.evaluation") / "data" / "questions.jsonl"))


def resolve_golden_path(path: str | Path) -> Path:
    """A relative golden-set path (``--golden``, ``NEWSRAG_EVAL_GOLDEN_PATH``, a DAG Param) resolves
    against the current directory, like every other path newsrag is given; an absolute one is kept."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else Path.cwd() / path


def _unreadable(given: str | Path, resolved: Path, exc: OSError) -> GoldenSetError:
    """The error names the resolved path and, for a relative one, the directory it resolved against."""
    base = "" if Path(given).expanduser().is_absolute() else (
        f" (the relative path {given} resolves against the current directory {Path.cwd()}; give an absolute "
        "path, or leave NEWSRAG_EVAL_GOLDEN_PATH unset for the golden set shipped with newsrag)")
    return GoldenSetError(resolved, [f"{resolved}: cannot read: {exc.strerror or exc}{base}"])


def load_golden(path: str | Path) -> GoldenSet:
    """Read and validate a JSONL golden set (a relative ``path``: see :func:`resolve_golden_path`).
    Raises :class:`GoldenSetError` naming every bad line (invalid JSON, not an object, unknown or
    missing field, empty question, duplicate id, an answerable case without gold evidence) or an
    empty set; a missing file too, with the resolved path."""
    given, path = path, resolve_golden_path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _unreadable(given, path, exc) from None
    cases: list[GoldenCase] = []
    errors: list[str] = []
    first_line: dict[str, int] = {}
    for lineno, raw in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors.append(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            errors.append(f"{where}: expected a JSON object, got {type(obj).__name__}")
            continue
        try:
            case = GoldenCase.model_validate(obj)
        except ValidationError as exc:
            label = f" (id {obj['id']!r})" if isinstance(obj.get("id"), str) else ""
            errors.append(f"{where}{label}: {_reason(exc)}")
            continue
        if case.id in first_line:
            errors.append(f"{where}: duplicate id {case.id!r} (first on line {first_line[case.id]})")
            continue
        first_line[case.id] = lineno
        cases.append(case)
    if not cases and not errors:
        errors.append(f"{path}: no cases")
    if errors:
        raise GoldenSetError(path, errors)
    return GoldenSet(cases=cases, path=path, sha256=hashlib.sha256(data).hexdigest())


# -- feedback -> cases -------------------------------------------------------------------------


def _truncate_words(text: str, limit: int = FEEDBACK_SPAN_WORDS) -> str:
    return " ".join(text.split()[:limit])


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


def cases_from_feedback(records: list[FeedbackRecord]) -> tuple[list[GoldenCase], list[dict[str, Any]]]:
    """Thumbs-up answers become regression cases, thumbs-down ones review items.

    A thumbs-up answer with citations gives a case ``feedback-<trace id>``: ``gold_urls`` = its
    cited urls, ``gold_spans`` = its cited quotes cut to 20 words, ``reference_answer`` = its text,
    tags ``["feedback"]``. A thumbs-up abstention gives an unanswerable case. A thumbs-up answer
    without citations cannot be a case (no evidence) and becomes a review item. Review items are
    dicts with trace_id, question, answer, comment, rating, prompt_name, prompt_version, created_at
    and reason. Several ratings of one trace give one case (the first thumbs-up)."""
    cases: list[GoldenCase] = []
    review: list[dict[str, Any]] = []
    seen: set[str] = set()
    for rec in records:
        payload: Mapping[str, Any] = rec.payload or {}
        if rec.rating < 0:
            review.append(_review_item(rec, "thumbs-down"))
            continue
        if rec.trace_id in seen:
            continue
        citations = [c for c in payload.get("citations") or [] if isinstance(c, dict)]
        abstained = bool(payload.get("abstained"))
        if not abstained and not citations:
            review.append(_review_item(rec, "thumbs-up answer without citations"))
            continue
        seen.add(rec.trace_id)
        cases.append(GoldenCase(
            id=f"feedback-{rec.trace_id}",
            question=rec.question,
            reference_answer=None if abstained else rec.answer,
            gold_urls=_unique(str(c.get("url") or "") for c in citations),
            gold_spans=_unique(_truncate_words(str(c.get("quote") or "")) for c in citations),
            tags=["feedback"],
            answerable=not abstained,
        ))
    return cases, review


@dataclass(frozen=True)
class FeedbackExport:
    """What :func:`export_feedback` wrote: how many records it read, cases and review items."""

    source: str  # the store's location, any password masked
    records: int
    cases: int
    review: int


def export_feedback(cases_path: str | Path, review_path: str | Path, feedback_path: str | Path | None = None,
                    settings: Settings | None = None) -> FeedbackExport:
    """The app's feedback store (``feedback_path``, default: ``settings``' ``NEWSRAG_APP_FEEDBACK_DB``,
    :func:`~newsrag.evaluation.feedback.feedback_location`) through :func:`cases_from_feedback`:
    regression cases to ``cases_path`` (golden-set JSONL, to review and append to a golden set) and
    review items to ``review_path`` (both written atomically, empty when there is nothing). A file
    that is not a feedback store raises ``StoreError``."""
    source = str(feedback_path) if feedback_path is not None else feedback_location(settings or Settings({}))
    records = read_feedback(source)
    cases, review = cases_from_feedback(records)
    return FeedbackExport(display_url(source), len(records), write_jsonl(cases_path, cases),
                          write_jsonl(review_path, review))


def _review_item(rec: FeedbackRecord, reason: str) -> dict[str, Any]:
    return {"trace_id": rec.trace_id, "question": rec.question, "answer": rec.answer,
            "comment": rec.comment, "rating": rec.rating, "prompt_name": rec.prompt_name,
            "prompt_version": rec.prompt_version, "created_at": rec.created_at, "reason": reason}


def write_jsonl(path: str | Path, items: Iterable[GoldenCase | BaseModel | Mapping[str, Any]]) -> int:
    """Write one JSON object per line (models through ``model_dump(mode="json")``), atomically
    (temp file + rename), creating the folder. Returns the number of lines."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for item in items:
        obj = item.model_dump(mode="json") if isinstance(item, BaseModel) else dict(item)
        lines.append(json.dumps(obj, ensure_ascii=False))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(lines)
