"""A passage: one chunk found for a query, with everything a citation needs (file, page,
heading path, ids) and the raw signals behind its score."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.store import Hit


@dataclass(frozen=True)
class Passage:
    """A chunk found for a query, with everything a citation needs."""

    chunk_id: str
    doc_id: str
    text: str
    title: str
    source_path: str
    page: int | None
    page_end: int | None
    heading_path: tuple[str, ...]
    chunk_index: int
    score: float
    # Raw signals behind `score` (a fused rank score in hybrid mode, meaningless as an absolute):
    # the query/chunk cosine (when dense ran) and the cross-encoder's score (when it ran).
    dense_score: float | None = None
    rerank_score: float | None = None
    # What a reader is shown instead of `source_path`: the file relative to the folder it was
    # ingested from (set by the service; the server's absolute path stays for admins' views).
    shown_path: str = ""

    @classmethod
    def from_hit(cls, hit: Hit, query_vector: Sequence[float] | None = None) -> Passage:
        p = hit.payload
        dense_score = (
            _cosine(query_vector, hit.dense) if query_vector is not None and hit.dense else None
        )
        return cls(
            chunk_id=hit.id,
            doc_id=hit.doc_id,
            text=hit.text,
            title=str(p.get("title", "")),
            source_path=str(p.get("source_path", "")),
            page=p.get("page"),
            page_end=p.get("page_end"),
            heading_path=tuple(p.get("heading_path") or ()),
            chunk_index=int(p.get("chunk_index", 0)),
            score=hit.score,
            dense_score=dense_score,
        )

    @property
    def location(self) -> str:
        """'path p.N' (or 'path pp.N-M'), the form citations are printed in; the display path
        when the service has set one."""
        path = self.shown_path or self.source_path
        if self.page is None:
            return path
        if self.page_end and self.page_end != self.page:
            return f"{path} pp.{self.page}-{self.page_end}"
        return f"{path} p.{self.page}"



def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
