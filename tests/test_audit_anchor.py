"""An anchor outside the machine catches what a self-consistent chain cannot, and kura fails
closed on a missing key.

Each attack is done the way an intruder with a shell would do it: copy files back, cut lines,
delete files. Each case first shows that plain `kura audit verify` misses it (so the checkpoint
is what catches it), then that `kura audit verify --against CHECKPOINT` reports it in words.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.audit.log import AuditKeyMissing, AuditLog

runner = CliRunner()


@pytest.fixture
def log(data_dir: Path) -> AuditLog:
    audit = AuditLog(data_dir / "audit.jsonl")
    for i in range(5):
        audit.append(user="alice", role="employee", action="search", query=f"question {i}")
    return audit


def kura(*args: str):
    from app.doors.cli.main import app

    return runner.invoke(app, list(args))


def checkpoint(tmp_path: Path) -> Path:
    """What an auditor does: print a checkpoint and keep it off the machine."""
    out = tmp_path / "offsite" / "checkpoint.json"
    out.parent.mkdir(exist_ok=True)
    result = kura("audit", "checkpoint", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["seq"] == json.loads(out.read_text())["seq"]
    return out


def audit_files(log: AuditLog) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in log.path.parent.glob("audit.*") if p.is_file()}


def missed_without_checkpoint() -> None:
    """Plain verify sees nothing wrong. It is itself audited (an `audit_verify` entry), so where
    a key and a log are left, the log is one entry longer afterwards."""
    result = kura("audit", "verify")
    assert result.exit_code == 0 and "intact" in result.output, result.output


def reported_against(point: Path, *words: str) -> str:
    result = kura("audit", "verify", "--against", str(point))
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    for word in words:
        assert word in text, text
    return text


def test_a_log_that_extends_the_checkpoint_passes(log: AuditLog, tmp_path: Path) -> None:
    point = checkpoint(tmp_path)
    log.append(user="bob", role="employee", action="search")
    result = kura("audit", "verify", "--against", str(point))
    assert result.exit_code == 0 and "extends" in result.output, result.output


def test_rollback_to_an_earlier_copy_is_reported(log: AuditLog, tmp_path: Path) -> None:
    copies = audit_files(log)  # time T: the intruder copies the log, its head and its key
    for i in range(3):  # seq 6-8: three searches to hide
        log.append(user="alice", role="employee", action="search", query=f"secret {i}")
    siem_copy = tmp_path / "offsite" / "siem.jsonl"
    siem_copy.parent.mkdir()
    assert kura("audit", "export", str(siem_copy)).exit_code == 0  # seq 9 records the export
    point = checkpoint(tmp_path)  # seq 10
    for name, data in copies.items():  # ... and later the intruder puts the copies back
        (log.path.parent / name).write_bytes(data)
    log.append(user="bob", role="employee", action="search")  # the next action: a new seq 6
    missed_without_checkpoint()
    reported_against(point, "the log ends at seq 7 but checkpoint.json shows seq 10", "rolled back")
    # A copy of the entries themselves also shows where the history forks.
    reported_against(siem_copy, "seq 6 in the log is not the seq 6 that siem.jsonl recorded", "rolled back")


def test_truncation_with_an_old_head_is_reported(log: AuditLog, tmp_path: Path) -> None:
    old_head = log.head_path.read_bytes()  # e.g. from a backup
    lines = log.path.read_text(encoding="utf-8").splitlines(keepends=True)
    log.append(user="alice", role="employee", action="search", query="the one to hide")
    point = checkpoint(tmp_path)
    log.path.write_text("".join(lines), encoding="utf-8")
    log.head_path.write_bytes(old_head)
    missed_without_checkpoint()
    reported_against(point, "the log ends at seq 6 but", "1 entries are missing from the end")


def test_wipe_is_reported(log: AuditLog, tmp_path: Path) -> None:
    point = checkpoint(tmp_path)
    for path in log.path.parent.glob("audit.*"):
        path.unlink()
    missed_without_checkpoint()
    reported_against(point, "empty or missing", "seq 6", "wiped")


def test_wiped_log_with_the_key_left_fails_even_without_a_checkpoint(log: AuditLog) -> None:
    log.path.write_text("")
    log.head_path.unlink()
    result = kura("audit", "verify")
    assert result.exit_code == 1 and "wiped" in " ".join(result.output.split())


def test_deleted_key_and_a_fresh_start_is_reported(log: AuditLog, tmp_path: Path) -> None:
    point = checkpoint(tmp_path)
    for path in log.path.parent.glob("audit.*"):
        path.unlink()
    fresh = AuditLog(log.path)
    for _ in range(8):  # kura carries on with a new key, a new chain
        fresh.append(user="mallory", role="admin", action="login")
    missed_without_checkpoint()
    reported_against(point, "signed by another audit key", "deleted and replaced")


def test_an_altered_checkpoint_proves_nothing(log: AuditLog, tmp_path: Path) -> None:
    point = checkpoint(tmp_path)
    forged = json.loads(point.read_text())
    forged["seq"] = 2
    point.write_text(json.dumps(forged))
    reported_against(point, "altered or forged")


def test_a_file_that_is_not_an_anchor_is_a_clear_error(log: AuditLog, tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello\n")
    with pytest.raises(ValueError, match="no kura audit checkpoint or entry"):
        log.verify_against(other)


def test_missing_key_stops_every_write_and_says_how_to_restore_it(
    log: AuditLog, tmp_path: Path
) -> None:
    backup_key = tmp_path / "backup-audit.key"
    shutil.copy(log.key_path, backup_key)
    log.key_path.unlink()
    with pytest.raises(AuditKeyMissing, match="Restore it from your newest backup"):
        log.append(user="alice", role="employee", action="search")
    assert not log.key_path.exists(), "a new key must never appear silently"
    assert AuditLog(log.path).verify()[0].where == "key"
    result = kura("audit", "verify")
    assert result.exit_code == 1 and "missing" in result.output
    assert len(list(log.entries())) == 5

    shutil.copy(backup_key, log.key_path)  # the operator restores it: writes resume
    log.append(user="alice", role="employee", action="search")
    assert log.verify() == []


def test_missing_key_refuses_questions(service, tmp_path: Path) -> None:
    from app.identity.users import User, local_operator

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text("# Leave\n\nStaff get 25 days of paid leave per year.\n")
    service.ingest(local_operator(), docs, ["staff"])
    service.audit.key_path.unlink()
    before = service.audit.path.read_bytes()
    with pytest.raises(AuditKeyMissing):
        service.ask(User("alice", groups=("staff",)), "How many days of paid leave?")
    assert service.audit.path.read_bytes() == before
    assert service.llm_queue.waiting() == 0 and not service.llm_queue.busy


def test_a_question_refused_because_the_line_is_full_is_logged_without_chunks(
    service, tmp_path: Path
) -> None:
    from app.identity.users import User, local_operator
    from models.queue import QueueFull

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text("# Leave\n\nStaff get 25 days of paid leave per year.\n")
    service.ingest(local_operator(), docs, ["staff"])
    alice = User("alice", groups=("staff",))
    service.llm_queue.max_waiting = 1  # one may wait
    hello = [{"role": "user", "content": "Say hello."}]
    running = service.llm_queue.submit("bob", hello, 4)
    next(running)  # bob has the model
    waiting = service.llm_queue.submit("carol", hello, 4)  # carol holds the one place
    try:
        with pytest.raises(QueueFull):
            service.ask(alice, "How many days of paid leave do staff get?")
    finally:
        running.close()
        waiting.close()
    entry = list(service.audit.entries())[-1]
    assert entry["action"] == "query" and entry["outcome"] == "refused"
    assert "chunks" not in entry and "documents" not in entry
