"""URLs, dates, HTML-to-text, titles and language hints: the normalizers every source relies on."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from newsrag.ingest.normalize import (
    canonical_url,
    clean_text,
    clean_title,
    detect_language,
    parse_date,
)

pytestmark = pytest.mark.unit


# --- canonical_url ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://news.example.com/a/b?utm_source=rss&utm_medium=feed&utm_campaign=x",
            "https://news.example.com/a/b",
        ),
        (
            "https://news.example.com/a?fbclid=1&gclid=2&mc_cid=3&mc_eid=4&igshid=5&ref=6&ref_src=7",
            "https://news.example.com/a",
        ),
        (
            "https://news.example.com/a?cmpid=1&ncid=2&sr_share=3&_ga=4&yclid=5&spm=6&ocid=7",
            "https://news.example.com/a",
        ),
        (
            "https://news.example.com/a?at_medium=1&at_campaign=2&guccounter=3&UTM_Source=4",
            "https://news.example.com/a",
        ),
        # Other parameters survive, sorted by key, with their exact encoding.
        (
            "https://news.example.com/a?z=1&utm_term=q&a=x%20y&m=",
            "https://news.example.com/a?a=x%20y&m=&z=1",
        ),
        (
            "https://news.example.com/search?q=storm&page=2",
            "https://news.example.com/search?page=2&q=storm",
        ),
    ],
)
def test_canonical_url_strips_tracking_and_sorts_the_rest(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_canonical_url_normalizes_scheme_host_port_and_fragment_but_not_path() -> None:
    assert canonical_url("HTTPS://News.Example.COM:443/World/Story-1.HTML#comments") == (
        "https://news.example.com/World/Story-1.HTML"
    )
    assert canonical_url("http://news.example.com:80/a") == "http://news.example.com/a"
    assert canonical_url("http://news.example.com:8080/a") == "http://news.example.com:8080/a"
    assert canonical_url("https://news.example.com/a?") == "https://news.example.com/a"
    assert canonical_url("https://news.example.com") == "https://news.example.com/"
    assert canonical_url("  https://news.example.com/a  ") == "https://news.example.com/a"


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        (
            "/local/story.html",
            "https://news.example.com/feeds/rss.xml",
            "https://news.example.com/local/story.html",
        ),
        (
            "story.html",
            "https://news.example.com/feeds/rss.xml",
            "https://news.example.com/feeds/story.html",
        ),
        ("../b/c.html", "https://news.example.com/x/y/feed", "https://news.example.com/x/b/c.html"),
        ("//cdn.example.com/a.html", "https://news.example.com/", "https://cdn.example.com/a.html"),
        ("https://other.example.org/z", "https://news.example.com/", "https://other.example.org/z"),
    ],
)
def test_canonical_url_resolves_relative_links(url: str, base: str, expected: str) -> None:
    assert canonical_url(url, base=base) == expected


@pytest.mark.parametrize(
    "url",
    [
        "mailto:desk@example.com",
        "javascript:alert(1)",
        "ftp://example.com/file.txt",
        "tag:example.com,2024:article-1",
        "file:///etc/passwd",
        "http:///no-host",
        "/relative/without/base",
        "",
        "https://example.com:99999/bad-port",
    ],
)
def test_canonical_url_rejects_non_http_and_hostless_urls(url: str) -> None:
    with pytest.raises(ValueError):
        canonical_url(url)


# --- parse_date ------------------------------------------------------------------------------


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Fri, 05 Jan 2018 10:21:00 +0000", utc(2018, 1, 5, 10, 21)),
        ("Fri, 05 Jan 2018 10:21:00 GMT", utc(2018, 1, 5, 10, 21)),
        ("Fri, 05 Jan 2018 10:21:00 EST", utc(2018, 1, 5, 15, 21)),
        ("Mon, 16 Jan 2012 12:00:00 PDT", utc(2012, 1, 16, 19, 0)),
        ("Tue, 21 Aug 2012 10:33:00 CEST", utc(2012, 8, 21, 8, 33)),
        ("Wed, 5 Nov 2025 13:52:10  EST", utc(2025, 11, 5, 18, 52, 10)),
        ("January 5, 2018 10:00 AM EST", utc(2018, 1, 5, 15, 0)),
        # Portuguese and German day and month names, as real feeds send them.
        ("Sex, 05 Jan 2018 10:21:00 -0200", utc(2018, 1, 5, 12, 21)),
        ("Seg, 24 Set 2018 19:42:40 -0300", utc(2018, 9, 24, 22, 42, 40)),
        ("sáb, 06 jan 2018 08:00:00 -0300", utc(2018, 1, 6, 11, 0)),
        ("5 de janeiro de 2018", utc(2018, 1, 5)),
        ("Do, 05 Mär 2018 10:21:00 +0100", utc(2018, 3, 5, 9, 21)),
        ("Montag, 5. März 2018 10:00", utc(2018, 3, 5, 10, 0)),
        # ISO 8601 and friends; naive means UTC.
        ("2018-01-05T10:00:00+05:30", utc(2018, 1, 5, 4, 30)),
        ("2018-01-05T10:00:00Z", utc(2018, 1, 5, 10, 0)),
        ("20180105T100000Z", utc(2018, 1, 5, 10, 0)),
        ("2018-01-05 10:00", utc(2018, 1, 5, 10, 0)),
        ("2018-01-05", utc(2018, 1, 5)),
        # Epoch seconds (and milliseconds), as strings or numbers.
        ("1515147660", utc(2018, 1, 5, 10, 21)),
        (1515147660, utc(2018, 1, 5, 10, 21)),
        (1515147660000, utc(2018, 1, 5, 10, 21)),
    ],
)
def test_parse_date_formats(value: object, expected: datetime) -> None:
    parsed = parse_date(value)
    assert parsed == expected
    assert parsed is not None and parsed.utcoffset() == timedelta(0)


def test_parse_date_struct_time_datetime_and_date() -> None:
    assert parse_date(time.gmtime(1515147660)) == utc(2018, 1, 5, 10, 21)  # feedparser's *_parsed
    naive = parse_date(datetime(2018, 1, 5, 10, 0))
    assert naive == utc(2018, 1, 5, 10, 0) and naive is not None and naive.tzinfo is UTC
    plus_two = timezone(timedelta(hours=2))
    assert parse_date(datetime(2018, 1, 5, 10, 0, tzinfo=plus_two)) == utc(2018, 1, 5, 8, 0)
    assert parse_date(date(2018, 1, 5)) == utc(2018, 1, 5)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "yesterday",
        "now",
        "today",
        "not a date at all",
        "10:00",  # feedparser alone would say "today at 10:00"
        "Jan 5",  # no year: parsers would fill in the current one
        "1985-01-01",  # before 1990
        "2099-01-01T00:00:00Z",  # the future
        "0",
        True,
        object(),
        [2018, 1, 5],
    ],
)
def test_parse_date_unknown_is_none_never_now(value: object) -> None:
    assert parse_date(value) is None


def test_parse_date_accepts_up_to_two_days_ahead_only() -> None:
    soon = datetime.now(UTC) + timedelta(days=1)
    assert parse_date(soon) == soon
    assert parse_date(datetime.now(UTC) + timedelta(days=3)) is None


# --- clean_text / clean_title ----------------------------------------------------------------


def test_clean_text_drops_scripts_styles_and_keeps_paragraphs() -> None:
    html = (
        "<div><h2>Storm update</h2><p>Power is <b>back</b> for most homes.</p>"
        "<script>var secret = 'SCRIPT_PAYLOAD';</script><style>p { color: red }</style>"
        "<noscript>NOSCRIPT_TEXT</noscript><!-- COMMENT_TEXT -->"
        "<p>Crews   will\n work\tovernight.</p><ul><li>Shelter A</li><li>Shelter B</li></ul></div>"
    )
    assert clean_text(html) == (
        "Storm update\n\nPower is back for most homes.\n\nCrews will work overnight."
        "\n\nShelter A\n\nShelter B"
    )


def test_clean_text_unescapes_entities_once() -> None:
    assert clean_text("<p>Fish &amp; chips &mdash; &#8220;fresh&#8221; &amp;lt;b&amp;gt;</p>") == (
        "Fish & chips — “fresh” &lt;b&gt;"
    )
    assert clean_text("AT&amp;T and Verizon") == "AT&T and Verizon"


def test_clean_text_breaks_and_inline_tags() -> None:
    assert clean_text("First line<br>second line<br/><br/>third") == (
        "First line\n\nsecond line\n\nthird"
    )
    assert clean_text("<p>A <a href='/x'>link</a>, an <em>emphasis</em>.</p>") == (
        "A link, an emphasis."
    )


def test_clean_text_plain_text_keeps_paragraphs_and_angle_brackets() -> None:
    text = "First paragraph\nstill first.\n\n\nSecond paragraph: 3 < 4 and 5 > 2.\r\n\r\nThird."
    assert clean_text(text) == (
        "First paragraph still first.\n\nSecond paragraph: 3 < 4 and 5 > 2.\n\nThird."
    )


def test_clean_text_removes_control_characters_and_surrogates() -> None:
    dirty = "<p>Bad\x00 bytes\x07 here\ud800 and\ufeff\u200b there\x1b.</p>"
    cleaned = clean_text(dirty)
    assert cleaned == "Bad bytes here and there."
    cleaned.encode("utf-8")  # no lone surrogates left


@pytest.mark.parametrize(
    "broken",
    [
        "<div><p>unclosed <i>italic <b>bold",
        "</p></div>stray closers<p>",
        "<p>attr without quote <a href=x onclick=alert(1)>x</a",
        "<<<>>> <p>text</p> <",
        "<table><tr><td>cell one<td>cell two</table>",
        '<?xml version="1.0" encoding="utf-8"?><p>xml declared</p>',
    ],
)
def test_clean_text_survives_broken_html(broken: str) -> None:
    cleaned = clean_text(broken)
    assert isinstance(cleaned, str)
    assert "<p" not in cleaned and "</" not in cleaned and "onclick" not in cleaned


def test_clean_text_empty_and_comment_only() -> None:
    assert clean_text("") == ""
    assert clean_text("   \n ") == ""
    assert clean_text("<!-- nothing -->") == ""
    assert clean_text("<script>only()</script>") == ""


def test_clean_title() -> None:
    assert clean_title("  <b>Port</b> expansion\n  <i>approved</i> &amp; funded ") == (
        "Port expansion approved & funded"
    )
    assert clean_title("<p>Para one</p><p>Para two</p>") == "Para one Para two"
    assert clean_title(None) == ""
    assert clean_title("Apple < Microsoft?") == "Apple < Microsoft?"


# --- detect_language -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "expected"),
    [("en-US", "en"), ("EN", "en"), ("pt_BR", "pt"), ("de", "de"), ("sk-SK", "sk"), ("fil", "fil")],
)
def test_detect_language_normalizes_hints(hint: str, expected: str) -> None:
    assert detect_language("some text", hint) == expected


@pytest.mark.parametrize("hint", [None, "", "english!", "12", "x"])
def test_detect_language_without_usable_hint_is_none(hint: str | None) -> None:
    assert detect_language("The council voted on Tuesday.", hint) is None
