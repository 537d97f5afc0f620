"""Where the LLM runs and why: CPU here, full GPU offload on a CUDA build with a GPU."""

from __future__ import annotations

import pytest

from models.llm import build_supports_gpu, cpu_threads, detect_runtime, visible_gpus

needs_gpu = pytest.mark.skipif(
    not (build_supports_gpu() and visible_gpus()),
    reason="needs a CUDA build of llama.cpp and a visible GPU",
)


def test_cpu_build_runs_on_cpu_and_says_why(llm) -> None:
    if build_supports_gpu():
        pytest.skip("this llama.cpp build has GPU support")
    assert llm.runtime.device == "cpu"
    assert "no GPU support" in llm.runtime.reason
    assert llm.runtime.gpu_layers == 0
    assert "cpu:" in llm.runtime.describe() and "threads" in llm.runtime.describe()


def test_generation_leaves_a_core_free_and_prompts_use_all() -> None:
    threads, batch = cpu_threads()
    import os

    cores = len(os.sched_getaffinity(0))
    assert batch == cores and threads == max(1, cores - 1)
    assert cpu_threads(3) == (3, max(3, cores))


def test_gpu_layers_zero_keeps_the_model_on_cpu() -> None:
    runtime = detect_runtime(gpu_layers=0, threads=None, block_count=30)
    assert runtime.device == "cpu" and runtime.gpu_layers == 0


@pytest.mark.gpu
@needs_gpu
def test_cuda_build_offloads_every_layer_to_the_visible_gpu() -> None:
    from models.llm import LlamaCppLLM
    from models.registry import packaged_llm_path

    llm = LlamaCppLLM(packaged_llm_path(), context_tokens=2048)
    assert llm.runtime.device == "cuda"
    assert llm.runtime.gpu_name and llm.runtime.layers_offloaded == "31/31"
    assert "".join(llm.stream([{"role": "user", "content": "Say hi."}], max_tokens=8))
