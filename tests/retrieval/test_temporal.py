"""The temporal parser (#14 item 2): each expression becomes a window or a recency prior relative to a
fixed ``as_of``, on the user's calendar, across week, month, year and time-zone boundaries."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import pytest

from newsrag.core.errors import NewsragError
from newsrag.retrieval.temporal import InvalidWindow, Window, parse_temporal, resolve_window

pytestmark = pytest.mark.unit

WED = datetime(2026, 12, 9, 15, tzinfo=UTC)  # a Wednesday in mid-month
MON = datetime(2026, 12, 7, 0, 30, tzinfo=UTC)  # a Monday, just after midnight
SUN = datetime(2026, 12, 13, 22, tzinfo=UTC)  # a Sunday, late
NEW_YEAR = datetime(2027, 1, 1, 12, tzinfo=UTC)  # a Friday
LEAP_MAR_1 = datetime(2028, 3, 1, 9, tzinfo=UTC)  # a Wednesday; 2028 has a 29 February
NYE = datetime(2026, 12, 31, 23, tzinfo=UTC)  # a Thursday; already 2027 in Tokyo


def d(y: int, m: int, day: int) -> date:
    return date(y, m, day)


def utc(day: date | None) -> datetime | None:
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC)


@pytest.mark.parametrize(("question", "as_of", "kind", "since", "until"), [
    ("today", WED, "today", d(2026, 12, 9), d(2026, 12, 10)),
    ("yesterday", WED, "yesterday", d(2026, 12, 8), d(2026, 12, 9)),
    ("this week", WED, "this_week", d(2026, 12, 7), d(2026, 12, 14)),
    ("last week", WED, "last_week", d(2026, 11, 30), d(2026, 12, 7)),
    ("this month", WED, "this_month", d(2026, 12, 1), d(2027, 1, 1)),
    ("last month", WED, "last_month", d(2026, 11, 1), d(2026, 12, 1)),
    ("this year", WED, "this_year", d(2026, 1, 1), d(2027, 1, 1)),
    ("last year", WED, "last_year", d(2025, 1, 1), d(2026, 1, 1)),
    ("on Monday", WED, "weekday", d(2026, 12, 7), d(2026, 12, 8)),
    ("on Wednesday", WED, "weekday", d(2026, 12, 9), d(2026, 12, 10)),  # on that day: today
    ("on Thursday", WED, "weekday", d(2026, 12, 3), d(2026, 12, 4)),
    ("last Wednesday", WED, "weekday", d(2026, 12, 2), d(2026, 12, 3)),  # "last": strictly before
    ("on March 3rd", WED, "date", d(2026, 3, 3), d(2026, 3, 4)),
    ("in October", WED, "month", d(2026, 10, 1), d(2026, 11, 1)),
    ("in December", WED, "month", d(2026, 12, 1), d(2027, 1, 1)),  # as_of in December: this one
    ("in October 2023", WED, "month", d(2023, 10, 1), d(2023, 11, 1)),
    ("in 2023", WED, "year", d(2023, 1, 1), d(2024, 1, 1)),
    ("since March 3", WED, "since", d(2026, 3, 3), None),
    ("since 3 March 2026", WED, "since", d(2026, 3, 3), None),
    ("since 2026-10-01", WED, "since", d(2026, 10, 1), None),
    ("since Oct. 5, 2025", WED, "since", d(2025, 10, 5), None),
    ("since December 25", WED, "since", d(2025, 12, 25), None),  # no year: the last one that came
    ("since last Friday", WED, "since", d(2026, 12, 4), None),
    ("since yesterday", WED, "since", d(2026, 12, 8), None),
    ("since October", WED, "since", d(2026, 10, 1), None),
    # the week boundary: a Monday is the first day of its week, a Sunday the last
    ("this week", MON, "this_week", d(2026, 12, 7), d(2026, 12, 14)),
    ("last week", MON, "last_week", d(2026, 11, 30), d(2026, 12, 7)),
    ("on Monday", MON, "weekday", d(2026, 12, 7), d(2026, 12, 8)),
    ("last Monday", MON, "weekday", d(2026, 11, 30), d(2026, 12, 1)),
    ("on Sunday", MON, "weekday", d(2026, 12, 6), d(2026, 12, 7)),
    ("this week", SUN, "this_week", d(2026, 12, 7), d(2026, 12, 14)),
    ("on Sunday", SUN, "weekday", d(2026, 12, 13), d(2026, 12, 14)),
    ("on Monday", SUN, "weekday", d(2026, 12, 7), d(2026, 12, 8)),
    # month and year boundaries
    ("yesterday", NEW_YEAR, "yesterday", d(2026, 12, 31), d(2027, 1, 1)),
    ("last month", NEW_YEAR, "last_month", d(2026, 12, 1), d(2027, 1, 1)),
    ("this month", NEW_YEAR, "this_month", d(2027, 1, 1), d(2027, 2, 1)),
    ("this week", NEW_YEAR, "this_week", d(2026, 12, 28), d(2027, 1, 4)),
    ("last year", NEW_YEAR, "last_year", d(2026, 1, 1), d(2027, 1, 1)),
    ("in December", NEW_YEAR, "month", d(2026, 12, 1), d(2027, 1, 1)),
    ("in January", NEW_YEAR, "month", d(2027, 1, 1), d(2027, 2, 1)),
    ("since March 3", NEW_YEAR, "since", d(2026, 3, 3), None),
    ("yesterday", LEAP_MAR_1, "yesterday", d(2028, 2, 29), d(2028, 3, 1)),
    ("last month", LEAP_MAR_1, "last_month", d(2028, 2, 1), d(2028, 3, 1)),
    ("last week", LEAP_MAR_1, "last_week", d(2028, 2, 21), d(2028, 2, 28)),
    ("since February 29", LEAP_MAR_1, "since", d(2028, 2, 29), None),
    ("today", NYE, "today", d(2026, 12, 31), d(2027, 1, 1)),
    ("this week", NYE, "this_week", d(2026, 12, 28), d(2027, 1, 4)),
    ("this month", NYE, "this_month", d(2026, 12, 1), d(2027, 1, 1)),
    ("this year", NYE, "this_year", d(2026, 1, 1), d(2027, 1, 1)),
])
def test_each_expression_names_its_window(question: str, as_of: datetime, kind: str, since: date,
                                          until: date | None) -> None:
    intent = parse_temporal(f"What happened {question}?", as_of)
    assert (intent.kind, intent.since, intent.until) == (kind, utc(since), utc(until))
    assert intent.expression is not None and intent.expression.lower().endswith(question.lower())
    assert intent.recency == "none" and intent.has_window


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize(("question", "as_of", "tz", "since", "until"), [
    # 03:00Z on the 9th is still the 8th in Los Angeles (UTC-8)
    ("today", WED.replace(hour=3), "America/Los_Angeles", "2026-12-08T08:00Z", "2026-12-09T08:00Z"),
    ("yesterday", WED.replace(hour=3), "America/Los_Angeles", "2026-12-07T08:00Z", "2026-12-08T08:00Z"),
    ("on Tuesday", WED.replace(hour=3), "America/Los_Angeles", "2026-12-08T08:00Z", "2026-12-09T08:00Z"),
    # 20:00Z on the 9th is already the 10th in Tokyo (UTC+9)
    ("today", WED.replace(hour=20), "Asia/Tokyo", "2026-12-09T15:00Z", "2026-12-10T15:00Z"),
    ("on Thursday", WED.replace(hour=20), "Asia/Tokyo", "2026-12-09T15:00Z", "2026-12-10T15:00Z"),
    ("today", WED.replace(hour=20), "UTC", "2026-12-09T00:00Z", "2026-12-10T00:00Z"),
    ("today", datetime(2026, 12, 8, 1, tzinfo=UTC), "America/New_York",
     "2026-12-07T05:00Z", "2026-12-08T05:00Z"),
    # Monday 00:30Z is Sunday in Los Angeles, so "this week" is the week before
    ("this week", MON, "America/Los_Angeles", "2026-11-30T08:00Z", "2026-12-07T08:00Z"),
    # Sunday 22:00Z is Monday in Tokyo, so "this week" is the next one
    ("this week", SUN, "Asia/Tokyo", "2026-12-13T15:00Z", "2026-12-20T15:00Z"),
    # New Year's Eve 23:00Z is 2027 in Tokyo
    ("this year", NYE, "Asia/Tokyo", "2026-12-31T15:00Z", "2027-12-31T15:00Z"),
    ("last month", NYE, "Asia/Tokyo", "2026-11-30T15:00Z", "2026-12-31T15:00Z"),
    ("today", NYE, "America/Los_Angeles", "2026-12-31T08:00Z", "2027-01-01T08:00Z"),
    # the day daylight saving time starts in New York has 23 hours
    ("today", datetime(2026, 3, 8, 12, tzinfo=UTC), "America/New_York",
     "2026-03-08T05:00Z", "2026-03-09T04:00Z"),
    ("since 2026-10-01", WED, "Asia/Tokyo", "2026-09-30T15:00Z", None),
])
def test_windows_follow_the_users_calendar(question: str, as_of: datetime, tz: str, since: str,
                                           until: str | None) -> None:
    intent = parse_temporal(f"News {question}", as_of, tz)
    assert intent.since == at(since) and intent.until == (until and at(until))
    assert intent.since is not None and intent.since.tzinfo is UTC
    assert intent.tz == tz and intent.as_of == as_of


@pytest.mark.parametrize(("question", "kind", "recency", "expression"), [
    ("What's the latest on the Fed?", "latest", "latest", "the latest"),
    ("Show the most recent report on floods", "latest", "latest", "the most recent"),
    ("newest iPhone rumours", "latest", "latest", "newest"),
    ("Any recent news on the strike?", "recent", "recent", "recent"),
    ("What did the court rule recently?", "recent", "recent", "recently"),
    ("The latest on the strike this week", "this_week", "latest", "this week"),  # window and prior
    ("Who won the election?", "default", "default", None),
    ("Black Friday sales figures", "default", "default", None),  # no "on": an event, not a day
    ("What may happen to rates in the future?", "default", "default", None),  # "may" is no month
    ("Monday.com earnings", "default", "default", None),
])
def test_recency_cues_and_the_default(question: str, kind: str, recency: str,
                                      expression: str | None) -> None:
    intent = parse_temporal(question, WED)
    assert (intent.kind, intent.recency, intent.expression) == (kind, recency, expression)
    assert intent.has_window == (kind == "this_week")


@pytest.mark.parametrize(("question", "stripped"), [
    ("What happened yesterday?", "What happened?"),
    ("WHAT HAPPENED YESTERDAY?!", "WHAT HAPPENED?!"),
    ("Yesterday, the Fed raised rates.", "the Fed raised rates."),
    ("What did the mayor say On Monday?", "What did the mayor say?"),
    ("In October 2023, who led the polls?", "who led the polls?"),
    ("Floods since 3 March 2026: how many died?", "Floods: how many died?"),
    ("Today's headlines on the budget", "headlines on the budget"),
    ("What's the latest on the strike this week?", "What's on the strike?"),
    ("Any recent news on the strike?", "Any news on the strike?"),
    ("Who won the election?", "Who won the election?"),
    ("today?", "today?"),  # nothing else left: the question as asked
])
def test_the_stripped_question_loses_the_phrase(question: str, stripped: str) -> None:
    intent = parse_temporal(question, WED)
    assert intent.stripped == stripped and intent.question == question
    if intent.kind != "default" and stripped != question:
        assert intent.expression is not None
        assert intent.expression.lower() not in intent.stripped.lower()


@pytest.mark.parametrize("question", [
    "What happened since 2027-01-01?", "since March 3, 2027", "in 2030", "on 2026-12-25",
    "in January 2027",
])
def test_a_window_after_as_of_is_refused(question: str) -> None:
    """Decided: an error naming the question, not a silently empty window."""
    with pytest.raises(InvalidWindow, match="after as_of") as caught:
        parse_temporal(question, WED)
    assert caught.value.field == "question"
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, NewsragError)


def test_a_date_that_does_not_exist_is_refused() -> None:
    with pytest.raises(InvalidWindow, match="not a date") as caught:
        parse_temporal("since February 30", WED)
    assert caught.value.field == "question"


def test_an_unknown_time_zone_is_refused_by_name() -> None:
    with pytest.raises(InvalidWindow, match="tz") as caught:
        parse_temporal("today", WED, "Mars/Olympus_Mons")
    assert caught.value.field == "tz"


def test_a_naive_as_of_is_utc_and_the_intent_is_frozen() -> None:
    intent = parse_temporal("today", datetime(2026, 12, 9, 15))
    assert intent.as_of == WED and intent.since == utc(d(2026, 12, 9))
    with pytest.raises(dataclasses.FrozenInstanceError):
        intent.since = None  # type: ignore[misc]


YESTERDAY = parse_temporal("What happened yesterday?", WED)
NO_CUE = parse_temporal("Who won?", WED)


@pytest.mark.parametrize(("intent", "since", "until", "window"), [
    (YESTERDAY, None, None, Window(utc(d(2026, 12, 8)), utc(d(2026, 12, 9)), "question")),
    (YESTERDAY, "2026-11-01", None, Window(utc(d(2026, 11, 1)), None, "explicit")),
    (YESTERDAY, None, "2026-11-01", Window(None, utc(d(2026, 11, 2)), "explicit")),  # date: its day
    (NO_CUE, d(2026, 11, 1), datetime(2026, 11, 3, 12, tzinfo=UTC),
     Window(utc(d(2026, 11, 1)), datetime(2026, 11, 3, 12, tzinfo=UTC), "explicit")),
    (NO_CUE, None, None, Window(None, None, "none")),
    (NO_CUE, " ", "", Window(None, None, "none")),  # empty form fields are no bound
])
def test_explicit_bounds_override_the_question(intent: object, since: object, until: object,
                                               window: Window) -> None:
    assert resolve_window(intent, since, until) == window  # type: ignore[arg-type]


@pytest.mark.parametrize(("since", "until", "field"), [
    ("2026-12-05", "2026-12-01", "since"),
    (datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC), "since"),  # holds nothing
    ("last tuesday", None, "since"),
    (None, "2026-13-01", "until"),
])
def test_bad_explicit_bounds_name_their_field(since: object, until: object, field: str) -> None:
    with pytest.raises(InvalidWindow) as caught:
        resolve_window(YESTERDAY, since, until)  # type: ignore[arg-type]
    assert caught.value.field == field and str(caught.value).startswith(f"{field}:")
    assert isinstance(caught.value, ValueError)
    if field == "since" and until is not None:
        assert "until" in str(caught.value)
