"""The audit log: append-only JSON Lines, each entry chained to the one before by an HMAC.

`hash = HMAC-SHA256(key, previous hash + canonical JSON of the entry without its hash)`, with
the key in `<log>.key` beside the log (mode 0600). A keyed chain matters: with a plain sha256
anyone who can write the file could append a well-formed forged entry. A signed `<log>.head`
records the newest entry, so deleting entries at the end is detected too. `verify()` reports
every edited, deleted, reordered, inserted or appended entry by line and sequence number.

The key is what makes the chain mean anything, so kura fails closed on it: once a log exists,
a missing `audit.key` stops every write (`AuditKeyMissing`, which says how to restore it) and
a new key is only ever made together with the first entry of a new log. A rollback to an old
copy, a truncation with an old head, or a wipe leaves a self-consistent chain behind; only an
anchor kept elsewhere shows it: `checkpoint()` signs (seq, head hash, time) for an auditor or
the SIEM stream (app/audit/siem.py), and `verify_against(file)` reports any log that does not extend
it. Every file is created 0600: the log holds every question asked.

Retention never deletes silently: `archive(before=...)` moves the oldest entries into a signed
segment under `audit-archive/` (the segment's signature holds its last hash) and the live log
continues from it (`<log>.anchor`), so `verify(include_archive=True)` checks the whole history.

Usage:
    log = AuditLog(Path("audit.jsonl"))
    log.append(user="alice", role="employee", action="query", query="leave policy")
    problems = log.verify()      # [] when intact
    log.export(Path("audit.csv"), "csv", user="alice", since="2025-01-01")
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
CHECKPOINT_KIND = "kura-audit-checkpoint"
_PRIVATE = 0o600  # every file of the log: it holds every question and answer

log = logging.getLogger(__name__)
EXPORT_FORMATS = ("jsonl", "csv")
_CORE = ("seq", "time", "user", "role", "action")
_READABLE = ("query", "answer", "documents", "chunks")
_CSV_COLUMNS = (*_CORE, *_READABLE, "details", "prev", "hash")

# Fields every entry written in this context carries, e.g. {"api_key": "<key id>"} while an
# HTTP API call made with a personal key runs (app/doors/http/api/auth.py sets it; never the key itself).
CALL_FIELDS: ContextVar[dict[str, Any] | None] = ContextVar("kura_audit_call_fields", default=None)


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8"
    )


def _now_iso() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def _as_iso(value: str | date | datetime | None) -> str | None:
    """A bound for comparing with entry times ('2025-01-31T12:00:00.000Z' strings)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, date):
        return value.isoformat() + "T00:00:00.000Z"
    try:
        return _as_iso(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise ValueError(
            f"{value!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS"
        ) from None


@dataclass(frozen=True)
class ChainProblem:
    entry: int  # 1-based line number in the file named by `where` (0: the file as a whole)
    message: str
    where: str = "live log"

    def __str__(self) -> str:
        place = f"{self.where}, entry {self.entry}" if self.entry else self.where
        return f"{place}: {self.message}"


@dataclass(frozen=True)
class ArchivedSegment:
    path: Path
    first_seq: int
    last_seq: int
    last_hash: str


class AuditKeyMissing(RuntimeError):
    """`audit.key` is gone while the log it signs exists: kura writes no entry and answers no
    question until the key is restored, because a new key would silently fork the chain."""

    def __init__(self, key_path: Path, log_path: Path, log_exists: bool = True) -> None:
        if not log_exists:
            super().__init__(f"there is no audit key {key_path} yet: the log {log_path} is empty")
            return
        super().__init__(
            f"the audit key {key_path} is missing but the audit log {log_path} exists: kura "
            "refuses to write audit entries or answer questions until it is back. Restore it "
            f"from your newest backup (cp BACKUP/{key_path.name} {key_path}; chmod 600 it), "
            "then run `kura audit verify`. Do not create a new key: every earlier entry would "
            "stop verifying."
        )


def _open_private(path: Path, flags: int) -> int:
    fd = os.open(path, flags | os.O_CREAT, _PRIVATE)
    try:
        os.fchmod(fd, _PRIVATE)  # an older file made under a looser umask
    except PermissionError:  # not ours to change; `kura doctor` reports it
        pass
    return fd


class AuditLog:
    def __init__(self, path: Path, key_path: Path | None = None) -> None:
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.key_path = key_path or path.with_name(path.stem + ".key")
        self.head_path = path.with_name(path.stem + ".head")
        self.anchor_path = path.with_name(path.stem + ".anchor")
        self.archive_dir = path.parent / f"{path.stem}-archive"
        self._lock_path = path.with_name(path.stem + ".lock")
        self._loaded_key: bytes | None = None
        self._lock = threading.Lock()

    # --- keys and signatures ---------------------------------------------------------------
    def has_history(self) -> bool:
        """Whether any trace of a log exists: entries, a head, an anchor or an archive."""
        return (
            (self.path.exists() and self.path.stat().st_size > 0)
            or self.head_path.exists()
            or self.anchor_path.exists()
            or bool(self.segments())
        )

    def _load_key(self, create: bool = False) -> bytes:
        if not self.key_path.exists():
            if self.has_history():
                raise AuditKeyMissing(self.key_path, self.path)
            if not create:
                raise AuditKeyMissing(self.key_path, self.path, log_exists=False)
            # Only with the first entry of a new log (the caller holds the writer lock).
            fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
            log.warning("created a new audit key %s for a new audit log", self.key_path)
            self._loaded_key = None
        if self._loaded_key is None:
            key = self.key_path.read_text().strip()
            if len(key) < 32:
                raise ValueError(
                    f"{self.key_path} is not a valid audit key; restore it from the backup"
                )
            self._loaded_key = bytes.fromhex(key)
        return self._loaded_key

    def require_key(self) -> None:
        """Raise AuditKeyMissing now if an entry could not be written (before doing the work)."""
        if self.has_history():
            self._load_key()

    @property
    def _key(self) -> bytes:
        return self._loaded_key if self._loaded_key is not None else self._load_key()

    @property
    def key_id(self) -> str:
        """A short public fingerprint of the key: a checkpoint names the key that signed it."""
        return hashlib.sha256(b"kura-audit-key-id:" + self._key).hexdigest()[:16]

    def _chain_hash(self, previous: str, entry: dict[str, Any]) -> str:
        body = {k: v for k, v in entry.items() if k != "hash"}
        return hmac.new(self._key, previous.encode() + _canonical(body), hashlib.sha256).hexdigest()

    def _sign(self, record: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in record.items() if k != "mac"}
        return {**body, "mac": hmac.new(self._key, _canonical(body), hashlib.sha256).hexdigest()}

    def _signed_ok(self, record: dict[str, Any]) -> bool:
        return hmac.compare_digest(self._sign(record)["mac"], str(record.get("mac", "")))

    def entry_is_authentic(self, entry: dict[str, Any]) -> bool:
        """Whether one entry (e.g. read back from an export) carries a hash made with this key."""
        return hmac.compare_digest(
            self._chain_hash(str(entry.get("prev", "")), entry), str(entry.get("hash", ""))
        )

    @staticmethod
    def _write_json_atomic(path: Path, record: dict[str, Any]) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with os.fdopen(_open_private(tmp, os.O_WRONLY | os.O_TRUNC), "w", encoding="utf-8") as fh:
            json.dump(record, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    @staticmethod
    def _read_json(path: Path) -> dict[str, Any] | None:
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return {}

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One writer at a time, across threads and processes (the UI and the CLI share the log)."""
        with self._lock, os.fdopen(_open_private(self._lock_path, os.O_WRONLY), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # --- writing ---------------------------------------------------------------------------
    def _anchor(self) -> tuple[int, str]:
        anchor = self._read_json(self.anchor_path)
        if not anchor:
            return 0, GENESIS
        return int(anchor.get("seq", 0)), str(anchor.get("hash", GENESIS))

    def _last(self) -> tuple[int, str]:
        """(seq, hash) of the newest entry, read from the end of the file."""
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as fh:
                end = fh.seek(0, os.SEEK_END)
                block, data = 65536, b""
                while True:
                    start = max(0, end - block)
                    fh.seek(start)
                    data = fh.read(end - start)
                    lines = [ln for ln in data.splitlines() if ln.strip()]
                    if len(lines) >= 2 or start == 0:
                        break
                    block *= 4
            for line in reversed(lines):
                try:
                    entry = json.loads(line)
                    return int(entry["seq"]), str(entry["hash"])
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue
        return self._anchor()

    def append(self, *, user: str, role: str, action: str, **fields: Any) -> dict[str, Any]:
        with self._exclusive():
            self._load_key(create=True)  # raises AuditKeyMissing: fail closed, never re-key
            seq, last_hash = self._last()
            entry: dict[str, Any] = {
                "seq": seq + 1,
                "time": _now_iso(),
                "user": user,
                "role": role,
                "action": action,
                **fields,
                **(CALL_FIELDS.get() or {}),
                "prev": last_hash,
            }
            entry["hash"] = self._chain_hash(last_hash, entry)
            line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
            fd = _open_private(self.path, os.O_WRONLY | os.O_APPEND)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            self._write_json_atomic(
                self.head_path, self._sign({"seq": entry["seq"], "hash": entry["hash"]})
            )
            return entry

    # --- reading ---------------------------------------------------------------------------
    def segments(self) -> list[Path]:
        return (
            sorted(self.archive_dir.glob(f"{self.path.stem}-*.jsonl"))
            if self.archive_dir.exists()
            else []
        )

    def entries(self, include_archive: bool = False) -> Iterator[dict[str, Any]]:
        files = [*self.segments(), self.path] if include_archive else [self.path]
        for path in files:
            if not path.exists():
                continue
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        yield json.loads(line)

    def select(
        self,
        user: str | None = None,
        action: str | None = None,
        since: str | date | datetime | None = None,
        until: str | date | datetime | None = None,
        include_archive: bool = True,
    ) -> Iterator[dict[str, Any]]:
        """Entries matching every given filter; `since` inclusive, `until` exclusive (UTC)."""
        low, high = _as_iso(since), _as_iso(until)
        for entry in self.entries(include_archive):
            if user is not None and entry.get("user") != user:
                continue
            if action is not None and entry.get("action") != action:
                continue
            stamp = str(entry.get("time", ""))
            if (low and stamp < low) or (high and stamp >= high):
                continue
            yield entry

    def follow(
        self, after_seq: int = 0, poll_s: float = 0.5, stop: Callable[[], bool] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield live entries with seq > after_seq, then wait for new ones (for a SIEM to tail).

        Survives `archive()` rewriting the live file: it reopens and skips what it already gave.
        """
        last = after_seq
        while stop is None or not stop():
            inode = self.path.stat().st_ino if self.path.exists() else None
            if inode is not None:
                with self.path.open(encoding="utf-8") as fh:
                    while stop is None or not stop():
                        line = fh.readline()
                        if line.endswith("\n"):
                            entry = json.loads(line)
                            if int(entry.get("seq", 0)) > last:
                                last = int(entry["seq"])
                                yield entry
                            continue
                        if line:  # a half-written line: read it again once complete
                            fh.seek(fh.tell() - len(line.encode("utf-8")))
                        if not self.path.exists() or self.path.stat().st_ino != inode:
                            break
                        time.sleep(poll_s)
            else:
                time.sleep(poll_s)

    # --- checking --------------------------------------------------------------------------
    def _verify_lines(
        self, lines: list[str], where: str, seq: int, previous: str, problems: list[ChainProblem]
    ) -> tuple[int, str]:
        for number, line in enumerate(lines, start=1):
            try:
                entry = json.loads(line)
                if not isinstance(entry, dict):
                    raise ValueError
            except ValueError:
                problems.append(ChainProblem(number, "not valid JSON (edited or truncated)", where))
                seq, previous = seq + 1, "?"
                continue
            got = entry.get("seq")
            if got != seq + 1:
                problems.append(
                    ChainProblem(
                        number,
                        f"sequence number {got} where {seq + 1} was expected "
                        "(an entry was deleted, inserted or moved here)",
                        where,
                    )
                )
            elif entry.get("prev") != previous and previous != "?":
                problems.append(
                    ChainProblem(
                        number,
                        f"seq {got} does not follow the previous entry "
                        "(deleted, inserted or moved)",
                        where,
                    )
                )
            if not self.entry_is_authentic(entry):
                problems.append(
                    ChainProblem(
                        number,
                        f"seq {got}: content does not match its hash "
                        "(edited, or forged without the key)",
                        where,
                    )
                )
            seq = got if isinstance(got, int) else seq + 1
            previous = str(entry.get("hash", "?"))
        return seq, previous

    @staticmethod
    def _lines(path: Path) -> list[str]:
        if not path.exists():
            return []
        with path.open(encoding="utf-8", errors="replace") as fh:
            return [ln for ln in fh if ln.strip()]

    def verify(self, include_archive: bool = False) -> list[ChainProblem]:
        """Every break in the chain, by file and 1-based entry number; [] when intact."""
        problems: list[ChainProblem] = []
        if not self.key_path.exists():
            if self.has_history():  # nothing can be checked without it, and nothing written
                return [ChainProblem(0, str(AuditKeyMissing(self.key_path, self.path)), "key")]
            return []  # a new installation: no key, no log
        if not self.has_history():
            # A key is only made with a log's first entry: a key without any log is a wipe.
            return [
                ChainProblem(
                    0,
                    f"the log is empty or missing but {self.key_path.name} shows that one "
                    "existed: the audit log, its head and archive were deleted (wiped)",
                    "live log",
                )
            ]
        if include_archive:
            problems += self._verify_archive()
        anchor = self._read_json(self.anchor_path)
        if anchor is not None and not self._signed_ok(anchor):
            problems.append(ChainProblem(0, f"{self.anchor_path.name} was altered", "anchor"))
        seq, previous = self._anchor()
        lines = self._lines(self.path)
        last_seq, last_hash = self._verify_lines(lines, "live log", seq, previous, problems)
        head = self._read_json(self.head_path)
        if head is None:
            if lines:
                problems.append(
                    ChainProblem(
                        0,
                        f"{self.head_path.name} is missing; the log's end cannot be checked",
                        "head",
                    )
                )
        elif not self._signed_ok(head):
            problems.append(ChainProblem(0, f"{self.head_path.name} was altered", "head"))
        elif isinstance(head.get("seq"), int) and head["seq"] > last_seq:
            problems.append(
                ChainProblem(
                    len(lines),
                    f"the log ends at seq {last_seq} but seq {head['seq']} was written: "
                    f"{head['seq'] - last_seq} entries deleted from the end",
                    "live log",
                )
            )
        elif head.get("seq") == last_seq and head.get("hash") != last_hash:
            problems.append(ChainProblem(len(lines), "the last entry was replaced", "live log"))
        # head.seq < last_seq: a crash between writing an entry and its head; entries after the
        # head were already checked against the key above, so a forged one is reported there.
        return problems

    def end_problem(self) -> str | None:
        """What `verify` says about the log's end (wiped, head missing or altered, entries cut
        from the end, the last one replaced), found cheaply from the head and the last line. An
        append rewrites the head and would hide it: a writer that is not a user's request (the
        auditor's alerts, app/service/audit_analytics.py) checks this first and appends nothing."""
        if self.key_path.exists() and not self.has_history():
            return "the log was wiped while its key remains"
        with self._exclusive():
            last_seq, last_hash = self._last()
            head = self._read_json(self.head_path)
        if head is None:
            return f"{self.head_path.name} is missing" if last_seq else None
        if not self.key_path.exists() or not self._signed_ok(head):
            return f"{self.head_path.name} was altered or its key is missing"
        if isinstance(head.get("seq"), int) and head["seq"] > last_seq:
            return f"the log ends at seq {last_seq} but seq {head['seq']} was written"
        if head.get("seq") == last_seq and head.get("hash") != last_hash:
            return "the last entry was replaced"
        return None

    def _verify_archive(self) -> list[ChainProblem]:
        problems: list[ChainProblem] = []
        seq, previous = 0, GENESIS
        for segment in self.segments():
            sig = self._read_json(segment.with_suffix(".sig"))
            if not sig or not self._signed_ok(sig):
                problems.append(ChainProblem(0, "signature missing or altered", segment.name))
            elif hashlib.sha256(segment.read_bytes()).hexdigest() != sig.get("sha256"):
                problems.append(
                    ChainProblem(0, "content differs from its signed checksum", segment.name)
                )
            seq, previous = self._verify_lines(
                self._lines(segment), segment.name, seq, previous, problems
            )
            if sig and (sig.get("last_seq"), sig.get("last_hash")) != (seq, previous):
                problems.append(
                    ChainProblem(0, "does not end where its signature says", segment.name)
                )
        if (seq, previous) != self._anchor():
            problems.append(
                ChainProblem(
                    0, "the live log does not continue from the last archived segment", "anchor"
                )
            )
        return problems

    # --- anchors outside the machine ---------------------------------------------------------
    def checkpoint(self, seq: int | None = None, head: str | None = None) -> dict[str, Any]:
        """A signed (seq, head hash, time) for an auditor or the SIEM to keep elsewhere: later,
        `verify_against` reports any log that does not extend it. Default: the newest entry."""
        if seq is None or head is None:
            with self._exclusive():
                seq, head = self._last()
        return self._sign(
            {
                "kind": CHECKPOINT_KIND,
                "seq": seq,
                "hash": head,
                "time": _now_iso(),
                "key_id": self.key_id,
            }
        )

    def _recorded_hashes(self) -> dict[int, str]:
        """seq -> hash of every entry still on disk (live log and archive), unreadable lines
        skipped (plain verify reports those)."""
        hashes: dict[int, str] = {}
        for path in [*self.segments(), self.path]:
            for line in self._lines(path):
                try:
                    entry = json.loads(line)
                    hashes[int(entry["seq"])] = str(entry["hash"])
                except (ValueError, KeyError, TypeError):
                    continue
        return hashes

    def verify_against(self, reference: Path) -> list[ChainProblem]:
        """Whether this log extends what `reference` recorded: a checkpoint (`kura audit
        checkpoint`), a `kura audit export`, or the SIEM's file of forwarded entries. Reports a
        rollback, a truncation, a wipe and a replaced key, each in words; [] when it extends it."""
        recorded, problems = self._recorded_in(reference)
        if not self.key_path.exists():
            problems.append(
                ChainProblem(
                    0,
                    str(AuditKeyMissing(self.key_path, self.path))
                    if self.has_history()
                    else f"{self.key_path.name} and the log are both gone although {reference.name} "
                    "shows a log existed",
                    "key",
                )
            )
        if recorded:
            problems += self._compare_with_disk(recorded, reference.name)
        return problems

    def _recorded_in(self, reference: Path) -> tuple[dict[int, str], list[ChainProblem]]:
        """seq -> hash as `reference` recorded them (its entries and its checkpoints that this
        log's key signed), and what is wrong with the reference itself."""
        checkpoints, entries = read_references(reference)
        where = reference.name
        problems: list[ChainProblem] = []
        recorded: dict[int, str] = {}

        def note(seq: int, digest: str) -> None:
            if recorded.setdefault(seq, digest) != digest:
                problems.append(
                    ChainProblem(
                        0,
                        f"{where} holds two different entries with seq {seq}: the log was "
                        f"rolled back and rewritten after seq {seq} had left the machine",
                        where,
                    )
                )

        for entry in entries:
            note(int(entry["seq"]), str(entry["hash"]))
        has_key = self.key_path.exists()
        for point in checkpoints:
            if has_key and not self._signed_ok(point):
                if point.get("key_id") == self.key_id:
                    problems.append(
                        ChainProblem(
                            0,
                            f"the checkpoint at seq {point.get('seq')} is not signed by this "
                            "log's key: it was altered or forged, so it proves nothing",
                            where,
                        )
                    )
                    continue
                problems.append(
                    ChainProblem(
                        0,
                        f"the checkpoint at seq {point.get('seq')} was signed by another "
                        f"audit key (key id {point.get('key_id')}, now {self.key_id}): "
                        f"{self.key_path.name} was deleted and replaced since then",
                        where,
                    )
                )
            note(int(point["seq"]), str(point["hash"]))
        return recorded, problems

    def _compare_with_disk(self, recorded: dict[int, str], where: str) -> list[ChainProblem]:
        """What the log on disk lost or changed of the entries `where` recorded."""
        top = max(recorded)
        on_disk = self._recorded_hashes()
        if not on_disk:
            if top == 0:
                return []
            wiped = f"the audit log is empty or missing, but {where} shows entries up to seq {top}: the log was wiped"
            return [ChainProblem(0, wiped, "live log")]
        problems: list[ChainProblem] = []
        last = max(on_disk)
        anchor_seq = self._anchor()[0] if not self.segments() else 0
        diverged = next((q for q in sorted(recorded) if q in on_disk and on_disk[q] != recorded[q]), None)
        removed = [q for q in sorted(recorded) if anchor_seq < q <= last and q not in on_disk]
        if diverged is not None:
            problems.append(
                ChainProblem(
                    0,
                    f"seq {diverged} in the log is not the seq {diverged} that {where} recorded "
                    f"(hash {on_disk[diverged][:12]}…, recorded {recorded[diverged][:12]}…): "
                    f"the log was rolled back to an earlier copy and continued, or rewritten "
                    f"from seq {diverged} on",
                    "live log",
                )
            )
        if removed:
            problems.append(
                ChainProblem(
                    0,
                    f"seq {removed[0]} ({len(removed)} entries recorded in {where}) is in "
                    "neither the live log nor the archive: entries were removed",
                    "live log",
                )
            )
        if last < top:
            problems.append(
                ChainProblem(
                    0,
                    f"the log ends at seq {last} but {where} shows seq {top} was written: "
                    f"{top - last} entries are missing from the end (truncated, or rolled back "
                    "to an earlier copy with its old head)",
                    "live log",
                )
            )
        return problems

    # --- retention -------------------------------------------------------------------------
    def archive(self, before: str | date | datetime) -> ArchivedSegment | None:
        """Move entries older than `before` to a signed segment; the live log continues from it."""
        cutoff = _as_iso(before)
        with self._exclusive():
            lines = self._lines(self.path)
            # Only a prefix: an out-of-order clock must not tear a hole in the chain.
            count = 0
            while count < len(lines) and str(json.loads(lines[count]).get("time", "")) < str(
                cutoff
            ):
                count += 1
            if count == 0:
                return None
            archived, kept = lines[:count], lines[count:]
            first, last = json.loads(archived[0]), json.loads(archived[-1])
            self.archive_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            segment = (
                self.archive_dir / f"{self.path.stem}-{first['seq']:010d}-{last['seq']:010d}.jsonl"
            )
            data = "".join(archived).encode("utf-8")
            with os.fdopen(_open_private(segment, os.O_WRONLY | os.O_TRUNC), "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            self._write_json_atomic(
                segment.with_suffix(".sig"),
                self._sign(
                    {
                        "first_seq": first["seq"],
                        "last_seq": last["seq"],
                        "prev": first["prev"],
                        "last_hash": last["hash"],
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "entries": len(archived),
                        "archived_at": _now_iso(),
                    }
                ),
            )
            tmp = self.path.with_name(self.path.name + ".tmp")
            with os.fdopen(_open_private(tmp, os.O_WRONLY | os.O_TRUNC), "w", encoding="utf-8") as fh:
                fh.write("".join(kept))
                fh.flush()
                os.fsync(fh.fileno())
            self._write_json_atomic(
                self.anchor_path, self._sign({"seq": last["seq"], "hash": last["hash"]})
            )
            os.replace(tmp, self.path)
            return ArchivedSegment(segment, first["seq"], last["seq"], last["hash"])

    # --- export ----------------------------------------------------------------------------
    def export(
        self,
        dest: Path,
        fmt: str = "jsonl",
        user: str | None = None,
        action: str | None = None,
        since: str | date | datetime | None = None,
        until: str | date | datetime | None = None,
    ) -> int:
        """Write the matching entries (archive included) as JSON Lines or CSV; returns how many."""
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"unknown export format {fmt!r}; use one of {EXPORT_FORMATS}")
        count = 0
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, _CSV_COLUMNS) if fmt == "csv" else None
            if writer:
                writer.writeheader()
            for entry in self.select(user, action, since, until):
                if writer:
                    writer.writerow(_csv_row(entry))
                else:
                    fh.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
                count += 1
        return count


