"""`kura bench llm`: time to first token and tokens/s on a ~1.5k-token RAG prompt, kura's
wrapper (queue + LlamaCppLLM.stream) against raw llama-cpp-python on the same loaded model,
the KV-cache reuse of a shared prompt prefix, and latency/throughput with concurrent askers.

The model runs with the settings' threads (KURA_LLM_THREADS) and GPU layers, as `kura serve` would.
`--threads-sweep` instead measures TTFT and generation speed for each (n_threads,
n_threads_batch) in {1, 2, cores/2, cores-1, cores}^2 ({1, 2}^2 on 2 cores), on an idle CPU
and with a competing busy process (one core's worth of load, like another user's embedding), to
check the default in models.llm.cpu_threads.
OpenMP reads OMP_WAIT_POLICY once at start: compare `OMP_WAIT_POLICY=ACTIVE kura bench llm ...`.

Usage: kura bench llm [--prompt-tokens 1500] [--tokens 32] [--repeats 3] [--concurrency 1,4,16]
       kura bench llm --threads-sweep [--tokens 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from base import offline  # noqa: F401

CORPUS = (
    Path(__file__).resolve().parent.parent.parent
    / "shared"
    / "eval"
    / "squad-v1.1-dev"
    / "corpus.jsonl"
)


def rag_messages(llm, prompt_tokens: int, question: str) -> list[dict[str, str]]:
    """Grounded-answer messages whose passages add up to about `prompt_tokens` tokens."""
    from models.prompts import PromptPassage, build_messages

    texts = []
    if CORPUS.is_file():
        with CORPUS.open() as handle:
            texts = [json.loads(line)["text"] for _, line in zip(range(200), handle, strict=False)]
    texts = (
        texts
        or ["The annual leave policy grants twenty days of paid leave to every employee. " * 8] * 50
    )
    passages, used = [], 0
    for i, text in enumerate(texts, start=1):
        cost = llm.count_tokens(text) + 12
        if used + cost > prompt_tokens - 150:
            break
        passages.append(PromptPassage(i, f"doc{i}.pdf p.{i}", text))
        used += cost
    return build_messages(question, passages)


def _timed(stream) -> tuple[float, float, int]:
    """(time to first token, total time, pieces streamed)."""
    started = time.perf_counter()
    first, count = None, 0
    for _ in stream:
        if first is None:
            first = time.perf_counter() - started
        count += 1
    return first or 0.0, time.perf_counter() - started, count


# A competing CPU user: one Python process spinning, stopped by us or by its own deadline.
_BUSY = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"


def _busy_process(seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", _BUSY.format(seconds=seconds)])


def _chat_stream(raw, messages: list[dict[str, str]], tokens: int):
    for chunk in raw.create_chat_completion(
        messages=messages,
        max_tokens=tokens,
        stream=True,
        temperature=0.1,
        seed=0,
        repeat_penalty=1.15,
    ):
        if chunk["choices"][0].get("delta", {}).get("content"):
            yield chunk


def threads_sweep(model: Path, prompt_tokens: int, tokens: int, repeats: int) -> None:
    """TTFT and generation pieces/s per (n_threads, n_threads_batch), idle and under load."""
    import llama_cpp

    from models.llm import LlamaCppLLM, cpu_threads

    cores = len(os.sched_getaffinity(0))
    default = cpu_threads()
    probe = LlamaCppLLM(model, context_tokens=4096, gpu_layers=0)
    messages = rag_messages(probe, prompt_tokens, "When was the university founded?")
    prompt_len = sum(probe.count_tokens(m["content"]) for m in messages)
    probe.close()
    print(
        f"threads sweep: {cores} cores, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
        f"default cpu_threads() = {default}; RAG prompt {prompt_len} tokens, answer {tokens} "
        f"tokens, median of {repeats}"
    )
    counts = sorted({1, 2, cores // 2, cores - 1, cores} & set(range(1, cores + 1)))
    print(f"{'load':>6s} {'n_thr':>5s} {'n_batch':>7s} {'TTFT ms':>8s} {'gen pieces/s':>12s}  loadavg")
    rows: dict[tuple[str, int, int], tuple[float, float]] = {}
    for load in ("idle", "busy"):
        for n_threads in counts:
            for n_batch in counts:
                raw = llama_cpp.Llama(
                    model_path=str(model),
                    n_ctx=4096,
                    n_threads=n_threads,
                    n_threads_batch=n_batch,
                    n_gpu_layers=0,
                    verbose=False,
                )
                busy = _busy_process(seconds=30 + 20 * repeats) if load == "busy" else None
                try:
                    if busy:
                        time.sleep(0.5)  # let the competitor get scheduled
                    runs = []
                    for _ in range(repeats):
                        raw.reset()  # cold prompt each time
                        runs.append(_timed(_chat_stream(raw, messages, tokens)))
                finally:
                    if busy:
                        busy.terminate()
                        busy.wait(timeout=10)
                    raw.close()
                ttft = statistics.median(r[0] for r in runs)
                rate = statistics.median(r[2] / max(r[1] - r[0], 1e-9) for r in runs)
                rows[(load, n_threads, n_batch)] = (ttft, rate)
                mark = " <- default" if (n_threads, n_batch) == default else ""
                print(
                    f"{load:>6s} {n_threads:5d} {n_batch:7d} {ttft * 1000:8.0f} {rate:12.1f}  "
                    f"{os.getloadavg()[0]:.2f}{mark}",
                    flush=True,
                )
    for load in ("idle", "busy"):
        best_ttft = min((k for k in rows if k[0] == load), key=lambda k: rows[k][0])
        best_rate = max((k for k in rows if k[0] == load), key=lambda k: rows[k][1])
        print(
            f"{load}: fastest TTFT with n_threads_batch={best_ttft[2]} (n_threads={best_ttft[1]}), "
            f"fastest generation with n_threads={best_rate[1]} (n_threads_batch={best_rate[2]})"
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kura bench llm")
    parser.add_argument("--prompt-tokens", type=int, default=1500)
    parser.add_argument("--tokens", type=int, default=32, help="answer tokens per request")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument(
        "--model", type=Path, default=None, help="GGUF (default: the active/packaged LLM)"
    )
    parser.add_argument(
        "--threads-sweep",
        action="store_true",
        help="measure every n_threads x n_threads_batch on the CPU, idle and under a competing load",
    )
    args = parser.parse_args(argv)

    from app.platform.settings import KuraSettings
    from models.llm import LlamaCppLLM
    from models.queue import LLMQueue
    from models.registry import packaged_llm_path

    model = args.model or packaged_llm_path()
    if args.threads_sweep:
        threads_sweep(model, args.prompt_tokens, args.tokens, args.repeats)
        return 0
    settings = KuraSettings()  # KURA_LLM_THREADS / KURA_LLM_GPU_LAYERS as the service uses them
    llm = LlamaCppLLM(
        model, context_tokens=4096, threads=settings.llm_threads, gpu_layers=settings.llm_gpu_layers
    )
    raw = llm._llama  # the same loaded model and settings: the difference is kura's code path
    print(f"model {llm.name}; {llm.runtime.describe()}")
    messages = rag_messages(llm, args.prompt_tokens, "When was the university founded?")
    prompt_len = sum(llm.count_tokens(m["content"]) for m in messages)
    print(f"RAG prompt {prompt_len} tokens, answer {args.tokens} tokens, {args.repeats} repeats")

    def raw_stream():
        return _chat_stream(raw, messages, args.tokens)

    line = LLMQueue(llm)
    results: dict[str, list[tuple[float, float, int]]] = {"raw": [], "kura": []}
    for _ in range(args.repeats):
        for name in ("raw", "kura"):
            raw.reset()  # cold prompt each time: no KV prefix reuse in the TTFT comparison
            stream = raw_stream() if name == "raw" else line.submit("bench", messages, args.tokens)
            results[name].append(_timed(stream))
    for name, runs in results.items():
        ttft = statistics.median(r[0] for r in runs)
        rate = statistics.median(r[2] / max(r[1] - r[0], 1e-9) for r in runs)
        print(f"{name:5s} TTFT p50 {ttft * 1000:7.0f} ms   generation {rate:6.1f} pieces/s")
    raw_ttft = statistics.median(r[0] for r in results["raw"])
    kura_ttft = statistics.median(r[0] for r in results["kura"])
    print(f"wrapper overhead on TTFT: {(kura_ttft / raw_ttft - 1) * 100:+.1f} %")

    # Prefix reuse: same system prompt and passages, a different question (what the next asker sends).
    raw.reset()
    _timed(line.submit("bench", messages, 1))
    other = rag_messages(llm, args.prompt_tokens, "Who was the first president?")
    warm = _timed(line.submit("bench", other, args.tokens))[0]
    raw.reset()
    cold = _timed(line.submit("bench", other, args.tokens))[0]
    print(
        f"KV prefix reuse: TTFT cold {cold * 1000:.0f} ms, after a prompt with the same passages {warm * 1000:.0f} ms"
    )

    for n in [int(x) for x in args.concurrency.split(",") if x]:
        latencies: list[float] = []
        pieces = [0]
        lock = threading.Lock()

        def ask(
            i: int,
            latencies: list[float] = latencies,
            pieces: list[int] = pieces,
            lock: threading.Lock = lock,
        ) -> None:
            ask_messages = rag_messages(
                llm, args.prompt_tokens, f"Question number {i}: what happened?"
            )
            started = time.perf_counter()
            count = sum(1 for _ in line.submit(f"user{i}", ask_messages, args.tokens))
            with lock:
                latencies.append(time.perf_counter() - started)
                pieces[0] += count

        started = time.perf_counter()
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        latencies.sort()
        p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
        print(
            f"{n:3d} concurrent askers: {n / wall:5.2f} answers/s, {pieces[0] / wall:6.1f} pieces/s, "
            f"latency p50 {statistics.median(latencies):5.2f} s p95 {p95:5.2f} s"
        )
    return 0
