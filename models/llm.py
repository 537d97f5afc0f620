"""The local LLM: llama.cpp in-process through llama-cpp-python, streaming tokens.

Usage:
    llm = LlamaCppLLM(Path("model.gguf"), context_tokens=4096)
    for token in llm.stream(messages, max_tokens=256): print(token, end="")
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from app import offline  # noqa: F401  (OMP_WAIT_POLICY must be set before llama_cpp loads)
from models.registry import ModelMissing

log = logging.getLogger(__name__)


class LLM(Protocol):
    name: str

    def stream(self, messages: Sequence[dict[str, str]], max_tokens: int, timeout_s: float) -> Iterator[str]: ...


@dataclass(frozen=True)
class RuntimeInfo:
    """What the LLM runs on and why, for `kura doctor` and the admin page."""

    device: str  # "cpu" or "cuda"
    reason: str
    threads: int
    threads_batch: int
    gpu_layers: int


def cpu_threads(configured: int | None = None) -> tuple[int, int]:
    """(generation threads, prompt threads). Generation is memory-bound and, on a shared CPU,
    busy threads collapse throughput (DESIGN.md: 2 cores, n_threads=1 / n_threads_batch=2);
    so leave one core free for the embedder and the UI, and use all cores for the prompt."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if configured:
        return configured, max(configured, cores)
    return max(1, cores - 1), cores


def detect_runtime(gpu_layers: int, threads: int | None) -> RuntimeInfo:
    import llama_cpp

    n_threads, n_batch = cpu_threads(threads)
    if not llama_cpp.llama_supports_gpu_offload():
        return RuntimeInfo("cpu", "this llama.cpp build has no GPU support (CPU build)", n_threads, n_batch, 0)
    if gpu_layers == 0:
        return RuntimeInfo("cpu", "GPU offload disabled by KURA_LLM_GPU_LAYERS=0", n_threads, n_batch, 0)
    return RuntimeInfo("cuda", "llama.cpp built with GPU support; offloading layers", n_threads, n_batch, gpu_layers)


class LlamaCppLLM:
    """One llama.cpp model in this process. Calls are serialised: a llama.cpp context serves one
    sequence at a time, so concurrent askers queue on the lock (models/queue.py adds fairness)."""

    def __init__(self, path: Path, context_tokens: int = 4096, threads: int | None = None, gpu_layers: int = -1) -> None:
        if not path.is_file():
            raise ModelMissing(f"LLM file {path} does not exist")
        import llama_cpp

        self.name = path.name
        self.runtime = detect_runtime(gpu_layers, threads)
        self._lock = threading.Lock()
        try:
            self._llama = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=context_tokens,
                n_threads=self.runtime.threads,
                n_threads_batch=self.runtime.threads_batch,
                n_gpu_layers=self.runtime.gpu_layers,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelMissing(
                f"llama.cpp could not load {path}: {exc}. Check the file is a complete GGUF "
                "model (compare its sha256 with the publisher's) and that it fits in memory"
            ) from exc
        self.context_tokens = context_tokens

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def stream(self, messages: Sequence[dict[str, str]], max_tokens: int, timeout_s: float = 120.0) -> Iterator[str]:
        """Yield answer text as llama.cpp produces it; stop at `max_tokens` or `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            chunks = self._llama.create_chat_completion(
                messages=list(messages), max_tokens=max_tokens, stream=True, temperature=0.1, seed=0,
                repeat_penalty=1.15,  # tiny models loop without it
            )
            for chunk in chunks:
                delta = chunk["choices"][0].get("delta", {}).get("content")  # type: ignore[index]
                if delta:
                    yield delta
                if time.monotonic() > deadline:
                    log.warning("answer stopped at the %.0f s time limit", timeout_s)
                    break
