"""`kura bench jobs`: ingestion through the job queue (app/service/jobs.py) and search beside it.

Into a fresh data directory, through KuraService like the UI and the CLI:
1. one job of N generated files (one real passage each, as `kura bench ingest` writes them);
2. three jobs submitted at once (three more folders of N files): the one writer runs them in
   order, so the total throughput should match one job's, not drop;
3. search latency (p50, p95 of `service.search`) on the ingested index with no job running,
   then while a fourth job of N files runs; the ratio is what ingestion costs a reader.

    kura bench jobs --files 200
    kura bench jobs --files 100 --json jobs.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from base import offline  # noqa: F401
from benchmarks.ingest import SEARCH_QUERIES as QUERIES
from benchmarks.ingest import generate_folder
from benchmarks.ingest import percentile as _percentile


def _searches(service, user, stop: threading.Event | None, rounds: int) -> list[float]:
    """Search latencies in ms: `rounds` queries, or until `stop` is set (at least `rounds`)."""
    latencies: list[float] = []
    i = 0
    while (stop is None and i < rounds) or (stop is not None and not stop.is_set()):
        t0 = time.perf_counter()
        service.search(user, QUERIES[i % len(QUERIES)], limit=8, as_admin=True)
        latencies.append((time.perf_counter() - t0) * 1000)
        i += 1
    return latencies


def _folders(work: Path, names: list[str], files: int) -> list[Path]:
    """Distinct generated folders: each takes the next `files` passages of the corpus."""
    pool = work / "pool"
    made = generate_folder(pool, files * len(names))
    every = sorted(pool.rglob("*.md"))
    out = []
    for k, name in enumerate(names):
        folder = work / name
        folder.mkdir()
        for path in every[k * files : (k + 1) * files]:
            path.rename(folder / path.name)
        out.append(folder)
    if made < files * len(names):
        print(f"only {made} passages found under ../shared/eval; folders are smaller")
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kura bench jobs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200, help="generated files per job (default 200)")
    parser.add_argument("--backend", default="auto", choices=("auto", "onnx", "torch"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    from app.identity.users import local_operator
    from app.platform.settings import KuraSettings
    from app.service import KuraService
    from models.embedder import load_embedder
    from models.registry import resolve_embedder_path

    settings = KuraSettings()
    embedder = load_embedder(
        resolve_embedder_path(settings.embedder_path), args.backend, cache_dir=settings.model_cache_dir
    )
    user = local_operator()
    results: dict = {"files_per_job": args.files}
    with tempfile.TemporaryDirectory(prefix="kura-bench-jobs-") as tmp:
        work = Path(tmp)
        one, *three, during = _folders(work, ["one", "two", "three", "four", "during"], args.files)
        service = KuraService(KuraSettings(data_dir=work / "data"), embedder=embedder)
        try:
            _ = service.index
            # Warm-up outside the timing: the first parse imports the parser's libraries.
            warm = work / "warmup"
            warm.mkdir()
            for i in range(3):
                (warm / f"w{i}.md").write_text(f"# Warm-up {i}\n\nA short note number {i}.\n", encoding="utf-8")
            service.ingest(user, warm, ["bench"])
            t0 = time.monotonic()
            report = service.ingest(user, one, ["bench"])
            seconds = time.monotonic() - t0
            results["one_job"] = {
                "chunks": report.chunks,
                "seconds": round(seconds, 2),
                "chunks_per_s": round(report.chunks / seconds, 2),
                "files_per_s": round(len(report.results) / seconds, 2),
            }

            t0 = time.monotonic()
            jobs = [service.submit_ingest(user, folder, ["bench"]) for folder in three]
            finished = [service.ingest_jobs.wait(job.id) for job in jobs]
            seconds = time.monotonic() - t0
            chunks = sum(sum(r["chunks"] for r in j.report["results"]) for j in finished)
            files = sum(len(j.report["results"]) for j in finished)
            results["three_jobs"] = {
                "chunks": chunks,
                "seconds": round(seconds, 2),
                "chunks_per_s": round(chunks / seconds, 2),
                "files_per_s": round(files / seconds, 2),
            }

            _searches(service, user, None, 10)  # warm-up: query encoder, caches
            idle = _searches(service, user, None, 60)
            job = service.submit_ingest(user, during, ["bench"])
            done = threading.Event()
            waiter = threading.Thread(target=lambda: (service.ingest_jobs.wait(job.id), done.set()), daemon=True)
            waiter.start()
            busy = _searches(service, user, done, 10)
            waiter.join()
        finally:
            service.close()
    p50_idle, p50_busy = statistics.median(idle), statistics.median(busy)
    results["search_idle_ms"] = {"p50": round(p50_idle, 2), "p95": round(_percentile(idle, 0.95), 2), "n": len(idle)}
    results["search_during_job_ms"] = {
        "p50": round(p50_busy, 2),
        "p95": round(_percentile(busy, 0.95), 2),
        "n": len(busy),
    }
    results["search_slowdown_p50"] = round(p50_busy / p50_idle, 2) if p50_idle else None
    results["three_vs_one_throughput"] = round(
        results["three_jobs"]["chunks_per_s"] / results["one_job"]["chunks_per_s"], 2
    )
    o, t = results["one_job"], results["three_jobs"]
    for label, r in (("1 job: ", o), ("3 jobs:", t)):
        print(
            f"{label} {r['chunks']} chunks in {r['seconds']} s = {r['chunks_per_s']} chunks/s, "
            f"{r['files_per_s']} files/s"
        )
    print(f"   3 jobs vs 1: {results['three_vs_one_throughput']}x throughput")
    i, b = results["search_idle_ms"], results["search_during_job_ms"]
    print(f"search idle:        p50 {i['p50']} ms, p95 {i['p95']} ms ({i['n']} queries)")
    print(f"search during job:  p50 {b['p50']} ms, p95 {b['p95']} ms ({b['n']} queries)")
    print(f"   slowdown p50: {results['search_slowdown_p50']}x (target: at most 2x)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
