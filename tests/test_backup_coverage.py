"""A backup is complete by construction: every feature that writes state runs (ingest, an upload
over the real HTTP API, accounts and a sign-in session, API keys, a real answer saved as a
conversation and its feedback, a model added and put in use, a watched folder, the audit log
with an archive and a checkpoint, the operator token a server writes), then every name in the
data directory must be declared in app/service/data_files.py, and everything declared as backed
up must come back from a restore exactly (every SQLite row, every file, every uploaded original,
the same search results)."""

from __future__ import annotations

import shutil
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from app.doors.http.api import standalone_app
from app.identity import operator_token
from app.identity.users import ADMIN, EMPLOYEE, User
from app.platform.settings import KuraSettings
from app.service import KuraService
from app.service.backup import backup_parts, restore_backup
from app.service.data_files import (
    BACKED_UP,
    DATA_FILES,
    DERIVED,
    FILE,
    FOLDER,
    SKIPPED,
    SQLITE,
    entry_for,
    undeclared,
)
from models.registry import ModelRegistry, packaged_llm_path
from tests.api_server import LoopbackServer

PASSWORD = "Quiet-harbor-2024x"
POLICY = "# Travel\n\nTrain tickets are booked through the travel desk two weeks ahead.\n"
MEMO = b"# Parking\n\nVisitors park on level minus two; the code is given at reception.\n"
BOSS = User("boss", frozenset({ADMIN, EMPLOYEE}), ("staff",))
ANN = User("ann", frozenset({EMPLOYEE}), ("staff",))


def _rows(path: Path) -> list[str]:
    db = sqlite3.connect(str(path))
    try:
        return list(db.iterdump())
    finally:
        db.close()


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    files = (p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


def _hits(service: KuraService) -> list[tuple[str, str, float]]:
    """A search's passages; equal scores (the two documents tie at 1.0) in chunk id order, as
    the store's order among ties is not part of its contract."""
    found = [(p.chunk_id, p.source_path, round(p.score, 5)) for p in service.search(ANN, "train tickets parking")]
    return sorted(found, key=lambda hit: (-hit[2], hit[0]))


def _wait_done(http: httpx.Client, job_id: int) -> dict:
    for _ in range(1200):
        job = http.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def _settled(service: KuraService) -> None:
    """Wait until the watched folder's first sync ran and no job is left (nothing writes after)."""
    for _ in range(1200):
        jobs = service.jobs(BOSS)
        if any(j.watched_id for j in jobs) and all(j.finished for j in jobs):
            return
        time.sleep(0.1)
    raise AssertionError(f"jobs did not settle: {service.jobs(BOSS)}")


def _every_feature(service: KuraService, tmp: Path) -> str:
    """Everything on this branch that writes into the data directory, through its use case;
    returns the admin's API key."""
    settings = service.settings
    service.accounts.add("boss", PASSWORD, [ADMIN, EMPLOYEE], ["staff"])
    service.accounts.add("ann", PASSWORD, [EMPLOYEE], ["staff"])
    service.accounts.open_session(service.accounts.authenticate("ann", PASSWORD))  # a sign-in session
    docs = tmp / "docs"
    docs.mkdir()
    (docs / "travel.md").write_text(POLICY, encoding="utf-8")
    service.ingest(BOSS, docs, ["staff"])
    service.watch_folder(BOSS, docs, ["staff"], 3600)
    _, admin_key = service.create_api_key(BOSS, "admin", "coverage")
    with LoopbackServer(standalone_app(settings, lambda: service)) as server:
        operator_token.write(settings, server.url)  # what `kura serve` writes for the CLI
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=60) as http:
            r = http.post("/api/v1/ingest/upload", files=[("files", ("memo.md", MEMO, "text/markdown"))],
                          data={"groups": "staff"})
            assert r.status_code == 202, r.text
            assert _wait_done(http, r.json()["job_id"])["state"] == "done"
    answer = service.ask(ANN, "How are train tickets booked?", keep=True)  # a saved conversation
    "".join(answer.tokens())
    service.record_feedback(ANN, answer, helpful=True, comment="clear")
    model = tmp / "site-models" / "smol.gguf"
    model.parent.mkdir()
    shutil.copy2(packaged_llm_path(), model)
    ModelRegistry(settings.models_manifest_path).add(model, name="site-smol")
    service.use_model(BOSS, "site-smol")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    assert service.audit.archive(before=tomorrow) is not None  # audit-archive/ and audit.anchor
    service.audit.append(user="boss", role=ADMIN, action="note", text="after the archive")
    service.audit.checkpoint()
    _settled(service)
    return admin_key


