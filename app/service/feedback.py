"""What employees said about answers (helpful / not helpful), kept for the admin in the data dir.

Usage:
    book = FeedbackBook(settings.data_dir / "feedback.sqlite3")
    book.add("alice", "How many days of leave?", "Twenty [1].", helpful=True, cited=["hr.pdf p.3"])
    recent = book.recent(limit=100)

Threads: the UI shares one book among every browser session, so its one connection is guarded
by one lock (every statement is a single short row read or write), with a 30 s busy timeout
against other processes. One lock rather than a connection per thread: Streamlit runs each page
in a short-lived thread, which would leave a connection behind per page run.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from base.sqlite_state import open_state

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    user TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    helpful INTEGER NOT NULL,
    cited TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT ''
);
"""


@dataclass(frozen=True)
class Feedback:
    id: int
    at: float
    user: str
    question: str
    answer: str
    helpful: bool
    cited: tuple[str, ...]
    comment: str


class FeedbackBook:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_state(path, _SCHEMA)

    def add(
        self,
        user: str,
        question: str,
        answer: str,
        helpful: bool,
        cited: Sequence[str] = (),
        comment: str = "",
    ) -> int:
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO feedback (at, user, question, answer, helpful, cited, comment)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    time.time(),
                    user,
                    question,
                    answer,
                    int(helpful),
                    json.dumps(list(cited), ensure_ascii=False),
                    comment,
                ),
            )
            return int(cursor.lastrowid or 0)

    def recent(self, limit: int = 200) -> list[Feedback]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, at, user, question, answer, helpful, cited, comment FROM feedback"
                " ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            Feedback(r[0], r[1], r[2], r[3], r[4], bool(r[5]), tuple(json.loads(r[6])), r[7])
            for r in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()
