"""The OpenAI-compatible door (`/v1`): any tool that speaks the OpenAI chat API (the `openai`
SDK, Open WebUI, a chat bot) asks kura with a personal API key as its "OpenAI key".

- `GET /v1/models` lists `kura` (answers from the documents) and `kura-tasks` (the model alone,
  no documents: for a front end's own background prompts, see below).
- `POST /v1/chat/completions` with `kura` (streamed or not) answers the last user message from the
  documents the key's owner may read; earlier messages are the conversation history. The content
  is Markdown any front end shows: what the documents say (the verbatim quote with [n]), the
  generated answer only when the support check passed (else why it was withheld), the verdict
  when the documents may not answer, and the sources. Citations travel as OpenAI's standard
  `annotations` (`url_citation`: title "file p.N", url a kura link that opens the passage for a
  signed-in reader who may read it), in the message and in the first stream delta; kura-aware
  clients also get `reference` (`{"citations", "supported", "warning", "notice", "verdict"}`).
- Front ends send their own background prompts (chat titles, follow-up suggestions, tags: Open
  WebUI's "### Task: ..."). Set `kura-tasks` as the front end's task model: it runs the model
  without retrieval and is audited as `llm_task`, not as a question about the documents. A task
  prompt sent to `kura` is recognised and answered the same way.

System (and `developer`) messages are ignored, and the response says so in `reference.notice`:
kura's grounding and checks decide how answers are written. A wish about the answer belongs in
the question.
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
from app.doors.http.api.markdown_answer import annotated_markdown, generated_markdown
from app.doors.http.api.streaming import collect, pump
from app.service import Answer

MODEL, TASK_MODEL = "kura", "kura-tasks"
router = APIRouter(tags=["OpenAI-compatible"])
_INSTRUCTION_ROLES = ("system", "developer")
SYSTEM_IGNORED = (
    "kura ignored the system message: its own instructions decide how answers are grounded in "
    "your documents and cited; put any wish about the answer into your question"
)
# How Open WebUI (and tools copying it) start their background prompts.
_TASK_PREFIXES = ("### Task:", "### task:")


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
    listed = [{"id": m, "object": "model", "created": 0, "owned_by": "kura"} for m in (MODEL, TASK_MODEL)]
    return {"object": "list", "data": listed}


def _reference(answer: Answer, notice: str | None) -> dict:
    citations = [c.model_dump() for c in citations_of(answer)]
    return {"citations": citations, **support_of(answer), "notice": notice, "verdict": answer.verdict}


def _chunk(completion_id: str, created: int, model: str, delta: dict, finish: str | None = None, **extra: Any) -> str:
    body = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def _answer_chunks(answer: Answer, link: str, completion_id: str, created: int, notice: str | None) -> Iterator[str]:
    """Evidence and its annotations first (before any place in the model's line), then the
    checked generated answer, then the verdict."""
    content, annotations = annotated_markdown(answer, link)
    yield _chunk(completion_id, created, MODEL, {"role": "assistant", "content": content, "annotations": annotations})
    for _ in answer.tokens():
        yield ": generating\n\n"  # an SSE comment: a client that left stops generation at the next token
    if tail := generated_markdown(answer):
        yield _chunk(completion_id, created, MODEL, {"content": tail})
    yield _chunk(completion_id, created, MODEL, {}, "stop", reference=_reference(answer, notice))
    yield "data: [DONE]\n\n"


def _task_chunks(stream: Iterator[str], completion_id: str, created: int) -> Iterator[str]:
    yield _chunk(completion_id, created, TASK_MODEL, {"role": "assistant", "content": ""})
    for token in stream:
        yield _chunk(completion_id, created, TASK_MODEL, {"content": token})
    yield _chunk(completion_id, created, TASK_MODEL, {}, "stop")
    yield "data: [DONE]\n\n"


def _completion(completion_id: str, created: int, model: str, message: dict, tokens: int, **extra: Any) -> dict:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": tokens, "total_tokens": tokens},
        **extra,
    }


def citation_link(request: Request, public_url: str | None) -> str:
    """Where a reader opens a cited passage: the UI's passage page on this server."""
    base = (public_url or str(request.url.replace(path="", query="", fragment=""))).rstrip("/")
    return f"{base}/passage?chunk="


@router.post(
    "/chat/completions",
    description="`kura`: answer the last user message from the documents the key's owner may read (evidence "
    "first, citations as `annotations`). `kura-tasks`: the model alone, for a front end's background prompts. "
    "System and developer messages are ignored (said in `reference.notice`).",
)
async def chat_completions(body: ChatRequest, request: Request, caller: ReadCaller):  # noqa: ANN201
    """See the module docstring; a client's system message never reaches the model."""
    if body.model not in (MODEL, TASK_MODEL):
        raise ApiError(404, "model_not_found", f"kura serves {MODEL!r} and {TASK_MODEL!r}; set model={MODEL!r}")
    turns = [(m.role, _text(m)) for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1][0] != "user" or not turns[-1][1].strip():
        raise ApiError(400, "bad_request", "the last message must be a non-empty user message (the question)")
    service = request.app.state.get_service()
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.model == TASK_MODEL or turns[-1][1].lstrip().startswith(_TASK_PREFIXES):
        return await _task(service, caller, turns[-1][1], body.stream, completion_id, created)
    history = [{"role": role, "content": text} for role, text in turns[:-1]]
    notice = SYSTEM_IGNORED if any(m.role in _INSTRUCTION_ROLES for m in body.messages) else None
    answer = await run_in_threadpool(service.ask, caller.user, turns[-1][1], history=history)
    link = citation_link(request, service.settings.public_url)
    if body.stream:
        chunks = _answer_chunks(answer, link, completion_id, created, notice)
        return StreamingResponse(pump(chunks), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
    if await collect(answer, request) is None:  # the client left; nobody reads this
        return Response(status_code=499)
    content, annotations = annotated_markdown(answer, link)
    message = {"role": "assistant", "content": content + generated_markdown(answer), "annotations": annotations}
    return _completion(
        completion_id, created, MODEL, message, answer.token_count, reference=_reference(answer, notice)
    )


async def _task(service: Any, caller: Any, prompt: str, stream: bool, cid: str, created: int):  # noqa: ANN202
    """A front end's background prompt: the model alone, audited as a task, no documents."""
    tokens = await run_in_threadpool(service.run_task, caller.user, prompt)
    if stream:
        return StreamingResponse(pump(_task_chunks(tokens, cid, created)), media_type="text/event-stream")
    parts = await run_in_threadpool(list, tokens)
    return _completion(cid, created, TASK_MODEL, {"role": "assistant", "content": "".join(parts)}, len(parts))