# A spreadsheet runs a cell that starts like this as a formula (CSV injection: a question typed
# as `=HYPERLINK(...)` would become a live link in the auditor's Excel).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe_cell(value: str) -> str:
    """A leading `'` makes a spreadsheet show the cell as text. A cell that already starts with
    `'` gets one too, so `_unsafe_cell` can take exactly one off and every value comes back."""
    return "'" + value if value.startswith((*_FORMULA_START, "'")) else value


def _unsafe_cell(value: str) -> str:
    return value[1:] if value.startswith("'") else value


def _csv_row(entry: dict[str, Any]) -> dict[str, str]:
    """Readable columns for people, plus `details` (JSON) holding the rest, so nothing is lost.
    Every cell is formula-safe (`_safe_cell`); read_export reads the values back exactly."""
    return {k: _safe_cell(v) for k, v in _csv_cells(entry).items()}


def _csv_cells(entry: dict[str, Any]) -> dict[str, str]:
    row = {k: str(entry.get(k, "")) for k in (*_CORE, "prev", "hash")}
    details = {k: v for k, v in entry.items() if k not in (*_CORE, *_READABLE, "prev", "hash")}
    present: list[str] = []
    for key in _READABLE:
        if key not in entry:
            row[key] = ""
            continue
        value = entry[key]
        if key in ("query", "answer") and isinstance(value, str):
            row[key] = value
        elif key in ("documents", "chunks") and isinstance(value, list):
            row[key] = json.dumps(value, ensure_ascii=False)
        else:
            details[key] = value
            continue
        present.append(key)
    details["_columns"] = present
    row["details"] = json.dumps(details, ensure_ascii=False, sort_keys=True)
    return row


