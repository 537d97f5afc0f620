"""Search latency on a large store, for three readers, before, during and after an index build:
`kura bench search_latency [--chunks N] [--store-dir DIR] [--add N] [--json FILE]`.

Builds (or reuses, with `--store-dir`) a qdrant-edge store of N synthetic chunks (text-like
dense vectors, see benchmarks/_synthetic_store.py; Zipf BM25 vectors; one of `--acl-groups`
groups per document), then times `search_passages` end to end with the REAL embedder and
sparse encoder on real questions: query embedding + BM25 encoding + one hybrid Qdrant query
with the ACL filter inside. Three readers by default: in 3 of 50 groups (~6% of the store),
in all 50, and an admin (no ACL filter). It measures:

1. the store as it stands (as ingestion leaves it: exact scans, no HNSW);
2. while the index is built in the background (retrieval/index_build.py): every reader's
   searches (and any that fail), a writer adding a 20-chunk document every half second, and
   the longest stall of a Python thread (the GIL held by a native call), per build phase;
3. the indexed store, and dense recall@10 of the indexed search against an exact scan, on
   real SQuAD questions;
then the store's RAM (anonymous and file-backed pages of this process; the builder's peak
separately) and disk. Ratios: each reader's p50/p95 after vs before, and during vs before.

    kura bench search_latency --chunks 1000000 --store-dir /tmp/kura-1m --json latency.json
    kura bench search_latency --chunks 1000000 --store-dir /tmp/kura-1m --add 50000   # a later build

Writing a million chunks takes a few minutes; it stops with a clear message if the process
grows past `--max-rss-gb`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._synthetic_store import (
    DOC_CHUNKS,
    MODEL,
    chunk_id,
    first_vector,
    fit_text_like,
    squad_texts,
    write_chunks,
)
from benchmarks.ingest import percentile

QUESTIONS = [
    "Which NFL team represented the AFC at Super Bowl 50?",
    "What is the boundary layer thickness on a flat plate in supersonic flow?",
    "How many days of annual paid leave does an employee receive?",
    "What did the trustee report about the chapter 13 plan payments?",
    "年次有給休暇は何日付与されますか",
    "会社は入社を希望する者の中から何を行って採用しますか",
    "What are the background check statistics for November 2015?",
    "懲戒処分の種類は何ですか",
]
SQUAD = Path(__file__).resolve().parents[2] / "shared" / "eval" / "squad-v1.1-dev"
PHASES = ("copying", "building", "swapping")  # of an index build, as IndexStatus.state names them


class MemoryLimit(RuntimeError):
    """The benchmark's process grew past --max-rss-gb while building the store."""


def memory_gb() -> dict[str, float]:
    """This process's resident memory now (anonymous, file-backed, total) and its peak, GiB."""
    fields = {"VmRSS": "rss", "RssAnon": "anon", "RssFile": "file", "VmHWM": "peak"}
    out = {}
    with open("/proc/self/status") as status:
        for line in status:
            key = line.split(":")[0]
            if key in fields:
                out[fields[key]] = int(line.split()[1]) / 2**20
    return out


def disk_gb(path: Path) -> float:
    """Blocks the files under `path` occupy (sparse files count what they really use)."""
    used = sum(
        os.lstat(os.path.join(folder, name)).st_blocks * 512 for folder, _, names in os.walk(path) for name in names
    )
    return used / 2**30


def _stats(times: list[float]) -> dict[str, float]:
    """p95 by rank: statistics.quantiles extrapolated past a phase's few samples (a p95 above the max)."""
    if not times:
        return {"n": 0}
    return {
        "n": len(times),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(percentile(times, 0.95), 1),
        "max_ms": round(max(times), 1),
    }


