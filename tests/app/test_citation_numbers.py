"""Citation numbers a reader can follow (#20 item 4), the same in /v1/ask, its stream and the OpenAI
route: the cited articles are numbered 1…n in order of first use, one source entry per article with
its quotes, and the OpenAI ``citations[n-1]`` is the article marked ``[n]``."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.app.conftest import EXAMPLES, sse_events

pytestmark = pytest.mark.integration

GOLDEN = [json.loads(line) for line in (EXAMPLES / "news" / "questions.jsonl").read_text().splitlines() if line]
# Broad questions (that may cite several articles) and golden ones.
QUESTIONS = ["What did the council approve?", "Harbor Line light rail stations cost and opening",
             *[c["question"] for c in GOLDEN if c["answerable"]][:8]]
MARKER = re.compile(r"\[(\d+)\]")


def markers_in_order_of_first_use(text: str) -> list[int]:
    return list(dict.fromkeys(int(n) for n in MARKER.findall(text)))


def assert_numbered_for_a_reader(answer: dict[str, Any]) -> None:
    sources = answer["sources"]
    numbers = [s["n"] for s in sources]
    assert numbers == list(range(1, len(sources) + 1))  # 1…n, no gaps, no repeats
    assert markers_in_order_of_first_use(answer["text"]) == numbers  # [1] first, then [2], ...
    assert len({s["doc_id"] for s in sources}) == len(sources)  # one entry per article
    for source in sources:
        quotes = [c["quote"] for c in answer["citations"] if c["n"] == source["n"]]
        assert source["quotes"] == list(dict.fromkeys(quotes)) and source["quotes"]
        assert {c["url"] for c in answer["citations"] if c["n"] == source["n"]} == {source["url"]}


@pytest.mark.parametrize("question", QUESTIONS)
def test_ask_numbers_articles_in_order_of_first_use_with_one_entry_each(make_client: Any, question: str) -> None:
    client = make_client()
    answer = client.post("/v1/ask", json={"question": question}).json()
    assert_numbered_for_a_reader(answer)

    with client.stream("POST", "/v1/ask", json={"question": question, "stream": True}) as resp:
        events = sse_events("".join(resp.iter_text()))
    done = json.loads(events[-1][1])
    assert events[-1][0] == "done"
    assert_numbered_for_a_reader(done)
    streamed = "".join(json.loads(d)["text"] for n, d in events if n == "delta")
    assert streamed == done["text"] == answer["text"]
    assert [s["url"] for s in done["sources"]] == [s["url"] for s in answer["sources"]]


@pytest.mark.parametrize("question", QUESTIONS)
def test_openai_citations_resolve_each_marker(make_client: Any, question: str) -> None:
    client = make_client()
    body = client.post("/v1/chat/completions", json={"model": "newsrag", "messages": [
        {"role": "user", "content": question}]}).json()
    text, urls, sources = body["choices"][0]["message"]["content"], body["citations"], body["newsrag"]["sources"]
    assert urls == [s["url"] for s in sources]
    assert_numbered_for_a_reader({"text": text, "sources": sources, "citations": body["newsrag"]["citations"]})
    for n in markers_in_order_of_first_use(text):
        assert urls[n - 1] == sources[n - 1]["url"]  # citations[n-1] resolves [n]
    ask = client.post("/v1/ask", json={"question": question}).json()
    assert urls == [s["url"] for s in ask["sources"]]  # the same numbers as /v1/ask

    lines = [json.loads(line.removeprefix("data: ")) for line in client.post(
        "/v1/chat/completions", json={"model": "newsrag", "stream": True, "messages": [
            {"role": "user", "content": question}]}).text.splitlines() if line.startswith("data: {")]
    final = lines[-1]
    assert final["choices"][0]["finish_reason"] == "stop" and final["citations"] == urls
    assert final["newsrag"]["sources"] == sources
