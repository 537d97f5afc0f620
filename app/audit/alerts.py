"""Alert rules over the audit log: each rule counts one kind of event per subject (a person, an
API key, the chain) and fires when `threshold` of them fall within `window_s` seconds. An alert
is an `alert` entry appended to the log itself, so it is kept, chained and forwarded to the
SIEM like every other entry; the index lists it.

Rules start from DEFAULT_RULES; an auditor's change is an `alert_rule` entry in the log (so it
is audited, backed up with the log, and the index derives the rules in force from it).

Evaluation is deterministic over the log: a burst's key is its rule, subject and the seq of
the event that completed it, and the events an alert consumed are not counted again; so
evaluating again (after a restart or an index rebuild) finds the alerts already in the log
and appends nothing twice.

Usage:
    rules = rules_in_force(index)
    for fields in pending_alerts(index, rules):
        audit.append(user=ALERT_USER, role="system", action="alert", **fields)
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from app.audit.index import AuditIndex

ALERT_USER = "kura-alerts"


@dataclass(frozen=True)
class Rule:
    name: str
    threshold: int
    window_s: int
    enabled: bool = True
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_RULES: dict[str, Rule] = {
    # More than a few refusals or denials for one person within an hour.
    "refusals": Rule("refusals", 10, 3600),
    # Questions or searches outside working hours (local time, the index's zone), once a day a person.
    "after_hours": Rule("after_hours", 1, 86400, params={"start": 7, "end": 20, "workdays": [0, 1, 2, 3, 4]}),
    # A person shown a document none of whose groups they held at the time (stale session, bug).
    "stale_group": Rule("stale_group", 1, 3600),
    # An API key used from an address it was never used from before.
    "new_address": Rule("new_address", 1, 3600),
    # A gap, a broken link, a forged entry, or a head the log no longer holds.
    "chain": Rule("chain", 1, 60),
}


def check_rule(name: str, threshold: int, window_s: int, enabled: bool = True,
               params: dict[str, Any] | None = None) -> Rule:
    """A rule an auditor set, checked; ValueError names what to change."""
    if name not in DEFAULT_RULES:
        raise ValueError(f"no alert rule {name!r}; rules are {', '.join(DEFAULT_RULES)}")
    if not 1 <= int(threshold) <= 100_000:
        raise ValueError(f"threshold {threshold!r} is out of range: give 1 to 100000 events")
    if not 1 <= int(window_s) <= 31 * 86400:
        raise ValueError(f"window {window_s!r} s is out of range: give 1 s to 31 days (2678400 s)")
    chosen = {**DEFAULT_RULES[name].params, **(params or {})}
    if name == "after_hours":
        start, end = int(chosen["start"]), int(chosen["end"])
        days = sorted({int(d) for d in chosen["workdays"]})
        if not (0 <= start < end <= 24) or any(not 0 <= d <= 6 for d in days):
            raise ValueError("working hours need 0 <= start < end <= 24 and workdays 0 (Monday) to 6 (Sunday)")
        chosen = {"start": start, "end": end, "workdays": days}
    elif set(chosen) - set(DEFAULT_RULES[name].params):
        raise ValueError(f"rule {name!r} takes no parameters {sorted(set(chosen))}")
    return Rule(name, int(threshold), int(window_s), bool(enabled), chosen)


def rules_in_force(index: AuditIndex) -> list[Rule]:
    """The default rules with the auditors' latest changes (from `alert_rule` entries)."""
    with index.lock:
        changed = {name: json.loads(body) for name, body in index.db.execute("SELECT name, body FROM rules")}
    rules = []
    for name, default in DEFAULT_RULES.items():
        body = changed.get(name)
        rules.append(replace(default, **{k: v for k, v in (body or {}).items() if v is not None}))
    return rules


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else 0.0


def _events(index: AuditIndex, rule: Rule, since_seq: int) -> list[tuple[int, str, str, int | None, str]]:
    """(seq, time, subject, groups, detail) of this rule's events that can still complete a
    burst: the new ones (seq > since_seq) and those within one window before the first."""
    db = index.db
    if rule.name == "after_hours":
        p = rule.params
        days = ",".join(str(int(d)) for d in p["workdays"]) or "-1"
        outside = f"NOT (wday IN ({days}) AND hour >= {int(p['start'])} AND hour < {int(p['end'])})"
        query = (f"SELECT seq, time, person, acl, action FROM entries WHERE action IN ('query', 'search') "
                 f"AND {outside} AND seq > ? ORDER BY seq")
        first = db.execute(query + " LIMIT 1", (since_seq,)).fetchone()
        if first is None:
            return []
        start = min(_before(index, first[1], rule.window_s), first[0] - 1)
        return [(s, t, index.names.name(p_), a, act) for s, t, p_, a, act in db.execute(query, (start,))]
    query = "SELECT seq, time, subject, acl, detail FROM signals WHERE rule = ? AND seq > ? ORDER BY seq"
    first = db.execute(query + " LIMIT 1", (rule.name, since_seq)).fetchone()
    if first is None:
        return []
    start = _before(index, first[1], rule.window_s)
    return list(db.execute(query, (rule.name, min(start, first[0] - 1))))


