"""An OpenAI-compatible Chat Completions API, so the official SDKs and tools like Open WebUI work.

Citations travel in two extension fields: ``citations`` (a list of source URLs, the convention some
OpenAI-compatible search APIs use) and ``newsrag`` (trace id, full citations, prompt version,
abstention). In a stream both arrive on the final chunk, before ``data: [DONE]``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from app.deps import client_key, services
from app.errors import error_body, stream_error
from app.routes_api import check_question, select_prompt, served
from app.services import Services
from app.validation import UnicodeBody
from retrieval.answer import Answer

router = APIRouter()


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[ContentPart] | None = None


class ChatRequest(UnicodeBody):
    model_config = ConfigDict(extra="allow")  # temperature, top_p, user, ... are accepted and ignored
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


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
    user = (req.model_extra or {}).get("user")
    prompt, arm = select_prompt(svc, str(user) if user else key)  # OpenAI's `user` keeps A/B arms sticky
    if req.stream:
        return StreamingResponse(_stream(svc, question, req.model, prompt, arm), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})
    answer = served(svc, svc.answerer.ask(question, prompt=prompt), question, arm)
    return {
        "id": f"chatcmpl-{answer.trace_id}", "object": "chat.completion", "created": int(time.time()),
        "model": req.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text}, "finish_reason": "stop"}],
        "usage": _usage(question, answer.text), **extensions(answer),
    }


def extensions(answer: Answer) -> dict[str, Any]:
    return {
        "citations": list(dict.fromkeys(c.url for c in answer.citations)),
        "newsrag": {"trace_id": answer.trace_id, "abstained": answer.abstained, "prompt_name": answer.prompt_name,
                    "prompt_version": answer.prompt_version, "prompt_arm": answer.prompt_arm,
                    "generator": answer.generator,
                    "citations": [c.model_dump(mode="json") for c in answer.citations]},
    }


def _usage(question: str, text: str) -> dict[str, int]:
    prompt, completion = len(question.split()), len(text.split())  # word counts: no tokenizer is involved
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _stream(svc: Services, question: str, model: str, prompt: Any = None, arm: str | None = None) -> Iterator[str]:
    created = int(time.time())
    chunk_id = "chatcmpl-pending"
    trace_id = None
    try:
        for event in svc.answerer.ask_stream(question, prompt=prompt):
            trace_id = event.trace_id
            if event.type == "meta":
                chunk_id = f"chatcmpl-{event.trace_id}"
                yield _chunk(chunk_id, created, model, {"role": "assistant", "content": ""})
            elif event.type == "delta":
                yield _chunk(chunk_id, created, model, {"content": event.text})
            elif event.answer is not None:
                answer = served(svc, event.answer, question, arm)
                yield _chunk(chunk_id, created, model, {}, "stop", extensions(answer))
    except Exception as exc:  # noqa: BLE001 - headers are gone: an error chunk, then [DONE] as always
        message, kind, status = stream_error(exc, trace_id)
        yield f"data: {json.dumps(error_body(message, kind, status, openai=True))}\n\n"
    yield "data: [DONE]\n\n"


def _chunk(chunk_id: str, created: int, model: str, delta: dict[str, Any], finish: str | None = None,
           extra: dict[str, Any] | None = None) -> str:
    body = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **(extra or {})}
    return f"data: {json.dumps(body)}\n\n"
