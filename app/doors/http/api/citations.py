"""The structured citation the API returns for every passage an answer or a search shows:
number, file, page, heading path, document id, chunk id and a snippet. One shape for the REST
API and for the `reference` field of the OpenAI-compatible endpoint."""

from __future__ import annotations

from pathlib import PurePath

from pydantic import BaseModel

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


UNSUPPORTED_WARNING = (
    "Not supported by your documents: the answer cites none of the passages it was given in a way "
    "they support. Check the citations before relying on it."
)


def support_of(answer: object) -> dict[str, object]:
    """The citation check as the API reports it (the same verdict the UI and `kura ask` show):
    `supported` is False when passages were found but no sentence cites one that supports it."""
    unsupported = bool(getattr(answer, "unsupported", False))
    return {"supported": not unsupported, "warning": UNSUPPORTED_WARNING if unsupported else None}
