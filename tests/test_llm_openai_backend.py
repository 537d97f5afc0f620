"""The OpenAI-compatible backend against a real server: llama.cpp's own, on the packaged GGUF."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from models.errors import LLMUnavailable
from models.openai_backend import OpenAICompatibleLLM
from models.registry import packaged_llm_path

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if (
        importlib.util.find_spec("fastapi") is None
        or importlib.util.find_spec("sse_starlette") is None
    ):
        pytest.skip("llama_cpp.server needs the `server` extra: pip install -e '.[server]'")
    port = _free_port()
    log = (tmp_path_factory.mktemp("server") / "server.log").open(
        "wb"
    )  # a pipe would fill and block it
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(packaged_llm_path()),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--n_ctx",
            "2048",
            "--n_threads",
            "1",
            "--n_threads_batch",
            "2",
            "--model_alias",
            "smollm2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {open(log.name).read()[-2000:]}")
            try:
                httpx.get(f"{url}/v1/models", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail(f"llama_cpp.server did not start in 60 s: {open(log.name).read()[-2000:]}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_server_backend_streams_an_answer_token_by_token(server_url: str) -> None:
    llm = OpenAICompatibleLLM(server_url, model="smollm2")
    assert "smollm2" in llm.models()
    messages = [
        {"role": "system", "content": "Reply with the code word only."},
        {"role": "user", "content": "The code word is tiger. What is the code word?"},
    ]
    tokens = list(llm.stream(messages, max_tokens=12))
    assert len(tokens) > 1, "streamed, not one block"
    assert "tiger" in "".join(tokens).lower()


def test_server_backend_serves_the_queue_like_the_in_process_model(server_url: str) -> None:
    from models.queue import LLMQueue

    line = LLMQueue(OpenAICompatibleLLM(server_url, model="smollm2"))
    stream = line.submit(
        "alice", [{"role": "user", "content": "The code word is river. What is the code word?"}], 12
    )
    assert "river" in "".join(stream).lower()
    assert not line.busy


def test_unreachable_server_gives_a_typed_error_with_the_fix() -> None:
    llm = OpenAICompatibleLLM(f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(LLMUnavailable, match="KURA_LLM_URL"):
        list(llm.stream([{"role": "user", "content": "hi"}], max_tokens=4, timeout_s=5))
