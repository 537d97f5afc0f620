"""The auditor's analytics index: `audit-index.sqlite3`, derived from the hash-chained audit log
(app/audit/log.py) and rebuilt from it. The log stays the record; the index only makes a year
of it answer in a second (who saw what, trends, alerts, reports) without any page holding it.

How it stays honest:
- it is built by seq, incrementally: each refresh reads the log from the byte after the last
  entry it indexed, checks each new entry's link (seq + 1, prev = the last hash) and its HMAC,
  and records any break as a chain signal (an alert, app/audit/alerts.py);
- it is rebuilt from scratch when it is missing, when the entry it recorded as its head is no
  longer in the log with the same hash (a rollback, a truncation, a rewrite, a restore), when
  the log's key or the live file changed (archive), or when its format or time zone changed;
  a head that vanished is itself a chain signal;
- it holds nothing the log does not: each row is a field of an entry (ids and names interned),
  plus where that entry's line is, so a row leads back to its entry and its chain position.

Who saw what needs each shown document's groups at the time: entries written since issue 27
carry `doc_groups` (aligned with `documents`) and `reader_groups` (app/service/parts.py,
`_read_facts`); for older entries both are derived from the log itself (ingest, acl_change and
user_change entries say which documents and people got which groups).

Usage:
    index = AuditIndex(data_dir / "audit-index.sqlite3", AuditLog(data_dir / "audit.jsonl"))
    index.refresh()                                   # new entries in; rebuilt if it must be
    rows = index.db.execute("SELECT count(*) FROM entries").fetchone()
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from app.audit.log import GENESIS, AuditKeyMissing, AuditLog, _now_iso

log = logging.getLogger(__name__)

INDEX_FILE = "audit-index.sqlite3"  # in the data directory; derived, so never backed up
FORMAT = 3  # bump when the schema or a derivation changes: the index is rebuilt
LIVE = 0  # `src` of an entry in the live log; an archived segment is 1 + its position
# Actions whose `documents` were shown to the caller (the answer entry repeats its query's).
SHOWN_ACTIONS = frozenset({"query", "search", "passage_view", "passage_context", "document_view", "export"})
QUESTION_ACTIONS = ("query", "search")
NOT_SHOWN = frozenset({"refused", "not_found"})
_BATCH = 20_000

TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS names (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
    UNIQUE (kind, name));
CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY, time TEXT NOT NULL, day TEXT NOT NULL,
    hour INTEGER NOT NULL, wday INTEGER NOT NULL, person INTEGER, role TEXT, action TEXT NOT NULL,
    outcome TEXT, query TEXT, acl INTEGER, src INTEGER NOT NULL, off INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS shown (doc INTEGER NOT NULL, seq INTEGER NOT NULL, person INTEGER,
    acl INTEGER, folder INTEGER);
CREATE TABLE IF NOT EXISTS daily (kind TEXT NOT NULL, day TEXT NOT NULL, key TEXT NOT NULL,
    n INTEGER NOT NULL, PRIMARY KEY (kind, day, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS signals (rule TEXT NOT NULL, seq INTEGER NOT NULL, time TEXT NOT NULL,
    subject TEXT NOT NULL, acl INTEGER, detail TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS alerts (seq INTEGER PRIMARY KEY, time TEXT NOT NULL, rule TEXT NOT NULL,
    subject TEXT NOT NULL, key TEXT NOT NULL, upto INTEGER NOT NULL, acl INTEGER);
CREATE TABLE IF NOT EXISTS rules (name TEXT PRIMARY KEY, seq INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (doc INTEGER PRIMARY KEY, acl INTEGER, folder INTEGER);
CREATE TABLE IF NOT EXISTS members (person INTEGER PRIMARY KEY, acl INTEGER);
CREATE TABLE IF NOT EXISTS key_clients (api_key TEXT NOT NULL, client TEXT NOT NULL, PRIMARY KEY (api_key, client));
"""
# Made after a rebuild's bulk load (sorting once is far faster than keeping them up row by row).
INDEXES = """
CREATE INDEX IF NOT EXISTS entries_person ON entries (person, seq);
CREATE INDEX IF NOT EXISTS entries_action ON entries (action, seq);
CREATE INDEX IF NOT EXISTS entries_day ON entries (day, seq);
CREATE INDEX IF NOT EXISTS shown_doc ON shown (doc, seq);
CREATE INDEX IF NOT EXISTS shown_person ON shown (person, seq);
CREATE INDEX IF NOT EXISTS shown_acl ON shown (acl, seq);
CREATE INDEX IF NOT EXISTS shown_folder ON shown (folder, seq);
CREATE INDEX IF NOT EXISTS signals_rule ON signals (rule, seq);
CREATE INDEX IF NOT EXISTS alerts_key ON alerts (rule, subject, upto);
"""
SCHEMA = TABLES + INDEXES


