"""Employees: ask a question (streamed answer with numbered citations) or search passages.

A question and its answer are kept as the person's conversation: the sidebar lists them, a
reload reopens the open one, and a follow-up continues it (app/doors/ui/conversation_panel.py).

Everything from a document, a file name, the asker or the model is shown as text
(app/doors/safe_text.py); answers keep a small safe Markdown subset. The citation check is shown:
sentences no cited passage supports are marked, an answer that cites nothing that supports it
carries a warning, Sources are the cited passages and "also retrieved" the rest.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from app.doors import safe_text
from app.doors.ui import conversation_panel, session
from app.doors.ui.citation_marks import marked_answer
from app.doors.ui.highlight import highlight_html
from app.doors.ui.session import tr
from app.identity.users import EMPLOYEE
from app.service import Answer
from app.service.answer import ANSWERED, UNCERTAIN, WORDS
from app.service.conversation_store import ReopenedTurn
from models.queue import QueueFull
from retrieval.context import ContextPassage
from retrieval.passage import Passage

FILE_TYPES = ["pdf", "docx", "doc", "html", "htm", "md", "txt", "pptx", "xlsx", "csv"]
SEARCH = "kura_search"  # the last search: {"query", "conditions", "passages"}

user = session.require(EMPLOYEE)
service = session.service()

st.title(tr("ask.title"))
MODES = {"ask": tr("ask.mode.ask"), "search": tr("ask.mode.search")}  # labels fixed for this run
mode = st.radio(tr("ask.mode"), list(MODES), horizontal=True, key="ask_mode", format_func=MODES.__getitem__)
with st.expander(tr("ask.filters")):
    # The folder filter narrows search results only: an answer's context is chosen by the service.
    folder_filter = (
        st.text_input(tr("ask.filter.folder"), key="filter_folder").strip()
        if mode == "search"
        else ""
    )
    type_filter = st.multiselect(
        tr("ask.filter.types"), FILE_TYPES, key="filter_types", placeholder=tr("ui.choose")
    )
conditions: dict[str, Any] | None = {"file_type": list(type_filter)} if type_filter else None


def shown_path(p: Passage) -> str:
    return service.shown_path(p)


def in_folder(passage: Passage) -> bool:
    # A display filter on top of the ACL-filtered results (the store matches keywords exactly).
    return not folder_filter or folder_filter.lower() in shown_path(passage).lower()


def passage_header(number: int | str, p: Passage) -> str:
    """An expander label: every part from the document is escaped."""
    parts = [f"\\[{number}\\] {safe_text.text(shown_path(p))}"]
    if p.page is not None:
        parts.append(
            f"{tr('cite.page')} {p.page}"
            + (f"–{p.page_end}" if p.page_end and p.page_end != p.page else "")
        )
    if p.heading_path:
        parts.append(" › ".join(safe_text.text(h) for h in p.heading_path))
    return " · ".join(parts)


def show_passage(p: Passage, query: str, key: str) -> None:
    st.caption(safe_text.text(shown_path(p)))
    # highlight_html escapes the passage (HTML and Markdown alike) and adds only <mark> and <br>.
    st.markdown(
        f"<div class='kura-passage'>{highlight_html(p.text, query)}</div>", unsafe_allow_html=True
    )
    if st.toggle(tr("ask.in_context"), key=f"ctx_{key}"):
        with session.shown_errors():
            for near in service.passage_neighbors(user, p):
                style = (
                    "border-left: 3px solid #e0a800; padding-left: .5em"
                    if near.chunk_index == p.chunk_index
                    else "opacity: .75"
                )
                st.markdown(
                    f"<div style='{style}'>{highlight_html(near.text, query)}</div>",
                    unsafe_allow_html=True,
                )


def show_passages(passages: list[ContextPassage], query: str, turn: int) -> None:
    for c in passages:
        with st.expander(passage_header(c.number, c.passage)):
            show_passage(c.passage, query, f"{turn}_{c.number}")


def show_evidence(answer: Answer | ReopenedTurn) -> None:
    """What the documents say, first: the statement, then the quoted sentences with their [n]."""
    statement = safe_text.text(answer.statement)
    if answer.verdict == ANSWERED:
        st.markdown(f"**{statement}**")
    elif answer.verdict == UNCERTAIN:
        st.warning(statement)
    else:
        st.info(statement)
    for quote, number in answer.quote_lines():
        st.markdown(f"> {safe_text.text(quote)} \\[{number}\\]")


def show_generated(answer: Answer) -> None:
    """The generated answer if it passed the support check; else, folded, the withheld text with
    its unsupported sentences marked, under the reason."""
    if answer.generated:
        st.markdown(f"**{safe_text.text(WORDS[answer.language]['generated'])}**")
        st.markdown(safe_text.answer(answer.generated))
    elif answer.withheld_reason:
        with st.expander(safe_text.text(answer.withheld_reason)):
            passages = {c.number: c.passage.text for c in answer.context}
            st.markdown(marked_answer(answer.text, passages, tr("ask.uncited_mark")))


def show_answer(answer: Answer) -> None:
    """The evidence, then the checked generated answer (or why it was withheld)."""
    show_evidence(answer)
    if answer.found_nothing:
        st.caption(tr("ask.nothing"))
    show_generated(answer)


def show_citations(answer: Answer | ReopenedTurn, query: str, turn: int) -> None:
    if answer.found_nothing:
        return
    sources = answer.sources()
    if sources:
        st.markdown(f"**{tr('ask.sources')}**")
        show_passages(sources, query, turn)
    also = answer.also_retrieved()
    if also:
        st.markdown(f"**{tr('ask.also_retrieved') if sources else tr('ask.related')}**")
        show_passages(also, query, turn)


def show_saved_turn(turn: ReopenedTurn, index: int) -> None:
    """A saved turn as its owner may see it now (a turn whose source is gone says so instead)."""
    show_evidence(turn)
    if turn.generated:
        st.markdown(f"**{safe_text.text(WORDS[turn.language]['generated'])}**")
        st.markdown(safe_text.answer(turn.generated))
    elif turn.withheld_reason:
        st.caption(safe_text.text(turn.withheld_reason))
    show_citations(turn, turn.question, index)
    st.caption(tr("conv.asked_at", at=time.strftime("%Y-%m-%d %H:%M", time.localtime(turn.at))))
    with st.expander(tr("ask.copy")):
        st.code(turn.shown_text, language=None, wrap_lines=True)


def show_feedback(answer: Answer, turn: int) -> None:
    done_key = f"fb_done_{turn}"
    verdict = st.feedback("thumbs", key=f"fb_{turn}")
    if verdict is not None and not st.session_state.get(done_key):
        with session.shown_errors():
            service.record_feedback(user, answer, helpful=bool(verdict))
            st.session_state[done_key] = True
    if st.session_state.get(done_key):
        st.caption(tr("ask.thanks"))


def show_answer_tools(answer: Answer, turn: int) -> None:
    if answer.first_token_s is not None and answer.total_s is not None:
        st.caption(tr("ask.timing", first=answer.first_token_s, total=answer.total_s))
    with st.expander(tr("ask.copy")):
        st.code(answer.shown_text, language=None, wrap_lines=True)
    if not answer.found_nothing:
        st.caption(tr("ask.helpful"))
        show_feedback(answer, turn)


def stream_answer(answer: Answer) -> None:
    """The evidence at once; then the asker's place in line, live, until the model is theirs;
    then the generated answer once it has been checked (never shown unchecked)."""
    with st.container():
        show_evidence(answer)
    box = st.empty()
    shown = -1
    while (place := answer.queue_position()) > 0:
        if place != shown:
            box.info(tr("ask.queue", n=place))
            shown = place
        time.sleep(0.3)
    with box.container(), st.spinner(tr("ask.writing")):
        answer.finish()
    box.empty()
    show_generated(answer)


# --- search mode --------------------------------------------------------------------------
if mode == "search":
    submitted = st.chat_input(tr("search.placeholder"), key="search_input")
    last: dict[str, Any] | None = st.session_state.get(SEARCH)
    query = submitted or (last["query"] if last else None)
    # One search (and one audit entry) per submission, or when the type filter changes what
    # to search; a rerun for a language switch or a toggle shows the results it already has.
    if query and (submitted or last is None or last["conditions"] != conditions):
        with session.shown_errors(), st.spinner(tr("ask.searching")):
            found = service.search(user, query, limit=20, conditions=conditions)
            last = {"query": query, "conditions": conditions, "passages": found}
            st.session_state[SEARCH] = last
    if query and last:
        st.markdown(f"**{safe_text.text(query)}**")
        passages = [p for p in last["passages"] if in_folder(p)]
        if not passages:
            st.info(tr("search.none"))
        else:
            st.caption(tr("search.results", n=len(passages)))
        for rank, p in enumerate(passages, start=1):
            with st.expander(
                f"{passage_header(rank, p)}  ({tr('cite.score')} {p.score:.3f})", expanded=rank <= 3
            ):
                show_passage(p, query, f"s{rank}")
    st.stop()

# --- ask mode: the open saved conversation (app/doors/ui/conversation_panel.py), then a question ---
conversation = conversation_panel.opened(service, user)
if conversation is not None:
    st.button(tr("ask.new"), key="new_conversation", on_click=conversation_panel.open_conversation, args=(None,))
    conversation_panel.manage(service, user, conversation)
turns = conversation.turns if conversation is not None else []
for turn, saved in enumerate(turns):
    st.chat_message("user").markdown(safe_text.text(saved.question))
    with st.chat_message("assistant"):
        answer = conversation_panel.live(saved.id)
        if answer is not None and saved.available:  # streamed in this tab: as it was shown, with feedback
            show_answer(answer)
            show_citations(answer, answer.standalone_question or answer.question, turn)
            show_answer_tools(answer, turn)
        else:
            show_saved_turn(saved, turn)

question = st.chat_input(tr("ask.placeholder"), key="ask_input")
if question:
    turn = len(turns)
    st.chat_message("user").markdown(safe_text.text(question))
    with st.chat_message("assistant"), session.shown_errors():
        pending: Answer | None = None
        try:
            with st.spinner(tr("ask.searching")):
                pending = service.ask(
                    user, question, conditions=conditions, keep=True, conversation_id=conversation_panel.current()
                )
        except QueueFull as exc:  # said in the tab's language, with the place it would have had
            st.warning(tr("ask.queue_full", n=exc.position, limit=exc.limit))
        if pending is not None:
            query = pending.standalone_question or question
            stream_answer(pending)
            conversation_panel.kept(pending)
            show_citations(pending, query, turn)
            show_answer_tools(pending, turn)

conversation_panel.sidebar(service, user)
