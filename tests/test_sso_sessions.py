"""Server-side sessions: idle and absolute expiry from the settings, and sign-out, disabling
or a password change ending every session of that user (all tabs, all browsers)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.identity.accounts import Accounts, SessionExpired
from app.platform.settings import KuraSettings
from tests.clock import Clock

PASSWORD = "Orchid-meadow-4821"


@pytest.fixture
def clock() -> Clock:
    return Clock(1_900_000_000.0)


@pytest.fixture
def accounts(tmp_path: Path, clock: Clock) -> Accounts:
    store = Accounts(tmp_path / "users.sqlite3", session_minutes=60, idle_minutes=10, clock=clock)
    store.add("mika", PASSWORD, ["employee"])
    store.add("ren", "Granite-harbor-7710", ["employee"])
    return store


def test_activity_keeps_a_session_alive_until_the_idle_limit(accounts: Accounts, clock: Clock) -> None:
    token = accounts.open_session(accounts.authenticate("mika", PASSWORD))
    for _ in range(5):  # 5 x 9 minutes of activity: longer than the idle limit in total
        clock.now += 9 * 60
        assert accounts.user_for_session(token).name == "mika"
    clock.now += 11 * 60
    with pytest.raises(SessionExpired, match="idle"):
        accounts.user_for_session(token)


def test_the_absolute_limit_ends_even_an_active_session(accounts: Accounts, clock: Clock) -> None:
    token = accounts.open_session(accounts.authenticate("mika", PASSWORD))
    for _ in range(6):
        clock.now += 9 * 60
        accounts.user_for_session(token)
    clock.now += 7 * 60  # 61 minutes after sign-in, 7 after the last activity
    with pytest.raises(SessionExpired, match="expired at"):
        accounts.user_for_session(token)


def test_sign_out_ends_every_session_of_that_user_only(accounts: Accounts) -> None:
    first = accounts.open_session(accounts.authenticate("mika", PASSWORD))
    second_tab = accounts.open_session(accounts.get("mika"))
    other_user = accounts.open_session(accounts.get("ren"))
    assert accounts.sign_out(first) == "mika"
    for token in (first, second_tab):
        with pytest.raises(SessionExpired):
            accounts.user_for_session(token)
    assert accounts.user_for_session(other_user).name == "ren"
    assert accounts.sign_out(first) is None  # an old cookie signs nobody out


def test_disabling_or_a_new_password_ends_the_users_sessions(accounts: Accounts) -> None:
    token = accounts.open_session(accounts.authenticate("mika", PASSWORD))
    accounts.set_password("mika", "Lantern-brook-9934")
    with pytest.raises(SessionExpired):
        accounts.user_for_session(token)
    token = accounts.open_session(accounts.authenticate("ren", "Granite-harbor-7710"))
    accounts.disable("ren")
    with pytest.raises(SessionExpired):
        accounts.user_for_session(token)


def test_settings_set_both_limits_and_an_old_user_file_gains_the_new_columns(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "users.sqlite3")
    old.executescript(
        "CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, roles TEXT NOT NULL,"
        " groups_ TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0,"
        " must_change_password INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, password_changed REAL NOT NULL);"
        "CREATE TABLE sessions (token_hash TEXT PRIMARY KEY, name TEXT NOT NULL, created REAL NOT NULL,"
        " expires REAL NOT NULL);"
    )
    old.close()
    settings = KuraSettings(data_dir=tmp_path, session_absolute_minutes=90, ui_idle_minutes=5)
    accounts = Accounts.from_settings(settings)
    assert (accounts.session_seconds, accounts.idle_seconds) == (90 * 60, 5 * 60)
    accounts.add("mika", PASSWORD, ["employee"])
    assert accounts.info("mika").source == "local"
    assert accounts.user_for_session(accounts.open_session(accounts.get("mika"))).name == "mika"
