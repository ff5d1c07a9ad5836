"""Headless Chromium (Debian's, driven by Playwright; no browser download) uses the chat page."""

from __future__ import annotations

import json
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
    answer = {"text": "Evil <script>window.__pwned=3</script><img src=x onerror=\"window.__pwned=4\"> [1]",
              "abstained": False, "citations": [hostile], "prompt_name": "p", "prompt_version": "1",
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

    from embeddings.base import vector_name
    from ingest.chunking import embedding_text
    from ingest.models import Article
    from ingest.pipeline import chunk_properties
    from retrieval.types import StoredObject

    services = live_app.services
    article = Article(
        source_id="hostile-wire", url="https://hostile.example/zephyr", key=None,
        title='<img src=x onerror="window.__pwned=1">Zephyr Lantern Festival',
        text=('The Zephyr Lantern Festival drew 4,000 visitors to the old harbour on Saturday night. '
              '<script>window.__pwned=2</script><img src=x onerror="window.__pwned=3"> '
              'Organisers said the Zephyr lanterns were made by 40 local schools.'))
    store = services.searcher.store  # the app's own store
    props = chunk_properties(article, _one_chunk(article))
    vec = services.embedder.embed_documents([embedding_text(article.title, article.text)])[0].tolist()
    oid = str(uuid_.uuid5(uuid_.NAMESPACE_URL, "hostile-zephyr"))
    store.upsert([StoredObject(oid, props, vec)], vector_name(services.embedder.model_id))
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
    from ingest.models import Chunk

    return Chunk(doc_id=article.doc_id, chunk_index=0, text=article.text, token_count=60,
                 content_hash=article.content_hash)
