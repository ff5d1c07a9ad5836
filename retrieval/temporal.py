"""Temporal expressions in news questions (#14 item 2): "today", "last week", "in October", "since
March 3", "the latest ..." become a date window or a recency prior, relative to ``as_of``.

- A window is half-open, ``[since, until)``, in aware UTC datetimes, computed on the calendar of the
  user's time zone ``tz``: "today" asked at 2026-12-08T01:00Z from America/New_York is 7 December
  there. Weeks start on Monday (ISO). A "since" window is open-ended (``until`` is None); the query
  path cuts it at ``as_of``.
- "on Monday" (and "since Monday") is the most recent Monday on or before ``as_of``'s date, so on a
  Monday it is today; "last Monday" / "this past Monday" is the one strictly before today.
- "in October" is the most recent October that has started by ``as_of``; "in October 2023" and
  "in 2023" name theirs. "since <date>" reads ISO dates and month-name dates ("March 3rd",
  "3 March 2026", "Oct. 5, 2025"); a date without a year is its latest occurrence on or before
  ``as_of``. Numeric dates like 03/04/2026 are not read: which is the month is a guess.
- A window that starts after ``as_of`` ("since 2027-01-01" asked in 2026, "in 2030") raises
  :class:`InvalidWindow` naming ``question``: nothing can have been published in it yet, and an error
  that says so is more useful than an empty answer that does not.
- "the latest", "newest", "most recent" and "recent", "recently", "lately" set the recency prior; a
  question with no cue gets ``kind="default"``. How strongly each prior weighs is the ranker's choice.

Library: python-dateutil (already installed with matplotlib and trafilatura; declared since we import
it). ``relativedelta`` does the calendar arithmetic (month steps across years, "the Monday on or
before") and ``dateutil.parser`` reads the date after "since"/"on" once a regex has found it.
dateparser (also installed, through htmldate) was not used: it resolves "last week" to an instant seven
days back, not an ISO week, so the windows would still be ours; its ``search_dates`` finds false dates
in ordinary words ("may", "second"), and it is slow to load. Small regexes find the phrases instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import parser as date_parser
from dateutil.relativedelta import FR, MO, SA, SU, TH, TU, WE, relativedelta

from newsrag.retrieval.dates import DateInput, InvalidDate, since_bound, until_bound

Kind = Literal["today", "yesterday", "weekday", "date", "this_week", "last_week", "this_month",
               "last_month", "this_year", "last_year", "month", "year", "since", "latest", "recent",
               "default"]
Recency = Literal["latest", "recent", "default", "none"]  # "none": a window names the time instead
Source = Literal["explicit", "question", "none"]
Resolver = Callable[[re.Match[str], date], tuple[date, date]]

_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAYS = (MO, TU, WE, TH, FR, SA, SU)
_MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
                "october", "november", "december")
_MONTHS = ({name: i + 1 for i, name in enumerate(_MONTH_NAMES)}
           | {name[:3]: i + 1 for i, name in enumerate(_MONTH_NAMES)} | {"sept": 9})
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\b\.?"
_YEAR = r"(?P<year>(?:19|20)\d{2})"
_DAY_NUM = r"\d{1,2}(?:st|nd|rd|th)?"
_MONTH_TEXT = _MONTH.replace("?P<month>", "?:")  # the same names, without a group of its own
_DATE = (rf"(?P<date>\d{{4}}-\d{{2}}-\d{{2}}|{_MONTH_TEXT}\s+{_DAY_NUM}(?:,?\s+\d{{4}})?"
         rf"|{_DAY_NUM}\s+(?:of\s+)?{_MONTH_TEXT}(?:,?\s+\d{{4}})?)")
_CORE: dict[Kind, str] = {  # each expression without the word that introduces it ("on", "in", "since")
    "today": r"today", "yesterday": r"yesterday",
    "this_week": r"this\s+week", "last_week": r"(?:last|previous)\s+week",
    "this_month": r"this\s+month", "last_month": r"(?:last|previous)\s+month",
    "this_year": r"this\s+year", "last_year": r"(?:last|previous)\s+year",
    "weekday": r"(?:(?P<rel>last|this\s+past)\s+)?(?P<day>" + "|".join(_DAYS) + ")",
    "date": _DATE, "month": _MONTH + rf"(?:,?\s+{_YEAR})?", "year": _YEAR,
}
_LEAD: dict[Kind, str] = {  # standing alone, these need their preposition: "Friday" in "Black Friday" is no date
    "weekday": r"(?=(?:on|last|this\s+past)\s)(?:on\s+)?", "date": r"on\s+",
    "month": r"(?:in|during)\s+", "year": r"(?:in|during)\s+",
}
_I = re.IGNORECASE
_LATEST = re.compile(r"\b(?:the\s+)?(?:very\s+)?(?:latest|newest|most\s+recent(?:ly)?)\b", _I)
_RECENT = re.compile(r"\b(?:recent(?:ly)?|lately|these\s+days|nowadays)\b", _I)


class InvalidWindow(InvalidDate):
    """A time window that cannot be used; ``field`` names the input at fault (``since``, ``until``,
    ``tz`` or ``question``), so the edges can report it (a 422 naming the field)."""

    def __init__(self, message: str, *, field: str) -> None:
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class TemporalIntent:
    """What a question says about time. ``stripped`` is the question without the temporal phrases,
    for lexical search (the original when no word is left); ``question`` is kept as asked."""

    question: str
    stripped: str
    kind: Kind
    expression: str | None  # the window's phrase as written, else the recency phrase
    since: datetime | None  # inclusive, UTC
    until: datetime | None  # exclusive, UTC; None for an open "since" window
    recency: Recency
    as_of: datetime  # UTC
    tz: str

    @property
    def has_window(self) -> bool:
        return self.since is not None


@dataclass(frozen=True)
class Window:
    """The window a search uses, and where it came from."""

    since: datetime | None
    until: datetime | None
    source: Source


@dataclass(frozen=True)
class _Rule:
    kind: Kind
    regex: re.Pattern[str]
    resolve: Resolver
    open_ended: bool = False  # a "since" rule keeps only the start of its expression's window


def parse_temporal(question: str, as_of: datetime, tz: str | tzinfo = "UTC") -> TemporalIntent:
    """The temporal intent of ``question`` asked at ``as_of`` (naive = UTC) by a user in ``tz``.
    Raises :class:`InvalidWindow` for an unknown ``tz`` or a window that starts after ``as_of``."""
    zone, when = _zone(tz), _utc(as_of)
    found = _find_window(question)
    window: tuple[datetime | None, datetime | None] = (None, None)
    rest = question
    if found is not None:
        window = _window(found[0], found[1], when, zone)
        rest = _cut(question, found[1].span())
    cue, phrase, rest = _recency(rest)
    kind: Kind = found[0].kind if found is not None else cue or "default"
    expression = found[1].group(0) if found is not None else phrase
    recency: Recency = cue or ("none" if found is not None else "default")
    stripped = _tidy(rest)
    return TemporalIntent(question=question, stripped=stripped if re.search(r"\w", stripped) else question,
                          kind=kind, expression=expression, since=window[0], until=window[1],
                          recency=recency, as_of=when, tz=str(zone))


def resolve_window(intent: TemporalIntent, since: DateInput = None, until: DateInput = None) -> Window:
    """The window to search: an explicit ``since``/``until`` from the caller overrides the question's
    window as a whole (one given bound leaves the other side open); else the question's; else none.
    Explicit bounds follow :mod:`newsrag.retrieval.dates` (a date-only ``until`` covers its day).
    Raises :class:`InvalidWindow` naming the field for an unreadable bound or ``since >= until``."""
    after, before = _explicit(since, "since", since_bound), _explicit(until, "until", until_bound)
    if after is not None and before is not None and after >= before:
        raise InvalidWindow(f"since: {after.isoformat()} is not before until {before.isoformat()} "
                            "(until is exclusive, so the window holds no instant)", field="since")
    if after is not None or before is not None:
        return Window(after, before, "explicit")
    if intent.has_window:
        return Window(intent.since, intent.until, "question")
    return Window(None, None, "none")


def _explicit(value: DateInput, name: str, bound: Callable[[DateInput, str], datetime | None]
              ) -> datetime | None:
    try:
        return bound(value, name)
    except InvalidDate as exc:
        raise InvalidWindow(str(exc), field=name) from None


def _zone(tz: str | tzinfo) -> tzinfo:
    if not isinstance(tz, str):
        return tz
    try:
        return ZoneInfo(tz.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidWindow(f"tz: {tz[:60]!r} is not an IANA time zone name (e.g. Europe/Paris, UTC)",
                            field="tz") from None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _find_window(text: str) -> tuple[_Rule, re.Match[str]] | None:
    """The first window phrase in the question; at one position the longest ("since March 3", not
    "since March")."""
    found = [(rule, m) for rule in _RULES if (m := rule.regex.search(text)) is not None]
    if not found:
        return None
    return min(found, key=lambda f: (f[1].start(), -f[1].end()))


def _window(rule: _Rule, match: re.Match[str], as_of: datetime, zone: tzinfo
            ) -> tuple[datetime, datetime | None]:
    start, end = rule.resolve(match, as_of.astimezone(zone).date())
    since = _instant(start, zone)
    if since > as_of:
        raise InvalidWindow(f"question: {match.group(0)!r} starts on {start.isoformat()}, after as_of "
                            f"{as_of.isoformat()}: nothing can have been published in it yet",
                            field="question")
    return since, None if rule.open_ended else _instant(end, zone)


def _instant(day: date, zone: tzinfo) -> datetime:
    """Midnight starting ``day`` on the user's calendar, as a UTC instant."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _cut(text: str, span: tuple[int, int]) -> str:
    return text[:span[0]] + " " + text[span[1]:]


