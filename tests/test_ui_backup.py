"""Backing up while the UI runs: the admin's "Back up now" on the System page writes the backup
from the process that owns the embedded store (a second `kura backup` process could not open it).
Driven with AppTest against the UI's real shared service, then restored into a fresh data dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.identity.accounts import Accounts
from app.identity.users import AccessDenied, User
from app.platform.settings import KuraSettings
from app.service import KuraService
from app.service.backup import BACKUPS_DIR, CHECKSUMS, restore_backup, verify_backup
from tests.test_ui_pages import PASSWORDS, VIEWS, signed_in

POLICY = """# Remote work

Staff may work remotely up to three days per week after their probation period.
Remote workers must use the company VPN and an encrypted laptop.
"""


@pytest.fixture
def ui_service(data_dir: Path, embedder, tmp_path: Path) -> Iterator[KuraService]:
    """The server's one service (the one store opener) with an admin, an employee and one
    ingested policy readable by `staff`; closed afterwards so the next test can open its own."""
    from app.doors.http import runtime

    accounts = Accounts(KuraSettings().users_path)
    accounts.add("boss", PASSWORDS["boss"], ["admin", "employee"])
    accounts.add("ann", PASSWORDS["ann"], ["employee"], groups=["staff"])
    accounts.close()
    service = KuraService(KuraSettings(data_dir=data_dir), embedder=embedder)
    runtime.install(service)  # what `kura serve`'s lifespan does
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "remote.md").write_text(POLICY, encoding="utf-8")
    service.ingest(User("boss", frozenset({"admin", "employee"})), docs, ["staff"])
    yield service
    runtime.uninstall()
    service.close()
    service.accounts.close()


def system_page():
    at = signed_in("boss")
    at.switch_page(str(VIEWS / "system.py")).run()
    assert not at.exception, at.exception
    return at


def test_admin_backs_up_from_the_system_page_and_the_backup_restores_the_same_documents(
    ui_service: KuraService, data_dir: Path, tmp_path: Path, embedder
):
    ann = User("ann", frozenset({"employee"}), ("staff",))
    expected = [(p.chunk_id, round(p.score, 5)) for p in ui_service.search(ann, "remote days VPN")]
    assert expected

    at = system_page()
    dest = Path(at.text_input(key="backup_dest").value)
    assert dest.parent == data_dir / BACKUPS_DIR  # the default: <data_dir>/backups/<UTC time>
    at.button(key="backup_now").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    done = [s.value.replace("\\", "") for s in at.success]  # paths are shown escaped (as text)
    assert len(done) == 1 and str(dest) in done[0] and str(dest / CHECKSUMS) in done[0]
    assert at.text_input(key="backup_dest").value != str(dest)  # next backup: a new folder
    assert verify_backup(dest) == []
    backups = [e for e in ui_service.audit.entries() if e["action"] == "backup"]
    assert [(e["user"], e["dest"]) for e in backups] == [("boss", str(dest))]

    fresh = KuraSettings(data_dir=tmp_path / "restored")
    restore_backup(dest, fresh)
    restored = KuraService(fresh, embedder=embedder)
    try:
        assert [d.doc_id for d in restored.manifest.documents()] == [
            d.doc_id for d in ui_service.manifest.documents()
        ]
        got = [(p.chunk_id, round(p.score, 5)) for p in restored.search(ann, "remote days VPN")]
        assert got == expected
        assert restored.audit.verify() == []
    finally:
        restored.close()


def test_backup_into_a_non_empty_folder_is_refused_with_a_clear_message(
    ui_service: KuraService, tmp_path: Path
):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "old.txt").write_text("keep me", encoding="utf-8")
    at = system_page()
    at.text_input(key="backup_dest").input(str(taken))
    at.button(key="backup_now").click().run()
    assert [e.value.replace("\\", "") for e in at.error] == [
        f"{taken} is not empty: give a new folder for each backup."
    ]
    assert not at.success and sorted(p.name for p in taken.iterdir()) == ["old.txt"]


def test_employee_cannot_back_up_and_the_attempt_is_audited(settings, tmp_path: Path):
    service = KuraService(settings)
    try:
        with pytest.raises(AccessDenied):
            service.backup(User("ann", frozenset({"employee"}), ("staff",)), tmp_path / "b")
        assert not (tmp_path / "b").exists()
        denied = [e for e in service.audit.entries() if e["action"] == "denied"]
        assert [(e["user"], e["attempted"]) for e in denied] == [("ann", "back up")]
    finally:
        service.close()
