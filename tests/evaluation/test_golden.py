"""Golden sets: the shipped example, every kind of bad line, sampling, and feedback -> cases."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from newsrag.core.errors import NewsragError
from newsrag.evaluation.feedback import FeedbackStore
from newsrag.evaluation.golden import (
    GoldenCase,
    GoldenSetError,
    cases_from_feedback,
    load_golden,
    write_jsonl,
)
from newsrag.retrieval.answer import Answer, AnswerCitation

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "news" / "questions.jsonl"


def line(**fields: object) -> str:
    base: dict[str, object] = {"id": "q1", "question": "Who?", "gold_urls": ["https://x.example/a"]}
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


def test_the_shipped_example_loads() -> None:
    golden = load_golden(EXAMPLE)
    assert len(golden) == 28
    assert len(golden.answerable) == 24
    assert golden.sha256 == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert golden.path == EXAMPLE
    assert {c.type for c in golden if not c.answerable} == {"unanswerable"}
    assert {c.type for c in golden if c.answerable} == {"fact"}
    assert golden.by_id("q01").gold_spans == ["voted 7-4 late Tuesday to approve the Harbor Line"]


def test_every_bad_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join([
        line(id="q1"),  # 1 fine
        '{"id": "q2", "question": ',  # 2 invalid JSON
        line(id="q3"),  # 3 fine
        "[1, 2]",  # 4 not an object
        line(id="q5", foo=1),  # 5 unknown field
        line(id="q6", question=...),  # 6 missing question
        line(id="q1"),  # 7 duplicate id
        line(id="q8", gold_urls=[]),  # 8 answerable without gold
        "",  # 9 blank: skipped
        line(id="q10", question="   "),  # 10 empty question
        line(id="q11", gold_urls=[], answerable=False),  # 11 fine: unanswerable needs no gold
    ]) + "\n")
    with pytest.raises(GoldenSetError) as info:
        load_golden(path)
    err = info.value
    assert isinstance(err, NewsragError)
    assert [e.split(": ", 1)[0].split(" ")[0] for e in err.errors] == \
        [f"{path}:{n}" for n in (2, 4, 5, 6, 7, 8, 10)]
    text = str(err)
    assert f"{path}:2: invalid JSON" in text
    assert f"{path}:4: expected a JSON object, got list" in text
    assert f"{path}:5 (id 'q5'): unknown field 'foo'" in text
    assert f"{path}:6 (id 'q6'): missing field 'question'" in text
    assert f"{path}:7: duplicate id 'q1' (first on line 1)" in text
    assert f"{path}:8 (id 'q8'): answerable case has no gold evidence" in text
    assert f"{path}:10 (id 'q10'): question: question is empty" in text
    assert "7 problem(s)" in text


def test_at_most_twenty_errors_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join("not json" for _ in range(25)))
    with pytest.raises(GoldenSetError) as info:
        load_golden(path)
    assert len(info.value.errors) == 25
    assert f"{path}:20:" in str(info.value) and f"{path}:21:" not in str(info.value)
    assert "(+5 more)" in str(info.value)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(GoldenSetError, match="cannot read"):
        load_golden(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(GoldenSetError, match="no cases"):
        load_golden(tmp_path / "empty.jsonl")


def test_case_defaults_and_explicit_type() -> None:
    case = GoldenCase(id="x", question=" What? ", gold_spans=["a span"])
    assert (case.question, case.type, case.answerable, case.gold_doc_ids) == ("What?", "fact", True, [])
    assert GoldenCase(id="y", question="Q", answerable=False).type == "unanswerable"
    assert GoldenCase(id="z", question="Q", gold_doc_ids=["d"], type="number").type == "number"


def test_sample_is_seeded_and_keeps_file_order() -> None:
    golden = load_golden(EXAMPLE)
    first = golden.sample(5, seed=7)
    assert [c.id for c in first] == [c.id for c in golden.sample(5, seed=7)]
    assert len(first) == 5 and len({c.id for c in first}) == 5
    ids = [c.id for c in golden]
    assert [c.id for c in first] == sorted((c.id for c in first), key=ids.index)
    assert [c.id for c in golden.sample(5, seed=8)] != [c.id for c in first]
    assert golden.sample(100) == golden.cases
    with pytest.raises(ValueError):
        golden.sample(-1)


# -- feedback ----------------------------------------------------------------------------------

LONG_QUOTE = ("The Port Calder City Council voted 7-4 late Tuesday to approve the Harbor Line, a light "
              "rail line that will run from the ferry terminal to the airport.")


def answer(trace_id: str, text: str, citations: list[AnswerCitation], abstained: bool = False) -> Answer:
    return Answer(text=text, citations=citations, abstained=abstained, prompt_name="extractive",
                  prompt_version="n/a", generator="extractive", model="extractive/v1", trace_id=trace_id,
                  timings={"total": 5.0})


def cite(n: int, url: str, quote: str) -> AnswerCitation:
    return AnswerCitation(n=n, chunk_id=f"c{n}", doc_id=f"d{n}", url=url, title="T", quote=quote)


def test_cases_from_feedback(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    try:
        good = answer("t-good", f"{LONG_QUOTE} [1] It has 14 stations. [2]", [
            cite(1, "https://metro-daily.example/a.html", LONG_QUOTE),
            cite(2, "https://metro-daily.example/b.html", "It has 14 stations."),
            cite(1, "https://metro-daily.example/a.html", LONG_QUOTE),  # cited twice: listed once
        ])
        bad = answer("t-bad", "Wrong. [1]", [cite(1, "https://x.example/c", "Wrong.")])
        abstained = answer("t-abst", "The sources do not say.", [], abstained=True)
        uncited = answer("t-uncited", "Probably Tuesday.", [])
        for a, q in [(good, "How did the council vote?"), (bad, "Q bad?"), (abstained, "Who won chess?"),
                     (uncited, "When?")]:
            store.record_answer(a, q)
        store.add_feedback("t-good", 1)
        store.add_feedback("t-good", 1, comment="again")  # a second thumbs-up: still one case
        store.add_feedback("t-bad", -1, comment="wrong vote count")
        store.add_feedback("t-abst", 1)
        store.add_feedback("t-uncited", 1)
        cases, review = cases_from_feedback(store.feedback())
    finally:
        store.close()

    assert [c.id for c in cases] == ["feedback-t-good", "feedback-t-abst"]
    case = cases[0]
    assert case.question == "How did the council vote?"
    assert case.reference_answer == good.text
    assert case.gold_urls == ["https://metro-daily.example/a.html", "https://metro-daily.example/b.html"]
    assert case.gold_spans == [" ".join(LONG_QUOTE.split()[:20]), "It has 14 stations."]
    assert all(len(s.split()) <= 20 for s in case.gold_spans)
    assert case.tags == ["feedback"] and case.answerable and case.type == "fact"
    assert not cases[1].answerable and cases[1].type == "unanswerable" and cases[1].reference_answer is None

    assert [(r["trace_id"], r["reason"]) for r in review] == [
        ("t-bad", "thumbs-down"), ("t-uncited", "thumbs-up answer without citations")]
    assert review[0]["question"] == "Q bad?" and review[0]["answer"] == "Wrong. [1]"
    assert review[0]["comment"] == "wrong vote count" and review[0]["rating"] == -1

    # cases written out load back as a golden set; review items are plain JSON lines
    assert write_jsonl(tmp_path / "out" / "cases.jsonl", cases) == 2
    assert [c.id for c in load_golden(tmp_path / "out" / "cases.jsonl")] == [c.id for c in cases]
    assert write_jsonl(tmp_path / "out" / "review.jsonl", review) == 2
    rows = [json.loads(x) for x in (tmp_path / "out" / "review.jsonl").read_text().splitlines()]
    assert rows[0]["trace_id"] == "t-bad"
    assert not list((tmp_path / "out").glob(".*"))  # no temp file left behind
