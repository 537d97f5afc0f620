"""Retrieval quality on a BEIR-layout dataset, through kura's real chunk → embed → store → search.

A dataset folder holds `corpus.jsonl` ({_id, title, text}), `queries.jsonl` ({_id, text}),
`qrels/test.tsv` (query-id, corpus-id, score; header line) and optionally `answers.jsonl`
({_id, answers, is_impossible}). Each corpus passage is one document: chunked by ingest/chunk.py,
embedded by the configured embedder, BM25-encoded, written to a qdrant-edge store that is cached
under `cache_dir` (re-runs skip ingestion). Each stage — sparse, dense, hybrid, hybrid+rerank —
then runs every query through `search_passages`, and chunk hits are folded into document ranks.

Metrics per stage: Recall@5, MRR@10, nDCG@10 (graded gains, log2 discount, as BEIR), and
answer@5: the share of answerable questions whose answer string occurs in a top-5 passage.

Usage:
    dataset = load_dataset(Path("../shared/eval/squad-v1.1-dev"))
    report = evaluate(dataset, embedder, SparseEncoder(), Path("/tmp/kura-eval"), limit=500)
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from ingest.blocks import Block
from ingest.chunk import chunk_blocks
from models.embedder import Embedder, covers
from retrieval.passage import Passage
from retrieval.rerank import Reranker
from retrieval.search import DEFAULT_FUSION, search_passages
from retrieval.sparse import SparseEncoder
from retrieval.store import EdgeStore, Fusion, StoredChunk

EVAL_GROUP = "eval"
_POINT_NAMESPACE = uuid.UUID("0b7e8a3c-4f57-4c53-9f41-6b7572616576")
CUTOFF = 10


class DatasetError(ValueError):
    """The folder is not a BEIR-layout dataset; the message says which file is missing or bad."""


@dataclass(frozen=True)
class Dataset:
    name: str
    path: Path
    corpus: dict[str, tuple[str, str]]  # id -> (title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id -> {corpus id: grade > 0}
    answers: dict[str, list[str]] = field(default_factory=dict)

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for name in ("corpus.jsonl",):
            stat = (self.path / name).stat()
            h.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        return h.hexdigest()[:16]


def _read_jsonl(path: Path) -> Iterable[dict]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(
                        f"{path} line {number} is not JSON ({exc}); fix or remove that line"
                    ) from exc


def load_dataset(folder: Path) -> Dataset:
    """Read a BEIR-layout folder. Queries without relevance judgements are dropped."""
    folder = folder.resolve()
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        if not (folder / name).is_file():
            raise DatasetError(
                f"{folder / name} is missing; a BEIR dataset folder needs corpus.jsonl, "
                "queries.jsonl and qrels/test.tsv"
            )
    corpus = {
        str(r["_id"]): (str(r.get("title") or ""), str(r.get("text") or ""))
        for r in _read_jsonl(folder / "corpus.jsonl")
    }
    queries = {str(r["_id"]): str(r["text"]) for r in _read_jsonl(folder / "queries.jsonl")}
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / "test.tsv").open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").split("\t")
            if number == 1 and not parts[-1].lstrip("-").isdigit():
                continue  # header
            if len(parts) != 3:
                raise DatasetError(
                    f"qrels/test.tsv line {number} needs 3 tab-separated fields, has {len(parts)}"
                )
            qid, did, grade = parts
            if int(grade) > 0 and did in corpus:
                qrels.setdefault(qid, {})[did] = int(grade)
    answers: dict[str, list[str]] = {}
    if (folder / "answers.jsonl").is_file():
        for r in _read_jsonl(folder / "answers.jsonl"):
            if not r.get("is_impossible") and r.get("answers"):
                answers[str(r["_id"])] = [str(a) for a in r["answers"]]
    queries = {q: t for q, t in queries.items() if q in qrels}
    if not corpus or not queries:
        raise DatasetError(
            f"{folder} has {len(corpus)} passages and {len(queries)} judged queries; "
            "both must be > 0"
        )
    return Dataset(folder.name, folder, corpus, queries, qrels, answers)


# --- metrics -----------------------------------------------------------------------------
def recall_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 5) -> float:
    if not relevant:
        return 0.0
    return len(set(ranked[:k]) & set(relevant)) / len(relevant)


def mrr_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int = CUTOFF) -> float:
    for rank, doc in enumerate(ranked[:k], start=1):
        if doc in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int = CUTOFF) -> float:
    dcg = sum(
        relevant.get(doc, 0) / math.log2(rank + 1) for rank, doc in enumerate(ranked[:k], start=1)
    )
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg else 0.0


def answer_in(passages: Sequence[str], answers: Sequence[str], k: int = 5) -> bool:
    texts = [" ".join(t.split()).casefold() for t in passages[:k]]
    return any(" ".join(a.split()).casefold() in t for a in answers if a.strip() for t in texts)


@dataclass
class StageResult:
    stage: str
    queries: int
    recall_5: float
    mrr_10: float
    ndcg_10: float
    answer_5: float | None
    ms_per_query: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class EvalReport:
    dataset: str
    passages: int
    chunks: int
    queries: int
    ingest_s: float
    cached: bool
    stages: list[StageResult]
    settings: dict

    def as_dict(self) -> dict:
        return {
            **{k: v for k, v in self.__dict__.items() if k != "stages"},
            "stages": [s.as_dict() for s in self.stages],
        }


# --- ingestion -----------------------------------------------------------------------------
def corpus_chunks(
    dataset: Dataset, chunk_tokens: int, overlap_tokens: int
) -> Iterable[tuple[str, int, str, str, tuple[str, ...]]]:
    """(doc id, chunk index, chunk text, text to embed, heading path) for each corpus passage,
    cut by the same chunker files go through; the passage title is the heading."""
    for doc_id, (title, text) in dataset.corpus.items():
        blocks = ([Block(title, "title")] if title else []) + [Block(text, "text")]
        for index, piece in enumerate(chunk_blocks(blocks, chunk_tokens, overlap_tokens)):
            yield doc_id, index, piece.text, piece.embedding_text(), piece.heading_path


def _store_key(
    dataset: Dataset, embedder: Embedder, sparse: SparseEncoder, chunk_tokens: int, overlap: int
) -> str:
    spec = (
        f"{dataset.name}:{dataset.fingerprint()}:{embedder.name}:{embedder.dim}:{sparse.spec}:"
        f"{chunk_tokens}:{overlap}:v4:{getattr(embedder, 'languages', None)}"  # v4: HNSW + int8 store
    )
    return f"{dataset.name}-{hashlib.sha256(spec.encode()).hexdigest()[:12]}"


def ingest_corpus(
    dataset: Dataset,
    embedder: Embedder,
    sparse: SparseEncoder,
    cache_dir: Path,
    chunk_tokens: int = 256,
    overlap_tokens: int = 32,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[EdgeStore, int, float, bool]:
    """Open the cached store for this dataset and configuration, building it first if needed.
    Returns (store, chunk count, seconds spent ingesting, whether it came from the cache)."""
    folder = cache_dir / _store_key(dataset, embedder, sparse, chunk_tokens, overlap_tokens)
    done = folder / "complete.json"
    if done.is_file():
        store = EdgeStore(folder / "store", embedder.dim)
        return store, int(json.loads(done.read_text())["chunks"]), 0.0, True
    if folder.exists():
        shutil.rmtree(folder)  # an interrupted build: start over
    store = EdgeStore(folder / "store", embedder.dim)
    started = time.monotonic()
    rows = list(corpus_chunks(dataset, chunk_tokens, overlap_tokens))
    all_vectors = _dense_vectors(
        rows, embedder, cache_dir, dataset, chunk_tokens, overlap_tokens, on_progress
    )
    batch = 256
    for start in range(0, len(rows), batch):
        part = rows[start : start + batch]
        vectors = all_vectors[start : start + batch]
        store.upsert(
            [
                StoredChunk(
                    str(uuid.uuid5(_POINT_NAMESPACE, f"{doc_id}:{index}")),
                    vector,
                    sparse.encode_document(embed_text),
                    {
                        "doc_id": doc_id,
                        "chunk_index": index,
                        "text": text,
                        "heading_path": list(heading),
                        "title": dataset.corpus[doc_id][0],
                        "source_path": doc_id,
                        "page": None,
                        "page_end": None,
                        "acl_groups": [EVAL_GROUP],
                        "staged": False,
                    },
                )
                for (doc_id, index, text, embed_text, heading), vector in zip(
                    part, vectors, strict=True
                )
            ]
        )
    store.optimize()
    seconds = time.monotonic() - started
    done.write_text(json.dumps({"chunks": len(rows), "seconds": seconds}))
    return store, len(rows), seconds, False


def _dense_vectors(
    rows: list[tuple[str, int, str, str, tuple[str, ...]]],
    embedder: Embedder,
    cache_dir: Path,
    dataset: Dataset,
    chunk_tokens: int,
    overlap_tokens: int,
    on_progress: Callable[[int, int], None] | None,
) -> list[list[float] | None]:
    """Embed every chunk once per (dataset, embedder, chunking); sparse settings can then be
    compared without paying for the embedder again."""
    spec = (
        f"{dataset.name}:{dataset.fingerprint()}:{embedder.name}:{embedder.dim}:"
        f"{chunk_tokens}:{overlap_tokens}"
    )
    path = cache_dir / f"dense-{dataset.name}-{hashlib.sha256(spec.encode()).hexdigest()[:12]}.json"
    # As ingestion does (ingest/pipeline.py embed_covered): text in a language the embedder
    # does not cover gets no dense vector and is found by BM25 alone.
    covered = [covers(embedder, r[3]) for r in rows]
    if path.is_file():
        vectors = json.loads(path.read_text())
        if len(vectors) == len(rows):
            return [v if c else None for v, c in zip(vectors, covered, strict=True)]
    keep = [i for i, c in enumerate(covered) if c]
    vectors: list[list[float] | None] = [None] * len(rows)
    batch = 64
    for start in range(0, len(keep), batch):
        part = keep[start : start + batch]
        for i, vector in zip(part, embedder.embed_documents([rows[i][3] for i in part]), strict=True):
            vectors[i] = vector
        if on_progress:
            on_progress(min(start + batch, len(keep)), len(keep))
    cache_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([[round(x, 6) for x in v] if v else None for v in vectors]))
    return vectors


class _BatchedQueries:
    """The real embedder, with every evaluation query embedded up front in batches (the same
    vectors `embed_query` would give, far faster than one call per query)."""

    def __init__(self, embedder: Embedder, queries: Sequence[str]) -> None:
        self.name, self.dim, self._embedder = embedder.name, embedder.dim, embedder
        self._vectors = dict(
            zip(queries, embedder.embed_documents(list(queries), batch_size=64), strict=True)
        )

    def embed_documents(self, texts: Sequence[str], batch_size: int = 32) -> list[list[float]]:
        return self._embedder.embed_documents(texts, batch_size)

    def embed_query(self, text: str) -> list[float]:
        return self._vectors.get(text) or self._embedder.embed_query(text)


def _documents(passages: Sequence[Passage]) -> list[str]:
    """Chunk ranks → document ranks (a document counts at its best chunk)."""
    seen: dict[str, None] = {}
    for p in passages:
        seen.setdefault(p.doc_id, None)
    return list(seen)


def sample_queries(dataset: Dataset, limit: int | None, seed: int = 13) -> list[str]:
    """All query ids, or a seeded sample of `limit` of them (the same sample on every run)."""
    qids = sorted(dataset.queries)
    if limit is not None and limit < len(qids):
        qids = sorted(random.Random(seed).sample(qids, limit))
    return qids


def evaluate(
    dataset: Dataset,
    embedder: Embedder,
    sparse: SparseEncoder,
    cache_dir: Path,
    limit: int | None = None,
    seed: int = 13,
    stages: Sequence[str] = ("sparse", "dense", "hybrid"),
    fusion: Fusion = DEFAULT_FUSION,
    dense_languages: Sequence[str] = ("en",),
    reranker: Reranker | None = None,
    rerank_top_n: int = 20,
    chunk_tokens: int = 256,
    overlap_tokens: int = 32,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> EvalReport:
    """Ingest (or reuse) the corpus, then score each stage on all queries or a seeded sample."""
    store, chunks, ingest_s, cached = ingest_corpus(
        dataset,
        embedder,
        sparse,
        cache_dir,
        chunk_tokens,
        overlap_tokens,
        (lambda done, total: on_progress("ingest", done, total)) if on_progress else None,
    )
    qids = sample_queries(dataset, limit, seed)
    try:
        texts = [dataset.queries[q] for q in qids]
        batched = _BatchedQueries(embedder, texts) if {"dense", "hybrid", "rerank"} & set(stages) else embedder
        search = partial(
            search_passages,
            store,
            batched,
            sparse=sparse,
            fusion=fusion,
            dense_languages=dense_languages,
            rerank_top_n=rerank_top_n,
        )
        results = [_score_stage(stage, search, dataset, qids, reranker, on_progress) for stage in stages]
    finally:
        store.close()
    settings = {
        "fusion": fusion.__dict__,
        "japanese": sparse.japanese,
        "bm25": [sparse.k1, sparse.b, sparse.avg_len],
        "embedder": embedder.name,
        "dense_languages": list(dense_languages),
        "limit": limit,
        "seed": seed,
        "chunk_tokens": chunk_tokens,
        "reranker": reranker.name if reranker else None,
    }
    return EvalReport(dataset.name, len(dataset.corpus), chunks, len(qids), ingest_s, cached, results, settings)


def _score_stage(
    stage: str,
    search: Callable[..., list[Passage]],
    dataset: Dataset,
    qids: Sequence[str],
    reranker: Reranker | None,
    on_progress: Callable[[str, int, int], None] | None,
) -> StageResult:
    """R@5, MRR@10, nDCG@10 and the answer-in-top-5 rate of one stage over the queries `qids`."""
    mode = "hybrid" if stage == "rerank" else stage
    if stage == "rerank" and reranker is None:
        raise ValueError("the rerank stage needs a reranker (set KURA_RERANKER_PATH)")
    sums = {"r": 0.0, "m": 0.0, "n": 0.0}
    answered = answerable = 0
    started = time.monotonic()
    for position, qid in enumerate(qids, start=1):
        passages = search(
            dataset.queries[qid],
            [EVAL_GROUP],
            limit=3 * CUTOFF,
            mode=mode,
            reranker=reranker if stage == "rerank" else None,
        )
        ranked, relevant = _documents(passages), dataset.qrels[qid]
        sums["r"] += recall_at(ranked, relevant, 5)
        sums["m"] += mrr_at(ranked, relevant)
        sums["n"] += ndcg_at(ranked, relevant)
        if qid in dataset.answers:
            answerable += 1
            answered += answer_in([p.text for p in passages], dataset.answers[qid], 5)
        if on_progress and position % 50 == 0:
            on_progress(stage, position, len(qids))
    n = len(qids)
    rate = answered / answerable if answerable else None
    ms_per_query = 1000 * (time.monotonic() - started) / n
    return StageResult(stage, n, sums["r"] / n, sums["m"] / n, sums["n"] / n, rate, ms_per_query)
