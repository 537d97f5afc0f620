"""The manifest: which file paths kura has ingested, as which documents, readable by whom.

A *document* is a unique file content (doc_id = sha256 of the bytes); a *path* points at one.
So a renamed or copied file is a new path to an existing document: no re-embedding.

The manifest is the truth; the store follows it. Two tables make that crash-safe:
- `journal`: before the store un-stages a new version, the swap is written here; after the
  store has done it, the row is removed in the same transaction that records the new state.
  `pending_swaps()` on startup lists swaps to replay.
- `dirty`: every transaction that changes which paths hold a document marks that document
  dirty in the same transaction; the mark is cleared once the store's payload (paths, ACL
  groups) follows, or the document is dropped because no path holds it any more.
  `dirty_documents()` on startup lists documents to bring in line again.

Threads: one connection guarded by one re-entrant lock, held for a whole transaction, with a
30 s busy timeout against other processes (`kura docs` beside a server). Chosen over one
connection per thread because reads inside a transaction (the writer's `_settle`) must see its
own uncommitted rows, and because Streamlit runs each page in a short-lived thread, which
would leave a connection behind per page run. Only the one ingest writer (app/service/jobs.py)
opens transactions, and each is a few row writes, so a reader waits milliseconds at most.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path

from base.paths import RootMoves, moved_path
from base.sqlite_state import open_shared, transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    groups TEXT NOT NULL,
    root TEXT NOT NULL,
    ingested_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_doc ON files(doc_id);
CREATE INDEX IF NOT EXISTS files_root ON files(root);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    file_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    chunk_count INTEGER NOT NULL,
    page_count INTEGER NOT NULL,
    ingested_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    doc_id TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dirty (
    doc_id TEXT PRIMARY KEY
);
"""


@dataclass(frozen=True)
class FileRecord:
    path: str
    doc_id: str
    size: int
    mtime_ns: int
    groups: tuple[str, ...]
    root: str
    ingested_at: float


@dataclass(frozen=True)
class DocumentRecord:
    doc_id: str
    title: str
    file_type: str
    size: int
    chunk_count: int
    page_count: int
    ingested_at: float


class Manifest:
    def __init__(self, path: Path) -> None:
        self._db, self._lock = open_shared(path, _SCHEMA, "FULL")

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db, self._lock)

    def _rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # --- files -------------------------------------------------------------------------
    def file(self, path: str) -> FileRecord | None:
        rows = self._rows("SELECT * FROM files WHERE path = ?", (path,))
        return _file(rows[0]) if rows else None

    def files_under(self, root: str) -> list[FileRecord]:
        return [
            _file(r)
            for r in self._rows("SELECT * FROM files WHERE root = ? ORDER BY path", (root,))
        ]

    def files_of(self, doc_id: str) -> list[FileRecord]:
        return [
            _file(r)
            for r in self._rows("SELECT * FROM files WHERE doc_id = ? ORDER BY path", (doc_id,))
        ]

    def files_by_path(self, root: str) -> dict[str, FileRecord]:
        """Every file recorded under `root`, by path: one query, so a re-sync only stats files."""
        return {r.path: r for r in self.files_under(root)}

    def all_files(self) -> list[FileRecord]:
        return [_file(r) for r in self._rows("SELECT * FROM files ORDER BY path")]

    @staticmethod
    def put_file(db: sqlite3.Connection, record: FileRecord) -> None:
        db.execute(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                record.path,
                record.doc_id,
                record.size,
                record.mtime_ns,
                json.dumps(list(record.groups)),
                record.root,
                record.ingested_at,
            ),
        )

    @staticmethod
    def drop_file(db: sqlite3.Connection, path: str) -> None:
        db.execute("DELETE FROM files WHERE path = ?", (path,))

    # --- documents ---------------------------------------------------------------------
    def document(self, doc_id: str) -> DocumentRecord | None:
        rows = self._rows("SELECT * FROM documents WHERE doc_id = ?", (doc_id,))
        return DocumentRecord(*rows[0]) if rows else None

    def document_ids(self) -> set[str]:
        return {r[0] for r in self._rows("SELECT doc_id FROM documents")}

    def documents(self) -> list[DocumentRecord]:
        return [
            DocumentRecord(*r) for r in self._rows("SELECT * FROM documents ORDER BY title")
        ]

    @staticmethod
    def put_document(db: sqlite3.Connection, record: DocumentRecord) -> None:
        db.execute(
            "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                record.doc_id,
                record.title,
                record.file_type,
                record.size,
                record.chunk_count,
                record.page_count,
                record.ingested_at,
            ),
        )

    @staticmethod
    def drop_document(db: sqlite3.Connection, doc_id: str) -> None:
        db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))

    def groups_of(self, doc_id: str) -> list[str]:
        """A document is readable by the union of the groups of every path that holds it."""
        groups: set[str] = set()
        for record in self.files_of(doc_id):
            groups.update(record.groups)
        return sorted(groups)

    # --- journal -----------------------------------------------------------------------
    def begin_swap(self, doc_id: str, record: dict) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO journal VALUES (?, ?)", (doc_id, json.dumps(record)))

    def begin_swaps(self, swaps: list[tuple[str, dict]]) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO journal VALUES (?, ?)",
                [(doc_id, json.dumps(record)) for doc_id, record in swaps],
            )

    def pending_swaps(self) -> list[tuple[str, dict]]:
        return [
            (d, json.loads(r)) for d, r in self._rows("SELECT doc_id, record FROM journal")
        ]

    @staticmethod
    def end_swap(db: sqlite3.Connection, doc_id: str) -> None:
        db.execute("DELETE FROM journal WHERE doc_id = ?", (doc_id,))

    # --- documents whose store payload may lag the manifest ------------------------------
    @staticmethod
    def mark_dirty(db: sqlite3.Connection, doc_id: str) -> None:
        db.execute("INSERT OR IGNORE INTO dirty VALUES (?)", (doc_id,))

    @staticmethod
    def clear_dirty(db: sqlite3.Connection, doc_id: str) -> None:
        db.execute("DELETE FROM dirty WHERE doc_id = ?", (doc_id,))

    def dirty_documents(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT doc_id FROM dirty ORDER BY doc_id")]

    # --- a restore onto another machine --------------------------------------------------
    def move_roots(self, moves: RootMoves) -> int:
        """Record every file under a moved root at its new path, in the files and in swaps a
        backup caught half done, and mark its document dirty: the store's payload (paths,
        source_path) follows at the next open (`recover`), with no re-embedding. Returns how
        many files moved."""
        moved = 0
        with self.transaction() as db:
            for record in self.all_files():
                path, root = moved_path(record.path, moves), moved_path(record.root, moves)
                if path is None and root is None:
                    continue
                Manifest.drop_file(db, record.path)
                Manifest.put_file(db, replace(record, path=path or record.path, root=root or record.root))
                Manifest.mark_dirty(db, record.doc_id)
                moved += 1
            for doc_id, swap in self.pending_swaps():
                file = swap["file"]
                file["path"] = moved_path(file["path"], moves) or file["path"]
                file["root"] = moved_path(file["root"], moves) or file["root"]
                db.execute("UPDATE journal SET record = ? WHERE doc_id = ?", (json.dumps(swap), doc_id))
                Manifest.mark_dirty(db, doc_id)
        return moved

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _file(row: tuple) -> FileRecord:
    return FileRecord(row[0], row[1], row[2], row[3], tuple(json.loads(row[4])), row[5], row[6])


def now() -> float:
    return time.time()
