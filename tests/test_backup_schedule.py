"""Scheduled backups (KURA_BACKUP_EVERY, KURA_BACKUP_DIR, KURA_BACKUP_KEEP): the server's thread
takes them on time into the folder, each one audited, the oldest pruned (audited) while a backup
taken by hand in the same folder stays; a failure is an `alert` entry in the audit log; the age of
the newest good backup is a Prometheus gauge and a line on the admin's System page, red when it is
older than twice the schedule."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from app.doors.http import runtime
from app.identity.accounts import Accounts
from app.identity.users import ADMIN, EMPLOYEE, User
from app.platform.settings import KuraSettings
from app.service import KuraService
from app.service.backup import verify_backup
from app.service.backup_schedule import SCHEDULED, is_complete
from tests.test_ui_pages import PASSWORDS, VIEWS, signed_in

BOSS = User("boss", frozenset({ADMIN, EMPLOYEE}), ("staff",))
POLICY = "# Desks\n\nHot desks are booked a day ahead; lockers are on the second floor.\n"


def _service(data_dir: Path, embedder, **backup: object) -> KuraService:
    service = KuraService(KuraSettings(data_dir=data_dir, **backup), embedder=embedder)
    docs = data_dir.parent / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "desks.md").write_text(POLICY, encoding="utf-8")
    service.ingest(BOSS, docs, ["staff"])
    return service


def _gauge(name: str) -> float | None:
    gc.collect()  # services of earlier tests stop being read
    return REGISTRY.get_sample_value(name)


def _entries(service: KuraService, action: str) -> list[dict]:
    return [e for e in service.audit.entries() if e["action"] == action]


def test_backups_are_taken_on_schedule_and_the_oldest_pruned(data_dir: Path, tmp_path: Path, embedder) -> None:
    folder = tmp_path / "backups"
    service = _service(data_dir, embedder, backup_every="1s", backup_keep=2, backup_dir=str(folder))
    try:
        by_hand = folder / "before-the-upgrade"
        service.backup(BOSS, by_hand)
        assert service.start_backup_schedule()
        deadline = time.monotonic() + 240
        while len([e for e in _entries(service, "backup") if e.get("scheduled")]) < 4:
            assert time.monotonic() < deadline, _entries(service, "backup")
            time.sleep(0.2)
        age = _gauge("kura_backup_age_seconds")
        assert age is not None and age < 30, age
        assert service.backup_status(BOSS).every_s == 1.0 and not service.backup_status(BOSS).overdue
    finally:
        service.close()  # stops the thread after the backup it is writing
    scheduled = [e for e in _entries(service, "backup") if e.get("scheduled")]
    assert all(e["user"] == "backup-schedule" and e["role"] == "system" for e in scheduled)
    kept = sorted(p for p in folder.iterdir() if p.name.startswith(SCHEDULED))
    assert [str(p) for p in kept] == [e["dest"] for e in scheduled[-2:]]  # the newest two
    assert all(is_complete(p) and verify_backup(p) == [] for p in kept)
    pruned = [path for e in _entries(service, "backup_pruned") for path in e["removed"]]
    assert sorted(pruned) == sorted(e["dest"] for e in scheduled[:-2])  # every older one, audited
    assert not any(Path(p).exists() for p in pruned)
    assert verify_backup(by_hand) == []  # a backup taken by hand is never pruned
    assert _entries(service, "alert") == []


def test_a_failed_scheduled_backup_is_an_alert_not_a_silent_log_line(
    data_dir: Path, tmp_path: Path, embedder
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the backup folder should be")
    service = _service(data_dir, embedder, backup_every="1h", backup_dir=str(blocked))
    failures = _gauge("kura_backup_failures_total") or 0.0
    try:
        assert service.scheduled_backup() is None
        status = service.backup_status(BOSS)
    finally:
        service.close()
    alerts = _entries(service, "alert")
    assert len(alerts) == 1 and alerts[0]["user"] == "backup-schedule", alerts
    assert alerts[0]["reason"].startswith("scheduled backup into ") and str(blocked) in alerts[0]["reason"]
    assert status.last_error == alerts[0]["reason"] and status.overdue and status.last_good is None
    assert _gauge("kura_backup_failures_total") == failures + 1
    assert service.audit.verify() == []


@pytest.fixture
def admin_page(data_dir: Path) -> Iterator[None]:
    accounts = Accounts(KuraSettings().users_path)
    accounts.add("boss", PASSWORDS["boss"], ["admin", "employee"])
    accounts.close()
    yield
    runtime.uninstall()


def _backup_lines(service: KuraService) -> tuple[list[str], list[str], list[str], list[str]]:
    runtime.uninstall()
    runtime.install(service)  # what `kura serve`'s lifespan does
    at = signed_in("boss")
    at.switch_page(str(VIEWS / "system.py")).run()
    assert not at.exception, at.exception
    plain = [m.value.replace("\\", "") for m in at.caption]
    return ([e.value.replace("\\", "") for e in at.error], [s.value.replace("\\", "") for s in at.success],
            [i.value.replace("\\", "") for i in at.info], plain)


def test_the_system_page_shows_the_newest_good_backup_red_when_twice_the_schedule_passed(
    admin_page: None, data_dir: Path, tmp_path: Path, embedder
) -> None:
    folder = tmp_path / "backups"
    service = _service(data_dir, embedder, backup_every="1h", backup_keep=3, backup_dir=str(folder))
    try:
        errors, successes, _, captions = _backup_lines(service)
        assert errors == ["No good backup is known yet. Older than twice the schedule: look for alert entries "
                          "in the audit log."] and successes == []
        assert f"Scheduled backups: every 1.0 h into {folder}, the newest 3 kept." in captions
        assert service.scheduled_backup() is not None
        errors, successes, _, _ = _backup_lines(service)
        assert errors == [] and len(successes) == 1 and successes[0].startswith("Newest good backup: ")
    finally:
        service.close()
        runtime.uninstall()
    # The same folder under a 1 s schedule (a restart with a new KURA_BACKUP_EVERY): that backup
    # is found there, and once it is older than two seconds the line turns red.
    service = KuraService(KuraSettings(data_dir=data_dir, backup_every="1s", backup_dir=str(folder)), embedder=embedder)
    try:
        time.sleep(2.5)
        errors, successes, _, _ = _backup_lines(service)
        assert successes == [] and len(errors) == 1 and "Older than twice the schedule" in errors[0], errors
        assert errors[0].startswith("Newest good backup: ")
    finally:
        service.close()


def test_the_system_page_says_when_backups_are_not_scheduled(admin_page: None, data_dir: Path, embedder) -> None:
    service = _service(data_dir, embedder)
    try:
        errors, successes, infos, _ = _backup_lines(service)
        assert errors == [] and successes == []
        assert infos == ["Scheduled backups are off (set `KURA_BACKUP_EVERY`, e.g. 24h). No good backup is known yet."]
    finally:
        service.close()


def test_the_system_page_backs_up_without_the_audit_key_when_asked(
    admin_page: None, data_dir: Path, tmp_path: Path, embedder
) -> None:
    service = _service(data_dir, embedder)
    try:
        runtime.install(service)
        at = signed_in("boss")
        at.switch_page(str(VIEWS / "system.py")).run()
        dest = tmp_path / "offsite"
        at.text_input(key="backup_dest").input(str(dest))
        at.checkbox(key="backup_without_key").check()
        at.button(key="backup_now").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert verify_backup(dest) == [] and not (dest / "audit.key").exists()
        assert _entries(service, "backup")[-1]["audit_key"] is False
    finally:
        service.close()
