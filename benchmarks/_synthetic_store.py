"""A large synthetic store for `kura bench search_latency`: chunks with text-like dense vectors,
Zipf-distributed BM25 vectors and one ACL group per document, kept between runs when asked.

Dense vectors are the part an index cares about, and how hard a graph index finds them depends
on how they are spread. Uniformly random unit vectors in 384 dimensions have no neighbours to
speak of (every cosine is 0 +- 0.05), which no text looks like. So the vectors come from a
mixture fitted to real MiniLM embeddings of real text (SQuAD dev paragraphs and questions,
embedded once and cached): k-means gives 256 centres and their weights, and each vector is a
centre plus a Gaussian residual along the residuals' principal axes. How many axes sets the
local intrinsic dimension (LID, MLE over 20 neighbours), which decides how hard the graph's
job is: on 14k real embeddings LID is 8.2 and HNSW recall@10 0.998; "text" (12 axes, the
default) has LID 8.7, mean pairwise cosine 0.050 (real: 0.053), recall 0.999 at 14k, and puts
real questions' nearest neighbours a little farther than real text does (top-10 cosine 0.57
vs 0.62); "hard" (all 384 axes) has LID 29, far above any text measured here, and is the
pessimistic case; "random" is the sphere.

    vectors = fit_text_like(embedder, texts, cache_folder)           # once
    seconds = write_chunks(store, 1_000_000, vectors, groups, query_terms)
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DOC_CHUNKS = 20  # chunks per synthetic document; a document's ACL is on all of them
CENTRES = 256
RESIDUAL_AXES = {"text": 12, "hard": None}  # None: every axis
WRITE_BATCH = 5000  # chunks a write_chunks upsert holds (first_vector draws the same batch)
MODEL = f"mixture-{CENTRES}-v3"  # part of a kept store's key: another model means another store
_FIT_FILE = f"text-like-vectors-{MODEL}.npz"


@dataclass
class TextLikeVectors:
    """Unit vectors from a mixture fitted to real embeddings (`kind` "text" or "hard": a residual
    along the first 12 or all of its axes), or uniform on the sphere (`kind` "random")."""

    dim: int
    kind: str = "random"
    centres: Any = None
    weights: Any = None
    axes: Any = None  # the residuals' principal directions, one per row
    scales: Any = None  # their standard deviations

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind == "random":
            out = rng.standard_normal((n, self.dim), dtype=np.float32)
        else:
            scales = self.scales[: RESIDUAL_AXES[self.kind]]
            scales = scales * np.sqrt((self.scales**2).sum() / (scales**2).sum())  # the same variance
            z = rng.standard_normal((n, len(scales)), dtype=np.float32) * scales
            out = self.centres[rng.choice(len(self.centres), size=n, p=self.weights)] + z @ self.axes[: len(scales)]
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out.astype(np.float32)


def fit_text_like(embedder: Any, texts: list[str], cache: Path | None = None, kind: str = "text") -> TextLikeVectors:
    """Fit the mixture to the embeddings of `texts` (cached in the folder `cache`)."""
    if cache is not None and (cache / _FIT_FILE).is_file():
        saved = np.load(cache / _FIT_FILE)
        return TextLikeVectors(int(saved["centres"].shape[1]), kind, *(saved[k] for k in _FIELDS))
    vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    rng = np.random.default_rng(0)
    centres = vectors[rng.choice(len(vectors), CENTRES, replace=False)].copy()
    for _ in range(15):  # k-means on cosine
        label = np.argmax(vectors @ centres.T, axis=1)
        for k in range(CENTRES):
            members = vectors[label == k]
            if len(members):
                centres[k] = members.mean(axis=0)
    weights = np.bincount(label, minlength=CENTRES) / len(vectors)
    _, singular, axes = np.linalg.svd(vectors - centres[label], full_matrices=False)
    fitted = TextLikeVectors(
        vectors.shape[1],
        kind,
        centres,
        weights,
        axes.astype(np.float32),
        (singular / np.sqrt(len(vectors) - 1)).astype(np.float32),
    )
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(cache / _FIT_FILE, **{k: getattr(fitted, k) for k in _FIELDS})
    return fitted


_FIELDS = ("centres", "weights", "axes", "scales")


def squad_texts(folder: Path, paragraphs: int, questions: int, skip_questions: int = 0) -> tuple[list[str], list[str]]:
    """Paragraphs and questions of a BEIR-layout set (the fit; the recall questions skip those)."""
    corpus = [json.loads(line)["text"] for line in _lines(folder / "corpus.jsonl", paragraphs)]
    queries = [json.loads(line)["text"] for line in _lines(folder / "queries.jsonl", skip_questions + questions)]
    return corpus, queries[skip_questions:]


def _lines(path: Path, n: int) -> Iterator[str]:
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= n:
                return
            yield line


def write_chunks(
    store: Any,
    count: int,
    vectors: TextLikeVectors,
    groups: list[str],
    query_terms: list[int],
    start: int = 0,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
    staged: bool = False,
) -> float:
    """Upsert chunks `start` .. `start + count` (committed unless `staged`, one group per
    document, documents taking the groups in turn); returns the seconds it took. `query_terms` (the questions'
    real term ids) sit at Zipf ranks 20+ of the vocabulary, so a question's BM25 posting lists
    are as long as a real mid-frequency word's."""
    from retrieval.store import SparseVec, StoredChunk

    started = time.monotonic()
    rng = np.random.default_rng(seed + start)
    vocab = np.random.default_rng(seed).integers(1, 2**32 - 1, size=200_000, dtype=np.uint64)
    vocab[20 : 20 + len(query_terms)] = query_terms
    for offset in range(start, start + count, WRITE_BATCH):
        if progress is not None:
            progress(offset - start)
        n = min(WRITE_BATCH, start + count - offset)
        dense = vectors.sample(rng, n).tolist()
        # 60 Zipf draws per chunk, sorted per row; a repeated term counts once (as BM25 would
        # see it in a short text). Built for the whole batch at once: a per-chunk numpy call
        # cost as much as the store's own write.
        terms = np.sort(vocab[(rng.zipf(1.3, size=(n, 60)) - 1) % len(vocab)], axis=1)
        fresh = np.ones_like(terms, dtype=bool)
        fresh[:, 1:] = terms[:, 1:] != terms[:, :-1]
        rows, keep = terms.tolist(), fresh.tolist()
        points = []
        for i in range(n):
            number = offset + i
            ids = [t for t, k in zip(rows[i], keep[i], strict=True) if k]
            document = number // DOC_CHUNKS
            points.append(
                StoredChunk(
                    chunk_id(number),
                    dense[i],
                    SparseVec(ids, [1.0] * len(ids)),
                    {
                        "doc_id": f"d{document}",
                        "chunk_index": number % DOC_CHUNKS,
                        "text": "synthetic",
                        "acl_groups": [groups[document % len(groups)]],
                        "staged": staged,
                    },
                )
            )
        store.upsert(points)
    store.commit_documents([])  # one flush, as ingestion's commits leave the store
    return time.monotonic() - started


def first_vector(vectors: TextLikeVectors, start: int, count: int = DOC_CHUNKS, seed: int = 7) -> list[float]:
    """The dense vector `write_chunks(..., count, start=start)` gave its first chunk: the same
    generator drawing the same first batch (a batch of one draws the mixture's centres from
    another point of the stream, so `count` matters)."""
    return vectors.sample(np.random.default_rng(seed + start), min(WRITE_BATCH, count))[0].tolist()


def chunk_id(number: int) -> str:
    return str(uuid.UUID(int=number + 1))
