"""/v1/ask (JSON or SSE), /v1/search, /v1/feedback, health, readiness and metrics."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.responses import StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import AfterValidator, Field

from newsrag.app.deps import (
    ServicesDep,
    admin_key,
    as_of_from,
    check_as_of,
    check_date,
    client_key,
    filters_from,
    metrics_key,
    services,
)
from newsrag.app.errors import DEFAULT_RETRY_AFTER, stream_error
from newsrag.app.services import Services
from newsrag.app.validation import UnicodeBody
from newsrag.prompts.provider import BUILTIN
from newsrag.retrieval.answer import Answer
from newsrag.retrieval.generators import PromptRef

router = APIRouter()
T = TypeVar("T")


DATES = ("a date (2026-09-12: since = its start, until = its end), a time (naive = UTC) or a zoned time; "
         "since is inclusive, until exclusive")
DateField = Annotated[str | None, Field(max_length=64, description=DATES), AfterValidator(check_date)]
DateQuery = Annotated[str | None, Query(max_length=64, description=DATES), AfterValidator(check_date)]
AS_OF = ("answer as of this instant: only articles published and ingested by then, recency counted from it; "
         "a date (2026-10-19) is the end of that day (UTC), a time without a zone is UTC; not in the future "
         "(5 minutes of clock skew allowed); default: now")
AsOfField = Annotated[str | None, Field(max_length=64, description=AS_OF), AfterValidator(check_as_of)]
AsOfQuery = Annotated[str | None, Query(max_length=64, description=AS_OF), AfterValidator(check_as_of)]
LIST_HELP = "repeat the parameter or separate values with commas"


class AskRequest(UnicodeBody):
    question: str = Field(min_length=1)
    sources: list[str] = Field(default_factory=list, max_length=50, description=LIST_HELP)
    tags: list[str] = Field(default_factory=list, max_length=50, description=LIST_HELP)
    since: DateField = None
    until: DateField = None
    as_of: AsOfField = None
    top_k: int | None = Field(None, ge=1, le=50)
    stream: bool = False
    conversation_id: str | None = Field(None, max_length=128)  # A/B arms stick to it (else to the client)


class FeedbackRequest(UnicodeBody):
    trace_id: str = Field(min_length=8, max_length=64)
    rating: Literal["up", "down", 1, -1]
    comment: str | None = Field(None, max_length=2000)


def check_question(question: str, svc: Services) -> str:
    text = question.strip()
    if not text:
        raise HTTPException(400, "the question is empty")
    if len(text) > svc.settings.max_question_chars:
        raise HTTPException(400, f"the question is too long ({len(text)} characters; the limit is "
                                 f"{svc.settings.max_question_chars})")
    return text


@router.post("/v1/ask", response_model=Answer)
def ask(body: AskRequest, svc: Services = Depends(services), key: str = Depends(client_key)) -> Any:
    question = check_question(body.question, svc)
    filters = filters_from(body.sources, body.tags, body.since, body.until)
    as_of = as_of_from(body.as_of)
    prompt, arm = select_prompt(svc, body.conversation_id or key)
    if body.stream:
        events = primed(svc.answerer.ask_stream(question, filters=filters, top_k=body.top_k, prompt=prompt,
                                                as_of=as_of))
        return StreamingResponse(sse(events, svc, question, arm), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    answer = svc.answerer.ask(question, filters=filters, top_k=body.top_k, prompt=prompt, as_of=as_of)
    return served(svc, answer, question, arm)


def primed(events: Iterator[T]) -> Iterator[T]:
    """The stream with its first event already taken: retrieval runs before the headers go out, so
    an invalid question or a store that is down is still a plain 400 or 503 (with Retry-After)."""
    try:
        first = next(events)
    except StopIteration:
        return iter(())
    return itertools.chain([first], events)


def select_prompt(svc: Services, key: str) -> tuple[PromptRef | None, str]:
    """The registry's active template (or the A/B arm for this key), read through the TTL cache;
    (None, BUILTIN) when the registry has none to serve (the provider logs why)."""
    chosen = svc.prompts.select(key)
    if chosen.template is None:
        return None, chosen.arm
    t = chosen.template
    return PromptRef(t.name, t.version, t.system, t.user), chosen.arm


def served(svc: Services, answer: Answer, question: str, arm: str | None = None) -> Answer:
    if arm == BUILTIN and answer.prompt_version != "n/a":  # "n/a": the generator renders no template
        answer = answer.model_copy(update={"prompt_version": BUILTIN})  # not a registry version
    elif arm and arm != BUILTIN and answer.prompt_name == svc.prompts.name:  # only templates used have an arm
        answer = answer.model_copy(update={"prompt_arm": arm})
    svc.feedback.record_answer(answer, question, arm=answer.prompt_arm)
    svc.metrics.answers.labels(abstained=str(answer.abstained).lower()).inc()
    return answer


def sse(events: Iterator[Any], svc: Services, question: str, arm: str | None = None) -> Iterator[str]:
    """Server-sent events: ``meta``, ``delta``…, then ``done`` (the full Answer) or ``error``."""
    trace_id = None
    try:
        for event in events:
            trace_id = event.trace_id
            if event.type == "done":
                answer = served(svc, event.answer, question, arm)
                yield _event("done", answer.model_dump(mode="json"))
            elif event.type == "meta":
                yield _event("meta", {"trace_id": event.trace_id,
                                      "retrieval": [r.model_dump() for r in event.retrieval]})
            else:
                yield _event("delta", {"text": event.text})
    except Exception as exc:  # noqa: BLE001 - headers are gone: the error travels in the stream, which always ends
        message, kind, status = stream_error(exc, trace_id)
        yield _event("error", {"message": message, "type": kind, "status": status, "trace_id": trace_id})


def _event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


@router.get("/v1/search")
def search(q: str = Query(..., description="The query."),
           source: list[str] = Query(default=[], description=LIST_HELP),
           tag: list[str] = Query(default=[], description=LIST_HELP), since: DateQuery = None, until: DateQuery = None,
           as_of: AsOfQuery = None, top_k: int = Query(8, ge=1, le=100), alpha: float | None = Query(None, ge=0, le=1),
           mode: Literal["hybrid", "vector", "bm25"] = "hybrid", svc: Services = Depends(services),
           key: str = Depends(client_key)) -> dict[str, Any]:
    query = check_question(q, svc)
    result = svc.searcher.search(query, filters=filters_from(source, tag, since, until), top_k=top_k,
                                 alpha=alpha, mode=mode, as_of=as_of_from(as_of))
    hits = [{"chunk_id": h.uuid, "score": round(h.score, 6),
             **{k: _jsonable(v) for k, v in h.chunk.model_dump().items()}} for h in result.hits]
    return {"query": query, "hits": hits, "timings": result.timings, "as_of": _jsonable(result.as_of)}


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@router.post("/v1/feedback", status_code=201)
def feedback(body: FeedbackRequest, svc: Services = Depends(services), key: str = Depends(client_key)) -> dict[str, Any]:
    rating = 1 if body.rating in ("up", 1) else -1
    feedback_id = svc.feedback.add_feedback(body.trace_id, rating, body.comment, user_key=key)
    svc.metrics.feedback.labels(rating="up" if rating > 0 else "down").inc()
    return {"id": feedback_id, "trace_id": body.trace_id, "rating": rating}


@router.get("/v1/prompts")
def prompts(svc: Services = Depends(services), key: str = Depends(admin_key)) -> dict[str, Any]:
    """Active template versions and A/B splits (admin-only when auth is on)."""
    out = []
    for name in svc.registry.names():
        a = svc.registry.active(name)
        out.append({"name": name, "active": a.active, "canary": a.canary, "canary_weight": a.canary_weight,
                    "versions": svc.registry.versions(name)})
    return {"prompts": out, "ttl_seconds": svc.settings.prompt_ttl_seconds}


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(response: Response, svc: Services = Depends(services)) -> dict[str, Any]:
    state = svc.ready()
    if not state["ready"]:
        response.status_code = 503
        response.headers["Retry-After"] = str(DEFAULT_RETRY_AFTER)
    return state


@router.get("/metrics")
def metrics(svc: ServicesDep, key: Annotated[str | None, Depends(metrics_key)]) -> Response:
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def observe(svc: Services, route: str, status: int, started: float) -> None:
    svc.metrics.requests.labels(route=route, status=str(status)).inc()
    svc.metrics.latency.labels(route=route).observe(time.perf_counter() - started)
