"""The sha256 of a file, read in blocks (models, backups, uploads and datasets are checked by it).

Usage:
    sha256_of(Path("model.gguf"))  # '9f86d0...'
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_of(path: Path) -> str:
    """Hex sha256 of the file's bytes, without holding the file in memory."""
    with Path(path).open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
