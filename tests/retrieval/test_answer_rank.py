"""The signals that order an extractive answer (#20, item 9)."""

from __future__ import annotations

import pytest

from newsrag.retrieval.generators.answer_rank import (
    asked_noun,
    expected_type,
    focus_words,
    has_type,
    title_share,
)
from newsrag.retrieval.generators.extractive import content_words, stem

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("question", "expected"), [
    ("How many beds does the new hospital have?", "quantity"),
    ("By how much did the property tax rate rise?", "quantity"),
    ("How quickly must incidents be reported?", "quantity"),
    ("When is the Harbor Line light rail expected to open?", "date"),
    ("What year did the study start?", "date"),
    ("Who won the mayor's race?", None),
])
def test_expected_answer_type(question: str, expected: str | None) -> None:
    assert expected_type(question) == expected


def test_a_counted_noun_must_follow_a_number_closely() -> None:
    noun = asked_noun("How many beds does the new hospital have?")
    assert noun == "beds"
    assert has_type("The hospital has 212 inpatient beds, a 48-bay emergency department.", "quantity", noun, stem)
    assert not has_type("It took three years to build and $120 million; the ward has new beds.", "quantity",
                        noun, stem)
    assert not has_type("A $1.42 billion light rail line that would link Calder Central Station.", "quantity",
                        "stations", stem)


def test_dates_and_untyped_questions() -> None:
    assert has_type("The line is expected to open in 2031.", "date")
    assert not has_type("Officials praised the line.", "date")
    assert has_type("Anything at all.", None)


def test_focus_words_leave_out_names_but_keep_what_the_title_answers() -> None:
    focus = focus_words("How many beds does the new hospital have?",
                        "St. Brigid's Eastfield Hospital opens with 212 beds", content_words)
    assert focus == {"bed", "new"}  # "Hospital" is part of a name; "beds" is what is asked


def test_title_share_prefers_the_article_about_the_subject() -> None:
    question = "When is the Harbor Line light rail expected to open?"
    about = title_share(question, "Council approves Harbor Line light rail in 7-4 vote", content_words)
    passing = title_share(question, "St. Brigid's Eastfield Hospital opens with 212 beds", content_words)
    assert about > 0.5 and passing < 0.2  # only "opens"
