"""Audit entries reach a real SIEM receiver, in order, at least once, across outages and kills.

The receiver is Debian's rsyslogd with its TLS module (rsyslog-gnutls), listening on a loopback
port with a certificate from a throwaway CA that the test makes with openssl; it writes every
message it reads to a file the test reads back. kura is the real AuditLog, the real forwarder,
the real KuraService and the real `kura audit forward` process.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.audit.log import CHECKPOINT_KIND, AuditLog
from app.audit.siem import SiemForwarder, SyslogTarget, delivered, queue_depth
from tests.sso_servers import need_program

REPO = Path(__file__).resolve().parent.parent
# Started like the sign-in tests start slapd: found wherever Debian puts it (/usr/sbin may be off
# PATH), skipped on a developer's machine without it, a failure in CI, where setup installs it.
RSYSLOGD = "rsyslogd"
_SD = re.compile(r'\[kura@32473 seq="(\d+)" hash="([0-9a-f]+)"')


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA and a server certificate for 127.0.0.1, made here, used once."""
    global RSYSLOGD
    RSYSLOGD = need_program(shutil.which("rsyslogd") or shutil.which("/usr/sbin/rsyslogd"), "rsyslogd")
    need_program(shutil.which("openssl"), "openssl")
    d = tmp_path_factory.mktemp("pki")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
             "-subj", "/CN=kura test CA", cwd=d)  # fmt: skip
    _openssl("req", *ec, "-keyout", "key.pem", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
             cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "cert.pem", "-days", "1", "-extfile", "san.ext", cwd=d)  # fmt: skip
    return d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Receiver:
    """rsyslogd with imtcp over TLS on 127.0.0.1:port, writing each kura message to `out`."""

    dir: Path
    pki: Path
    port: int
    proc: subprocess.Popen | None = None

    @property
    def out(self) -> Path:
        return self.dir / "received.log"

    def start(self) -> None:
        conf = self.dir / "rsyslog.conf"
        conf.write_text(
            f'''global(workDirectory="{self.dir}"
  DefaultNetstreamDriver="gtls"
  DefaultNetstreamDriverCAFile="{self.pki}/ca.pem"
  DefaultNetstreamDriverCertFile="{self.pki}/cert.pem"
  DefaultNetstreamDriverKeyFile="{self.pki}/key.pem")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
input(type="imtcp" address="127.0.0.1" port="{self.port}")
template(name="raw" type="string" string="%rawmsg%\\n")
if $app-name == "kura" then action(type="omfile" file="{self.out}" template="raw")
'''
        )
        log = (self.dir / "rsyslogd.out").open("ab")
        self.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(conf), "-i", str(self.dir / "rsyslogd.pid")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.dir / "rsyslogd.out").read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("rsyslogd did not listen within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # rsyslogd writes what it has read, then exits
            self.proc.wait(timeout=10)
        self.proc = None

    def received(self) -> list[dict]:
        """Every kura message in the file, in arrival order: entries and checkpoints."""
        if not self.out.exists():
            return []
        found = []
        for line in self.out.read_text(encoding="utf-8").splitlines():
            sd = _SD.search(line)
            body, _ = json.JSONDecoder().raw_decode(line, line.index("{", sd.end() if sd else 0))
            if sd and body.get("kind") != CHECKPOINT_KIND:  # the header agrees with the body
                assert (int(sd[1]), sd[2]) == (body["seq"], body["hash"])
            found.append(body)
        return found

    def entries(self) -> list[dict]:
        return [m for m in self.received() if "kind" not in m]


@pytest.fixture
def receiver(tmp_path: Path, pki: Path) -> Iterator[Receiver]:
    folder = tmp_path / "siem"
    folder.mkdir()
    rx = Receiver(folder, pki, _free_port())
    rx.start()
    yield rx
    rx.stop()


def _wait(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _forwarder(log: AuditLog, rx: Receiver, **kwargs) -> SiemForwarder:
    return SiemForwarder(
        log, SyslogTarget("127.0.0.1", rx.port), ca_file=rx.pki / "ca.pem", **kwargs
    )


def _append(log: AuditLog, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        log.append(user="alice", role="employee", action="query", query=f"休暇 question {i}")


def assert_complete_chain(received: list[dict], last_seq: int, log: AuditLog) -> None:
    """Every seq 1..last arrived, first arrivals in order, each chained to the one before;
    a repeat (at-least-once after a crash) is the same entry, so dedup by seq is exact."""
    first: dict[int, dict] = {}
    order = []
    for entry in received:
        if entry["seq"] in first:
            assert entry == first[entry["seq"]], f"seq {entry['seq']} arrived twice, different"
            continue
        first[entry["seq"]] = entry
        order.append(entry["seq"])
    assert order == list(range(1, last_seq + 1))
    for seq in range(2, last_seq + 1):
        assert first[seq]["prev"] == first[seq - 1]["hash"]
    assert all(log.entry_is_authentic(e) for e in first.values())


def test_every_entry_reaches_rsyslog_in_order_with_signed_checkpoints(
    tmp_path: Path, receiver: Receiver
) -> None:
    log = AuditLog(tmp_path / "data" / "audit.jsonl")
    forwarder = _forwarder(log, receiver, checkpoint_interval_s=0)
    forwarder.start(poll_s=0.05)
    try:
        for i in range(30):
            _append(log, 1, i)
            if i % 7 == 0:
                time.sleep(0.1)  # some go out alone, some in batches
        _wait(lambda: queue_depth(log) == 0 and len(receiver.entries()) >= 30)
    finally:
        forwarder.stop()
    received = receiver.entries()
    assert [e["seq"] for e in received] == list(range(1, 31))  # nothing twice, nothing missing
    assert_complete_chain(received, 30, log)
    assert received == list(log.entries())
    checkpoints = [m for m in receiver.received() if m.get("kind") == CHECKPOINT_KIND]
    assert checkpoints and checkpoints[-1]["seq"] == 30
    checkpoint_file = tmp_path / "checkpoint.json"
    checkpoint_file.write_text(json.dumps(checkpoints[-1]))
    assert log.verify_against(checkpoint_file) == []
    assert log.verify_against(receiver.out) == []  # the SIEM's own file is an anchor too


def test_an_outage_loses_nothing_and_duplicates_nothing_and_the_queue_is_visible(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prometheus_client import REGISTRY

    from app.doors.cli.models import _siem_queue
    from app.platform import metrics
    from app.platform.settings import KuraSettings
    from app.service import KuraService

    for key in [k for k in os.environ if k.startswith("KURA_")]:
        monkeypatch.delenv(key)
    settings = KuraSettings(
        data_dir=tmp_path / "data",
        audit_syslog=f"127.0.0.1:{receiver.port}",
        audit_syslog_ca_file=receiver.pki / "ca.pem",
    )
    service = KuraService(settings)  # the server's own forwarder starts with it
    assert service.siem is not None
    try:
        _append(service.audit, 5)
        _wait(lambda: len(receiver.entries()) == 5)

        receiver.stop()
        _append(service.audit, 7, start=5)
        time.sleep(0.5)  # the forwarder tries, fails and keeps the 7 on disk
        assert queue_depth(service.audit) == 7
        metrics.refresh()
        assert REGISTRY.get_sample_value("kura_audit_siem_queue") == 7
        check = _siem_queue(settings)
        assert check.status == "WARN" and "7 audit entries" in check.detail

        receiver.start()
        _wait(lambda: len(receiver.entries()) >= 12 and queue_depth(service.audit) == 0, 20)
    finally:
        service.siem.stop()
    received = receiver.entries()
    assert [e["seq"] for e in received] == list(range(1, 13))
    assert_complete_chain(received, 12, service.audit)
    metrics.refresh()
    assert REGISTRY.get_sample_value("kura_audit_siem_queue") == 0


def _forward_process(data: Path, rx: Receiver, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURA_")}
    env.update(
        KURA_DATA_DIR=str(data),
        KURA_AUDIT_SYSLOG=f"127.0.0.1:{rx.port}",
        KURA_AUDIT_SYSLOG_CA_FILE=str(rx.pki / "ca.pem"),
        KURA_AUDIT_CHECKPOINT_INTERVAL_S="0",
    )
    # `kura audit forward` without the CLI's start-up imports (qdrant_client: seconds).
    command = "from app.doors.cli.audit import audit_app; audit_app()"
    return subprocess.Popen(
        [sys.executable, "-c", command, "forward", "--batch", "3", *extra],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_kura_killed_while_forwarding_resumes_in_order_without_losing_an_entry(
    tmp_path: Path, receiver: Receiver
) -> None:
    data = tmp_path / "data"
    log = AuditLog(data / "audit.jsonl")
    queued = 900  # enough that the kill lands mid-stream even when the poll below runs late
    _append(log, queued)
    forwarding = _forward_process(data, receiver)
    try:
        _wait(lambda: delivered(log)[0] >= 15, 30)
    finally:
        forwarding.send_signal(signal.SIGKILL)  # mid-stream: no chance to save anything
        forwarding.wait()
    sent_before_kill = delivered(log)[0]
    assert 15 <= sent_before_kill < queued, "the kill must land while entries are still queued"
    _append(log, 10, start=queued)  # written while no forwarder runs: queued on disk

    drained = _forward_process(data, receiver, "--once")
    try:
        output, _ = drained.communicate(timeout=60)
    finally:
        drained.kill()
    assert drained.returncode == 0, output.decode()
    assert delivered(log)[0] == queued + 10 and queue_depth(log) == 0
    assert_complete_chain(receiver.entries(), queued + 10, log)
    # At most the one batch in flight at the kill can arrive twice.
    assert len(receiver.entries()) - (queued + 10) <= 3


def test_a_log_rolled_back_under_the_forwarder_raises_an_alert_at_the_siem(
    tmp_path: Path, receiver: Receiver
) -> None:
    log = AuditLog(tmp_path / "data" / "audit.jsonl")
    _append(log, 3)
    saved = {p.name: p.read_bytes() for p in log.path.parent.glob("audit.*") if p.is_file()}
    _append(log, 3, start=3)
    forwarder = _forwarder(log, receiver)
    assert forwarder.send_pending() == 6
    for name, data in saved.items():  # an intruder puts the old copies back, over the files
        (log.path.parent / name).write_bytes(data)
    _append(log, 4, start=90)  # kura goes on: seq 4-7 again, different entries, a longer file
    assert log.verify() == []  # on disk the chain alone looks intact
    forwarder.send_pending()  # the same running forwarder notices on its next poll
    alerts = [m for m in receiver.received() if m.get("kind") == "kura-audit-alert"]
    assert len(alerts) == 1 and "rolled back" in alerts[0]["message"]
    assert alerts[0]["delivered_seq"] == 6
    assert [e["seq"] for e in receiver.entries()] == [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 7]
    # The SIEM holds both histories: verify against its file says where they fork.
    problems = " ".join(str(p) for p in log.verify_against(receiver.out))
    assert "two different entries with seq 4" in problems
    assert "seq 4 in the log is not the seq 4" in problems


def test_a_receiver_whose_certificate_the_ca_file_does_not_vouch_for_gets_nothing(
    tmp_path: Path, receiver: Receiver
) -> None:
    import ssl

    other = tmp_path / "other-ca"
    other.mkdir()
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=not the SIEM's CA",
             cwd=other)  # fmt: skip
    log = AuditLog(tmp_path / "data" / "audit.jsonl")
    _append(log, 3)
    wrong_ca = SiemForwarder(log, SyslogTarget("127.0.0.1", receiver.port), ca_file=other / "ca.pem")
    with pytest.raises(ssl.SSLCertVerificationError):
        wrong_ca.send_pending()
    assert queue_depth(log) == 3 and receiver.entries() == []
    assert _forwarder(log, receiver).send_pending() == 3  # the right CA file: delivered
