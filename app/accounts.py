"""Local accounts: who may log in, with which roles and groups, and their browser sessions.

Stored in one SQLite file (`settings.users_path`): argon2id password hashes, sessions as
sha256 of the token (a stolen database holds no usable session), failed-login counters
(kept per name, also for unknown names, so a lockout does not reveal whether a name exists).

Usage:
    accounts = Accounts(settings.users_path, audit=AuditLog(settings.audit_path))
    one_time = accounts.bootstrap_admin(None)          # first run only; print it once
    user = accounts.authenticate("alice", "correct horse battery")
    token = accounts.open_session(user)
    user = accounts.user_for_session(token)            # on every request: fresh roles and groups

Threads: the UI shares one Accounts among every browser session, so its one connection is
guarded by one lock around every statement (each is a single short row read or write; the slow
argon2 hashing runs outside it), with a 30 s busy timeout against other processes (`kura users`
beside a server). One lock rather than a connection per thread: Streamlit runs each page in a
short-lived thread, which would leave a connection behind per page run.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.audit import AuditLog
from app.users import ADMIN, ROLES, User, check_group_name

_USER_NAME = re.compile(r"^[a-z0-9][a-z0-9_.@-]{0,63}$")
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
BOOTSTRAP_ADMIN = "admin"
# The handful every cracking list starts with; length >= 12 already excludes most others.
_COMMON_PASSWORDS = frozenset(
    {
        "password1234",
        "123456789012",
        "qwertyuiopas",
        "passwordpassword",
        "administrator",
        "changemechangeme",
        "letmeinletmein",
        "welcome12345",
        "iloveyou1234",
        "qwerty123456",
        "password123!",
        "p@ssw0rd1234",
        "1q2w3e4r5t6y",
        "abcdefghijkl",
        "kurakurakura",
    }
)
_LOGIN_FAILED = "wrong user name or password"


class LoginFailed(Exception):
    """Wrong password or unknown user: one message for both, so names cannot be probed."""


class AccountLocked(LoginFailed):
    """Too many failed logins in a row; the message says until when."""


class AccountDisabled(LoginFailed):
    """An admin disabled this account."""


class PasswordPolicyError(ValueError):
    """The new password is too weak; the message says which rule it breaks."""


class SessionExpired(Exception):
    """The session token is unknown, expired, or its user was disabled or deleted: log in again."""


class UnknownUser(LookupError):
    """No account with this name."""


class UserExists(ValueError):
    """An account with this name already exists."""


def check_user_name(name: str) -> str:
    if not isinstance(name, str) or not _USER_NAME.match(name):
        raise ValueError(
            f"user name {name!r} is not valid: use 1-64 lower-case letters, digits, "
            "'.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_password(name: str, password: str) -> None:
    """Raise PasswordPolicyError naming the broken rule."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(
            f"the password must be at least {MIN_PASSWORD_LENGTH} characters long"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordPolicyError(
            f"the password must be at most {MAX_PASSWORD_LENGTH} characters long"
        )
    lowered = password.lower()
    if name and name.lower() in lowered:
        raise PasswordPolicyError("the password must not contain the user name")
    if len(set(password)) < 5:
        raise PasswordPolicyError("the password must use at least 5 different characters")
    if lowered in _COMMON_PASSWORDS:
        raise PasswordPolicyError(
            "this password is on every list of common passwords; choose another"
        )
    if password.strip() != password:
        raise PasswordPolicyError("the password must not start or end with spaces")


def _check_roles(roles: Iterable[str]) -> frozenset[str]:
    if isinstance(roles, str):
        roles = [r.strip() for r in roles.split(",") if r.strip()]
    chosen = frozenset(roles)
    if not chosen:
        raise ValueError(f"a user needs at least one role; use one or more of {sorted(ROLES)}")
    unknown = chosen - ROLES
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; use one or more of {sorted(ROLES)}")
    return chosen


def _check_groups(groups: Iterable[str]) -> tuple[str, ...]:
    if isinstance(groups, str):
        groups = [g.strip() for g in groups.split(",") if g.strip()]
    return tuple(sorted({check_group_name(g) for g in groups}))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    groups_ TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    must_change_password INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    password_changed REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_name ON sessions(name);
