"""Restoring a backup: onto a machine whose documents live under another root (`--map-root`),
without the audit key in the backup (`--without-audit-key`: restore asks for it), a damaged
backup (one byte changed in any file) refused with the file named and nothing written, and
backups taken in the middle of an ingest that restore to whole documents only."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.audit.log import AuditLog
from app.identity.users import ADMIN, EMPLOYEE, User
from app.platform.settings import KuraSettings
from app.service import KuraService
from app.service.backup import (
    AuditKeyNeeded,
    BackupError,
    backup_parts,
    parse_root_move,
    restore_backup,
    verify_backup,
)
from retrieval.store import ALL_GROUPS
from tests.conftest import REPO

BOSS = User("boss", frozenset({ADMIN, EMPLOYEE}), ("staff",))
ANN = User("ann", frozenset({EMPLOYEE}), ("staff",))
LEAVE = "# Leave\n\nEmployees get twenty-five days of annual leave; carry-over ends in March.\n"
FILES = 60  # ~9 chunks each: several store flushes of 256 chunks, with backups between
BIKES = "# Bikes\n\nBicycles are parked in the basement rack; the door code changes monthly.\n"


def _kura(data: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURA_")}
    env.update(KURA_DATA_DIR=str(data), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "app.doors.cli", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, input=stdin,
    )


def _files_in(data: Path) -> list[str]:
    """What a restore wrote: every file, apart from the log the `kura` command itself keeps."""
    if not data.exists():
        return []
    return sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file() and "logs" not in p.parts)


def _chunks(service: KuraService) -> list:
    """Every chunk of every document, as stored (payload included)."""
    return [h for d in service.manifest.documents() for h in service.store.chunks_of(d.doc_id, ALL_GROUPS)]


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "old-machine" / "docs"
    (root / "hr").mkdir(parents=True)
    (root / "hr" / "leave.md").write_text(LEAVE, encoding="utf-8")
    (root / "bikes.md").write_text(BIKES, encoding="utf-8")
    return root


def test_map_root_moves_citations_and_a_sync_of_the_new_root_changes_nothing(
    service: KuraService, docs: Path, tmp_path: Path, embedder, llm
) -> None:
    service.ingest(BOSS, docs, ["staff"])
    service.watch_folder(BOSS, docs, ["staff"], 3600)
    backup_parts(service.parts, tmp_path / "backup")
    service.close()
    new_root = tmp_path / "new-machine" / "documents"
    shutil.copytree(docs, new_root)  # as an operator copies them over (cp -a, rsync -a): times kept
    shutil.rmtree(tmp_path / "old-machine")  # the old root does not exist on the new machine

    fresh = KuraSettings(data_dir=tmp_path / "restored")
    summary = restore_backup(tmp_path / "backup", fresh, map_roots=[parse_root_move(f"{docs}={new_root}")])
    assert summary.moved == 3  # two files and the watched folder
    restored = KuraService(fresh, embedder=embedder, llm=llm)
    try:
        files = restored.manifest.all_files()
        assert sorted(f.path for f in files) == [str(new_root / "bikes.md"), str(new_root / "hr" / "leave.md")]
        assert {f.root for f in files} == {str(new_root)}
        admin_hit = restored.search(BOSS, "annual leave carry-over", as_admin=True)[0]
        assert admin_hit.source_path == str(new_root / "hr" / "leave.md")  # the admin's view: the new path
        reader_hit = restored.search(ANN, "annual leave carry-over")[0]
        assert reader_hit.shown_path == "hr/leave.md"  # a reader's citation: relative, as before
        payloads = [h.payload for h in _chunks(restored)]
        assert payloads and all(p["source_path"].startswith(str(new_root) + "/") for p in payloads)
        assert all(path.startswith(str(new_root) + "/") for p in payloads for path in p["paths"])
        assert [w.path for w in restored.watched_folders(BOSS)] == [str(new_root)]

        chunk_ids = sorted(h.id for h in _chunks(restored))
        report = restored.ingest(BOSS, new_root, ["staff"])
        assert report.count("unchanged") == 2 and report.chunks == 0, report.results  # no re-embedding
        assert restored.manifest.all_files() == files
        assert sorted(h.id for h in _chunks(restored)) == chunk_ids
    finally:
        restored.close()


@pytest.mark.parametrize("text", ["/srv/docs", "docs=/data/docs", "/srv/docs=data", "/=/data"])
def test_a_bad_map_root_is_one_clear_line(text: str) -> None:
    with pytest.raises(BackupError, match="is not OLD=NEW with two absolute folders"):
        parse_root_move(text)


def test_backup_without_the_audit_key_restores_only_with_that_key(
    service: KuraService, docs: Path, tmp_path: Path
) -> None:
    service.ingest(BOSS, docs, ["staff"])
    summary = backup_parts(service.parts, tmp_path / "backup", audit_key=False)
    assert not summary.audit_key and not (tmp_path / "backup" / "audit.key").exists()
    assert verify_backup(tmp_path / "backup") == []
    key = service.audit.key_path
    last = list(service.audit.entries())[-1]
    target = KuraSettings(data_dir=tmp_path / "restored")

    with pytest.raises(AuditKeyNeeded, match="taken without its audit key.*--audit-key FILE"):
        restore_backup(tmp_path / "backup", target)
    with pytest.raises(BackupError, match="audit key file .*missing.key does not exist"):
        restore_backup(tmp_path / "backup", target, audit_key=tmp_path / "missing.key")
    wrong = tmp_path / "other.key"
    wrong.write_text(secrets.token_hex(32))
    with pytest.raises(BackupError, match="is not the audit key of this backup"):
        restore_backup(tmp_path / "backup", target, audit_key=wrong)
    assert _files_in(target.data_dir) == []  # refused before a byte was written

    restore_backup(tmp_path / "backup", target, audit_key=key)
    log = AuditLog(target.audit_path)
    assert log.verify() == []
    entry = log.append(user="boss", role=ADMIN, action="note", text="first entry after the restore")
    assert entry["prev"] == last["hash"] and log.verify() == []  # the chain goes on


def test_kura_restore_asks_for_the_audit_key_at_a_terminal(service: KuraService, docs: Path, tmp_path: Path) -> None:
    service.ingest(BOSS, docs, ["staff"])
    backup_parts(service.parts, tmp_path / "backup", audit_key=False)
    kept = tmp_path / "safe" / "audit.key"
    kept.parent.mkdir()
    shutil.copy2(service.audit.key_path, kept)
    data = tmp_path / "restored"

    piped = _kura(data, "restore", str(tmp_path / "backup"))  # no terminal: one line, no prompt
    assert piped.returncode == 1 and "--audit-key FILE" in piped.stderr and _files_in(data) == [], piped.stderr
    cmd = f"{sys.executable} -m app.doors.cli restore {tmp_path / 'backup'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURA_")} | {"KURA_DATA_DIR": str(data)}
    at_terminal = subprocess.run(  # `script` gives the command a terminal, as an operator has
        ["script", "-qec", cmd, "/dev/null"], input=f"{kept}\n", cwd=REPO, env=env,
        capture_output=True, text=True, timeout=300,
    )
    assert at_terminal.returncode == 0, at_terminal.stdout + at_terminal.stderr
    assert "path of the audit.key file" in at_terminal.stdout and "restored" in at_terminal.stdout
    assert (data / "audit.key").read_bytes() == kept.read_bytes()
    assert _kura(data, "audit", "verify").returncode == 0


def test_kura_backup_through_the_server_leaves_the_key_out(service: KuraService, docs: Path, tmp_path: Path) -> None:
    """`kura backup --without-audit-key` beside a running server: the server's service writes it."""
    from app.doors.http.api import standalone_app
    from app.identity import operator_token
    from tests.api_server import LoopbackServer

    service.ingest(BOSS, docs, ["staff"])
    with LoopbackServer(standalone_app(service.settings, lambda: service)) as server:
        operator_token.write(service.settings, server.url)  # what `kura serve` writes for the CLI
        try:
            taken = _kura(service.settings.data_dir, "backup", str(tmp_path / "backup"), "--without-audit-key")
        finally:
            operator_token.remove(service.settings)
    assert taken.returncode == 0, taken.stdout + taken.stderr
    assert "(by the server); audit.key left out: keep it elsewhere" in taken.stdout
    assert verify_backup(tmp_path / "backup") == [] and not (tmp_path / "backup" / "audit.key").exists()
    entry = [e for e in service.audit.entries() if e["action"] == "backup"][-1]
    assert entry["user"] == "local-operator" and entry["audit_key"] is False and entry["via"] == "api"


