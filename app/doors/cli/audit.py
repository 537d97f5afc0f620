"""`kura audit ...`: verify the chain (also against a checkpoint or a SIEM's copy), search and
export entries for review, print a signed checkpoint, forward or stream to a SIEM, archive old
entries.

`search`, `export` and `verify` are the auditor's use case (app/service/auditing.py), called
as the local operator through the running server's API when a `kura serve` owns this data
directory, else in-process: the service checks the role and audits the read. `verify` first
checks the files itself, read-only, so a wiped log or a missing key is reported before anything
is written. `checkpoint`, `tail`, `archive` and `forward` are file-level tools on the log (no
store, no models, no service method); the log's own file lock lets them run beside a server.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import app.doors.cli.remote.commands as cli_remote
from app.audit.log import EXPORT_FORMATS, AuditKeyMissing, AuditLog
from app.doors.cli.remote.client import ServerError
from app.identity.keys import InvalidApiKey
from app.identity.users import AccessDenied, local_operator
from app.platform.settings import KuraSettings

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _log() -> AuditLog:
    return AuditLog(KuraSettings().audit_path)


def _operator_entry(log: AuditLog, action: str, **fields: object) -> None:
    log.append(user="local-operator", role="auditor", action=action, **fields)


def _auditing():  # noqa: ANN202 - a context manager yielding the Auditing use case
    from app.doors.cli.remote.usecases import RemoteAuditing

    return cli_remote.use_case(RemoteAuditing)


def _refused(action: Callable[[], Any]) -> Any:
    """A refusal (bad filter, missing key, the server's answer) is one red line and exit 2."""
    try:
        return action()
    except (ValueError, LookupError, AccessDenied, AuditKeyMissing, InvalidApiKey) as exc:
        message = str(exc)
    except ServerError as exc:
        message = exc.reason
    err.print(f"[red]{escape(message)}[/red]", highlight=False)
    raise typer.Exit(2)


# The filters `search` and `export` share (the Auditing use case's who/action/since/until).
UserFilter = Annotated[str | None, typer.Option(help="only this user's entries")]
ActionFilter = Annotated[str | None, typer.Option(help="only this action (login, ask, ingest, ...)")]
SinceFilter = Annotated[str | None, typer.Option(help="from this UTC date/time (inclusive), YYYY-MM-DD")]
UntilFilter = Annotated[str | None, typer.Option(help="up to this UTC date/time (exclusive)")]


@audit_app.command("verify")
def verify(
    archive: Annotated[bool, typer.Option(help="also check the archived segments")] = True,
    against: Annotated[
        Path | None,
        typer.Option(
            "--against",
            help="a checkpoint (`kura audit checkpoint`) or the SIEM's copy of the entries: "
            "report a rollback, truncation, wipe or replaced key",
        ),
    ] = None,
) -> None:
    """Check the chain; exit 1 and name each altered entry (file and line) if it was changed."""
    log = _log()
    # The files first, read-only: a wipe or a missing key is evidence that no write may touch.
    problems = [str(p) for p in log.verify(include_archive=archive)]
    if against is not None:
        if not against.is_file():
            err.print(f"[red]{against} does not exist[/red]; give a checkpoint or SIEM export file")
            raise typer.Exit(2)
        problems += [str(p) for p in _refused(lambda: log.verify_against(against)) if str(p) not in problems]
    # Then the auditor's use case (role check; it records the check only on a whole log).
    with _auditing() as auditing:
        found = _refused(lambda: auditing.verify_audit(local_operator()))
    problems += [str(p) for p in found if str(p) not in problems]
    if not problems:
        live = sum(1 for _ in log.entries())
        console.print(
            f"audit log intact: {live} live entries, {len(log.segments())} archived segments"
            + (f"; it extends {against}" if against is not None else ""),
            highlight=False,
        )
        return
    for problem in problems:
        console.print(f"[red]{escape(problem)}[/red]", markup=True, highlight=False)
    console.print(
        f"{len(problems)} problems: the audit log was altered; keep a copy of it as evidence"
    )
    raise typer.Exit(1)


@audit_app.command("search")
def search(
    user: UserFilter = None,
    action: ActionFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
    limit: Annotated[int, typer.Option(help="at most this many, the newest")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines instead of a table")] = False,
) -> None:
    """Show the newest matching entries (archive included); the search is itself audited."""
    if limit < 1:
        err.print("[red]--limit must be at least 1[/red]")
        raise typer.Exit(2)
    with _auditing() as auditing:
        entries = _refused(lambda: auditing.search_audit(local_operator(), user, action, since, until, limit))
    if as_json:
        for entry in entries:
            sys.stdout.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return
    table = Table()
    for column in ("seq", "time", "user", "role", "action", "details"):
        table.add_column(column, overflow="fold")
    for e in entries:
        details = {k: v for k, v in e.items() if k not in ("seq", "time", "user", "role", "action", "prev", "hash")}
        table.add_row(
            str(e.get("seq", "")),
            str(e.get("time", "")),
            str(e.get("user", "")),
            str(e.get("role", "")),
            str(e.get("action", "")),
            json.dumps(details, ensure_ascii=False)[:300],
        )
    # Entries hold what users typed and file names: never read as markup.
    console.print(table, markup=False, highlight=False)
    console.print(f"{len(entries)} entries", highlight=False)


@audit_app.command("export")
def export(
    dest: Annotated[Path, typer.Argument(help="file to write (.jsonl or .csv)")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="jsonl or csv (default: from the suffix)")
    ] = None,
    user: UserFilter = None,
    action: ActionFilter = None,
    since: SinceFilter = None,
    until: UntilFilter = None,
) -> None:
    """Export entries (archived ones included) for an auditor or a SIEM import."""
    fmt = fmt or ("csv" if dest.suffix.lower() == ".csv" else "jsonl")
    if fmt not in EXPORT_FORMATS:
        err.print(f"[red]unknown format {fmt!r}[/red]; use one of {', '.join(EXPORT_FORMATS)}")
        raise typer.Exit(2)
    _refused(_log().require_key)  # an export that cannot be audited is not made
    with _auditing() as auditing:
        count = _refused(lambda: auditing.export_audit(local_operator(), dest, fmt, user, action, since, until))
    console.print(f"wrote {count} entries to {dest}", highlight=False)


@audit_app.command("tail")
def tail(
    lines: Annotated[
        int, typer.Option("-n", "--lines", help="how many recent entries to print first")
    ] = 10,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="keep printing new entries")
    ] = False,
) -> None:
    """Print entries as JSON Lines on stdout; with --follow, a stream a SIEM forwarder can read."""
    log = _log()
    recent = list(log.entries())[-lines:] if lines > 0 else []
    for entry in recent:
        sys.stdout.write(json.dumps(entry, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    if not follow:
        return
    after = (
        int(recent[-1]["seq"]) if recent else max((int(e["seq"]) for e in log.entries()), default=0)
    )
    try:
        for entry in log.follow(after_seq=after):
            sys.stdout.write(json.dumps(entry, ensure_ascii=False) + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass


@audit_app.command("archive")
def archive(
    before: Annotated[
        str, typer.Option(help="archive entries older than this UTC date, YYYY-MM-DD")
    ],
) -> None:
    """Retention: move old entries to a signed segment (kept, never deleted); verify covers it."""
    log = _log()
    try:
        segment = log.archive(before)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if segment is None:
        console.print(f"no entries older than {before}")
        return
    _operator_entry(
        log,
        "audit_archive",
        segment=segment.path.name,
        first_seq=segment.first_seq,
        last_seq=segment.last_seq,
    )
    console.print(f"archived entries {segment.first_seq}-{segment.last_seq} to {segment.path}")


@audit_app.command("checkpoint")
def checkpoint(
    out: Annotated[Path | None, typer.Option("--out", help="also write it to this file")] = None,
) -> None:
    """Print a signed checkpoint (seq, head hash, time) to keep off this machine; later,
    `kura audit verify --against FILE` reports any log that does not extend it."""
    log = _log()
    _operator_entry(log, "audit_checkpoint")
    text = json.dumps(log.checkpoint())
    sys.stdout.write(text + "\n")
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")


@audit_app.command("forward")
def forward(
    once: Annotated[bool, typer.Option(help="deliver what is pending, then exit")] = False,
    batch: Annotated[int, typer.Option(help="entries per connection")] = 500,
) -> None:
    """Forward the log to the SIEM at KURA_AUDIT_SYSLOG (syslog over TLS, at least once).
    `kura serve` does this by itself; run this where no server runs, or to drain the queue."""
    from app.audit.siem import SiemForwarder, queue_depth

    log = _log()
    forwarder = SiemForwarder.from_settings(KuraSettings(), log, batch=batch)
    try:
        forwarder.run(once=once)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        err.print(
            f"[red]SIEM {forwarder.target} not reached: {exc}[/red]; "
            f"{queue_depth(log)} entries stay queued on disk and go out on the next try",
            highlight=False,
        )
        raise typer.Exit(1) from None
    console.print(f"{queue_depth(log)} audit entries wait for {forwarder.target}", highlight=False)
