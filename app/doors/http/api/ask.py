"""POST /api/v1/ask: an answer from the documents the caller may read, evidence first.

The answer's shape (app/service/answer.py): `verdict` (answered | uncertain | abstained |
nothing), the `evidence` quote with its [n] citations, the `generated` answer only when the
support check passed (else `withheld` says why), and `answer`, the whole text as the reader is
shown it. `"stream": true` sends server-sent events: `evidence` at once (before any place in the
model's line), then `answer` when the generated text has been checked, then `citations`, `done`."""

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
    conversation_id: str | None = Field(default=None, description="continue this saved conversation of yours")
    save: bool = Field(default=True, description="keep the question and answer as a conversation (a new one "
                       "unless conversation_id names one); false without conversation_id: nothing is saved")


class Quote(BaseModel):
    text: str = Field(description="a sentence quoted verbatim from the passage")
    citation: int = Field(description="the number of the passage it is quoted from")


class Evidence(BaseModel):
    verdict: Literal["answered", "uncertain", "abstained", "nothing"]
    statement: str = Field(description="what the reader is told first, in the question's language")
    quotes: list[Quote]
    score: float | None = Field(description="the chance (0..1) that the quote answers the question")


class AskResponse(BaseModel):
    answer: str = Field(description="everything the reader is shown, as text with [n] citations")
    verdict: Literal["answered", "uncertain", "abstained", "nothing"]
    evidence: Evidence
    generated: str | None = Field(description="the model's answer, only when every sentence of it is supported")
    withheld: str | None = Field(description="why a generated answer is not shown")
    citations: list[Citation] = Field(description="the passages the shown answer cites (or related reading)")
    related: list[Citation] = Field(description="the other passages found, not cited")
    found_nothing: bool
    supported: bool = Field(description="True: the documents answer the question and everything shown is backed")
    warning: str | None = Field(default=None, description="shown to the reader when supported is false")
    conversation_id: str | None = Field(default=None, description="the saved conversation this answer is in")


def citations_of(answer: Answer) -> list[Citation]:
    return [from_context(c) for c in answer.citations()] if answer.context else []


def evidence_of(answer: Answer) -> Evidence:
    score = answer.evidence.score if answer.evidence is not None else None
    quotes = [Quote(text=text, citation=n) for text, n in answer.quote_lines()]
    return Evidence(verdict=answer.verdict, statement=answer.statement, quotes=quotes, score=score)  # type: ignore[arg-type]


def related_of(answer: Answer) -> list[Citation]:
    return [from_context(c) for c in answer.also_retrieved()] if answer.sources() else []


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def sse(answer: Answer) -> Iterator[str]:
    yield _event("evidence", evidence_of(answer).model_dump())
    for _ in answer.tokens():
        yield ": .\n\n"  # an SSE comment per token: a client that left stops generation at the next one
    yield _event("answer", {"generated": answer.generated or None, "withheld": answer.withheld_reason,
                            "answer": answer.shown_text})
    yield _event("citations", {"citations": [c.model_dump() for c in citations_of(answer)],
                               "related": [c.model_dump() for c in related_of(answer)]})
    yield _event("done", {"found_nothing": answer.found_nothing, "verdict": answer.verdict, **support_of(answer),
                          "conversation_id": answer.conversation_id})


def response_of(answer: Answer) -> AskResponse:
    return AskResponse(
        answer=answer.shown_text,
        verdict=answer.verdict,  # type: ignore[arg-type]
        evidence=evidence_of(answer),
        generated=answer.generated or None,
        withheld=answer.withheld_reason,
        citations=citations_of(answer),
        related=related_of(answer),
        found_nothing=answer.found_nothing,
        **support_of(answer),
        conversation_id=answer.conversation_id,
    )


@router.post("/ask", response_model=AskResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def ask(body: AskRequest, request: Request, caller: ReadCaller):  # noqa: ANN201
    """Ask a question. 429 with Retry-After when the answer queue is full."""
    history = [t.model_dump() for t in body.history]
    if body.as_admin and not caller.may_act_as_admin:
        raise ApiError(403, "forbidden", "as_admin needs an admin-scope key: `kura keys create --scope admin`")
    service = request.app.state.get_service()
    # Retrieval blocks: off the event loop (the call's audit marks go along with its context).
    answer = await run_in_threadpool(
        service.ask, caller.user, body.question, as_admin=body.as_admin, history=history,
        conversation_id=body.conversation_id, keep=body.save,
    )
    if body.stream:
        return StreamingResponse(
            pump(sse(answer)), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )
    if await collect(answer, request) is None:  # the client left; nobody reads this
        return Response(status_code=499)
    return response_of(answer)
