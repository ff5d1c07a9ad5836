"""Date bounds for search filters: one rule for the API, the CLI, the chat page and the library.

A bound is written as a date (``2026-09-12``), a naive time (``2026-09-12T08:00``) or a zoned time
(``2026-09-12T08:00Z``, ``2026-09-12T10:00+02:00``):

- a naive time is UTC; a zoned time is converted to UTC;
- ``since`` is inclusive (``published_at >= since``); a date-only ``since`` is 00:00 UTC of that day;
- ``until`` is exclusive (``published_at < until``), but a date-only ``until`` covers its whole day:
  it becomes 00:00 UTC of the next day. So ``since=D&until=D`` is the day D (UTC).

``as_of`` (the moment an answer is given as of) is a point, not a bound: a date means the *end* of
that day in UTC (so "as of 2026-10-19" includes that day), a time is taken as above. It may not be in
the future: up to :data:`CLOCK_SKEW` (5 minutes) ahead is taken as now (a client's clock runs a little
fast), and a day that has not ended yet (today) means now.

Strings are parsed here, not by a web framework, because only here is ``2026-09-12`` still a date:
turned into a datetime it would be 00:00 and ``until`` would exclude its own day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from newsrag.core.errors import NewsragError

DateInput = str | date | datetime | None
MAX_CHARS = 64  # the longest ISO 8601 time is about 32 characters
CLOCK_SKEW = timedelta(minutes=5)  # how far ahead of the server's clock an as_of may be (taken as now)
RULE = ("a date (2026-09-12), a time (2026-09-12T08:00, taken as UTC) or a zoned time "
        "(2026-09-12T08:00Z, 2026-09-12T10:00+02:00)")


class InvalidDate(NewsragError, ValueError):
    """A date bound that cannot be read, or a range that ends before it starts. A ValueError too, so
    request validation reports it as bad input."""


def parse_point(value: str | date | datetime, name: str = "") -> date | datetime:
    """A date stays a date (its bound depends on the side); a time becomes an aware UTC datetime.
    ``name`` starts the error message (none when the caller reports where the value came from)."""
    if isinstance(value, date):
        return _utc(value, name) if isinstance(value, datetime) else value
    text = value.strip()
    if len(text) > MAX_CHARS:
        raise InvalidDate(f"{_named(name)}expected {RULE}; got {len(text)} characters")
    try:
        return date.fromisoformat(text)  # anything ISO 8601 calls a date is a date
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidDate(f"{_named(name)}expected {RULE}; got {text[:40]!r}") from None
    return _utc(parsed, name)


def since_bound(value: DateInput, name: str = "since") -> datetime | None:
    """The inclusive lower bound in UTC; a date is the start of that day."""
    point = _point(value, name)
    if point is None or isinstance(point, datetime):
        return point
    return datetime.combine(point, time(0), tzinfo=UTC)


def until_bound(value: DateInput, name: str = "until") -> datetime | None:
    """The exclusive upper bound in UTC; a date is the start of the next day, so it covers its day."""
    point = _point(value, name)
    if point is None or isinstance(point, datetime):
        return point
    try:
        return datetime.combine(point + timedelta(days=1), time(0), tzinfo=UTC)
    except OverflowError:
        raise InvalidDate(f"{name}: {point.isoformat()} is past the last date there is") from None


def date_range(since: DateInput, until: DateInput,
               names: tuple[str, str] = ("since", "until")) -> tuple[datetime | None, datetime | None]:
    """Both bounds in UTC, refused when the range holds no instant. ``names`` are the parameters'
    names as the caller's user writes them (``--since`` on the command line)."""
    after, before = since_bound(since, names[0]), until_bound(until, names[1])
    if after is not None and before is not None and after >= before:
        raise InvalidDate(f"'{names[0]}' must be before '{names[1]}' ({names[0]} {after.isoformat()} is not "
                          f"before {names[1]} {before.isoformat()}, an exclusive bound)")
    return after, before


def as_of_point(value: DateInput, now: datetime, name: str = "as_of") -> datetime | None:
    """The instant an answer is given as of, in UTC, or None (no value: the caller's now). A date is
    the last instant of that day (UTC); the result is never after ``now``: a value up to
    :data:`CLOCK_SKEW` ahead, or a day that has not ended, is ``now``; anything later is refused."""
    point = _point(value, name)
    if point is None:
        return None
    if isinstance(point, datetime):
        start = end = point
    else:
        start = datetime.combine(point, time(0), tzinfo=UTC)
        end = datetime.combine(point, time.max, tzinfo=UTC)  # 23:59:59.999999: "as of D" includes D
    if start > now + CLOCK_SKEW:
        raise InvalidDate(f"{_named(name)}{start.isoformat()} is in the future (now is {now.isoformat()}; "
                          f"at most {CLOCK_SKEW.seconds // 60} minutes of clock skew are allowed)")
    return min(end, now)


def _point(value: DateInput, name: str) -> date | datetime | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None  # an empty form field or query parameter: no bound
    return parse_point(value, name)


def _utc(value: datetime, name: str) -> datetime:
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+05:00 is before the first instant there is
        raise InvalidDate(f"{_named(name)}{value.isoformat()} is out of range") from None


def _named(name: str) -> str:
    return f"{name}: " if name else ""
