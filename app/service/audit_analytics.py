"""The auditor's workbench (issue 27): the overview of a period, who was shown what, alerts and
their rules, a group's monthly report, one entry with its chain proof, and the log page, all
answered from the analytics index (app/audit/index.py), never by loading the log.

Auditors only: anyone else is refused and the refusal audited (`_denied`), on every door. Every
view is itself an audit entry (`audit_view` with what was viewed; `audit_report` with the
figures handed out; `alert_rule` for a changed rule). Alerts are appended to the log by
`check_alerts`, which the server runs every `audit_alert_interval_s` and every view runs first.

Usage:
    figures = service.audit_overview(auditor, since="2026-01-01", until="2026-03-31")
    seen = service.who_saw(auditor, document="hr/leave.pdf")
    report = service.audit_report(auditor, "hr", "2026-03", "html")
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app.audit.alerts import ALERT_USER, Rule, check_rule, mark_checked, pending_alerts, rules_in_force
from app.audit.analytics import GroupMonth, LogPage, Overview, WhoSaw, browse, choices, group_month, overview, who_saw
from app.audit.index import AuditIndex
from app.audit.report import report_csv, report_html
from app.identity.users import AUDITOR, User, check_group_name
from app.service.parts import BuiltPart, UseCase

log = logging.getLogger(__name__)
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
REPORT_FORMATS = {"csv": "text/csv", "html": "text/html"}


class EntryNotFound(LookupError):
    """The log holds no entry with that seq (anymore)."""


@dataclass(frozen=True)
class Report:
    filename: str
    media_type: str
    body: bytes
    figures: dict[str, int]


@dataclass(frozen=True)
class EntryProof:
    """An entry as the log holds it, and whether its place in the chain holds: its hash is the
    key's (authentic), it names the previous entry's hash (linked), the next names its own."""

    entry: dict[str, Any]
    authentic: bool
    linked: bool
    next_linked: bool | None  # None: it is the newest entry


@dataclass(frozen=True)
class LogView:
    entries: list[dict[str, Any]]
    total: int
    people: list[str]
    actions: list[str]
    first_day: str | None
    last_day: str | None


def _day(value: str | None, name: str) -> str | None:
    if value is None or value == "":
        return None
    value = str(value)[:10]
    if not _DAY.match(value):
        raise ValueError(f"{name} {value!r} is not a date; use YYYY-MM-DD")
    return value


class AlertWatch:
    """A daemon thread that runs `tick` at once (so a server builds a missing index before an
    auditor asks) and then every `interval_s` until stopped."""

    def __init__(self, interval_s: float, tick: Callable[[], Any]) -> None:
        self.interval_s, self.tick = interval_s, tick
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="kura-audit-alerts", daemon=True)

    def _run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception as exc:  # the next tick tries again; a view would raise it
                log.warning("audit alert check failed: %s", exc)
            if self._stop.wait(self.interval_s):
                return

    def stop(self) -> None:
        self._stop.set()
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout=30)


class AuditAnalytics(UseCase):
    audit_index = BuiltPart[AuditIndex]()
    _alert_watch: AlertWatch | None = None
    unrecorded_alerts: list[dict[str, Any]] = []  # raised while the log's end was broken (not appended)

    # --- the index, fresh, and the alerts it raises ---------------------------------------------
    def check_alerts(self) -> list[dict[str, Any]]:
        """Index what the log gained, append the alerts it raises (each once), and return them.
        A log whose end is broken gets none: an append would rewrite its head and hide what
        `kura audit verify` reports; they are kept for the page (`unrecorded_alerts`) instead."""
        index = self.audit_index
        with index.exclusive():
            index.refresh()
            head = int(index.meta("last_seq", "0"))
            found = pending_alerts(index, rules_in_force(index))
            broken = self.audit.end_problem() if found else None
            self.unrecorded_alerts = [{**f, "unrecorded": broken} for f in found] if broken else []
            written = [] if broken else [
                self.audit.append(user=ALERT_USER, role="system", action="alert", **fields) for fields in found
            ]
            raised = self.unrecorded_alerts or written
            for alert in raised[:5]:  # the server log names a few; the audit log holds them all
                log.warning("audit alert%s: %s", " (not written: the log's end is broken)" if broken else "",
                            alert["message"])
            if len(raised) > 5:
                log.warning("and %d more audit alerts (the auditor's workbench lists them)", len(raised) - 5)
            if written:
                index.refresh()
            if not broken:
                mark_checked(index, head)
        return written

    def start_alert_watch(self) -> None:
        """Check for alerts every `audit_alert_interval_s` while this service lives (the server)."""
        if self._alert_watch is None and self.settings.audit_alert_interval_s > 0:
            self._alert_watch = AlertWatch(self.settings.audit_alert_interval_s, self.check_alerts)
            self._alert_watch.thread.start()

    def close(self) -> None:
        if self._alert_watch is not None:
            self._alert_watch.stop()
        super().close()

    def _workbench(self, user: User, view: str, **fields: Any) -> AuditIndex:
        """The fresh index for an auditor, after auditing the view; anyone else is refused (audited)."""
        self._denied(user, AUDITOR, f"open the auditor's {view.replace('_', ' ')}", view=view)
        self.audit.append(user=user.name, role=AUDITOR, action="audit_view", view=view, **fields)
        self.check_alerts()  # the index as fresh as the log, this view's own entry included
        return self.audit_index

    # --- the views ----------------------------------------------------------------------------
    def audit_overview(self, user: User, since: str | None = None, until: str | None = None) -> Overview:
        since, until = _day(since, "since"), _day(until, "until")
        index = self._workbench(user, "overview", since=since, until=until)
        found = overview(index, since, until)
        found.names = self._paths([d for d, _ in found.documents])
        return found

    def who_saw(
        self,
        user: User,
        document: str | None = None,
        folder: str | None = None,
        group: str | None = None,
        person: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 500,
    ) -> WhoSaw:
        """Every showing of a document (an id, an id's start or part of its path), of a folder's or
        a group's documents, or to a person; newest first, at most `limit` rows."""
        if not any((document, folder, group, person)):
            raise ValueError("say whose reading to show: a document, a folder, a group or a person")
        since, until = _day(since, "since"), _day(until, "until")
        target = {"document": document, "folder": folder, "group": group, "person": person}
        index = self._workbench(user, "who_saw", **{k: v for k, v in target.items() if v}, since=since, until=until)
        documents = self.documents_named(document) if document else ()
        seen = who_saw(index, documents, group, folder, person, since, until, max(1, min(int(limit), 5000)))
        seen.names = self._paths([r.doc_id for r in seen.rows] + [d[0] for d in seen.documents])
        return seen

    def documents_named(self, text: str) -> list[str]:
        """Document ids an auditor means by `text`: an id or its start (also a deleted document's,
        from the index), or part of a path the manifest knows."""
        text = text.strip()
        found = {f.doc_id for f in self.manifest.all_files() if text and text in f.path}
        if len(text) >= 6:
            found |= {d for d in self.audit_index.names.of_kind("doc") if d.startswith(text)}
        return sorted(found)

    def _paths(self, doc_ids: Sequence[str]) -> dict[str, str]:
        """Each document id as its path now ('' for a document deleted since)."""
        return {d: next((f.path for f in self.manifest.files_of(d)), "") for d in dict.fromkeys(doc_ids)}

    def audit_alerts(self, user: User, limit: int = 200) -> tuple[list[Rule], list[dict[str, Any]]]:
        """The rules in force and the newest `limit` alerts (as the log holds them)."""
        index = self._workbench(user, "alerts")
        with index.lock:
            seqs = [s for (s,) in index.db.execute("SELECT seq FROM alerts ORDER BY seq DESC LIMIT ?", (limit,))]
        return rules_in_force(index), [*self.unrecorded_alerts, *index.entries(seqs)]

    def set_alert_rule(
        self, user: User, name: str, threshold: int, window_s: int, enabled: bool = True,
        params: dict[str, Any] | None = None,
    ) -> Rule:
        """Change a rule (recorded as an `alert_rule` entry; the index derives the rules from them)."""
        self._denied(user, AUDITOR, "change an alert rule", rule=name)
        rule = check_rule(name, threshold, window_s, enabled, params)
        self.audit.append(user=user.name, role=AUDITOR, action="alert_rule", rule=rule.name, threshold=rule.threshold,
                          window_s=rule.window_s, enabled=rule.enabled, params=rule.params)
        self.check_alerts()
        return rule

    def audit_report(self, user: User, group: str, month: str, fmt: str = "csv", lang: str = "en") -> Report:
        """A group's month as CSV or printable HTML; producing it is audited with its figures."""
        self._denied(user, AUDITOR, "produce an audit report", group=group, month=month)
        check_group_name(group)
        if not _MONTH.match(month or ""):
            raise ValueError(f"month {month!r} is not a month; use YYYY-MM, e.g. 2026-03")
        if fmt not in REPORT_FORMATS:
            raise ValueError(f"report format {fmt!r} is not known; use csv or html")
        self.check_alerts()
        index = self.audit_index
        figures: GroupMonth = group_month(index, group, month)
        names = self._paths([d for d, _ in figures.by_document])
        body = report_csv(figures, names) if fmt == "csv" else report_html(figures, names, lang)
        self.audit.append(user=user.name, role=AUDITOR, action="audit_report", group=group, month=month,
                          format=fmt, figures=figures.figures())
        return Report(f"kura-audit-{group}-{month}.{fmt}", REPORT_FORMATS[fmt], body, figures.figures())

    def audit_entry(self, user: User, seq: int) -> EntryProof:
        """One entry, read from the log where the index saw it, with its chain proof."""
        index = self._workbench(user, "entry", entry_seq=int(seq))
        entry = index.entry(int(seq))
        if entry is None:
            raise EntryNotFound(f"the audit log holds no entry #{seq}; search the log for it")
        before, after = index.entry(int(seq) - 1), index.entry(int(seq) + 1)
        linked = entry.get("prev") == (before or {}).get("hash") if before is not None else int(seq) == 1
        next_linked = None if after is None else after.get("prev") == entry.get("hash")
        return EntryProof(entry, self.audit.entry_is_authentic(entry), bool(linked), next_linked)

    def browse_audit(
        self,
        user: User,
        who: Sequence[str] = (),
        actions: Sequence[str] = (),
        since: str | None = None,
        until: str | None = None,
        text: str = "",
        limit: int = 500,
    ) -> LogView:
        """The newest `limit` entries matching the filters, read from the log by position."""
        since, until = _day(since, "since"), _day(until, "until")
        filters = {"users": list(who), "actions": list(actions), "since": since, "until": until, "text": text}
        index = self._workbench(user, "log", filters=filters)
        page: LogPage = browse(index, who, actions, since, until, text, max(1, min(int(limit), 5000)))
        people, known = choices(index)
        return LogView(index.entries(page.seqs), page.total, people, known, page.first_day, page.last_day)
