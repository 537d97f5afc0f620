"""Keep the data directory private to the account kura runs as: folders 0700, files 0600.

The data directory holds every chunk's text, every question and answer (the audit log) and the
password hashes; a file another local account can read bypasses every ACL. Every kura process
sets a private umask (`private_umask`, called by the CLI's main and by `ensure_dirs`, which
the UI process and the workers pass through), and start-up tightens whatever an older version,
a copy or a restore left looser (`make_private`). `kura doctor` FAILs on what `exposed` finds.

Usage:
    private_umask()
    fixed = make_private(settings.data_dir)      # paths whose mode was tightened
    assert exposed(settings.data_dir) == []
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077
_OTHERS = 0o077  # any permission bit for the group or for other accounts


def private_umask() -> None:
    """New files 0600 and folders 0700 in this process (and the processes it starts)."""
    os.umask(PRIVATE_UMASK)


def _walk(root: Path) -> list[tuple[Path, int]]:
    """(path, mode) of root and everything under it; symlinks are not followed or changed."""
    found: list[tuple[Path, int]] = []
    if not root.exists():
        return found
    found.append((root, root.lstat().st_mode))
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in (*dirs, *files):
            path = Path(folder) / name
            try:
                mode = path.lstat().st_mode
            except OSError:  # removed while we walked (a rotated log, a temp file), or unreadable
                continue
            if not stat.S_ISLNK(mode):
                found.append((path, mode))
    return found


def exposed(root: Path) -> list[Path]:
    """Folders and files under root (root included) that another account may read or write."""
    return [path for path, mode in _walk(root) if stat.S_IMODE(mode) & _OTHERS]


def make_private(root: Path) -> list[Path]:
    """Take every group and other permission off root and everything under it; returns the
    paths that were looser."""
    fixed: list[Path] = []
    for path, mode in _walk(root):
        bits = stat.S_IMODE(mode)
        if bits & _OTHERS:
            try:
                os.chmod(path, bits & ~_OTHERS)
            except OSError:  # gone, or owned by another account: `kura doctor` reports it
                continue
            fixed.append(path)
    return fixed