@pytest.fixture
def busy(service: KuraService, tmp_path: Path) -> tuple[KuraService, str]:
    return service, _every_feature(service, tmp_path)


def test_every_name_in_the_data_directory_is_declared(busy: tuple[KuraService, str]) -> None:
    data = busy[0].settings.data_dir
    assert undeclared(data) == [], "declare these in app/service/data_files.py (backed up, derived or skipped)"
    written = {p.name for p in data.iterdir()}
    # The run reached what it claims: each of these was written by a feature above.
    for name in ("store", "manifest.sqlite3", "jobs.sqlite3", "users.sqlite3", "api_keys.sqlite3", "feedback.sqlite3",
                 "models.json", "uploads", "audit.jsonl", "audit.key", "audit.head", "audit.anchor", "audit-archive",
                 "server.json", "jobs.lock", "audit.lock"):
        assert name in written, name


def test_a_stray_file_is_reported_by_name(settings: KuraSettings) -> None:
    settings.ensure_dirs()
    (settings.data_dir / "manifest.sqlite3-wal").write_bytes(b"")  # a database's companion: declared
    assert undeclared(settings.data_dir) == []
    (settings.data_dir / "new-feature.db").write_bytes(b"state")
    (settings.data_dir / "thumbnails").mkdir()
    assert undeclared(settings.data_dir) == ["new-feature.db", "thumbnails"]


def test_every_entry_says_what_it_holds_and_how_it_is_kept() -> None:
    names = [e.name for e in DATA_FILES]
    assert len(names) == len(set(names))
    for entry in DATA_FILES:
        assert entry.keep in (*BACKED_UP, DERIVED, SKIPPED) and len(entry.holds) > 10, entry
        assert entry_for(entry.name.replace("*", "x")) == entry
    # The two files other features are adding are declared already, each its own way.
    assert entry_for("conversations.sqlite3").keep == SQLITE
    assert entry_for("audit-index.sqlite3").keep == DERIVED


def test_everything_backed_up_comes_back_exactly(busy: tuple[KuraService, str], tmp_path: Path, embedder, llm):
    busy, admin_key = busy
    data = busy.settings.data_dir
    expected = _hits(busy)
    assert len({path for _, path, _ in expected}) == 2, expected  # the ingested policy and the upload
    backup_parts(busy.parts, tmp_path / "backup")
    before = {e.name: _rows(data / e.name) for e in DATA_FILES if e.keep == SQLITE and (data / e.name).exists()}
    files = {e.name: (data / e.name).read_bytes() for e in DATA_FILES if e.keep == FILE and (data / e.name).exists()}
    folders = {e.name: _tree(data / e.name) for e in DATA_FILES if e.keep == FOLDER and (data / e.name).exists()}
    assert set(before) >= {"manifest.sqlite3", "jobs.sqlite3", "users.sqlite3", "api_keys.sqlite3", "feedback.sqlite3"}
    assert set(files) == {"models.json"} and set(folders) == {"uploads"}
    entries = list(busy.audit.entries(include_archive=True))
    busy.close()

    fresh = KuraSettings(data_dir=tmp_path / "restored")
    restore_backup(tmp_path / "backup", fresh)
    got = fresh.data_dir
    assert undeclared(got) == []
    for name, rows in before.items():
        if name != "manifest.sqlite3":  # its paths under the old data directory moved (uploads)
            assert _rows(got / name) == rows, name
    for name, content in files.items():
        assert (got / name).read_bytes() == content, name
    for name, tree in folders.items():
        assert _tree(got / name) == tree, name  # same bytes and modification times
    restored = KuraService(fresh, embedder=embedder, llm=llm)
    try:
        assert list(restored.audit.entries(include_archive=True)) == entries
        assert restored.audit.verify(include_archive=True) == []
        moved = str(data.resolve() / "uploads")
        shown = [(c, p.replace(moved, str(got.resolve() / "uploads")), score) for c, p, score in expected]
        assert _hits(restored) == shown
        assert restored.feedback(BOSS)[0].comment == "clear"
        assert ModelRegistry(fresh.models_manifest_path).active().name == "site-smol"
        assert restored.api_caller(admin_key, "admin")[0].name == "boss"  # the same key works
        assert restored.accounts.authenticate("ann", PASSWORD).name == "ann"
        assert [w.path for w in restored.watched_folders(BOSS)] == [str((tmp_path / "docs").resolve())]
    finally:
        restored.close()
