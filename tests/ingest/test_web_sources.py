"""Sources that read web pages, end to end over loopback into the real Weaviate: a sitemap index,
a list of article pages, and a summary-only feed whose items are followed to the full article."""

from __future__ import annotations

from html import escape
from typing import Any

import pytest

from newsrag.ingest.context import IngestContext
from newsrag.ingest.pipeline import run_source
from newsrag.ingest.registry import parse_source
from newsrag.store.weaviate import WeaviateStore
from tests.ingest.feedgen import paragraphs

pytestmark = pytest.mark.integration

STORIES = {slug: (f"{slug.title()} story of the week", paragraphs(seed, 4))
           for slug, seed in (("alpha", 501), ("bravo", 502), ("charlie", 503))}


def page(slug: str) -> bytes:
    title, paras = STORIES[slug]
    body = "".join(f"<p>{escape(p)}</p>" for p in paras)
    return (f"<!doctype html><html lang='en'><head><title>{escape(title)} | Fixture News</title>"
            f"<meta property='article:published_time' content='2026-11-0{len(slug) % 9}T08:00:00Z'></head>"
            f"<body><nav><a href='/'>Home</a> <a href='/world'>World</a></nav><article><h1>{escape(title)}</h1>"
            f"{body}</article><footer>Copyright Fixture News. All rights reserved.</footer></body></html>").encode()


@pytest.fixture
def site(feed_server: Any) -> Any:
    for slug in STORIES:
        feed_server.routes[f"/{slug}.html"] = (page(slug), "text/html; charset=utf-8")
    return feed_server


def stored(store: WeaviateStore) -> dict[str, str]:
    """url -> the article's stored text (chunks joined in order)."""
    chunks: dict[str, list[tuple[int, str]]] = {}
    for _, p in store.iter_properties(["url", "chunk_index", "text"]):
        chunks.setdefault(p["url"], []).append((p["chunk_index"], p["text"]))
    return {url: " ".join(t for _, t in sorted(parts)) for url, parts in chunks.items()}


def test_a_sitemap_index_leads_to_every_listed_article(site: Any, ctx: IngestContext, store: WeaviateStore) -> None:
    site.routes["/sitemap.xml"] = (
        f'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f'<sitemap><loc>{site.url("/news.xml")}</loc></sitemap></sitemapindex>'.encode(), "application/xml")
    site.routes["/news.xml"] = (
        f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f'<url><loc>{site.url("/alpha.html")}?utm_source=sitemap</loc><lastmod>2026-11-02</lastmod></url>'
        f'<url><loc>{site.url("/bravo.html")}</loc></url></urlset>'.encode(), "application/xml")
    report = run_source(parse_source({"id": "metro-sitemap", "type": "sitemap", "url": site.url("/sitemap.xml")}), ctx)
    assert (report.status, report.new, report.failed) == ("ok", 2, [])
    texts = stored(store)
    assert set(texts) == {site.url("/alpha.html"), site.url("/bravo.html")}  # tracking parameter stripped
    assert STORIES["alpha"][1][2][:60] in texts[site.url("/alpha.html")]
    assert "All rights reserved" not in texts[site.url("/alpha.html")] and "World" not in texts[site.url("/alpha.html")]
    again = run_source(parse_source({"id": "metro-sitemap", "type": "sitemap", "url": site.url("/sitemap.xml")}), ctx)
    assert (again.unchanged, again.chunks_embedded, again.chunks_written) == (2, 0, 0)


def test_a_page_list_fails_the_missing_page_only(site: Any, ctx: IngestContext, store: WeaviateStore) -> None:
    spec = parse_source({"id": "picks", "type": "page",
                         "urls": [site.url("/charlie.html"), site.url("/gone.html")]})
    report = run_source(spec, ctx)
    assert (report.status, report.new) == ("partial", 1)
    assert [f.item for f in report.failed] == [site.url("/gone.html")]
    assert "404" in report.failed[0].reason
    assert set(stored(store)) == {site.url("/charlie.html")}


def test_a_summary_only_feed_is_followed_to_the_full_article(site: Any, ctx: IngestContext,
                                                            store: WeaviateStore) -> None:
    def entry(slug: str) -> str:
        title, paras = STORIES.get(slug, ("A story that vanished", [
            "The council said the ferry timetable would change again next month, officials confirmed."]))
        return (f"<item><title>{escape(title)}</title><link>{site.url(f'/{slug}.html')}</link>"
                f"<pubDate>Mon, 02 Nov 2026 08:00:00 GMT</pubDate>"
                f"<description>{escape(paras[0][:90])}…</description></item>")

    site.routes["/teasers.xml"] = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Teasers</title><link>{site.base}/</link>'
        f'<description>x</description>{entry("bravo")}{entry("missing")}</channel></rss>'.encode(),
        "application/rss+xml")
    spec = parse_source({"id": "teasers", "type": "feed", "url": site.url("/teasers.xml"), "fetch_full_article": True})
    report = run_source(spec, ctx)
    texts = stored(store)
    full = texts[site.url("/bravo.html")]
    assert STORIES["bravo"][1][3][:60] in full  # the last paragraph: only the page has it
    assert [f.item for f in report.failed] == [site.url("/missing.html")]
    assert report.failed[0].reason.startswith("full article not fetched, kept the feed summary")
    assert site.url("/missing.html") not in texts or len(texts[site.url("/missing.html")]) < 200