def test_one_changed_byte_in_any_file_is_refused_with_the_file_named(
    service: KuraService, docs: Path, tmp_path: Path
) -> None:
    service.ingest(BOSS, docs, ["staff"])
    backup = tmp_path / "backup"
    backup_parts(service.parts, backup)
    target = KuraSettings(data_dir=tmp_path / "restored")
    files = sorted(p for p in backup.rglob("*") if p.is_file())
    assert len(files) > 8, files
    for path in files:
        name = path.relative_to(backup).as_posix()
        original = path.read_bytes()
        at = len(original) // 2
        path.write_bytes(original[:at] + bytes([original[at] ^ 0x01]) + original[at + 1 :] if original else b"\0")
        try:
            with pytest.raises(BackupError, match="nothing restored") as refused:
                restore_backup(backup, target)
            assert name in str(refused.value), (name, str(refused.value))
            assert _files_in(target.data_dir) == [], name
        finally:
            path.write_bytes(original)
    assert verify_backup(backup) == []

    manifest = backup / "manifest.sqlite3"
    original = manifest.read_bytes()
    manifest.write_bytes(original[:100] + b"\xff" + original[101:])
    refused = _kura(target.data_dir, "restore", str(backup))  # the real command, as an operator runs it
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "manifest.sqlite3 does not match its checksum" in refused.stderr and "nothing restored" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert _files_in(target.data_dir) == []


