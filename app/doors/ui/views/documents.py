"""Admins: every ingested document with status, size, chunks, groups; re-ingest, delete, regroup."""

from __future__ import annotations

import time

import streamlit as st

from app.doors.ui import session
from app.doors.ui.ingest_report import show_report
from app.doors.ui.session import tr
from app.identity.users import ADMIN, parse_groups

user = session.require(ADMIN)
service = session.service()

st.title(tr("docs.title"))
records = []
with session.shown_errors():
    records = service.documents(user)
if not records:
    st.info(tr("docs.none"))
else:
    files_of = {d.doc_id: service.document_files(user, d.doc_id) for d in records}
    rows = []
    for d in records:
        files = files_of[d.doc_id]
        rows.append(
            {
                tr("docs.col.title"): d.title,
                tr("docs.col.status"): tr("docs.status.indexed") if files else tr("docs.status.orphaned"),
                tr("docs.col.type"): d.file_type,
                tr("docs.col.size"): round(d.size / 1024, 1),
                tr("docs.col.pages"): d.page_count,
                tr("docs.col.chunks"): d.chunk_count,
                tr("docs.col.groups"): ", ".join(sorted({g for f in files for g in f.groups})),
                tr("docs.col.ingested"): time.strftime("%Y-%m-%d %H:%M", time.localtime(d.ingested_at)),
                tr("docs.col.paths"): "\n".join(f.path for f in files),
                tr("docs.col.id"): d.doc_id[:12],
            }
        )
    st.dataframe(rows, hide_index=True, width="stretch")

    by_id = {d.doc_id: d for d in records}
    doc_id = st.selectbox(
        tr("docs.pick"),
        list(by_id),
        key="doc_pick",
        format_func=lambda i: f"{by_id[i].title} ({i[:8]})",
    )
    if doc_id:
        current = sorted({g for f in files_of[doc_id] for g in f.groups})
        left, middle, right = st.columns(3)
        with left:
            new_groups = st.text_input(
                tr("docs.groups"), value=", ".join(current), key=f"groups_{doc_id}"
            )
            if st.button(tr("docs.save_groups"), key="save_groups"):
                with session.shown_errors():
                    changed = service.set_document_groups(user, doc_id, parse_groups(new_groups))
                    st.success(tr("docs.groups_saved", n=changed))
        with middle:
            if st.button(tr("docs.reingest"), key="reingest"):
                with session.shown_errors(), st.spinner(tr("upload.loading")):
                    for report in service.reingest(user, doc_id):
                        show_report(report)
        with right:
            sure = st.checkbox(tr("docs.confirm"), key=f"confirm_{doc_id}")
            if st.button(tr("docs.delete"), disabled=not sure, key="delete"):
                with session.shown_errors():
                    service.delete(user, doc_id)
                    st.success(tr("docs.deleted"))
                    st.rerun()

st.subheader(tr("docs.feedback"))
with session.shown_errors():
    feedback = service.feedback(user)
    if not feedback:
        st.caption(tr("docs.no_feedback"))
    else:
        st.dataframe(
            [
                {
                    tr("feedback.col.when"): time.strftime("%Y-%m-%d %H:%M", time.localtime(f.at)),
                    tr("feedback.col.user"): f.user,
                    tr("feedback.col.helpful"): "👍" if f.helpful else "👎",
                    tr("feedback.col.question"): f.question,
                    tr("feedback.col.answer"): f.answer,
                    tr("feedback.col.cited"): "; ".join(f.cited),
                }
                for f in feedback
            ],
            hide_index=True,
            width="stretch",
        )
