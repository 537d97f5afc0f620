"""Search the store for passages a caller may read.

Usage:
    passages = search_passages(store, embedder, "parental leave", groups=["everyone"], limit=8)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models.embedder import Embedder
from retrieval.store import ChunkStore, Groups, Hit, SparseVec


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

    @classmethod
    def from_hit(cls, hit: Hit) -> Passage:
        p = hit.payload
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
        )

    @property
    def location(self) -> str:
        """'path p.N' (or 'path pp.N-M'), the form citations are printed in."""
        if self.page is None:
            return self.source_path
        if self.page_end and self.page_end != self.page:
            return f"{self.source_path} pp.{self.page}-{self.page_end}"
        return f"{self.source_path} p.{self.page}"


def search_passages(
    store: ChunkStore,
    embedder: Embedder,
    query: str,
    groups: Groups,
    limit: int = 8,
    encode_sparse: Callable[[str], SparseVec] | None = None,
    conditions: dict[str, Any] | None = None,
) -> list[Passage]:
    """Hybrid when a sparse encoder is given, dense otherwise; the ACL filter is in the query."""
    query = query.strip()
    if not query:
        return []
    dense = embedder.embed_query(query)
    sparse = encode_sparse(query) if encode_sparse else None
    hits = store.search(groups, dense, sparse, limit, conditions=conditions)
    return [Passage.from_hit(h) for h in hits]
