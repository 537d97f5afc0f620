"""Folder sync: bring the index in line with a folder, file by file, never stopping on one bad file.

For each file: unchanged (same size, mtime and groups as the manifest says) → skipped after a
`stat`, without reading it; same content as a document kura already has (a rename, a move, a
copy) → the path is added to that document, no re-embedding; new content → parse, chunk,
embed, stage, swap. Files gone from the folder are dropped from the index. Each outcome is one
`FileResult` in the `IngestReport`.

Throughput: a parse thread reads and hashes files ahead of the writer, through a bounded queue;
on a big sync the parsing and chunking itself runs in a separate process (ingest/parse_pool.py)
so that the pure-Python parsers never hold the GIL the embedder needs. The writer embeds the
chunks of several files in one batch, then stages and swaps each file.

Crash safety (kill -9 at any moment, run again → the state a clean run gives):
- new chunks are written `staged` (invisible); a journal row is written before they are
  un-staged and the old version deleted; `recover()` replays journaled swaps and deletes any
  staged chunk nobody journaled;
- every manifest change to which paths hold a document marks the document dirty in the same
  transaction; `recover()` brings the store's payload (paths, groups) in line, or deletes a
  document no path holds any more.

Usage:
    report = sync_folder(Path("/srv/docs/hr"), groups=("hr",), index=index, on_progress=print)
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path

from ingest import parse_pool
from ingest.chunk import ChunkPiece
from ingest.errors import EmptyFile, FileTooLarge, IngestError, UnreadableFile
from ingest.manifest import DocumentRecord, FileRecord, Manifest, now
from models.embedder import Embedder
from retrieval.store import ALL_GROUPS, ChunkStore, SparseVec, StoredChunk

log = logging.getLogger(__name__)

_POINT_NAMESPACE = uuid.UUID("6f1c9a52-6b1e-4d0e-9a43-6b75726100aa")
STAGES = ("read", "parse", "chunk", "embed", "sparse", "upsert")
# Chunks per embedder call across files. The embedder sorts a call's texts by length before
# cutting batches (models/embed_batches.py): 256 texts pad less than 64 and went ~15% faster.
EMBED_BATCH = 256
MAX_BATCH_FILES = 256  # files swapped in per store flush (a flush is ~75 ms of fsync)
MAX_BATCH_WAIT_S = 2.0  # longest a parsed file waits for more files to batch with
# Pending chunks worth a store flush of their own: with this many waiting and no parsed file
# ready, the writer embeds them now rather than idle the embedder for up to MAX_BATCH_WAIT_S.
# Small files (one or two chunks each) still batch by the wait; a document's worth does not.
EAGER_FLUSH_CHUNKS = EMBED_BATCH // 4
# Parsed files waiting for the writer. The parser may run a whole embedder call ahead: with
# room for only 8 files the writer waited 65 s of a 351 s sync of 10,000 small files for the
# parser to catch up after each call. The chunk bound keeps big documents from filling memory.
_QUEUE_FILES = MAX_BATCH_FILES
_QUEUE_CHUNKS = 2 * EMBED_BATCH
_PARSE_AHEAD = 2  # files queued on the parse process beyond the one it is parsing


@dataclass(frozen=True)
class FileResult:
    path: str
    status: str  # ingested | unchanged | linked | removed | failed
    chunks: int = 0
    pages: int = 0
    reason: str = ""
    hint: str = ""


@dataclass
class IngestReport:
    root: str
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    stage_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    # Seconds the writer (and so the embedder) sat waiting for the parser: the part of the
    # parse stage that was not hidden behind embedding.
    writer_wait_s: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def failures(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def chunks(self) -> int:
        return sum(r.chunks for r in self.results)

    @property
    def pages(self) -> int:
        return sum(r.pages for r in self.results)

    @property
    def nothing_ingested(self) -> bool:
        """True when every file failed: the only case `kura ingest` exits non-zero."""
        return bool(self.results) and all(r.status == "failed" for r in self.results)


class SyncStopped(Exception):
    """`should_stop` said stop (a cancel, or the writer shutting down) between two files: the
    files before it are in the index, the rest untouched. Carries the report so far."""

    def __init__(self, report: IngestReport) -> None:
        super().__init__(f"stopped after {len(report.results)} files of {report.root}")
        self.report = report


@dataclass(frozen=True)
class IngestProgress:
    """One event per finished file (and one after the unchanged files were skipped); the CLI
    renders it as a bar, the UI as st.progress. Rate and ETA count only files that needed work."""

    files_done: int
    files_total: int
    chunks: int
    current: str
    elapsed_s: float
    pages: int = 0
    files_skipped: int = 0  # unchanged files, done by a stat alone
    stage_s: dict[str, float] = field(default_factory=dict)  # seconds so far per stage (STAGES)

    @property
    def rate_files_per_s(self) -> float:
        worked = self.files_done - self.files_skipped
        return worked / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def rate_chunks_per_s(self) -> float:
        return self.chunks / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        rate = self.rate_files_per_s
        return (self.files_total - self.files_done) / rate if rate > 0 else None


@dataclass
class Index:
    """What ingestion writes to: the store, the manifest, and the encoders."""

    store: ChunkStore
    manifest: Manifest
    embedder: Embedder
    encode_sparse: Callable[[str], SparseVec] | None = None
    chunk_tokens: int = 200
    overlap_tokens: int = 30
    max_file_bytes: int = 200 * 1024 * 1024


def list_files(root: Path) -> list[Path]:
    """Every regular file under `root` (or `root` itself); symlink loops, hidden files skipped."""
    if root.is_file():
        return [root]
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith((".", "~$")):
                found.append(Path(dirpath) / name)
    return found


def recover(index: Index) -> int:
    """Bring the store in line with the manifest after a crash. Returns how many swaps it finished.

    Idempotent and cheap when nothing was interrupted (three small queries and one delete)."""
    pending = index.manifest.pending_swaps()
    if pending:
        _finish_swaps(index, pending, verify=True)
    if index.store.count(ALL_GROUPS, staged=True):  # skip the delete's flush when clean
        index.store.delete_staged()
    for doc_id in index.manifest.dirty_documents():
        _settle(index, doc_id)
    return len(pending)


# --- the sync ------------------------------------------------------------------------------
@dataclass
class _Candidate:
    """A file whose stat differs from the manifest: it must at least be read and hashed."""

    path: Path
    size: int
    mtime_ns: int
    previous: FileRecord | None


@dataclass
class _Prepared:
    """What the parse thread hands the writer for one file."""

    candidate: _Candidate
    record: FileRecord | None = None  # None: failed before the content was known
    pieces: list[ChunkPiece] | None = None  # None: content kura already has (or will have)
    pages: int = 0
    failure: FileResult | None = None
    stage_s: dict[str, float] = field(default_factory=dict)


def sync_folder(
    root: Path,
    groups: Sequence[str],
    index: Index,
    on_progress: Callable[[IngestProgress], None] | None = None,
    remove_missing: bool = True,
    should_stop: Callable[[], bool] | None = None,
) -> IngestReport:
    """Recovery is not done here: the process that opens the index runs `recover()` once,
    before its writer takes the first job (app/service/jobs.py); recovering inside a sync would
    delete chunks another sync had staged. `should_stop` is asked between files."""
    root = root.resolve()
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist")
    started = time.monotonic()
    acl = tuple(sorted(set(groups)))
    report = IngestReport(root=str(root))
    files = list_files(root)
    known = index.manifest.files_by_path(str(root))
    candidates: list[_Candidate] = []
    for path in files:
        try:
            stat = path.stat()
        except OSError as exc:
            report.results.append(_failed(path, UnreadableFile(exc.strerror or str(exc))))
            continue
        previous = known.get(str(path)) or index.manifest.file(str(path))
        if (
            previous
            and previous.size == stat.st_size
            and previous.mtime_ns == stat.st_mtime_ns
            and previous.groups == acl
        ):
            report.results.append(FileResult(str(path), "unchanged"))
        else:
            candidates.append(_Candidate(path, stat.st_size, stat.st_mtime_ns, previous))
    skipped = len(report.results)

    def progress(current: str) -> None:
        if on_progress:
            on_progress(
                IngestProgress(
                    len(report.results),
                    len(files),
                    report.chunks,
                    current,
                    time.monotonic() - started,
                    pages=report.pages,
                    files_skipped=skipped,
                    stage_s=dict(report.stage_s),
                )
            )

    progress(str(root))
    if candidates:
        _Writer(index, root, acl, report, progress, should_stop).run(candidates)
    if should_stop and should_stop():
        raise SyncStopped(report)
    if remove_missing:
        seen = {str(p) for p in files}
        for record in index.manifest.files_under(str(root)):
            if record.path not in seen:
                remove_path(index, record.path)
                report.results.append(FileResult(record.path, "removed"))
    report.seconds = time.monotonic() - started
    return report


class _Writer:
    """Consumes prepared files in order: links them, or batches their embeddings across files
    and swaps the whole batch in with one store flush."""

    def __init__(
        self,
        index: Index,
        root: Path,
        acl: tuple[str, ...],
        report: IngestReport,
        progress: Callable[[str], None],
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.index, self.root, self.acl = index, root, acl
        self.report, self.progress = report, progress
        self.should_stop = should_stop or (lambda: False)
        self.pending: list[_Prepared] = []
        self.pending_since = 0.0
        self.pending_chunks = 0

    def run(self, candidates: list[_Candidate]) -> None:
        handoff = _Handoff(_QUEUE_FILES, _QUEUE_CHUNKS)
        stop = threading.Event()
        known_docs = self.index.manifest.document_ids()
        worker = threading.Thread(
            target=_parse_ahead,
            args=(candidates, self.root, self.acl, self.index, known_docs, handoff, stop),
            name="kura-parse",
            daemon=True,
        )
        worker.start()
        try:
            while True:
                try:
                    # Wait for the parser, but not so long that parsed files sit unembedded.
                    wait = max(0.0, self.pending_since + MAX_BATCH_WAIT_S - time.monotonic())
                    if self.pending_chunks >= EAGER_FLUSH_CHUNKS:
                        wait = 0.0
                    waited = time.monotonic()
                    try:
                        item = handoff.get(timeout=wait) if self.pending else handoff.get()
                    finally:
                        self.report.writer_wait_s += time.monotonic() - waited
                except queue.Empty:
                    self._flush()
                    continue
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                if self.should_stop():  # files not yet swapped in stay as they were
                    raise SyncStopped(self.report)
                self._take(item)
            if self.should_stop():
                raise SyncStopped(self.report)
            self._flush()
        finally:
            stop.set()
            worker.join(timeout=30)

    def _take(self, item: _Prepared) -> None:
        for stage, seconds in item.stage_s.items():
            self.report.stage_s[stage] += seconds
        if item.failure is not None:
            self._done(item.failure)
        elif item.pieces is not None:
            self._add(item)
        else:
            self._link_or_parse(item)

    def _add(self, item: _Prepared) -> None:
        if not self.pending:
            self.pending_since = time.monotonic()
        self.pending.append(item)
        self.pending_chunks += len(item.pieces or ())
        if self.pending_chunks >= EMBED_BATCH or len(self.pending) >= MAX_BATCH_FILES:
            self._flush()

    def _link_or_parse(self, item: _Prepared) -> None:
        assert item.record is not None
        doc_id = item.record.doc_id
        if any(p.record is not None and p.record.doc_id == doc_id for p in self.pending):
            self._flush()  # the copy this file duplicates must be committed first
        if self.index.manifest.document(doc_id) is None:
            # The content was known when parsing began but a swap in this run replaced it.
            self._take(_parse_prepared(item, self.index))
            return
        previous = item.candidate.previous
        _link_path(self.index, item.record, previous.doc_id if previous else None)
        same = previous is not None and previous.doc_id == doc_id and previous.groups == self.acl
        self._done(FileResult(str(item.candidate.path), "unchanged" if same else "linked"))

    def _flush(self) -> None:
        batch, self.pending, self.pending_chunks = self.pending, [], 0
        if not batch:
            return
        texts = [piece.embedding_text() for p in batch for piece in p.pieces or ()]
        t0 = time.monotonic()
        vectors = embed_covered(self.index.embedder, texts)
        t1 = time.monotonic()
        encode = self.index.encode_sparse
        sparse = [encode(t) for t in texts] if encode else [None] * len(texts)
        t2 = time.monotonic()
        self.report.stage_s["embed"] += t1 - t0
        self.report.stage_s["sparse"] += t2 - t1
        results = _swap_in(batch, vectors, sparse, self.index)
        self.report.stage_s["upsert"] += time.monotonic() - t2
        for result in results:
            self._done(result)

    def _done(self, result: FileResult) -> None:
        self.report.results.append(result)
        if result.status == "failed":
            log.warning("%s: %s (%s)", result.path, result.reason, result.hint)
        self.progress(result.path)


class _Handoff:
    """Prepared files from the parse thread to the writer, in order, bounded by files and by
    queued chunks (one file is always let through, however big). `put` raises queue.Full and
    `get` queue.Empty on timeout, as queue.Queue does."""

    def __init__(self, max_files: int, max_chunks: int) -> None:
        self._max_files, self._max_chunks = max_files, max_chunks
        self._items: collections.deque[_Prepared | BaseException | None] = collections.deque()
        self._chunks = 0
        self._changed = threading.Condition()

    def put(self, item: _Prepared | BaseException | None, timeout: float) -> None:
        def room() -> bool:
            full = len(self._items) >= self._max_files or self._chunks >= self._max_chunks
            return not self._items or not full

        with self._changed:
            if not self._changed.wait_for(room, timeout):
                raise queue.Full
            self._items.append(item)
            self._chunks += _chunk_count(item)
            self._changed.notify_all()

    def get(self, timeout: float | None = None) -> _Prepared | BaseException | None:
        with self._changed:
            if not self._changed.wait_for(lambda: bool(self._items), timeout):
                raise queue.Empty
            item = self._items.popleft()
            self._chunks -= _chunk_count(item)
            self._changed.notify_all()
            return item


def _chunk_count(item: object) -> int:
    return len(item.pieces or ()) if isinstance(item, _Prepared) else 0


def embed_covered(embedder: Embedder, texts: Sequence[str]) -> list[list[float] | None]:
    """Dense vectors for the texts in a language the embedder covers, None for the others.

    The packaged MiniLM is English-only: on Japanese its vectors rank no better than chance
    (dense nDCG@10 0.27 on JSQuAD, BM25 0.94), and Japanese questions already skip the dense
    channel (retrieval/search.py). Those chunks are found by BM25 alone, and not embedding
    them saves about a third of the embedder's time on a mixed English/Japanese folder."""
    from models.embedder import covers

    keep = [i for i, text in enumerate(texts) if covers(embedder, text)]
    vectors: list[list[float] | None] = [None] * len(texts)
    for i, vector in zip(keep, embedder.embed_documents([texts[i] for i in keep]), strict=True):
        vectors[i] = vector
    return vectors


