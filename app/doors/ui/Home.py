"""kura's browser UI: sign-in, then only the pages the user's roles allow.

Pages a role may not open are never registered with st.navigation, so their URL does not
exist for that user; every page also checks the role itself (session.require).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # streamlit runs this file as a script

import streamlit as st  # noqa: E402

from app.doors.ui import session  # noqa: E402
from app.doors.ui.i18n import LANGUAGES  # noqa: E402
from app.doors.ui.session import tr  # noqa: E402
from app.identity.users import ADMIN, AUDITOR, EMPLOYEE  # noqa: E402
from base import offline  # noqa: E402,F401

VIEWS = Path(__file__).parent / "views"


def language_picker() -> None:
    session.lang()
    st.sidebar.selectbox(
        tr("lang.label"), list(LANGUAGES), format_func=LANGUAGES.__getitem__, key=session.LANG,
        on_change=session.language_chosen,  # kept with the person's account (issue 26)
    )


def login_page() -> None:
    st.title(tr("login.title"))
    if session.notice():
        st.warning(session.notice())
    with session.shown_errors():
        if not session.accounts().list():
            st.info(tr("login.no_users"))
    with st.form("login"):
        name = st.text_input(tr("login.user"), key="login_name")
        password = st.text_input(tr("login.password"), type="password", key="login_password")
        submitted = st.form_submit_button(tr("login.submit"), type="primary")
    if submitted:
        with st.spinner():
            problem = session.sign_in(name, password)
        if problem:
            st.error(problem)
        else:
            st.rerun()
    provider = session.settings().oidc_name if session.settings().oidc_issuer else None
    if provider and st.button(tr("login.sso", provider=provider), key="login_sso"):
        session.sign_in_with_provider()


def change_password_page() -> None:
    st.title(tr("pw.title"))
    st.info(tr("pw.why"))
    with st.form("change_password"):
        old = st.text_input(tr("pw.old"), type="password")
        new = st.text_input(tr("pw.new"), type="password")
        again = st.text_input(tr("pw.repeat"), type="password")
        submitted = st.form_submit_button(tr("pw.submit"), type="primary")
    if submitted:
        if new != again:
            st.error(tr("pw.mismatch"))
            return
        with session.shown_errors():
            session.accounts().change_own_password(session.session_token() or "", old, new)
            st.success(tr("pw.done"))
            st.rerun()


# Which pages each role may open: (role, section key, [views]); None: every signed-in user. A
# page a role may not open is never registered, so it cannot be reached by URL either.
_PAGES_BY_ROLE: tuple[tuple[str | None, str, list[str]], ...] = (
    (EMPLOYEE, "employee", ["ask", "passage"]),
    (ADMIN, "admin", ["upload", "documents", "users", "system", "jobs"]),
    (AUDITOR, "auditor", ["audit", "workbench"]),
    (None, "account", ["keys"]),
)


# Pages reached only through a link (a citation's url), never listed in the sidebar.
_LINKED_ONLY = frozenset({"passage"})
_LINKED_CHUNK = "kura_linked_chunk"


def pages_for(roles: frozenset[str]) -> dict[str, list[st.Page]]:
    return {
        tr(f"nav.section.{section}"): [
            st.Page(VIEWS / f"{view}.py", title=tr(f"nav.{view}"), url_path=view,
                    visibility="hidden" if view in _LINKED_ONLY else "visible")
            for view in views
        ]
        for role, section, views in _PAGES_BY_ROLE
        if role is None or role in roles
    }


def main() -> None:
    # No `:material/...:` icon anywhere: Streamlit fetches those from fonts.gstatic.com. An
    # emoji page icon becomes an inline data: SVG, served by nothing but this page.
    st.set_page_config(page_title="kura 蔵", page_icon="🏯", layout="wide")
    user = session.current_user()
    if user is not None:
        session.remember_language(user)  # before the picker: its saved choice may change the tab's language
    language_picker()
    if user is None:
        if "chunk" in st.query_params:  # a citation link: open it once the reader has signed in
            st.session_state[_LINKED_CHUNK] = str(st.query_params["chunk"])
        st.navigation(
            [st.Page(login_page, title=tr("login.title"), url_path="login")], position="hidden"
        ).run()
    elif session.accounts().needs_password_change(user.name):
        st.navigation(
            [st.Page(change_password_page, title=tr("pw.title"), url_path="password")],
            position="hidden",
        ).run()
    else:
        st.sidebar.markdown(tr("signed_in_as", name=user.name, roles=", ".join(sorted(user.roles))))
        if st.sidebar.button(tr("logout"), key="logout"):
            session.sign_out()
            st.rerun()
        pages = pages_for(user.roles)
        linked = st.session_state.pop(_LINKED_CHUNK, None)
        passage = next((p for group in pages.values() for p in group if p.url_path == "passage"), None)
        current = st.navigation(pages)
        if linked and passage is not None and current.url_path != "passage":
            st.switch_page(passage, query_params={"chunk": linked})
        current.run()


# Streamlit runs this file as __main__ and leaves it in sys.modules: a process that kura serve
# spawns (the parse process, ingest/parse_pool.py) imports it again as __mp_main__, and must
# get the definitions only, not a page run outside Streamlit.
if __name__ == "__main__":
    main()