CREATE TABLE IF NOT EXISTS login_failures (
    name TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    locked_until REAL NOT NULL DEFAULT 0
);
"""


class Accounts:
    """The user store. Thread-safe; several processes may open the same file (SQLite locking)."""

    def __init__(
        self,
        path: Path,
        audit: AuditLog | None = None,
        session_minutes: int = 480,
        max_failures: int = 5,
        lockout_minutes: int = 15,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if session_minutes <= 0 or max_failures <= 0 or lockout_minutes <= 0:
            raise ValueError("session_minutes, max_failures and lockout_minutes must be positive")
        self.path = path
        self.audit = audit
        self.session_seconds = session_minutes * 60
        self.max_failures = max_failures
        self.lockout_seconds = lockout_minutes * 60
        self._clock = clock
        self._hasher = PasswordHasher()
        # A real hash to verify against for unknown names, so they take as long as known ones.
        self._dummy_hash = self._hasher.hash(secrets.token_hex(16))
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(path), check_same_thread=False, timeout=30, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    # --- reading -----------------------------------------------------------------------
    def _row(self, name: str) -> sqlite3.Row | None:
        self._db.row_factory = sqlite3.Row
        return self._db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()

    @staticmethod
    def _user(row: sqlite3.Row) -> User:
        return User(
            row["name"], frozenset(json.loads(row["roles"])), tuple(json.loads(row["groups_"]))
        )

    def get(self, name: str) -> User:
        with self._lock:
            row = self._row(name)
        if row is None:
            raise UnknownUser(f"no user {name!r}; list users with `kura users list`")
        return self._user(row)

    def list(self) -> list[User]:
        with self._lock:
            self._db.row_factory = sqlite3.Row
            rows = self._db.execute("SELECT * FROM users ORDER BY name").fetchall()
        return [self._user(r) for r in rows]

    def is_disabled(self, name: str) -> bool:
        with self._lock:
            row = self._row(name)
        if row is None:
            raise UnknownUser(f"no user {name!r}; list users with `kura users list`")
        return bool(row["disabled"])

    def needs_password_change(self, name: str) -> bool:
        with self._lock:
            row = self._row(name)
        if row is None:
            raise UnknownUser(f"no user {name!r}; list users with `kura users list`")
        return bool(row["must_change_password"])

    # --- changing users ----------------------------------------------------------------
    def add(
        self,
        name: str,
        password: str,
        roles: Iterable[str],
        groups: Iterable[str] = (),
        must_change_password: bool = False,
        *,
        by: str = "local-operator",
    ) -> User:
        check_user_name(name)
        chosen_roles = _check_roles(roles)
        chosen_groups = _check_groups(groups)
        check_password(name, password)
        now = self._clock()
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO users VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
                    (
                        name,
                        self._hasher.hash(password),
                        json.dumps(sorted(chosen_roles)),
                        json.dumps(list(chosen_groups)),
                        int(must_change_password),
                        now,
                        now,
                    ),
                )
            except sqlite3.IntegrityError:
                raise UserExists(
                    f"user {name!r} already exists; change it with `kura users set-roles` etc."
                ) from None
        self._audit(
            by,
            "user_change",
            change="add",
            target=name,
            roles=sorted(chosen_roles),
            groups=list(chosen_groups),
        )
        return User(name, chosen_roles, chosen_groups)

    def _update(self, name: str, sql: str, args: tuple) -> None:
        with self._lock:
            changed = self._db.execute(sql, (*args, name)).rowcount
        if not changed:
            raise UnknownUser(f"no user {name!r}; list users with `kura users list`")

    def _end_sessions(self, name: str, keep: str | None = None) -> None:
        with self._lock:
            if keep is None:
                self._db.execute("DELETE FROM sessions WHERE name = ?", (name,))
            else:
                self._db.execute(
                    "DELETE FROM sessions WHERE name = ? AND token_hash != ?",
                    (name, _token_hash(keep)),
                )

    def disable(self, name: str, *, by: str = "local-operator") -> None:
        self._update(name, "UPDATE users SET disabled = 1 WHERE name = ?", ())
        self._end_sessions(name)
        self._audit(by, "user_change", change="disable", target=name)

    def enable(self, name: str, *, by: str = "local-operator") -> None:
        self._update(name, "UPDATE users SET disabled = 0 WHERE name = ?", ())
        self._audit(by, "user_change", change="enable", target=name)

    def delete(self, name: str, *, by: str = "local-operator") -> None:
        with self._lock:
            changed = self._db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount
        if not changed:
            raise UnknownUser(f"no user {name!r}; list users with `kura users list`")
        self._end_sessions(name)
        self._audit(by, "user_change", change="delete", target=name)

    def set_password(
        self,
        name: str,
        password: str,
        *,
        must_change: bool = False,
        keep_session: str | None = None,
        by: str = "local-operator",
    ) -> None:
        """Set a new password and end the user's other sessions (all but `keep_session`)."""
        check_password(name, password)
        self._update(
            name,
            "UPDATE users SET password_hash = ?, must_change_password = ?, password_changed = ?"
            " WHERE name = ?",
            (self._hasher.hash(password), int(must_change), self._clock()),
        )
        self._end_sessions(name, keep_session)
        self.unlock(name, by=None)
        self._audit(by, "user_change", change="set_password", target=name)

    def change_own_password(self, token: str, old_password: str, new_password: str) -> None:
        """Self-service change from a live session; the session stays open, others end."""
        user = self.user_for_session(token)
        self._verify(user.name, old_password)
        if old_password == new_password:
            raise PasswordPolicyError("the new password must differ from the old one")
        self.set_password(user.name, new_password, keep_session=token, by=user.name)

    def add_to_group(self, name: str, group: str, *, by: str = "local-operator") -> None:
        user = self.get(name)
        self._set_groups(name, (*user.groups, check_group_name(group)), by, f"add_to_group {group}")

    def remove_from_group(self, name: str, group: str, *, by: str = "local-operator") -> None:
        user = self.get(name)
        if group not in user.groups:
            raise ValueError(
                f"{name} is not in group {group!r}; its groups are {list(user.groups) or 'none'}"
            )
        self._set_groups(
            name, tuple(g for g in user.groups if g != group), by, f"remove_from_group {group}"
        )

    def set_groups(self, name: str, groups: Iterable[str], *, by: str = "local-operator") -> None:
        self._set_groups(name, _check_groups(groups), by, "set_groups")

    def _set_groups(self, name: str, groups: Iterable[str], by: str, change: str) -> None:
        chosen = _check_groups(groups)
        self._update(
            name, "UPDATE users SET groups_ = ? WHERE name = ?", (json.dumps(list(chosen)),)
        )
        self._audit(by, "user_change", change=change, target=name, groups=list(chosen))

    def set_roles(self, name: str, roles: Iterable[str], *, by: str = "local-operator") -> None:
        chosen = _check_roles(roles)
        if ADMIN not in chosen and self._is_last_admin(name):
            raise ValueError(f"{name} is the last enabled admin; make another admin first")
        self._update(
            name, "UPDATE users SET roles = ? WHERE name = ?", (json.dumps(sorted(chosen)),)
        )
        self._audit(by, "user_change", change="set_roles", target=name, roles=sorted(chosen))

    def _is_last_admin(self, name: str) -> bool:
        admins = [u.name for u in self.list() if ADMIN in u.roles and not self.is_disabled(u.name)]
        return admins == [name]

    def bootstrap_admin(self, password: str | None) -> str | None:
        """First run only: create the user 'admin' when no user exists yet.

        With a password (checked against the policy) returns None. With None, generates a
        one-time password, returns it (show it once), and the admin must change it at first
        login. Does nothing and returns None when users already exist.
        """
        if self.list():
            return None
        generated = password is None
        if password is None:
            password = secrets.token_urlsafe(15)  # 20 characters, ~120 bits
        self.add(
            BOOTSTRAP_ADMIN,
            password,
            {ADMIN, "employee", "auditor"},
            must_change_password=generated,
            by="bootstrap",
        )
        return password if generated else None

    def unlock(self, name: str, *, by: str | None = "local-operator") -> None:
        with self._lock:
            self._db.execute("DELETE FROM login_failures WHERE name = ?", (name,))
        if by is not None:
            self._audit(by, "user_change", change="unlock", target=name)

    # --- logging in --------------------------------------------------------------------
    def _verify(self, name: str, password: str) -> sqlite3.Row | None:
        """The user's row if the password matches, None otherwise (constant work either way)."""
        with self._lock:
            row = self._row(name) if isinstance(name, str) else None
        stored = row["password_hash"] if row is not None else self._dummy_hash
        try:
            self._hasher.verify(stored, password if isinstance(password, str) else "")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if self._hasher.check_needs_rehash(stored):
            with self._lock:
                self._db.execute(
                    "UPDATE users SET password_hash = ? WHERE name = ?",
                    (self._hasher.hash(password), name),
                )
        return row

    def authenticate(self, name: str, password: str) -> User:
        """The user, or LoginFailed / AccountLocked / AccountDisabled. Every attempt is audited."""
        now = self._clock()
        key = name if isinstance(name, str) else repr(name)
        with self._lock:
            lock_row = self._db.execute(
                "SELECT failures, locked_until FROM login_failures WHERE name = ?", (key,)
            ).fetchone()
        if lock_row is not None and lock_row[1] > now:
            self._audit(key, "login_failed", reason="locked")
            raise AccountLocked(
                f"too many failed logins: this account is locked until {_when(lock_row[1])}; "
                "wait, or ask an admin to run `kura users unlock`"
            )
        row = self._verify(key, password)
        if row is None:
            failures = (lock_row[0] if lock_row else 0) + 1
            locked_until = now + self.lockout_seconds if failures >= self.max_failures else 0.0
            with self._lock:
                self._db.execute(
                    "INSERT INTO login_failures VALUES (?, ?, ?)"
                    " ON CONFLICT(name) DO UPDATE SET failures = ?, locked_until = ?",
                    (
                        key,
                        0 if locked_until else failures,
                        locked_until,
                        0 if locked_until else failures,
                        locked_until,
                    ),
                )
            self._audit(key, "login_failed", reason="bad_password", locked=bool(locked_until))
            if locked_until:
                raise AccountLocked(
                    f"too many failed logins: this account is locked until {_when(locked_until)}; "
                    "wait, or ask an admin to run `kura users unlock`"
                )
            raise LoginFailed(_LOGIN_FAILED)
        if row["disabled"]:
            self._audit(key, "login_failed", reason="disabled")
            raise AccountDisabled(f"the account {key!r} is disabled; ask an admin to enable it")
        self.unlock(key, by=None)
        user = self._user(row)
        self._audit(user.name, "login", role=",".join(sorted(user.roles)))
        return user

    def open_session(self, user: User) -> str:
        with self._lock:
            row = self._row(user.name)
        if row is None or row["disabled"]:
            raise SessionExpired(f"{user.name} may not log in (unknown or disabled)")
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE expires <= ?", (now,))
            self._db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?)",
                (_token_hash(token), user.name, now, now + self.session_seconds),
            )
        return token

    def user_for_session(self, token: str) -> User:
        """The session's user as stored now (role and group changes apply at once)."""
        if not isinstance(token, str) or not token:
            raise SessionExpired("no session: log in")
        with self._lock:
            self._db.row_factory = sqlite3.Row
            session = self._db.execute(
                "SELECT * FROM sessions WHERE token_hash = ?", (_token_hash(token),)
            ).fetchone()
        if session is None:
            raise SessionExpired("this session is not valid (logged out or replaced): log in again")
        if session["expires"] <= self._clock():
            self.close_session(token)
            raise SessionExpired(
                f"this session expired at {_when(session['expires'])}: log in again"
            )
        with self._lock:
            row = self._row(session["name"])
        if row is None or row["disabled"]:
            self.close_session(token)
            raise SessionExpired(
                f"the account {session['name']!r} was disabled or removed: ask an admin"
            )
        return self._user(row)

    def close_session(self, token: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE token_hash = ?", (_token_hash(token),))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _audit(self, user: str | None, action: str, role: str = "", **fields: object) -> None:
        if self.audit is not None and user is not None:
            if not role and user == "local-operator":
                role = ADMIN
            if not role:
                try:
                    role = ",".join(sorted(self.get(user).roles)) if _USER_NAME.match(user) else ""
                except UnknownUser:
                    role = ""
            self.audit.append(user=user, role=role, action=action, **fields)