def _parse_ahead(
    candidates: list[_Candidate],
    root: Path,
    acl: tuple[str, ...],
    index: Index,
    known_docs: set[str],
    handoff: _Handoff,
    stop: threading.Event,
) -> None:
    """The parse thread: read + hash every candidate, parse + chunk content nobody has yet.
    Never touches the manifest or the store (the writer thread owns both)."""
    dispatched: set[str] = set()
    # Big syncs parse in a separate process (ingest/parse_pool.py), a few files ahead of the
    # hand-over; the items still go to the writer in folder order.
    in_process = parse_pool.worth_a_process(len(candidates), sum(c.size for c in candidates))
    ahead: collections.deque[tuple[_Prepared, Future | None]] = collections.deque()

    def hand_over(item: _Prepared | BaseException | None) -> bool:
        """Wait for room in the queue; False once the writer has stopped (error or Ctrl-C)."""
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def hand_over_oldest() -> bool:
        item, future = ahead.popleft()
        if future is not None:
            item = _with_outcome(item, parse_pool.outcome_of(future, item.candidate.path))
        return hand_over(item)

    try:
        for candidate in candidates:
            item = _read(candidate, root, acl, index)
            future = None
            if item.record is not None and item.failure is None:
                doc_id = item.record.doc_id
                if doc_id not in known_docs and doc_id not in dispatched:
                    dispatched.add(doc_id)
                    if in_process:
                        future = parse_pool.parse_in_process(
                            candidate.path, index.chunk_tokens, index.overlap_tokens
                        )
                    else:
                        item = _parse_prepared(item, index)
            ahead.append((item, future))
            if len(ahead) > _PARSE_AHEAD and not hand_over_oldest():
                return
        while ahead:
            if not hand_over_oldest():
                return
    except BaseException as exc:  # an internal bug: crash the sync loudly, in the writer's thread
        hand_over(exc)
        return
    finally:
        for _, future in ahead:  # stopped early: drop what the parse process has not begun
            if future is not None:
                future.cancel()
    hand_over(None)


