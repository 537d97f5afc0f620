"""The audit log detects every kind of tampering, exports faithfully, archives without loss.

Real files on disk, the real HMAC chain; each tampering is done the way an intruder would:
by editing the JSON Lines file.
"""

from __future__ import annotations

import csv
import hashlib
import json
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.audit.log import AuditLog, read_export


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    audit = AuditLog(tmp_path / "audit.jsonl")
    for i, user in enumerate(["alice", "bob", "alice", "carol", "bob", "alice"]):
        audit.append(
            user=user,
            role="employee",
            action="query" if i % 2 else "answer",
            query=f"question {i} 休暇",
            chunks=[f"c{i}"],
            documents=[f"d{i}"],
        )
    return audit


def _lines(log: AuditLog) -> list[str]:
    return log.path.read_text(encoding="utf-8").splitlines(keepends=True)


def test_untouched_log_verifies(log: AuditLog) -> None:
    assert log.verify() == []


def test_one_edited_byte_in_a_past_entry_is_reported_at_that_entry(log: AuditLog) -> None:
    raw = bytearray(log.path.read_bytes())
    at = raw.index(b"question 2") + len(b"question ")
    raw[at] = ord("7")
    log.path.write_bytes(bytes(raw))
    problems = log.verify()
    assert [p.entry for p in problems] == [3]
    assert "edited" in problems[0].message


def test_deleted_entry_is_reported_where_the_gap_is(log: AuditLog) -> None:
    lines = _lines(log)
    del lines[2]
    log.path.write_text("".join(lines), encoding="utf-8")
    problems = log.verify()
    assert problems and problems[0].entry == 3 and "deleted" in problems[0].message


def test_swapped_entries_are_reported(log: AuditLog) -> None:
    lines = _lines(log)
    lines[1], lines[2] = lines[2], lines[1]
    log.path.write_text("".join(lines), encoding="utf-8")
    assert {p.entry for p in log.verify()} >= {2, 3}


def test_forged_entry_appended_without_the_key_is_reported(log: AuditLog) -> None:
    last = json.loads(_lines(log)[-1])
    forged = {
        "seq": last["seq"] + 1,
        "time": last["time"],
        "user": "mallory",
        "role": "admin",
        "action": "login",
        "prev": last["hash"],
    }
    body = json.dumps(forged, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    forged["hash"] = hashlib.sha256(
        (last["hash"] + body).encode()
    ).hexdigest()  # a plain hash chain
    with log.path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(forged) + "\n")
    problems = log.verify()
    assert [p.entry for p in problems] == [7] and "forged" in problems[0].message


def test_inserted_entry_is_reported(log: AuditLog) -> None:
    lines = _lines(log)
    lines.insert(3, lines[0])  # a replayed old entry
    log.path.write_text("".join(lines), encoding="utf-8")
    assert 4 in {p.entry for p in log.verify()}


def test_entries_cut_from_the_end_are_reported(log: AuditLog) -> None:
    lines = _lines(log)
    log.path.write_text("".join(lines[:-2]), encoding="utf-8")
    problems = log.verify()
    assert problems and "2 entries deleted from the end" in problems[0].message


