"""The local LLM: llama.cpp in-process through llama-cpp-python, streaming tokens, on the GPU
when the build and the machine have one, on the CPU otherwise.

Usage:
    llm = LlamaCppLLM(Path("model.gguf"), context_tokens=4096)
    print(llm.runtime.reason)
    for token in llm.stream(messages, max_tokens=256): print(token, end="")
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from base import offline  # noqa: F401  (OMP_WAIT_POLICY must be set before llama_cpp loads)
from models.errors import ModelInvalid, ModelMissing
from models.gguf import read_gguf
from models.llm_runtime import LLM, RuntimeInfo
from models.registry import check_llm_file

log = logging.getLogger(__name__)
__all__ = ["LLM", "LlamaCppLLM", "RuntimeInfo", "load_llm"]


def cpu_threads(configured: int | None = None) -> tuple[int, int]:
    """(generation threads, prompt threads). Generation is memory-bound and, on a shared CPU,
    busy threads collapse throughput (DESIGN.md: 2 cores, n_threads=1 / n_threads_batch=2);
    so leave one core free for the embedder and the UI, and use all cores for the prompt.
    Measured in docs/llm.md ("CPU threads", `kura bench llm --threads-sweep`): on 2 cores one
    generation thread beats two, idle or loaded; two prompt threads halve TTFT when idle."""
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    if configured:
        return configured, max(configured, cores)
    return max(1, cores - 1), cores


@dataclass(frozen=True)
class GpuInfo:
    name: str
    vram_mib: int | None


def query_gpus(fields: str) -> list[list[str]]:
    """One row of `fields` (nvidia-smi --query-gpu names, comma-separated) per NVIDIA GPU;
    [] when there is no nvidia-smi or it fails. No CUDA import needed."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [[part.strip() for part in line.split(",")] for line in out.strip().splitlines()]


def visible_gpus() -> list[GpuInfo]:
    """NVIDIA GPUs this process may use."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return []
    return [GpuInfo(name, int(vram) if vram.isdigit() else None) for name, vram in query_gpus("name,memory.total")]


def build_supports_gpu() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def detect_runtime(
    gpu_layers: int, threads: int | None, block_count: int | None = None
) -> RuntimeInfo:
    """Full GPU offload when this llama.cpp build has a GPU backend and a GPU is visible; else CPU."""
    n_threads, n_batch = cpu_threads(threads)
    if not build_supports_gpu():
        return RuntimeInfo(
            "cpu",
            "this llama.cpp build has no GPU support (CPU build; see docs/llm.md "
            "for the CUDA build)",
            n_threads,
            n_batch,
            0,
        )
    if gpu_layers == 0:
        return RuntimeInfo(
            "cpu", "GPU offload disabled by KURA_LLM_GPU_LAYERS=0", n_threads, n_batch, 0
        )
    gpus = visible_gpus()
    if not gpus and shutil.which("nvidia-smi") is not None:
        return RuntimeInfo(
            "cpu",
            "llama.cpp has GPU support but nvidia-smi sees no GPU "
            "(check CUDA_VISIBLE_DEVICES and the driver)",
            n_threads,
            n_batch,
            0,
        )
    total = block_count + 1 if block_count else None  # + the output layer
    asked = total if gpu_layers < 0 else gpu_layers
    offloaded = f"{min(asked, total)}/{total}" if total and asked else None
    gpu = gpus[0] if gpus else None
    return RuntimeInfo(
        "cuda",
        "llama.cpp built with GPU support and a GPU is visible",
        n_threads,
        n_batch,
        gpu_layers,
        gpu.name if gpu else None,
        gpu.vram_mib if gpu else None,
        offloaded,
    )


class LlamaCppLLM:
    """One llama.cpp model in this process. Calls are serialised: a llama.cpp context serves one
    sequence at a time, so concurrent askers queue (models/queue.py adds fairness and a bound).
    Consecutive prompts that start alike (the system prompt) reuse the KV cache of the common
    prefix: llama-cpp-python compares the new prompt's tokens with the evaluated ones."""

    def __init__(
        self,
        path: Path,
        context_tokens: int = 4096,
        threads: int | None = None,
        gpu_layers: int = -1,
        chat_format: str | None = None,
    ) -> None:
        """`chat_format`: llama-cpp-python's name for a prompt format (e.g. "gemma"), for a GGUF
        without a chat template (a base model); by default the file's own template is required."""
        if not path.is_file():
            raise ModelMissing(
                f"LLM file {path} does not exist; check KURA_LLM_PATH or `kura models list`"
            )
        info = read_gguf(path)
        self.runtime = detect_runtime(gpu_layers, threads, info.block_count)
        check_llm_file(path, need_chat_template=chat_format is None, on_gpu=self.runtime.device == "cuda")
        import llama_cpp

        self.name = path.name
        self.path = path
        self.context_tokens = min(context_tokens, info.context_length or context_tokens)
        self._lock = threading.Lock()
        try:
            self._llama = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=self.context_tokens,
                n_threads=self.runtime.threads,
                n_threads_batch=self.runtime.threads_batch,
                n_gpu_layers=self.runtime.gpu_layers,
                chat_format=chat_format,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelInvalid(
                f"llama.cpp could not load {path}: {exc}. Check the file is a complete GGUF "
                "model (compare its sha256 with the publisher's) and that it fits in memory"
            ) from exc

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def stream(
        self, messages: Sequence[dict[str, str]], max_tokens: int, timeout_s: float = 120.0
    ) -> Iterator[str]:
        """Yield answer text as llama.cpp produces it; stop at `max_tokens` or `timeout_s`.
        Closing the generator (the reader left) stops generation and frees the model."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            chunks = self._llama.create_chat_completion(
                messages=list(messages),  # type: ignore[arg-type]
                max_tokens=max_tokens,
                stream=True,
                temperature=0.1,
                seed=0,
                repeat_penalty=1.15,  # tiny models loop without it
            )
            try:
                for chunk in chunks:
                    delta = chunk["choices"][0].get("delta", {}).get("content")  # type: ignore[index,union-attr]
                    if delta:
                        yield str(delta)
                    if time.monotonic() > deadline:
                        log.warning("answer stopped at the %.0f s time limit", timeout_s)
                        break
            finally:
                chunks.close()  # type: ignore[union-attr]

    def close(self) -> None:
        with self._lock:
            self._llama.close()


def load_llm(
    path: Path | None,
    url: str | None,
    context_tokens: int,
    threads: int | None,
    gpu_layers: int,
    model_name: str | None = None,
    api_key: str | None = None,
) -> LLM:
    """The LLM the settings ask for: an OpenAI-compatible server when a URL is set, else llama.cpp."""
    if url:
        from models.openai_backend import OpenAICompatibleLLM

        return OpenAICompatibleLLM(url, model=model_name, api_key=api_key)
    assert path is not None
    return LlamaCppLLM(path, context_tokens, threads, gpu_layers)
