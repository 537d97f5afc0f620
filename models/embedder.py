"""Dense text embeddings from a local model folder: ONNX through fastembed, or torch.

`backend="auto"` uses the ONNX export of the model (models/onnx_export.py) when it exists in
the model cache or can be made there, torch otherwise. fastembed is only ever given a local
folder (`specific_model_path`): without one it tries to download for ~40 s.

Usage:
    embedder = load_embedder(folder, backend="auto", cache_dir=settings.model_cache_dir)
    vectors = embedder.embed_documents(["first passage", "second passage"])
    query_vector = embedder.embed_query("what does the handbook say about leave?")
"""

from __future__ import annotations

import json
import logging
import os
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


def _model_name(folder: Path) -> str:
    return folder.name if folder.name != "model" else folder.parent.name


class TorchEmbedder:
    """sentence-transformers on the CPU build of torch (27 chunks/s here for MiniLM)."""

    backend = "torch"

    def __init__(self, folder: Path) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = _model_name(folder)
        self._model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        self.dim = int(self._model.get_embedding_dimension() or 0)

    def embed_documents(self, texts: Sequence[str], batch_size: int = 32) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True)
        return [v.tolist() for v in vectors]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


class OnnxEmbedder:
    """fastembed on an exported ONNX folder (41 chunks/s here for MiniLM, same vectors as torch)."""

    backend = "onnx"

    def __init__(
        self, onnx_folder: Path, name: str | None = None, threads: int | None = None
    ) -> None:
        from fastembed import TextEmbedding

        if not (onnx_folder / "model.onnx").is_file():
            raise FileNotFoundError(
                f"{onnx_folder} has no model.onnx; run `kura setup` to export the embedder"
            )
        self.name = name or _model_name(onnx_folder)
        model_name = _register_local_model(onnx_folder)
        # specific_model_path keeps fastembed on local disk; never call it without one.
        self._model = TextEmbedding(model_name, specific_model_path=str(onnx_folder), local_files_only=True,
                                    threads=threads or _default_threads())
        self.dim = len(next(iter(self._model.embed(["dimension probe"]))))

    def embed_documents(self, texts: Sequence[str], batch_size: int = 32) -> list[list[float]]:
        if not texts:
            return []
        # fastembed pads each batch to its longest text and onnxruntime keeps memory for the
        # largest batch it saw: length-sorted batches of <= 8 cut padding and peak RSS
        # (1 GB → 0.4 GB at 32 → 8 here) at no cost in speed.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors = self._model.embed([texts[i] for i in order], batch_size=min(batch_size, 8))
        out: list[list[float]] = [[] for _ in texts]
        for i, vector in zip(order, vectors, strict=True):
            out[i] = vector.tolist()
        return out

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def _default_threads() -> int | None:
    """One onnxruntime thread on a machine of two cores or fewer: ingestion parses on the other
    core, and onnxruntime's spinning threads collapse when cores are shared (measured under load
    here: 14 chunks/s with one thread, 9 with two). Bigger machines: onnxruntime's default."""
    return 1 if (os.cpu_count() or 1) <= 2 else None


def _register_local_model(folder: Path) -> str:
    """A fastembed model description matching the folder's pooling (mean or CLS) + normalization.

    fastembed picks pooling from the model *name*; a local folder has no registered name, so one
    is registered per pooling kind. The source URL is never fetched: specific_model_path wins."""
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    pooling = PoolingType.MEAN
    pooling_config = folder / "1_Pooling" / "config.json"
    if pooling_config.is_file() and json.loads(pooling_config.read_text()).get(
        "pooling_mode_cls_token"
    ):
        pooling = PoolingType.CLS
    name = f"kura-local/{pooling.value.lower()}-normalized"
    if not any(m["model"] == name for m in TextEmbedding.list_supported_models()):
        TextEmbedding.add_custom_model(
            name,
            pooling=pooling,
            normalization=True,
            sources=ModelSource(url="file:///nonexistent"),
            dim=0,
            model_file="model.onnx",
        )
    return name


def load_embedder(folder: Path, backend: str = "auto", cache_dir: Path | None = None) -> Embedder:
    """Load the embedder in `folder`. `backend`: auto | torch | onnx.

    `folder` may be a sentence-transformers folder (exported to ONNX under `cache_dir` when the
    backend is onnx or auto) or an ONNX folder already (holds model.onnx)."""
    if backend not in ("auto", "torch", "onnx"):
        raise ValueError(f"embedder backend must be auto, torch or onnx, not {backend!r}")
    if (folder / "model.onnx").is_file() and backend != "torch":
        return OnnxEmbedder(folder)
    if backend == "torch" or cache_dir is None:
        if backend == "onnx":
            raise ValueError(
                "the onnx embedder backend needs a model cache folder for the export "
                "(settings.model_cache_dir)"
            )
        return TorchEmbedder(folder)
    from models.onnx_export import OnnxExportFailed, ensure_onnx_export

    try:
        return OnnxEmbedder(ensure_onnx_export(folder, cache_dir), name=_model_name(folder))
    except (OnnxExportFailed, ImportError, ValueError, RuntimeError) as exc:
        if backend == "onnx":
            raise
        log.warning("ONNX embedder unavailable (%s); using torch", exc)
        return TorchEmbedder(folder)
