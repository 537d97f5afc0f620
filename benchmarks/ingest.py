"""`kura bench ingest`: ingestion throughput and the cost of a re-sync, through KuraService.

Two folders, each into a fresh data directory (the model cache of KURA_DATA_DIR is reused, so
run `kura setup` first or the first run includes the ONNX export):
- `docs`: a copy of ../shared/docs (real PDF/DOCX/HTML, English and Japanese);
- `generated`: N small Markdown files, one real passage each (SQuAD dev, then Cranfield).
For each: files/s, pages/s, chunks/s, share of time per stage, then the same sync again with
nothing changed (stat only), and the process's peak RSS.

    kura bench ingest --files 2000
    kura bench ingest --files 300 --skip-docs --backend torch
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

from app import offline  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def generate_folder(target: Path, count: int) -> int:
    """Write `count` Markdown files, one real passage each; returns how many were written."""
    target.mkdir(parents=True, exist_ok=True)
    written = 0
    for corpus in ("squad-v1.1-dev", "cranfield"):
        path = SHARED / "eval" / corpus / "corpus.jsonl"
        if not path.is_file():
            continue
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if written >= count:
                    return written
                passage = json.loads(line)
                title = str(passage.get("title") or corpus).replace("_", " ")
                sub = target / f"{written // 500:03d}"
                sub.mkdir(exist_ok=True)
                body = f"# {title}\n\n{passage['text']}\n"
                (sub / f"{corpus}-{passage['_id']}.md").write_text(body, encoding="utf-8")
                written += 1
    return written


def run_folder(label: str, folder: Path, data_dir: Path, embedder) -> dict:
    from app.service import KuraService
    from app.settings import KuraSettings
    from app.users import local_operator

    service = KuraService(KuraSettings(data_dir=data_dir))
    service.__dict__["embedder"] = embedder  # loaded once for both folders
    try:
        _ = service.index  # open the store and the manifest outside the timing
        first = service.ingest(local_operator(), folder, ["bench"])
        t0 = time.monotonic()
        again = service.ingest(local_operator(), folder, ["bench"])
        rerun_s = time.monotonic() - t0
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
        "rerun_unchanged_s": round(rerun_s, 3),
        "rerun_unchanged_ms_per_1000_files": round(rerun_s / max(files, 1) * 1e6, 1),
        "rerun_all_unchanged": again.count("unchanged") == files - len(first.failures),
    }
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kura bench ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--files", type=int, default=500, help="generated small files (default 500)"
    )
    parser.add_argument("--docs", type=Path, default=SHARED / "docs", help="real documents to copy")
    parser.add_argument("--skip-docs", action="store_true", help="only the generated folder")
    parser.add_argument("--backend", default="auto", choices=("auto", "onnx", "torch"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    from app.settings import KuraSettings
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
                    f"generated ({made} files)", work / "generated", work / "data-gen", embedder
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


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
