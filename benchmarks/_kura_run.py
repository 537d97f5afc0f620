"""One timed `kura ingest` as a child process, for the side-by-side benchmarks.

`python -m benchmarks._kura_run FOLDER DATA_DIR [MODEL_CACHE]` ingests FOLDER into the empty
DATA_DIR through KuraService (what `kura ingest` calls) and prints one JSON line: load_s
(imports, models, store), pipeline_s (the sync), chunks, files and seconds per stage.
MODEL_CACHE, when given, is linked in as DATA_DIR/models so the ONNX export is not redone.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def run(folder: Path, data_dir: Path, model_cache: Path | None = None) -> dict:
    started = time.monotonic()
    from app.identity.users import local_operator
    from app.platform.settings import KuraSettings
    from app.service import KuraService
    from base import offline  # noqa: F401
    from ingest import parse_pool

    data_dir.mkdir(parents=True, exist_ok=True)
    if model_cache is not None and not (data_dir / "models").exists():
        (data_dir / "models").symlink_to(model_cache.resolve(), target_is_directory=True)
    service = KuraService(KuraSettings(data_dir=data_dir))
    try:
        # What the ingest writer does when work arrives (app/service/jobs.py): start the parse
        # process's imports, then open the store and load the models meanwhile.
        parse_pool.warm_up()
        _ = service.embedder, service.sparse, service.index
        loaded = time.monotonic()
        report = service.ingest(local_operator(), folder, ["bench"])
        done = time.monotonic()
    finally:
        service.close()
    return {
        "load_s": round(loaded - started, 2),
        "pipeline_s": round(done - loaded, 2),
        "files": len(report.results),
        "failed": len(report.failures),
        "chunks": report.chunks,
        "pages": report.pages,
        "stage_s": {k: round(v, 2) for k, v in report.stage_s.items()},
        "writer_wait_s": round(report.writer_wait_s, 2),
        "embedder": f"{service.embedder.name} ({getattr(service.embedder, 'backend', '?')}, "
        f"{getattr(service.embedder, 'threads', '?')} threads)",
    }


if __name__ == "__main__":
    cache = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    print(json.dumps(run(Path(sys.argv[1]), Path(sys.argv[2]), cache)))
