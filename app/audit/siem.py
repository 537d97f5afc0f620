"""Forward every audit entry to a SIEM as it is written: syslog over TLS, at least once.

Each entry goes out as one RFC 5424 message (facility 13 "log audit", MSGID = the entry's
action) whose structured data carries `seq`, `hash` and `prev`, and whose MSG is the entry as
JSON, so the SIEM can check the chain by sequence number and hash. Messages travel over TCP
with TLS and RFC 5425 octet-counting framing (`LEN SP MSG`), which survives any byte in a
message. Every `KURA_AUDIT_CHECKPOINT_INTERVAL_S` a signed checkpoint (app/audit/log.py) follows in
the stream (MSGID `checkpoint`), an anchor that `kura audit verify --against` can use later.

Acknowledgement. Plain syslog over TCP has no application-level acknowledgement: a send that
returned only means the local kernel took the bytes. kura therefore sends each batch on its
own connection and then half-closes it (TCP FIN after the last frame). The receiver reads up
to that FIN and closes its side; only when kura reads that end-of-stream has the receiver's
process read every frame, and only then is the batch acknowledged: the delivered position
(seq, hash) is written to `audit.siem` (fsync, atomic rename). A refused connection, a TLS
error, a reset or a timeout leaves the position where it was, and the next attempt re-sends
from there, in order. The queue of unacknowledged entries is the audit log itself (already on
disk, fsynced per entry), so nothing is copied and a restart resumes where it stopped. A crash
between the receiver's read and the position's write re-sends that batch once more: delivery
is at least once, and the SIEM de-duplicates by `seq` (a repeat carries the same hash).
What the receiver does after reading (its own queues) is its business: give rsyslog a
disk-assisted queue. RELP would acknowledge each message, but it is not syslog over TLS and
not every SIEM speaks it; this needs nothing beyond RFC 5424/5425 from the receiver.

If the log no longer holds the delivered entry (rolled back, truncated or rewritten on disk),
an `alert` message says so and forwarding resumes from what the log holds, so the SIEM sees
the new entries next to the ones it already has, and the mismatch with them.

Usage:
    forwarder = SiemForwarder.from_settings(settings, AuditLog(settings.audit_path))
    forwarder.send_pending()        # one batch now; raises OSError if the SIEM is unreachable
    forwarder.start()               # a daemon thread that keeps forwarding
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.audit.log import AuditKeyMissing, AuditLog, _now_iso
from app.platform.settings import KuraSettings

log = logging.getLogger(__name__)

FACILITY_LOG_AUDIT = 13
SEVERITY_INFO, SEVERITY_ALERT = 6, 1
SD_ID = "kura@32473"  # 32473: the enterprise number RFC 5612 reserves for examples
APP_NAME = "kura"


@dataclass(frozen=True)
class SyslogTarget:
    host: str
    port: int

    @classmethod
    def parse(cls, value: str) -> SyslogTarget:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"KURA_AUDIT_SYSLOG={value!r} is not host:port (e.g. siem.example:6514)")
        return cls(host.strip("[]"), int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def state_path(audit: AuditLog) -> Path:
    """Where the delivered position is kept, beside the log."""
    return audit.path.with_name(audit.path.stem + ".siem")


def delivered(audit: AuditLog) -> tuple[int, str | None]:
    """(seq, hash) of the last entry the SIEM acknowledged; (0, None) before the first."""
    try:
        state = json.loads(state_path(audit).read_text(encoding="utf-8"))
        return int(state["seq"]), state.get("hash")
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return 0, None


def queue_depth(audit: AuditLog) -> int:
    """Audit entries written but not yet acknowledged by the SIEM."""
    with audit._exclusive():
        last, _ = audit._last()
    return max(0, last - delivered(audit)[0])


def _frame(
    msgid: str, params: dict[str, Any], body: dict[str, Any], stamp: str, severity: int
) -> bytes:
    """One RFC 5424 message in RFC 5425 octet-counting framing."""
    sd = " ".join(f'{k}="{_sd_escape(str(v))}"' for k, v in params.items())
    pri = FACILITY_LOG_AUDIT * 8 + severity
    text = json.dumps(body, ensure_ascii=True, separators=(",", ":"))
    host = socket.gethostname() or "-"
    message = f"<{pri}>1 {stamp} {host} {APP_NAME} {os.getpid()} {msgid} [{SD_ID} {sd}] {text}"
    data = message.encode("utf-8")
    return f"{len(data)} ".encode() + data


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _msgid(action: Any) -> str:
    text = "".join(c for c in str(action) if 33 <= ord(c) <= 126)
    return text[:32] or "-"


class SiemForwarder:
    """Sends the audit log's unacknowledged entries to one syslog-over-TLS receiver, in order."""

    def __init__(
        self,
        audit: AuditLog,
        target: SyslogTarget,
        *,
        tls: bool = True,
        ca_file: Path | None = None,
        server_name: str | None = None,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        checkpoint_interval_s: float = 300.0,
        batch: int = 500,
        timeout_s: float = 10.0,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        self.audit, self.target = audit, target
        self.batch, self.timeout_s = batch, timeout_s
        self.checkpoint_interval_s = checkpoint_interval_s
        self.server_name = server_name or target.host
        self._context: ssl.SSLContext | None = None
        if tls:
            self._context = ssl.create_default_context(
                cafile=str(ca_file) if ca_file else None
            )
            self._context.minimum_version = ssl.TLSVersion.TLSv1_2
            if cert_file:
                self._context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
        self._cursor: tuple[int, int] | None = None  # (inode, byte offset after delivered)
        self._last_checkpoint = 0.0
        self._checkpoint_seq = 0
        self._alert: dict[str, Any] | None = None
        self._restart: tuple[int, str] = (0, "")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: KuraSettings, audit: AuditLog, **kwargs: Any) -> SiemForwarder:
        if not settings.audit_syslog:
            raise ValueError("KURA_AUDIT_SYSLOG is not set: give the SIEM's host:port")
        return cls(
            audit,
            SyslogTarget.parse(settings.audit_syslog),
            tls=settings.audit_syslog_tls,
            ca_file=settings.audit_syslog_ca_file,
            server_name=settings.audit_syslog_server_name,
            cert_file=settings.audit_syslog_cert_file,
            key_file=settings.audit_syslog_key_file,
            checkpoint_interval_s=settings.audit_checkpoint_interval_s,
            **kwargs,
        )

    # --- what is pending ----------------------------------------------------------------------
    def _pending(self, after: int, after_hash: str | None) -> tuple[list[dict[str, Any]], int]:
        """Up to `batch` entries with seq > after, in order, and the byte offset after the last
        one. Checks that the delivered entry is still the one on disk (else: an alert)."""
        path = self.audit.path
        anchor_seq = self.audit._anchor()[0]
        if after < anchor_seq:  # archived before it was forwarded: read the segments too
            entries = [
                e for e in self.audit.entries(include_archive=True) if int(e["seq"]) > after
            ]
            return entries[: self.batch], -1
        try:
            info = path.stat()
        except FileNotFoundError:  # deleted after entries were delivered: a wipe
            return (self._rolled_back(after, after_hash), -1) if after > anchor_seq else ([], -1)
        offset = 0
        if self._cursor and self._cursor[0] == info.st_ino and self._cursor[1] <= info.st_size:
            offset = self._cursor[1]
        out: list[dict[str, Any]] = []
        with path.open("rb") as fh:
            if offset and after_hash:
                # The delivered entry must still end right there (its hash is its last field):
                # a copy put back over the same file is caught on the next poll, not at restart.
                fh.seek(max(0, offset - len(after_hash) - 4))
                if after_hash.encode() not in fh.read(len(after_hash) + 4):
                    offset, self._cursor = 0, None
            checking = offset == 0 and after > anchor_seq  # a fresh scan: is `after` there?
            found_after = not checking
            end = offset
            fh.seek(offset)
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break  # being written; read it next time
                position = end + len(raw)
                if raw.strip():
                    try:
                        entry = json.loads(raw)
                        seq = int(entry["seq"])
                    except (ValueError, KeyError, TypeError):
                        end = position
                        continue  # plain verify reports a broken line; forwarding goes on
                    if seq <= after:
                        if seq == after:
                            found_after = entry.get("hash") == after_hash or after_hash is None
                        if not out:
                            self._cursor = (info.st_ino, position)
                    else:
                        if not found_after:
                            return self._rolled_back(after, after_hash), -1
                        out.append(entry)
                        if len(out) >= self.batch:
                            end = position
                            break
                end = position
        if not found_after:
            return self._rolled_back(after, after_hash), -1
        return out, end

    def _rolled_back(self, after: int, after_hash: str | None) -> list[dict[str, Any]]:
        """The delivered entry is gone or changed on disk: alert, and send the live log again
        from its start, so the SIEM holds the new entries beside the ones they replaced."""
        last = self.audit._last()[0]
        self._alert = {
            "kind": "kura-audit-alert",
            "message": (
                f"the audit log no longer holds the entry seq {after} that was delivered "
                f"(the log now ends at seq {last}): it was rolled back, truncated or rewritten "
                "on disk; forwarding starts again from the start of the live log"
            ),
            "delivered_seq": after,
            "delivered_hash": after_hash,
            "log_seq": last,
            "time": _now_iso(),
        }
        log.error(self._alert["message"])
        self._cursor = None
        restart = self.audit._anchor()
        self._restart = restart
        return [e for e in self.audit.entries() if int(e["seq"]) > restart[0]][: self.batch]

    # --- sending ------------------------------------------------------------------------------
    def send_pending(self) -> int:
        """Send one batch of pending entries (and a checkpoint when one is due) on one
        connection; returns how many entries the receiver acknowledged. Raises OSError (and
        ssl.SSLError) when it cannot reach or finish talking to the receiver."""
        after, after_hash = delivered(self.audit)
        entries, end = self._pending(after, after_hash)
        frames: list[bytes] = []
        if self._alert:
            frames.append(
                _frame("alert", {"seq": self._alert["log_seq"]}, self._alert, self._alert["time"], SEVERITY_ALERT)
            )
        for entry in entries:
            params = {"seq": entry["seq"], "hash": entry["hash"], "prev": entry.get("prev", "")}
            # The auditor's alerts (app/audit/alerts.py) go out at syslog's "alert" severity.
            severity = SEVERITY_ALERT if entry.get("action") == "alert" else SEVERITY_INFO
            frames.append(_frame(_msgid(entry.get("action")), params, entry, str(entry.get("time")), severity))
        last_seq, last_hash = (
            (int(entries[-1]["seq"]), str(entries[-1]["hash"])) if entries else delivered(self.audit)
        )
        due = (
            time.monotonic() - self._last_checkpoint >= self.checkpoint_interval_s
            and last_seq > 0
            and last_seq != self._checkpoint_seq  # nothing new since the last one: no repeat
        )
        if due and last_hash:
            try:
                point = self.audit.checkpoint(last_seq, last_hash)
                frames.append(
                    _frame("checkpoint", {"seq": last_seq, "hash": last_hash}, point, point["time"], SEVERITY_INFO)
                )
            except AuditKeyMissing as exc:  # the entries still go out; the key is for signing
                log.error("no checkpoint sent: %s", exc)
        if not frames:
            return 0
        self._deliver(b"".join(frames))
        if due:
            self._last_checkpoint, self._checkpoint_seq = time.monotonic(), last_seq
        if self._alert and not entries:
            self._save(*self._restart)  # the alert is out; nothing on disk to send after it
        self._alert = None
        if entries:
            self._save(last_seq, last_hash)
            if end >= 0:
                self._cursor = (self.audit.path.stat().st_ino, end)
        return len(entries)

    def _deliver(self, data: bytes) -> None:
        """Send, half-close, and wait until the receiver has read everything and closed."""
        raw = socket.create_connection((self.target.host, self.target.port), self.timeout_s)
        try:
            sock: socket.socket = raw
            if self._context is not None:
                sock = self._context.wrap_socket(raw, server_hostname=self.server_name)
            sock.sendall(data)
            # TCP FIN after the last frame (an SSLSocket's shutdown() leaves TLS and shuts the
            # TCP write side). The receiver closes only after reading up to it.
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(4096):  # anything it sends back (a TLS alert) until end-of-stream
                pass
        finally:
            raw.close()

    def _save(self, seq: int, digest: str | None) -> None:
        path = state_path(self.audit)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"seq": seq, "hash": digest, "target": str(self.target)}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    # --- running ------------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None, poll_s: float = 0.5, once: bool = False) -> None:
        """Forward until `stop` is set (or, with once, until nothing is pending). One forwarder
        per log across processes (an flock), so the UI and a `kura audit forward` never race."""
        stop = stop or self._stop
        lock_path = self.audit.path.with_name(self.audit.path.stem + ".siem.lock")
        with os.fdopen(os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as lock:
            while not stop.is_set():
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if once:
                        raise RuntimeError(
                            "another kura process is forwarding this audit log already"
                        ) from None
                    stop.wait(poll_s)
            backoff, failing = poll_s, False
            while not stop.is_set():
                try:
                    sent = self.send_pending()
                    if failing:
                        log.warning("SIEM %s reachable again; forwarding resumed", self.target)
                    backoff, failing = poll_s, False
                    if sent >= self.batch:
                        continue  # more waiting: no pause
                    if once and queue_depth(self.audit) == 0:
                        return
                except (OSError, ssl.SSLError) as exc:
                    if once:
                        raise
                    if not failing:
                        log.warning(
                            "SIEM %s unreachable (%s); %d audit entries wait on disk",
                            self.target,
                            exc,
                            queue_depth(self.audit),
                        )
                    failing = True
                    backoff = min(backoff * 2, 5.0)  # a reconnect is cheap; a SIEM back soon
                    stop.wait(backoff)
                    continue
                stop.wait(poll_s)

    def start(self, poll_s: float = 0.5) -> threading.Thread:
        """Forward in a daemon thread of this process until `stop()`."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=self.run, kwargs={"poll_s": poll_s}, name="kura-siem", daemon=True
            )
            self._thread.start()
        return self._thread

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 1)


_running: dict[Path, SiemForwarder] = {}
_running_lock = threading.Lock()


def start_forwarding(settings: KuraSettings, audit: AuditLog) -> SiemForwarder | None:
    """The server's forwarder (one per log in a process); None when KURA_AUDIT_SYSLOG is unset."""
    if not settings.audit_syslog:
        return None
    with _running_lock:
        forwarder = _running.get(audit.path)
        if forwarder is None:
            forwarder = _running[audit.path] = SiemForwarder.from_settings(settings, audit)
        forwarder.start()
        return forwarder
