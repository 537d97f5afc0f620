"""Save files uploaded in the browser into a folder under the data directory, safely.

A browser sends each file's relative path ("handbook/hr/leave.pdf" for a folder upload); a
hostile client can send "../../etc/x". Every part is checked, so nothing lands outside the folder.

Usage:
    folder = save_uploads(settings.data_dir / "uploads", "hr-2024", [("hr/leave.pdf", data)])
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

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
