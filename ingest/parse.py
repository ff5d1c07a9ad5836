"""Untrusted feed, sitemap and page bytes -> Articles. A bad item becomes an ItemFailure; a source
that is no feed at all raises SourceError. Entity declarations (billion laughs, XXE) are refused.

Every parser has one exception boundary per item: whatever a third-party parser (feedparser,
trafilatura, ElementTree) raises on one item fails that item, and a document that cannot be read
at all is a SourceError naming the reason, never an unhandled exception."""

from __future__ import annotations

import re
import xml.sax
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from newsrag.core.errors import ItemError, SourceError
from newsrag.ingest.feed_boundary import parse_isolated
from newsrag.ingest.models import Article, ItemFailure
from newsrag.ingest.normalize import (
    canonical_url,
    clean_text,
    clean_title,
    detect_language,
    parse_date,
    utc_offset_minutes,
)

SUMMARY_MIN_CHARS = 400  # shorter than this after cleaning: only a teaser, fetch the page
SUMMARY_ONLY_MAX_CHARS = 1000  # text from <description>/<summary> only and shorter: fetch too
TITLE_FROM_TEXT_CHARS = 80

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
_DOCTYPE = re.compile(r"<!DOCTYPE", re.IGNORECASE)
_ENTITY = re.compile(r"<!ENTITY", re.IGNORECASE)
_PROLOG = re.compile(r"^(\s|<\?.*?\?>|<!--.*?-->)*", re.DOTALL)
_HTML_ROOT = re.compile(r"<!DOCTYPE\s+html|<(html|head|body)[\s>]", re.IGNORECASE)
_FEED_ROOT = re.compile(r"<(rss|feed|rdf:RDF|channel)\b", re.IGNORECASE)
# include_tables: some sites lay the whole article out in a table (benchmark F1 +0.012).
_EXTRACT_OPTIONS: dict[str, Any] = {
    "with_metadata": True, "include_comments": False, "include_tables": True,
    "include_images": False, "include_links": False, "favor_precision": True,
}  # fmt: skip
# htmldate: the published (not modified) date, with time and offset when the page has them.
_DATE_OPTIONS = {
    "original_date": True, "extensive_search": True, "outputformat": "%Y-%m-%dT%H:%M:%S%z",
}  # fmt: skip


@dataclass
class FeedParseResult:
    articles: list[Article] = field(default_factory=list)
    failures: list[ItemFailure] = field(default_factory=list)
    needs_fetch: list[Article] = field(default_factory=list)  # also in articles: teaser text only
    title: str | None = None
    language: str | None = None
    link: str | None = None  # the site the feed belongs to
    items_seen: int = 0


class SitemapEntry(NamedTuple):
    url: str
    published_at: datetime | None
    title: str | None


@dataclass
class SitemapParse:
    urls: list[SitemapEntry] = field(default_factory=list)
    child_sitemaps: list[str] = field(default_factory=list)  # from a <sitemapindex>
    failures: list[ItemFailure] = field(default_factory=list)


def _sniff_text(data: bytes) -> str:
    """ASCII markup readable whatever the encoding (UTF-8/16/32, Latin-1): for sniffing only."""
    return data.decode("latin-1").replace("\x00", "")


def check_xml_safety(data: bytes, source_id: str) -> None:
    """Refuse XML declaring entities (billion laughs, XXE); plain DOCTYPEs (RSS 0.91) pass."""
    if not _DOCTYPE.search(_sniff_text(data)):
        return
    reason = "XML declares an entity, refused (XXE/entity expansion)"
    try:
        SafeET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise SourceError(source_id, f"{reason}: {exc!r}") from exc
    except (ParseError, ValueError, LookupError) as exc:
        # Not well-formed, or an encoding expat refuses ("multi-byte encodings are not supported"):
        # feedparser's lenient mode may try, never with entities.
        if _ENTITY.search(_sniff_text(data)):
            raise SourceError(source_id, reason) from exc


def _looks_like_html(data: bytes, content_type: str | None) -> bool:
    head = _PROLOG.sub("", _sniff_text(data[:65536]).lstrip("\xef\xbb\xbf\xff\xfe"), count=1)
    served_as_html = "html" in (content_type or "").lower()
    return bool(_HTML_ROOT.match(head) or (served_as_html and not _FEED_ROOT.match(head)))


