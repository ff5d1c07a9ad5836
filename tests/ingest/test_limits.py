"""Field limits on collected articles (issue 11, defect 5): cut with a named warning, identities
over their limit refused, lone surrogates never passed on, reports bounded."""

from __future__ import annotations

import json

import pytest

from newsrag.core.errors import ConfigError
from newsrag.core.settings import load
from newsrag.ingest.limits import FieldLimits, bound_articles, cap_chunks, cut_text
from newsrag.ingest.models import Article, IngestReport, ItemFailure

pytestmark = pytest.mark.unit

URL = "https://x.example.com/story"
LIMITS = FieldLimits()


def article(**kw: object) -> Article:
    fields: dict[str, object] = {"source_id": "s", "url": URL, "title": "Title", "text": "Body text."}
    return Article(**{**fields, **kw})


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (LIMITS.max_title_chars, LIMITS.max_author_chars, LIMITS.max_url_chars) == (500, 200, 2048)
    assert (LIMITS.max_text_chars, LIMITS.max_chunks_per_article) == (200_000, 200)
    monkeypatch.setenv("NEWSRAG_INGEST_MAX_TITLE_CHARS", "120")
    assert load(FieldLimits).max_title_chars == 120
    monkeypatch.setenv("NEWSRAG_INGEST_MAX_TITLE_CHARS", "3")
    with pytest.raises(ConfigError, match="NEWSRAG_INGEST_MAX_TITLE_CHARS"):
        load(FieldLimits)


def test_a_five_million_character_title_is_cut_with_a_named_warning() -> None:
    huge = article(title="Breaking " * 555_556)  # 5,000,004 characters
    out = bound_articles([huge], LIMITS, "hostile")
    (kept,) = out.articles
    assert len(kept.title) <= 500 and kept.title.startswith("Breaking Breaking") and kept.title.endswith("…")
    assert out.failures == []
    assert [(w.item, w.reason) for w in out.warnings] == [
        (URL, f"title cut from 5,000,004 to {len(kept.title)} characters")
    ]
    assert kept.text == huge.text and kept.url == huge.url


def test_author_and_text_are_cut_too() -> None:
    paragraphs = "\n\n".join(f"Paragraph {n} " + "word " * 50 for n in range(2000))
    out = bound_articles([article(author="A" * 1000, text=paragraphs)], LIMITS)
    (kept,) = out.articles
    assert kept.author == "A" * 199 + "…"
    assert len(kept.text) <= 200_000 and kept.text.endswith("…")
    assert kept.text[:-1] == paragraphs[: len(kept.text) - 1]
    assert paragraphs[len(kept.text) - 1:].lstrip(" ").startswith("\n\nParagraph")  # at a paragraph break
    assert [w.reason.split(" cut")[0] for w in out.warnings] == ["author", "text"]


def test_an_over_long_url_or_key_fails_the_item_instead() -> None:
    long_url = URL + "?q=" + "x" * 3000
    ok = article(url=URL + "/fine")
    out = bound_articles([article(url=long_url), article(url="", key="k" * 5000), ok], LIMITS)
    assert out.articles == [ok]
    reasons = [f.reason for f in out.failures]
    assert reasons[0] == f"URL is {len(long_url):,} characters, over the limit of 2,048; an identity is never cut"
    assert reasons[1].startswith("key is 5,000 characters")
    assert all(len(f.item) <= 500 for f in out.failures)  # the report names it, bounded


def test_lone_surrogates_never_pass() -> None:
    out = bound_articles([article(title="A\ud800B", text="x\udfffy", author="J\ud800"),
                          article(url=URL + "/\ud800")], LIMITS)
    (kept,) = out.articles
    assert (kept.title, kept.text, kept.author) == ("AB", "xy", "J")
    assert out.failures[0].reason == "URL holds a lone surrogate (not valid Unicode)"
    assert out.warnings == []  # nothing was cut
    kept.doc_id  # noqa: B018 - hashing the identity as UTF-8 works


def test_articles_within_the_limits_pass_untouched() -> None:
    fine = article(author="Jane Doe")
    out = bound_articles([fine], LIMITS)
    assert out.articles[0] is fine and (out.failures, out.warnings) == ([], [])


@pytest.mark.parametrize("limit", [16, 17, 100, 501])
def test_cut_text_never_exceeds_the_limit(limit: int) -> None:
    for value in ("word " * 500, "x" * 1000, "para one\n\n" * 100):
        cut = cut_text(value, limit, paragraphs=True)
        assert len(cut) <= limit and cut.endswith("…")


def test_cap_chunks_keeps_the_first_and_names_the_cut() -> None:
    limits = FieldLimits(max_chunks_per_article=3)
    chunks, warning = cap_chunks(article(), list(range(10)), limits)
    assert chunks == [0, 1, 2]
    assert warning is not None and warning.item == URL
    assert warning.reason == "chunks cut from 10 to 3 (the rest of the text is not indexed)"
    assert cap_chunks(article(), [0, 1, 2], limits) == ([0, 1, 2], None)


def test_item_failures_are_bounded_and_valid_utf8() -> None:
    failure = ItemFailure(item="https://x.example.com/" + "a" * 5_000_000, reason="bad \ud800 " + "r" * 5000)
    assert len(failure.item) == 500 and failure.item.endswith("…")
    assert len(failure.reason) == 1000 and "\ufffd" in failure.reason
    failure.reason.encode("utf-8")


def test_warnings_travel_in_the_report_as_json() -> None:
    report = IngestReport(source_id="s", warnings=[ItemFailure(item=URL, reason="title cut from 9 to 5 characters")])
    restored = IngestReport.model_validate(json.loads(json.dumps(report.model_dump(mode="json"))))
    assert restored.warnings == report.warnings and IngestReport(source_id="s").warnings == []
