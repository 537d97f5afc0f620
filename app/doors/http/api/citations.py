"""The structured citation the API returns for every passage an answer or a search shows:
number, file, page, heading path, document id, chunk id and a snippet. One shape for the REST
API and for the `reference` field of the OpenAI-compatible endpoint."""

from __future__ import annotations

from pathlib import PurePath

from pydantic import BaseModel

from app.service.answer import Answer
from retrieval.context import ContextPassage
from retrieval.passage import Passage

SNIPPET_CHARS = 300


class Citation(BaseModel):
    number: int
    file: str
    path: str
    page: int | None
    page_end: int | None
    heading_path: list[str]
    doc_id: str
    chunk_id: str
    chunk_ids: list[str]
    snippet: str
    score: float | None = None


def from_passage(passage: Passage, number: int, chunk_ids: tuple[str, ...] = ()) -> Citation:
    return Citation(
        number=number,
        file=PurePath(passage.shown_path or passage.source_path).name,
        path=passage.shown_path or passage.source_path,
        page=passage.page,
        page_end=passage.page_end,
        heading_path=list(passage.heading_path),
        doc_id=passage.doc_id,
        chunk_id=passage.chunk_id,
        chunk_ids=list(chunk_ids or (passage.chunk_id,)),
        snippet=passage.text[:SNIPPET_CHARS],
        score=passage.score,
    )


def from_context(context: ContextPassage) -> Citation:
    return from_passage(context.passage, context.number, context.chunk_ids)


def support_of(answer: Answer) -> dict[str, object]:
    """The verdict as every door reports it: `supported` is True only when the documents answer
    the question and everything shown is quoted from them or backed by them; otherwise `warning`
    is what the reader is told (the documents may not answer it, or do not)."""
    return {"supported": answer.supported, "warning": None if answer.supported else answer.statement}
