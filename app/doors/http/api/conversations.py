"""The caller's saved conversations (app/service/conversations.py): list, search, open, rename,
delete one or all, export (JSON or Markdown) and import a JSON export. Continue one with
`POST /api/v1/ask` and its `conversation_id`.

Only the key's owner reaches their conversations; any other id, someone else's included, is
404, the same answer as for an id that never existed (the service audits the denial). Every
citation of a reopened turn was fetched again with the owner's groups now.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from app.doors.http.api.ask import Quote
from app.doors.http.api.auth import ReadCaller
from app.doors.http.api.citations import Citation, from_context
from app.doors.http.api.errors import ApiError
from app.service.conversation_store import Conversation, ConversationSummary, ReopenedTurn

router = APIRouter(tags=["conversations"])


class ConversationOut(BaseModel):
    id: str
    title: str = Field(description="the first question unless renamed")
    created: float
    updated: float = Field(description="when the last turn was saved (epoch seconds)")
    turns: int


class TurnOut(BaseModel):
    question: str
    at: float
    verdict: str = Field(description="answered | uncertain | abstained | nothing, or unavailable: a source is gone")
    available: bool = Field(description="false: a passage this answer was given is no longer readable to you")
    statement: str
    quotes: list[Quote]
    generated: str | None
    withheld: str | None
    answer: str = Field(description="everything shown for this turn now, as text with [n] citations")
    supported: bool
    citations: list[Citation] = Field(description="the cited passages you may still read, fetched now")
    related: list[Citation]
    unavailable_sources: int


class ConversationDetail(ConversationOut):
    conversation_turns: list[TurnOut]


class MatchOut(BaseModel):
    conversation: ConversationOut
    field: Literal["title", "question", "answer"]
    snippet: str


class Rename(BaseModel):
    title: str = Field(min_length=1, max_length=1000)


def summary_out(s: ConversationSummary) -> ConversationOut:
    return ConversationOut(id=s.id, title=s.title, created=s.created, updated=s.updated, turns=s.turns)


def turn_out(t: ReopenedTurn) -> TurnOut:
    return TurnOut(
        question=t.question,
        at=t.at,
        verdict=t.verdict,
        available=t.available,
        statement=t.statement,
        quotes=[Quote(text=text, citation=n) for text, n in t.quotes],
        generated=t.generated or None,
        withheld=t.withheld_reason,
        answer=t.shown_text,
        supported=t.supported,
        citations=[from_context(c) for c in t.citations()],
        related=[from_context(c) for c in t.also_retrieved()] if t.sources() else [],
        unavailable_sources=t.gone,
    )


def detail_out(c: Conversation) -> ConversationDetail:
    return ConversationDetail(**summary_out(c.summary).model_dump(), conversation_turns=[turn_out(t) for t in c.turns])


def _service(request: Request) -> Any:
    return request.app.state.get_service()


@router.get("/conversations", response_model=list[ConversationOut])
def list_conversations(
    request: Request, caller: ReadCaller, limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0)
) -> list[ConversationOut]:
    """Your conversations, the most recently continued first."""
    return [summary_out(s) for s in _service(request).list_conversations(caller.user, limit, offset)]


@router.get("/conversations/search", response_model=list[MatchOut])
def search_conversations(
    request: Request, caller: ReadCaller, q: str = Query(min_length=1), limit: int = Query(20, ge=1, le=200)
) -> list[MatchOut]:
    """Your conversations whose title, questions or answers hold these words (English and Japanese)."""
    matches = _service(request).search_conversations(caller.user, q, limit)
    return [MatchOut(conversation=summary_out(m.summary), field=m.field, snippet=m.snippet) for m in matches]


@router.get("/conversations/export", response_class=Response)
def export_conversations(
    request: Request, caller: ReadCaller, format: Literal["json", "markdown"] = "json"
) -> Response:
    """Your whole history as a file: JSON (import it again with POST /conversations/import) or Markdown."""
    text = _service(request).export_conversations(caller.user, format)
    media, suffix = ("application/json", "json") if format == "json" else ("text/markdown; charset=utf-8", "md")
    disposition = f'attachment; filename="kura-conversations.{suffix}"'
    return Response(text, media_type=media, headers={"Content-Disposition": disposition, "Cache-Control": "no-store"})


@router.post("/conversations/import", status_code=201)
async def import_conversations(request: Request, caller: ReadCaller) -> dict[str, list[str]]:
    """Add the conversations of a JSON export (the request body) to yours, with new ids; returns them."""
    text = (await request.body()).decode("utf-8", errors="replace")
    return {"imported": await run_in_threadpool(_service(request).import_conversations, caller.user, text)}


@router.get("/conversations/{conversation_id}", response_model=ConversationDetail)
def get_conversation(conversation_id: str, request: Request, caller: ReadCaller) -> ConversationDetail:
    """One of your conversations, each citation fetched again with your groups now."""
    return detail_out(_service(request).conversation(caller.user, conversation_id))


@router.put("/conversations/{conversation_id}", response_model=ConversationOut)
def rename_conversation(conversation_id: str, body: Rename, request: Request, caller: ReadCaller) -> ConversationOut:
    return summary_out(_service(request).rename_conversation(caller.user, conversation_id, body.title))


@router.delete("/conversations/{conversation_id}")
def delete_conversation(conversation_id: str, request: Request, caller: ReadCaller) -> dict[str, int]:
    _service(request).delete_conversation(caller.user, conversation_id)
    return {"deleted": 1}


@router.delete("/conversations")
def delete_all_conversations(
    request: Request, caller: ReadCaller, all: bool = Query(False, description="must be true: delete every one")
) -> dict[str, int]:
    """Delete every conversation of yours (`?all=true`, so that no stray DELETE does it)."""
    if not all:
        raise ApiError(400, "bad_request", "add ?all=true to delete every conversation of yours")
    return {"deleted": _service(request).delete_all_conversations(caller.user)}
