"""Backup and restore of everything kura keeps: store, manifest, users, audit log.

A backup is a folder: `store/` (the qdrant-edge shard, flushed and copied while no write can
run) or `points.jsonl` (server mode: every point with its vectors), `manifest.sqlite3` and
`users.sqlite3` (SQLite's online backup API: consistent while kura writes), `audit.jsonl`
(whole lines only), `backup.json` (what and when) and `SHA256SUMS` over every file.
Restore checks every checksum first and only writes into an empty data directory.

Usage:
    summary = backup_parts(service.parts, Path("/backups/kura-2026-11-21"))
    restore_backup(Path("/backups/kura-2026-11-21"), KuraSettings(data_dir=Path("/srv/kura-new")))
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.platform.privacy import make_private
from base.hashing import sha256_of
from ingest.jobs import JOBS_DB
from retrieval.store import EdgeStore, SparseVec, StoredChunk, copy_keeping_holes

if TYPE_CHECKING:
    from app.audit.log import AuditLog
    from app.platform.settings import KuraSettings
    from app.service.parts import Parts

FORMAT = 1
CHECKSUMS = "SHA256SUMS"
BACKUPS_DIR = "backups"  # under data_dir: where the UI's "Back up now" writes by default


class BackupError(RuntimeError):
    """A backup cannot be written or restored; the message says what to do."""


@dataclass(frozen=True)
class BackupSummary:
    files: int
    bytes: int  # on disk (preallocated store files are sparse)
    chunks: int


def _sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy even while another connection writes."""
    if not source.exists():
        return
    src = sqlite3.connect(str(source))
    dst = sqlite3.connect(str(target))
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _audit_copy(audit: AuditLog, dest: Path) -> list[str]:
    """The log with its key, signed head, anchor and archive, under the log's own writer lock
    (an flock, so a UI process appending at the same moment waits): head and log agree."""
    names = []
    with audit._exclusive():  # AuditLog's one-writer lock; no entry can land mid-copy
        for path in (audit.path, audit.key_path, audit.head_path, audit.anchor_path):
            if path.exists():
                shutil.copy2(path, dest / path.name)
                names.append(path.name)
        if audit.archive_dir.exists():
            shutil.copytree(audit.archive_dir, dest / audit.archive_dir.name)
            names.append(audit.archive_dir.name)
    return names



def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != CHECKSUMS)


def backup_parts(parts: Parts, dest: Path) -> BackupSummary:
    """Write a consistent backup of the running service's data (its `parts`) into the new
    folder `dest`, while it runs."""
    settings = parts.settings
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty; give a new folder for each backup")
    # Only data_dir/backups/ is allowed inside the data directory: in the container the data
    # volume is the one place that survives, so the UI's default lands there to be copied off.
    inside = dest.resolve().is_relative_to(settings.data_dir.resolve())
    if inside and not dest.resolve().is_relative_to((settings.data_dir / BACKUPS_DIR).resolve()):
        raise BackupError(
            f"{dest} is inside the data directory {settings.data_dir}; back up somewhere else "
            f"(or under {settings.data_dir / BACKUPS_DIR})"
        )
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = parts.store.get()

    def copy_databases() -> None:
        _sqlite_copy(settings.manifest_path, dest / settings.manifest_path.name)
        _sqlite_copy(settings.users_path, dest / settings.users_path.name)
        if (settings.data_dir / JOBS_DB).is_file():  # the job history and the watched folders
            _sqlite_copy(settings.data_dir / JOBS_DB, dest / JOBS_DB)

    if isinstance(store, EdgeStore):
        # Under the store's write lock: the shard and the manifest are taken at the same point.
        store.snapshot_to(dest / "store", while_locked=copy_databases)
    else:
        copy_databases()
        with (dest / "points.jsonl").open("w", encoding="utf-8") as fh:
            for page in store.export_points():
                for chunk in page:
                    fh.write(json.dumps(_point_json(chunk), ensure_ascii=False) + "\n")
    # The audit log is written after the store (an ask appends after it searched), so copying
    # it last keeps every audited chunk id resolvable in the backup.
    audit_files = _audit_copy(parts.audit, dest)
    chunks = store.count() + store.count(staged=True)
    (dest / "backup.json").write_text(
        json.dumps(
            {
                "format": FORMAT,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "store": "edge" if isinstance(store, EdgeStore) else "server",
                "collection": settings.collection,
                "chunks": chunks,
                "dense_size": parts.embedder.get().dim,
                "audit": audit_files,
            },
            indent=1,
        )
    )
    files = _files(dest)
    lines = [f"{sha256_of(p)}  {p.relative_to(dest).as_posix()}\n" for p in files]
    (dest / CHECKSUMS).write_text("".join(lines))
    make_private(dest)  # a backup holds every document and question: owner only, 0700/0600
    return BackupSummary(
        files=len(files), bytes=sum(p.stat().st_blocks * 512 for p in files), chunks=chunks
    )


