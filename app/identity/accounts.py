"""Accounts: who may log in, with which roles and groups, and their browser sessions.

Stored in one SQLite file (`settings.users_path`): argon2id password hashes, sessions as
sha256 of the token (a stolen database holds no usable session), failed-login counters
(kept per name, also for unknown names, so a lockout does not reveal whether a name exists).

An account's `source` is `local` (password kept here), `ldap` (password checked by the
company directory at every sign-in, app/identity/directory.py) or `oidc` (signed in through the
identity provider, app/identity/oidc.py). A directory account's roles and groups are the directory's,
mapped by app/identity/group_map.py and written again at every sign-in and `kura users sync`; an
admin cannot edit them by hand, only add audited `extra_groups` on top.

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

import builtins
import hashlib
import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.audit.log import AuditLog
from app.identity.directory import DirectoryUnavailable, LdapDirectory
from app.identity.group_map import GroupMap, NoRoleMapped
from app.identity.users import ADMIN, ROLES, User, check_group_name
from base.sqlite_state import open_state

_USER_NAME = re.compile(r"^[a-z0-9][a-z0-9_.@-]{0,63}$")
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
BOOTSTRAP_ADMIN = "admin"
LOCAL, LDAP, OIDC = "local", "ldap", "oidc"
# Who the audit log names for changes a sign-in makes (the directory's groups written anew).
SYSTEM_ACTORS = ("directory", "identity-provider")
# Stored instead of a hash for directory accounts: argon2 can never verify it.
_NO_LOCAL_PASSWORD = "!directory"
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


class SessionIdle(SessionExpired):
    """The session saw no activity for longer than the idle limit."""


class UnknownUser(LookupError):
    """No account with this name."""


class UserExists(ValueError):
    """An account with this name already exists."""


class DirectoryDown(LoginFailed):
    """The company directory cannot be reached: directory users cannot sign in (no cached
    password); local accounts still can."""


class AccountConflict(LoginFailed):
    """A directory or provider identity has the name of an account from another source (or of
    another person): kura refuses rather than let one take over the other."""


class NotMapped(LoginFailed):
    """The directory vouched for the person, but the mapping gives them no kura role (or their
    name is not a valid kura user name): no access, and an existing account is disabled."""


class ManagedByDirectory(ValueError):
    """A directory account's password, roles or groups are the directory's, not kura's."""


