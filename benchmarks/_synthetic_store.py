"""A large synthetic store for `kura bench search_latency`: chunks with text-like dense vectors,
Zipf-distributed BM25 vectors and one ACL group per document, kept between runs when asked.

Dense vectors are the part an index cares about. Uniformly random unit vectors in 384
dimensions have no neighbours to speak of (every cosine is 0 +- 0.05), which no text corpus
looks like and which no graph index searches well; so by default the vectors are drawn from a
Gaussian with the mean and covariance of real MiniLM embeddings of real text (SQuAD dev
paragraphs and questions, embedded at the start and cached): the same spread of directions
and the same effective dimension as an embedded corpus, without embedding a million passages.

    vectors = text_like_vectors(embedder, texts)                  # fitted once
    meta = write_chunks(store, 1_000_000, vectors, groups, query_terms, start=0)
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
_FIT_FILE = "text-like-vectors.npz"


@dataclass
class TextLikeVectors:
    """Unit vectors from a Gaussian fitted to real embeddings (`kind` "text"), or uniform on
    the sphere (`kind` "random")."""

    dim: int
    kind: str = "random"
    mean: Any = None
    axes: Any = None  # principal directions, one per row
    scales: Any = None  # standard deviation along each

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind == "random":
            out = rng.standard_normal((n, self.dim), dtype=np.float32)
        else:
            z = rng.standard_normal((n, len(self.scales)), dtype=np.float32) * self.scales
            out = self.mean + z @ self.axes
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out.astype(np.float32)


def fit_text_like(embedder: Any, texts: list[str], cache: Path | None = None) -> TextLikeVectors:
    """Fit the generator to the embeddings of `texts` (cached in `cache`, a folder)."""
    if cache is not None and (cache / _FIT_FILE).is_file():
        saved = np.load(cache / _FIT_FILE)
        return TextLikeVectors(int(saved["mean"].shape[0]), "text", saved["mean"], saved["axes"], saved["scales"])
    vectors = np.asarray(embedder.embed_documents(texts), dtype=np.float32)
    mean = vectors.mean(axis=0)
    _, singular, axes = np.linalg.svd(vectors - mean, full_matrices=False)
    scales = (singular / np.sqrt(len(vectors) - 1)).astype(np.float32)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(cache / _FIT_FILE, mean=mean, axes=axes.astype(np.float32), scales=scales)
    return TextLikeVectors(vectors.shape[1], "text", mean, axes.astype(np.float32), scales)


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
    batch = 5000
    for offset in range(start, start + count, batch):
        if progress is not None:
            progress(offset - start)
        n = min(batch, start + count - offset)
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
    return time.monotonic() - started


def first_vector(vectors: TextLikeVectors, start: int, seed: int = 7) -> list[float]:
    """The dense vector `write_chunks(..., start=start)` gave its first chunk (same generator)."""
    return vectors.sample(np.random.default_rng(seed + start), 1)[0].tolist()


def chunk_id(number: int) -> str:
    return str(uuid.UUID(int=number + 1))
