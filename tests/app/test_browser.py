"""Headless Chromium (Debian's, driven by Playwright; no browser download) uses the chat page."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.app.conftest import EXAMPLES

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
QUESTION = json.loads((EXAMPLES / "news" / "questions.jsonl").read_text().splitlines()[0])


@pytest.fixture
def page(tmp_path: Path) -> Any:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed: run scripts/setup as root, or apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context()
        pg = context.new_page()
        dialogs: list[str] = []
        pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        pg.dialogs = dialogs  # type: ignore[attr-defined]
        yield pg
        browser.close()


def test_ask_stream_cite_and_give_feedback(live_app: Any, page: Any) -> None:
    page.goto(live_app.url + "/")
    page.fill("#question", QUESTION["question"])
    page.click("#ask-button")
    page.wait_for_selector("#result[data-state='done']", timeout=30_000)
    answer = page.inner_text("#answer")
    assert answer.strip()
    link = page.locator("#citations a.citation-link").first
    assert link.get_attribute("href") == QUESTION["gold_urls"][0]
    assert "prompt" in page.inner_text("#meta")
    page.click("#thumbs-up")
    page.wait_for_selector("#result[data-feedback='up']", timeout=10_000)
    trace_id = page.get_attribute("#result", "data-trace-id")
    records = live_app.services.feedback.feedback()
    assert [(r.trace_id, r.rating) for r in records] == [(trace_id, 1)]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat-page.png"), full_page=True)


def test_hostile_article_text_renders_inert(live_app: Any, page: Any) -> None:
    hostile = {
        "n": 1, "chunk_id": "c", "doc_id": "d", "url": "javascript:alert('url')",
        "title": "<img src=x onerror=\"window.__pwned=1\">Title", "source_id": "<b>src</b>",
        "quote": "<script>window.__pwned=2</script> quoted", "published_at": "2026-11-01T00:00:00Z",
    }
    source = {**{k: v for k, v in hostile.items() if k not in ("quote", "chunk_id")}, "quotes": [hostile["quote"]]}
    answer = {"text": "Evil <script>window.__pwned=3</script><img src=x onerror=\"window.__pwned=4\"> [1]",
              "abstained": False, "citations": [hostile], "sources": [source], "prompt_name": "p", "prompt_version": "1",
              "generator": "g", "model": "m", "retrieval": [], "timings": {}, "trace_id": "t" * 32}
    body = f"event: done\ndata: {json.dumps(answer)}\n\n"
    page.route("**/v1/ask", lambda route: route.fulfill(status=200, content_type="text/event-stream", body=body))
    page.goto(live_app.url + "/")
    page.fill("#question", "anything")
    page.click("#ask-button")
    page.wait_for_selector("#result[data-state='done']", timeout=10_000)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#answer script, #answer img, #citations script, #citations img").count() == 0
    assert "<script>" in page.inner_text("#answer")  # shown as text, not executed
    assert page.locator("#citations a").count() == 0  # a javascript: URL never becomes a link
    assert page.dialogs == []  # type: ignore[attr-defined]


def test_a_stored_article_carrying_markup_is_quoted_as_text(live_app: Any, page: Any) -> None:
    """The payload travels the real path: stored chunk -> search -> extractive quote -> SSE -> page."""
    import uuid as uuid_

    from newsrag.core.records import StoredObject
    from newsrag.embeddings.base import vector_name
    from newsrag.ingest.chunking import embedding_text
    from newsrag.ingest.models import Article
    from newsrag.ingest.pipeline import stored_chunk

    services = live_app.services
    article = Article(
        source_id="hostile-wire", url="https://hostile.example/zephyr", key=None,
        title='<img src=x onerror="window.__pwned=1">Zephyr Lantern Festival',
        text=('The Zephyr Lantern Festival drew 4,000 visitors to the old harbour on Saturday night. '
              '<script>window.__pwned=2</script><img src=x onerror="window.__pwned=3"> '
              'Organisers said the Zephyr lanterns were made by 40 local schools.'))
    store = services.searcher.store  # the app's own store
    vec = services.embedder.embed_documents([embedding_text(article.title, article.text)])[0].tolist()
    written = stored_chunk(article, _one_chunk(article), vec)
    oid = str(uuid_.uuid5(uuid_.NAMESPACE_URL, "hostile-zephyr"))
    store.upsert([StoredObject(oid, written.chunk, vec, written.context)], vector_name(services.embedder.model_id))
    try:
        page.goto(live_app.url + "/")
        page.fill("#question", "How many visitors did the Zephyr Lantern Festival draw?")
        page.click("#ask-button")
        page.wait_for_selector("#result[data-state='done']", timeout=30_000)
        answer = page.inner_text("#answer")
        assert "4,000 visitors" in answer  # the hostile article was really retrieved and quoted
        assert page.evaluate("window.__pwned") is None and page.dialogs == []  # type: ignore[attr-defined]
        assert page.locator("#answer script, #answer img, #citations script, #citations img").count() == 0
        assert '<img src=x onerror="window.__pwned=1">Zephyr' in page.inner_text("#citations")  # shown as text
    finally:
        store.delete_ids([oid])


def _one_chunk(article: Any) -> Any:
    from newsrag.ingest.models import Chunk

    return Chunk(doc_id=article.doc_id, chunk_index=0, text=article.text, token_count=60,
                 content_hash=article.content_hash)


# -- #20 item 4: one entry per cited article, numbered 1..n, each [n] marker a link to its entry ----

def numbered_entries(page: Any) -> list[dict[str, Any]]:
    return page.eval_on_selector_all("#citations > li", """items => items.map(li => ({
        id: li.id, value: li.value, title: li.querySelector('.citation-link').textContent,
        quotes: [...li.querySelectorAll('.quote')].map(q => q.textContent)}))""")


def marker_links(page: Any) -> list[dict[str, str]]:
    return page.eval_on_selector_all("#answer a.marker", "links => links.map(a => ({text: a.textContent, "
                                                        "href: a.getAttribute('href')}))")


def assert_readable_numbers(page: Any) -> list[dict[str, Any]]:
    entries = numbered_entries(page)
    values = [e["value"] for e in entries]
    assert values == list(range(1, len(entries) + 1))  # 1..n, no repeats ("2. 2. 2." was the bug)
    assert [e["id"] for e in entries] == [f"source-{n}" for n in values]
    links = marker_links(page)
    assert links and all(link["href"] == "#source-" + link["text"].strip("[]") for link in links)
    assert {link["href"] for link in links} == {f"#{e['id']}" for e in entries}  # every entry is cited
    answer_text = page.inner_text("#answer")
    assert [int(n) for n in dict.fromkeys(re.findall(r"\[(\d+)\]", answer_text))] == values  # order of first use
    return entries


def test_a_real_answer_lists_each_article_once_numbered_as_its_markers(live_app: Any, page: Any) -> None:
    page.goto(live_app.url + "/")
    for question in ("What did the council approve?", QUESTION["question"]):
        page.fill("#question", question)
        page.click("#ask-button")
        page.wait_for_selector("#result[data-state='done']", timeout=30_000)
        entries = assert_readable_numbers(page)
        assert all(e["quotes"] for e in entries)
        last = marker_links(page)[-1]["href"]
        page.click(f"#answer a.marker[href='{last}']")
        assert page.evaluate("window.location.hash") == last
        assert page.eval_on_selector(last, "li => li.matches(':target')")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat-page-sources.png"), full_page=True)


def test_two_articles_three_quotes_are_two_entries(live_app: Any, page: Any) -> None:
    """A scripted answer (the page's own logic): the first article is quoted twice, around the second."""
    def cite(n: int, doc: str, quote: str) -> dict[str, Any]:
        return {"n": n, "chunk_id": f"c-{quote[:3]}", "doc_id": doc, "url": f"https://news.test/{doc}",
                "title": f"Article {doc}", "quote": quote, "published_at": "2026-09-12T21:20:00Z", "source_id": "s"}

    citations = [cite(1, "a", "First quote."), cite(2, "b", "Second article."), cite(1, "a", "Third quote.")]
    sources = [{"n": 1, "doc_id": "a", "url": "https://news.test/a", "title": "Article a", "source_id": "s",
                "published_at": "2026-09-12T21:20:00Z", "quotes": ["First quote.", "Third quote."], "chunk_ids": []},
               {"n": 2, "doc_id": "b", "url": "https://news.test/b", "title": "Article b", "source_id": "s",
                "published_at": "2026-09-12T21:20:00Z", "quotes": ["Second article."], "chunk_ids": []}]
    answer = {"text": "First quote. [1] Second article. [2] Third quote. [1]", "abstained": False,
              "citations": citations, "sources": sources, "prompt_name": "p", "prompt_version": "1",
              "generator": "g", "model": "m", "retrieval": [], "timings": {}, "trace_id": "t" * 32}
    page.route("**/v1/ask", lambda route: route.fulfill(status=200, content_type="text/event-stream",
                                                        body=f"event: done\ndata: {json.dumps(answer)}\n\n"))
    page.goto(live_app.url + "/")
    page.fill("#question", "anything")
    page.click("#ask-button")
    page.wait_for_selector("#result[data-state='done']", timeout=10_000)
    entries = assert_readable_numbers(page)
    assert [(e["title"], e["quotes"]) for e in entries] == [
        ("Article a", ["“First quote.”", "“Third quote.”"]), ("Article b", ["“Second article.”"])]
    assert [link["href"] for link in marker_links(page)] == ["#source-1", "#source-2", "#source-1"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat-page-two-articles.png"), full_page=True)


def test_the_page_sends_dates_as_dates_so_until_covers_its_day(live_app: Any, page: Any) -> None:
    """#20 item 2: the page no longer appends a time; the API's one rule makes until cover the day."""
    sent: list[dict[str, Any]] = []
    page.on("request", lambda r: sent.append(json.loads(r.post_data)) if r.url.endswith("/v1/ask") else None)
    page.goto(live_app.url + "/")
    page.fill("#question", "How much did the Calder Maritime Museum's renovation cost?")
    page.fill("#since", "2026-09-12")
    page.fill("#until", "2026-09-12")
    page.fill("#source", "tech-wire, archive")
    page.click("#ask-button")
    page.wait_for_selector("#result[data-state='done']", timeout=30_000)
    assert (sent[-1]["since"], sent[-1]["until"]) == ("2026-09-12", "2026-09-12")
    link = page.locator("#citations a.citation-link").first
    assert link.get_attribute("href") == "https://calder-chronicle.example/2026/09/12/maritime-museum-reopens"
