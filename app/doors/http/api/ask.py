"""POST /api/v1/ask: an answer from the documents the caller may read, with structured
citations; `"stream": true` sends it as server-sent events (`token`, then `citations`, `done`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from app.doors.http.api.auth import ReadCaller
from app.doors.http.api.citations import Citation, from_context, support_of
from app.doors.http.api.errors import ApiError
from app.doors.http.api.streaming import collect, pump
from app.service import Answer

router = APIRouter(tags=["search and ask"])


# Sizes are the use case's rule (app/service/rules.py): an oversized field is a 413 naming its limit.
class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class AskRequest(BaseModel):
    question: str = Field(min_length=1)
    history: list[Turn] = Field(default_factory=list, description="earlier turns; the last 40 are read")
    stream: bool = False
    as_admin: bool = Field(default=False, description="answer from every document (admin-scope key of an admin)")


class AskResponse(BaseModel):
    answer: str
    citations: list[Citation]
    found_nothing: bool
    supported: bool = Field(description="False: passages were found but the answer cites none that supports it")
    warning: str | None = Field(default=None, description="shown to the reader when supported is false")


def citations_of(answer: Answer) -> list[Citation]:
    return [from_context(c) for c in answer.citations()] if answer.context else []


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def sse(answer: Answer) -> Iterator[str]:
    for token in answer.tokens():
        yield _event("token", {"text": token})
    yield _event("citations", {"citations": [c.model_dump() for c in citations_of(answer)]})
    yield _event("done", {"found_nothing": answer.found_nothing, **support_of(answer)})


@router.post("/ask", response_model=AskResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def ask(body: AskRequest, request: Request, caller: ReadCaller):  # noqa: ANN201
    """Ask a question. 429 with Retry-After when the answer queue is full."""
    history = [t.model_dump() for t in body.history]
    if body.as_admin and not caller.may_act_as_admin:
        raise ApiError(403, "forbidden", "as_admin needs an admin-scope key: `kura keys create --scope admin`")
    service = request.app.state.get_service()
    # Retrieval blocks: off the event loop (the call's audit marks go along with its context).
    answer = await run_in_threadpool(service.ask, caller.user, body.question, as_admin=body.as_admin, history=history)
    if body.stream:
        return StreamingResponse(
            pump(sse(answer)), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )
    text = await collect(answer, request)
    if text is None:  # the client left; nobody reads this
        return Response(status_code=499)
    return AskResponse(
        answer=text, citations=citations_of(answer), found_nothing=answer.found_nothing, **support_of(answer)
    )
