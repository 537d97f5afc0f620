"""The auditor's questions, answered from the analytics index (app/audit/index.py): the overview
of a period, who was shown what, a page of the log, and a group's monthly figures. Plain
queries over the index; every result is small (top lists, a capped page of rows), so no caller
ever holds the log.

Periods are local days (the index's time zone), both ends included; None is open.

Usage:
    figures = overview(index, "2026-01-01", "2026-03-31")
    seen = who_saw(index, documents=["3f9c…"], since="2026-01-01")
    page = browse(index, user="ann", actions=("query",), text="leave", limit=200)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.audit.index import QUESTION_ACTIONS, AuditIndex

MEASURES = (
    "questions", "searches", "nothing", "searches_nothing", "answers", "unsupported",
    "refused", "denied", "helpful", "unhelpful", "alerts", "shows",
)
DAILY_MEASURES = ("questions", "searches", "refused", "denied")
REFUSAL = "(e.outcome = 'refused' OR e.action IN ('denied', 'api_key_refused'))"


def _bounds(since: str | None, until: str | None) -> tuple[str, str]:
    return since or "0000-00-00", until or "9999-99-99"


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class Overview:
    since: str | None
    until: str | None
    totals: dict[str, int]
    days: list[dict[str, Any]]
    users: list[tuple[str, int]]
    groups: list[tuple[str, int]]
    departments: list[tuple[str, int]]
    documents: list[tuple[str, int]]
    names: dict[str, str] = field(default_factory=dict)  # doc id -> path now (the service fills it in)

    @property
    def nothing_share(self) -> float | None:
        """Questions that found nothing, of all questions answered (refused ones excluded)."""
        return _share(self.totals.get("nothing", 0), self.totals.get("questions", 0))

    @property
    def unsupported_share(self) -> float | None:
        return _share(self.totals.get("unsupported", 0), self.totals.get("answers", 0))


def overview(index: AuditIndex, since: str | None = None, until: str | None = None, top: int = 15) -> Overview:
    """Questions per day, per person, per document group and per department (the askers'
    groups), refusals and denials, found-nothing and unsupported shares, feedback, the busiest
    documents: sums over the daily rollups, so a year costs a few hundred rows a measure."""
    low, high = _bounds(since, until)
    with index.lock:
        db = index.db

        def ranked(kind: str) -> list[tuple[str, int]]:
            return [(str(k), int(n)) for k, n in db.execute(
                "SELECT key, sum(n) AS total FROM daily WHERE kind = ? AND day BETWEEN ? AND ? "
                "GROUP BY key ORDER BY total DESC, key LIMIT ?", (kind, low, high, top))]

        totals = {k: int(n) for k, n in db.execute(
            "SELECT key, sum(n) FROM daily WHERE kind = 'total' AND day BETWEEN ? AND ? GROUP BY key", (low, high))}
        by_day: dict[str, dict[str, Any]] = {}
        for day, key, n in db.execute(
            "SELECT day, key, n FROM daily WHERE kind = 'total' AND day BETWEEN ? AND ? AND key IN (?, ?, ?, ?) "
            "ORDER BY day", (low, high, *DAILY_MEASURES),
        ):
            by_day.setdefault(day, {"day": day, **dict.fromkeys(DAILY_MEASURES, 0)})[key] = int(n)
        return Overview(
            since, until, {m: totals.get(m, 0) for m in MEASURES}, list(by_day.values()),
            ranked("user"), ranked("group"), ranked("department"), ranked("doc"),
        )


@dataclass
class ShownRow:
    """One showing: who was shown which document, when, in which entry and for what question."""

    seq: int
    time: str
    user: str
    action: str
    query: str
    doc_id: str
    groups: str
    folder: str


@dataclass
class WhoSaw:
    rows: list[ShownRow]
    total: int
    people: list[tuple[str, int]]
    documents: list[tuple[str, int, str, str]] = field(default_factory=list)  # doc, shows, first, last
    groups: list[tuple[str, int]] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # doc id -> path now (the service fills it in)


def who_saw(
    index: AuditIndex,
    documents: Sequence[str] = (),
    group: str | None = None,
    folder: str | None = None,
    person: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 500,
) -> WhoSaw:
    """Every showing of the given documents, of a group's documents (its groups at the time),
    of a folder's documents, and/or to one person, newest first (at most `limit` rows), with
    the people and (for a person) the documents and groups they were shown."""
    low, high = _bounds(since, until)
    dated = since is not None or until is not None
    with index.lock:
        names = index.names
        where, args = (["e.day BETWEEN ? AND ?"], [low, high]) if dated else (["1"], [])
        if documents:
            ids = [i for i in (names.find("doc", d) for d in documents) if i is not None] or [-1]
            where.append(f"s.doc IN ({','.join('?' * len(ids))})")
            args += ids
        if group:
            acls = names.acls_with(group) or [-1]
            where.append(f"s.acl IN ({','.join('?' * len(acls))})")
            args += acls
        if folder:
            root = folder.rstrip("/")
            ids = [i for name, i in names.of_kind("folder").items() if name == root or name.startswith(root + "/")]
            where.append(f"s.folder IN ({','.join('?' * len(ids or [-1]))})")
            args += ids or [-1]
        if person:
            where.append("s.person = ?")
            args.append(names.find("person", person) or -1)
        joined = f"FROM shown s JOIN entries e ON e.seq = s.seq WHERE {' AND '.join(where)}"
        # Undated counts need no entry: the showings alone answer them (a year of them, ~2M rows).
        base = joined if dated else f"FROM shown s WHERE {' AND '.join(where)}"
        db = index.db
        rows = [
            ShownRow(seq, stamp, names.name(p), action, query or "", names.name(d), names.name(a), names.name(f))
            for seq, stamp, p, action, query, d, a, f in db.execute(
                f"SELECT s.seq, e.time, s.person, e.action, e.query, s.doc, s.acl, s.folder {joined} "
                "ORDER BY s.seq DESC LIMIT ?", (*args, limit))
        ]
        total = int(db.execute(f"SELECT count(*) {base}", args).fetchone()[0])
        people = [(names.name(p), int(n)) for p, n in db.execute(
            f"SELECT s.person, count(*) AS n {base} GROUP BY s.person ORDER BY n DESC", args)]
        seen = WhoSaw(rows, total, people)
        if person:
            seen.documents = [(names.name(d), int(n), first, last) for d, n, first, last in db.execute(
                f"SELECT s.doc, count(*) AS n, min(e.time), max(e.time) {joined} GROUP BY s.doc ORDER BY n DESC",
                args)]
            counted: dict[str, int] = {}
            for acl, n in db.execute(f"SELECT s.acl, count(*) {base} GROUP BY s.acl", args):
                for g in filter(None, names.name(acl).split(",")):
                    counted[g] = counted.get(g, 0) + int(n)
            seen.groups = sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))
        return seen


@dataclass
class LogPage:
    seqs: list[int]
    total: int
    first_day: str | None
    last_day: str | None


def browse(
    index: AuditIndex,
    users: Sequence[str] = (),
    actions: Sequence[str] = (),
    since: str | None = None,
    until: str | None = None,
    text: str = "",
    limit: int = 500,
) -> LogPage:
    """The newest `limit` entries matching every filter (their seqs; read them from the log
    with index.entries), how many match in all, and the log's first and last day."""
    low, high = _bounds(since, until)
    with index.lock:
        names = index.names
        where, args = (["e.day BETWEEN ? AND ?"], [low, high]) if since or until else (["1"], [])
        if users:
            ids = [names.find("person", u) or -1 for u in users]
            where.append(f"e.person IN ({','.join('?' * len(ids))})")
            args += ids
        if actions:
            where.append(f"e.action IN ({','.join('?' * len(actions))})")
            args += list(actions)
        if text.strip():
            where.append("instr(lower(e.query), ?) > 0")
            args.append(text.strip().lower())
        clause = " AND ".join(where)
        db = index.db
        seqs = [int(s) for (s,) in db.execute(
            f"SELECT e.seq FROM entries e WHERE {clause} ORDER BY e.seq DESC LIMIT ?", (*args, limit))]
        total = int(db.execute(f"SELECT count(*) FROM entries e WHERE {clause}", args).fetchone()[0])
        first = db.execute("SELECT day FROM entries ORDER BY seq LIMIT 1").fetchone()
        last = db.execute("SELECT day FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        return LogPage(seqs, total, first[0] if first else None, last[0] if last else None)


def choices(index: AuditIndex) -> tuple[list[str], list[str]]:
    """The people and the actions that occur in the log (for the page's filters)."""
    with index.lock:  # interned as they were indexed: no scan of the entries
        return sorted(p for p in index.names.of_kind("actor") if p), sorted(index.names.of_kind("action"))


@dataclass
class GroupMonth:
    """A group's month: reads of its documents (their groups at the time), refusals of its
    members (their groups as the log recorded them) and alerts that name it."""

    group: str
    month: str
    questions: int
    people: int
    documents: int
    shows: int
    refusals: int
    alerts: int
    days: list[tuple[str, int]]
    by_person: list[tuple[str, int]]
    by_document: list[tuple[str, int]]
    alert_rows: list[tuple[int, str, str, str]]  # seq, time, rule, subject

    def figures(self) -> dict[str, int]:
        return {
            "questions": self.questions, "people": self.people, "documents": self.documents,
            "shows": self.shows, "refusals": self.refusals, "alerts": self.alerts,
        }


def group_month(index: AuditIndex, group: str, month: str) -> GroupMonth:
    low, high = f"{month}-01", f"{month}-31"
    with index.lock:
        names, db = index.names, index.db
        acls = names.acls_with(group) or [-1]
        marks = ",".join("?" * len(acls))
        base = f"FROM shown s JOIN entries e ON e.seq = s.seq WHERE e.day BETWEEN ? AND ? AND s.acl IN ({marks})"
        args = [low, high, *acls]
        questions = f"e.action IN ({','.join('?' * len(QUESTION_ACTIONS))})"
        asking = (*args, *QUESTION_ACTIONS)
        (asked,) = db.execute(f"SELECT count(DISTINCT s.seq) {base} AND {questions}", asking).fetchone()
        people, docs, shows = db.execute(f"SELECT count(DISTINCT s.person), count(DISTINCT s.doc), count(*) {base}",
                                         args).fetchone()
        days = [(d, int(n)) for d, n in db.execute(
            f"SELECT e.day, count(DISTINCT s.seq) {base} AND {questions} GROUP BY e.day ORDER BY e.day",
            (*args, *QUESTION_ACTIONS))]
        by_person = [(names.name(p), int(n)) for p, n in db.execute(
            f"SELECT s.person, count(*) AS n {base} GROUP BY s.person ORDER BY n DESC", args)]
        by_doc = [(names.name(d), int(n)) for d, n in db.execute(
            f"SELECT s.doc, count(*) AS n {base} GROUP BY s.doc ORDER BY n DESC", args)]
        (refusals,) = db.execute(
            f"SELECT count(*) FROM entries e WHERE e.day BETWEEN ? AND ? AND {REFUSAL} AND e.acl IN ({marks})",
            args).fetchone()
        alert_rows = [(int(s), t, r, subj) for s, t, r, subj in db.execute(
            f"SELECT a.seq, a.time, a.rule, a.subject FROM alerts a JOIN entries e ON e.seq = a.seq "
            f"WHERE e.day BETWEEN ? AND ? AND a.acl IN ({marks}) ORDER BY a.seq", args)]
    return GroupMonth(group, month, int(asked), int(people), int(docs), int(shows), int(refusals),
                      len(alert_rows), days, by_person, by_doc, alert_rows)
