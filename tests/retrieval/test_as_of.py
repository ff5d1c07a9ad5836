"""``as_of`` in the library (#14 item 1): the one parsing rule (a date is the end of its day, never
in the future beyond the clock skew), the searcher's filter and recency clock, the answer's metadata,
and a golden case's ``as_of``. Offline: a fake store records what it was asked."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from newsrag.core.records import SearchFilters
from newsrag.evaluation.golden import GoldenCase
from newsrag.retrieval.answer import Answerer
from newsrag.retrieval.dates import CLOCK_SKEW, InvalidDate, as_of_point
from newsrag.retrieval.generators.extractive import ExtractiveGenerator
from newsrag.retrieval.search import InvalidQuery
from newsrag.store.weaviate_schema import to_filter
from tests.retrieval.test_search_unit import FakeEmbedder, hit, searcher

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 8, 2, 20, tzinfo=UTC)
END_OF_OCT_19 = datetime(2026, 10, 19, 23, 59, 59, 999999, tzinfo=UTC)


# -- the rule -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("2026-10-19", END_OF_OCT_19),  # a date: the end of that day, so the day is included
    (date(2026, 10, 19), END_OF_OCT_19),
    ("2026-10-19T08:00", datetime(2026, 10, 19, 8, tzinfo=UTC)),  # naive: UTC
    ("2026-10-19T10:00+02:00", datetime(2026, 10, 19, 8, tzinfo=UTC)),
    ("2026-12-08", NOW),  # today has not ended: now
    ((NOW + CLOCK_SKEW).isoformat(), NOW),  # a fast client clock: now
    (None, None), ("  ", None),
])
def test_as_of_reads_dates_as_the_end_of_their_day_and_is_never_after_now(value: object,
                                                                        expected: datetime | None) -> None:
    assert as_of_point(value, NOW) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "fragment"), [
    ("soon", "as_of: expected a date"),
    ("19/10/2026", "as_of: expected a date"),
    ("2026-12-09", "is in the future"),  # tomorrow, UTC
    ((NOW + CLOCK_SKEW + timedelta(seconds=1)).isoformat(), "5 minutes of clock skew"),
])
def test_an_unreadable_or_future_as_of_is_refused_naming_it(value: str, fragment: str) -> None:
    with pytest.raises(InvalidDate, match=fragment) as caught:
        as_of_point(value, NOW)
    assert str(caught.value).startswith("as_of: ")


# -- the searcher and the answerer ----------------------------------------------------------------

def test_an_as_of_filters_the_store_and_counts_recency_from_it() -> None:
    d = datetime(2026, 10, 19, tzinfo=UTC)
    hits = [hit("old", 1.0, published=d - timedelta(days=30)), hit("fresh", 0.95, published=d - timedelta(days=1))]
    s, store, _ = searcher(hits, recency_half_life_days=7, rerank="none")
    result = s.search("bridge", filters=SearchFilters(source_ids=("metro",)), as_of=d)
    sent = store.calls[-1][1]["filters"]
    assert sent == SearchFilters(source_ids=("metro",), as_of=d) and result.as_of == d
    assert [h.uuid for h in result.hits] == ["fresh", "old"]  # a day old as of d beats a month old
    # counted from now (weeks later) both are old and the store order stands
    assert [h.uuid for h in s.search("bridge", as_of=NOW + timedelta(days=365)).hits] == ["old", "fresh"]


def test_without_as_of_nothing_is_filtered_and_now_is_reported() -> None:
    s, store, _ = searcher([hit("a", 1.0)])
    before = datetime.now(UTC)
    result = s.search("bridge")
    assert store.calls[-1][1]["filters"] is None
    assert result.as_of is not None and before <= result.as_of <= datetime.now(UTC)


def test_a_naive_as_of_is_utc_and_a_non_datetime_is_refused() -> None:
    s, store, _ = searcher([hit("a", 1.0)])
    assert s.search("bridge", as_of=datetime(2026, 10, 19)).as_of == datetime(2026, 10, 19, tzinfo=UTC)
    with pytest.raises(InvalidQuery, match="as_of must be a datetime"):
        s.search("bridge", as_of="2026-10-19")  # type: ignore[arg-type]
    assert len(store.calls) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_the_answer_names_the_as_of_it_used(stream: bool) -> None:
    d = datetime(2026, 10, 19, 12, tzinfo=UTC)
    s, store, _ = searcher([hit("a", 1.0, text="The bridge reopened on Monday.", published=d)])
    answerer = Answerer(s, ExtractiveGenerator(FakeEmbedder()))  # type: ignore[arg-type]
    if stream:
        answer = next(e for e in answerer.ask_stream("When did the bridge reopen?", as_of=d) if e.type == "done").answer
    else:
        answer = answerer.ask("When did the bridge reopen?", as_of=d)
    assert answer is not None and answer.as_of == d
    assert store.calls[-1][1]["filters"].as_of == d
    assert answer.model_dump(mode="json")["as_of"] == "2026-10-19T12:00:00Z"


# -- the store's filter and golden cases -----------------------------------------------------------

def _terms(f: Any) -> Any:
    """A Weaviate filter as nested ("and"/"or", [...]) and (property, operator, value) tuples."""
    if hasattr(f, "filters"):
        return (type(f).__name__.removeprefix("_Filter").lower(), [_terms(x) for x in f.filters])
    return (f.target, f.operator.value, f.value)


def test_the_store_filter_is_ingested_by_and_published_by_or_undated() -> None:
    d = END_OF_OCT_19
    assert _terms(to_filter(SearchFilters(as_of=d))) == ("and", [
        ("ingested_at", "LessThanEqual", d),
        ("or", [("published_at", "LessThanEqual", d), ("published_at", "IsNull", True)])])
    assert to_filter(SearchFilters()) is None and not SearchFilters(as_of=d).is_empty()


def test_a_golden_case_carries_its_as_of_by_the_same_rule() -> None:
    case = GoldenCase(id="q", question="What happened?", answerable=False, as_of="2026-10-19")
    assert case.as_of == END_OF_OCT_19
    assert GoldenCase.model_validate(case.model_dump(mode="json")).as_of == END_OF_OCT_19  # round trip
    assert GoldenCase(id="q", question="q", answerable=False).as_of is None
    with pytest.raises(ValueError, match="as_of"):
        GoldenCase(id="q", question="q", answerable=False, as_of="next week")
