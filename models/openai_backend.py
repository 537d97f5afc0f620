"""An LLM behind any OpenAI-compatible server (llama.cpp server, vLLM, Ollama), streamed by SSE.

For the scale-out deployment: the model runs on a GPU box, kura talks to it over the site's
network. Nothing else leaves the machine; `kura doctor` lists the configured URL.

Usage:
    llm = OpenAICompatibleLLM("http://gpu-box:8080", model="qwen2.5-7b-instruct")
    for token in llm.stream(messages, max_tokens=256): print(token, end="")
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence

import httpx

from models.errors import LLMUnavailable
from models.llm_runtime import RuntimeInfo


class OpenAICompatibleLLM:
    def __init__(self, url: str, model: str | None = None, api_key: str | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"KURA_LLM_URL must start with http:// or https://, not {url!r}")
        self.base = url.rstrip("/").removesuffix("/v1")
        self.model = model or "default"
        self.name = f"{self.model} @ {self.base}"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.runtime = RuntimeInfo("server", f"OpenAI-compatible server at {self.base}", 0, 0, 0)

    def models(self, timeout_s: float = 5.0) -> list[str]:
        """The model ids the server offers (also a reachability check)."""
        try:
            response = httpx.get(f"{self.base}/v1/models", headers=self._headers, timeout=timeout_s)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise LLMUnavailable(
                f"the LLM server at {self.base} did not answer /v1/models ({exc}); "
                "check it is running and KURA_LLM_URL is right"
            ) from exc
        return [m["id"] for m in response.json().get("data", [])]

    def stream(
        self, messages: Sequence[dict[str, str]], max_tokens: int, timeout_s: float = 120.0
    ) -> Iterator[str]:
        """Yield answer text as the server streams it; stop at `max_tokens` or `timeout_s`.
        Closing the generator closes the HTTP response, which makes the server stop generating."""
        deadline = time.monotonic() + timeout_s
        body = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": max_tokens,
            "stream": True,
            "temperature": 0.1,
            "seed": 0,
        }
        timeout = httpx.Timeout(timeout_s, connect=10.0)
        try:
            with httpx.stream(
                "POST",
                f"{self.base}/v1/chat/completions",
                json=body,
                headers=self._headers,
                timeout=timeout,
            ) as response:
                if response.status_code != 200:
                    detail = response.read().decode("utf-8", errors="replace")[:300]
                    raise LLMUnavailable(
                        f"the LLM server at {self.base} answered {response.status_code}: {detail}"
                    )
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue  # SSE comments, event names, keep-alives
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    choices = json.loads(data).get("choices") or [{}]
                    delta = (choices[0].get("delta") or {}).get("content")
                    if delta:
                        yield delta
                    if time.monotonic() > deadline:
                        return
        except httpx.HTTPError as exc:
            raise LLMUnavailable(
                f"the LLM server at {self.base} failed mid-answer ({exc}); "
                "check it is running and KURA_LLM_URL is right"
            ) from exc
