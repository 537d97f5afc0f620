"""What the service needs from any LLM (llama.cpp in-process or an OpenAI-compatible server),
and what it runs on: the contract both backends (models/llm.py, models/openai_backend.py) keep."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol


class LLM(Protocol):
    """What the service needs from an LLM: llama.cpp in-process or an OpenAI-compatible server."""

    name: str
    runtime: RuntimeInfo

    def stream(
        self, messages: Sequence[dict[str, str]], max_tokens: int, timeout_s: float = 120.0
    ) -> Iterator[str]: ...


@dataclass(frozen=True)
class RuntimeInfo:
    """What the LLM runs on and why, for `kura doctor` and the admin page."""

    device: str  # "cpu", "cuda" or "server"
    reason: str
    threads: int
    threads_batch: int
    gpu_layers: int  # layers asked to be offloaded (-1: all)
    gpu_name: str | None = None
    gpu_vram_mib: int | None = None
    layers_offloaded: str | None = None  # "31/31" when known

    def describe(self) -> str:
        parts = [f"{self.device}: {self.reason}"]
        if self.gpu_name:
            parts.append(
                f"GPU {self.gpu_name}"
                + (f" ({self.gpu_vram_mib} MiB)" if self.gpu_vram_mib else "")
            )
        if self.layers_offloaded:
            parts.append(f"layers offloaded {self.layers_offloaded}")
        if self.device == "cpu":
            parts.append(f"threads {self.threads} (prompt {self.threads_batch})")
        return "; ".join(parts)