def _read(candidate: _Candidate, root: Path, acl: tuple[str, ...], index: Index) -> _Prepared:
    item = _Prepared(candidate)
    t0 = time.monotonic()
    try:
        if candidate.size == 0:
            raise EmptyFile("the file is zero bytes")
        if candidate.size > index.max_file_bytes:
            raise FileTooLarge(
                f"{candidate.size / 1e6:.1f} MB > {index.max_file_bytes / 1e6:.0f} MB"
            )
        data = candidate.path.read_bytes()
    except IngestError as exc:
        item.failure = _failed(candidate.path, exc)
        return item
    except OSError as exc:
        item.failure = _failed(candidate.path, UnreadableFile(exc.strerror or str(exc)))
        return item
    doc_id = hashlib.sha256(data).hexdigest()
    # Size and mtime as stat saw them before the read: if the file changes meanwhile, the next
    # sync sees a different stat and reads it again.
    item.record = FileRecord(
        str(candidate.path), doc_id, candidate.size, candidate.mtime_ns, acl, str(root), now()
    )
    item.stage_s["read"] = time.monotonic() - t0
    return item


def _parse_prepared(item: _Prepared, index: Index) -> _Prepared:
    outcome = parse_pool.parse_and_chunk(item.candidate.path, index.chunk_tokens, index.overlap_tokens)
    return _with_outcome(item, outcome)