@dataclass(frozen=True)
class AccountInfo:
    """What the admin's Users page and `kura users list` show about one account."""

    user: User
    source: str  # local | ldap | oidc
    disabled: bool
    must_change_password: bool
    synced_groups: tuple[str, ...]  # from the directory (empty for local accounts)
    extra_groups: tuple[str, ...]  # added by an admin on top of the directory's
    last_synced: float | None  # epoch seconds of the last sign-in or sync that read the directory


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
# Columns added after the first release: (table, column, definition). Older files gain them.
_ADDED_COLUMNS = (
    ("users", "source", "TEXT NOT NULL DEFAULT 'local'"),
    ("users", "external_id", "TEXT"),
    ("users", "synced_groups", "TEXT NOT NULL DEFAULT '[]'"),
    ("users", "extra_groups", "TEXT NOT NULL DEFAULT '[]'"),
    ("users", "last_synced", "REAL"),
    ("sessions", "last_seen", "REAL"),
    ("users", "language", "TEXT"),  # the UI language the person chose (issue 26); NULL: the browser's
)


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
        *,
        idle_minutes: int | None = None,
        directory: LdapDirectory | None = None,
        group_map: GroupMap | None = None,
    ) -> None:
        if session_minutes <= 0 or max_failures <= 0 or lockout_minutes <= 0:
            raise ValueError("session_minutes, max_failures and lockout_minutes must be positive")
        if idle_minutes is not None and idle_minutes <= 0:
            raise ValueError("idle_minutes must be positive (KURA_UI_IDLE_MINUTES)")
        self.path = path
        self.audit = audit
        self.session_seconds = session_minutes * 60
        self.idle_seconds = idle_minutes * 60 if idle_minutes else None
        self.directory = directory
        self.group_map = group_map or GroupMap({}, {})
        self.max_failures = max_failures
        self.lockout_seconds = lockout_minutes * 60
        self._clock = clock
        self._hasher = PasswordHasher()
        # A real hash to verify against for unknown names, so they take as long as known ones.
        self._dummy_hash = self._hasher.hash(secrets.token_hex(16))
        self._lock = threading.Lock()
        self._db = open_state(path, _SCHEMA)
        for table, column, definition in _ADDED_COLUMNS:
            present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    @classmethod
    def from_settings(cls, settings, audit: AuditLog | None = None) -> Accounts:  # noqa: ANN001
        """The accounts of `settings` (KuraSettings), with its session limits and, when
        configured, its LDAP directory and group mapping."""
        return cls(
            settings.users_path,
            audit=audit,
            session_minutes=settings.session_absolute_minutes,
            idle_minutes=settings.ui_idle_minutes,
            directory=LdapDirectory.from_settings(settings),
            group_map=GroupMap.from_settings(settings),
        )

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

    def info(self, name: str) -> AccountInfo:
        with self._lock:
            row = self._row(name)
        if row is None:
            raise UnknownUser(f"no user {name!r}; list users with `kura users list`")
        return self._info(row)

    def list_info(self) -> builtins.list[AccountInfo]:
        """Every account with its source, synced groups and last sync (the Users page)."""
        with self._lock:
            self._db.row_factory = sqlite3.Row
            rows = self._db.execute("SELECT * FROM users ORDER BY name").fetchall()
        return [self._info(r) for r in rows]

    def _info(self, row: sqlite3.Row) -> AccountInfo:
        return AccountInfo(
            self._user(row),
            row["source"],
            bool(row["disabled"]),
            bool(row["must_change_password"]),
            tuple(json.loads(row["synced_groups"])),
            tuple(json.loads(row["extra_groups"])),
            row["last_synced"],
        )

    def _require_local(self, name: str, what: str) -> None:
        """Refuse to change by hand what a directory account gets from the directory."""
        with self._lock:
            row = self._row(name)
        if row is None:
            raise UnknownUser(f"no user {name!r}; list users with `kura users list`")
        if row["source"] != LOCAL:
            source = row["source"].upper()
            raise ManagedByDirectory(
                {
                    "groups": f"{name} is an {source} account: its groups come from the directory; change "
                    "them there (then `kura users sync`), or add a local extra with `kura users extra-groups`",
                    "roles": f"{name} is an {source} account: its roles come from the directory; change the "
                    "person's directory groups or KURA_DIRECTORY_ROLE_MAP",
                    "password": f"{name} is an {source} account: its password is kept by the directory; "
                    "change it there",
                }[what]
            )

    def is_disabled(self, name: str) -> bool:
        with self._lock:
            row = self._row(name)
        if row is None:
            raise UnknownUser(f"no user {name!r}; list users with `kura users list`")
        return bool(row["disabled"])

    def language(self, name: str) -> str | None:
        """The UI language the person chose last ('en', 'ja'), or None if they never chose."""
        with self._lock:
            row = self._row(name)
        return None if row is None else row["language"]

    def set_language(self, name: str, language: str) -> None:
        if language not in ("en", "ja"):
            raise ValueError(f"the UI language is 'en' or 'ja', not {language!r}")
        self._update(name, "UPDATE users SET language = ? WHERE name = ?", (language,))

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
                    "INSERT INTO users (name, password_hash, roles, groups_, disabled, must_change_password,"
                    " created, password_changed) VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
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
        if self._is_last_admin(name):
            raise ValueError(f"{name} is the last enabled admin; make another admin first")
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
        self._require_local(name, "password")
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
        self._require_local(name, "groups")
        user = self.get(name)
        self._set_groups(name, (*user.groups, check_group_name(group)), by, f"add_to_group {group}")

    def remove_from_group(self, name: str, group: str, *, by: str = "local-operator") -> None:
        self._require_local(name, "groups")
        user = self.get(name)
        if group not in user.groups:
            raise ValueError(
                f"{name} is not in group {group!r}; its groups are {list(user.groups) or 'none'}"
            )
        self._set_groups(
            name, tuple(g for g in user.groups if g != group), by, f"remove_from_group {group}"
        )

    def set_groups(self, name: str, groups: Iterable[str], *, by: str = "local-operator") -> None:
        self._require_local(name, "groups")
        self._set_groups(name, _check_groups(groups), by, "set_groups")

    def _set_groups(self, name: str, groups: Iterable[str], by: str, change: str) -> None:
        chosen = _check_groups(groups)
        self._update(
            name, "UPDATE users SET groups_ = ? WHERE name = ?", (json.dumps(list(chosen)),)
        )
        self._audit(by, "user_change", change=change, target=name, groups=list(chosen))

    def set_roles(self, name: str, roles: Iterable[str], *, by: str = "local-operator") -> None:
        chosen = _check_roles(roles)
        self._require_local(name, "roles")
        if ADMIN not in chosen and self._is_last_admin(name):
            raise ValueError(f"{name} is the last enabled admin; make another admin first")
        self._update(
            name, "UPDATE users SET roles = ? WHERE name = ?", (json.dumps(sorted(chosen)),)
        )
        self._audit(by, "user_change", change="set_roles", target=name, roles=sorted(chosen))

    def set_extra_groups(self, name: str, groups: Iterable[str], *, by: str = "local-operator") -> None:
        """A directory account's local override: groups on top of the directory's (audited;
        they stay until an admin changes them again, whatever the directory says)."""
        info = self.info(name)
        if info.source == LOCAL:
            raise ValueError(f"{name} is a local account: set its groups with `kura users add-to-group`")
        extra = _check_groups(groups)
        effective = tuple(sorted({*info.synced_groups, *extra}))
        self._update(
            name,
            "UPDATE users SET extra_groups = ?, groups_ = ? WHERE name = ?",
            (json.dumps(list(extra)), json.dumps(list(effective))),
        )
        self._audit(
            by, "user_change", change="set_extra_groups", target=name, extra_groups=list(extra), groups=list(effective)
        )

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
        """The user, or LoginFailed / AccountLocked / AccountDisabled / DirectoryDown. Every
        attempt is audited. A name without a local account is asked of the directory (when one
        is configured), which also refreshes that person's roles and groups."""
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
        with self._lock:
            stored = self._row(key) if isinstance(name, str) else None
        if stored is not None and stored["source"] == LOCAL or self.directory is None:
            row = self._verify(key, password)
        else:
            row = self._verify_in_directory(key, password)
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
            self._audit(row["name"], "login_failed", reason="disabled")
            raise AccountDisabled(f"the account {row['name']!r} is disabled; ask an admin to enable it")
        self.unlock(key, by=None)
        user = self._user(row)
        self._audit(user.name, "login", role=",".join(sorted(user.roles)), source=row["source"])
        return user

    def _verify_in_directory(self, key: str, password: str) -> sqlite3.Row | None:
        """Ask the directory; on success write the person's mapped roles and groups and return
        their row. None for a wrong name or password (an OIDC account never signs in here)."""
        assert self.directory is not None
        try:
            entry = self.directory.authenticate(key.lower(), password)
        except DirectoryUnavailable as exc:
            self._audit(key, "login_failed", reason="directory_unavailable", detail=str(exc))
            raise DirectoryDown(
                "the company directory cannot be reached, so directory accounts cannot sign in now; "
                "try again later (an admin sees why in `kura doctor`)"
            ) from exc
        if entry is None:
            return None
        self.apply_identity(entry.name, LDAP, entry.dn, entry.groups, by="directory")
        with self._lock:
            return self._row(entry.name)

    # --- directory accounts --------------------------------------------------------------
    def apply_identity(
        self, name: str, source: str, external_id: str, directory_groups: Iterable[str], *, by: str
    ) -> User:
        """Create or refresh the account of a person the directory or the identity provider
        vouched for: roles and groups from the mapping, every change audited. Refuses
        (AccountConflict) a name held by a local account or by another person."""
        roles, synced = self._mapped(name, source, directory_groups, by=by)
        with self._lock:
            row = self._row(name)
        # An OIDC subject never changes; an LDAP DN does when a person moves to another OU, and the
        # name attribute (unique in the directory) is what identifies them there.
        other_person = source == OIDC and row is not None and row["external_id"] not in (None, external_id)
        if row is not None and (row["source"] != source or other_person):
            self._audit(name, "login_failed", reason="identity_conflict", source=source, existing=row["source"])
            raise AccountConflict(
                f"the name {name!r} belongs to another kura account ({row['source']}); ask an admin to "
                "rename or delete one of them"
            )
        now = self._clock()
        if row is None:
            with self._lock:
                self._db.execute(
                    "INSERT INTO users (name, password_hash, roles, groups_, disabled, must_change_password,"
                    " created, password_changed, source, external_id, synced_groups, extra_groups, last_synced)"
                    " VALUES (?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?, '[]', ?)",
                    (name, _NO_LOCAL_PASSWORD, json.dumps(sorted(roles)), json.dumps(list(synced)),
                     now, now, source, external_id, json.dumps(list(synced)), now),
                )
            self._audit(by, "user_change", change="add", target=name,
                        source=source, roles=sorted(roles), groups=list(synced))
            return User(name, roles, synced)
        return self._refresh_identity(row, roles, synced, external_id, now, by=by)

    def _mapped(
        self, name: str, source: str, directory_groups: Iterable[str], *, by: str
    ) -> tuple[frozenset[str], tuple[str, ...]]:
        """The kura roles and groups the mapping gives `name`'s directory groups. A person the
        mapping gives no role is refused, and their existing account disabled at once."""
        try:
            check_user_name(name)
            return self.group_map.apply(directory_groups)
        except (ValueError, NoRoleMapped) as exc:
            known = _USER_NAME.match(name or "") is not None
            self._audit(name if known else repr(name), "login_failed", reason="directory_mapping", detail=str(exc))
            with self._lock:
                row = self._row(name) if known else None
            if row is not None and row["source"] == source and not row["disabled"]:
                # Left every group that gives a role: the old roles must not live on in a session.
                self._update(name, "UPDATE users SET disabled = 1, last_synced = ? WHERE name = ?", (self._clock(),))
                self._end_sessions(name)
                self._audit(by, "user_change", change="disable", target=name, reason="no kura role in the directory")
            raise NotMapped(f"kura cannot take this {source.upper()} account: {exc}") from None

    def _refresh_identity(
        self, row: sqlite3.Row, roles: frozenset[str], synced: tuple[str, ...], external_id: str, now: float, *, by: str
    ) -> User:
        """An existing directory account brought in line with the directory (extra groups an
        admin gave stay); a change of roles or groups is audited."""
        name, source = row["name"], row["source"]
        old_roles = frozenset(json.loads(row["roles"]))
        old_synced = tuple(json.loads(row["synced_groups"]))
        effective = tuple(sorted({*synced, *json.loads(row["extra_groups"])}))
        with self._lock:
            self._db.execute(
                "UPDATE users SET roles = ?, groups_ = ?, synced_groups = ?, last_synced = ?, external_id = ?"
                " WHERE name = ?",
                (json.dumps(sorted(roles)), json.dumps(list(effective)), json.dumps(list(synced)), now,
                 external_id, name),
            )
        if roles != old_roles or synced != old_synced:
            self._audit(
                by,
                "user_change",
                change="directory_sync",
                target=name,
                source=source,
                groups_added=sorted(set(synced) - set(old_synced)),
                groups_removed=sorted(set(old_synced) - set(synced)),
                roles_added=sorted(roles - old_roles),
                roles_removed=sorted(old_roles - roles),
            )
        return User(name, roles, effective)

    def sign_in_identity(self, name: str, source: str, external_id: str, directory_groups: Iterable[str]) -> User:
        """A sign-in the identity provider vouched for (OIDC): refresh the account from the
        claims, refuse it if an admin disabled it, audit the login."""
        user = self.apply_identity(name, source, external_id, directory_groups, by="identity-provider")
        if self.is_disabled(user.name):
            self._audit(user.name, "login_failed", reason="disabled", source=source)
            raise AccountDisabled(f"the account {user.name!r} is disabled; ask an admin to enable it")
        self._audit(user.name, "login", role=",".join(sorted(user.roles)), source=source)
        return user

    def sync_directory(self, *, by: str = "local-operator") -> builtins.list[tuple[str, str]]:
        """Read every LDAP account again from the directory: new roles and groups apply at
        once; a person the directory no longer finds is disabled (sessions end). Returns
        (name, what happened) per account. Raises DirectoryUnavailable, having changed only
        the accounts read before the outage (each change audited)."""
        if self.directory is None:
            raise ValueError("no directory is configured: set KURA_LDAP_URL (README 'Company sign-in')")
        results: builtins.list[tuple[str, str]] = []
        for info in self.list_info():
            if info.source != LDAP:
                continue
            name = info.user.name
            entry = self.directory.find(name)
            if entry is None:
                if not info.disabled:
                    self._update(name, "UPDATE users SET disabled = 1, last_synced = ? WHERE name = ?",
                                 (self._clock(),))
                    self._end_sessions(name)
                    self._audit(by, "user_change", change="disable", target=name,
                                reason="not found in the directory")
                results.append((name, "disabled: not found in the directory"))
                continue
            try:
                user = self.apply_identity(name, LDAP, entry.dn, entry.groups, by=by)
            except NotMapped:
                results.append((name, "disabled: no directory group gives a kura role"))
                continue
            except AccountConflict as exc:
                results.append((name, f"not synced: {exc}"))
                continue
            before = set(info.synced_groups)
            after = set(json.loads(self._row_locked(name)["synced_groups"]))
            change = ", ".join(
                [f"+{g}" for g in sorted(after - before)] + [f"-{g}" for g in sorted(before - after)]
            )
            results.append((name, f"groups {', '.join(user.groups) or 'none'}" + (f" ({change})" if change else "")))
        return results

    def _row_locked(self, name: str) -> sqlite3.Row:
        with self._lock:
            row = self._row(name)
        if row is None:
            raise UnknownUser(f"no user {name!r}")
        return row

    # --- sessions ----------------------------------------------------------------------
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
                "INSERT INTO sessions (token_hash, name, created, expires, last_seen) VALUES (?, ?, ?, ?, ?)",
                (_token_hash(token), user.name, now, now + self.session_seconds, now),
            )
        return token

    def user_for_session(self, token: str) -> User:
        """The session's user as stored now (role and group changes apply at once). Each call
        counts as activity for the idle limit."""
        if not isinstance(token, str) or not token:
            raise SessionExpired("no session: log in")
        with self._lock:
            self._db.row_factory = sqlite3.Row
            session = self._db.execute(
                "SELECT * FROM sessions WHERE token_hash = ?", (_token_hash(token),)
            ).fetchone()
        if session is None:
            raise SessionExpired("this session is not valid (logged out or replaced): log in again")
        now = self._clock()
        if session["expires"] <= now:
            self.close_session(token)
            raise SessionExpired(
                f"this session expired at {_when(session['expires'])}: log in again"
            )
        last_seen = session["last_seen"] or session["created"]
        if self.idle_seconds is not None and now - last_seen > self.idle_seconds:
            self.close_session(token)
            raise SessionIdle(
                f"this session was idle since {_when(last_seen)} and ended: log in again"
            )
        with self._lock:
            row = self._row(session["name"])
        if row is None or row["disabled"]:
            self.close_session(token)
            raise SessionExpired(
                f"the account {session['name']!r} was disabled or removed: ask an admin"
            )
        with self._lock:
            self._db.execute(
                "UPDATE sessions SET last_seen = ? WHERE token_hash = ?", (now, _token_hash(token))
            )
        return self._user(row)

    def close_session(self, token: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE token_hash = ?", (_token_hash(token),))

    def sign_out(self, token: str) -> str | None:
        """Sign-out: end every session of the token's user (all tabs and browsers), audited.
        Returns the user's name, or None when the token was no longer valid."""
        with self._lock:
            session = self._db.execute(
                "SELECT name FROM sessions WHERE token_hash = ?", (_token_hash(token),)
            ).fetchone() if isinstance(token, str) else None
        if session is None:
            return None
        self._end_sessions(session[0])
        self._audit(session[0], "logout")
        return str(session[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _audit(self, user: str | None, action: str, role: str = "", **fields: object) -> None:
        if self.audit is not None and user is not None:
            if not role and user == "local-operator":
                role = ADMIN
            if not role and user in SYSTEM_ACTORS:
                role = "system"
            if not role:
                try:
                    role = ",".join(sorted(self.get(user).roles)) if _USER_NAME.match(user) else ""
                except UnknownUser:
                    role = ""
            self.audit.append(user=user, role=role, action=action, **fields)
