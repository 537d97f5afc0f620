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

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from base.cjk import is_japanese
from models.embedder import Embedder
from retrieval.passage import Passage
from retrieval.sparse import SparseEncoder
from retrieval.store import ChunkStore, Fusion, Groups

if TYPE_CHECKING:
    from retrieval.rerank import Reranker

MODES = ("hybrid", "dense", "sparse")
# DBSF, chosen by measurement (README "Retrieval quality"): on SQuAD RRF fell below BM25 alone
# (nDCG@10 .868 vs .891) while DBSF rose above it (.906); on Cranfield DBSF .419 vs RRF .415.
DEFAULT_FUSION = Fusion("dbsf")


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
