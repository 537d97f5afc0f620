"""Who is signed in to this browser tab, and the server's one KuraService the pages share.

Every page gets its user from `current_user()` or `require(role)`; nothing else reads the
session token. The token lives only in this tab's server-side session state, never in the URL.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from app.accounts import AccountDisabled, AccountLocked, Accounts, LoginFailed, SessionExpired
from app.i18n import t
from app.runtime import current_service
from app.service import KuraService
from app.settings import KuraSettings
from app.ui.safe_text import text
from app.users import AccessDenied, User

log = logging.getLogger(__name__)

_TOKEN = "kura_session_token"
_NOTICE = "kura_session_notice"
LANG = "kura_lang"
LAST_SEEN = "kura_last_seen"


def service() -> KuraService:
    """The server's one service (built in app/server.py's lifespan, never by a page)."""
    return current_service()


def settings() -> KuraSettings:
    return service().settings


def accounts() -> Accounts:
    """The service's Accounts: it writes to the service's AuditLog, so the hash chain has a
    single writer."""
    return service().accounts


def lang() -> str:
    if LANG not in st.session_state:
        st.session_state[LANG] = settings().ui_language
    return str(st.session_state[LANG])


def tr(key: str, **fields: object) -> str:
    """The UI text for `key` in this tab's language, as Markdown: string fields (names, paths,
    messages) are escaped so they show as typed; numbers keep their format specs."""
    return t(key, lang(), **{k: v if isinstance(v, int | float) else text(v) for k, v in fields.items()})


def current_user() -> User | None:
    """The signed-in user as stored now (role changes apply at once), or None."""
    token = st.session_state.get(_TOKEN)
    if not token:
        return None
    now = time.time()
    idle_limit = settings().ui_idle_minutes * 60
    if now - st.session_state.get(LAST_SEEN, now) > idle_limit:
        sign_out()
        st.session_state[_NOTICE] = tr("login.idle", minutes=settings().ui_idle_minutes)
        return None
    try:
        user = accounts().user_for_session(token)
    except SessionExpired as exc:
        st.session_state.pop(_TOKEN, None)
        st.session_state[_NOTICE] = tr("login.expired", detail=str(exc))
        return None
    st.session_state[LAST_SEEN] = now
    return user


def session_token() -> str | None:
    return st.session_state.get(_TOKEN)


def sign_in(name: str, password: str) -> str | None:
    """Open a session; returns None on success, else the message to show."""
    try:
        user = accounts().authenticate(name.strip(), password)
    except AccountLocked as exc:
        # One sentence in the tab's language; the until-time is the only part taken from the
        # (English) error, and an employee is never told to run a shell command.
        until = re.search(r"locked until (.+?);", str(exc))
        return tr("login.locked", until=until.group(1)) if until else tr("login.locked_later")
    except AccountDisabled:
        return tr("login.disabled")
    except LoginFailed:
        return tr("login.failed")
    st.session_state[_TOKEN] = accounts().open_session(user)
    st.session_state[LAST_SEEN] = time.time()
    st.session_state.pop(_NOTICE, None)
    return None


def sign_out() -> None:
    token = st.session_state.pop(_TOKEN, None)
    if token:
        accounts().close_session(token)
    for key in list(st.session_state):
        if key != LANG:
            del st.session_state[key]


def notice() -> str | None:
    """A message left by the last session check (e.g. 'your session expired')."""
    return st.session_state.get(_NOTICE)


def require(role: str) -> User:
    """The signed-in user if it holds `role`; otherwise show why and stop the page.
    Navigation already hides pages a role may not open; this guards the page itself too."""
    user = current_user()
    if user is None or not user.has_role(role):
        st.error(tr("denied", role=role))
        st.stop()
    return user


@contextmanager
def shown_errors() -> Iterator[None]:
    """Turn errors a user can meet into messages that say what to do; never a traceback."""
    try:
        yield
    except AccessDenied as exc:
        st.error(tr("error.denied", detail=str(exc)))  # tr escapes the detail
    except (ValueError, KeyError, FileNotFoundError, LookupError, RuntimeError, OSError) as exc:
        # kura's typed errors (IngestError, ModelMissing, PasswordPolicyError, ...) carry the fix.
        log.warning("shown to the user: %s", exc)
        st.error(text(str(exc).strip("'\"")))
    except Exception as exc:
        log.exception("unexpected error in the UI")
        st.error(tr("error.generic", detail=type(exc).__name__))