def parse_feed(
    data: bytes,
    *,
    source_id: str,
    feed_url: str,
    content_type: str | None = None,
    encoding: str | None = None,
    tags: Iterable[str] = (),
    max_items: int | None = None,
) -> FeedParseResult:
    """Parse RSS/Atom bytes. Raises SourceError when the bytes are not a usable feed."""
    check_xml_safety(data, source_id)
    ctype = content_type
    if encoding:  # a charset from the caller (HTTP headers) beats the document's own declaration
        ctype = f"{(content_type or 'application/xml').split(';')[0].strip()}; charset={encoding}"
    headers = {"content-type": ctype} if ctype else {}
    parsed, unreadable = parse_isolated(data, headers, source_id, max_items)
    entries = list(parsed.entries)
    if not entries and not unreadable:
        _raise_unless_empty_feed(parsed, data, content_type, source_id)
    if max_items is not None:
        entries = entries[: max(max_items, 0)]
    feed = parsed.feed
    feed_language = _feed_field(feed, "language")
    result = FeedParseResult(
        title=clean_title(_feed_field(feed, "title")) or None,
        language=detect_language(None, feed_language),
        link=_safe_url(_feed_field(feed, "link"), feed_url),
        items_seen=len(entries) + len(unreadable),
        failures=unreadable,
    )
    seen: dict[str, int] = {}
    source_tags = tuple(tags)
    for number, entry in enumerate(entries, start=1):
        try:
            link = _entry_link(entry, feed_url, source_id, number)
            if link in seen:
                raise ItemError(source_id, link, f"duplicate link (same as item #{seen[link]})")
            article, teaser = _entry_article(entry, link, feed_language, source_id, source_tags)
        except ItemError as exc:
            result.failures.append(ItemFailure(item=exc.item_id, reason=exc.reason))
            continue
        except Exception as exc:  # noqa: BLE001 - one odd entry never sinks the feed
            item = _entry_label(entry, number)
            result.failures.append(ItemFailure(item=item, reason=f"{type(exc).__name__}: {exc}"))
            continue
        seen[link] = number
        result.articles.append(article)
        if teaser:
            result.needs_fetch.append(article)
    return result


def _raise_unless_empty_feed(parsed: Any, data: bytes, ctype: str | None, source_id: str) -> None:
    version = parsed.get("version") or ""
    exc = parsed.get("bozo_exception")
    if not version and _looks_like_html(data, ctype):
        raise SourceError(source_id, "got an HTML page, not a feed (RSS or Atom)")
    if parsed.get("bozo") and (not version or isinstance(exc, xml.sax.SAXException)):
        raise SourceError(source_id, f"malformed feed XML, no entries could be read: {exc}")
    if not version:
        raise SourceError(source_id, "not a feed: no RSS or Atom document found")


def _feed_field(feed: Any, key: str) -> str | None:
    """A feed-level string (title, language, link), or None when absent or unreadable: metadata
    is optional, and an odd value there never fails the feed's items."""
    try:
        value = feed.get(key)
    except Exception:  # noqa: BLE001 - FeedParserDict maps keys through its own code
        return None
    return value if isinstance(value, str) else None


def _entry_label(entry: Any, n: int) -> str:
    """Also called while handling an entry's failure, so it never raises itself."""
    try:
        label = entry.get("id") or clean_title(entry.get("title"))[:TITLE_FROM_TEXT_CHARS]
    except Exception:  # noqa: BLE001 - the entry is already failing: name it by number
        label = None
    return label if isinstance(label, str) and label else f"#{n}"


def _entry_link(entry: Any, feed_url: str, source_id: str, number: int) -> str:
    raw = (entry.get("link") or "").strip()
    from_guid = entry.get("guidislink") and not any(
        (link.get("href") or "").strip() == raw for link in entry.get("links") or []
    )
    if raw and from_guid and urlsplit(raw).scheme.lower() not in ("http", "https"):
        raw = ""  # a permalink <guid> that is not a URL ("12345") is no link
    if not raw:
        raise ItemError(source_id, _entry_label(entry, number), "missing link")
    try:
        return canonical_url(raw, base=feed_url)
    except ValueError as exc:
        raise ItemError(source_id, raw, f"invalid link: {exc}") from exc