def _recency(text: str) -> tuple[Literal["latest", "recent"] | None, str | None, str]:
    """The recency cue ("the latest" before "recent", so "most recent" is one cue), its phrase, and
    the text without any cue."""
    latest, recent = _LATEST.search(text), _RECENT.search(text)
    rest = _RECENT.sub(" ", _LATEST.sub(" ", text))
    if latest is not None:
        return "latest", latest.group(0), rest
    return ("recent", recent.group(0), rest) if recent is not None else (None, None, rest)


def _tidy(text: str) -> str:
    """Spaces collapsed, no space before punctuation, no dangling comma at either end."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([?.!,;:])", r"\1", text)
    return re.sub(r"^[,;:]\s*|[,;:]$", "", text).strip()


def _day(offset: int) -> Resolver:
    return lambda _m, today: (today + timedelta(offset), today + timedelta(offset + 1))


def _week(offset: int) -> Resolver:
    def resolve(_m: re.Match[str], today: date) -> tuple[date, date]:
        monday = today - timedelta(today.weekday()) + timedelta(weeks=offset)
        return monday, monday + timedelta(weeks=1)
    return resolve


def _month(offset: int) -> Resolver:
    def resolve(_m: re.Match[str], today: date) -> tuple[date, date]:
        first = today.replace(day=1) + relativedelta(months=offset)
        return first, first + relativedelta(months=1)
    return resolve


def _year(offset: int) -> Resolver:
    return lambda _m, today: (date(today.year + offset, 1, 1), date(today.year + offset + 1, 1, 1))


def _weekday(m: re.Match[str], today: date) -> tuple[date, date]:
    """The most recent such day on or before today; with "last"/"this past", strictly before."""
    target = _WEEKDAYS[_DAYS.index(m.group("day").lower())]
    latest = today - timedelta(1) if m.group("rel") else today
    day = latest + relativedelta(weekday=target(-1))
    return day, day + timedelta(1)


def _named_month(m: re.Match[str], today: date) -> tuple[date, date]:
    month = _MONTHS[m.group("month").lower()]
    year = int(m.group("year")) if m.group("year") else today.year - (month > today.month)
    first = date(year, month, 1)
    return first, first + relativedelta(months=1)


def _named_year(m: re.Match[str], _today: date) -> tuple[date, date]:
    year = int(m.group("year"))
    return date(year, 1, 1), date(year + 1, 1, 1)


def _date(m: re.Match[str], today: date) -> tuple[date, date]:
    """A written date; without a year, its latest occurrence on or before today."""
    text = m.group("date")
    try:
        day = date_parser.parse(text, default=datetime(today.year, 1, 1)).date()
    except (ValueError, OverflowError):  # dateutil's ParserError is a ValueError ("February 30")
        raise InvalidWindow(f"question: {text!r} is not a date", field="question") from None
    if day > today and not re.search(r"\d{4}", text):
        day -= relativedelta(years=1)
    return day, day + timedelta(1)


_RESOLVERS: dict[Kind, Resolver] = {
    "today": _day(0), "yesterday": _day(-1), "this_week": _week(0), "last_week": _week(-1),
    "this_month": _month(0), "last_month": _month(-1), "this_year": _year(0), "last_year": _year(-1),
    "weekday": _weekday, "date": _date, "month": _named_month, "year": _named_year,
}


def _rules() -> tuple[_Rule, ...]:
    """Each expression standing alone (with its preposition), and each after "since"."""
    alone = [_Rule(kind, re.compile(rf"\b{_LEAD.get(kind, '')}{core}\b(?:['’]s\b)?", _I),
                   _RESOLVERS[kind]) for kind, core in _CORE.items()]
    since = [_Rule("since", re.compile(rf"\bsince\s+{core}\b", _I), _RESOLVERS[kind], open_ended=True)
             for kind, core in _CORE.items()]
    return (*since, *alone)


_RULES = _rules()


@dataclass(frozen=True)
class QueryWindow:
    """What a question's time did to its search: the window searched and where it came from, the
    phrase that named it, the recency prior, and the half-life that prior asks for (None: the
    searcher's default)."""

    since: datetime | None
    until: datetime | None
    source: Source
    expression: str | None
    recency: Recency
    half_life_days: float | None


def query_window(question: str, as_of: datetime, since: datetime | None, until: datetime | None,
                 half_lives: dict[str, float]) -> QueryWindow:
    """The window and recency prior for ``question`` asked at ``as_of``: explicit ``since``/``until``
    win; a window the question names is used otherwise. A question whose window cannot hold
    anything yet ("in 2030") is answered without one, not refused: the answer says none was used."""
    try:
        intent = parse_temporal(question, as_of)
    except InvalidWindow:
        return QueryWindow(since, until, "explicit" if since or until else "none", None, "default",
                           half_lives.get("default"))
    window = resolve_window(intent, since, until)
    return QueryWindow(window.since, window.until, window.source, intent.expression, intent.recency,
                       half_lives.get(intent.recency))
