"""A question's time on the query path (#14 item 2): the window a phrase names filters the search,
explicit since/until win over it, "the latest" asks for a shorter recency half-life, a window that
cannot hold anything yet is dropped rather than refused, and the answer reports what was used.
Offline: a fake store records what it was asked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from newsrag.core.records import SearchFilters
from newsrag.retrieval.answer import Answerer, AnswerSettings
from newsrag.retrieval.generators.extractive import ExtractiveGenerator
from newsrag.retrieval.temporal import query_window
from tests.retrieval.test_search_unit import FakeEmbedder, hit, searcher

pytestmark = pytest.mark.unit

AS_OF = datetime(2026, 12, 9, 15, tzinfo=UTC)  # a Wednesday
HALF_LIVES = {"latest": 7.0, "recent": 30.0}


def day(d: int, month: int = 12) -> datetime:
    return datetime(2026, month, d, tzinfo=UTC)


@pytest.mark.parametrize(("question", "since", "until", "source", "recency", "half_life"), [
    ("What happened last week?", day(30, 11), day(7), "question", "none", None),
    ("What did the council decide yesterday?", day(8), day(9), "question", "none", None),
    ("What is the latest on the harbour strike?", None, None, "none", "latest", 7.0),
    ("Any recent news on the bridge?", None, None, "none", "recent", 30.0),
    ("Who won the vote?", None, None, "none", "default", None),
    ("What will happen in 2030?", None, None, "none", "default", None),  # cannot hold anything yet
])
def test_the_window_and_prior_a_question_asks_for(question: str, since: datetime | None, until: datetime | None,
                                                  source: str, recency: str, half_life: float | None) -> None:
    window = query_window(question, AS_OF, None, None, HALF_LIVES)
    assert (window.since, window.until, window.source, window.recency, window.half_life_days) == (
        since, until, source, recency, half_life)


def test_explicit_since_and_until_win_over_the_question() -> None:
    window = query_window("What happened last week?", AS_OF, day(1, 10), day(1, 11), HALF_LIVES)
    assert (window.since, window.until, window.source) == (day(1, 10), day(1, 11), "explicit")


def answerer(**settings: Any) -> tuple[Answerer, Any]:
    hits = [hit("old", 1.0, text="The bridge reopened after repairs.", published=AS_OF - timedelta(days=40)),
            hit("fresh", 0.9, text="The bridge reopened on Tuesday.", published=AS_OF - timedelta(days=1))]
    s, store, _ = searcher(hits, rerank="none")
    return Answerer(s, ExtractiveGenerator(FakeEmbedder()), AnswerSettings(**settings)), store  # type: ignore[arg-type]


def test_the_answer_searches_the_window_the_question_names_and_reports_it() -> None:
    ask, store = answerer()
    answer = ask.ask("When did the bridge reopen yesterday?", as_of=AS_OF,
                     filters=SearchFilters(source_ids=("metro",)))
    sent = store.calls[-1][1]["filters"]
    assert (sent.published_after, sent.published_before, sent.source_ids) == (day(8), day(9), ("metro",))
    assert answer.window is not None
    assert (answer.window.source, answer.window.expression, answer.window.since) == ("question", "yesterday", day(8))
    assert answer.model_dump(mode="json")["window"]["until"] == "2026-12-09T00:00:00Z"


def test_the_latest_weighs_age_with_its_own_half_life() -> None:
    ask, _ = answerer()
    plain = ask.ask("When did the bridge reopen?", as_of=AS_OF)
    latest = ask.ask("When did the bridge reopen, the latest?", as_of=AS_OF)
    assert [c.chunk_id for c in plain.retrieval][:1] == ["old"]  # no prior: the store's order
    assert [c.chunk_id for c in latest.retrieval][:1] == ["fresh"]  # a 40-day-old story loses to a 1-day-old one
    assert latest.window is not None and latest.window.recency == "latest"


def test_reading_time_in_questions_can_be_turned_off() -> None:
    ask, store = answerer(temporal=False)
    answer = ask.ask("What happened yesterday?", as_of=AS_OF)
    assert store.calls[-1][1]["filters"].published_after is None and answer.window is None