def test_backups_taken_during_an_ingest_restore_whole_documents_only(
    service: KuraService, tmp_path: Path, embedder
) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(FILES):
        body = f"# Notice {n}\n\n" + " ".join(f"Item {n}-{k} concerns room {n * 7 + k}." for k in range(200))
        (folder / f"notice-{n:02d}.md").write_text(body, encoding="utf-8")
    job = service.submit_ingest(BOSS, folder, ["staff"])
    backups: list[Path] = []
    started = last = time.monotonic()
    while not (now := service.job(BOSS, job.id)).finished:
        if now.state == "running" and time.monotonic() - last > 0.5 and len(backups) < 12:
            backups.append(tmp_path / f"backup-{len(backups)}")
            backup_parts(service.parts, backups[-1])  # while the writer embeds, stages and swaps
            last = time.monotonic()
        time.sleep(0.1)
    print(f"ingest of {FILES} files: {time.monotonic() - started:.1f} s, {len(backups)} backups taken meanwhile")
    assert service.job(BOSS, job.id).state == "done"
    assert len(backups) >= 2, "the ingest ended before two backups could be taken in its middle"
    seen = []
    for backup in backups:
        fresh = KuraSettings(data_dir=tmp_path / f"restored-{backup.name}")
        restore_backup(backup, fresh)
        restored = KuraService(fresh, embedder=embedder)
        try:
            index = restored.index  # opening the index finishes or drops a swap the backup caught
            documents = index.manifest.documents()
            for document in documents:
                assert len(index.store.chunks_of(document.doc_id, ALL_GROUPS)) == document.chunk_count, document
            assert index.store.document_ids() == index.manifest.document_ids()
            assert index.store.count(ALL_GROUPS, staged=True) == 0
            assert {f.doc_id for f in index.manifest.all_files()} == index.manifest.document_ids()
            seen.append(len(documents))
        finally:
            restored.close()
    assert seen == sorted(seen) and seen[-1] <= FILES and any(0 < n < FILES for n in seen), seen
    print(f"documents whole in each backup taken during the ingest: {seen}")
