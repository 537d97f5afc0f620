"""The durable job queue: every change to the index (a folder sync, an ACL change, a delete) is
a row here before anything touches the store, and the watched folders that submit syncs on
their own. One SQLite file in the data directory (`jobs.sqlite3`), so a job survives `kill -9`
and any kura process on the machine (the UI, `kura ingest`, `kura jobs cancel`) can submit,
follow or cancel jobs that another process's writer runs.

A job moves queued → running → done | failed | cancelled. A cancel asked while it runs sets
`cancel_requested`; the writer stops between two files. Exactly one writer takes jobs: the
process holding `writer_lock()` (an exclusive flock on `jobs.lock`, released by the kernel when
that process dies, so a kill -9 never leaves a stale lock).

Threads: one connection per JobQueue guarded by one lock, with a 30 s busy timeout against other
processes. Every statement is short (no statement waits for the store or a model), so a reader
waits at most for one row write; a lock is simpler to reason about than one connection per
thread, and Streamlit's short-lived script threads would leak per-thread connections.

Usage:
    jobs = JobQueue(settings.data_dir / "jobs.sqlite3")
    job = jobs.submit("ingest", {"folder": "/srv/hr", "groups": ["hr"]}, by="ann")
    jobs.get(job.id).state   # "queued"
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from base.paths import RootMoves, moved_path
from base.sqlite_state import open_shared, transaction

JOBS_DB = "jobs.sqlite3"  # in the data directory, beside the manifest
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINAL_STATES = (DONE, FAILED, CANCELLED)
KINDS = ("ingest", "acl", "delete")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    submitted_by TEXT NOT NULL,
    roles TEXT NOT NULL DEFAULT '[]',
    submitted_at REAL NOT NULL,
    state TEXT NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL,
    progress TEXT NOT NULL DEFAULT '{}',
    report TEXT NOT NULL DEFAULT '{}',
    error TEXT NOT NULL DEFAULT '',
    error_type TEXT NOT NULL DEFAULT '',
    watched_id INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS watched_folders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    groups TEXT NOT NULL,
    every_s REAL NOT NULL,
    added_by TEXT NOT NULL,
    added_at REAL NOT NULL,
    next_run REAL NOT NULL,
    last_run REAL,
    last_job INTEGER
);
"""


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    params: dict[str, Any]
    submitted_by: str
    roles: tuple[str, ...]
    submitted_at: float
    state: str
    cancel_requested: bool
    attempts: int
    started_at: float | None
    finished_at: float | None
    progress: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    error_type: str = ""
    watched_id: int | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def shown_state(self) -> str:
        """What an admin sees: a running job asked to stop is 'cancelling'."""
        return "cancelling" if self.state in (QUEUED, RUNNING) and self.cancel_requested else self.state

    @property
    def target(self) -> str:
        """The folder, path or document the job works on, for lists."""
        p = self.params
        return str(p.get("folder") or p.get("target") or p.get("doc_id") or "")


@dataclass(frozen=True)
class WatchedFolder:
    id: int
    path: str
    groups: tuple[str, ...]
    every_s: float
    added_by: str
    added_at: float
    next_run: float
    last_run: float | None
    last_job: int | None


