"""Reorder search candidates with a cross-encoder loaded from a local folder.

A cross-encoder reads query and passage together, so it judges relevance better than either
retrieval channel — at ~25–35 pairs/s on this CPU, hence only the top N candidates. No
cross-encoder weights are on any registry kura can reach: a site copies a model folder (e.g. a
sentence-transformers CrossEncoder such as a multilingual MiniLM/BGE reranker) to local disk and
sets KURA_RERANKER_PATH. kura's tests build a tiny random model to prove the code path only.

Usage:
    reranker = Reranker(Path("/models/bge-reranker-v2-m3"))
    best = reranker.rerank("how many days of leave?", passages, top_n=20)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from base import offline  # noqa: F401  (hub access off before sentence-transformers loads)

if TYPE_CHECKING:
    from retrieval.passage import Passage


class RerankerMissing(FileNotFoundError):
    """KURA_RERANKER_PATH does not name a usable cross-encoder folder."""


class Reranker:
    """A sentence-transformers `CrossEncoder` from `folder`, run on the CPU, never downloaded."""

    def __init__(self, folder: Path, max_length: int = 512, batch_size: int = 16) -> None:
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise RerankerMissing(
                f"{folder} has no config.json: point KURA_RERANKER_PATH at a local "
                "cross-encoder folder (a sentence-transformers / Hugging Face "
                "sequence-classification model with its tokenizer), "
                "or unset it to search without reranking"
            )
        if max_length < 8 or batch_size < 1:
            raise ValueError(
                "reranker needs max_length >= 8 and batch_size >= 1, "
                f"got {max_length}, {batch_size}"
            )
        from sentence_transformers import CrossEncoder

        self.name = folder.name
        self.max_length = max_length
        self.batch_size = batch_size
        self._model = CrossEncoder(
            str(folder), device="cpu", local_files_only=True, max_length=max_length
        )

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """One relevance score per text (higher is better); inputs longer than `max_length`
        tokens are truncated, query first, so long chunks cannot crowd out the question."""
        if not texts:
            return []
        scores = self._model.predict(
            [(query, t) for t in texts],
            batch_size=self.batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return [float(s) for s in (scores.reshape(len(texts), -1)[:, -1])]

    def rerank(self, query: str, passages: Sequence[Passage], top_n: int = 20) -> list[Passage]:
        """Score the first `top_n` passages, return them best first with `rerank_score` set;
        passages past `top_n` follow unchanged, in their original order."""
        if top_n < 1:
            raise ValueError(f"top_n must be at least 1, not {top_n}")
        head, tail = list(passages[:top_n]), list(passages[top_n:])
        scores = self.score(query, [p.text for p in head])
        scored = [replace(p, rerank_score=s) for p, s in zip(head, scores, strict=True)]
        scored.sort(
            key=lambda p: p.rerank_score if p.rerank_score is not None else float("-inf"),
            reverse=True,
        )
        return scored + tail
