"""Folder sync: bring the index in line with a folder, file by file, never stopping on one bad file.

For each file: unchanged (same size and mtime as the manifest says) → skipped without reading;
same content as a document kura already has (a rename, a move, a copy) → the path is added to
that document, no re-embedding; new content → parse, chunk, embed, stage, swap. Files gone from
the folder are dropped from the index. Each outcome is one `FileResult` in the `IngestReport`.

Usage:
    report = sync_folder(Path("/srv/docs/hr"), groups=("hr",), index=index, on_progress=print)
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ingest.chunk import ChunkPiece, chunk_blocks
from ingest.errors import EmptyFile, FileTooLarge, IngestError, UnreadableFile
from ingest.manifest import DocumentRecord, FileRecord, Manifest, now
from ingest.parse import parse_file
from models.embedder import Embedder
from retrieval.store import ChunkStore, SparseVec, StoredChunk

log = logging.getLogger(__name__)

_POINT_NAMESPACE = uuid.UUID("6f1c9a52-6b1e-4d0e-9a43-6b75726100aa")


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

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def failures(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def chunks(self) -> int:
        return sum(r.chunks for r in self.results)

    @property
    def nothing_ingested(self) -> bool:
        """True when every file failed: the only case `kura ingest` exits non-zero."""
        return bool(self.results) and all(r.status == "failed" for r in self.results)


@dataclass(frozen=True)
class IngestProgress:
    """One event per finished file; the CLI renders it as a bar, the UI as st.progress."""

    files_done: int
    files_total: int
    chunks: int
    current: str
    elapsed_s: float

    @property
    def rate_files_per_s(self) -> float:
        return self.files_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

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
    """Every regular file under `root` (or `root` itself), symlink loops and hidden files skipped."""
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
    """Finish swaps a crash interrupted, then drop staged chunks nobody committed."""
    pending = index.manifest.pending_swaps()
    for doc_id, record in pending:
        _finish_swap(index, doc_id, record)
    index.store.delete_staged()
    return len(pending)


def sync_folder(
    root: Path,
    groups: Sequence[str],
    index: Index,
    on_progress: Callable[[IngestProgress], None] | None = None,
    remove_missing: bool = True,
) -> IngestReport:
    root = root.resolve()
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist")
    recover(index)
    started = time.monotonic()
    report = IngestReport(root=str(root))
    files = list_files(root)
    seen: set[str] = set()
    for position, path in enumerate(files, start=1):
        seen.add(str(path))
        result = _sync_file(path, root, tuple(sorted(set(groups))), index)
        report.results.append(result)
        if result.status == "failed":
            log.warning("%s: %s (%s)", path, result.reason, result.hint)
        if on_progress:
            on_progress(IngestProgress(position, len(files), report.chunks, str(path), time.monotonic() - started))
    if remove_missing:
        for record in index.manifest.files_under(str(root)):
            if record.path not in seen:
                remove_path(index, record.path)
                report.results.append(FileResult(record.path, "removed"))
    report.seconds = time.monotonic() - started
    return report


def _sync_file(path: Path, root: Path, groups: tuple[str, ...], index: Index) -> FileResult:
    try:
        stat = path.stat()
        known = index.manifest.file(str(path))
        if known and known.size == stat.st_size and known.mtime_ns == stat.st_mtime_ns and known.groups == groups:
            return FileResult(str(path), "unchanged")
        if stat.st_size == 0:
            raise EmptyFile("the file is zero bytes")
        if stat.st_size > index.max_file_bytes:
            raise FileTooLarge(f"{stat.st_size / 1e6:.1f} MB > {index.max_file_bytes / 1e6:.0f} MB")
        data = path.read_bytes()
    except IngestError as exc:
        return FileResult(str(path), "failed", reason=str(exc), hint=exc.hint)
    except OSError as exc:
        err = UnreadableFile(exc.strerror or str(exc))
        return FileResult(str(path), "failed", reason=str(err), hint=err.hint)

    doc_id = hashlib.sha256(data).hexdigest()
    record = FileRecord(str(path), doc_id, stat.st_size, stat.st_mtime_ns, groups, str(root), now())
    previous = known.doc_id if known else None
    if index.manifest.document(doc_id) is not None:
        _link_path(index, record, previous)
        return FileResult(str(path), "linked")
    try:
        return _ingest_new(path, record, previous, index)
    except IngestError as exc:
        return FileResult(str(path), "failed", reason=str(exc), hint=exc.hint)


def _ingest_new(path: Path, record: FileRecord, previous: str | None, index: Index) -> FileResult:
    parsed = parse_file(path)
    pieces = chunk_blocks(parsed.blocks, index.chunk_tokens, index.overlap_tokens)
    if not pieces:
        raise EmptyFile()
    groups = sorted(set(record.groups) | set(index.manifest.groups_of(record.doc_id)))
    stored = _embed(pieces, path, record, groups, index)
    index.store.upsert(stored)
    document = DocumentRecord(
        record.doc_id, path.name, path.suffix.lower().lstrip("."), record.size, len(pieces), parsed.page_count, now()
    )
    replaces = [previous] if previous and _last_path_of(index, previous, record.path) else []
    swap = {"file": record.__dict__, "document": document.__dict__, "replaces": replaces}
    index.manifest.begin_swap(record.doc_id, swap)
    _finish_swap(index, record.doc_id, swap)
    return FileResult(str(path), "ingested", chunks=len(pieces), pages=parsed.page_count)


def _finish_swap(index: Index, doc_id: str, swap: dict) -> None:
    """Idempotent: un-stage the new chunks, drop replaced documents, record the new state."""
    index.store.commit_document(doc_id, swap["replaces"])
    file = FileRecord(**{**swap["file"], "groups": tuple(swap["file"]["groups"])})
    with index.manifest.transaction() as db:
        for old in swap["replaces"]:
            Manifest.drop_document(db, old)
        Manifest.put_document(db, DocumentRecord(**swap["document"]))
        Manifest.put_file(db, file)
        Manifest.end_swap(db, doc_id)


def _embed(pieces: list[ChunkPiece], path: Path, record: FileRecord, groups: list[str], index: Index) -> list[StoredChunk]:
    texts = [p.embedding_text() for p in pieces]
    vectors = index.embedder.embed_documents(texts)
    stored = []
    for position, (piece, text, vector) in enumerate(zip(pieces, texts, vectors, strict=True)):
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
        sparse = index.encode_sparse(text) if index.encode_sparse else None
        point_id = str(uuid.uuid5(_POINT_NAMESPACE, f"{record.doc_id}:{position}"))
        stored.append(StoredChunk(point_id, vector, sparse, payload))
    return stored


def _last_path_of(index: Index, doc_id: str, leaving: str) -> bool:
    return all(f.path == leaving for f in index.manifest.files_of(doc_id))


def _link_path(index: Index, record: FileRecord, previous: str | None) -> None:
    """Point `record.path` at an existing document (rename, move or duplicate content)."""
    with index.manifest.transaction() as db:
        Manifest.put_file(db, record)
    _refresh_document_payload(index, record.doc_id)
    if previous and previous != record.doc_id:
        _release(index, previous)


def remove_path(index: Index, path: str) -> None:
    known = index.manifest.file(path)
    if known is None:
        return
    with index.manifest.transaction() as db:
        Manifest.drop_file(db, path)
    _release(index, known.doc_id)


def _release(index: Index, doc_id: str) -> None:
    """Drop a document no path holds any more; otherwise refresh its paths and groups."""
    if index.manifest.files_of(doc_id):
        _refresh_document_payload(index, doc_id)
        return
    index.store.delete_documents([doc_id])
    with index.manifest.transaction() as db:
        Manifest.drop_document(db, doc_id)


def _refresh_document_payload(index: Index, doc_id: str) -> None:
    files = index.manifest.files_of(doc_id)
    if not files:
        return
    index.store.set_document_payload(
        doc_id,
        {"paths": [f.path for f in files], "source_path": files[0].path, "acl_groups": index.manifest.groups_of(doc_id)},
    )


def set_groups(index: Index, paths: Iterable[str], groups: Sequence[str]) -> int:
    """Change who may read the given paths, without re-embedding. Returns how many changed."""
    changed = 0
    docs: set[str] = set()
    for path in paths:
        known = index.manifest.file(path)
        if known is None:
            continue
        with index.manifest.transaction() as db:
            Manifest.put_file(db, FileRecord(**{**known.__dict__, "groups": tuple(sorted(set(groups)))}))
        docs.add(known.doc_id)
        changed += 1
    for doc_id in docs:
        _refresh_document_payload(index, doc_id)
    return changed
