"""Scheduled backups: when the next one is due, where it goes, which old ones go, and how old the
newest good one is. Every KURA_BACKUP_EVERY the server's thread asks the Operations use case to
take one into KURA_BACKUP_DIR (it writes and audits it, and turns a failure into an alert); the
newest KURA_BACKUP_KEEP scheduled backups are kept. The System page and the metric
`kura_backup_age_seconds` read `status()`.

Usage:
    schedule = BackupSchedule(settings)       # a part of the service (app/service/parts.py)
    schedule.start(take=service.scheduled_backup)
    schedule.status().overdue                 # no good backup for twice the schedule
"""

from __future__ import annotations

import calendar
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.service.data_files import CHECKSUMS, META

if TYPE_CHECKING:
    from app.platform.settings import KuraSettings

log = logging.getLogger(__name__)
SCHEDULED = "scheduled-"  # the folders the schedule made, and the only ones it prunes
RETRY_S = 3600.0  # after a failure, try again this soon (or at the next interval, if sooner)


@dataclass(frozen=True)
class BackupStatus:
    every_s: float | None  # None: no schedule (KURA_BACKUP_EVERY unset)
    folder: Path
    keep: int
    last_good: float | None  # epoch seconds of the newest good backup known, None: none
    last_error: str | None  # why the last scheduled backup failed; None once one succeeds
    now: float

    @property
    def age_s(self) -> float | None:
        return None if self.last_good is None else max(0.0, self.now - self.last_good)

    @property
    def overdue(self) -> bool:
        """Scheduled, and no good backup for more than twice the schedule (or none at all)."""
        return self.every_s is not None and (self.age_s is None or self.age_s > 2 * self.every_s)


def is_complete(folder: Path) -> bool:
    """A backup that finished: its checksum list is written last."""
    return (folder / CHECKSUMS).is_file() and (folder / META).is_file()


def taken_at(folder: Path) -> float | None:
    """When the backup in `folder` was taken (its backup.json), or None if unreadable."""
    try:
        created = json.loads((folder / META).read_text())["created"]
        return float(calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def newest_good(folder: Path) -> float | None:
    """When the newest finished backup in `folder` was taken (a restart finds it there)."""
    if not folder.is_dir():
        return None
    times = [t for p in folder.iterdir() if p.is_dir() and is_complete(p) and (t := taken_at(p)) is not None]
    return max(times, default=None)


def scheduled_folder(folder: Path, now: float | None = None) -> Path:
    """A new folder name for a scheduled backup: scheduled-<UTC time>, numbered within a second."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    path, n = folder / f"{SCHEDULED}{stamp}", 1
    while path.exists():
        n += 1
        path = folder / f"{SCHEDULED}{stamp}-{n}"
    return path


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete scheduled backups beyond the newest `keep` finished ones, and unfinished ones older
    than the newest finished one. Backups taken by hand into the same folder are never touched."""
    mine = sorted((p for p in folder.iterdir() if p.is_dir() and p.name.startswith(SCHEDULED)), key=_order)
    done = [p for p in mine if is_complete(p)]
    doomed = done[: max(0, len(done) - keep)]
    if done:
        doomed += [p for p in mine if not is_complete(p) and _order(p) < _order(done[-1])]
    for path in doomed:
        shutil.rmtree(path)
    return sorted(doomed)


def _order(path: Path) -> tuple[str, int]:
    """scheduled-<stamp>[-n]: by time, then by the number within that second."""
    stamp, _, n = path.name.removeprefix(SCHEDULED).partition("-")
    return stamp, int(n) if n.isdigit() else 1


class BackupSchedule:
    """The schedule's settings, what it knows of the last good backup, and its thread."""

    def __init__(self, settings: KuraSettings) -> None:
        self.every_s = settings.backup_every_s
        self.folder = settings.backup_folder
        self.keep = settings.backup_keep
        self._last_good = newest_good(self.folder)
        self._last_error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def succeeded(self, when: float | None = None) -> None:
        with self._lock:
            taken = time.time() if when is None else when
            self._last_good = max(taken, self._last_good or 0.0)
            self._last_error = None

    def failed(self, reason: str) -> None:
        with self._lock:
            self._last_error = reason

    def status(self) -> BackupStatus:
        with self._lock:
            return BackupStatus(self.every_s, self.folder, self.keep, self._last_good, self._last_error, time.time())

    def start(self, take: Callable[[], object]) -> bool:
        """Run `take` every `every_s` in a thread (the first at once when no good backup is
        newer than the schedule); False when there is no schedule. `take` reports its own
        failures (`failed`); one that raises is recorded the same way."""
        if self.every_s is None or self._thread is not None:
            return self._thread is not None
        self._thread = threading.Thread(target=self._run, args=(take,), name="kura-backups", daemon=True)
        self._thread.start()
        return True

    def _run(self, take: Callable[[], object]) -> None:
        every = float(self.every_s or 0)
        while True:
            status = self.status()
            if status.last_error is not None:
                wait = min(every, RETRY_S)
            elif status.last_good is None:
                wait = 0.0
            else:
                wait = max(0.0, status.last_good + every - time.time())
            if self._stop.wait(wait):
                return
            try:
                take()
            except Exception as exc:  # the thread must outlive a bug; the failure is recorded
                log.exception("scheduled backup failed")
                self.failed(f"{type(exc).__name__}: {exc}")

    def stop(self) -> None:
        """Stop the thread, after the backup it is writing (if any) is finished."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
