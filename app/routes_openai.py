"""An OpenAI-compatible Chat Completions API, so the official SDKs and tools like Open WebUI work.

Citations travel in two extension fields: ``citations`` (the cited articles' URLs, the convention
some OpenAI-compatible search APIs use: ``citations[n-1]`` is the article marked ``[n]``) and
``newsrag`` (trace id, sources with their quotes, citations, prompt version, abstention, the
``as_of`` answered as of, how ``usage`` was counted). In a stream both arrive on the final chunk,
before the usage chunk (with ``stream_options.include_usage``) and ``data: [DONE]``. A request may
carry ``as_of`` (newsrag's extension field, as on /v1/ask).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from newsrag.app.deps import as_of_from, client_key, services
from newsrag.app.errors import error_body, stream_error
from newsrag.app.routes_api import AsOfField, check_question, primed, select_prompt, served
from newsrag.app.services import Services
from newsrag.app.validation import UnicodeBody
from newsrag.retrieval.answer import Answer, AnswerEvent

router = APIRouter()


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatRequest(UnicodeBody):
    model_config = ConfigDict(extra="allow")  # temperature, top_p, user, ... are accepted and ignored
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    as_of: AsOfField = None  # newsrag's extension: answer as of this instant (see /v1/ask)


def _text(message: ChatMessage) -> str:
    if isinstance(message.content, list):
        return " ".join(p.text or "" for p in message.content if p.type == "text")
    return message.content or ""


def question_of(req: ChatRequest) -> str:
    users = [m for m in req.messages if m.role == "user"]
    if not users:
        raise HTTPException(400, "messages must contain at least one 'user' message")
    return _text(users[-1])


@router.get("/v1/models")
def models(svc: Services = Depends(services), key: str = Depends(client_key)) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": svc.settings.model_name, "object": "model", "created": 0,
                                        "owned_by": "newsrag"}]}


@router.post("/v1/chat/completions")
def chat_completions(req: ChatRequest, svc: Services = Depends(services), key: str = Depends(client_key)) -> Any:
    if req.model != svc.settings.model_name:
        raise HTTPException(404, f"The model '{req.model}' does not exist; available: {svc.settings.model_name}")
    question = check_question(question_of(req), svc)
    as_of = as_of_from(req.as_of)
    user = (req.model_extra or {}).get("user")
    prompt, arm = select_prompt(svc, str(user) if user else key)  # OpenAI's `user` keeps A/B arms sticky
    if req.stream:
        with_usage = bool(req.stream_options and req.stream_options.include_usage)
        events = primed(svc.answerer.ask_stream(question, prompt=prompt, as_of=as_of))
        chunks = ChunkWriter(req.model, with_usage)
        return StreamingResponse(_stream(svc, events, question, chunks, arm), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})
    answer = served(svc, svc.answerer.ask(question, prompt=prompt, as_of=as_of), question, arm)
    return {
        "id": f"chatcmpl-{answer.trace_id}", "object": "chat.completion", "created": int(time.time()),
        "model": req.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text}, "finish_reason": "stop"}],
        "usage": svc.tokens.usage(question, answer.text), **extensions(answer, svc.tokens.counted_by),
    }


def extensions(answer: Answer, usage_counted_by: str) -> dict[str, Any]:
    """``citations[n-1]`` is the URL of the article the text cites as ``[n]`` (one per article)."""
    return {
        "citations": [s.url for s in answer.sources],
        "newsrag": {"trace_id": answer.trace_id, "abstained": answer.abstained, "prompt_name": answer.prompt_name,
                    "prompt_version": answer.prompt_version, "prompt_arm": answer.prompt_arm,
                    "generator": answer.generator, "usage_counted_by": usage_counted_by,
                    "as_of": answer.as_of.isoformat() if answer.as_of else None,
                    "sources": [s.model_dump(mode="json") for s in answer.sources],
                    "citations": [c.model_dump(mode="json") for c in answer.citations]},
    }


def _stream(svc: Services, events: Iterator[AnswerEvent], question: str, chunks: ChunkWriter,
            arm: str | None = None) -> Iterator[str]:
    trace_id = None
    try:
        for event in events:
            trace_id = event.trace_id
            if event.type == "meta":
                chunks.id = f"chatcmpl-{event.trace_id}"
                yield chunks.delta({"role": "assistant", "content": ""})
            elif event.type == "delta":
                yield chunks.delta({"content": event.text})
            elif event.answer is not None:
                answer = served(svc, event.answer, question, arm)
                yield chunks.delta({}, "stop", extensions(answer, svc.tokens.counted_by))
                if chunks.with_usage:  # as OpenAI: a last chunk with no choices and the whole request's usage
                    yield chunks.usage(svc.tokens.usage(question, answer.text))
    except Exception as exc:  # noqa: BLE001 - headers are gone: an error chunk, then [DONE] as always
        message, kind, status = stream_error(exc, trace_id)
        yield f"data: {json.dumps(error_body(message, kind, status, openai=True))}\n\n"
    yield "data: [DONE]\n\n"


class ChunkWriter:
    """``chat.completion.chunk`` lines of one stream. With ``stream_options.include_usage`` every
    chunk carries ``usage: null`` and the usage chunk carries the counts, as OpenAI's do."""

    def __init__(self, model: str, with_usage: bool) -> None:
        self.id, self.model, self.with_usage = "chatcmpl-pending", model, with_usage
        self.created = int(time.time())

    def delta(self, delta: dict[str, Any], finish: str | None = None, extra: dict[str, Any] | None = None) -> str:
        return self._line([{"index": 0, "delta": delta, "finish_reason": finish}], None, extra)

    def usage(self, usage: dict[str, int]) -> str:
        return self._line([], usage, None)

    def _line(self, choices: list[dict[str, Any]], usage: dict[str, int] | None, extra: dict[str, Any] | None) -> str:
        body: dict[str, Any] = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                                "model": self.model, "choices": choices}
        if self.with_usage:
            body["usage"] = usage
        return f"data: {json.dumps({**body, **(extra or {})})}\n\n"
