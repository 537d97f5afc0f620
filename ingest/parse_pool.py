"""Parsing and chunking in a separate process, so the parser never holds the GIL the embedder needs.

The parsers (unstructured, python-docx) are mostly pure Python: in a thread of the ingesting
process they hold the GIL for long stretches and starve the embedder's thread. One spawned
worker process parses files ahead of the writer instead. It is started by `warm_up()` when the
ingest writer gets work (or by the first big sync), kept for the life of the process (starting
it costs ~2 s of imports), and exits if that process dies. Small syncs (a few files from the
UI, the tests) parse in the calling thread as before.

Usage:
    outcome = parse_in_process(path, chunk_tokens=256, overlap_tokens=32).result()
    outcome = parse_and_chunk(path, 256, 32)  # the same, in this process
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from ingest.chunk import ChunkPiece

# A sync is "big" when it must parse this much; below it the worker's start-up is not worth it.
PROCESS_MIN_FILES = 24
PROCESS_MIN_BYTES = 512 * 1024
_ORPHAN_CHECK_S = 1.0  # how often the parse process checks that its ingesting process lives

log = logging.getLogger(__name__)

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


@dataclass
class ParseOutcome:
    """Chunks of one file, or why it failed (strings: IngestError does not survive pickling)."""

    pieces: list[ChunkPiece] | None = None
    pages: int = 0
    reason: str = ""
    hint: str = ""
    stage_s: dict[str, float] = field(default_factory=dict)


def parse_and_chunk(path: Path, chunk_tokens: int, overlap_tokens: int) -> ParseOutcome:
    """Parse `path` and cut it into chunks; an IngestError becomes a failed outcome."""
    from ingest.chunk import chunk_blocks
    from ingest.errors import EmptyFile, IngestError
    from ingest.parse import parse_file

    try:
        t0 = time.monotonic()
        parsed = parse_file(path)
        t1 = time.monotonic()
        pieces = chunk_blocks(parsed.blocks, chunk_tokens, overlap_tokens)
        stage_s = {"parse": t1 - t0, "chunk": time.monotonic() - t1}
        if not pieces:
            raise EmptyFile()
    except IngestError as exc:
        return ParseOutcome(reason=str(exc), hint=exc.hint)
    return ParseOutcome(pieces, parsed.page_count, stage_s=stage_s)


def worth_a_process(files: int, total_bytes: int) -> bool:
    return files >= PROCESS_MIN_FILES or total_bytes >= PROCESS_MIN_BYTES


def parse_in_process(path: Path, chunk_tokens: int, overlap_tokens: int) -> Future[ParseOutcome]:
    """Queue `path` on the parse process (started on first use)."""
    return _submit(parse_and_chunk, path, chunk_tokens, overlap_tokens)


def warm_up() -> Future[None] | None:
    """Start the parse process and have it import the parsers now, while the caller opens the
    store and loads the models: ~2 s that the embedder otherwise waits for before the first
    file of the first big sync. The ingest writer calls it when work arrives. Only a head
    start: when the process cannot start, None, and the first file tries again."""
    try:
        return _submit(_import_parsers)
    except Exception:
        log.warning("could not start the parse process ahead of work", exc_info=True)
        return None


def _submit(fn, *args) -> Future:
    """Queue a call on the parse process. A pool whose worker died where no one was waiting on
    it (a warm-up, say) refuses new work; it is replaced once with a fresh process."""
    try:
        return _executor().submit(fn, *args)
    except BrokenProcessPool:
        shutdown()
        return _executor().submit(fn, *args)


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            # spawn, not fork: the ingesting process holds onnxruntime and qdrant threads and
            # open stores, which a forked child must never inherit.
            _pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_start,
                initargs=(os.getpid(),),
            )
            atexit.register(shutdown)
        return _pool


def _import_parsers() -> None:
    """What the first file would import and load: unstructured's text classifier with its
    offline spaCy sentence splitter, the PDF readers."""
    import pikepdf  # noqa: F401
    import pypdfium2  # noqa: F401

    import ingest.chunk  # noqa: F401
    import ingest.parse  # noqa: F401
    from ingest.nlp_offline import install_for_unstructured

    install_for_unstructured()
    from unstructured.partition.text import element_from_text

    element_from_text("The parser is ready. It splits sentences offline.")


def _worker_start(parent: int) -> None:
    """The worker's start. No parser kura runs needs torch (PDFs are read by PDFium, OCR is
    tesseract), but spaCy's thinc imports it when it is installed, ~2 s of the worker's
    start-up on this machine, which the embedder waits for before the first file. A None entry
    makes `import torch` raise ImportError, which thinc treats as "no torch".

    A worker waiting for work does not notice that its process was killed (SIGKILL, the OOM
    killer, a crash test) and would live on, holding ~190 MB: it exits once it is orphaned."""
    import sys

    sys.modules.setdefault("torch", None)  # type: ignore[arg-type]
    threading.Thread(target=_exit_with, args=(parent,), name="kura-parse-orphan", daemon=True).start()


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_ORPHAN_CHECK_S)
    os._exit(0)


def outcome_of(future: Future[ParseOutcome], path: Path) -> ParseOutcome:
    """The future's outcome; a parser that killed its process (a crash in native code, the
    OOM killer) fails this file only, and the next file gets a fresh process."""
    try:
        return future.result()
    except BrokenProcessPool:
        shutdown()
        return ParseOutcome(
            reason=f"the parser process died while reading {path.name}",
            hint="the file may be damaged or too large for this machine's memory; "
            "open and re-save it, or split it",
        )


def shutdown() -> None:
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)
