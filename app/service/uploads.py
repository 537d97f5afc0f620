"""Save files uploaded in the browser into a folder under the data directory, safely.

A browser sends each file's relative path ("handbook/hr/leave.pdf" for a folder upload); a
hostile client can send "../../etc/x". Every part is checked, so nothing lands outside the folder.

Usage:
    folder = save_uploads(settings.data_dir / "uploads", "hr-2024", [("hr/leave.pdf", data)])
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from app.identity.users import EVERYONE
from ingest.manifest import FileRecord

_FOLDER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class BadUpload(ValueError):
    """An upload name or folder name that may not be written; the message says what to change."""


def check_folder_name(name: str) -> str:
    name = name.strip()
    if not _FOLDER.match(name) or ".." in name:
        raise BadUpload(
            f"folder name {name!r} is not valid: use 1-64 letters, digits, '.', '_' or '-' "
            "(no slashes), starting with a letter or digit"
        )
    return name


def safe_relative_path(name: str) -> PurePosixPath:
    """The uploaded name as a relative path with no '..', no absolute root, no hidden parts."""
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", ".", "/")]
    if not parts or any(p == ".." or p.startswith(".") or "\0" in p for p in parts):
        raise BadUpload(
            f"the uploaded file name {name!r} is not allowed; rename the file and upload it again"
        )
    return PurePosixPath(*parts)


# Files a desktop adds to folders on its own; nobody means to publish them.
_SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini", "ehthumbs.db", "icon\r"})


def is_hidden(name: str) -> bool:
    """A dot-file or dot-folder (.DS_Store, .git/...), Thumbs.db / desktop.ini, or an Office
    lock file (~$report.docx). '..' is not hidden: it is refused by safe_relative_path."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    return any(
        (p.startswith(".") and p != "..") or p.startswith("~$") or p.lower() in _SYSTEM_FILES
        for p in parts
    )


def split_hidden(files: list[tuple[str, bytes]]) -> tuple[list[tuple[str, bytes]], list[str]]:
    """(the files to save, the names of hidden or system files skipped)."""
    kept = [(name, data) for name, data in files if not is_hidden(name)]
    skipped = [name for name, _ in files if is_hidden(name)]
    return kept, skipped


def without_top_folder(names: list[str]) -> list[str]:
    """A folder upload names files 'chosen-folder/sub/file.pdf'; the admin already named the
    target folder, so the chosen folder's own name is dropped when every file shares it."""
    parts = [name.replace("\\", "/").split("/") for name in names]
    if parts and all(len(p) > 1 and p[0] == parts[0][0] for p in parts):
        return ["/".join(p[1:]) for p in parts]
    return names


def save_uploads(uploads_root: Path, folder: str, files: Iterable[tuple[str, bytes]]) -> Path:
    """Write `files` (name, content) under uploads_root/folder; returns that folder."""
    target = uploads_root / check_folder_name(folder)
    checked = [(safe_relative_path(name), data) for name, data in files]
    if not checked:
        raise BadUpload("no files were uploaded; choose a folder or files first")
    for relative, data in checked:
        path = target.joinpath(*relative.parts)
        if not path.resolve().is_relative_to(target.resolve()):
            raise BadUpload(f"the uploaded file name {str(relative)!r} points outside the folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return target


@dataclass(frozen=True)
class GroupChange:
    """An ingested file whose readers this upload would change: shown to the admin, who must
    confirm it by name before anything is saved."""

    name: str  # as the admin knows it: relative to its folder
    current: tuple[str, ...]
    new: tuple[str, ...]
    same_content_as: str = ""  # an uploaded file with the same bytes as this ingested one


def group_changes(
    target: Path,
    files: list[tuple[str, bytes]],
    groups: tuple[str, ...],
    ingested: list[FileRecord],
) -> list[GroupChange]:
    """Which already-ingested files would become readable by other groups: those in the target
    folder (ingesting it again relabels them all), and those with the same content as an
    uploaded file (the copy would be readable by `groups`)."""
    new = tuple(sorted(set(groups)))
    root = str(target.resolve())
    changes: dict[str, GroupChange] = {}
    for record in ingested:
        if record.root == root and tuple(sorted(record.groups)) != new:
            changes[record.path] = GroupChange(_relative(record), tuple(sorted(record.groups)), new)
    by_doc: dict[str, list[FileRecord]] = {}
    for record in ingested:
        by_doc.setdefault(record.doc_id, []).append(record)
    for name, data in files:
        for record in by_doc.get(hashlib.sha256(data).hexdigest(), []):
            if record.path in changes or EVERYONE in record.groups or not set(new) - set(record.groups):
                continue  # already listed, or the copy would be read by no one new
            changes[record.path] = GroupChange(_relative(record), tuple(sorted(record.groups)), new, name)
    return sorted(changes.values(), key=lambda c: c.name)


def _relative(record: FileRecord) -> str:
    path = Path(record.path)
    return str(path.relative_to(record.root)) if path.is_relative_to(record.root) else path.name
