"""Saved conversations on disk: `conversations.sqlite3` in the data directory. Each
conversation has a random id, an owner, a title (the first question, editable) and its turns
(the question, everything the reader was shown, the verdict and the citations by chunk id);
SQLite FTS5 indexes pre-tokenised text with document search's own analyzers
(retrieval/sparse.py: English stems, Japanese Sudachi words plus character bigrams), so a
Japanese word is found inside an answer although Japanese has no spaces.

This file knows nothing of who may read what: the use case (app/service/conversations.py) checks
the owner and re-checks every citation with the reader's current groups before anything is shown.

Usage:
    store = ConversationStore(data_dir / "conversations.sqlite3", SparseEncoder())
    store.add_turn(store.new_id(), "alice", turn)           # creates the conversation on its first turn
    hits = store.search("alice", "有給休暇", limit=50)       # titles, questions, answers; best first

Deleting overwrites: `secure_delete` zeroes freed pages, the full-text index is merged so no
deleted word stays in an old segment, and the write-ahead log is truncated. One connection,
one lock, as every SQLite state file of kura (base/sqlite_state.py).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.service.answer import Answer
from base.cjk import JAPANESE
from base.sqlite_state import open_state
from retrieval.context import ContextPassage
from retrieval.sparse import SparseEncoder

TITLE_CHARS = 200
UNAVAILABLE = "unavailable"  # a reopened turn's verdict when a passage it was given is no longer readable
_ID = re.compile(r"^[0-9a-f]{32}$")
_JA_RUN = re.compile(f"[{JAPANESE}]+")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    turns INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS conversations_by_owner ON conversations(owner, updated DESC);
CREATE INDEX IF NOT EXISTS conversations_by_updated ON conversations(updated);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation TEXT NOT NULL,
    at REAL NOT NULL,
    question TEXT NOT NULL,
    standalone TEXT,
    shown_text TEXT NOT NULL,
    verdict TEXT NOT NULL,
    supported INTEGER NOT NULL,
    statement TEXT NOT NULL,
    quotes TEXT NOT NULL,
    generated TEXT,
    withheld TEXT,
    citations TEXT NOT NULL,
    scope TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_by_conversation ON turns(conversation, id);
CREATE VIRTUAL TABLE IF NOT EXISTS turns_fts USING fts5(who, question, answer);
CREATE VIRTUAL TABLE IF NOT EXISTS titles_fts USING fts5(who, title);
"""


class ConversationNotFound(LookupError):
    """No conversation with this id among the caller's: the same answer whether it does not
    exist or belongs to someone else, so ids cannot be probed."""

    def __init__(self, conversation_id: str) -> None:
        super().__init__(
            f"no conversation {conversation_id[:40]!r} among yours; list yours with "
            "`kura conversations list` or GET /api/v1/conversations"
        )


@dataclass(frozen=True)
class SavedCitation:
    """A passage a turn's answer was given, by id: its text is fetched again when reopened."""

    number: int
    chunk_ids: tuple[str, ...]
    doc_id: str
    location: str  # the display path (and page) when it was asked
    page: int | None
    cited: bool  # among the passages the shown answer cites (else related reading)


@dataclass(frozen=True)
class SavedTurn:
    question: str
    shown_text: str
    verdict: str
    supported: bool
    statement: str
    quotes: tuple[tuple[str, int], ...]
    generated: str | None
    withheld: str | None
    citations: tuple[SavedCitation, ...]
    scope: str  # "reader": asked with the asker's groups; "admin": an admin's ask over every document
    at: float
    standalone: str | None = None
    id: int = 0

    @property
    def answer_words(self) -> str:
        """The answer's own words (the quotes and the checked generated answer), without the
        boilerplate statement every answer starts with: what search looks in."""
        return "\n".join([*(text for text, _ in self.quotes), self.generated or ""])


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    title: str
    created: float
    updated: float
    turns: int


