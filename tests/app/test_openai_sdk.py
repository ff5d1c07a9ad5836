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


def test_stream_options_include_usage_sends_a_usage_chunk_counted_with_the_embedders_tokenizer(
        live_app: Any, embedder: Any) -> None:
    """#20 item 8: as OpenAI's API, a last chunk with no choices and the request's usage, before [DONE]."""
    import openai

    client = openai.OpenAI(base_url=live_app.url + "/v1", api_key="unused-locally", max_retries=0)
    messages = [{"role": "user", "content": QUESTION["question"]}]
    chunks = list(client.chat.completions.create(model="newsrag", stream=True, messages=messages,  # type: ignore[arg-type]
                                                 stream_options={"include_usage": True}))
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert all(c.usage is None for c in chunks[:-1]) and chunks[-2].choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    tokenizer = embedder.tokenizer
    assert last.usage.prompt_tokens == len(tokenizer.tokenize(QUESTION["question"]))
    assert last.usage.completion_tokens == len(tokenizer.tokenize(text)) > len(text.split())  # tokens, not words
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert (chunks[-2].model_extra or {})["newsrag"]["usage_counted_by"] == f"tokenizer:{embedder.model_id}"

    completion = client.chat.completions.create(model="newsrag", messages=messages)  # type: ignore[arg-type]
    assert completion.usage == last.usage  # the same counting without a stream
    assert (completion.model_extra or {})["newsrag"]["usage_counted_by"] == f"tokenizer:{embedder.model_id}"
    plain = list(client.chat.completions.create(model="newsrag", stream=True, messages=messages))  # type: ignore[arg-type]
    assert all(c.choices and c.usage is None for c in plain)  # without the option: no usage chunk


def test_openai_sdk_with_auth_on(make_live_app: Any) -> None:
    import openai

    server = make_live_app(api_keys="sdk-key-4d2e8b6a1c")
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="sdk-key-4d2e8b6a1c", max_retries=0)
    assert [m.id for m in client.models.list().data] == ["newsrag"]
    messages = [{"role": "user", "content": QUESTION["question"]}]
    assert client.chat.completions.create(model="newsrag", messages=messages).choices[0].message.content  # type: ignore[arg-type]
    streamed = list(client.chat.completions.create(model="newsrag", messages=messages, stream=True))  # type: ignore[arg-type]
    assert streamed[-1].choices[0].finish_reason == "stop"

    wrong = openai.OpenAI(base_url=server.url + "/v1", api_key="sdk-key-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="invalid API key"):
        wrong.models.list()
    with pytest.raises(openai.AuthenticationError, match="invalid API key"):
        wrong.chat.completions.create(model="newsrag", messages=messages)  # type: ignore[arg-type]
    with pytest.raises(openai.AuthenticationError):
        list(wrong.chat.completions.create(model="newsrag", messages=messages, stream=True))  # type: ignore[arg-type]


@pytest.mark.parametrize(("failure", "message"), [
    ("runtime", "internal error; see the server log"),
    ("store", "the search index (Weaviate) is unavailable right now; try again in 4 s"),
])
def test_a_stream_that_fails_midway_raises_in_the_sdk_after_the_text_so_far(
        tmp_path: Any, failure: str, message: str) -> None:
    import openai

    from newsrag.core.errors import StoreUnavailable
    from tests.app.conftest import LiveServer
    from tests.app.scripted import build_app

    app, services = build_app(tmp_path)
    services.answerer.fail_with = (RuntimeError("secret /srv/detail") if failure == "runtime" else
                                   StoreUnavailable("Query call with protocol GRPC search failed", retry_after=4))
    server = LiveServer(app)
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused-locally", max_retries=0)
        received: list[str] = []
        with pytest.raises(openai.APIError) as caught:
            for chunk in client.chat.completions.create(model="newsrag", stream=True, messages=[
                    {"role": "user", "content": "harbor"}]):
                received.append(chunk.choices[0].delta.content or "")
        assert caught.value.message == message
        assert "".join(received)  # the text before the failure got through
        assert "GRPC" not in str(caught.value.body) and "/srv" not in str(caught.value.body)
    finally:
        server.stop()