def _entry_text(entry: Any) -> tuple[str, bool, str | None]:
    """(clean text, came from full content?, language hint of that text)."""
    found = [
        (clean_text(c.get("value") or ""), c.get("language")) for c in entry.get("content", ())
    ]
    best, hint = max(found, key=lambda pair: len(pair[0]), default=("", None))
    if best:
        return best, True, hint
    detail = entry.get("summary_detail") or {}
    return clean_text(entry.get("summary") or ""), False, detail.get("language")


def _entry_date(entry: Any) -> tuple[datetime | None, int | None]:
    """(UTC time, the offset the feed wrote it in)."""
    # Raw strings first: feedparser fills in today's date for a bare "10:00"; parse_date does not.
    keys = ("published", "updated", "created")  # dc:date arrives as "updated"
    # dict.get: FeedParserDict would answer "updated" with "published" (and warn about it).
    for raw in (dict.get(entry, k) or dict.get(entry, f"{k}_parsed") for k in keys):
        when = parse_date(raw)
        if when is not None:
            return when, utc_offset_minutes(raw)
    return None, None


def _entry_article(
    entry: Any, link: str, feed_language: str | None, source_id: str, tags: tuple[str, ...]
) -> tuple[Article, bool]:
    text, from_content, hint = _entry_text(entry)
    title = clean_title(entry.get("title"))
    if not title and not text:
        raise ItemError(source_id, link, "empty item")
    title_hint = (entry.get("title_detail") or {}).get("language")
    published, offset = _entry_date(entry)
    author = clean_title((entry.get("author_detail") or {}).get("name") or entry.get("author"))
    article = Article(
        source_id=source_id,
        url=link,
        title=title or _title_from_text(text),
        text=text,
        published_at=published, published_offset=offset,
        author=author or None,
        language=detect_language(text, hint or title_hint or feed_language),
        tags=tags,
    )
    limit = SUMMARY_MIN_CHARS if from_content else SUMMARY_ONLY_MAX_CHARS
    return article, len(text) < limit


def _title_from_text(text: str) -> str:
    first = text.split("\n\n", 1)[0]
    cut = first[:TITLE_FROM_TEXT_CHARS].rsplit(" ", 1)[0] or first[:TITLE_FROM_TEXT_CHARS]
    return first if len(first) <= TITLE_FROM_TEXT_CHARS else cut.rstrip(" ,;:-") + "…"


def _safe_url(url: str | None, base: str) -> str | None:
    try:
        return canonical_url(url, base=base) if url else None
    except ValueError:
        return None


def extract_article(
    html: bytes | str, *, url: str, source_id: str, fallback_title: str | None = None
) -> Article:
    """The main text and metadata of one article page (boilerplate, comments, scripts dropped)."""
    try:
        canonical = canonical_url(url)
    except ValueError as exc:
        raise ItemError(source_id, url, f"invalid URL: {exc}") from exc
    return _extract(html, canonical, item_id=url, source_id=source_id, fallback=fallback_title)


def parse_html_file(text: str, *, path: str, source_id: str) -> Article:
    """An article from a local HTML file: keyed by its path, URL from <link rel=canonical> if any."""
    return _extract(text, Path(path).absolute().as_uri(), item_id=path, source_id=source_id)


def _extract(
    html: bytes | str, url: str, *, item_id: str, source_id: str, fallback: str | None = None
) -> Article:
    """One exception boundary per page: whatever lxml, trafilatura or htmldate raise on hostile
    markup fails this item, never the run."""
    try:
        return _extract_page(html, url, item_id=item_id, source_id=source_id, fallback=fallback)
    except ItemError:
        raise
    except Exception as exc:  # the boundary itself
        raise ItemError(source_id, item_id, f"extraction failed: {type(exc).__name__}: {exc}") from exc