def read_export(path: Path) -> list[dict[str, Any]]:
    """The entries of a JSON Lines or CSV export, exactly as they were in the log."""
    if path.suffix.lower() != ".csv":
        with path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    entries: list[dict[str, Any]] = []
    with path.open(encoding="utf-8", newline="") as fh:
        for cells in csv.DictReader(fh):
            row = {k: _unsafe_cell(v or "") for k, v in cells.items() if k is not None}
            details = json.loads(row["details"])
            present = details.pop("_columns", [])
            entry: dict[str, Any] = {"seq": int(row["seq"]), **{k: row[k] for k in _CORE[1:]}}
            for key in present:
                entry[key] = json.loads(row[key]) if key in ("documents", "chunks") else row[key]
            entry.update(details)
            entry["prev"], entry["hash"] = row["prev"], row["hash"]
            entries.append(entry)
    return entries


def read_references(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(checkpoints, entries) found in a checkpoint file, a `kura audit export` (JSON Lines or
    CSV), or a SIEM's file of forwarded syslog lines (the JSON after the syslog header)."""
    if path.suffix.lower() == ".csv":
        return [], read_export(path)
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        whole = json.loads(text)
        found = [whole] if isinstance(whole, dict) else []
    except ValueError:
        found = []
        decoder = json.JSONDecoder()
        for line in text.splitlines():
            start = line.find("{")
            if start < 0:
                continue
            try:
                obj, _ = decoder.raw_decode(line, start)
            except ValueError:
                continue
            if isinstance(obj, dict):
                found.append(obj)
    checkpoints = [o for o in found if o.get("kind") == CHECKPOINT_KIND]
    entries = [
        o
        for o in found
        if o.get("kind") != CHECKPOINT_KIND
        and isinstance(o.get("seq"), int)
        and isinstance(o.get("hash"), str)
    ]
    if not checkpoints and not entries:
        raise ValueError(
            f"{path} holds no kura audit checkpoint or entry; give the output of "
            "`kura audit checkpoint`, a `kura audit export`, or the SIEM's file of kura entries"
        )
    return checkpoints, entries
