"""Search the store for passages a caller may read: hybrid dense + BM25 in one Qdrant query.

Each channel — dense, BM25 words, and for Japanese text BM25 character bigrams (retrieval/sparse.py)
— runs as a prefetch of one query with the ACL filter inside each, fused by DBSF
(distribution-based score fusion; measured against RRF on SQuAD/JSQuAD/Cranfield, see README).
When the dense model does not cover the query's language (the packaged MiniLM is English-only)
the dense channel is skipped, so fusion never drags a Japanese query below what BM25 finds
alone. An optional cross-encoder then reorders the top candidates.

Usage:
    passages = search_passages(store, embedder, "parental leave", groups=["everyone"], limit=8,
                               sparse=SparseEncoder())
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from models.embedder import Embedder
from retrieval.sparse import SparseEncoder, is_japanese
from retrieval.store import ChunkStore, Fusion, Groups, Hit

if TYPE_CHECKING:
    from retrieval.rerank import Reranker

MODES = ("hybrid", "dense", "sparse")
# DBSF, chosen by measurement (README "Retrieval quality"): on SQuAD RRF fell below BM25 alone
# (nDCG@10 .868 vs .891) while DBSF rose above it (.906); on Cranfield DBSF .419 vs RRF .415.
DEFAULT_FUSION = Fusion("dbsf")


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
    sparse: SparseEncoder | None = None,
    conditions: dict[str, Any] | None = None,
    mode: str = "hybrid",
    fusion: Fusion = DEFAULT_FUSION,
    dense_languages: Sequence[str] = ("en",),
    candidates: int = 50,
    reranker: Reranker | None = None,
    rerank_top_n: int = 20,
) -> list[Passage]:
    """The best `limit` passages for `query` that `groups` may read, best first.

    `mode`: hybrid (dense + sparse when a sparse encoder is given), dense, or sparse.
    `dense_languages`: languages the embedder understands; a Japanese query skips the dense
    channel unless "ja" is listed. With a `reranker`, the top `rerank_top_n` fused candidates
    are re-scored by the cross-encoder and the best `limit` of them returned.
    """
    if mode not in MODES:
        raise ValueError(f"search mode must be one of {', '.join(MODES)}, not {mode!r}")
    query = query.strip()
    if not query:
        return []
    use_dense = mode in ("hybrid", "dense")
    use_sparse = mode in ("hybrid", "sparse") and sparse is not None
    if mode == "sparse" and sparse is None:
        raise ValueError("sparse search needs a sparse encoder (retrieval.sparse.SparseEncoder)")
    if mode == "hybrid" and use_sparse and is_japanese(query) and "ja" not in dense_languages:
        use_dense = False
    dense = embedder.embed_query(query) if use_dense else None
    sparse_vec = sparse.encode_query(query) if use_sparse and sparse is not None else None
    fetch = max(limit, rerank_top_n) if reranker is not None else limit
    hits = store.search(
        groups,
        dense,
        sparse_vec,
        fetch,
        conditions=conditions,
        candidates=candidates,
        fusion=fusion,
    )
    passages = [Passage.from_hit(h, dense) for h in hits]
    if reranker is not None:
        passages = reranker.rerank(query, passages, top_n=rerank_top_n)
    return passages[:limit]


def parse_fusion(spec: str) -> Fusion:
    """'rrf', 'dbsf' or 'rrf:DENSE,SPARSE' (weighted RRF) → `Fusion`; the form settings use."""
    method, _, weights = spec.strip().lower().partition(":")
    if not weights:
        return Fusion(method or "rrf")
    try:
        dense_w, sparse_w = (float(w) for w in weights.split(","))
    except ValueError as exc:
        raise ValueError(
            f"fusion {spec!r}: write weights as rrf:DENSE,SPARSE, e.g. rrf:1,1.5"
        ) from exc
    return Fusion(method, dense_weight=dense_w, sparse_weight=sparse_w)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
