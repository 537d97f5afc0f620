"""`kura audit overview|who-saw|alerts|report|entry`: the auditor's workbench from a shell
(app/service/audit_analytics.py), through the running server's API when one owns this data
directory, else in-process; either way the service refuses anyone but an auditor and audits
the view. The shell acts as the local operator; with `KURA_API_KEY` set (never on the command
line, where `ps` shows it) it acts as that key's owner, so an employee's or admin's key is
refused, audited, and exits 2.

Usage:
    kura audit who-saw --document hr/leave-policy.pdf --since 2026-01-01
    kura audit report --group hr --month 2026-03 --format html --out hr-2026-03.html
    KURA_API_KEY=kura_... kura audit alerts
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

import app.doors.cli.remote.commands as cli_remote
from app.doors.cli.audit import SinceFilter, UntilFilter, _refused, audit_app
from app.identity.keys import AUDIT_SCOPE
from app.identity.users import User, local_operator
from app.platform.settings import KuraSettings

console = Console()
AsJson = Annotated[bool, typer.Option("--json", help="JSON instead of tables")]


@contextmanager
def _workbench() -> Iterator[tuple[Any, User]]:
    """(the AuditAnalytics use case, who calls it): the server's over its API, or this process's."""
    from app.doors.cli.remote.usecases import RemoteAuditAnalytics

    key = os.environ.get("KURA_API_KEY", "").strip()
    client = cli_remote.server()
    if client is not None:
        if key:  # the server resolves the key's owner and refuses (and audits) a wrong one
            client.http.headers["Authorization"] = f"Bearer {key}"
        case: Any = RemoteAuditAnalytics(client)
        user = local_operator()
    else:
        from app.service import KuraService

        case = KuraService(KuraSettings())
        try:
            user = _refused(lambda: case.api_caller(key, AUDIT_SCOPE)[0]) if key else local_operator()
        except BaseException:
            case.close()
            raise
    try:
        yield case, user
    finally:
        case.close()


def _print(rows: list[tuple], columns: tuple[str, ...], title: str = "") -> None:
    table = Table(title=title or None)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    console.print(table, markup=False, highlight=False)  # names and questions are data, never markup


def _json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")


@audit_app.command("overview")
def overview(since: SinceFilter = None, until: UntilFilter = None, as_json: AsJson = False) -> None:
    """Questions, refusals, found-nothing and unsupported shares, feedback and the busiest
    documents for a period (local days, both included)."""
    with _workbench() as (case, user):
        found = _refused(lambda: case.audit_overview(user, since, until))
    if as_json:
        _json({**asdict(found), "nothing_share": found.nothing_share, "unsupported_share": found.unsupported_share})
        return
    _print(sorted(found.totals.items()), ("measure", "count"), "totals")
    shares = (("found nothing", found.nothing_share), ("unsupported answers", found.unsupported_share))
    _print([(k, "-" if v is None else f"{v:.1%}") for k, v in shares], ("share", "of"))
    for title, rows in (("people", found.users), ("document groups", found.groups),
                        ("departments", found.departments)):
        _print(list(rows), (title, "count"))
    _print([(found.names.get(d) or "(deleted)", d[:12], n) for d, n in found.documents], ("document", "id", "shown"))


@audit_app.command("who-saw")
def who_saw(
    document: Annotated[str | None, typer.Option(help="a document id, its start, or part of its path")] = None,
    folder: Annotated[str | None, typer.Option(help="an ingested folder (its subfolders too)")] = None,
    group: Annotated[str | None, typer.Option(help="documents of this group (its groups at the time)")] = None,
    person: Annotated[str | None, typer.Option(help="what this person was shown")] = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    limit: Annotated[int, typer.Option(help="at most this many showings, newest first")] = 200,
    as_json: AsJson = False,
) -> None:
    """Who was shown passages of a document, a folder or a group, when, and for what question;
    or what one person was shown. Each row names its audit entry (`kura audit entry SEQ`)."""
    with _workbench() as (case, user):
        found = _refused(lambda: case.who_saw(user, document, folder, group, person, since, until, limit))
    if as_json:
        _json(asdict(found))
        return
    rows = [(r.seq, r.time, r.user, r.action, found.names.get(r.doc_id) or r.doc_id[:12], r.groups, r.query[:80])
            for r in found.rows]
    _print(rows, ("entry", "time", "person", "action", "document", "groups then", "question"))
    _print(list(found.people), ("person", "showings"))
    if person:
        _print(list(found.groups), ("group", "showings"))
    console.print(f"{found.total} showings; {len(found.rows)} listed", highlight=False)


@audit_app.command("alerts")
def alerts(
    rule: Annotated[str | None, typer.Option(help="change this rule (with --threshold and --window-s)")] = None,
    threshold: Annotated[int | None, typer.Option(help="events that raise an alert")] = None,
    window_s: Annotated[int | None, typer.Option(help="within this many seconds")] = None,
    disable: Annotated[bool, typer.Option(help="switch the rule off")] = False,
    limit: Annotated[int, typer.Option(help="at most this many alerts, newest first")] = 50,
    as_json: AsJson = False,
) -> None:
    """The alert rules and the newest alerts (alerts are audit entries, forwarded to the SIEM)."""
    with _workbench() as (case, user):
        if rule is not None:
            if threshold is None or window_s is None:
                raise typer.BadParameter("give --threshold and --window-s with --rule")
            _refused(lambda: case.set_alert_rule(user, rule, threshold, window_s, not disable))
        rules, raised = _refused(lambda: case.audit_alerts(user, limit))
    if as_json:
        _json({"rules": [r.as_dict() for r in rules], "alerts": raised})
        return
    _print([(r.name, r.threshold, r.window_s, "on" if r.enabled else "off", json.dumps(r.params)) for r in rules],
           ("rule", "threshold", "window s", "state", "parameters"))
    _print([(a.get("seq"), a.get("time"), a.get("rule"), a.get("message", "")) for a in raised],
           ("entry", "time", "rule", "alert"))


@audit_app.command("report")
def report(
    group: Annotated[str, typer.Option(help="the group the report is about")],
    month: Annotated[str, typer.Option(help="YYYY-MM (local time)")],
    fmt: Annotated[str, typer.Option("--format", help="csv or html (printable, with charts)")] = "csv",
    out: Annotated[Path | None, typer.Option(help="file to write (default: kura-audit-GROUP-MONTH.FORMAT)")] = None,
    lang: Annotated[str, typer.Option(help="en or ja (the HTML page's words)")] = "en",
) -> None:
    """A group's monthly report: questions, people, documents shown, refusals, alerts (audited)."""
    with _workbench() as (case, user):
        made = _refused(lambda: case.audit_report(user, group, month, fmt, lang))
    dest = out or Path(made.filename)
    dest.write_bytes(made.body)
    figures = ", ".join(f"{k} {v}" for k, v in made.figures.items())
    console.print(f"wrote {dest}: {figures}", highlight=False, markup=False)


@audit_app.command("entry")
def entry(seq: Annotated[int, typer.Argument(help="the entry's seq (its chain position)")],
          as_json: AsJson = False) -> None:
    """One entry as the log holds it, and whether its chain position holds."""
    with _workbench() as (case, user):
        proof = _refused(lambda: case.audit_entry(user, seq))
    if as_json:
        _json(asdict(proof))
        return
    sys.stdout.write(json.dumps(proof.entry, ensure_ascii=False, indent=1) + "\n")
    holds = proof.authentic and proof.linked and proof.next_linked is not False
    console.print(
        f"authentic: {proof.authentic}; links to #{seq - 1}: {proof.linked}; "
        f"#{seq + 1} links to it: {proof.next_linked}; chain position {'holds' if holds else 'DOES NOT HOLD'}",
        highlight=False,
    )
