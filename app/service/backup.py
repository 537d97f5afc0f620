"""Backup and restore of everything the data directory holds (the declared list in
app/service/data_files.py): store, databases, uploads, model list and audit log.

A backup is a folder: `store/` (the qdrant-edge shard, flushed and copied while no write can
run) or `points.jsonl` (server mode: every point with its vectors), every SQLite database (online
backup API: consistent while kura writes), `models.json`, `uploads/`, the audit log and its
companions (whole lines, under the log's writer lock), `backup.json` (what, when, from where) and
`SHA256SUMS` over every file. `audit.key` stays out with `audit_key=False`; restore then needs it.
Restore checks every checksum (and the key) before it writes anything, only writes into an empty
data directory, and can move recorded paths to new roots (documents copied to another machine).

Usage:
    summary = backup_parts(service.parts, Path("/backups/kura-2026-11-21"))
    restore_backup(Path("/backups/kura-2026-11-21"), KuraSettings(data_dir=Path("/srv/kura-new")),
                   map_roots=[parse_root_move("/srv/docs=/data/docs")])
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.audit.log import AuditLog
from app.platform.privacy import make_private
from app.service.data_files import (
    AUDIT,
    AUDIT_KEY,
    BACKED_UP,
    CHECKSUMS,
    DATA_FILES,
    FILE,
    FOLDER,
    META,
    SQLITE,
    STORE,
    backed_up,
)
from base.hashing import sha256_of
from base.paths import RootMoves
from ingest.jobs import JOBS_DB, JobQueue
from ingest.manifest import Manifest
from models.registry import ModelRegistry
from retrieval.store import EdgeStore, SparseVec, StoredChunk, copy_keeping_holes

if TYPE_CHECKING:
    from app.platform.settings import KuraSettings
    from app.service.parts import Parts

FORMAT = 2  # 2: every declared entry, the data directory it came from, the audit key optional
READABLE_FORMATS = (1, 2)
POINTS = "points.jsonl"  # server mode: the store as points
SELF_CHECK = "# sha256 of the lines above: "  # SHA256SUMS's last line
BACKUPS_DIR = "backups"  # under data_dir: where the UI's "Back up now" writes by default


class BackupError(RuntimeError):
    """A backup cannot be written or restored; the message says what to do."""


class AuditKeyNeeded(BackupError):
    """The backup was taken without its audit key: restore needs the key file (`--audit-key`)."""


@dataclass(frozen=True)
class BackupSummary:
    files: int
    bytes: int  # on disk (preallocated store files are sparse)
    chunks: int
    audit_key: bool = True  # False: audit.key was left out


@dataclass(frozen=True)
class RestoreSummary:
    files: int
    moves: tuple[tuple[str, str], ...]  # the roots recorded paths were moved between
    moved: int  # recorded paths (files, watched folders, jobs, models) now under a new root


def parse_root_move(text: str) -> tuple[str, str]:
    """'OLD=NEW' (two absolute folders) as (old, new): documents that lived under OLD on the
    machine that was backed up live under NEW here."""
    old, sep, new = text.partition("=")
    if not sep or not old.startswith("/") or not new.startswith("/") or old.rstrip("/") == "":
        raise BackupError(
            f"--map-root {text!r} is not OLD=NEW with two absolute folders, e.g. --map-root /srv/docs=/data/docs"
        )
    return old.rstrip("/"), str(Path(new).resolve())


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


def _audit_copy(audit: AuditLog, dest: Path, with_key: bool) -> list[str]:
    """The log with its key, signed head, anchor and archive, under the log's own writer lock
    (an flock, so a UI process appending at the same moment waits): head and log agree."""
    names = []
    with audit._exclusive():  # AuditLog's one-writer lock; no entry can land mid-copy
        for entry in backed_up(AUDIT):
            path = audit.path.parent / entry.name
            if entry.name == AUDIT_KEY and not with_key:
                continue
            if path.is_dir():
                shutil.copytree(path, dest / entry.name)
            elif path.exists():
                shutil.copy2(path, dest / entry.name)
            else:
                continue
            names.append(entry.name)
    return names


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != CHECKSUMS)


def _check_dest(settings: KuraSettings, dest: Path) -> None:
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


def _copy_entries(data: Path, dest: Path) -> None:
    """The databases taken outside the store's lock, then whole files, then folders: a folder
    (uploads) is copied after the databases that name its files, so every named file is whole."""
    for entry in backed_up(SQLITE):
        if not entry.with_store:
            _sqlite_copy(data / entry.name, dest / entry.name)
    for entry in backed_up(FILE):
        if (data / entry.name).is_file():
            shutil.copy2(data / entry.name, dest / entry.name)
    for entry in backed_up(FOLDER):
        if (data / entry.name).is_dir():
            shutil.copytree(data / entry.name, dest / entry.name)  # copy2: mtimes kept, a sync sees no change


def backup_parts(parts: Parts, dest: Path, *, audit_key: bool = True) -> BackupSummary:
    """Write a consistent backup of the running service's data (its `parts`) into the new
    folder `dest`, while it runs; `audit_key=False` leaves audit.key out."""
    settings = parts.settings
    data = settings.data_dir
    _check_dest(settings, dest)
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = parts.store.get()

    def copy_databases() -> None:
        for entry in backed_up(SQLITE):
            if entry.with_store:
                _sqlite_copy(data / entry.name, dest / entry.name)

    if isinstance(store, EdgeStore):
        # Under the store's write lock: the shard, the manifest and the jobs at the same point.
        store.snapshot_to(dest / settings.store_dir.name, while_locked=copy_databases)
    else:
        copy_databases()
        with (dest / POINTS).open("w", encoding="utf-8") as fh:
            for page in store.export_points():
                for chunk in page:
                    fh.write(json.dumps(_point_json(chunk), ensure_ascii=False) + "\n")
    _copy_entries(data, dest)
    # The audit log is written after the store (an ask appends after it searched), so copying
    # it last keeps every audited chunk id resolvable in the backup.
    audit_files = _audit_copy(parts.audit, dest, with_key=audit_key)
    chunks = store.count() + store.count(staged=True)
    has_key = parts.audit.key_path.exists()
    (dest / META).write_text(
        json.dumps(
            {
                "format": FORMAT,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "data_dir": str(data.resolve()),
                "store": "edge" if isinstance(store, EdgeStore) else "server",
                "collection": settings.collection,
                "chunks": chunks,
                "dense_size": parts.embedder.get().dim,
                "audit": audit_files,
                "audit_key_id": parts.audit.key_id if has_key else None,  # to check the key given at restore
            },
            indent=1,
        )
    )
    files = _files(dest)
    body = "".join(f"{sha256_of(p)}  {p.relative_to(dest).as_posix()}\n" for p in files).encode()
    # Its own digest on a last comment line (`sha256sum -c` skips it), so a change to the list
    # itself is named as such. Written last: a folder without the list is an unfinished backup.
    (dest / CHECKSUMS).write_bytes(body + f"{SELF_CHECK}{hashlib.sha256(body).hexdigest()}\n".encode())
    make_private(dest)  # a backup holds every document and question: owner only, 0700/0600
    return BackupSummary(
        files=len(files),
        bytes=sum(p.stat().st_blocks * 512 for p in files),
        chunks=chunks,
        audit_key=AUDIT_KEY in audit_files or not has_key,
    )


def verify_backup(src: Path) -> list[str]:
    """Problems with the backup at `src` (missing, changed or unlisted files); [] when intact."""
    sums = src / CHECKSUMS
    if not sums.is_file():
        return [f"{sums} is missing: {src} is not a kura backup (or the backup did not finish)"]
    lines = sums.read_bytes().splitlines(keepends=True)
    if lines and lines[-1].startswith(SELF_CHECK.encode()):
        recorded = lines.pop().decode(errors="replace").removeprefix(SELF_CHECK).strip()
        if hashlib.sha256(b"".join(lines)).hexdigest() != recorded:
            return [f"{CHECKSUMS} does not match its own checksum (changed or corrupt)"]
    elif _format_of(src) != 1:  # only the first format had no line of its own
        return [f"{CHECKSUMS} has lost its own checksum line (changed or corrupt)"]
    problems, listed = [], set()
    for line in b"".join(lines).decode(errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        listed.add(name)
        path = src / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif sha256_of(path) != digest:
            problems.append(f"{name} does not match its checksum (changed or corrupt)")
    for path in _files(src):
        if path.relative_to(src).as_posix() not in listed:
            problems.append(f"{path.relative_to(src)} is not in {CHECKSUMS} (added after the backup)")
    return problems


def _format_of(src: Path) -> object:
    try:
        return json.loads((src / META).read_text()).get("format")
    except (OSError, ValueError, AttributeError):
        return None


def _read_meta(src: Path) -> dict:
    meta = json.loads((src / META).read_text())
    if meta.get("format") not in READABLE_FORMATS:
        raise BackupError(
            f"backup format {meta.get('format')} is not one of {READABLE_FORMATS}; "
            "restore with the kura version that wrote it"
        )
    known = {e.name for e in DATA_FILES if e.keep in BACKED_UP} | {META, CHECKSUMS, POINTS}
    unknown = sorted(p.name for p in src.iterdir() if p.name not in known)
    if unknown:  # restoring without them would lose state silently
        raise BackupError(
            f"the backup holds {', '.join(unknown)}, which this kura version does not know; "
            "restore with the kura version that wrote it"
        )
    return meta


def _audit_key_for(src: Path, meta: dict, key_file: Path | None) -> Path | None:
    """The audit key file restore must write (None: the backup holds its own key, or there was
    no audit log yet); checked against the fingerprint the backup recorded, before any write."""
    wanted = meta.get("audit_key_id")
    if (src / AUDIT_KEY).is_file() or not wanted:
        return None
    if key_file is None:
        raise AuditKeyNeeded(
            f"this backup was taken without its audit key (key id {wanted}): give the audit.key kept "
            "apart from the backups with --audit-key FILE; nothing was restored"
        )
    if not key_file.is_file():
        raise BackupError(f"the audit key file {key_file} does not exist; nothing was restored")
    try:
        given = AuditLog(src / "audit.jsonl", key_path=key_file).key_id
    except (OSError, ValueError) as exc:
        raise BackupError(f"{key_file} is not an audit key ({exc}); nothing was restored") from None
    if given != wanted:
        raise BackupError(
            f"{key_file} is not the audit key of this backup (key id {given}, the backup's is {wanted}); "
            "nothing was restored"
        )
    return key_file


def restore_backup(
    src: Path, settings: KuraSettings, *, map_roots: RootMoves = (), audit_key: Path | None = None
) -> RestoreSummary:
    """Restore the backup at `src` into settings.data_dir, which must be empty or absent; paths
    recorded under an old root move to the new one (`map_roots`, and the backup's own data
    directory to this one). Server-mode backups load into the configured store."""
    problems = verify_backup(src)
    if problems:
        raise BackupError(f"backup {src} failed verification, nothing restored: " + "; ".join(problems))
    data = settings.data_dir
    if data.exists() and any(p.is_file() for p in data.rglob("*") if settings.logs_dir not in p.parents):
        raise BackupError(f"{data} is not empty; restore into a new KURA_DATA_DIR (kura never overwrites data)")
    meta = _read_meta(src)
    key_file = _audit_key_for(src, meta, audit_key)
    moves = list(map_roots)
    if meta.get("data_dir") and meta["data_dir"] != str(data.resolve()):
        moves.append((meta["data_dir"], str(data.resolve())))  # uploads live in the data directory
    settings.ensure_dirs()
    restored = 0
    for entry in DATA_FILES:
        if entry.keep not in BACKED_UP or entry.keep == STORE:
            continue
        if (src / entry.name).is_file():
            shutil.copy2(src / entry.name, data / entry.name)
            restored += 1
        elif (src / entry.name).is_dir():
            shutil.copytree(src / entry.name, data / entry.name)
            restored += len(_files(data / entry.name))
    if key_file is not None:
        shutil.copy2(key_file, data / AUDIT_KEY)
    if (src / "store").is_dir():
        shutil.rmtree(settings.store_dir)
        shutil.copytree(src / "store", settings.store_dir, copy_function=copy_keeping_holes)
        restored += len(_files(settings.store_dir))
    if (src / POINTS).is_file():
        restored += _load_points(src / POINTS, settings, int(meta["dense_size"]))
    moved = _move_roots(settings, moves) if moves else 0
    make_private(data)  # copies keep the backup's modes; the data directory stays private
    return RestoreSummary(files=restored, moves=tuple(moves), moved=moved)


def _move_roots(settings: KuraSettings, moves: RootMoves) -> int:
    """Move recorded paths to their new roots: the manifest (the store's payload follows when the
    index opens: its documents are marked dirty), watched folders and waiting jobs, added models."""
    moved = 0
    if settings.manifest_path.is_file():
        manifest = Manifest(settings.manifest_path)
        try:
            moved += manifest.move_roots(moves)
        finally:
            manifest.close()
    if (settings.data_dir / JOBS_DB).is_file():
        jobs = JobQueue(settings.data_dir / JOBS_DB)
        try:
            moved += jobs.move_roots(moves)
        finally:
            jobs.close()
    if settings.models_manifest_path.is_file():
        moved += ModelRegistry(settings.models_manifest_path).move_roots(moves)
    return moved


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
