"""Search latency on a large store: `kura bench search_latency [--chunks N] [--queries Q]`.

Builds a qdrant-edge store of N synthetic chunks (random unit dense vectors, Zipf-distributed
BM25 sparse vectors, ACL payload — the store's size is what matters, not the text), then times
`search_passages` end to end with the REAL embedder and sparse encoder on real questions in
English and Japanese: query embedding + BM25 encoding + one hybrid Qdrant query with the ACL
filter. Prints p50/p95 per stage in milliseconds, and the store's RAM (the process's resident
memory it added) and disk.

The ACL: every chunk belongs to one of `--acl-groups` groups (50 by default), and the caller is
in `--caller-groups` of them (3), so a search reads ~6% of the store through the filter.

    kura bench search_latency --chunks 1000000 --json latency.json

The store is searched as ingestion leaves it: kura never asks Qdrant to build its HNSW index
(`--optimize` does, and times it). Writing a million chunks takes a few minutes; the build stops
with a clear message if the process grows past `--max-rss-gb`.
"""

from __future__ import annotations

import argparse
import json
import os
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


class MemoryLimit(RuntimeError):
    """The benchmark's process grew past --max-rss-gb while building the store."""


def rss_gb() -> float:
    """This process's resident memory now, in GiB (Linux /proc)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    return 0.0


def disk_gb(path: Path) -> float:
    """Blocks the files under `path` occupy (sparse files count what they really use)."""
    used = 0
    for folder, _, names in os.walk(path):
        for name in names:
            used += os.lstat(os.path.join(folder, name)).st_blocks * 512
    return used / 2**30


def _build(
    path: Path,
    chunks: int,
    dim: int,
    query_terms: list[int],
    groups: list[str],
    max_rss_gb: float = 8.0,
    optimize: bool = False,
) -> EdgeStore:
    """`query_terms` (the questions' real term ids) sit at Zipf ranks 20+ of the synthetic
    vocabulary, so a question's BM25 posting lists are as long as a real mid-frequency word's."""
    import numpy as np

    from retrieval.store import EdgeStore, SparseVec, StoredChunk

    started = time.monotonic()
    rng = np.random.default_rng(7)
    vocab = rng.integers(1, 2**32 - 1, size=200_000, dtype=np.uint64)
    vocab[20 : 20 + len(query_terms)] = query_terms
    store = EdgeStore(path, dim)
    batch = 5000
    for start in range(0, chunks, batch):
        if rss_gb() > max_rss_gb:
            raise MemoryLimit(
                f"stopped after {start} chunks: the process holds {rss_gb():.1f} GiB > {max_rss_gb} GiB"
            )
        if start and start % 100_000 == 0:
            print(
                f"  {start} chunks written in {time.monotonic() - started:.0f} s, "
                f"RSS {rss_gb():.1f} GiB, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        n = min(batch, chunks - start)
        dense = rng.standard_normal((n, dim)).astype("float32")
        dense /= np.linalg.norm(dense, axis=1, keepdims=True)
        # 60 Zipf draws per chunk, sorted per row; a repeated term counts once (as BM25 would
        # see it in a short text). Built for the whole batch at once: a per-chunk numpy call
        # cost as much as the store's own write.
        terms = np.sort(vocab[(rng.zipf(1.3, size=(n, 60)) - 1) % len(vocab)], axis=1)
        fresh = np.ones_like(terms, dtype=bool)
        fresh[:, 1:] = terms[:, 1:] != terms[:, :-1]
        rows, dense_rows = terms.tolist(), dense.tolist()
        keep = fresh.tolist()
        points = []
        for i in range(n):
            ids = [t for t, k in zip(rows[i], keep[i], strict=True) if k]
            points.append(
                StoredChunk(
                    str(uuid.UUID(int=start + i + 1)),
                    dense_rows[i],
                    SparseVec(ids, [1.0] * len(ids)),
                    {
                        "doc_id": f"d{(start + i) // 20}",
                        "chunk_index": (start + i) % 20,
                        "text": "synthetic",
                        # One group per document, as kura stores it (a document's ACL is on
                        # every one of its chunks); documents take the groups in turn.
                        "acl_groups": [groups[((start + i) // 20) % len(groups)]],
                        "staged": False,
                    },
                )
            )
        store.upsert(points)
    written = time.monotonic()
    print(f"  {chunks} chunks written in {written - started:.0f} s", flush=True)
    if optimize:
        store.optimize()
        print(f"  HNSW index built in {time.monotonic() - written:.0f} s, RSS {rss_gb():.1f} GiB", flush=True)
    return store


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kura bench search_latency")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=40, help="timed searches per stage")
    parser.add_argument("--acl-groups", type=int, default=50, help="groups the chunks belong to")
    parser.add_argument("--caller-groups", type=int, default=3, help="groups the caller is in")
    parser.add_argument("--max-rss-gb", type=float, default=8.0, help="stop the build past this")
    parser.add_argument(
        "--optimize",
        action="store_true",
        help="also build Qdrant's HNSW index before searching (ingestion never does: off by "
        "default, so the store is searched as `kura ingest` leaves it)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if not 1 <= args.caller_groups <= args.acl_groups:
        parser.error("--caller-groups must be between 1 and --acl-groups")

    from app.platform.settings import KuraSettings
    from base import offline  # noqa: F401
    from base.cjk import is_japanese
    from models.embedder import load_embedder
    from models.registry import resolve_embedder_path
    from retrieval.search import search_passages
    from retrieval.sparse import SparseEncoder

    settings = KuraSettings()
    embedder = load_embedder(  # what the product runs: the ONNX export from the model cache
        resolve_embedder_path(settings.embedder_path),
        settings.embedder_backend,
        cache_dir=settings.model_cache_dir,
    )
    sparse = SparseEncoder()
    groups = [f"group-{g:02d}" for g in range(args.acl_groups)]
    reader = groups[: args.caller_groups]
    summary: dict = {
        "chunks": args.chunks,
        "acl_groups": args.acl_groups,
        "caller_groups": args.caller_groups,
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "stages": {},
    }
    with tempfile.TemporaryDirectory(prefix="kura-bench-") as tmp:
        started = time.monotonic()
        terms = sorted({i for q in QUESTIONS for i in sparse.encode_query(q).indices})
        for q in QUESTIONS:  # load the models' lazy parts before the store's RAM is measured
            embedder.embed_query(q)
        rss_before = rss_gb()
        try:
            store = _build(
                Path(tmp) / "store",
                args.chunks,
                embedder.dim,
                terms,
                groups,
                args.max_rss_gb,
                args.optimize,
            )
        except MemoryLimit as exc:
            print(f"{exc}; nothing measured")
            summary["error"] = str(exc)
            if args.json:
                args.json.write_text(json.dumps(summary, indent=1))
            return 1
        summary["build_s"] = round(time.monotonic() - started, 1)
        summary["optimized"] = args.optimize
        print(
            f"store: {args.chunks} chunks built in {summary['build_s']} s "
            f"({'HNSW index built' if args.optimize else 'as ingestion leaves it, no HNSW build'})"
        )
        for q in QUESTIONS:  # warm up: model graphs, Sudachi dictionary, store caches
            search_passages(store, embedder, q, reader, 8, sparse=sparse)
        english = [q for q in QUESTIONS if not is_japanese(q)]
        japanese = [q for q in QUESTIONS if is_japanese(q)]
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
            p50, p95 = statistics.median(times), _pct(times, 95)
            summary["stages"][name] = {
                "p50_ms": round(p50, 1),
                "p95_ms": round(p95, 1),
                "hits_per_query": round(found / args.queries, 1),
            }
            print(
                f"{name:46s} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  "
                f"({found / args.queries:.1f} hits/query)"
            )
        summary["store_ram_gb"] = round(rss_gb() - rss_before, 2)
        summary["process_rss_gb"] = round(rss_gb(), 2)
        summary["store_disk_gb"] = round(disk_gb(Path(tmp) / "store"), 2)
        summary["load_after"] = [round(x, 2) for x in os.getloadavg()]
        print(
            f"store: {summary['store_ram_gb']} GiB RAM (process {summary['process_rss_gb']} GiB), "
            f"{summary['store_disk_gb']} GiB on disk; ACL: caller in {args.caller_groups} of "
            f"{args.acl_groups} groups; load avg {summary['load_before']} -> {summary['load_after']}"
        )
        store.close()  # type: ignore[attr-defined]
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0
