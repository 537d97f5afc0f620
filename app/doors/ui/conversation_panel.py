"""The Ask page's saved conversations (issue 26). The sidebar lists the person's conversations,
newest first (or those a search finds), opens one, and offers the export and "delete all"; the
open conversation can be renamed or deleted. Each action is one service call
(app/service/conversations.py), which keeps every person's conversations their own and
re-checks each citation with their groups now; titles and snippets are shown as text.

The open conversation's id lives in this tab's state and in the URL (`?c=`), so a reload or the
same link in another browser of the same person reopens it; anyone else's browser is told it
is not among theirs. Answers asked in this tab stay on screen as they were streamed (timing,
feedback) until the page is reloaded.

Usage (app/doors/ui/views/ask.py):
    conversation = conversation_panel.opened(service, user)   # None: a new conversation
    conversation_panel.kept(answer)                            # after an answer has streamed
    conversation_panel.sidebar(service, user)                  # at the end of the page run
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from app.doors import safe_text
from app.doors.ui import session
from app.doors.ui.session import tr
from app.identity.users import User
from app.service import Answer
from app.service.conversation_store import Conversation, ConversationNotFound

CURRENT = "kura_conversation"
OPENED = "kura_conversation_opened"
LIVE = "kura_conversation_live"  # saved turn id -> the Answer streamed in this tab
EXPORT = "kura_conversation_export"
SHOWN = 30  # conversations listed in the sidebar (a search reaches every one)


def current() -> str | None:
    """The open conversation's id: this tab's, else the URL's (a reload), else None (a new one)."""
    if CURRENT not in st.session_state:
        st.session_state[CURRENT] = str(st.query_params.get("c") or "") or None
    return st.session_state[CURRENT]


def open_conversation(conversation_id: str | None) -> None:
    """Open another conversation (None: start a new one); also a button callback."""
    st.session_state[CURRENT] = conversation_id
    st.session_state.pop(OPENED, None)
    st.session_state.pop(EXPORT, None)
    if conversation_id:
        st.query_params["c"] = conversation_id
    elif "c" in st.query_params:
        del st.query_params["c"]


def opened(service: Any, user: User) -> Conversation | None:
    """The open conversation, reopened by the service (once per opening: each reopening
    re-checks every citation and is audited)."""
    conversation_id = current()
    if conversation_id is None:
        return None
    cached = st.session_state.get(OPENED)
    if cached is None or cached.id != conversation_id:
        try:
            cached = service.conversation(user, conversation_id)
        except ConversationNotFound:
            st.warning(tr("conv.not_found"))
            open_conversation(None)
            return None
        st.session_state[OPENED] = cached
    return cached


def kept(answer: Answer) -> None:
    """After an answer has streamed: its conversation is the open one, reopened at the next run."""
    if answer.conversation_id is None:
        return
    if answer.saved_turn is not None:
        st.session_state.setdefault(LIVE, {})[answer.saved_turn] = answer
    st.session_state[CURRENT] = answer.conversation_id
    st.session_state.pop(OPENED, None)
    st.query_params["c"] = answer.conversation_id


def live(turn_id: int) -> Answer | None:
    """The Answer streamed in this tab for a saved turn, if it was."""
    return st.session_state.get(LIVE, {}).get(turn_id)


def manage(service: Any, user: User, conversation: Conversation) -> None:
    """Rename or delete the open conversation."""
    with st.expander(tr("conv.manage")):
        title = st.text_input(tr("conv.title"), value=conversation.title, key=f"conv_title_{conversation.id}")
        if st.button(tr("conv.rename"), key="conv_rename"):
            with session.shown_errors():
                service.rename_conversation(user, conversation.id, title)
                st.session_state.pop(OPENED, None)
                st.rerun()
        sure = st.checkbox(tr("conv.delete.confirm"), key="conv_delete_sure")
        if st.button(tr("conv.delete"), key="conv_delete", disabled=not sure):
            with session.shown_errors():
                service.delete_conversation(user, conversation.id)
                open_conversation(None)
                st.toast(tr("conv.deleted"))
                st.rerun()


def _label(title: str, width: int = 60) -> str:
    flat = " ".join(title.split())
    return safe_text.text(flat if len(flat) <= width else flat[: width - 1] + "…")


def sidebar(service: Any, user: User) -> None:
    """The person's conversations, newest first, or those matching the search box."""
    bar = st.sidebar
    bar.divider()
    bar.markdown(f"**{tr('conv.sidebar')}**")
    bar.button(tr("ask.new"), key="conv_new", on_click=open_conversation, args=(None,))
    query = bar.text_input(tr("conv.search"), key="conv_search").strip()
    open_id = current()
    with session.shown_errors():
        if query:
            matches = service.search_conversations(user, query)
            if not matches:
                bar.caption(tr("conv.no_match"))
            for m in matches:
                bar.button(_label(m.summary.title), key=f"conv_found_{m.summary.id}", on_click=open_conversation,
                           args=(m.summary.id,), type="primary" if m.summary.id == open_id else "secondary")
                bar.caption(f"{tr('conv.found.' + m.field)}: {safe_text.text(m.snippet[:160])}")
        else:
            summaries = service.list_conversations(user, SHOWN)
            if not summaries:
                bar.caption(tr("conv.none"))
            for s in summaries:
                bar.button(_label(s.title), key=f"conv_{s.id}", on_click=open_conversation, args=(s.id,),
                           help=time.strftime("%Y-%m-%d %H:%M", time.localtime(s.updated)),
                           type="primary" if s.id == open_id else "secondary")
    bar.caption(tr("conv.private"))
    days = session.settings().conversation_retention_days
    if days:
        bar.caption(tr("conv.retention", days=f"{days:g}"))
    _everything(service, user)


def _everything(service: Any, user: User) -> None:
    """Export every conversation (JSON or Markdown; audited) or delete them all."""
    with st.sidebar.expander(tr("conv.all")):
        fmt = st.radio(tr("conv.export.format"), ["json", "markdown"], key="conv_export_format", horizontal=True,
                       format_func={"json": "JSON", "markdown": "Markdown"}.__getitem__)
        if st.button(tr("conv.export.prepare"), key="conv_export"):
            with session.shown_errors():
                st.session_state[EXPORT] = (fmt, service.export_conversations(user, fmt))
        prepared = st.session_state.get(EXPORT)
        if prepared is not None and prepared[0] == fmt:
            suffix, mime = ("json", "application/json") if fmt == "json" else ("md", "text/markdown")
            st.download_button(tr("conv.export.download"), prepared[1].encode("utf-8"),
                               file_name=f"kura-conversations.{suffix}", mime=mime, key="conv_download")
        sure = st.checkbox(tr("conv.delete_all.confirm"), key="conv_delete_all_sure")
        if st.button(tr("conv.delete_all"), key="conv_delete_all", disabled=not sure):
            with session.shown_errors():
                count = service.delete_all_conversations(user)
                open_conversation(None)
                st.toast(tr("conv.deleted_all", n=count))
                st.rerun()