@dataclass(frozen=True)
class ReopenedTurn:
    """One saved turn as its owner may see it now. Same reading methods as an Answer
    (statement, quote_lines, sources, also_retrieved), so every door shows both alike."""

    question: str
    at: float
    verdict: str  # the saved verdict, or "unavailable" when a source is gone
    statement: str
    quotes: tuple[tuple[str, int], ...]
    generated: str
    withheld_reason: str | None
    shown_text: str
    context: list[ContextPassage]  # the passages the reader may still read, fetched now
    cited: frozenset[int]
    gone: int  # passages of this turn the reader may no longer read
    supported: bool
    id: int = 0  # the saved turn's id

    @property
    def available(self) -> bool:
        return self.verdict != UNAVAILABLE

    language = Answer.language  # the question's language, read as an Answer reads it
    found_nothing = Answer.found_nothing

    def quote_lines(self) -> list[tuple[str, int]]:
        return list(self.quotes)

    def sources(self) -> list[ContextPassage]:
        return [c for c in self.context if c.number in self.cited]

    def also_retrieved(self) -> list[ContextPassage]:
        return [c for c in self.context if c.number not in self.cited]

    def citations(self) -> list[ContextPassage]:
        return self.sources() or list(self.context)


@dataclass(frozen=True)
class Conversation:
    summary: ConversationSummary
    turns: list[ReopenedTurn]

    @property
    def id(self) -> str:
        return self.summary.id

    @property
    def title(self) -> str:
        return self.summary.title


@dataclass(frozen=True)
class SearchHit:
    conversation_id: str
    field: str  # title | question | answer
    turn_id: int | None
    rank: float  # FTS5 bm25: lower is better


def valid_id(conversation_id: object) -> bool:
    return isinstance(conversation_id, str) and bool(_ID.match(conversation_id))


def title_of(text: str) -> str:
    """A title: one line, at most TITLE_CHARS characters."""
    return " ".join(str(text).split())[:TITLE_CHARS]


def _who(owner: str) -> str:
    """The owner as one FTS token (a name may hold '.', '@', '-': the tokenizer would split it)."""
    return "o" + hashlib.sha256(owner.encode("utf-8")).hexdigest()[:24]


