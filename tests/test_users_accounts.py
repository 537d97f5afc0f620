"""Local accounts: passwords, lockout, sessions, bootstrap.

Real SQLite file, real argon2, real audit log."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.audit.log import AuditLog
from app.identity.accounts import (
    AccountDisabled,
    AccountLocked,
    Accounts,
    LoginFailed,
    PasswordPolicyError,
    SessionExpired,
    UnknownUser,
    UserExists,
)
from app.identity.users import ADMIN, EMPLOYEE, EVERYONE
from tests.clock import Clock

GOOD = "Tall-cedar-river-42"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit.jsonl")


@pytest.fixture
def accounts(tmp_path: Path, audit: AuditLog, clock: Clock) -> Accounts:
    store = Accounts(
        tmp_path / "users.sqlite3",
        audit=audit,
        session_minutes=60,
        max_failures=3,
        lockout_minutes=15,
        clock=clock,
    )
    yield store
    store.close()


def test_added_user_logs_in_with_its_password_and_gets_its_roles_and_groups(
    accounts: Accounts,
) -> None:
    accounts.add("alice", GOOD, [EMPLOYEE], ["hr"])
    user = accounts.authenticate("alice", GOOD)
    assert user.name == "alice" and user.roles == frozenset({EMPLOYEE}) and user.groups == ("hr",)
    assert user.read_groups == (EVERYONE, "hr")


def test_wrong_password_and_unknown_user_fail_with_the_same_message(accounts: Accounts) -> None:
    accounts.add("alice", GOOD, [EMPLOYEE])
    with pytest.raises(LoginFailed) as wrong:
        accounts.authenticate("alice", GOOD + "x")
    with pytest.raises(LoginFailed) as unknown:
        accounts.authenticate("mallory", GOOD)
    assert type(wrong.value) is type(unknown.value) is LoginFailed
    assert str(wrong.value) == str(unknown.value)


def test_password_is_stored_as_argon2_hash_never_in_clear(
    accounts: Accounts, tmp_path: Path
) -> None:
    accounts.add("alice", GOOD, [EMPLOYEE])
    token = accounts.open_session(accounts.authenticate("alice", GOOD))
    accounts.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("users.sqlite3*"))
    assert GOOD.encode() not in raw and token.encode() not in raw
    assert b"$argon2id$" in raw


@pytest.mark.parametrize(
    "password, rule",
    [
        ("short-1A", "at least 12"),
        ("alice-is-great-1", "user name"),
        ("aaaaaaaaaaaaaaaa", "different characters"),
        ("password1234", "common"),
        (" padded-password-1 ", "spaces"),
    ],
)
def test_weak_passwords_are_refused_with_the_rule_they_break(
    accounts: Accounts, password: str, rule: str
) -> None:
    with pytest.raises(PasswordPolicyError, match=rule):
        accounts.add("alice", password, [EMPLOYEE])
    with pytest.raises(UnknownUser):
        accounts.get("alice")


def test_repeated_failures_lock_the_account_even_for_the_right_password(
    accounts: Accounts, clock: Clock
) -> None:
    accounts.add("alice", GOOD, [EMPLOYEE])
    for _ in range(2):
        with pytest.raises(LoginFailed):
            accounts.authenticate("alice", "wrong-password-123")
    with pytest.raises(AccountLocked, match="locked until"):
        accounts.authenticate("alice", "wrong-password-123")
    with pytest.raises(AccountLocked, match="ask an admin"):
        accounts.authenticate("alice", GOOD)
    clock.now += 16 * 60
    assert accounts.authenticate("alice", GOOD).name == "alice"


def test_unknown_names_lock_like_known_ones_so_lockout_reveals_nothing(accounts: Accounts) -> None:
    for _ in range(2):
        with pytest.raises(LoginFailed):
            accounts.authenticate("ghost", "wrong-password-123")
    with pytest.raises(AccountLocked):
        accounts.authenticate("ghost", "wrong-password-123")


def test_admin_unlock_lets_a_locked_user_in_again(accounts: Accounts) -> None:
    accounts.add("alice", GOOD, [EMPLOYEE])
    for _ in range(3):
        with pytest.raises(LoginFailed):
            accounts.authenticate("alice", "wrong-password-123")
    accounts.unlock("alice")
    assert accounts.authenticate("alice", GOOD).name == "alice"


def test_disabled_user_cannot_log_in_and_its_open_session_stops_working(accounts: Accounts) -> None:
    accounts.add("alice", GOOD, [EMPLOYEE])
    token = accounts.open_session(accounts.authenticate("alice", GOOD))
    accounts.disable("alice")
    with pytest.raises(SessionExpired):
        accounts.user_for_session(token)
    with pytest.raises(AccountDisabled):
        accounts.authenticate("alice", GOOD)


def test_deleted_user_session_stops_working(accounts: Accounts) -> None:
    accounts.add("alice", GOOD, [EMPLOYEE])
    token = accounts.open_session(accounts.authenticate("alice", GOOD))
    accounts.delete("alice")
    with pytest.raises(SessionExpired):
        accounts.user_for_session(token)


def test_session_expires_after_its_lifetime(accounts: Accounts, clock: Clock) -> None:
    accounts.add("alice", GOOD, [EMPLOYEE])
    token = accounts.open_session(accounts.authenticate("alice", GOOD))
    clock.now += 59 * 60
    assert accounts.user_for_session(token).name == "alice"
    clock.now += 2 * 60
    with pytest.raises(SessionExpired, match="expired"):
        accounts.user_for_session(token)


def test_closed_or_forged_session_token_is_refused(accounts: Accounts) -> None:
    accounts.add("alice", GOOD, [EMPLOYEE])
    token = accounts.open_session(accounts.authenticate("alice", GOOD))
    accounts.close_session(token)
    for bad in (token, "", "forged-token"):
        with pytest.raises(SessionExpired):
            accounts.user_for_session(bad)


def test_group_and_role_changes_apply_to_a_live_session_at_once(accounts: Accounts) -> None:
    accounts.add("alice", GOOD, [EMPLOYEE], ["hr"])
    token = accounts.open_session(accounts.authenticate("alice", GOOD))
    accounts.remove_from_group("alice", "hr")
    accounts.add_to_group("alice", "executives")
    accounts.set_roles("alice", [EMPLOYEE, "auditor"])
    user = accounts.user_for_session(token)
    assert user.groups == ("executives",) and user.roles == frozenset({EMPLOYEE, "auditor"})


def test_password_change_ends_other_sessions_but_keeps_the_current_one(accounts: Accounts) -> None:
    accounts.add("alice", GOOD, [EMPLOYEE])
    first = accounts.open_session(accounts.authenticate("alice", GOOD))
    second = accounts.open_session(accounts.authenticate("alice", GOOD))
    accounts.change_own_password(second, GOOD, "Another-long-phrase-7")
    assert accounts.user_for_session(second).name == "alice"
    with pytest.raises(SessionExpired):
        accounts.user_for_session(first)
    with pytest.raises(LoginFailed):
        accounts.authenticate("alice", GOOD)


def test_bootstrap_without_password_prints_a_one_time_password_that_must_be_changed(
    accounts: Accounts,
) -> None:
    one_time = accounts.bootstrap_admin(None)
    assert one_time and len(one_time) >= 12
    admin = accounts.authenticate("admin", one_time)
    assert ADMIN in admin.roles and accounts.needs_password_change("admin")
    accounts.set_password("admin", "Operator-chosen-phrase-9")
    assert not accounts.needs_password_change("admin")
    assert accounts.bootstrap_admin(None) is None  # never a second time


def test_bootstrap_with_operator_password_checks_the_policy_and_has_no_default(
    tmp_path: Path,
) -> None:
    first = Accounts(tmp_path / "a.sqlite3")
    second = Accounts(tmp_path / "b.sqlite3")
    assert first.bootstrap_admin(None) != second.bootstrap_admin(None)
    third = Accounts(tmp_path / "c.sqlite3")
    with pytest.raises(PasswordPolicyError):
        third.bootstrap_admin("admin")
    assert third.bootstrap_admin("Operator-chosen-phrase-9") is None
    assert not third.needs_password_change("admin")


@pytest.mark.parametrize("bad_group", ["HR", "hr managers", "", "../etc", "x" * 70, "人事"])
def test_malformed_group_names_are_refused_and_nothing_changes(
    accounts: Accounts, bad_group: str
) -> None:
    accounts.add("alice", GOOD, [EMPLOYEE], ["hr"])
    with pytest.raises(ValueError, match="group name"):
        accounts.add_to_group("alice", bad_group)
    with pytest.raises(ValueError, match="group name"):
        accounts.add("bob", GOOD, [EMPLOYEE], [bad_group])
    assert accounts.get("alice").groups == ("hr",)


def test_user_with_no_groups_reads_only_everyone(accounts: Accounts) -> None:
    accounts.add("alice", GOOD, [EMPLOYEE])
    assert accounts.get("alice").read_groups == (EVERYONE,)


def test_bad_user_names_roles_and_duplicates_are_refused(accounts: Accounts) -> None:
    with pytest.raises(ValueError, match="user name"):
        accounts.add("Alice Smith", GOOD, [EMPLOYEE])
    with pytest.raises(ValueError, match="unknown roles"):
        accounts.add("alice", GOOD, ["superuser"])
    with pytest.raises(ValueError, match="at least one role"):
        accounts.add("alice", GOOD, [])
    accounts.add("alice", GOOD, [EMPLOYEE])
    with pytest.raises(UserExists):
        accounts.add("alice", GOOD, [EMPLOYEE])
    with pytest.raises(UnknownUser):
        accounts.disable("nobody")


def test_last_admin_cannot_demote_itself(accounts: Accounts) -> None:
    accounts.bootstrap_admin("Operator-chosen-phrase-9")
    with pytest.raises(ValueError, match="last enabled admin"):
        accounts.set_roles("admin", [EMPLOYEE])


def test_logins_failures_and_user_changes_are_audited(accounts: Accounts, audit: AuditLog) -> None:
    accounts.add("alice", GOOD, [EMPLOYEE])
    accounts.authenticate("alice", GOOD)
    with pytest.raises(LoginFailed):
        accounts.authenticate("alice", "wrong-password-123")
    accounts.add_to_group("alice", "hr")
    actions = [
        (e["user"], e["action"], e.get("change") or e.get("reason")) for e in audit.entries()
    ]
    assert actions == [
        ("local-operator", "user_change", "add"),
        ("alice", "login", None),
        ("alice", "login_failed", "bad_password"),
        ("local-operator", "user_change", "add_to_group hr"),
    ]
    assert GOOD not in audit.path.read_text() and "wrong-password-123" not in audit.path.read_text()
    assert audit.verify() == []