def _before(index: AuditIndex, stamp: str, window_s: int) -> int:
    """The seq before the first entry at most `window_s` seconds older than `stamp` (entries
    are written in time order, so a binary search over seq finds it in ~20 reads)."""
    cutoff = datetime.fromtimestamp(_epoch(stamp) - window_s, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    low, high = 0, int(index.db.execute("SELECT max(seq) FROM entries").fetchone()[0] or 0)
    while low < high:
        middle = (low + high) // 2
        row = index.db.execute("SELECT time FROM entries WHERE seq > ? ORDER BY seq LIMIT 1", (middle,)).fetchone()
        if row is None or str(row[0]) >= cutoff:
            high = middle
        else:
            low = middle + 1
    return low


def pending_alerts(index: AuditIndex, rules: list[Rule]) -> list[dict[str, Any]]:
    """The alert entries the log should hold and does not yet (fields for AuditLog.append)."""
    with index.lock:
        checked = int(index.meta("alerts_checked", "0"))
        found: list[dict[str, Any]] = []
        for rule in rules:
            if rule.enabled:
                found += _bursts(index, rule, _events(index, rule, checked))
        return found


def _bursts(index: AuditIndex, rule: Rule, events: list[tuple]) -> list[dict[str, Any]]:
    """Alerts for every `threshold` events of one subject within `window_s`; after an alert its
    subject is quiet for one window (one alert a burst), except chain problems: each is told."""
    db = index.db
    quiet: dict[str, tuple[int, float]] = {}  # subject -> (last seq consumed, quiet until)
    for subject, upto in db.execute("SELECT subject, max(upto) FROM alerts WHERE rule = ? GROUP BY subject",
                                    (rule.name,)):
        row = db.execute("SELECT time FROM entries WHERE seq = ?", (upto,)).fetchone()
        quiet[str(subject)] = (int(upto), _epoch(str(row[0])) + rule.window_s if row else 0.0)
    keys = {k for (k,) in db.execute("SELECT key FROM alerts WHERE rule = ?", (rule.name,))}
    open_: dict[str, deque[tuple]] = {}
    out = []
    for event in events:
        seq, stamp, subject = int(event[0]), str(event[1]), str(event[2])
        now = _epoch(stamp)
        upto, until = quiet.get(subject, (0, 0.0))
        if seq < upto or (rule.name != "chain" and (seq == upto or now < until)):
            continue
        window = open_.setdefault(subject, deque())
        window.append(event)
        while window and now - _epoch(str(window[0][1])) > rule.window_s:
            window.popleft()
        if len(window) < rule.threshold:
            continue
        burst = list(window)
        window.clear()
        quiet[subject] = (seq, now + rule.window_s)
        key = f"{rule.name}:{subject}:{seq}"
        if rule.name == "chain":  # two problems found at one position are two alerts
            key += ":" + hashlib.sha256(str(event[4]).encode()).hexdigest()[:12]
        if key not in keys:
            out.append(_alert(index, rule, subject, key, burst))
    return out


def _alert(index: AuditIndex, rule: Rule, subject: str, key: str, burst: list[tuple]) -> dict[str, Any]:
    groups = sorted({g for e in burst for g in index.names.name(e[3]).split(",") if g and g != "everyone"})
    seqs = [int(e[0]) for e in burst]
    first, last = str(burst[0][1]), str(burst[-1][1])
    details = sorted({str(e[4]) for e in burst if e[4]})[:20]
    return {
        "rule": rule.name,
        "subject": subject,
        "key": key,
        "count": len(burst),
        "threshold": rule.threshold,
        "window_s": rule.window_s,
        "first_seq": seqs[0],
        "upto": seqs[-1],
        "seqs": seqs[:50],
        "groups": groups,
        "details": details,
        "message": _message(rule, subject, len(burst), first, last, details),
    }


def _message(rule: Rule, subject: str, count: int, first: str, last: str, details: list[str]) -> str:
    span = f"between {first} and {last}" if first != last else f"at {first}"
    if rule.name == "refusals":
        return f"{subject} was refused or denied {count} times {span} (threshold {rule.threshold} in {rule.window_s} s)"
    if rule.name == "after_hours":
        p = rule.params
        return f"{subject} asked {count} question(s) outside working hours ({p['start']}:00-{p['end']}:00) {span}"
    if rule.name == "stale_group":
        return f"{subject} was shown {count} document(s) of groups they did not hold at the time, {span}"
    if rule.name == "new_address":
        return f"API key used from a new address: {', '.join(details)} ({subject}) {span}"
    return f"the audit chain: {'; '.join(details)}"


def mark_checked(index: AuditIndex, seq: int) -> None:
    with index.lock:
        index.db.execute("INSERT OR REPLACE INTO meta VALUES ('alerts_checked', ?)", (str(seq),))