def _quoted(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


class ConversationStore:
    def __init__(self, path: Path, sparse: SparseEncoder, clock: Callable[[], float] = time.time) -> None:
        self.path, self.sparse, self._clock = path, sparse, clock
        self._lock = threading.Lock()
        self._db = open_state(path, _SCHEMA)
        self._db.execute("PRAGMA secure_delete=ON")  # a deleted conversation's bytes are zeroed, not left
        self._db.row_factory = sqlite3.Row

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(16)

    # --- tokens -----------------------------------------------------------------------------
    def _indexed(self, text: str) -> str:
        """The words, then the bigram channel, as one space-separated stream for FTS5."""
        return " ".join([*self.sparse.tokens(text), *self.sparse.ngram_tokens(text)])

    def match_expression(self, query: str) -> str | None:
        """An FTS5 expression: every word of the query (English stems, Sudachi words), or, for
        Japanese, each Japanese run as a phrase of its character bigrams (a substring match, for
        a word Sudachi splits differently inside a longer sentence) plus the other words."""
        words = list(dict.fromkeys(self.sparse.tokens(query)))
        channels = []
        if words:
            channels.append(" AND ".join(_quoted(w) for w in words))
        runs = [self.sparse.ngram_tokens(run) for run in _JA_RUN.findall(query)]
        if any(runs):
            others = self.sparse.tokens(_JA_RUN.sub(" ", query))
            parts = [_quoted(" ".join(grams)) for grams in runs if grams] + [_quoted(w) for w in dict.fromkeys(others)]
            channels.append(" AND ".join(parts))
        if not channels:
            return None
        return " OR ".join(f"({c})" for c in channels)

    # --- writing ----------------------------------------------------------------------------
    def add_turn(self, conversation_id: str, owner: str, turn: SavedTurn, title: str | None = None) -> int:
        """Append a turn; the conversation is created with its first turn (titled by its
        question). Raises ConversationNotFound for an id that another person holds."""
        if not valid_id(conversation_id):
            raise ConversationNotFound(str(conversation_id))
        question, answer = self._indexed(turn.question), self._indexed(turn.answer_words)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT owner FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
                if row is None:
                    name = title_of(title or turn.question)
                    cursor = self._db.execute(
                        "INSERT INTO conversations (id, owner, title, created, updated) VALUES (?, ?, ?, ?, ?)",
                        (conversation_id, owner, name, turn.at, turn.at),
                    )
                    self._db.execute(
                        "INSERT INTO titles_fts (rowid, who, title) VALUES (?, ?, ?)",
                        (cursor.lastrowid, _who(owner), self._indexed(name)),
                    )
                elif row["owner"] != owner:
                    raise ConversationNotFound(conversation_id)
                turn_id = self._insert_turn(conversation_id, turn)
                self._db.execute(
                    "INSERT INTO turns_fts (rowid, who, question, answer) VALUES (?, ?, ?, ?)",
                    (turn_id, _who(owner), question, answer),
                )
                self._db.execute(
                    "UPDATE conversations SET updated = max(updated, ?), turns = turns + 1 WHERE id = ?",
                    (turn.at, conversation_id),
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return turn_id

    def _insert_turn(self, conversation_id: str, t: SavedTurn) -> int:
        citations = [
            {"number": c.number, "chunk_ids": list(c.chunk_ids), "doc_id": c.doc_id, "location": c.location,
             "page": c.page, "cited": c.cited}
            for c in t.citations
        ]
        cursor = self._db.execute(
            "INSERT INTO turns (conversation, at, question, standalone, shown_text, verdict, supported, statement,"
            " quotes, generated, withheld, citations, scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (conversation_id, t.at, t.question, t.standalone, t.shown_text, t.verdict, int(t.supported), t.statement,
             json.dumps([list(q) for q in t.quotes], ensure_ascii=False), t.generated, t.withheld,
             json.dumps(citations, ensure_ascii=False), t.scope),
        )
        return int(cursor.lastrowid or 0)

    def rename(self, conversation_id: str, title: str) -> None:
        with self._lock:
            row = self._db.execute(
                "SELECT rowid, owner FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
            if row is None:
                raise ConversationNotFound(conversation_id)
            self._db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title_of(title), conversation_id))
            self._db.execute("DELETE FROM titles_fts WHERE rowid = ?", (row["rowid"],))
            self._db.execute(
                "INSERT INTO titles_fts (rowid, who, title) VALUES (?, ?, ?)",
                (row["rowid"], _who(row["owner"]), self._indexed(title_of(title))),
            )

    def delete(self, conversation_ids: Iterable[str]) -> int:
        """Delete conversations with their turns and index entries; returns how many were deleted."""
        ids = [i for i in conversation_ids if valid_id(i)]
        deleted = 0
        with self._lock:
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ",".join("?" * len(part))
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.execute(
                        f"DELETE FROM turns_fts WHERE rowid IN (SELECT id FROM turns WHERE conversation IN ({marks}))",
                        part,
                    )
                    self._db.execute(f"DELETE FROM turns WHERE conversation IN ({marks})", part)
                    self._db.execute(
                        "DELETE FROM titles_fts WHERE rowid IN"
                        f" (SELECT rowid FROM conversations WHERE id IN ({marks}))",
                        part,
                    )
                    deleted += self._db.execute(f"DELETE FROM conversations WHERE id IN ({marks})", part).rowcount
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            if deleted:
                self._purge()
        return deleted

    def _purge(self) -> None:
        """No deleted word may stay behind: merge the full-text index (an FTS5 delete only
        marks old segments) and truncate the write-ahead log (it holds old page images)."""
        self._db.execute("INSERT INTO turns_fts (turns_fts) VALUES ('optimize')")
        self._db.execute("INSERT INTO titles_fts (titles_fts) VALUES ('optimize')")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # --- reading ----------------------------------------------------------------------------
    def owner_of(self, conversation_id: str) -> str | None:
        if not valid_id(conversation_id):
            return None
        with self._lock:
            row = self._db.execute("SELECT owner FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        return None if row is None else str(row["owner"])

    def summary(self, conversation_id: str) -> ConversationSummary | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        return None if row is None else _summary(row)

    def summaries(self, owner: str, limit: int | None = 50, offset: int = 0) -> list[ConversationSummary]:
        """The owner's conversations, the most recently continued first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM conversations WHERE owner = ? ORDER BY updated DESC, id LIMIT ? OFFSET ?",
                (owner, -1 if limit is None else limit, offset),
            ).fetchall()
        return [_summary(r) for r in rows]

    def ids_of(self, owner: str) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT id FROM conversations WHERE owner = ?", (owner,))]

    def turns(self, conversation_id: str, last: int | None = None) -> list[SavedTurn]:
        """The conversation's turns in order (only the `last` ones when given)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM (SELECT * FROM turns WHERE conversation = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
                (conversation_id, -1 if last is None else last),
            ).fetchall()
        return [_turn(r) for r in rows]

    def turns_by_id(self, turn_ids: Sequence[int]) -> dict[int, SavedTurn]:
        if not turn_ids:
            return {}
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM turns WHERE id IN ({','.join('?' * len(turn_ids))})", list(turn_ids)
            ).fetchall()
        return {int(r["id"]): _turn(r) for r in rows}

    def search(self, owner: str, query: str, limit: int = 50) -> list[SearchHit]:
        """The owner's titles, questions and answers matching `query`, best first (each field
        searched on its own, so the caller knows where a turn matched)."""
        expression = self.match_expression(query)
        if expression is None:
            return []
        who = f"who:{_quoted(_who(owner))}"
        hits: list[SearchHit] = []
        with self._lock:
            for fts, column in (("turns_fts", "question"), ("turns_fts", "answer")):
                rows = self._db.execute(
                    f"SELECT t.conversation, t.id, f.rank FROM {fts} f JOIN turns t ON t.id = f.rowid"
                    f" WHERE {fts} MATCH ? ORDER BY f.rank LIMIT ?",
                    (f"{who} AND {column}:({expression})", limit),
                ).fetchall()
                hits += [SearchHit(r[0], column, int(r[1]), float(r[2])) for r in rows]
            rows = self._db.execute(
                "SELECT c.id, f.rank FROM titles_fts f JOIN conversations c ON c.rowid = f.rowid"
                " WHERE titles_fts MATCH ? ORDER BY f.rank LIMIT ?",
                (f"{who} AND title:({expression})", limit),
            ).fetchall()
            hits += [SearchHit(r[0], "title", None, float(r[1])) for r in rows]
        return sorted(hits, key=lambda h: h.rank)

    def older_than(self, cutoff: float) -> list[str]:
        """Conversations whose last turn is older than `cutoff` (epoch seconds)."""
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT id FROM conversations WHERE updated < ?", (cutoff,))]

    def owners(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT DISTINCT owner FROM conversations")}

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _summary(row: sqlite3.Row) -> ConversationSummary:
    return ConversationSummary(row["id"], row["title"], row["created"], row["updated"], row["turns"])


def _turn(row: sqlite3.Row) -> SavedTurn:
    citations = tuple(
        SavedCitation(c["number"], tuple(c["chunk_ids"]), c["doc_id"], c["location"], c["page"], bool(c["cited"]))
        for c in json.loads(row["citations"])
    )
    return SavedTurn(
        question=row["question"],
        shown_text=row["shown_text"],
        verdict=row["verdict"],
        supported=bool(row["supported"]),
        statement=row["statement"],
        quotes=tuple((str(t), int(n)) for t, n in json.loads(row["quotes"])),
        generated=row["generated"],
        withheld=row["withheld"],
        citations=citations,
        scope=row["scope"],
        at=row["at"],
        standalone=row["standalone"],
        id=int(row["id"]),
    )
