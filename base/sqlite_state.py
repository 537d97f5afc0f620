"""How kura keeps its state in SQLite files under the data directory (manifest, job queue,
accounts, API keys, feedback): one connection per file, shared by the process's threads behind
a lock, in WAL mode (readers never wait for a writer; other processes may open the file too),
autocommit, and a 30 s busy timeout (why one connection and not one per thread: see
ingest/manifest.py).

Usage:
    db = open_state(data_dir / "api_keys.sqlite3", SCHEMA)
    db, lock = open_shared(data_dir / "jobs.sqlite3", SCHEMA, synchronous="FULL")
    with transaction(db, lock): db.execute("INSERT ...")
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def open_state(path: Path, schema: str, synchronous: str = "FULL") -> sqlite3.Connection:
    """The file's connection (WAL, autocommit, 30 s busy timeout, usable from any thread) with
    `schema` applied; the caller serialises its use with a lock of its own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.executescript(schema)
    return db


def open_shared(path: Path, schema: str, synchronous: str) -> tuple[sqlite3.Connection, threading.RLock]:
    """The connection (see open_state) and the re-entrant lock its transactions take."""
    return open_state(path, schema, synchronous), threading.RLock()


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
