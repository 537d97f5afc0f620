"""`kura backup` / `kura restore`: a live backup restores into a fresh data directory with
identical search results and an intact audit chain; a damaged backup restores nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.identity.users import User, local_operator
from app.service.backup import BackupError, backup_parts, restore_backup, verify_backup

POLICY = """# Remote work

Staff may work remotely up to three days per week after their probation period.
Remote workers must use the company VPN and an encrypted laptop.

# Equipment

The company pays for one monitor and one chair for a home office, up to 400 euros.
"""
QUERIES = ["how many remote days per week", "home office equipment budget", "VPN"]


def results(service, user: User) -> list[tuple[str, str, float]]:
    return [
        (p.chunk_id, p.source_path, round(p.score, 5))
        for q in QUERIES
        for p in service.search(user, q, limit=5)
    ]


@pytest.fixture
def ingested(service, tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "remote.md").write_text(POLICY, encoding="utf-8")
    service.ingest(local_operator(), docs, ["staff"])
    return service


def test_restored_backup_gives_identical_search_results_and_a_verifying_audit_chain(
    ingested, tmp_path: Path, embedder, llm
):
    from app.platform.settings import KuraSettings
    from app.service import KuraService

    alice = User("alice", groups=("staff",))
    expected = results(ingested, alice)
    assert expected, "the ingested policy must be found"
    summary = backup_parts(ingested.parts, tmp_path / "backup")
    assert summary.chunks == ingested.store.count() and summary.files >= 4
    assert verify_backup(tmp_path / "backup") == []

    backed_up = list(ingested.audit.entries())
    fresh = KuraSettings(data_dir=tmp_path / "restored")
    restore_backup(tmp_path / "backup", fresh)
    restored = KuraService(fresh, embedder=embedder, llm=llm)
    try:
        assert results(restored, alice) == expected
        assert results(restored, User("bob")) == []  # ACL groups survived the round trip
        assert restored.audit.verify() == []
        assert list(restored.audit.entries())[: len(backed_up)] == backed_up
        assert [d.doc_id for d in restored.manifest.documents()] == [
            d.doc_id for d in ingested.manifest.documents()
        ]
    finally:
        restored.close()


def test_backup_taken_while_questions_arrive_keeps_a_whole_audit_chain(ingested, tmp_path: Path):
    import threading

    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            ingested.search(User("alice", groups=("staff",)), "VPN", limit=3)

    worker = threading.Thread(target=keep_asking)
    worker.start()
    try:
        backup_parts(ingested.parts, tmp_path / "backup")
    finally:
        stop.set()
        worker.join()
    from app.audit.log import AuditLog

    assert AuditLog(tmp_path / "backup" / "audit.jsonl").verify() == []


def test_a_changed_backup_file_is_refused_and_nothing_is_restored(ingested, tmp_path: Path):
    from app.platform.settings import KuraSettings

    backup_parts(ingested.parts, tmp_path / "backup")
    audit = tmp_path / "backup" / "audit.jsonl"
    audit.write_text(audit.read_text().replace('"staff"', '"everyone"'))
    target = KuraSettings(data_dir=tmp_path / "restored")
    with pytest.raises(BackupError, match="audit.jsonl does not match its checksum"):
        restore_backup(tmp_path / "backup", target)
    assert not target.data_dir.exists()


def test_restore_never_overwrites_an_existing_data_directory(ingested, tmp_path: Path):
    backup_parts(ingested.parts, tmp_path / "backup")
    with pytest.raises(BackupError, match="not empty"):
        restore_backup(tmp_path / "backup", ingested.settings)
    with pytest.raises(BackupError, match="not empty"):
        backup_parts(ingested.parts, tmp_path / "backup")