def _extract_page(
    html: bytes | str, url: str, *, item_id: str, source_id: str, fallback: str | None = None
) -> Article:
    """Pages from the web are keyed by URL; local files (file: URLs) by their path (item_id)."""
    import trafilatura  # heavy import, only where pages are extracted
    from trafilatura.settings import Document

    local = url.startswith("file:")
    tree = trafilatura.load_html(html) if html and html.strip() else None
    if tree is None:
        raise ItemError(source_id, item_id, "no article text could be extracted (not HTML)")
    language_hint = _html_language(tree)
    doc = trafilatura.bare_extraction(
        tree,
        url=None if local else url,
        **_EXTRACT_OPTIONS,
        date_extraction_params={**_DATE_OPTIONS, "max_date": f"{datetime.now():%Y-%m-%d}"},
    )
    raw_text = doc.text if isinstance(doc, Document) else None
    text = clean_text("\n\n".join((raw_text or "").splitlines()))
    if not text or not isinstance(doc, Document):
        raise ItemError(source_id, item_id, "no article text could be extracted")
    if local and doc.url:
        url = _safe_url(doc.url, doc.url) or url
    title = clean_title(doc.title) or clean_title(fallback) or _title_from_text(text)
    first, _, rest = text.partition("\n\n")
    if rest and first.casefold() == title.casefold():  # the page's <h1> repeats the title
        text = rest
    return Article(
        source_id=source_id,
        url=url,
        title=title,
        text=text,
        published_at=parse_date(doc.date),
        published_offset=utc_offset_minutes(doc.date),
        author=_authors(doc.author),
        language=detect_language(text, doc.language or language_hint),
        key=item_id if local else None,
    )


def _authors(value: str | None) -> str | None:
    names: dict[str, str] = {}
    for name in map(clean_title, (value or "").split(";")):
        names.setdefault(name.casefold(), name)  # "Jane Doe; JANE DOE" -> "Jane Doe"
    return "; ".join(n for n in names.values() if n) or None


def _html_language(tree: Any) -> str | None:
    values = tree.xpath(
        "/html/@lang | /html/@xml:lang | //meta[@http-equiv='content-language']/@content"
        " | //meta[@property='og:locale']/@content"
    )
    return next((str(v).strip() for v in values if str(v).strip()), None)


def parse_sitemap(data: bytes, *, source_id: str, base_url: str) -> SitemapParse:
    """Entries of a <urlset> (with Google News metadata) or the child sitemaps of a <sitemapindex>."""
    if data[:2] == b"\x1f\x8b":  # .xml.gz: the fetch layer decompresses (and bounds) it first
        raise SourceError(source_id, "sitemap is gzip-compressed; decompress it before parsing")
    try:  # the same entity/XXE refusal as feeds, in one parse
        root = SafeET.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise SourceError(source_id, f"sitemap declares an entity, refused: {exc!r}") from exc
    except ParseError as exc:
        raise SourceError(source_id, f"malformed sitemap XML: {exc}") from exc
    except Exception as exc:  # e.g. expat refusing a multi-byte encoding (ValueError)
        raise SourceError(source_id, f"the sitemap could not be parsed: {type(exc).__name__}: {exc}") from exc
    kind = str(root.tag).rsplit("}", 1)[-1]
    if kind not in ("urlset", "sitemapindex"):
        raise SourceError(source_id, f"not a sitemap: root element <{kind}>")
    result = SitemapParse()
    for number, node in enumerate(_children(root, "url" if kind == "urlset" else "sitemap"), 1):
        loc = _child_text(node, "loc")
        try:
            _sitemap_node(node, loc, kind, base_url, result)
        except ValueError as exc:
            result.failures.append(ItemFailure(item=loc or f"#{number}", reason=f"bad loc: {exc}"))
        except Exception as exc:  # noqa: BLE001 - one exception boundary per entry
            reason = f"{type(exc).__name__}: {exc}"
            result.failures.append(ItemFailure(item=loc or f"#{number}", reason=reason))
    return result


def _sitemap_node(node: Element, loc: str | None, kind: str, base_url: str, result: SitemapParse) -> None:
    url = canonical_url(loc or "", base=base_url)
    if kind == "sitemapindex":
        result.child_sitemaps.append(url)
        return
    news = next(iter(_children(node, "news", NEWS_NS)), None)
    published = parse_date(_child_text(news, "publication_date", NEWS_NS))
    title = clean_title(_child_text(news, "title", NEWS_NS)) or None
    published = published or parse_date(_child_text(node, "lastmod"))
    result.urls.append(SitemapEntry(url, published, title))


def _children(node: Element, name: str, namespace: str = SITEMAP_NS) -> list[Element]:
    # Namespaced as the protocol says, or bare (a common mistake).
    return [c for c in node if c.tag in (f"{{{namespace}}}{name}", name)]


def _child_text(node: Element | None, name: str, namespace: str = SITEMAP_NS) -> str | None:
    children = _children(node, name, namespace) if node is not None else []
    return next((c.text.strip() for c in children if c.text and c.text.strip()), None)
