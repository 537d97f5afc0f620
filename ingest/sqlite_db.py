"""One sqlite connection shared by threads behind one re-entrant lock: how the manifest and the
job queue keep their files (why one connection and not one per thread: see ingest/manifest.py)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def open_shared(path: Path, schema: str, synchronous: str) -> tuple[sqlite3.Connection, threading.RLock]:
    """The connection (WAL, autocommit, 30 s busy timeout) with `schema` applied, and its lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.executescript(schema)
    return db, threading.RLock()


@contextmanager
def transaction(db: sqlite3.Connection, lock: threading.RLock) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT under the lock; ROLLBACK on any exception."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
