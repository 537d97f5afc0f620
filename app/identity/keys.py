"""Personal API keys: what a script, a chat bot or an OpenAI-speaking tool sends instead of a
password. A key is `kura_<id>_<secret>`; it is shown once, and only the SHA-256 of its secret
is stored (the secret is 256 random bits, so a slow password hash would add nothing). The `id`
is public: lists, revocations and audit entries name it, never the key.

A key grants nothing by itself: every call acts as its owner, whose roles, groups and disabled
flag the service reads again from the accounts on each call (app/service/__init__.py `api_caller`).
The scope only narrows what the owner may do: `read` (search, ask), `admin` (documents,
ingest, users, ACL; owners with the admin role only), `audit` (owners with the auditor role).

Usage:
    keys = ApiKeys(settings.data_dir / "api_keys.sqlite3")
    record, secret = keys.create("alice", "read", "laptop script", expires_days=90, by="alice")
    keys.resolve(secret).owner        # "alice"; InvalidApiKey once revoked or expired
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from base.sqlite_state import open_state

READ, ADMIN_SCOPE, AUDIT_SCOPE = "read", "admin", "audit"
SCOPES = (READ, ADMIN_SCOPE, AUDIT_SCOPE)
PREFIX = "kura_"
_KEY = re.compile(r"^kura_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created REAL NOT NULL,
    created_by TEXT NOT NULL,
    expires REAL,
    revoked REAL,
    revoked_by TEXT,
    last_used REAL
);
CREATE INDEX IF NOT EXISTS api_keys_by_owner ON api_keys(owner);
"""


class InvalidApiKey(Exception):
    """The key is unknown, malformed, revoked or expired (one message for all: it does not tell
    a guesser which)."""


class ApiKeyNotFound(LookupError):
    """No key with this id among those the caller may manage."""


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    owner: str
    name: str
    scope: str
    created: float
    created_by: str
    expires: float | None
    revoked: float | None
    last_used: float | None

    def active(self, now: float) -> bool:
        return self.revoked is None and (self.expires is None or now < self.expires)


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r} is not known; use one of {', '.join(SCOPES)}")
    return scope


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def looks_like_key(text: str) -> bool:
    return text.startswith(PREFIX) and len(text) > 40


class ApiKeys:
    """The key table. Thread-safe (one connection, one lock); other processes may open it."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._db = open_state(path, _SCHEMA)
        self._db.row_factory = sqlite3.Row

    @staticmethod
    def _record(row: sqlite3.Row) -> ApiKeyRecord:
        return ApiKeyRecord(
            row["id"],
            row["owner"],
            row["name"],
            row["scope"],
            row["created"],
            row["created_by"],
            row["expires"],
            row["revoked"],
            row["last_used"],
        )

    def create(
        self, owner: str, scope: str, name: str = "", expires_days: float | None = None, *, by: str
    ) -> tuple[ApiKeyRecord, str]:
        """A new key for `owner`: its record and the key itself (shown to the user once)."""
        check_scope(scope)
        if expires_days is not None and expires_days <= 0:
            raise ValueError("expires_days must be positive; leave it out for a key without expiry")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        now = self._clock()
        expires = now + expires_days * 86400 if expires_days is not None else None
        with self._lock:
            self._db.execute(
                "INSERT INTO api_keys (id, owner, name, scope, secret_sha256, created, created_by, expires)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key_id, owner, name[:100], scope, _sha256(secret), now, by, expires),
            )
        return self.get(key_id), f"{PREFIX}{key_id}_{secret}"

    def get(self, key_id: str) -> ApiKeyRecord:
        with self._lock:
            row = self._db.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        if row is None:
            raise ApiKeyNotFound(f"no API key {key_id!r}; list keys with `kura keys list`")
        return self._record(row)

    def list(self, owner: str | None = None) -> list[ApiKeyRecord]:
        with self._lock:
            if owner is None:
                rows = self._db.execute("SELECT * FROM api_keys ORDER BY owner, created").fetchall()
            else:
                rows = self._db.execute("SELECT * FROM api_keys WHERE owner = ? ORDER BY created", (owner,)).fetchall()
        return [self._record(r) for r in rows]

    def revoke(self, key_id: str, *, by: str) -> ApiKeyRecord:
        with self._lock:
            self._db.execute(
                "UPDATE api_keys SET revoked = ?, revoked_by = ? WHERE id = ? AND revoked IS NULL",
                (self._clock(), by, key_id),
            )
        return self.get(key_id)

    def resolve(self, key: str) -> ApiKeyRecord:
        """The active key record for `key`, or InvalidApiKey."""
        match = _KEY.match(key.strip())
        if match is None:
            raise InvalidApiKey("this is not a kura API key")
        key_id, secret = match.groups()
        with self._lock:
            row = self._db.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        # Compare in constant time, and compare even for an unknown id, so timing tells nothing.
        stored = row["secret_sha256"] if row is not None else _sha256("x")
        if not hmac.compare_digest(stored, _sha256(secret)) or row is None:
            raise InvalidApiKey("this API key is not valid")
        record = self._record(row)
        now = self._clock()
        if not record.active(now):
            raise InvalidApiKey("this API key is revoked or expired")
        if record.last_used is None or now - record.last_used > 60:  # one write a minute, not per call
            with self._lock:
                self._db.execute("UPDATE api_keys SET last_used = ? WHERE id = ?", (now, key_id))
        return record

    def close(self) -> None:
        with self._lock:
            self._db.close()
