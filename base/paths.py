"""Recorded paths that move with their root: a backup restored on a machine whose documents live
under another folder (`kura restore --map-root OLD=NEW`). One prefix rule for everything that
records a path (the manifest, the job queue, the model list).

Usage:
    moves = [("/srv/docs", "/data/docs")]
    moved_path("/srv/docs/hr/leave.pdf", moves)   # '/data/docs/hr/leave.pdf'
    moved_path("/srv/docs-old/a.pdf", moves)      # None: not under a moved root
"""

from __future__ import annotations

from collections.abc import Sequence

RootMoves = Sequence[tuple[str, str]]  # (old root, new root), absolute paths


def moved_path(path: str, moves: RootMoves) -> str | None:
    """`path` under its new root, or None when no moved root holds it. The longest old root that
    holds the path wins, so a move of /srv/docs/hr beats one of /srv/docs."""
    for old, new in sorted(moves, key=lambda move: len(move[0]), reverse=True):
        old, new = old.rstrip("/"), new.rstrip("/")
        if path == old:
            return new
        if path.startswith(old + "/"):
            return new + path[len(old) :]
    return None