def _with_outcome(item: _Prepared, outcome: parse_pool.ParseOutcome) -> _Prepared:
    for stage, seconds in outcome.stage_s.items():
        item.stage_s[stage] = item.stage_s.get(stage, 0.0) + seconds
    if outcome.pieces is None:
        item.failure = FileResult(
            str(item.candidate.path), "failed", reason=outcome.reason, hint=outcome.hint
        )
    else:
        item.pieces, item.pages = outcome.pieces, outcome.pages
    return item


def _failed(path: Path, exc: IngestError) -> FileResult:
    return FileResult(str(path), "failed", reason=str(exc), hint=exc.hint)


# --- swaps, links and removals: each leaves a journal row or a dirty mark until the store follows
def _swap_in(
    batch: list[_Prepared], vectors: list[list[float] | None], sparse: list, index: Index
) -> list[FileResult]:
    """Stage the new chunks of every file in `batch`, journal the swaps, then un-stage them and
    drop what they replace. Vectors are in batch order, file after file."""
    results: list[FileResult] = []
    stored: list[StoredChunk] = []
    swaps: list[tuple[str, dict]] = []
    offset = 0
    for item in batch:
        record, pieces, path = item.record, item.pieces or [], item.candidate.path
        assert record is not None
        n = len(pieces)
        chunk_vectors, chunk_sparse = vectors[offset : offset + n], sparse[offset : offset + n]
        offset += n
        previous = item.candidate.previous.doc_id if item.candidate.previous else None
        if index.manifest.document(record.doc_id) is not None:  # a copy committed meanwhile
            _link_path(index, record, previous)
            results.append(FileResult(str(path), "linked"))
            continue
        groups = sorted(set(record.groups))
        stored.extend(_stored_chunks(pieces, chunk_vectors, chunk_sparse, path, record, groups))
        document = DocumentRecord(
            record.doc_id,
            path.name,
            path.suffix.lower().lstrip("."),
            record.size,
            n,
            item.pages,
            now(),
        )
        replaces: list[str] = []
        if previous and previous != record.doc_id and _last_path_of(index, previous, record.path):
            replaces = [previous]
        swap = {
            "file": record.__dict__,
            "document": document.__dict__,
            "replaces": replaces,
            "previous": previous,
        }
        swaps.append((record.doc_id, swap))
        results.append(FileResult(str(path), "ingested", chunks=n, pages=item.pages))
    if swaps:
        index.store.upsert(stored)
        index.manifest.begin_swaps(swaps)
        _finish_swaps(index, swaps)
    return results


