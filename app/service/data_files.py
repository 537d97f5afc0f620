"""Everything the data directory may hold, declared once: what each file or folder is, and how a
backup keeps it, or why no backup needs it. `kura backup` and `kura restore` work from this list,
and tests/test_backup_coverage.py runs every feature that writes state and fails on any name in
the data directory that the list does not declare: a new file is either backed up or explained.

How a backup keeps an entry (`keep`), in the order backup_parts copies them:
- STORE: the chunk store, snapshotted under its write lock (server mode: every point, exported);
- SQLITE: SQLite's online backup API, a consistent copy while kura writes (`with_store`: taken
  inside the store's lock, so the manifest and the job queue match the store at one instant);
- FILE: a small file kura replaces atomically (write + rename), so a plain copy is whole;
- FOLDER: files written once and never edited in place (uploads), copied after the databases
  that name them;
- AUDIT: the hash-chained log and its companions, copied together under the log's writer lock.
Not in a backup:
- DERIVED: rebuilt from what is backed up, by its owner, when found missing after a restore;
- SKIPPED: not state (locks, logs, the running server's token, a probe, half-written temporaries,
  earlier backups, the SIEM's delivery position).

Usage:
    for entry in backed_up(SQLITE): copy(entry.name)
    undeclared(settings.data_dir)      # [] when every name in the folder is declared
    entry_for("feedback.sqlite3").keep # 'sqlite'
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

STORE, SQLITE, FILE, FOLDER, AUDIT = "store", "sqlite", "file", "folder", "audit"
DERIVED, SKIPPED = "derived", "skipped"
BACKED_UP = (STORE, SQLITE, FILE, FOLDER, AUDIT)
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")  # part of the database they sit beside
AUDIT_KEY = "audit.key"
# A backup folder holds the backed-up entries under the same names, and two files of its own:
META = "backup.json"  # what, when, from which data directory
CHECKSUMS = "SHA256SUMS"  # the sha256 of every file; written last, so a folder without it is unfinished


@dataclass(frozen=True)
class DataFile:
    name: str  # a name at the top of the data directory; a glob for leftovers ("*.tmp")
    keep: str  # how a backup keeps it (BACKED_UP), or DERIVED / SKIPPED
    holds: str  # what it is; for DERIVED and SKIPPED, why no backup needs it
    with_store: bool = False  # SQLITE: copied inside the store's write lock


DATA_FILES: tuple[DataFile, ...] = (
    # Inside it, the embedded store's index builds (retrieval/index_build.py): ACTIVE.json names the live
    # shard (gen-N/, or the folder itself before a first build); a backup copies only that shard, and a
    # gen-N/ it does not name is a build in progress or left by a crash, removed when the store opens.
    DataFile("store", STORE, "the chunk store (qdrant-edge): text, vectors, ACL groups of every chunk"),
    DataFile("manifest.sqlite3", SQLITE, "which files were ingested as which documents, readable by whom", True),
    DataFile("jobs.sqlite3", SQLITE, "ingest jobs and watched folders (a job caught running resumes)", True),
    DataFile("users.sqlite3", SQLITE, "accounts, password hashes, roles, groups, sign-in sessions"),
    DataFile("api_keys.sqlite3", SQLITE, "personal API keys (their hashes): integrations keep working"),
    DataFile("feedback.sqlite3", SQLITE, "readers' feedback on answers"),
    DataFile("conversations.sqlite3", SQLITE, "each person's saved conversations (private to them)"),
    DataFile("models.json", FILE, "models added with `kura models add`, and which one is in use"),
    DataFile("uploads", FOLDER, "originals uploaded in the browser or over the API, to re-ingest"),
    DataFile("audit.jsonl", AUDIT, "the audit log: every sign-in, question, answer and change"),
    DataFile(AUDIT_KEY, AUDIT, "the audit chain's HMAC key (`--without-audit-key` leaves it out)"),
    DataFile("audit.head", AUDIT, "the signed newest entry: a cut at the end is detected"),
    DataFile("audit.anchor", AUDIT, "where the live log continues after an archive"),
    DataFile("audit-archive", AUDIT, "signed segments of archived audit entries"),
    DataFile("audit-index.sqlite3", DERIVED, "the auditor's analytics index, rebuilt from the audit log"),
    DataFile("models", DERIVED, "model files kura derives (the embedder's ONNX export), made again on load"),
    DataFile("eval-cache", DERIVED, "vectors cached by `kura eval`, computed again when missing"),
    DataFile("logs", SKIPPED, "JSON logs of this machine's processes; the audit log is the record"),
    DataFile("server.json", SKIPPED, "the running server's operator token, written at each start"),
    DataFile("backups", SKIPPED, "earlier backups (the default KURA_BACKUP_DIR); copy them off the machine"),
    DataFile("audit.siem", SKIPPED, "the SIEM's delivery position: a restored machine sends its log again"),
    DataFile("audit.lock", SKIPPED, "the audit log's writer lock"),
    DataFile("audit.siem.lock", SKIPPED, "the SIEM forwarder's lock"),
    DataFile("jobs.lock", SKIPPED, "the ingest writer's lock"),
    DataFile("audit-index.sqlite3.lock", SKIPPED, "the analytics index's builder lock"),
    DataFile("audit-index.sqlite3.new", SKIPPED, "an analytics index being rebuilt (renamed into place when done)"),
    DataFile(".kura-write-test", SKIPPED, "the probe that checks the folder is writable"),
    DataFile("*.tmp", SKIPPED, "a file being replaced (write, then rename)"),
)


def backed_up(keep: str) -> list[DataFile]:
    """The backed-up entries kept by `keep` (STORE, SQLITE, ...), in the list's order."""
    return [e for e in DATA_FILES if e.keep == keep]


def entry_for(name: str) -> DataFile | None:
    """The entry that declares a top-level `name` of the data directory, or None."""
    for entry in DATA_FILES:
        if fnmatchcase(name, entry.name):
            return entry
        if entry.name.endswith(".sqlite3") and name in (entry.name + c for c in SQLITE_COMPANIONS):
            return entry
    return None


def undeclared(data_dir: Path) -> list[str]:
    """Names at the top of `data_dir` that no entry declares: state a backup would miss."""
    return sorted(p.name for p in data_dir.iterdir() if entry_for(p.name) is None) if data_dir.is_dir() else []
