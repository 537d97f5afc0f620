"""One cited passage, opened from a citation link (`/passage?chunk=<chunk id>`, the url of an
OpenAI `url_citation`). The service fetches it again with the reader's current groups inside the
query and audits the view; a reader who may not read it sees nothing about it, not even its file
name, and the refusal is audited too."""

from __future__ import annotations

import streamlit as st

from app.doors import safe_text
from app.doors.ui import session
from app.doors.ui.session import tr
from app.identity.users import EMPLOYEE
from app.service import DocumentNotFound

user = session.require(EMPLOYEE)
service = session.service()
chunk_id = str(st.query_params.get("chunk", ""))[:100]

st.title(tr("passage.title"))
try:
    passage = service.passage(user, chunk_id) if chunk_id else None
except DocumentNotFound:
    passage = None
if passage is None:
    st.info(tr("passage.none"))
else:
    where = passage.location + (" › " + " › ".join(passage.heading_path) if passage.heading_path else "")
    st.caption(safe_text.text(where))
    st.markdown(safe_text.text(passage.text))
