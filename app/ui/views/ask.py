"""Employees: ask a question (streamed answer with numbered citations) or search passages."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.service import Answer
from app.ui import session
from app.ui.highlight import highlight_html
from app.ui.session import tr
from app.users import EMPLOYEE
from retrieval.search import Passage

FILE_TYPES = ["pdf", "docx", "doc", "html", "htm", "md", "txt", "pptx", "xlsx", "csv"]
CHAT = "kura_chat"  # list of turns: {"question", "answer": Answer | None, "text", "query"}

user = session.require(EMPLOYEE)
service = session.service()

st.title(tr("ask.title"))
mode = st.radio(
    tr("ask.mode"),
    ["ask", "search"],
    horizontal=True,
    key="ask_mode",
    format_func=lambda m: tr("ask.mode.ask") if m == "ask" else tr("ask.mode.search"),
)
with st.expander(tr("ask.filters")):
    # The folder filter narrows search results only: an answer's context is chosen by the service.
    folder_filter = (
        st.text_input(tr("ask.filter.folder"), key="filter_folder").strip()
        if mode == "search"
        else ""
    )
    type_filter = st.multiselect(tr("ask.filter.types"), FILE_TYPES, key="filter_types")
conditions: dict[str, Any] | None = {"file_type": list(type_filter)} if type_filter else None


def in_folder(passage: Passage) -> bool:
    # A display filter on top of the ACL-filtered results (the store matches keywords exactly).
    return not folder_filter or folder_filter.lower() in passage.source_path.lower()


def passage_header(number: int | str, p: Passage) -> str:
    name = p.source_path.rsplit("/", 1)[-1] or p.title
    parts = [f"[{number}] {name}"]
    if p.page is not None:
        parts.append(
            f"{tr('cite.page')} {p.page}"
            + (f"–{p.page_end}" if p.page_end and p.page_end != p.page else "")
        )
    if p.heading_path:
        parts.append(" › ".join(p.heading_path))
    return " · ".join(parts)


def show_passage(p: Passage, query: str, key: str) -> None:
    st.caption(p.source_path)
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


def show_citations(answer: Answer, query: str, turn: int) -> None:
    if answer.found_nothing:
        return
    st.markdown(f"**{tr('ask.sources')}**")
    for citation in answer.citations():
        with st.expander(passage_header(citation.number, citation.passage)):
            show_passage(citation.passage, query, f"{turn}_{citation.number}")


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
        st.code(answer.text, language=None, wrap_lines=True)
    if not answer.found_nothing:
        st.caption(tr("ask.helpful"))
        show_feedback(answer, turn)


def conversation(history: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The turns so far, for the service to turn a follow-up into a standalone question."""
    messages: list[dict[str, str]] = []
    for item in history:
        messages.append({"role": "user", "content": item["question"]})
        messages.append({"role": "assistant", "content": item["answer"].text})
    return messages


# --- search mode --------------------------------------------------------------------------
if mode == "search":
    query = st.chat_input(tr("search.placeholder"), key="search_input")
    if query:
        st.session_state["last_search"] = query
    query = st.session_state.get("last_search")
    if query:
        st.markdown(f"**{query}**")
        passages: list[Passage] = []
        with session.shown_errors(), st.spinner(tr("ask.searching")):
            passages = [
                p
                for p in service.search(user, query, limit=20, conditions=conditions)
                if in_folder(p)
            ]
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

# --- ask mode -----------------------------------------------------------------------------
history: list[dict[str, Any]] = st.session_state.setdefault(CHAT, [])
if history and st.button(tr("ask.new"), key="new_conversation"):
    history.clear()
    st.rerun()

for turn, item in enumerate(history):
    st.chat_message("user").write(item["question"])
    with st.chat_message("assistant"):
        answer = item["answer"]
        st.markdown(answer.text)
        if answer.found_nothing:
            st.info(tr("ask.nothing"))
        show_citations(answer, item["query"], turn)
        show_answer_tools(answer, turn)

question = st.chat_input(tr("ask.placeholder"), key="ask_input")
if question:
    turn = len(history)
    st.chat_message("user").write(question)
    with st.chat_message("assistant"):
        with session.shown_errors():
            with st.spinner(tr("ask.searching")):
                answer = service.ask(
                    user, question, conditions=conditions, history=conversation(history)
                )
            query = answer.standalone_question or question
            st.write_stream(answer.tokens())
            if answer.found_nothing:
                st.info(tr("ask.nothing"))
            history.append({"question": question, "answer": answer, "query": query})
            show_citations(answer, query, turn)
            show_answer_tools(answer, turn)