def load(x: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in x)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kura bench search_latency")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=40, help="timed searches per reader and stage")
    parser.add_argument("--acl-groups", type=int, default=50, help="groups the chunks belong to")
    parser.add_argument("--readers", default="3,50,admin", help="readers: numbers of groups, or admin")
    parser.add_argument(
        "--vectors",
        choices=("text", "hard", "random"),
        default="text",
        help="dense vectors' model (benchmarks/_synthetic_store.py)",
    )
    parser.add_argument("--store-dir", type=Path, help="keep the store here and reuse it next time")
    parser.add_argument("--add", type=int, default=0, help="write this many more chunks first (a later build)")
    parser.add_argument("--no-build", action="store_true", help="measure the store as it stands, build nothing")
    parser.add_argument("--threads", type=int, default=1, help="cores the index builder may use")
    parser.add_argument("--quantization", choices=("int8", "none"), default="int8")
    parser.add_argument("--search-ef", type=int, default=256)
    parser.add_argument("--recall-queries", type=int, default=200)
    parser.add_argument("--search-every-s", type=float, default=0.2, help="readers' pace during the build")
    parser.add_argument("--max-rss-gb", type=float, default=8.0, help="stop writing the store past this")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    from app.platform.settings import KuraSettings
    from base import offline  # noqa: F401
    from base.cjk import is_japanese
    from models.embedder import load_embedder
    from models.registry import resolve_embedder_path
    from retrieval.index_build import IndexPlan
    from retrieval.search import search_passages
    from retrieval.sparse import SparseEncoder
    from retrieval.store import ALL_GROUPS, EdgeStore

    settings = KuraSettings()
    embedder = load_embedder(  # what the product runs: the ONNX export from the model cache
        resolve_embedder_path(settings.embedder_path), settings.embedder_backend, cache_dir=settings.model_cache_dir
    )
    sparse = SparseEncoder()
    groups = [f"group-{g:02d}" for g in range(args.acl_groups)]
    readers: dict[str, Any] = {}
    for spec in args.readers.split(","):
        readers["admin" if spec == "admin" else f"{spec} of {args.acl_groups} groups"] = (
            ALL_GROUPS if spec == "admin" else groups[: int(spec)]
        )
    summary: dict[str, Any] = {
        "chunks": args.chunks,
        "acl_groups": args.acl_groups,
        "vectors": args.vectors,
        "load_before": [round(x, 2) for x in os.getloadavg()],
    }
    tmp = None if args.store_dir else tempfile.TemporaryDirectory(prefix="kura-bench-")
    folder = args.store_dir or Path(tmp.name)  # type: ignore[union-attr]
    folder.mkdir(parents=True, exist_ok=True)
    english = [q for q in QUESTIONS if not is_japanese(q)]
    japanese = [q for q in QUESTIONS if is_japanese(q)]
    terms = sorted({i for q in QUESTIONS for i in sparse.encode_query(q).indices})
    recall_questions: list[str] = []
    if args.vectors != "random":  # fitted on the paragraphs and 8,000 questions; recall asks others
        paragraphs, fit_questions = squad_texts(SQUAD, 10_000, 8_000)
        vectors = fit_text_like(embedder, paragraphs + fit_questions, folder, args.vectors)
        recall_questions = squad_texts(SQUAD, 0, args.recall_queries, skip_questions=8_000)[1]
    else:
        from benchmarks._synthetic_store import TextLikeVectors

        vectors = TextLikeVectors(embedder.dim)
    for q in QUESTIONS:  # load the models' lazy parts before the store's RAM is measured
        embedder.embed_query(q)
    ram_before = memory_gb()
    plan = IndexPlan(min_new_chunks=0, threads=args.threads, quantization=args.quantization, search_ef=args.search_ef)
    meta_path = folder / "bench.json"
    key = {"acl_groups": args.acl_groups, "vectors": args.vectors, "model": MODEL, "dim": embedder.dim}
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if meta.get("key") != key or meta.get("chunks", 0) < args.chunks:
        import shutil

        shutil.rmtree(folder / "store", ignore_errors=True)
        meta = {"key": key, "chunks": 0}
    store = EdgeStore(folder / "store", embedder.dim, plan)
    total = meta["chunks"]

    def progress(done: int) -> None:
        if memory_gb()["rss"] > args.max_rss_gb:
            raise MemoryLimit(f"stopped after {done} chunks: the process holds > {args.max_rss_gb} GiB")
        if done and done % 100_000 == 0:
            print(
                f"  {done} chunks written, RSS {memory_gb()['rss']:.1f} GiB, load {load(os.getloadavg())}", flush=True
            )

    to_write = max(0, args.chunks - total) + args.add
    to_write -= to_write % DOC_CHUNKS
    try:
        seconds = write_chunks(store, to_write, vectors, groups, terms, start=total, progress=progress)
    except MemoryLimit as exc:
        print(f"{exc}; nothing measured")
        summary["error"] = str(exc)
        store.close()
        if args.json:
            args.json.write_text(json.dumps(summary, indent=1))
        return 1
    total += to_write
    meta["chunks"] = total
    meta_path.write_text(json.dumps(meta))
    summary["chunks"] = total
    summary["written"] = {"chunks": to_write, "seconds": round(seconds, 1)}
    status = store.index_status()
    print(
        f"store: {total} chunks ({to_write} written in {seconds:.0f} s), {status.indexed_points} in the index; "
        f"readers: {', '.join(readers)}; load {load(os.getloadavg())}",
        flush=True,
    )

    def search(q: str, groups_: Any, mode: str = "hybrid") -> list:
        return search_passages(store, embedder, q, groups_, 8, sparse=sparse, mode=mode)

    for q in QUESTIONS:  # warm up: model graphs, Sudachi dictionary, store caches
        search(q, readers[next(iter(readers))])

    stages: dict[str, tuple[list[str], str]] = {
        "hybrid (English)": (english, "hybrid"),
        "dense (English)": (english, "dense"),
        "BM25": (QUESTIONS, "sparse"),
        "hybrid (Japanese: dense skipped)": (japanese, "hybrid"),
    }

    def measure(label: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for reader, reader_groups in readers.items():
            for stage, (questions, mode) in stages.items():
                times = []
                for i in range(args.queries):
                    t = time.perf_counter()
                    search(questions[i % len(questions)], reader_groups, mode)
                    times.append(1000 * (time.perf_counter() - t))
                out.setdefault(reader, {})[stage] = _stats(times)
                s = out[reader][stage]
                print(
                    f"  [{label}] {reader:18s} {stage:34s} p50 {s['p50_ms']:6.1f} ms  p95 {s['p95_ms']:6.1f} ms",
                    flush=True,
                )
        return out

    summary["before"] = measure("before")
    summary["index_before"] = vars(status) | {"unindexed": status.unindexed}
    if not args.no_build:
        summary["during_build"], total = _during_build(
            store, readers, english, search, vectors, groups, terms, total, args.search_every_s
        )
        meta["chunks"] = total
        meta_path.write_text(json.dumps(meta))
        summary["chunks_after"] = total
        built = store.index_status()
        summary["build"] = vars(built)
        print(
            f"index: built in copy {built.last_copy_s} s + build {built.last_build_s} s + swap "
            f"{built.last_swap_s} s ({built.last_swap_steps}); "
            f"builder peak {built.builder_peak_anon_mb:.0f} MB anonymous memory; "
            f"error {built.error}"
        )
        summary["after"] = measure("after")
        summary["ratios"] = _ratios(summary)
    ram = memory_gb()
    summary["benchmark_process_ram_gb"] = {k: round(ram[k] - ram_before[k], 2) for k in ("rss", "anon", "file")} | {
        "peak": round(ram["peak"], 2)
    }
    summary["disk_gb"] = round(disk_gb(folder / "store"), 2)
    if recall_questions and not args.no_build:
        summary["recall_at_10"] = _recall(store, embedder, readers, recall_questions)
    store.close()
    if args.vectors != "random":
        summary["store_ram_gb"] = _serving_ram(folder, embedder.dim, args.acl_groups)
        served = summary["store_ram_gb"]["after_searches"]
        summary["store_ram_gb_per_million_chunks"] = round(sum(served.values()) / total * 1e6, 2)
    summary["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(
        f"store: {summary.get('store_ram_gb')} GiB RAM in a process that opens it and searches "
        f"({summary.get('store_ram_gb_per_million_chunks')} GiB per million chunks; the benchmark process "
        f"{summary['benchmark_process_ram_gb']}), {summary['disk_gb']} GiB on disk; "
        f"recall@10 {summary.get('recall_at_10')}; "
        f"load {load(summary['load_before'])} -> {load(summary['load_after'])}"
    )
    for reader, ratio in summary.get("ratios", {}).items():
        print(f"  ratio {reader:18s} {ratio}")
    if tmp is not None:
        tmp.cleanup()
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


def _during_build(
    store: Any,
    readers: dict[str, Any],
    english: list[str],
    search: Callable[..., list],
    vectors: Any,
    groups: list[str],
    terms: list[int],
    total: int,
    pace_s: float,
) -> tuple[dict[str, Any], int]:
    """While the index is built: a search every `pace_s` (readers in turn; a busy appliance, not
    a flood that would starve the niced builder) and a 20-chunk document written every 0.5 s.
    Latency per build phase, failures, the longest GIL stall, and whether every written
    document is found afterwards."""
    from retrieval.store import ALL_GROUPS

    times: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    writes: dict[str, list[float]] = defaultdict(list)
    stalls: dict[str, float] = defaultdict(float)
    failures: list[str] = []
    phase = ["copying"]
    done = threading.Event()
    written: list[int] = []

    def writer() -> None:
        number = total
        while not done.wait(0.5):
            t = time.perf_counter()
            write_chunks(store, DOC_CHUNKS, vectors, groups, terms, start=number, staged=True)
            store.commit_document(f"d{number // DOC_CHUNKS}")
            writes[phase[0]].append(1000 * (time.perf_counter() - t))
            written.append(number)
            number += DOC_CHUNKS

    def heartbeat() -> None:  # a Python thread that cannot run while a native call holds the GIL
        last = time.perf_counter()
        while not done.wait(0.01):
            now = time.perf_counter()
            stalls[phase[0]] = max(stalls[phase[0]], 1000 * (now - last - 0.01))
            last = now

    threads = [threading.Thread(target=writer), threading.Thread(target=heartbeat)]
    store.build_index()
    started = time.monotonic()
    for th in threads:
        th.start()
    i = 0
    while True:
        state = store.index_status().state
        if state == "idle" and i:
            break
        phase[0] = state if state in PHASES else phase[0]
        for reader, reader_groups in readers.items():
            t = time.perf_counter()
            try:
                search(english[i % len(english)], reader_groups)
            except Exception as exc:  # the goal: none
                failures.append(f"{phase[0]} {reader}: {exc}")
            times[phase[0]][reader].append(1000 * (time.perf_counter() - t))
            time.sleep(max(0.0, pace_s - (time.perf_counter() - t)))
        i += 1
    done.set()
    for th in threads:
        th.join()
    seconds = time.monotonic() - started
    missing = [n for n in written if len(store.chunks_of(f"d{n // DOC_CHUNKS}", ALL_GROUPS)) != DOC_CHUNKS]
    found = 0
    for n in written[:: max(1, len(written) // 20)]:  # a written chunk's own vector finds it, for its group
        hits = store.search([groups[(n // DOC_CHUNKS) % len(groups)]], first_vector(vectors, n), None, 1)
        found += bool(hits) and hits[0].id == chunk_id(n)
    out: dict[str, Any] = {"seconds": round(seconds, 1), "failures": failures[:10], "failed": len(failures)}
    # The goal's measure: every search while the index builds, all phases together. The phases
    # follow, to show where a tail comes from (a few single stalls in the short swap phase
    # decide that phase's p95 alone).
    out["whole_build"] = {
        "search": {reader: _stats([t for phase in times.values() for t in phase[reader]]) for reader in readers},
    }
    for name in times:
        out[name] = {
            "search": {reader: _stats(t) for reader, t in times[name].items()},
            "write_doc": _stats(writes.get(name, [])),
            "longest_gil_stall_ms": round(stalls.get(name, 0.0), 1),
        }
    out["documents_written"] = len(written)
    out["documents_incomplete_after"] = len(missing)
    out["sampled_chunks_found_by_their_group"] = f"{found}/{len(written[:: max(1, len(written) // 20)])}"
    print(
        f"during the build ({seconds:.0f} s): {len(failures)} failed searches; "
        f"{len(written)} documents written, {len(missing)} incomplete after it",
        flush=True,
    )
    for name in ("whole_build", *PHASES):
        if name in out:
            row = out[name]
            readers_text = "; ".join(
                f"{r} p50 {s['p50_ms']} p95 {s['p95_ms']} max {s['max_ms']}" for r, s in row["search"].items() if s["n"]
            )
            tail = (
                f"; write max {row['write_doc'].get('max_ms')} ms; longest GIL stall {row['longest_gil_stall_ms']} ms"
                if "write_doc" in row
                else ""
            )
            print(f"  [{name}] {readers_text}{tail}", flush=True)
    return out, total + len(written) * DOC_CHUNKS


def _serving_ram(folder: Path, dim: int, groups: int) -> dict[str, Any]:
    """The store's RAM in a fresh process that opens it and searches (benchmarks/_store_ram.py)."""
    import subprocess
    import sys

    model = next(folder.glob("text-like-vectors-*.npz"))
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks._store_ram", str(folder / "store"), str(dim), str(groups), str(model)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _ratios(summary: dict[str, Any]) -> dict[str, Any]:
    """Per reader, hybrid English: after / before; p95 while the index builds (all phases)
    / before's p95, and the same for the build phase with the highest p95."""
    out = {}
    build = summary["during_build"]
    for reader, stages in summary["before"].items():
        before = stages["hybrid (English)"]
        after = summary["after"][reader]["hybrid (English)"]
        phases = [build[name]["search"].get(reader, {}) for name in PHASES if name in build]
        worst = max((d.get("p95_ms", 0) for d in phases), default=0)
        whole = build["whole_build"]["search"][reader].get("p95_ms", 0)
        out[reader] = {
            "after_vs_before_p50": round(after["p50_ms"] / before["p50_ms"], 2),
            "after_vs_before_p95": round(after["p95_ms"] / before["p95_ms"], 2),
            "build_p95_vs_before_p95": round(whole / before["p95_ms"], 2),
            "worst_phase_p95_vs_before_p95": round(worst / before["p95_ms"], 2),
        }
    return out


def _recall(store: Any, embedder: Any, readers: dict[str, Any], questions: list[str]) -> dict[str, float]:
    """Dense recall@10 of the indexed search against an exact scan, per reader."""
    out = {}
    vectors = [embedder.embed_query(q) for q in questions]
    for reader, groups in readers.items():
        shared = 0
        for v in vectors:
            indexed = {h.id for h in store.search(groups, list(v), None, 10)}
            exact = {h.id for h in store.search(groups, list(v), None, 10, exact=True)}
            shared += len(indexed & exact)
        out[reader] = round(shared / (10 * len(vectors)), 4)
    return out
