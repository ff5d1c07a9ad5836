"""The official openai client, pointed at the running app, gets normal and streamed completions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.app.conftest import EXAMPLES

pytestmark = pytest.mark.e2e

QUESTION = json.loads((EXAMPLES / "news" / "questions.jsonl").read_text().splitlines()[0])


def test_openai_sdk_normal_and_streamed_completion(live_app: Any) -> None:
    import openai

    client = openai.OpenAI(base_url=live_app.url + "/v1", api_key="unused-locally", max_retries=0)
    assert [m.id for m in client.models.list().data] == ["newsrag"]

    completion = client.chat.completions.create(
        model="newsrag", messages=[{"role": "system", "content": "Be brief."},
                                   {"role": "user", "content": QUESTION["question"]}])
    text = completion.choices[0].message.content
    assert text and completion.choices[0].finish_reason == "stop"
    extra = completion.model_extra or {}
    assert QUESTION["gold_urls"][0] in extra["citations"]
    assert extra["newsrag"]["trace_id"] and extra["newsrag"]["citations"][0]["url"] == extra["citations"][0]

    stream = client.chat.completions.create(model="newsrag", stream=True,
                                            messages=[{"role": "user", "content": QUESTION["question"]}])
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert QUESTION["gold_urls"][0] in (chunks[-1].model_extra or {})["citations"]

    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="newsrag", messages=[{"role": "user", "content": " "}])