def _finish_swaps(index: Index, swaps: list[tuple[str, dict]], verify: bool = False) -> None:
    """Idempotent: un-stage the new chunks, drop replaced documents, record the new state.

    `verify` (on recovery): if the store lost staged chunks the journal promised (power loss
    before the store's WAL reached the disk), forget the file instead of recording a document
    with missing chunks; the next sync ingests it again."""
    index.store.commit_documents([(doc_id, swap["replaces"]) for doc_id, swap in swaps])
    to_settle: set[str] = set()
    with index.manifest.transaction() as db:
        for doc_id, swap in swaps:
            file = FileRecord(**{**swap["file"], "groups": tuple(swap["file"]["groups"])})
            document = DocumentRecord(**swap["document"])
            previous = swap.get("previous")
            stored = len(index.store.chunks_of(doc_id, ALL_GROUPS)) if verify else None
            for old in swap["replaces"]:
                Manifest.drop_document(db, old)
            if stored is None or stored == document.chunk_count:
                Manifest.put_document(db, document)
                Manifest.put_file(db, file)
            else:
                log.warning(
                    "the store lost chunks of %s in a crash; %s will be ingested again",
                    doc_id,
                    file.path,
                )
                Manifest.drop_file(db, file.path)
                Manifest.mark_dirty(db, doc_id)
                to_settle.add(doc_id)
            if previous and previous not in swap["replaces"]:
                Manifest.mark_dirty(db, previous)  # it lost this path: its payload must follow
                to_settle.add(previous)
            Manifest.end_swap(db, doc_id)
    for doc_id in sorted(to_settle):
        _settle(index, doc_id)