def test_two_writers_sharing_the_log_keep_one_chain(tmp_path: Path) -> None:
    first, second = AuditLog(tmp_path / "audit.jsonl"), AuditLog(tmp_path / "audit.jsonl")

    def write(audit: AuditLog, user: str) -> None:
        for _ in range(25):
            audit.append(user=user, role="employee", action="query")

    threads = [
        threading.Thread(target=write, args=(a, u)) for a, u in ((first, "ui"), (second, "cli"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert first.verify() == [] and sum(1 for _ in first.entries()) == 50


@pytest.mark.parametrize("fmt, suffix", [("jsonl", ".jsonl"), ("csv", ".csv")])
def test_filtered_export_round_trips_exactly(
    log: AuditLog, tmp_path: Path, fmt: str, suffix: str
) -> None:
    dest = tmp_path / f"export{suffix}"
    assert log.export(dest, fmt, user="alice", action="answer") == 2
    back = read_export(dest)
    expected = [e for e in log.entries() if e["user"] == "alice" and e["action"] == "answer"]
    assert back == expected
    assert all(log.entry_is_authentic(e) for e in back)


def test_export_date_range_is_inclusive_start_exclusive_end(log: AuditLog, tmp_path: Path) -> None:
    day = next(log.entries())["time"][:10]
    assert log.export(tmp_path / "a.jsonl", since=day) == 6
    assert log.export(tmp_path / "b.jsonl", until=day) == 0
    with pytest.raises(ValueError, match="not a date"):
        log.export(tmp_path / "c.jsonl", since="last tuesday")


def test_archiving_keeps_old_entries_in_a_signed_segment_and_the_chain_whole(log: AuditLog) -> None:
    segment = log.archive(before="2999-01-01")
    assert segment is not None and (segment.first_seq, segment.last_seq) == (1, 6)
    log.append(user="dave", role="employee", action="login")
    assert [e["seq"] for e in log.entries()] == [7]
    assert log.verify(include_archive=True) == []
    assert [e["seq"] for e in log.entries(include_archive=True)] == list(range(1, 8))


def test_edited_archived_segment_is_reported(log: AuditLog) -> None:
    segment = log.archive(before="2999-01-01")
    assert segment is not None
    text = segment.path.read_text(encoding="utf-8").replace("question 1", "question 9")
    segment.path.write_text(text, encoding="utf-8")
    problems = log.verify(include_archive=True)
    assert any(p.where == segment.path.name for p in problems)


def test_follow_streams_new_entries_and_survives_archiving(log: AuditLog) -> None:
    seen: list[int] = []
    done = threading.Event()

    def reader() -> None:
        for entry in log.follow(after_seq=6, poll_s=0.05, stop=done.is_set):
            seen.append(entry["seq"])

    thread = threading.Thread(target=reader)
    thread.start()
    log.append(user="dave", role="employee", action="login")
    log.archive(before="2999-01-01")
    log.append(user="erin", role="employee", action="login")
    for _ in range(100):
        if len(seen) >= 2:
            break
        threading.Event().wait(0.05)
    done.set()
    thread.join()
    assert seen == [7, 8]


def test_kura_audit_verify_exits_1_and_names_the_entry(
    log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.doors.cli.main import app

    monkeypatch.setenv("KURA_DATA_DIR", str(log.path.parent))
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0 and "intact" in ok.output
    lines = _lines(log)
    lines[1] = lines[1].replace("bob", "eve")
    log.path.write_text("".join(lines), encoding="utf-8")
    bad = runner.invoke(app, ["audit", "verify"])
    assert bad.exit_code == 1 and "entry 2" in bad.output


def test_kura_audit_export_writes_csv_and_is_itself_audited(
    log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.doors.cli.main import app

    monkeypatch.setenv("KURA_DATA_DIR", str(log.path.parent))
    dest = log.path.parent / "out.csv"
    result = CliRunner().invoke(app, ["audit", "export", str(dest), "--user", "bob"])
    assert result.exit_code == 0, result.output
    assert [e["user"] for e in read_export(dest)] == ["bob", "bob"]
    last = list(log.entries())[-1]
    assert last["action"] == "audit_export" and last["user"] == "local-operator" and last["entries"] == 2


def test_csv_export_is_formula_safe_and_still_reads_back_exactly(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    hostile = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-2+3", "@SUM(A1)", "\tpad", "'quoted", "plain"]
    for text in hostile:
        log.append(user=text if text != "plain" else "bob", role="employee", action="search", query=text)
    dest = tmp_path / "out.csv"
    assert log.export(dest, "csv") == len(hostile)
    with dest.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:  # no cell a spreadsheet would run as a formula
        assert not any(cell.startswith(("=", "+", "-", "@", "\t")) for cell in row.values()), row
    assert rows[0]["query"] == "'" + hostile[0] and rows[5]["query"] == "''quoted" and rows[6]["query"] == "plain"
    back = read_export(dest)
    assert back == list(log.entries()) and all(log.entry_is_authentic(e) for e in back)
    assert log.verify_against(dest) == []  # an auditor's CSV export still anchors the log


def test_the_auditors_verify_reports_a_wiped_log_every_time_and_is_recorded_only_on_an_intact_one(
    tmp_path: Path,
) -> None:
    """service.verify_audit (every door's) checks before it records the check: recording first
    would start a wiped log afresh and the second verify would find it whole."""
    from app.identity.users import EMPLOYEE, AccessDenied, User, local_operator
    from app.platform.settings import KuraSettings
    from app.service import KuraService

    service = KuraService(KuraSettings(data_dir=tmp_path / "data"))
    try:
        auditor = local_operator()
        service.audit.append(user="alice", role="employee", action="query", query="leave?")
        assert service.verify_audit(auditor) == []
        assert list(service.audit.entries())[-1]["action"] == "audit_verify"
        with pytest.raises(AccessDenied):
            service.verify_audit(User("mallory", frozenset({EMPLOYEE})))
        assert list(service.audit.entries())[-1]["action"] == "denied"

        service.audit.path.write_text("", encoding="utf-8")  # an intruder empties the log
        first, second = service.verify_audit(auditor), service.verify_audit(auditor)
        assert first and first == second and "3 entries deleted" in first[0].message
        assert service.audit.path.read_text(encoding="utf-8") == ""  # the check wrote nothing
    finally:
        service.close()