def groups_key(groups: Iterable[str]) -> str:
    """A set of groups as one interned name: sorted, comma-joined ('' for none)."""
    return ",".join(sorted({str(g) for g in groups if g}))


def read_set(groups: Iterable[str]) -> str:
    """A person's read groups as the store filters them: their groups plus `everyone`."""
    return groups_key({"everyone", *groups})


@dataclass
class Refresh:
    """What one refresh did: entries indexed, whether (and why) it rebuilt, chain problems seen."""

    indexed: int = 0
    rebuilt: str = ""
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Names:
    """Interned names (people, documents, group sets, folders): small integers in big tables."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.ids: dict[tuple[str, str], int] = {}
        self.by_id: dict[int, str] = {}
        for row_id, kind, name in db.execute("SELECT id, kind, name FROM names"):
            self.ids[(kind, name)] = row_id
            self.by_id[row_id] = name

    def id(self, kind: str, name: str) -> int:
        key = (kind, name)
        found = self.ids.get(key)
        if found is None:
            found = int(self.db.execute("INSERT INTO names (kind, name) VALUES (?, ?)", key).lastrowid)
            self.ids[key], self.by_id[found] = found, name
        return found

    def find(self, kind: str, name: str) -> int | None:
        return self.ids.get((kind, name))

    def name(self, row_id: int | None) -> str:
        return "" if row_id is None else self.by_id.get(row_id, "")

    def of_kind(self, kind: str) -> dict[str, int]:
        return {name: row_id for (k, name), row_id in self.ids.items() if k == kind}

    def acls_with(self, group: str) -> list[int]:
        """Ids of every interned group set that contains `group`."""
        return [i for name, i in self.of_kind("acl").items() if group in name.split(",")]


class LocalTime:
    """Entry times (UTC ISO strings) as the site's local day, hour and weekday."""

    def __init__(self, zone: str) -> None:
        self.zone = zone
        self.tz = None if zone.upper() == "UTC" else ZoneInfo(zone)

    def __call__(self, stamp: str) -> tuple[str, int, int]:
        if self.tz is None:
            day = stamp[:10]
            return day, int(stamp[11:13] or 0), _weekday(day)
        local = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(self.tz)
        return local.date().isoformat(), local.hour, local.weekday()


def _weekday(day: str, _cache: dict[str, int] = {}) -> int:  # noqa: B006 - a deliberate memo
    found = _cache.get(day)
    if found is None:
        found = _cache[day] = date.fromisoformat(day).weekday() if len(day) == 10 else 0
    return found