def verify_backup(src: Path) -> list[str]:
    """Problems with the backup at `src` (missing, changed or unlisted files); [] when intact."""
    sums = src / CHECKSUMS
    if not sums.is_file():
        return [f"{sums} is missing: {src} is not a kura backup"]
    problems, listed = [], set()
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed.add(name)
        path = src / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif sha256_of(path) != digest:
            problems.append(f"{name} does not match its checksum (changed or corrupt)")
    for path in _files(src):
        if path.relative_to(src).as_posix() not in listed:
            problems.append(
                f"{path.relative_to(src)} is not in {CHECKSUMS} (added after the backup)"
            )
    return problems


def restore_backup(src: Path, settings: KuraSettings) -> int:
    """Restore the backup at `src` into settings.data_dir, which must be empty or absent.
    Server-mode backups are loaded into the configured store (KURA_QDRANT_URL or embedded)."""
    problems = verify_backup(src)
    if problems:
        raise BackupError(
            "backup failed verification, nothing restored:\n  " + "\n  ".join(problems)
        )
    data = settings.data_dir
    if data.exists() and any(
        p.is_file() for p in data.rglob("*") if settings.logs_dir not in p.parents
    ):
        raise BackupError(
            f"{data} is not empty; restore into a new KURA_DATA_DIR (kura never overwrites data)"
        )
    meta = json.loads((src / "backup.json").read_text())
    if meta.get("format") != FORMAT:
        raise BackupError(
            f"backup format {meta.get('format')} is not {FORMAT}; "
            "restore with the kura version that wrote it"
        )
    settings.ensure_dirs()
    restored = 0
    for name in (settings.manifest_path.name, settings.users_path.name, JOBS_DB, *meta.get("audit", [])):
        if (src / name).is_file():
            shutil.copy2(src / name, data / name)
            restored += 1
        elif (src / name).is_dir():
            shutil.copytree(src / name, data / name)
            restored += len(_files(data / name))
    if (src / "store").is_dir():
        shutil.rmtree(settings.store_dir)
        shutil.copytree(src / "store", settings.store_dir, copy_function=copy_keeping_holes)
        restored += len(_files(settings.store_dir))
    if (src / "points.jsonl").is_file():
        restored += _load_points(src / "points.jsonl", settings, int(meta["dense_size"]))
    make_private(data)  # copies keep the backup's modes; the data directory stays private
    return restored


def _point_json(chunk: StoredChunk) -> dict:
    sparse = (
        {"indices": chunk.sparse.indices, "values": chunk.sparse.values} if chunk.sparse else None
    )
    if sparse is not None and chunk.sparse is not None and chunk.sparse.ngrams is not None:
        sparse["ngrams"] = [chunk.sparse.ngrams.indices, chunk.sparse.ngrams.values]  # Japanese
    return {"id": chunk.id, "dense": chunk.dense, "sparse": sparse, "payload": chunk.payload}


def _load_points(path: Path, settings: KuraSettings, dense_size: int) -> int:
    from retrieval.store import ChunkStore

    store: ChunkStore
    if settings.qdrant_url:
        from retrieval.server_store import ServerStore

        store = ServerStore(
            settings.qdrant_url,
            settings.qdrant_api_key,
            settings.collection,
            dense_size,
            shards=settings.qdrant_shards,
            replicas=settings.qdrant_replicas,
        )
    else:
        store = EdgeStore(settings.store_dir, dense_size)
    try:
        batch: list[StoredChunk] = []
        count = 0
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                p = json.loads(line)
                sparse = (
                    SparseVec(
                        p["sparse"]["indices"],
                        p["sparse"]["values"],
                        SparseVec(*p["sparse"]["ngrams"]) if p["sparse"].get("ngrams") else None,
                    )
                    if p["sparse"]
                    else None
                )
                batch.append(StoredChunk(p["id"], p["dense"], sparse, p["payload"]))
                if len(batch) == 256:
                    store.upsert(batch)
                    count, batch = count + len(batch), []
        if batch:
            store.upsert(batch)
            count += len(batch)
        return count
    finally:
        store.close()
