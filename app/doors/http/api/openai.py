"""The OpenAI-compatible door (`/v1`): any tool that speaks the OpenAI chat API (the `openai`
SDK, Open WebUI, a chat bot) asks kura with a personal API key as its "OpenAI key".

- `GET /v1/models` lists one model, `kura`.
- `POST /v1/chat/completions` (streamed or not) answers the last user message from the
  documents the key's owner may read; earlier messages are the conversation history. The
  content carries `[n]` markers; the citations for them are in one extra field, `reference`
  (`{"citations": [...], "supported": bool, "warning": str | null, "notice": str | null}`,
  see app/doors/http/api/citations.py), of the response and of the last stream chunk, the place RAGFlow
  uses. `supported` is false, with the warning to show, when the answer cites none of its
  passages in a way they support.

System (and `developer`) messages are ignored, and the response says so in
`reference.notice`. kura's grounding prompt must stay in charge: with a small local model an
extra instruction ("answer from general knowledge", "leave out the [n] markers") is not
reliably kept below kura's own, and it would switch off exactly what the citation check relies
on. (The ACL could not be switched off either way: it is part of the Qdrant query.) Chat tools
also send a generic system prompt with every request, which would only cost context. A wish
about the answer belongs in the question.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from app.doors.http.api.ask import citations_of
from app.doors.http.api.auth import ReadCaller
from app.doors.http.api.citations import support_of
from app.doors.http.api.errors import ApiError
from app.doors.http.api.streaming import collect, pump
from app.service import Answer

MODEL = "kura"
router = APIRouter(tags=["OpenAI-compatible"])
_INSTRUCTION_ROLES = ("system", "developer")
SYSTEM_IGNORED = (
    "kura ignored the system message: its own instructions decide how answers are grounded in "
    "your documents and cited; put any wish about the answer into your question"
)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens...: accepted, kura decides
    model: str = MODEL
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


def _text(message: ChatMessage) -> str:
    if isinstance(message.content, list):  # [{"type": "text", "text": ...}, ...]
        return "".join(str(part.get("text", "")) for part in message.content if part.get("type") == "text")
    return message.content or ""


@router.get("/models")
def models(caller: ReadCaller) -> dict:
    return {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "kura"}]}


def _reference(answer: Answer, notice: str | None) -> dict:
    return {"citations": [c.model_dump() for c in citations_of(answer)], **support_of(answer), "notice": notice}


def _chunks(answer: Answer, completion_id: str, created: int, notice: str | None) -> Iterator[str]:
    def chunk(delta: dict, finish: str | None = None, **extra: Any) -> str:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for token in answer.tokens():
        yield chunk({"content": token})
    yield chunk({}, "stop", reference=_reference(answer, notice))
    yield "data: [DONE]\n\n"


@router.post(
    "/chat/completions",
    description="Answer the last user message from the documents the key's owner may read; citations in "
    "`reference`. System and developer messages are ignored (said in `reference.notice`): kura's grounding "
    "prompt decides how answers are written and cited.",
)
async def chat_completions(body: ChatRequest, request: Request, caller: ReadCaller):  # noqa: ANN201
    """See the module docstring; a client's system message never reaches the model."""
    if body.model != MODEL:
        raise ApiError(404, "model_not_found", f"kura serves one model, {MODEL!r}; set model={MODEL!r}")
    turns = [(m.role, _text(m)) for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
        raise ApiError(400, "bad_request", "the last message must be a non-empty user message (the question)")
    history = [{"role": role, "content": text} for role, text in turns[:-1]]
    notice = SYSTEM_IGNORED if any(m.role in _INSTRUCTION_ROLES for m in body.messages) else None
    service = request.app.state.get_service()
    answer = await run_in_threadpool(service.ask, caller.user, turns[-1][1], history=history)
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        return StreamingResponse(
            pump(_chunks(answer, completion_id, created, notice)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store"},
        )
    text = await collect(answer, request)
    if text is None:  # the client left; nobody reads this
        return Response(status_code=499)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": answer.token_count, "total_tokens": answer.token_count},
        "reference": _reference(answer, notice),
    }
