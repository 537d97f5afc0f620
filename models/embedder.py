"""Dense text embeddings from a local model folder: ONNX through onnxruntime, or torch.

`backend="auto"` uses the ONNX export of the model (models/onnx_export.py) when it exists in
the model cache or can be made there, torch otherwise. Nothing is ever downloaded: both load
only from local folders.

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

from base import offline  # noqa: F401  (hub access off before sentence-transformers loads)

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
    languages: tuple[str, ...] | None = None

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
    """onnxruntime on an exported ONNX folder, same vectors as torch (cosine 1.0000).

    The tokenizer is fastembed's loader for the folder (truncation at the exported
    `model_max_length`, batch-longest padding); the session, batching and pooling are kura's own
    so that the threads match the cores and batches are cut by length (models/embed_batches.py)."""

    backend = "onnx"
    languages: tuple[str, ...] | None = None

    def __init__(
        self, onnx_folder: Path, name: str | None = None, threads: int | None = None
    ) -> None:
        import onnxruntime as ort
        from fastembed.common.preprocessor_utils import load_tokenizer

        if not (onnx_folder / "model.onnx").is_file():
            raise FileNotFoundError(
                f"{onnx_folder} has no model.onnx; run `kura setup` to export the embedder"
            )
        self.name = name or _model_name(onnx_folder)
        self.threads = threads or default_threads()
        self._tokenizer, _ = load_tokenizer(onnx_folder)
        # Padding is done per batch in _run: the tokenizer's own would pad every text to the
        # longest of the whole call and hide the true lengths that batches are cut by.
        self._pad_id = int((self._tokenizer.padding or {}).get("pad_id", 0))
        self._tokenizer.no_padding()
        self._cls_pooling = _uses_cls_pooling(onnx_folder)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # Spinning workers wait for work by burning a core. On a shared or busy machine (the
        # parse process runs beside the embedder during an ingest) they steal the very cores
        # the other threads need: throughput collapsed from 14 to 9 chunks/s here. Sleeping
        # workers cost ~nothing on batches of thousands of tokens.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(onnx_folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.dim = int(self._encode(["dimension probe"]).shape[1])

    def embed_documents(self, texts: Sequence[str], batch_size: int = 32) -> list[list[float]]:
        """`batch_size` is accepted for the Protocol; batches are cut by tokens, not by count."""
        if not texts:
            return []
        from models.embed_batches import length_batches

        encodings = self._tokenizer.encode_batch(list(texts))
        out: list[list[float]] = [[] for _ in texts]
        for batch in length_batches([len(e.ids) for e in encodings]):
            vectors = self._run([encodings[i] for i in batch])
            for i, vector in zip(batch, vectors, strict=True):
                out[i] = vector.tolist()
        return out

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def _encode(self, texts: list[str]):  # -> np.ndarray
        return self._run(self._tokenizer.encode_batch(texts))

    def _run(self, encodings: list):  # -> np.ndarray (n, dim), L2-normalised
        import numpy as np

        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, e in enumerate(encodings):  # padded to the batch's longest text, on the right
            n = len(e.ids)
            ids[row, :n], mask[row, :n], types[row, :n] = e.ids, e.attention_mask, e.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = self._session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]
        if self._cls_pooling:
            pooled = hidden[:, 0]
        else:
            weights = mask[:, :, None].astype(hidden.dtype)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, 1e-12)


def covers(embedder: Embedder, text: str) -> bool:
    """Whether `embedder` understands `text`'s language. An embedder's `languages` attribute
    (None or absent: every language) lists what it covers; text in another language gets no
    dense vector and is indexed for BM25 only (ingest/pipeline.py embed_covered)."""
    languages = getattr(embedder, "languages", None)
    if languages is None or "ja" in languages:
        return True
    from base.cjk import is_japanese

    return not is_japanese(text)


def default_threads() -> int:
    """onnxruntime threads: one per core kura may use (its CPU affinity, not the machine's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _uses_cls_pooling(folder: Path) -> bool:
    pooling_config = folder / "1_Pooling" / "config.json"
    return pooling_config.is_file() and bool(
        json.loads(pooling_config.read_text()).get("pooling_mode_cls_token")
    )


# Languages the packaged model was trained on: its `languages` (see `covers`).
PACKAGED_LANGUAGES = ("en",)


def load_embedder(folder: Path, backend: str = "auto", cache_dir: Path | None = None) -> Embedder:
    """Load the embedder in `folder` (see `_load`); the packaged MiniLM is marked English-only,
    any other model covers every language unless told otherwise."""
    embedder = _load(folder, backend, cache_dir)
    from models.registry import ModelMissing, packaged_embedder_path

    try:
        packaged = folder.resolve() == packaged_embedder_path().resolve()
    except ModelMissing:
        packaged = False
    if packaged:
        embedder.languages = PACKAGED_LANGUAGES  # type: ignore[attr-defined]
    return embedder


def _load(folder: Path, backend: str = "auto", cache_dir: Path | None = None) -> Embedder:
    """Load the embedder in `folder`. `backend`: auto | torch | onnx | onnx-int8.

    `folder` may be a sentence-transformers folder (exported to ONNX under `cache_dir` when the
    backend is not torch) or an ONNX folder already (holds model.onnx). `auto` runs the int8
    copy of the export (models/onnx_quantize.py: ~1.5-2x faster, vectors at cosine ~0.994,
    nDCG within 0.003), the fp32 export if quantizing fails, torch if exporting fails.
    An ONNX folder given directly runs as it is under `auto`. `onnx` is the fp32 export,
    `onnx-int8` the int8 copy (derived beside the ONNX folder) or an error."""
    if backend not in ("auto", "torch", "onnx", "onnx-int8"):
        raise ValueError(f"embedder backend must be auto, torch, onnx or onnx-int8, not {backend!r}")
    if backend == "torch":
        return TorchEmbedder(folder)
    onnx_folder: Path | None = folder if (folder / "model.onnx").is_file() else None
    if onnx_folder is None:
        if cache_dir is None:
            if backend == "auto":
                return TorchEmbedder(folder)
            raise ValueError(
                f"the {backend} embedder backend needs a model cache folder for the export "
                "(settings.model_cache_dir)"
            )
        from models.onnx_export import OnnxExportFailed, ensure_onnx_export

        try:
            onnx_folder = ensure_onnx_export(folder, cache_dir)
        except (OnnxExportFailed, ImportError, ValueError, RuntimeError) as exc:
            if backend != "auto":
                raise
            log.warning("ONNX embedder unavailable (%s); using torch", exc)
            return TorchEmbedder(folder)
    if backend == "onnx" or (backend == "auto" and onnx_folder == folder):
        # An operator's own ONNX folder runs as given: kura writes nothing beside it unasked.
        return OnnxEmbedder(onnx_folder, name=_model_name(folder))
    from models.onnx_quantize import ensure_int8

    try:
        int8_folder = ensure_int8(onnx_folder)
    except Exception as exc:  # a model the quantizer cannot handle: fp32 still works
        if backend != "auto":
            raise
        log.warning("int8 embedder unavailable (%s); using the fp32 ONNX export", exc)
        return OnnxEmbedder(onnx_folder, name=_model_name(folder))
    # Its own name: vectors differ from fp32, so caches keyed by the name must too.
    return OnnxEmbedder(int8_folder, name=f"{_model_name(folder)}-int8")
