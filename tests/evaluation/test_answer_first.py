"""answer_first: does the answer's first sentence hold the reference's main clause? (#20, item 9)"""

from __future__ import annotations

import pytest

from newsrag.evaluation.answer_metrics import answer_first_offline

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("answer", "reference", "value"), [
    ("The hospital has 212 inpatient beds. [1] It opened Wednesday. [1]", "212 inpatient beds.", 1.0),
    ("It opened Wednesday. [1] The hospital has 212 inpatient beds. [1]", "212 inpatient beds.", 0.0),
    ("The rate rose 2.9 percent, the first rise in years. [1]", "2.9 percent, about $84 more a year.", 1.0),
    ("He won in 2 hours, 8 minutes and 47 seconds. [1]", "2:08:47, by Tomasz Wierzba, a course record.", 1.0),
    ("The rate rose 3.1 percent. [1]", "2.9 percent, about $84 more a year.", 0.0),
])
def test_first_sentence_holds_the_reference(answer: str, reference: str, value: float) -> None:
    assert answer_first_offline(answer, reference).value == value


def test_abstention_and_missing_reference() -> None:
    assert answer_first_offline("The sources do not say.", "212 beds.", abstained=True).value == 0.0
    assert answer_first_offline("Anything.", None).value is None
