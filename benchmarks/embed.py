"""`kura bench embed`: the embedder's standalone chunks/s against its chunks/s inside a full ingest.

Standalone: the chunks of the docs folder (parsed and chunked once, untimed) embedded in this
process, file by file, as the writer does. In-ingest: a fresh `kura ingest` of the same folder
into an empty data directory (a child process), chunks over the sync's wall time — so parsing,
chunking, BM25 and upserts count unless they are hidden behind the embedder — and over the
embed stage alone. The two alternate, `--rounds` times each. Goal: in-ingest >= 80% standalone.

    kura bench embed --rounds 2 --json embed.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kura bench embed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, default=SHARED / "docs", help="folder to ingest")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each (default 2)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if not args.docs.is_dir():
        print(f"{args.docs} does not exist; pass --docs")
        return 2

    from app.platform.settings import KuraSettings
    from base import offline  # noqa: F401
    from benchmarks._side_by_side import load_average, timed_child
    from ingest.parse_pool import parse_and_chunk
    from ingest.pipeline import list_files
    from models.embedder import covers, load_embedder
    from models.registry import resolve_embedder_path

    settings = KuraSettings()
    embedder = load_embedder(
        resolve_embedder_path(settings.embedder_path),
        settings.embedder_backend,
        cache_dir=settings.model_cache_dir,
    )
    files = []
    all_chunks = 0
    for path in list_files(args.docs):
        outcome = parse_and_chunk(path, settings.chunk_tokens, settings.chunk_overlap_tokens)
        texts = [p.embedding_text() for p in outcome.pieces or ()]
        all_chunks += len(texts)
        # Only what ingestion embeds: chunks in a language the embedder does not cover are
        # indexed for BM25 alone (ingest/pipeline.py embed_covered).
        texts = [t for t in texts if covers(embedder, t)]
        if texts:
            files.append(texts)
    chunks = sum(len(f) for f in files)
    name = f"{embedder.name} ({getattr(embedder, 'backend', '?')}, {getattr(embedder, 'threads', '?')} threads)"
    print(
        f"embedder: {name}; {chunks} of the {all_chunks} chunks from {len(files)} files in "
        f"{args.docs} are in a language it covers and get embedded"
    )
    embedder.embed_documents(files[0][:16])  # warm-up: first-run allocations
    standalone, in_ingest = [], []
    with tempfile.TemporaryDirectory(prefix="kura-bench-embed-") as tmp:
        for r in range(args.rounds):
            before = load_average()
            t0 = time.monotonic()
            for texts in files:
                embedder.embed_documents(texts)
            seconds = time.monotonic() - t0
            standalone.append(
                {
                    "seconds": round(seconds, 2),
                    "chunks_per_s": round(chunks / seconds, 2),
                    "load_before": before,
                    "load_after": load_average(),
                }
            )
            print(
                f"round {r + 1} standalone: {chunks / seconds:5.1f} chunks/s ({seconds:.1f} s); "
                f"load avg {before} -> {load_average()}"
            )
            run = timed_child(
                "_kura_run", str(args.docs), str(Path(tmp) / f"data-{r}"), str(settings.model_cache_dir)
            )
            shutil.rmtree(Path(tmp) / f"data-{r}", ignore_errors=True)
            run["chunks_per_s_wall"] = round(chunks / run["pipeline_s"], 2)
            run["chunks_per_s_embed_stage"] = round(chunks / max(run["stage_s"]["embed"], 1e-9), 2)
            in_ingest.append(run)
            print(
                f"round {r + 1} in ingest : {run['chunks_per_s_wall']:5.1f} chunks/s over the sync's "
                f"{run['pipeline_s']} s wall ({run['chunks_per_s_embed_stage']} over the embed stage); "
                f"stages {run['stage_s']}; load avg {run['load_before']} -> {run['load_after']}"
            )
    alone = statistics.median(s["chunks_per_s"] for s in standalone)
    inside = statistics.median(r["chunks_per_s_wall"] for r in in_ingest)
    summary = {
        "embedder": name,
        "chunks": chunks,
        "chunks_all_languages": all_chunks,
        "standalone_chunks_per_s": alone,
        "in_ingest_chunks_per_s": inside,
        "in_ingest_share_of_standalone": round(inside / alone, 3),
        "standalone": standalone,
        "in_ingest": in_ingest,
    }
    print(
        f"\nmedian: standalone {alone:.1f} chunks/s, in ingest {inside:.1f} chunks/s "
        f"= {inside / alone:.0%} of standalone"
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0
