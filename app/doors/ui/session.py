"""Who is signed in to this browser tab, and the server's one KuraService the pages share.

Every page gets its user from `current_user()` or `require(role)`; nothing else reads the
session token. The token lives in this tab's server-side session state and in the HttpOnly
`kura_session` cookie (app/doors/http/signin.py), never in the URL: a reload or a second tab finds the
cookie in `st.context.cookies` and resumes the same server-side session.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import streamlit as st

from app.doors.http.runtime import current_service
from app.doors.http.signin import COOKIE, HANDOFFS, pixel, redirect_browser
from app.doors.safe_text import text
from app.doors.ui.i18n import LANGUAGES, t
from app.identity.accounts import (
    AccountConflict,
    AccountDisabled,
    AccountLocked,
    Accounts,
    DirectoryDown,
    LoginFailed,
    NotMapped,
    SessionExpired,
    SessionIdle,
)
from app.identity.users import AccessDenied, User
from app.platform.settings import KuraSettings
from app.service import KuraService

log = logging.getLogger(__name__)

_TOKEN = "kura_session_token"
_NOTICE = "kura_session_notice"
_COOKIE_ROUTE = "kura_cookie_route"  # a sign-in route the browser still has to fetch (app/doors/http/signin.py)
LANG = "kura_lang"


def service() -> KuraService:
    """The server's one service (built in app/doors/http/server.py's lifespan, never by a page)."""
    return current_service()


def settings() -> KuraSettings:
    return service().settings


def accounts() -> Accounts:
    """The service's Accounts: it writes to the service's AuditLog, so the hash chain has a
    single writer."""
    return service().accounts


def lang() -> str:
    """This tab's language: the person's choice, else the browser's (Accept-Language), else the site's."""
    if LANG not in st.session_state:
        st.session_state[LANG] = browser_language() or settings().ui_language
    return str(st.session_state[LANG])


# --- the person's language (issue 26): the browser's until they choose; their choice kept with their account
_LANG_CHOSEN = "kura_lang_chosen"  # chosen in this tab (before signing in, it is saved at sign-in)
_LANG_OWNER = "kura_lang_owner"  # whose saved choice this tab has applied


def preferred_language(header: str) -> str | None:
    """The first language kura speaks in an Accept-Language header, by the browser's weights:
    'ja-JP,ja;q=0.9,en;q=0.8' -> 'ja'; None when it names none of them."""
    choices = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and weight > 0:
            choices.append((-weight, position, primary))
    return min(choices)[2] if choices else None


def browser_language() -> str | None:
    try:
        return preferred_language(st.context.headers.get("Accept-Language") or "")
    except Exception:  # no browser request behind this run (AppTest, bare script)
        return None


def language_chosen() -> None:
    """The language picker's callback: remember the choice for this tab, and with the account
    of whoever is signed in."""
    st.session_state[_LANG_CHOSEN] = True
    token = st.session_state.get(_TOKEN)
    if token:
        try:
            service().set_own_language(accounts().user_for_session(token), lang())
        except SessionExpired:
            pass


def remember_language(user: User) -> None:
    """Once per sign-in: a choice made on the sign-in page is saved with the account; otherwise
    the account's saved choice, if any, becomes this tab's language. Call before the picker."""
    if st.session_state.get(_LANG_OWNER) == user.name:
        return
    st.session_state[_LANG_OWNER] = user.name
    if st.session_state.get(_LANG_CHOSEN):
        service().set_own_language(user, lang())
    elif saved := service().own_language(user):
        st.session_state[LANG] = saved


def tr(key: str, **fields: object) -> str:
    """The UI text for `key` in this tab's language, as Markdown: string fields (names, paths,
    messages) are escaped so they show as typed; numbers keep their format specs."""
    return t(key, lang(), **{k: v if isinstance(v, int | float) else text(v) for k, v in fields.items()})


def _cookie_token() -> str | None:
    try:
        return st.context.cookies.get(COOKIE)
    except Exception:  # no browser request behind this run (AppTest, bare script)
        return None


def current_user() -> User | None:
    """The signed-in user as stored now (role changes apply at once), or None. The session's
    idle and absolute limits are kept on the server (app/identity/accounts.py), shared by every tab."""
    route = st.session_state.pop(_COOKIE_ROUTE, None)
    if route:  # store (or drop) the HttpOnly cookie: an invisible same-origin request
        st.html(pixel(route))
    token = st.session_state.get(_TOKEN)
    resumed = False
    if not token:
        token = _cookie_token()  # a reload or a second tab: the session the cookie names
        resumed = True
        if not token:
            return None
    try:
        user = accounts().user_for_session(token)
    except SessionIdle:
        st.session_state.pop(_TOKEN, None)
        st.session_state[_NOTICE] = tr("login.idle", minutes=settings().ui_idle_minutes)
        return None
    except SessionExpired as exc:
        st.session_state.pop(_TOKEN, None)
        if not resumed:  # an old cookie after sign-out is simply the sign-in page
            st.session_state[_NOTICE] = tr("login.expired", detail=str(exc))
        return None
    st.session_state[_TOKEN] = token
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
    except DirectoryDown:
        return tr("login.directory_down")
    except AccountConflict:
        return tr("login.conflict")
    except NotMapped:
        return tr("login.not_mapped")
    except LoginFailed:
        return tr("login.failed")
    token = accounts().open_session(user)
    st.session_state[_TOKEN] = token
    st.session_state.pop(_NOTICE, None)
    # The next run has the browser fetch the HttpOnly cookie for this session (app/doors/http/signin.py).
    st.session_state[_COOKIE_ROUTE] = f"/signin/complete?code={HANDOFFS.issue(token)}"
    return None


def sign_in_with_provider() -> None:
    """The "Sign in with <provider>" button: this tab goes to the provider (app/doors/http/signin.py)."""
    redirect_browser("/signin/oidc")


def sign_out() -> None:
    """End every session of this user (all tabs and browsers) and clear the cookie."""
    token = st.session_state.pop(_TOKEN, None) or _cookie_token()
    if token:
        accounts().sign_out(token)
    for key in list(st.session_state):
        if key != LANG:
            del st.session_state[key]
    st.session_state[_COOKIE_ROUTE] = "/signout"  # the next run drops the cookie


def notice() -> str | None:
    """A message left by the last session check (e.g. 'your session expired')."""
    return st.session_state.get(_NOTICE)


def require(role: str) -> User:
    """The signed-in user if it holds `role`; otherwise show why and stop the page.
    Navigation already hides pages a role may not open; this guards the page itself too."""
    user = signed_in(role)
    if not user.has_role(role):
        refuse(role)
    return user


def signed_in(role: str | None = None) -> User:
    """The signed-in user, whatever its roles; otherwise stop the page. A page whose role check
    is the service's own (audited) passes the role it needs, for the refusal's wording."""
    user = current_user()
    if user is None:
        refuse(role)
    return user


def refuse(role: str | None) -> NoReturn:
    """Show that this page is not for this user (or that nobody is signed in) and stop."""
    st.error(tr("denied", role=role) if role else tr("signin.needed"))
    st.stop()


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
