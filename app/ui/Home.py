"""kura's browser UI (minimal page: ask a question, stream the answer, show citations)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # streamlit runs this file as a script

import streamlit as st  # noqa: E402

from app import offline  # noqa: E402,F401
from app.service import KuraService  # noqa: E402
from app.users import local_operator  # noqa: E402


@st.cache_resource
def service() -> KuraService:
    return KuraService()


st.set_page_config(page_title="kura", page_icon="蔵")
st.title("kura 蔵")
question = st.chat_input("Ask your documents / 文書に質問する")
if question:
    st.chat_message("user").write(question)
    with st.chat_message("assistant"):
        with st.spinner("searching…"):
            answer = service().ask(local_operator(), question, as_admin=True)
        st.write_stream(answer.tokens())
        for citation in answer.citations():
            p = citation.passage
            with st.expander(f"[{citation.number}] {p.location}"):
                st.write(p.text)