class AuditIndex:
    """The index file and its one connection (serialised by a lock; another process that
    refreshes the same file waits on a file lock)."""

    def __init__(self, path: Path, audit: AuditLog, zone: str = "UTC") -> None:
        self.path, self.audit, self.local = path, audit, LocalTime(zone)
        self.lock = threading.RLock()
        self._lock_path = path.with_name(path.name + ".lock")
        self._held = False
        self.db = self._open()
        self.names = Names(self.db)

    def _open(self) -> Any:
        db = _connect(self.path, SCHEMA, "NORMAL")
        self._inode = os.stat(self.path).st_ino
        return db

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def meta(self, key: str, default: str = "") -> str:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """One builder at a time, across threads and processes (re-entrant in one thread: a
        refresh inside an alert check takes it again)."""
        with self.lock:
            if self._held:
                yield
                return
            with os.fdopen(os.open(self._lock_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                self._held = True
                try:
                    yield
                finally:
                    self._held = False
                    fcntl.flock(fh, fcntl.LOCK_UN)

    # --- refresh -----------------------------------------------------------------------------
    def refresh(self) -> Refresh:
        """Index the entries written since the last refresh; rebuild when the index no longer
        matches the log (see the module docstring). Returns what it did."""
        started = time.monotonic()
        with self.exclusive():
            if not self.path.exists() or os.stat(self.path).st_ino != self._inode:
                self.db.close()  # another process rebuilt (or someone deleted) the file
                self.db = self._open()
                self.names = Names(self.db)
            reason, vanished = self._stale()
            if reason:
                report = self._rebuild(reason, vanished)
            else:
                report = self._extend()
        report.seconds = time.monotonic() - started
        return report

    def _files(self) -> list[Path]:
        return [*self.audit.segments(), self.audit.path]

    def _key_id(self) -> str:
        try:
            return self.audit.key_id if self.audit.key_path.exists() else ""
        except (AuditKeyMissing, ValueError):
            return ""

    def _stale(self) -> tuple[str, str]:
        """(why the index must be rebuilt, '' if it need not; a chain problem if its head vanished)."""
        if self.meta("format") != str(FORMAT):
            return "new index" if not self.meta("format") else "index format changed", ""
        if self.meta("zone") != self.local.zone:
            return "time zone changed", ""
        if self.meta("segments") != json.dumps([p.name for p in self.audit.segments()]):
            return "the log was archived", ""
        live = self.audit.path
        inode = str(live.stat().st_ino) if live.exists() else ""
        known, key_id = self.meta("key_id"), self._key_id()
        if known and known != key_id:  # (none known: the index was built before the log's first entry)
            return "the audit key changed", "the audit key was replaced since the index was built"
        head_seq, head_hash = int(self.meta("last_seq", "0")), self.meta("last_hash", GENESIS)
        if head_seq == 0:
            return ("", "") if inode == self.meta("live_inode") or not self.meta("live_inode") else (
                "the live log was replaced", "")
        found = self.entry(head_seq)
        if found is None or found.get("seq") != head_seq or found.get("hash") != head_hash:
            return "the log no longer holds the index's head", (
                f"the index had seen seq {head_seq} (hash {head_hash[:12]}…), which the log no longer holds: "
                "it was rolled back, truncated or rewritten"
            )
        if inode != self.meta("live_inode"):
            return "the live log was replaced", ""
        return "", ""

    def _rebuild(self, reason: str, vanished: str) -> Refresh:
        """Build a fresh index beside the old one and put it in place in one rename."""
        fresh = self.path.with_name(self.path.name + ".new")
        for leftover in (fresh, fresh.with_name(fresh.name + "-journal")):
            leftover.unlink(missing_ok=True)
        db = _connect(fresh, TABLES, "OFF", journal="OFF")  # a file nobody reads until it is complete
        db.execute("PRAGMA cache_size=-262144")  # 256 MiB while building, then the default again
        db.execute("BEGIN")  # one transaction: in autocommit every row would be a commit
        builder = _Builder(db, Names(db), self.audit, self.local)
        builder.set_meta(format=str(FORMAT), zone=self.local.zone, key_id=self._key_id(), built=str(time.time()))
        report = Refresh(rebuilt=reason)
        for src, path in enumerate(self._files()):
            report.indexed += builder.index_file(path, LIVE if path == self.audit.path else src + 1, 0)
        if vanished:  # at the log's head now: the alert follows what the log still holds
            builder.problems.append(vanished)
            builder.signal("chain", max(builder.last_seq, 1), _now_iso(), "chain", None, vanished)
        builder.finish(self.audit.path)
        report.problems = builder.problems
        db.execute("COMMIT")
        db.executescript(INDEXES)
        db.execute("PRAGMA synchronous=NORMAL")
        db.close()
        self.db.close()
        os.replace(fresh, self.path)
        self.db = self._open()
        self.names = Names(self.db)
        log.info("audit index rebuilt (%s): %d entries", reason, report.indexed)
        return report

    def _extend(self) -> Refresh:
        report = Refresh()
        live = self.audit.path
        offset = int(self.meta("live_next", "0"))
        if not live.exists() or live.stat().st_size <= offset:
            return report
        self.db.execute("BEGIN IMMEDIATE")
        try:
            builder = _Builder(self.db, self.names, self.audit, self.local, resume=True)
            report.indexed = builder.index_file(live, LIVE, offset)
            builder.finish(live)
            builder.set_meta(key_id=self._key_id())
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            self.names = Names(self.db)  # ids inserted in the rolled-back transaction are gone
            raise
        report.problems = builder.problems
        return report

    # --- reading entries back from the log ---------------------------------------------------
    def location(self, seq: int) -> tuple[Path, int] | None:
        row = self.db.execute("SELECT src, off FROM entries WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            return None
        files = self._files()
        path = self.audit.path if row[0] == LIVE else (files[row[0] - 1] if row[0] - 1 < len(files) - 1 else None)
        return (path, int(row[1])) if path is not None else None

    def entry(self, seq: int) -> dict[str, Any] | None:
        """The entry with this seq as it is in the log now (None if the log no longer has it
        where the index saw it)."""
        with self.lock:
            where = self.location(seq)
        if where is None or not where[0].exists():
            return None
        with where[0].open("rb") as fh:
            fh.seek(where[1])
            line = fh.readline()
        try:
            found = json.loads(line)
        except ValueError:
            return None
        return found if isinstance(found, dict) and found.get("seq") == seq else None

    def entries(self, seqs: Iterable[int]) -> list[dict[str, Any]]:
        return [e for e in (self.entry(s) for s in seqs) if e is not None]


class _Builder:
    """Indexes entries in seq order, carrying what the log said so far (documents' groups and
    folders, people's groups, API keys' addresses) and checking the chain as it goes."""

    def __init__(self, db: Any, names: Names, audit: AuditLog, local: LocalTime, resume: bool = False) -> None:
        self.db, self.names, self.audit, self.local = db, names, audit, local
        self.problems: list[str] = []
        self.rows: list[tuple] = []
        self.shown: list[tuple] = []
        self.signals: list[tuple] = []
        self.daily: Counter[tuple[str, str, str]] = Counter()
        meta = dict(db.execute("SELECT key, value FROM meta")) if resume else {}
        self.last_seq, self.last_hash = int(meta.get("last_seq", 0)), str(meta.get("last_hash", GENESIS))
        self.first = not resume
        self.docs: dict[int, tuple[int | None, int | None]] = {
            d: (a, f) for d, a, f in db.execute("SELECT doc, acl, folder FROM docs")
        }
        self.members: dict[int, int] = dict(db.execute("SELECT person, acl FROM members"))
        self.clients: set[tuple[str, str]] = set(db.execute("SELECT api_key, client FROM key_clients"))
        self.keys_seen = {k for k, _ in self.clients}
        self.next_offset = 0

    def set_meta(self, **values: str) -> None:
        self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(values.items()))

    def signal(self, rule: str, seq: int, stamp: str, subject: str, acl: int | None, detail: str = "") -> None:
        self.signals.append((rule, seq, stamp, subject, acl, detail))

    def index_file(self, path: Path, src: int, offset: int) -> int:
        if not path.exists():
            return 0
        count = 0
        with path.open("rb") as fh:
            fh.seek(offset)
            for line in fh:
                if not line.endswith(b"\n"):
                    break  # a line still being written: the next refresh takes it whole
                if line.strip():
                    self._entry(line, src, offset)
                    count += 1
                    if len(self.rows) >= _BATCH:
                        self.flush()
                offset += len(line)
        if src == LIVE:
            self.next_offset = offset
        return count

    def _entry(self, line: bytes, src: int, offset: int) -> None:
        try:
            e = json.loads(line)
            seq = int(e["seq"])
        except (ValueError, KeyError, TypeError):
            where = "the live log" if src == LIVE else "an archived segment"
            self._problem(self.last_seq + 1, "", f"an unreadable line at byte {offset} of {where}")
            return
        stamp = str(e.get("time", ""))
        self._check_chain(e, seq, stamp)
        day, hour, wday = self.local(stamp) if len(stamp) >= 13 else ("", 0, 0)
        person = self.names.id("person", str(e.get("user", "")))
        action, outcome = str(e.get("action", "")), e.get("outcome")
        self.names.id("actor", str(e.get("user", "")))  # who and what occur: the log page's filter choices
        self.names.id("action", action)
        acl = self._reader_acl(e, person)
        self._state(e, action, outcome, person, seq)
        query = e.get("query") if isinstance(e.get("query"), str) else None
        self.rows.append((seq, stamp, day, hour, wday, person, str(e.get("role", "")), action,
                          str(outcome) if outcome is not None else None, query, acl, src, offset))
        self._count(e, action, outcome, day, person, acl)
        if action in SHOWN_ACTIONS and outcome not in NOT_SHOWN:
            self._shown(e, seq, stamp, day, person, acl)
        self._signals(e, action, outcome, seq, stamp, person, acl)

    def _problem(self, seq: int, stamp: str, message: str) -> None:
        self.problems.append(f"seq {seq}: {message}")
        self.signal("chain", seq, stamp, "chain", None, message)

    def _check_chain(self, e: dict[str, Any], seq: int, stamp: str) -> None:
        if self.first:  # the first entry indexed (after an anchor, an archive starts later)
            self.first = False
        elif seq != self.last_seq + 1:
            self._problem(seq, stamp, f"a gap in the chain: seq {self.last_seq} is followed by seq {seq}")
        elif e.get("prev") != self.last_hash:
            self._problem(seq, stamp, f"seq {seq} does not link to seq {self.last_seq} (prev differs)")
        try:
            if not self.audit.entry_is_authentic(e):
                self._problem(seq, stamp, f"seq {seq} carries no hash made with the audit key (altered or forged)")
        except (AuditKeyMissing, ValueError):
            pass  # no key: kura writes nothing either; `kura audit verify` says so
        self.last_seq, self.last_hash = seq, str(e.get("hash", ""))

    def _acl(self, groups: Iterable[str]) -> int:
        return self.names.id("acl", groups_key(groups))

    def _reader_acl(self, e: dict[str, Any], person: int) -> int | None:
        """The reader's groups at the time: recorded in the entry, else the last the log said."""
        recorded = e.get("reader_groups")
        if isinstance(recorded, list):
            acl = self.names.id("acl", read_set(recorded))
            self.members[person] = acl
            return acl
        return self.members.get(person)

    def _state(self, e: dict[str, Any], action: str, outcome: Any, person: int, seq: int) -> None:
        """What this entry says about documents' groups and folders and people's groups."""
        documents = [str(d) for d in e.get("documents") or [] if d]
        if action == "ingest" and isinstance(e.get("groups"), list):
            acl, folder = self._acl(e["groups"]), self.names.id("folder", str(e.get("folder", "")))
            for doc in documents:
                self.docs[self.names.id("doc", doc)] = (acl, folder)
        elif action == "acl_change" and outcome == "changed" and isinstance(e.get("groups"), list):
            acl = self._acl(e["groups"])
            for doc in documents:
                doc_id = self.names.id("doc", doc)
                self.docs[doc_id] = (acl, self.docs.get(doc_id, (None, None))[1])
        elif action == "user_change" and e.get("target"):
            target = self.names.id("person", str(e["target"]))
            if isinstance(e.get("groups"), list):
                self.members[target] = self.names.id("acl", read_set(e["groups"]))
            elif e.get("change") == "directory_sync" and target in self.members:
                held = set(self.names.name(self.members[target]).split(","))
                held = (held | set(e.get("groups_added") or [])) - set(e.get("groups_removed") or [])
                self.members[target] = self.names.id("acl", read_set(held))
        elif action == "alert_rule" and e.get("rule"):
            body = {k: e.get(k) for k in ("threshold", "window_s", "enabled", "params")}
            self.db.execute("INSERT OR REPLACE INTO rules VALUES (?, ?, ?)", (str(e["rule"]), seq, json.dumps(body)))
        elif action == "alert" and e.get("rule"):
            self.db.execute(
                "INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?)",
                (seq, str(e.get("time", "")), str(e["rule"]), str(e.get("subject", "")), str(e.get("key", "")),
                 int(e.get("upto") or 0), self._acl(e.get("groups") or [])),
            )

    def _count(self, e: dict[str, Any], action: str, outcome: Any, day: str, person: int, acl: int | None) -> None:
        """The daily rollups the overview sums (a year is ~365 rows a measure, not ~1M entries)."""
        total, add = self.daily, []
        if action in QUESTION_ACTIONS:
            add.append("questions" if action == "query" else "searches")
            total[("user", day, self.names.name(person))] += 1
            for group in self.names.name(acl).split(",") if acl is not None else ():
                if group and group != "everyone":
                    total[("department", day, group)] += 1
            if outcome not in NOT_SHOWN and not e.get("documents"):
                add.append("nothing" if action == "query" else "searches_nothing")
        if outcome == "refused" or action == "api_key_refused":
            add.append("refused")
        elif action == "denied":
            add.append("denied")
        elif action == "answer":
            add.append("answers")
            if _unsupported(e):
                add.append("unsupported")
        elif action == "feedback":
            add.append("helpful" if e.get("helpful") else "unhelpful")
        elif action == "alert":
            add.append("alerts")
        for measure in add:
            total[("total", day, measure)] += 1

    def _shown(self, e: dict[str, Any], seq: int, stamp: str, day: str, person: int, reader: int | None) -> None:
        documents = [str(d) for d in e.get("documents") or [] if d]
        recorded = e.get("doc_groups")
        aligned = isinstance(recorded, list) and len(recorded) == len(documents)
        reader_set = set(self.names.name(reader).split(",")) if reader is not None else None
        for i, doc in enumerate(documents):
            doc_id = self.names.id("doc", doc)
            known_acl, folder = self.docs.get(doc_id, (None, None))
            acl = self.names.id("acl", groups_key(str(recorded[i]).split(","))) if aligned else known_acl
            self.shown.append((doc_id, seq, person, acl, folder))
            self.daily[("doc", day, doc)] += 1
            self.daily[("total", day, "shows")] += 1
            groups = [g for g in self.names.name(acl).split(",") if g] if acl is not None else []
            for group in groups:
                self.daily[("group", day, group)] += 1
            # Shown a document none of whose groups the reader held (admins search everything).
            if groups and reader_set is not None and not reader_set & set(groups) and "admin" not in str(e.get("role")):
                self.signal("stale_group", seq, stamp, self.names.name(person), acl, doc)

    def _signals(self, e: dict[str, Any], action: str, outcome: Any, seq: int, stamp: str, person: int,
                 acl: int | None) -> None:
        if outcome == "refused" or action in ("denied", "api_key_refused"):
            self.signal("refusals", seq, stamp, self.names.name(person), acl, action)
        key, client = e.get("api_key"), e.get("client")
        if isinstance(key, str) and isinstance(client, str) and key != "local-operator-token":
            if (key, client) not in self.clients:
                if key in self.keys_seen:  # a key's first address is its first, not a new one
                    self.signal("new_address", seq, stamp, self.names.name(person), acl, f"{key} {client}")
                self.clients.add((key, client))
                self.keys_seen.add(key)
                self.db.execute("INSERT OR IGNORE INTO key_clients VALUES (?, ?)", (key, client))

    def flush(self) -> None:
        db = self.db
        db.executemany("INSERT OR REPLACE INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", self.rows)
        db.executemany("INSERT OR REPLACE INTO shown VALUES (?,?,?,?,?)", self.shown)
        db.executemany("INSERT INTO signals VALUES (?,?,?,?,?,?)", self.signals)
        db.executemany(
            "INSERT INTO daily VALUES (?,?,?,?) ON CONFLICT (kind, day, key) DO UPDATE SET n = n + excluded.n",
            [(*k, n) for k, n in self.daily.items()],
        )
        self.rows, self.shown, self.signals = [], [], []
        self.daily.clear()

    def finish(self, live: Path) -> None:
        self.flush()
        docs = [(d, acl, folder) for d, (acl, folder) in self.docs.items()]
        self.db.executemany("INSERT OR REPLACE INTO docs VALUES (?,?,?)", docs)
        self.db.executemany("INSERT OR REPLACE INTO members VALUES (?,?)", list(self.members.items()))
        self.set_meta(
            last_seq=str(self.last_seq),
            last_hash=self.last_hash,
            live_next=str(self.next_offset),
            live_inode=str(live.stat().st_ino) if live.exists() else "",
            segments=json.dumps([p.name for p in self.audit.segments()]),
        )


def _connect(path: Path, schema: str, synchronous: str, journal: str = "DELETE") -> sqlite3.Connection:
    """The index's connection: autocommit, any thread (the index's lock serialises it), a 30 s
    busy timeout. A rollback journal, not WAL: the index is one file a rebuild replaces whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    db.execute(f"PRAGMA journal_mode={journal}")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.executescript(schema)
    return db


def _unsupported(e: dict[str, Any]) -> bool:
    """An answer, drawn from passages, that was not labelled supported (the documents may not
    answer it, or do not); older entries: no valid citation."""
    if "supported" in e:
        return bool(e.get("documents")) and not e["supported"]
    return bool(e.get("documents")) and not e.get("cited")
