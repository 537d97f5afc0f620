"""`kura bench ingest`: ingestion throughput and the cost of a re-sync, through KuraService.

Two folders, each into a fresh data directory (the model cache of KURA_DATA_DIR is reused, so
run `kura setup` first or the first run includes the ONNX export):
- `docs`: a copy of ../shared/docs (real PDF/DOCX/HTML, English and Japanese);
- `generated`: N small Markdown files, one real passage each (SQuAD dev, then Cranfield).
For each: files/s, pages/s, chunks/s, share of time per stage, then the same sync again with
nothing changed (stat only), and the process's peak RSS.

    kura bench ingest --files 2000
    kura bench ingest --files 300 --skip-docs --backend torch
    kura bench ingest --compare-llamaindex --rounds 2 --json out.json

`--compare-llamaindex` times, alternately, kura and the LlamaIndex + Qdrant + MiniLM (torch)
pipeline (benchmarks/_llamaindex_peer.py, needs `scripts/setup.sh --bench`) on the docs folder,
each as a fresh process into an empty data directory, and prints the wall-time ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import tempfile
import time
from pathlib import Path

from base import offline  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def generate_folder(target: Path, count: int) -> int:
    """Write `count` Markdown files, one real passage each; returns how many were written.
    Past the end of the corpora each pass starts the passages at another sentence, so that
    every file still has content of its own (a copy would only be linked, not embedded)."""
    passages: list[tuple[str, str, str]] = []
    for corpus in ("squad-v1.1-dev", "cranfield"):
        path = SHARED / "eval" / corpus / "corpus.jsonl"
        if path.is_file():
            with path.open(encoding="utf-8") as lines:
                for line in lines:
                    passage = json.loads(line)
                    title = str(passage.get("title") or corpus).replace("_", " ")
                    passages.append((f"{corpus}-{passage['_id']}", title, passage["text"]))
    if not passages:
        return 0
    target.mkdir(parents=True, exist_ok=True)
    for written in range(count):
        name, title, text = passages[written % len(passages)]
        turn = written // len(passages)
        if turn:
            sentences = re.split(r"(?<=[.!?])\s+", text)
            k = turn % len(sentences)
            text = " ".join(sentences[k:] + sentences[:k]) + f" (variant {turn})"
        sub = target / f"{written // 500:03d}"
        sub.mkdir(exist_ok=True)
        (sub / f"{name}-{turn}.md").write_text(f"# {title}\n\n{text}\n", encoding="utf-8")
    return count


def change_files(folder: Path, count: int) -> int:
    """Edit `count` of the generated files (one more sentence each): new content, same path."""
    changed = 0
    for path in sorted(folder.rglob("*.md"))[:count]:
        with path.open("a", encoding="utf-8") as f:
            f.write("This passage was revised for the re-sync benchmark.\n")
        changed += 1
    return changed


def run_folder(label: str, folder: Path, data_dir: Path, embedder, changed: int = 0) -> dict:
    from app.identity.users import local_operator
    from app.platform.settings import KuraSettings
    from app.service import KuraService

    service = KuraService(KuraSettings(data_dir=data_dir), embedder=embedder)
    try:
        _ = service.index  # open the store and the manifest outside the timing
        first = service.ingest(local_operator(), folder, ["bench"])
        t0 = time.monotonic()
        again = service.ingest(local_operator(), folder, ["bench"])
        rerun_s = time.monotonic() - t0
        edited = change_files(folder, changed) if changed else 0
        resync = service.ingest(local_operator(), folder, ["bench"]) if edited else None
    finally:
        service.close()
    files = len(first.results)
    busy = sum(first.stage_s.values()) or 1.0
    result = {
        "folder": label,
        "files": files,
        "ingested": first.count("ingested"),
        "linked": first.count("linked"),
        "failed": len(first.failures),
        "pages": first.pages,
        "chunks": first.chunks,
        "seconds": round(first.seconds, 2),
        "files_per_s": round(files / first.seconds, 2),
        "pages_per_s": round(first.pages / first.seconds, 2),
        "chunks_per_s": round(first.chunks / first.seconds, 2),
        "stage_share": {k: f"{v / busy:.0%}" for k, v in first.stage_s.items()},
        "stage_s": {k: round(v, 2) for k, v in first.stage_s.items()},
        "writer_wait_s": round(first.writer_wait_s, 2),
        "rerun_unchanged_s": round(rerun_s, 3),
        "rerun_unchanged_ms_per_1000_files": round(rerun_s / max(files, 1) * 1e6, 1),
        "rerun_all_unchanged": again.count("unchanged") == files - len(first.failures),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
    if resync is not None:
        result["changed_files"] = edited
        result["changed_resync_s"] = round(resync.seconds, 2)
        result["changed_files_per_s"] = round(edited / resync.seconds, 2)
        result["changed_reingested"] = resync.count("ingested")
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kura bench ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--files", type=int, default=500, help="generated small files (default 500)"
    )
    parser.add_argument("--docs", type=Path, default=SHARED / "docs", help="real documents to copy")
    parser.add_argument("--skip-docs", action="store_true", help="only the generated folder")
    parser.add_argument(
        "--changed", type=int, default=0, help="then edit N generated files and time their re-sync"
    )
    parser.add_argument("--backend", default="auto", choices=("auto", "onnx", "onnx-int8", "torch"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--compare-llamaindex",
        action="store_true",
        help="only: kura vs LlamaIndex + Qdrant + the same MiniLM on --docs, alternating",
    )
    parser.add_argument("--rounds", type=int, default=2, help="runs of each with --compare-llamaindex")
    args = parser.parse_args(argv)
    if args.compare_llamaindex:
        return compare_llamaindex(args.docs, args.rounds, args.json)

    from app.platform.settings import KuraSettings
    from models.embedder import load_embedder
    from models.registry import resolve_embedder_path

    settings = KuraSettings()
    t0 = time.monotonic()
    embedder = load_embedder(
        resolve_embedder_path(settings.embedder_path),
        args.backend,
        cache_dir=settings.model_cache_dir,
    )
    print(
        f"embedder: {embedder.name} ({getattr(embedder, 'backend', '?')}), "
        f"loaded in {time.monotonic() - t0:.1f} s"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="kura-bench-ingest-") as tmp:
        work = Path(tmp)
        if not args.skip_docs:
            if not args.docs.is_dir():
                print(f"{args.docs} does not exist; pass --docs or --skip-docs")
                return 2
            shutil.copytree(args.docs, work / "docs")
            results.append(run_folder("docs", work / "docs", work / "data-docs", embedder))
            _print(results[-1])
        if args.files > 0:
            made = generate_folder(work / "generated", args.files)
            results.append(
                run_folder(
                    f"generated ({made} files)",
                    work / "generated",
                    work / "data-gen",
                    embedder,
                    changed=args.changed,
                )
            )
            _print(results[-1])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mb:.0f} MB")
    if args.json:
        args.json.write_text(
            json.dumps({"results": results, "peak_rss_mb": round(peak_mb)}, indent=1)
        )
    return 0


def compare_llamaindex(docs: Path, rounds: int, json_path: Path | None) -> int:
    """kura and the peer pipeline alternately (kura first in even rounds, second in odd ones)."""
    import importlib.util
    import statistics

    from benchmarks._side_by_side import load_average, timed_child

    if importlib.util.find_spec("llama_index.core") is None:
        print("LlamaIndex is not installed: run scripts/setup.sh --bench (the `bench` extra)")
        return 2
    if not docs.is_dir():
        print(f"{docs} does not exist; pass --docs")
        return 2
    from app.platform.settings import KuraSettings
    from models.onnx_export import ensure_onnx_export
    from models.registry import resolve_embedder_path

    settings = KuraSettings()
    cache = settings.model_cache_dir
    export = ensure_onnx_export(resolve_embedder_path(settings.embedder_path), cache)  # not timed
    if settings.embedder_backend in ("auto", "onnx-int8"):  # derived once, as `kura setup` does
        from models.onnx_quantize import ensure_int8

        ensure_int8(export)
    runs: dict[str, list[dict]] = {"kura": [], "llamaindex": []}
    with tempfile.TemporaryDirectory(prefix="kura-bench-compare-") as tmp:
        work = Path(tmp)
        folder = work / "docs"
        shutil.copytree(docs, folder)
        for r in range(rounds):
            for who in ("kura", "llamaindex") if r % 2 == 0 else ("llamaindex", "kura"):
                data = work / f"data-{who}-{r}"
                if who == "kura":
                    run = timed_child("_kura_run", str(folder), str(data), str(cache))
                    detail = f"{run['chunks']} chunks, {run['failed']} failed, {run['embedder']}"
                else:
                    run = timed_child("_llamaindex_peer", str(folder), str(data))
                    detail = f"{run['nodes']} nodes from {run['documents']} documents"
                runs[who].append(run)
                print(
                    f"round {r + 1} {who:10s}: {run['process_wall_s']:6.1f} s wall "
                    f"(load {run['load_s']} s, pipeline {run['pipeline_s']} s; {detail}); "
                    f"load avg {run['load_before']} -> {run['load_after']}"
                )
                shutil.rmtree(data, ignore_errors=True)
    kura_wall = statistics.median(r["process_wall_s"] for r in runs["kura"])
    peer_wall = statistics.median(r["process_wall_s"] for r in runs["llamaindex"])
    kura_pipe = statistics.median(r["pipeline_s"] for r in runs["kura"])
    peer_pipe = statistics.median(r["pipeline_s"] for r in runs["llamaindex"])
    pairs = [
        round(k["process_wall_s"] / p["process_wall_s"], 3)
        for k, p in zip(runs["kura"], runs["llamaindex"], strict=True)
    ]
    summary = {
        "docs": str(docs),
        "rounds": rounds,
        "kura_wall_s_median": kura_wall,
        "llamaindex_wall_s_median": peer_wall,
        "wall_ratio_kura_over_llamaindex": round(kura_wall / peer_wall, 3),
        "wall_ratio_per_round": pairs,
        "pipeline_ratio_kura_over_llamaindex": round(kura_pipe / peer_pipe, 3),
        "load_avg_end": load_average(),
        "runs": runs,
    }
    print(
        f"\nwall time, median of {rounds}: kura {kura_wall:.1f} s, LlamaIndex {peer_wall:.1f} s "
        f"-> kura/LlamaIndex = {summary['wall_ratio_kura_over_llamaindex']:.2f} "
        f"(per round {pairs}; pipeline only {summary['pipeline_ratio_kura_over_llamaindex']:.2f})"
    )
    if json_path:
        json_path.write_text(json.dumps(summary, indent=1))
    return 0


def _print(r: dict) -> None:
    print(
        f"\n== {r['folder']}: {r['files']} files ({r['ingested']} ingested, {r['linked']} linked, "
        f"{r['failed']} failed), {r['pages']} pages, {r['chunks']} chunks in {r['seconds']} s"
    )
    print(
        f"   {r['files_per_s']} files/s, {r['pages_per_s']} pages/s, {r['chunks_per_s']} chunks/s"
    )
    print(
        "   time per stage: "
        + ", ".join(f"{k} {r['stage_s'][k]} s ({v})" for k, v in r["stage_share"].items())
    )
    print(
        f"   re-run, nothing changed: {r['rerun_unchanged_s']} s "
        f"({r['rerun_unchanged_ms_per_1000_files']} ms per 1,000 files; all unchanged: "
        f"{r['rerun_all_unchanged']})"
    )
    if "changed_files" in r:
        print(
            f"   re-sync after editing {r['changed_files']} files: {r['changed_resync_s']} s, "
            f"{r['changed_files_per_s']} files/s ({r['changed_reingested']} re-ingested)"
        )
    print(f"   load average at the end: {r['load_avg']}")


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))


# Questions about the generated folder's topics, shared by the benchmarks that search while they run.
SEARCH_QUERIES = (
    "annual leave for employees",
    "aerodynamic heating of a flat plate",
    "who won the super bowl",
    "boundary layer transition",
    "the university was founded",
    "pressure distribution on a wing",
)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by rank; 0.0 for no values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0
