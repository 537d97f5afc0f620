"""The audit log: append-only JSON Lines, each entry hash-chained to the one before.

`hash = sha256(previous hash + canonical JSON of the entry without its hash)`. Editing,
deleting, reordering or inserting any past line breaks the chain at that line, which
`verify()` reports by entry number.

Usage:
    log = AuditLog(Path("audit.jsonl"))
    log.append(user="alice", role="employee", action="query", query="leave policy")
    problems = log.verify()      # [] when intact
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


def _digest(previous: str, entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((previous + canonical).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainProblem:
    entry: int  # 1-based line number
    message: str


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._last_hash, self._count = self._tail()

    def _tail(self) -> tuple[str, int]:
        last, count = GENESIS, 0
        if self.path.exists():
            with self.path.open(encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        count += 1
                        try:
                            last = json.loads(line).get("hash", last)
                        except json.JSONDecodeError:
                            continue
        return last, count

    def append(self, *, user: str, role: str, action: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            entry: dict[str, Any] = {
                "seq": self._count + 1,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z",
                "user": user,
                "role": role,
                "action": action,
                **fields,
                "prev": self._last_hash,
            }
            entry["hash"] = _digest(self._last_hash, entry)
            line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            self._last_hash, self._count = entry["hash"], self._count + 1
            return entry

    def entries(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)

    def verify(self) -> list[ChainProblem]:
        """Every break in the chain, by 1-based entry number; [] when the log is intact."""
        problems: list[ChainProblem] = []
        previous = GENESIS
        if not self.path.exists():
            return problems
        with self.path.open(encoding="utf-8") as fh:
            for number, line in enumerate((ln for ln in fh if ln.strip()), start=1):
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    problems.append(ChainProblem(number, "not valid JSON (edited or truncated)"))
                    previous = "?"
                    continue
                if entry.get("seq") != number:
                    problems.append(ChainProblem(number, f"sequence number {entry.get('seq')} where {number} was expected (entry deleted, inserted or moved)"))
                if entry.get("prev") != previous:
                    problems.append(ChainProblem(number, "does not follow the previous entry (entry deleted, inserted or moved)"))
                if _digest(entry.get("prev", ""), entry) != entry.get("hash"):
                    problems.append(ChainProblem(number, "content does not match its hash (entry edited)"))
                previous = entry.get("hash", "?")
        return problems
