"""Search latency on a large store: `kura bench search_latency [--chunks N] [--queries Q]`.

Builds a qdrant-edge store of N synthetic chunks (random unit dense vectors, Zipf-distributed
BM25 sparse vectors, ACL payload — the store's size is what matters, not the text), then times
`search_passages` end to end with the REAL embedder and sparse encoder on real questions in
English and Japanese: query embedding + BM25 encoding + one hybrid Qdrant query with the ACL
filter. Prints p50/p95 per stage in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retrieval.store import EdgeStore

QUESTIONS = [
    "Which NFL team represented the AFC at Super Bowl 50?",
    "What is the boundary layer thickness on a flat plate in supersonic flow?",
    "How many days of annual paid leave does an employee receive?",
    "What did the trustee report about the chapter 13 plan payments?",
    "年次有給休暇は何日付与されますか",
    "会社は入社を希望する者の中から何を行って採用しますか",
    "What are the background check statistics for November 2015?",
    "懲戒処分の種類は何ですか",
]


def _build(path: Path, chunks: int, dim: int, query_terms: list[int]) -> EdgeStore:
    """`query_terms` (the questions' real term ids) sit at Zipf ranks 20+ of the synthetic
    vocabulary, so a question's BM25 posting lists are as long as a real mid-frequency word's."""
    import numpy as np

    from retrieval.store import EdgeStore, SparseVec, StoredChunk

    rng = np.random.default_rng(7)
    vocab = rng.integers(1, 2**32 - 1, size=200_000, dtype=np.uint64)
    vocab[20 : 20 + len(query_terms)] = query_terms
    store = EdgeStore(path, dim)
    groups = ["everyone", "hr", "legal", "finance"]
    batch = 5000
    for start in range(0, chunks, batch):
        n = min(batch, chunks - start)
        dense = rng.standard_normal((n, dim)).astype("float32")
        dense /= np.linalg.norm(dense, axis=1, keepdims=True)
        points = []
        for i in range(n):
            terms = np.unique(vocab[(rng.zipf(1.3, size=60) - 1) % len(vocab)])
            points.append(
                StoredChunk(
                    str(uuid.UUID(int=start + i + 1)),
                    dense[i].tolist(),
                    SparseVec([int(t) for t in terms], [1.0] * len(terms)),
                    {
                        "doc_id": f"d{(start + i) // 20}",
                        "chunk_index": (start + i) % 20,
                        "text": "synthetic",
                        "acl_groups": [groups[(start + i) % len(groups)]],
                        "staged": False,
                    },
                )
            )
        store.upsert(points)
    store.optimize()
    return store


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kura bench search_latency")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=40, help="timed searches per stage")
    args = parser.parse_args(argv)

    from app import offline  # noqa: F401
    from models.embedder import load_embedder
    from models.registry import packaged_embedder_path
    from retrieval.search import search_passages
    from retrieval.sparse import SparseEncoder, is_japanese

    embedder = load_embedder(packaged_embedder_path())
    sparse = SparseEncoder()
    with tempfile.TemporaryDirectory(prefix="kura-bench-") as tmp:
        started = time.monotonic()
        terms = sorted({i for q in QUESTIONS for i in sparse.encode_query(q).indices})
        store = _build(Path(tmp) / "store", args.chunks, embedder.dim, terms)
        print(
            f"store: {args.chunks} chunks built and optimised in {time.monotonic() - started:.1f} s"
        )
        for q in QUESTIONS:  # warm up: model graphs, Sudachi dictionary, store caches
            search_passages(store, embedder, q, ["everyone", "hr"], 8, sparse=sparse)
        english = [q for q in QUESTIONS if not is_japanese(q)]
        japanese = [q for q in QUESTIONS if is_japanese(q)]
        reader = ["everyone", "hr"]
        stages = {
            "embed query only (English)": (english, lambda q: embedder.embed_query(q)),
            "sparse: BM25 encode + query (all)": (
                QUESTIONS,
                lambda q: search_passages(
                    store, embedder, q, reader, 8, sparse=sparse, mode="sparse"
                ),
            ),
            "dense: embed + query (English)": (
                english,
                lambda q: search_passages(
                    store, embedder, q, reader, 8, sparse=sparse, mode="dense"
                ),
            ),
            "hybrid: embed + BM25 + fused query (English)": (
                english,
                lambda q: search_passages(store, embedder, q, reader, 8, sparse=sparse),
            ),
            "hybrid (Japanese: dense skipped)": (
                japanese,
                lambda q: search_passages(store, embedder, q, reader, 8, sparse=sparse),
            ),
        }
        for name, (questions, run) in stages.items():
            times, found = [], 0
            for i in range(args.queries):
                q = questions[i % len(questions)]
                t = time.perf_counter()
                result = run(q)
                times.append(1000 * (time.perf_counter() - t))
                found += len(result) if isinstance(result, list) and len(result) <= 8 else 0
            print(
                f"{name:46s} p50 {statistics.median(times):6.1f} ms  "
                f"p95 {_pct(times, 95):6.1f} ms  ({found / args.queries:.1f} hits/query)"
            )
        store.close()  # type: ignore[attr-defined]
    return 0