class JobQueue:
    def __init__(self, path: Path) -> None:
        self.path = path
        # WAL + NORMAL: every commit survives kill -9 (the requirement); a power cut may lose the
        # last few state changes, which the idempotent re-run of a job makes good.
        self._db, self._lock = open_shared(path, _SCHEMA, "NORMAL")

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db, self._lock)

    def _rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # --- jobs --------------------------------------------------------------------------
    def submit(
        self,
        kind: str,
        params: dict[str, Any],
        by: str,
        roles: tuple[str, ...] = (),
        watched_id: int | None = None,
    ) -> Job:
        if kind not in KINDS:
            raise ValueError(f"unknown job kind {kind!r}; one of {', '.join(KINDS)}")
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO jobs (kind, params, submitted_by, roles, submitted_at, state, watched_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (kind, json.dumps(params), by, json.dumps(sorted(roles)), time.time(), QUEUED, watched_id),
            )
            job_id = int(cursor.lastrowid or 0)
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: int) -> Job | None:
        rows = self._rows("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def list(self, limit: int = 200, states: tuple[str, ...] = ()) -> list[Job]:
        """Newest first."""
        if states:
            marks = ",".join("?" * len(states))
            rows = self._rows(f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY id DESC LIMIT ?", (*states, limit))
        else:
            rows = self._rows("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (limit,))
        return [_job(r) for r in rows]

    def next_queued(self) -> Job | None:
        rows = self._rows("SELECT * FROM jobs WHERE state = ? ORDER BY id LIMIT 1", (QUEUED,))
        return _job(rows[0]) if rows else None

    def start(self, job_id: int) -> Job:
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET state = ?, started_at = ?, attempts = attempts + 1, progress = '{}'"
                " WHERE id = ? AND state = ?",
                (RUNNING, time.time(), job_id, QUEUED),
            )
        job = self.get(job_id)
        assert job is not None
        return job

    def set_progress(self, job_id: int, progress: dict[str, Any]) -> None:
        with self._transaction() as db:
            db.execute("UPDATE jobs SET progress = ? WHERE id = ?", (json.dumps(progress), job_id))

    def finish(
        self, job_id: int, state: str, report: dict[str, Any], error: str = "", error_type: str = ""
    ) -> Job:
        assert state in FINAL_STATES
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET state = ?, finished_at = ?, report = ?, error = ?, error_type = ? WHERE id = ?",
                (state, time.time(), json.dumps(report), error, error_type, job_id),
            )
        job = self.get(job_id)
        assert job is not None
        return job

    def requeue(self, job_id: int) -> None:
        """An interrupted job goes back to the head of the line (its id keeps its place)."""
        with self._transaction() as db:
            db.execute("UPDATE jobs SET state = ?, progress = '{}' WHERE id = ?", (QUEUED, job_id))

    def request_cancel(self, job_id: int) -> Job | None:
        """Ask a queued or running job to stop; a queued one is cancelled by the writer when
        it reaches it (one place decides, so a job cannot be both started and cancelled)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state IN (?, ?)",
                (job_id, QUEUED, RUNNING),
            )
        return self.get(job_id)

    def cancel_requested(self, job_id: int) -> bool:
        rows = self._rows("SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,))
        return bool(rows and rows[0][0])

    def unfinished(self) -> list[Job]:
        return [_job(r) for r in self._rows("SELECT * FROM jobs WHERE state IN (?, ?) ORDER BY id", (QUEUED, RUNNING))]

    def move_roots(self, moves: RootMoves) -> int:
        """Point watched folders and unfinished jobs at their folders' new roots (a restore onto
        another machine); finished jobs keep the paths they worked on. Returns how many changed."""
        changed = 0
        with self._transaction() as db:
            for row in db.execute("SELECT id, path FROM watched_folders").fetchall():
                if (path := moved_path(row[1], moves)) is not None:
                    db.execute("UPDATE watched_folders SET path = ? WHERE id = ?", (path, row[0]))
                    changed += 1
            for job in self.unfinished():
                params = dict(job.params)
                for key in ("folder", "target", "path"):  # what an ingest or an ACL job names
                    if isinstance(params.get(key), str) and (path := moved_path(params[key], moves)):
                        params[key] = path
                if params != job.params:
                    db.execute("UPDATE jobs SET params = ? WHERE id = ?", (json.dumps(params), job.id))
                    changed += 1
        return changed

    # --- watched folders ---------------------------------------------------------------
    def watch(self, path: str, groups: tuple[str, ...], every_s: float, by: str) -> WatchedFolder:
        if every_s <= 0:
            raise ValueError("the interval must be positive, e.g. --every 15m")
        now = time.time()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO watched_folders (path, groups, every_s, added_by, added_at, next_run)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET"
                " groups = excluded.groups, every_s = excluded.every_s, next_run = excluded.next_run",
                (path, json.dumps(sorted(set(groups))), every_s, by, now, now),
            )
        folder = self.watched_folder(path)
        assert folder is not None
        return folder

    def unwatch(self, path: str) -> bool:
        with self._transaction() as db:
            return db.execute("DELETE FROM watched_folders WHERE path = ?", (path,)).rowcount > 0

    def watched_folder(self, path: str) -> WatchedFolder | None:
        rows = self._rows("SELECT * FROM watched_folders WHERE path = ?", (path,))
        return _watched(rows[0]) if rows else None

    def watched(self) -> list[WatchedFolder]:
        return [_watched(r) for r in self._rows("SELECT * FROM watched_folders ORDER BY path")]

    def due_folders(self, now: float) -> list[WatchedFolder]:
        rows = self._rows("SELECT * FROM watched_folders WHERE next_run <= ? ORDER BY id", (now,))
        return [_watched(r) for r in rows]

    def mark_run(self, folder_id: int, job_id: int, next_run: float) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE watched_folders SET last_run = ?, last_job = ?, next_run = ? WHERE id = ?",
                (time.time(), job_id, next_run, folder_id),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _job(row: tuple) -> Job:
    return Job(
        id=row[0],
        kind=row[1],
        params=json.loads(row[2]),
        submitted_by=row[3],
        roles=tuple(json.loads(row[4])),
        submitted_at=row[5],
        state=row[6],
        cancel_requested=bool(row[7]),
        attempts=row[8],
        started_at=row[9],
        finished_at=row[10],
        progress=json.loads(row[11]),
        report=json.loads(row[12]),
        error=row[13],
        error_type=row[14],
        watched_id=row[15],
    )


def _watched(row: tuple) -> WatchedFolder:
    return WatchedFolder(row[0], row[1], tuple(json.loads(row[2])), row[3], row[4], row[5], row[6], row[7], row[8])


def parse_interval(text: str) -> float:
    """'15m' → 900.0; accepts s, m, h, d suffixes or plain seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    try:
        if value and value[-1] in units:
            seconds = float(value[:-1]) * units[value[-1]]
        else:
            seconds = float(value)
    except ValueError:
        raise ValueError(f"interval {text!r} is not valid: write e.g. 30s, 15m, 2h or 1d") from None
    if seconds <= 0:
        raise ValueError(f"interval {text!r} must be positive: write e.g. 30s, 15m, 2h or 1d")
    return seconds


class WriterLock:
    """The one-writer rule across processes: an exclusive flock on `jobs.lock` in the data dir.
    The kernel drops it when the holder exits or is killed, so it is never stale."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None

    def acquire(self) -> bool:
        """Non-blocking: True if this process now holds the lock."""
        if self._file is not None:
            return True
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    @property
    def held(self) -> bool:
        return self._file is not None

    def held_elsewhere(self) -> bool:
        """Whether another process holds it now (a writer that will run queued jobs)."""
        if self._file is not None:
            return False
        if self.acquire():
            self.release()
            return False
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
