"""Feeds, article pages and sitemaps from the hand-written fixtures in tests/fixtures/."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest

import newsrag.ingest.parse as parse_module
from newsrag.core.errors import ItemError, SourceError
from newsrag.ingest.feed_boundary import sanitized, split_items
from newsrag.ingest.normalize import canonical_url
from newsrag.ingest.parse import (
    FeedParseResult,
    check_xml_safety,
    extract_article,
    parse_feed,
    parse_html_file,
    parse_sitemap,
)

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FEEDS = FIXTURES / "feeds"
PAGES = FIXTURES / "pages"


def feed(
    name: str, url: str = "https://news.example.com/feeds/feed.xml", **kw: Any
) -> FeedParseResult:
    return parse_feed((FEEDS / name).read_bytes(), source_id="test", feed_url=url, **kw)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- full-text RSS ---------------------------------------------------------------------------


def test_rss_full_text_feed() -> None:
    result = feed("rss_full.xml", tags=("local", "gazette"))
    assert (len(result.articles), len(result.failures), len(result.needs_fetch)) == (4, 0, 0)
    assert result.title == "The Riverton Gazette"
    assert result.language == "en"
    assert result.items_seen == 4
    assert [a.url for a in result.articles] == [
        "https://gazette.example.com/local/2024/03/12/council-approves-bus-rapid-transit",
        "https://gazette.example.com/weather/2024/03/13/overnight-storm-power-outages",
        # utm_* stripped, the real parameter kept
        "https://gazette.example.com/business/2024/03/14/northwind-quarterly-earnings?section=markets",
        "https://gazette.example.com/science/2024/03/15/lake-sediment-ancient-flood",
    ]
    first = result.articles[0]
    assert first.title == "Riverton council approves $48 million bus rapid transit line"
    assert first.published_at == utc(2024, 3, 13, 3, 15)  # -0500 converted to UTC
    assert first.author == "Maria Delgado"
    assert first.language == "en"
    assert first.tags == ("local", "gazette")
    assert first.source_id == "test"
    for article in result.articles:
        assert 150 <= len(article.text.split()) <= 400  # content:encoded, not the one-line summary
        assert "<" not in article.text and "CDATA" not in article.text
        assert article.text.count("\n\n") >= 4  # paragraphs survive
    assert "\n\nFour hours of public comment\n\n" in first.text
    assert "\n\nShelters are open at Riverton High School" in result.articles[1].text


def test_max_items_takes_the_first_entries_in_feed_order() -> None:
    result = feed("rss_full.xml", max_items=2)
    assert result.items_seen == 2
    assert [a.title.split()[0] for a in result.articles] == ["Riverton", "Overnight"]


def test_feed_served_with_wrong_content_type_still_parses() -> None:
    assert len(feed("rss_full.xml", content_type="text/html; charset=utf-8").articles) == 4
    assert len(feed("rss_full.xml", content_type="text/xml").articles) == 4


# --- Atom ------------------------------------------------------------------------------------


def test_atom_relative_links_xml_base_and_html_title() -> None:
    result = feed("atom.xml", url="https://www.harbortimes.example/feeds/latest.atom")
    assert (len(result.articles), len(result.failures), len(result.needs_fetch)) == (3, 0, 1)
    assert result.title == "Harbor Times — Latest"
    ferry, port, rowing = result.articles
    assert ferry.url == "https://www.harbortimes.example/news/2024/04/01/ferry-late-night-sailings"
    assert port.url == "https://www.harbortimes.example/news/2024/04/02/port-expansion-approved"
    assert rowing.url == "https://www.harbortimes.example/sport/2024/04/03/rowing-regatta"
    assert port.title == "Port expansion approved after marathon planning hearing"
    assert ferry.published_at == utc(2024, 4, 1, 6, 30)  # published (+01:00), not updated
    assert rowing.published_at == utc(2024, 4, 3, 17, 45)  # only <updated>
    assert (ferry.author, port.author) == ("Olivia Grant", "Samir Haddad")
    assert ferry.language == "en"  # xml:lang="en-GB"
    assert "“For years people have asked us for this,” said" in ferry.text
    assert port.text.startswith("The regional planning board has approved a £210 million")
    assert result.needs_fetch == [rowing]  # summary only, one sentence


# --- odd items -------------------------------------------------------------------------------


def test_odd_items_failures_and_reasons() -> None:
    result = feed("odd_items.xml", url="https://odd.example.com/feeds/odd.xml")
    assert len(result.articles) == 8
    assert [(f.item, f.reason) for f in result.failures] == [
        ("odd-0001", "missing link"),
        (
            "https://odd.example.com/local/2018/01/05/bridge-closure.html",
            "duplicate link (same as item #2)",
        ),
        ("javascript:alert(1)", "invalid link: not an http(s) URL: 'javascript:alert(1)'"),
        ("https://odd.example.com/local/empty.html", "empty item"),
        ("12345", "missing link"),  # a permalink guid that is no URL is not a link
    ]


def test_odd_items_dates_titles_and_links() -> None:
    result = feed("odd_items.xml", url="https://odd.example.com/feeds/odd.xml")
    by_path = {a.url.removeprefix("https://odd.example.com"): a for a in result.articles}
    assert {path: a.published_at for path, a in by_path.items()} == {
        "/local/2018/01/05/bridge-closure.html": utc(2018, 1, 5, 12, 21),  # "Sex, ... -0200"
        "/local/2018/01/05/school-budget.html": utc(2018, 1, 5),  # "2018-01-05"
        "/local/mystery-date.html": None,  # "yesterday"
        "/local/2018/01/06/council-meeting.html": utc(2018, 1, 6, 9, 0),
        "/local/2018/01/06/north-shore-water.html": utc(2018, 1, 6, 12, 0),
        "/local/2018/01/06/guid-only.html": None,  # link from the permalink guid
        "/politics/2018/01/05/bold-move.html": utc(2018, 1, 5, 15, 21),  # EST
        "/local/2018/01/07/dc-date.html": utc(2018, 1, 7, 7, 0),  # dc:date
    }
    assert by_path["/politics/2018/01/05/bold-move.html"].title == "Bold move by the mayor"
    untitled = by_path["/local/2018/01/06/north-shore-water.html"]
    assert untitled.title.startswith("Residents of the north shore are asked to boil")
    assert len(untitled.title) <= 81 and untitled.title.endswith("…")
    council = by_path["/local/2018/01/06/council-meeting.html"]
    assert council.text == (
        "The council meeting has been moved to Thursday at 7 p.m.\n\n"
        "It will take place in the library annex."
    )
    for article in result.articles:
        assert "EVIL_PAYLOAD" not in article.text and "document.write" not in article.text
        assert ".promo" not in article.text and "steal()" not in article.text
        assert article.language == "pt"  # the channel's pt-BR
    assert len(result.needs_fetch) == 8  # all are one-line descriptions


def test_an_unexpected_error_in_one_entry_becomes_its_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = parse_module._entry_date

    def flaky(entry: Any) -> datetime | None:
        if "storm" in entry.get("link", ""):
            raise RuntimeError("boom")
        return real(entry)

    monkeypatch.setattr(parse_module, "_entry_date", flaky)
    result = feed("rss_full.xml")
    assert len(result.articles) == 3
    assert [(f.item, f.reason) for f in result.failures] == [
        (
            "https://gazette.example.com/weather/2024/03/13/overnight-storm-power-outages",
            "RuntimeError: boom",
        )
    ]


# --- summary-only feeds ----------------------------------------------------------------------


def test_summary_only_items_need_fetching() -> None:
    result = feed("summary_only.xml", url="https://metro.example.com/feeds/top.xml")
    assert (len(result.articles), len(result.failures)) == (3, 0)
    assert [a.url for a in result.needs_fetch] == [
        "https://metro.example.com/articles/one.html",  # < 400 chars
        "https://metro.example.com/articles/two.html",  # relative link; summary only, < 1000 chars
    ]
    three = result.articles[2]
    assert three.url == "https://metro.example.com/articles/three.html"
    assert len(three.text) > 1000 and three not in result.needs_fetch
    assert 400 < len(result.articles[1].text) < 1000


# --- encodings, empty feeds, source-level errors ---------------------------------------------


def test_latin1_bytes_declared_as_utf8_still_parse() -> None:
    data = (FEEDS / "not_utf8.xml").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    result = feed("not_utf8.xml", url="https://kultur.example.de/feed")
    assert (len(result.articles), len(result.failures)) == (2, 0)
    first, second = result.articles
    assert first.title == "Café Müller reopens in São Paulo street"
    assert "crème brûlée" in first.text and "½ price" in first.text
    assert second.title == "François Dupré wins the Århus prize"
    for article in result.articles:
        assert "\ufffd" not in article.title + article.text
        (article.title + article.text).encode("utf-8")


def test_caller_supplied_encoding_is_used() -> None:
    result = feed("not_utf8.xml", url="https://kultur.example.de/feed", encoding="iso-8859-1")
    assert result.articles[0].title == "Café Müller reopens in São Paulo street"


def test_empty_feed_is_not_an_error() -> None:
    result = feed("empty.xml")
    assert (result.articles, result.failures, result.needs_fetch) == ([], [], [])
    assert result.title == "Riverton Gazette — Corrections"


def test_malformed_feed_is_a_source_error_with_the_parser_message() -> None:
    data = (FEEDS / "malformed.xml").read_bytes()
    with pytest.raises(SourceError) as caught:
        parse_feed(data, source_id="broken", feed_url="https://news.example.com/feed")
    bozo = str(feedparser.parse(io.BytesIO(data)).bozo_exception)
    assert "malformed" in caught.value.reason and bozo in caught.value.reason
    assert caught.value.source_id == "broken" and caught.value.retryable is False


def test_html_page_is_not_a_feed() -> None:
    with pytest.raises(SourceError) as caught:
        feed("html_page.xml", content_type="text/html; charset=utf-8")
    assert "HTML" in caught.value.reason and "not a feed" in caught.value.reason
    with pytest.raises(SourceError, match="HTML"):
        feed("html_page.xml")  # no content type: the markup alone gives it away


@pytest.mark.parametrize("name", ["entity_bomb.xml", "xxe.xml"])
def test_entity_declarations_are_refused(name: str) -> None:
    data = (FEEDS / name).read_bytes()
    with pytest.raises(SourceError) as caught:
        check_xml_safety(data, "evil")
    assert "entity" in caught.value.reason
    with pytest.raises(SourceError) as caught:
        parse_feed(data, source_id="evil", feed_url="https://evil.example.com/feed")
    assert "entity" in caught.value.reason and "root:" not in str(caught.value)


def test_entities_in_broken_xml_are_refused_too() -> None:
    data = (FEEDS / "xxe.xml").read_bytes().replace(b"</rss>", b"<unclosed>")
    with pytest.raises(SourceError, match="entity"):
        check_xml_safety(data, "evil")


def test_plain_doctype_is_allowed() -> None:
    data = (
        b'<?xml version="1.0"?>\n<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"'
        b' "http://my.netscape.com/publish/formats/rss-0.91.dtd">\n<rss version="0.91"><channel>'
        b"<title>Old</title><link>https://old.example.com/</link><description>d</description>"
        b"<item><title>Old item</title><link>https://old.example.com/1</link>"
        b"<description>Old text</description></item></channel></rss>"
    )
    check_xml_safety(data, "old")
    result = parse_feed(data, source_id="old", feed_url="https://old.example.com/rss")
    assert [a.url for a in result.articles] == ["https://old.example.com/1"]


@pytest.mark.parametrize("data", [b"", b"plain text", b'{"items": []}', b"<foo><bar/></foo>"])
def test_non_feeds_are_source_errors(data: bytes) -> None:
    with pytest.raises(SourceError):
        parse_feed(data, source_id="x", feed_url="https://news.example.com/feed")


def test_bytes_naming_a_local_file_are_never_read_as_a_path(tmp_path: Path) -> None:
    local_feed = tmp_path / "secret.xml"
    local_feed.write_bytes((FEEDS / "rss_full.xml").read_bytes())
    with pytest.raises(SourceError):  # feedparser would happily open() a path given as bytes
        parse_feed(str(local_feed).encode(), source_id="x", feed_url="https://news.example.com/f")


# --- article pages ---------------------------------------------------------------------------


def test_extract_article_keeps_the_body_and_drops_boilerplate() -> None:
    html = (PAGES / "articles" / "one.html").read_bytes()
    article = extract_article(
        html, url="https://metro.example.com/articles/one.html?utm_source=rss", source_id="metro"
    )
    assert article.url == "https://metro.example.com/articles/one.html"
    assert article.title == "City library to open on Sundays from May"
    assert article.author == "Rachel Moore"
    assert article.published_at == utc(2024, 4, 8, 7, 0)
    assert article.language == "en"
    assert article.text.startswith("The central library will open from noon to 5 p.m. on Sundays")
    assert "paid for from a bequest left to the library" in article.text
    assert '"Families have been asking for this for years," Webb said.' in article.text
    assert article.text.endswith("extend Sunday opening to the branches.")
    assert article.text.count("\n\n") >= 4
    for junk in (
        "INJECTED_SCRIPT_PAYLOAD",
        "ONERROR_PAYLOAD",
        "HEAD_SCRIPT_MARKER",
        "document.",
        "COMMENT_MARKER",
        "ADVERTISEMENT",
        "Subscribe for $1",
        "Most read",
        "All rights reserved",
        "<",
    ):
        assert junk not in article.text, junk


def test_extract_article_second_page_from_str() -> None:
    html = (PAGES / "articles" / "two.html").read_text(encoding="utf-8")
    article = extract_article(
        html, url="https://metro.example.com/articles/two.html", source_id="m"
    )
    assert article.title == "Heat pump grants draw 4,000 applications in a week"
    assert article.author == "Tomás Alvarez"
    assert article.published_at == utc(2024, 4, 9, 6, 30)
    assert "Priority will go to low-income households" in article.text
    assert "carbon emissions by about two tonnes a year" in article.text
    for junk in ("INJECTED_SCRIPT_PAYLOAD", "ONERROR_PAYLOAD", "NOSCRIPT_MARKER", "COMMENT_MARKER"):
        assert junk not in article.text, junk
    assert "We use cookies" not in article.text and "Save 40% on solar" not in article.text


def test_extract_article_uses_the_fallback_title() -> None:
    sentence = "the harbour authority confirmed on Monday that the new berth will open next spring."
    page = "<html><body><article>"
    page += (
        "".join(f"<p>Paragraph {i}: {sentence}</p>" for i in range(5)) + "</article></body></html>"
    )
    article = extract_article(
        page, url="https://x.example.com/a", source_id="x", fallback_title="Harbour <b>berth</b>"
    )
    assert article.title == "Harbour berth"
    assert article.published_at is None  # the page has no date: unknown, not "now"


@pytest.mark.parametrize(
    "html",
    [
        "",
        "<html><head><title>x</title></head><body></body></html>",
        "<html><body><script>document.write('x')</script></body></html>",
    ],
)
def test_extract_article_without_text_is_an_item_error(html: str) -> None:
    with pytest.raises(ItemError) as caught:
        extract_article(html, url="https://x.example.com/empty", source_id="x")
    assert "no article text could be extracted" in caught.value.reason
    assert caught.value.item_id == "https://x.example.com/empty"


def test_extract_article_rejects_a_non_http_url() -> None:
    with pytest.raises(ItemError, match="invalid URL"):
        extract_article("<p>x</p>", url="file:///etc/passwd", source_id="x")


def test_parse_html_file_keys_by_path_and_uses_the_canonical_link() -> None:
    path = PAGES / "articles" / "one.html"
    article = parse_html_file(path.read_text(encoding="utf-8"), path=str(path), source_id="folder")
    assert article.key == str(path)
    assert article.url == "https://metro.example.com/articles/one.html"  # <link rel=canonical>
    assert article.title == "City library to open on Sundays from May"
    other = PAGES / "articles" / "two.html"
    without_canonical = parse_html_file(
        other.read_text(encoding="utf-8"), path=str(other), source_id="f"
    )
    assert without_canonical.url.startswith("file://") and without_canonical.key == str(other)


# --- sitemaps --------------------------------------------------------------------------------


def test_sitemap_urlset_with_news_metadata() -> None:
    data = (FEEDS / "sitemap_news.xml").read_bytes()
    result = parse_sitemap(
        data, source_id="metro", base_url="https://metro.example.com/sitemap.xml"
    )
    assert result.urls == [
        (
            "https://metro.example.com/articles/one.html",
            utc(2024, 4, 8, 7, 0),
            "City library to open on Sundays from May",
        ),
        ("https://metro.example.com/articles/two.html", utc(2024, 4, 9, 12, 15), None),  # lastmod
        ("https://metro.example.com/articles/three.html", None, None),  # relative loc, bad date
    ]
    assert result.child_sitemaps == []
    assert [f.item for f in result.failures] == ["ftp://metro.example.com/archive.zip"]


def test_sitemap_index_lists_child_sitemaps() -> None:
    data = (FEEDS / "sitemap_index.xml").read_bytes()
    result = parse_sitemap(data, source_id="metro", base_url="https://metro.example.com/")
    assert result.urls == []
    assert result.child_sitemaps == [
        "https://metro.example.com/sitemaps/news.xml",
        "https://metro.example.com/sitemaps/2024-03.xml.gz",
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<urlset><url><loc>https://a.example.com/</loc>", "malformed"),
        ((FEEDS / "entity_bomb.xml").read_bytes(), "entity"),
        ((FEEDS / "xxe.xml").read_bytes(), "entity"),
        ((FEEDS / "rss_full.xml").read_bytes(), "not a sitemap"),
        (gzip.compress((FEEDS / "sitemap_index.xml").read_bytes()), "gzip"),
    ],
)
def test_bad_sitemaps_are_source_errors(data: bytes, reason: str) -> None:
    with pytest.raises(SourceError) as caught:
        parse_sitemap(data, source_id="s", base_url="https://a.example.com/")
    assert reason in caught.value.reason


# --- hostile input: one exception boundary per item (issue 11, defect 4) ---------------------
# feedparser 6 raises on these instead of flagging the feed bozo; each was one unhandled
# exception that failed the whole source with "internal error".


def hostile_rss(titles: list[str], channel: str = "") -> bytes:
    items = "".join(
        f"<item><title>{title}</title><link>https://x.example.com/{n}</link>"
        f"<description>Body of item {n}, long enough to read.</description></item>"
        for n, title in enumerate(titles)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Hostile</title>'
        f"<link>https://x.example.com/</link>{channel}{items}</channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    ("reference", "exception"),
    [
        ("&#xD800;", "UnicodeEncodeError"),  # a lone surrogate
        ("&#55296;", "UnicodeEncodeError"),  # the same, decimal
        ("&#99999999999;", "OverflowError"),
        ("&#x110000;", "ValueError"),  # past U+10FFFF
        ("&#" + "9" * 5000 + ";", "ValueError"),  # over int()'s 4,300-digit limit
    ],
)
def test_a_bad_character_reference_fails_only_its_item(reference: str, exception: str) -> None:
    data = hostile_rss(["First story", f"Bad {reference} story", "Third story"])
    result = parse_feed(data, source_id="hostile", feed_url="https://x.example.com/feed")
    assert [a.url for a in result.articles] == ["https://x.example.com/0", "https://x.example.com/2"]
    assert [f.item for f in result.failures] == ["https://x.example.com/1"]
    assert result.failures[0].reason.startswith(f"the feed parser failed on this item: {exception}")
    assert result.items_seen == 3 and result.title == "Hostile"


def test_an_empty_width_in_an_item_fails_only_that_item() -> None:
    nested = "Second <image><title><width></width></title></image>"  # TypeError: int(None)
    data = hostile_rss(["First story", nested, "Third story"])
    result = parse_feed(data, source_id="hostile", feed_url="https://x.example.com/feed")
    assert len(result.articles) == 2
    assert [(f.item, f.reason.split(":")[1].strip()) for f in result.failures] == [
        ("https://x.example.com/1", "TypeError")
    ]


@pytest.mark.parametrize(
    "channel",
    [
        "<image><title><width></width></title></image>",  # an empty <width> in the feed's <image>
        "<image><title>Logo &#xD800;</title></image>",
        "<copyright>&#99999999999;</copyright>",
    ],
)
def test_bad_feed_level_markup_fails_no_item(channel: str) -> None:
    data = hostile_rss(["First story", "Second story"], channel=channel)
    result = parse_feed(data, source_id="hostile", feed_url="https://x.example.com/feed")
    assert (len(result.articles), result.failures) == (2, [])
    assert result.title == "Hostile" and result.link == "https://x.example.com/"


def test_a_bad_reference_in_the_feed_title_is_replaced_not_fatal() -> None:
    data = hostile_rss(["First story"]).replace(b"<title>Hostile</title>", b"<title>Hos&#xD800;tile</title>")
    result = parse_feed(data, source_id="hostile", feed_url="https://x.example.com/feed")
    assert result.title == "Hos\ufffdtile" and len(result.articles) == 1


def test_many_items_with_one_bad_reference_keep_their_order() -> None:
    titles = [f"Story {n}" for n in range(40)]
    titles[17] = "Story &#x110000; seventeen"
    result = parse_feed(
        hostile_rss(titles), source_id="hostile", feed_url="https://x.example.com/feed", max_items=30
    )
    assert [a.title for a in result.articles] == [f"Story {n}" for n in range(30) if n != 17]
    assert [f.item for f in result.failures] == ["https://x.example.com/17"]
    assert result.items_seen == 30


def test_a_feed_the_parser_cannot_read_at_all_is_a_named_source_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("parser bug")

    monkeypatch.setattr(feedparser, "parse", broken)
    with pytest.raises(SourceError) as caught:
        feed("rss_full.xml")
    assert caught.value.reason == "the feed could not be parsed: RuntimeError: parser bug"


def test_unreadable_feed_metadata_is_none_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    real = parse_module.parse_isolated

    class Unreadable(feedparser.FeedParserDict):
        def get(self, key: str, default: Any = None) -> Any:
            raise KeyError(key)

    def with_odd_metadata(*args: Any, **kwargs: Any) -> Any:
        parsed, failures = real(*args, **kwargs)
        parsed["feed"] = Unreadable()
        return parsed, failures

    monkeypatch.setattr(parse_module, "parse_isolated", with_odd_metadata)
    result = feed("rss_full.xml")
    assert (result.title, result.language, result.link) == (None, None, None)
    assert len(result.articles) == 4 and result.failures == []


def test_a_multi_byte_encoding_with_a_doctype_is_parsed_not_raised() -> None:
    # expat refuses multi-byte encodings with ValueError (not ParseError) in the entity check
    data = (
        '<?xml version="1.0" encoding="shift_jis"?><!DOCTYPE rss><rss version="2.0"><channel>'
        "<title>東京</title><item><title>ニュース</title><link>https://jp.example.com/1</link>"
        "<description>本文です</description></item></channel></rss>"
    ).encode("shift_jis")
    result = parse_feed(data, source_id="jp", feed_url="https://jp.example.com/feed")
    assert result.title == "東京" and [a.title for a in result.articles] == ["ニュース"]


def test_split_items_pairs_tags_even_when_closing_tags_are_missing() -> None:
    data = b"<rss><channel><t/><item>a</item>gap<entry x='1'>b</entry><item>c</item><item>unclosed"
    head, tail, items = split_items(data)
    assert items == [b"<item>a</item>", b"<entry x='1'>b</entry>", b"<item>c</item>"]
    assert head == b"<rss><channel><t/>" and tail == b"gap<item>unclosed"
    assert split_items(b"<rss/>") == (b"<rss/>", b"", [])


def test_sanitized_replaces_only_invalid_references() -> None:
    data = b"<a>&#xD800; &#65; &#x1F600; &#0; &#99999999999; &#x110000;</a><width></width><b>x</b>"
    assert sanitized(data) == (
        b"<a>&#xFFFD; &#65; &#x1F600; &#xFFFD; &#xFFFD; &#xFFFD;</a><b>x</b>"
    )


def test_canonical_url_refuses_a_lone_surrogate() -> None:
    with pytest.raises(ValueError, match="lone surrogate"):
        canonical_url("https://x.example.com/\ud800")


def test_an_unexpected_error_in_page_extraction_is_an_item_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(tree: Any) -> str | None:
        raise RuntimeError("lxml bug")

    monkeypatch.setattr(parse_module, "_html_language", broken)
    html = (PAGES / "articles" / "one.html").read_bytes()
    with pytest.raises(ItemError) as caught:
        extract_article(html, url="https://metro.example.com/articles/one.html", source_id="m")
    assert caught.value.reason == "extraction failed: RuntimeError: lxml bug"
    assert caught.value.item_id == "https://metro.example.com/articles/one.html"
    with pytest.raises(ItemError, match="RuntimeError"):
        parse_html_file(html.decode(), path="/tmp/one.html", source_id="folder")


def test_a_sitemap_in_a_multi_byte_encoding_is_a_named_source_error() -> None:
    data = (
        '<?xml version="1.0" encoding="shift_jis"?><urlset><url><loc>https://jp.example.com/1</loc>'
        "</url></urlset>"
    ).encode("shift_jis")
    with pytest.raises(SourceError) as caught:
        parse_sitemap(data, source_id="jp", base_url="https://jp.example.com/")
    assert "multi-byte encodings are not supported" in caught.value.reason


def test_an_unexpected_error_in_one_sitemap_entry_fails_only_that_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = parse_module.parse_date

    def flaky(value: object) -> datetime | None:
        if value == "2024-04-09T08:15:00-04:00":
            raise RuntimeError("date bug")
        return real(value)

    monkeypatch.setattr(parse_module, "parse_date", flaky)
    data = (FEEDS / "sitemap_news.xml").read_bytes()
    result = parse_sitemap(data, source_id="metro", base_url="https://metro.example.com/sitemap.xml")
    assert [u.url.rsplit("/", 1)[1] for u in result.urls] == ["one.html", "three.html"]
    assert ("https://metro.example.com/articles/two.html", "RuntimeError: date bug") in [
        (f.item, f.reason) for f in result.failures
    ]
