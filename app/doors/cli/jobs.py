"""`kura jobs list|show|cancel|work` and `kura folders add|list|remove`: the durable ingestion
queue and the watched folders, through app/service/__init__.py like every other door.

These read and write the queue in the data directory (ingest/jobs.py), so they work beside a
running server: `kura jobs cancel 12` stops a job the server's writer is running, and a folder
added with `kura folders add` is re-synced by the server's writer on its interval.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from app.identity.users import local_operator, parse_groups

jobs_app = typer.Typer(no_args_is_help=True, help="Ingestion jobs: list, show, cancel, or run the writer.")
folders_app = typer.Typer(no_args_is_help=True, help="Watched folders, re-synced as jobs on their interval.")
console = Console()


def _service():
    from app.platform.settings import KuraSettings
    from app.service import KuraService

    return KuraService(KuraSettings())


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else "–"


def _files(progress: dict) -> str:
    if "files_total" not in progress:
        return ""
    return f"{progress['files_done']}/{progress['files_total']}"


@jobs_app.command("list")
def list_jobs(limit: Annotated[int, typer.Option(help="how many, newest first")] = 30) -> None:
    """Every job, newest first, with its state and progress."""
    service = _service()
    try:
        jobs = service.jobs(local_operator(), limit)
    finally:
        service.close()
    table = Table()
    for column in ("job", "kind", "target", "by", "state", "submitted", "files", "chunks/s"):
        table.add_column(column)
    for j in jobs:
        rate = j.progress.get("chunks_per_s")
        table.add_row(
            str(j.id), j.kind, j.target, j.submitted_by, j.shown_state, _when(j.submitted_at),
            _files(j.progress), "" if rate is None else f"{rate:.1f}",
        )  # fmt: skip
    console.print(table)


@jobs_app.command("show")
def show_job(job_id: Annotated[int, typer.Argument(help="job id (kura jobs list)")]) -> None:
    """One job: who submitted it, its state, progress, and its report per file."""
    service = _service()
    try:
        job = service.job(local_operator(), job_id)
    finally:
        service.close()
    console.print(f"job {job.id}: {job.kind} {job.target}", markup=False, highlight=False)
    console.print(
        f"submitted by {job.submitted_by} at {_when(job.submitted_at)}; state {job.shown_state}; "
        f"started {_when(job.started_at)}; finished {_when(job.finished_at)}; attempts {job.attempts}",
        markup=False,
        highlight=False,
    )
    p = job.progress
    if p:
        eta = p.get("eta_s")
        console.print(
            f"progress: {_files(p)} files, {p.get('pages', 0)} pages, {p.get('chunks', 0)} chunks, "
            f"{p.get('chunks_per_s', 0)} chunks/s, ETA {'–' if eta is None else f'{eta:.0f} s'}, "
            f"current {p.get('current', '')}",
            markup=False,
            highlight=False,
        )
    if job.error:
        console.print(f"error: {job.error}", markup=False, highlight=False)
    results = job.report.get("results")
    if results:
        table = Table()
        for column in ("file", "status", "chunks", "pages", "reason"):
            table.add_column(column)
        for r in results:
            table.add_row(r["path"], r["status"], str(r["chunks"]), str(r["pages"]), r["reason"])
        console.print(table)
    elif job.report:
        console.print(job.report, markup=False, highlight=False)


@jobs_app.command("cancel")
def cancel_job(job_id: Annotated[int, typer.Argument(help="job id (kura jobs list)")]) -> None:
    """Cancel a queued or running job: files it finished stay searchable, the rest untouched."""
    service = _service()
    try:
        job = service.cancel_job(local_operator(), job_id)
    finally:
        service.close()
    console.print(f"job {job.id}: {job.shown_state}")


@jobs_app.command("work")
def work() -> None:
    """Run the ingest writer in the foreground until stopped (SIGTERM or Ctrl-C): it takes queued
    jobs and re-syncs watched folders. Only one writer runs per data directory; a second waits."""
    service = _service()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        service.start_writer()
        console.print(f"kura ingest writer for {service.settings.data_dir} (Ctrl-C stops it between two files)")
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        service.close()


@folders_app.command("add")
def add_folder(
    path: Annotated[Path, typer.Argument(help="folder to re-sync on an interval")],
    groups: Annotated[str, typer.Option(help="ACL groups that may read it (required; everyone: all)")] = "",
    every: Annotated[str, typer.Option(help="interval: 30s, 15m, 2h, 1d")] = "15m",
) -> None:
    """Watch a folder: the server's ingest writer re-syncs it as a job every interval (adding,
    replacing and removing what changed). Adding it again changes its groups and interval."""
    from ingest.jobs import parse_interval

    service = _service()
    try:
        folder = service.watch_folder(local_operator(), path, parse_groups(groups), parse_interval(every))
    finally:
        service.close()
    console.print(
        f"watching {folder.path} for groups {', '.join(folder.groups)} every {folder.every_s:.0f} s "
        "(run by `kura serve` or `kura jobs work`)",
        markup=False,
        highlight=False,
    )


@folders_app.command("list")
def list_folders() -> None:
    """Watched folders with their last run, next run and last report."""
    service = _service()
    try:
        user = local_operator()
        folders = service.watched_folders(user)
        last = {f.last_job: service.job(user, f.last_job) for f in folders if f.last_job is not None}
    finally:
        service.close()
    table = Table()
    for column in ("folder", "groups", "every", "last run", "next run", "last job", "last report"):
        table.add_column(column)
    for f in folders:
        job = last.get(f.last_job)
        report = ""
        if job is not None:
            results = job.report.get("results") or []
            changed = sum(1 for r in results if r["status"] in ("ingested", "linked", "removed"))
            failed = sum(1 for r in results if r["status"] == "failed")
            report = f"{job.shown_state}: {changed} changed, {failed} failed" + (f" ({job.error})" if job.error else "")
        table.add_row(
            f.path, ", ".join(f.groups), f"{f.every_s:.0f} s", _when(f.last_run), _when(f.next_run),
            "" if f.last_job is None else str(f.last_job), report,
        )  # fmt: skip
    console.print(table)


@folders_app.command("remove")
def remove_folder(path: Annotated[Path, typer.Argument(help="a watched folder")]) -> None:
    """Stop watching a folder (what it ingested stays searchable; delete documents separately)."""
    service = _service()
    try:
        service.unwatch_folder(local_operator(), path)
    finally:
        service.close()
    console.print(f"stopped watching {path.expanduser().resolve()}", markup=False, highlight=False)