def _stored_chunks(
    pieces: list[ChunkPiece],
    vectors: list[list[float] | None],
    sparse: list,
    path: Path,
    record: FileRecord,
    groups: list[str],
) -> list[StoredChunk]:
    stored = []
    for position, (piece, vector, sparse_vec) in enumerate(
        zip(pieces, vectors, sparse, strict=True)
    ):
        payload = {
            "doc_id": record.doc_id,
            "chunk_index": position,
            "text": piece.text,
            "heading_path": list(piece.heading_path),
            "page": piece.page,
            "page_end": piece.page_end,
            "kind": piece.kind,
            "source_path": record.path,
            "paths": [record.path],
            "title": path.name,
            "file_type": path.suffix.lower().lstrip("."),
            "acl_groups": groups,
            "staged": True,
        }
        point_id = str(uuid.uuid5(_POINT_NAMESPACE, f"{record.doc_id}:{position}"))
        stored.append(StoredChunk(point_id, vector, sparse_vec, payload))
    return stored


def _last_path_of(index: Index, doc_id: str, leaving: str) -> bool:
    return all(f.path == leaving for f in index.manifest.files_of(doc_id))


def _link_path(index: Index, record: FileRecord, previous: str | None) -> None:
    """Point `record.path` at an existing document (rename, move, duplicate content, new groups)."""
    with index.manifest.transaction() as db:
        Manifest.put_file(db, record)
        Manifest.mark_dirty(db, record.doc_id)
        if previous and previous != record.doc_id:
            Manifest.mark_dirty(db, previous)
    _settle(index, record.doc_id)
    if previous and previous != record.doc_id:
        _settle(index, previous)


def remove_path(index: Index, path: str) -> None:
    known = index.manifest.file(path)
    if known is None:
        return
    with index.manifest.transaction() as db:
        Manifest.drop_file(db, path)
        Manifest.mark_dirty(db, known.doc_id)
    _settle(index, known.doc_id)


def _settle(index: Index, doc_id: str) -> None:
    """Make the store follow the manifest for one document, then clear its dirty mark:
    refresh its paths and groups, or delete it when no path holds it any more. Idempotent."""
    files = index.manifest.files_of(doc_id)
    if files:
        # The first path (sorted) names the document, as in a clean run: a rename renames it.
        groups = sorted({g for f in files for g in f.groups})
        first = Path(files[0].path)
        index.store.set_document_payload(
            doc_id,
            {
                "paths": [f.path for f in files],
                "source_path": str(first),
                "title": first.name,
                "acl_groups": groups,
            },
        )
        with index.manifest.transaction() as db:
            document = index.manifest.document(doc_id)
            if document is not None and document.title != first.name:
                Manifest.put_document(db, replace(document, title=first.name))
            Manifest.clear_dirty(db, doc_id)
        return
    index.store.delete_documents([doc_id])
    with index.manifest.transaction() as db:
        Manifest.drop_document(db, doc_id)
        Manifest.clear_dirty(db, doc_id)


def set_groups(index: Index, paths: Iterable[str], groups: Sequence[str]) -> int:
    """Change who may read the given paths, without re-embedding. Returns how many changed."""
    changed = 0
    docs: set[str] = set()
    acl = tuple(sorted(set(groups)))
    with index.manifest.transaction() as db:
        for path in paths:
            known = index.manifest.file(path)
            if known is None:
                continue
            Manifest.put_file(db, FileRecord(**{**known.__dict__, "groups": acl}))
            Manifest.mark_dirty(db, known.doc_id)
            docs.add(known.doc_id)
            changed += 1
    for doc_id in docs:
        _settle(index, doc_id)
    return changed
