"""One rule for date bounds (#20 items 1 and 2): a date, a naive time (UTC) or a zoned time; a date-only
``until`` covers its whole day, as an exclusive bound at the next day's 00:00 UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from newsrag.retrieval.dates import InvalidDate, date_range, parse_point, since_bound, until_bound

pytestmark = pytest.mark.unit

DAY_START = datetime(2026, 9, 12, tzinfo=UTC)
NEXT_DAY = datetime(2026, 9, 13, tzinfo=UTC)


@pytest.mark.parametrize(("value", "since", "until"), [
    ("2026-09-12", DAY_START, NEXT_DAY),
    (date(2026, 9, 12), DAY_START, NEXT_DAY),
    ("20260912", DAY_START, NEXT_DAY),  # ISO 8601's basic form is a date too, not a midnight
    ("2026-09-12T08:30", DAY_START.replace(hour=8, minute=30), DAY_START.replace(hour=8, minute=30)),
    ("2026-09-12 08:30", DAY_START.replace(hour=8, minute=30), DAY_START.replace(hour=8, minute=30)),
    ("2026-09-12T23:59:59Z", DAY_START.replace(hour=23, minute=59, second=59),
     DAY_START.replace(hour=23, minute=59, second=59)),
    ("2026-09-12T10:00+02:00", DAY_START.replace(hour=8), DAY_START.replace(hour=8)),
    (datetime(2026, 9, 12, 8), DAY_START.replace(hour=8), DAY_START.replace(hour=8)),  # naive = UTC
    (datetime(2026, 9, 12, 4, tzinfo=timezone(timedelta(hours=-4))), DAY_START.replace(hour=8),
     DAY_START.replace(hour=8)),
])
def test_each_form_of_a_bound_follows_the_one_rule(value: object, since: datetime, until: datetime) -> None:
    assert since_bound(value) == since  # type: ignore[arg-type]
    assert until_bound(value) == until  # type: ignore[arg-type]
    assert since_bound(value).tzinfo is UTC  # type: ignore[arg-type, union-attr]


def test_a_date_stays_a_date_until_its_side_is_known() -> None:
    assert parse_point("2026-09-12") == date(2026, 9, 12)
    assert parse_point("2026-09-12T00:00") == DAY_START  # a time, even at midnight


def test_mixing_a_date_and_a_zoned_time_compares_in_utc() -> None:
    assert date_range("2026-09-12", "2026-09-12T23:59:59Z") == (DAY_START, DAY_START.replace(hour=23, minute=59,
                                                                                             second=59))
    assert date_range("2026-09-12T06:00", "2026-09-12") == (DAY_START.replace(hour=6), NEXT_DAY)


def test_the_same_date_on_both_sides_is_that_day() -> None:
    assert date_range("2026-09-12", "2026-09-12") == (DAY_START, NEXT_DAY)


@pytest.mark.parametrize(("since", "until"), [
    ("2026-09-13", "2026-09-12"),
    ("2026-09-12T12:00Z", "2026-09-12T12:00Z"),  # an exclusive until at the since instant holds nothing
    ("2026-09-13T00:00Z", "2026-09-12"),  # the date's day ends where the since begins
    ("2026-09-12T12:00+02:00", "2026-09-12T10:00Z"),  # 10:00Z is the same instant
])
def test_an_empty_range_is_refused_after_normalising(since: str, until: str) -> None:
    with pytest.raises(InvalidDate, match="'since' must be before 'until'"):
        date_range(since, until)


def test_blank_and_missing_bounds_mean_no_bound() -> None:
    assert date_range(None, "  ") == (None, None)
    assert date_range("", None) == (None, None)


@pytest.mark.parametrize("value", ["not-a-date", "2026-13-01", "2026-09-12T25:00", "12/09/2026", "x" * 200])
def test_an_unreadable_bound_names_the_rule(value: str) -> None:
    with pytest.raises(InvalidDate, match="expected a date") as caught:
        since_bound(value, "--since")
    assert str(caught.value).startswith("--since: ") and isinstance(caught.value, ValueError)
    assert len(str(caught.value)) < 300  # a long value is not echoed back whole


@pytest.mark.parametrize(("fn", "value"), [(until_bound, "9999-12-31"), (since_bound, "0001-01-01T00:00+05:00")])
def test_bounds_past_the_calendar_are_invalid_not_a_crash(fn: object, value: str) -> None:
    with pytest.raises(InvalidDate):
        fn(value)  # type: ignore[operator]
