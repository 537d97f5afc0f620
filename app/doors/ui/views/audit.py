"""Auditors: the query log with filters, chain verification, export to CSV / JSON Lines (each
export written and audited by the service)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

import streamlit as st

from app.audit.log import read_export
from app.doors import safe_text
from app.doors.ui import session
from app.doors.ui.audit_view import entry_date, filter_entries, to_csv
from app.doors.ui.session import tr
from app.identity.users import AUDITOR

user = session.require(AUDITOR)
service = session.service()
ENTRIES = "kura_audit_entries"

st.title(tr("audit.title"))
# Reading the log is itself audited; load once per visit (or on Reload), not on every click.
if ENTRIES not in st.session_state or st.button(tr("audit.reload"), key="audit_reload"):
    with session.shown_errors(), st.spinner():
        st.session_state[ENTRIES] = service.audit_entries(user)
entries: list[dict] = st.session_state.get(ENTRIES, [])

if st.button(tr("audit.verify"), key="audit_verify"):
    with session.shown_errors(), st.spinner():
        problems = service.verify_audit(user)
        if problems:
            st.error(tr("audit.broken", n=len(problems)))
            st.dataframe(
                [{tr("audit.col.entry"): p.entry, tr("audit.col.problem"): p.message} for p in problems],
                hide_index=True,
            )
        else:
            st.success(tr("audit.intact", n=len(entries) + 1))

days = [d for d in (entry_date(e) for e in entries) if d]
c1, c2, c3, c4, c5 = st.columns([2, 2, 1, 1, 3])
users = c1.multiselect(
    tr("audit.user"),
    sorted({str(e.get("user")) for e in entries}),
    key="audit_users",
    placeholder=tr("ui.choose"),
)
actions = c2.multiselect(
    tr("audit.action"),
    sorted({str(e.get("action")) for e in entries}),
    key="audit_actions",
    placeholder=tr("ui.choose"),
)
start = c3.date_input(tr("audit.from"), value=min(days) if days else None, key="audit_from")
end = c4.date_input(tr("audit.to"), value=max(days) if days else None, key="audit_to")
text = c5.text_input(tr("audit.text"), key="audit_text")

shown = filter_entries(entries, set(users), set(actions), start, end, text)
st.caption(tr("audit.count", n=len(shown), total=len(entries)))

# An export is the service's: it writes the file and audits who exported what (format, filters,
# entry count), so nothing leaves this page unaudited. It takes the filters the service knows
# (one user, one action, the dates); the bytes live in this run only, never in session state.
EXPORT_FORMATS = {"csv": tr("audit.export.csv"), "jsonl": tr("audit.export.jsonl")}
e1, e2 = st.columns([2, 4])
fmt = e1.radio(
    tr("audit.export.format"), list(EXPORT_FORMATS), format_func=EXPORT_FORMATS.__getitem__, key="audit_fmt"
)
expressible = len(users) <= 1 and len(actions) <= 1
if not expressible:
    e2.info(tr("audit.export.one_each"))
elif text.strip():
    e2.caption(tr("audit.export.no_text"))
if e1.button(tr("audit.export.prepare"), key="audit_prepare", disabled=not expressible):
    with session.shown_errors(), st.spinner(), TemporaryDirectory(prefix="kura-audit-") as private:
        dest = Path(private) / f"kura-audit.{fmt}"
        count = service.export_audit(
            user,
            dest,
            fmt,
            who=next(iter(users), None),
            action=next(iter(actions), None),
            # Dates left at the loaded log's first and last day mean "no limit": the archive too.
            since=start.isoformat() if start and start != min(days, default=None) else None,
            until=(end + timedelta(days=1)).isoformat() if end and end != max(days, default=None) else None,
        )
        # CSV for spreadsheets: the page's columns, with formula-like cells escaped.
        data = to_csv(read_export(dest)) if fmt == "csv" else dest.read_bytes()
        e2.success(tr("audit.export.ready", n=count))
        e2.download_button(
            tr(f"audit.{fmt}"),
            data,
            f"kura-audit.{fmt}",
            "text/csv" if fmt == "csv" else "application/x-ndjson",
            key="audit_download",
            on_click="ignore",
        )

st.dataframe(
    [
        {
            tr("audit.col.seq"): e.get("seq"),
            tr("audit.col.time"): e.get("time"),
            tr("audit.col.user"): e.get("user"),
            tr("audit.col.action"): e.get("action"),
            tr("audit.col.question"): e.get("query", ""),
            tr("audit.col.documents"): len(e.get("documents") or []),
        }
        for e in shown
    ],
    hide_index=True,
    width="stretch",
)

detailed = [e for e in shown[:50] if e.get("action") in ("ask", "query", "answer", "search")]
names: dict[str, list] = {}
with session.shown_errors():
    names = service.audited_documents(user, [d for e in detailed for d in e.get("documents") or []])


def document_lines(doc_ids: list[str]) -> str:
    """Each document id as the files and groups it has now (or a note that it was deleted), as
    a Markdown list with every path escaped."""
    lines = []
    for doc_id in doc_ids:
        files = names.get(doc_id) or []
        groups = ", ".join(sorted({g for f in files for g in f.groups}))
        where = "; ".join(safe_text.text(f.path) for f in files) or tr("audit.doc.gone")
        lines.append(
            f"- {where} · {tr('audit.doc.groups')}: {safe_text.text(groups or '–')} · `{doc_id[:12]}`"
        )
    return "\n".join(lines)


for e in detailed:
    # The label holds the employee's own words: escaped, so they show as typed.
    label = f"#{e.get('seq')} {e.get('time')} · {e.get('user')} · {e.get('action')}: {str(e.get('query', ''))[:80]}"
    with st.expander(safe_text.text(label)):
        st.markdown(f"**{tr('audit.question')}**")
        st.text(e.get("query", ""))
        if e.get("answer"):
            st.markdown(f"**{tr('audit.answer')}**")
            st.text(e.get("answer", ""))
        st.markdown(f"**{tr('audit.documents')}**")
        st.markdown(document_lines(list(e.get("documents") or [])))
        if e.get("cited"):
            st.markdown(f"**{tr('audit.cited')}**")
            st.text("\n".join(str(c) for c in e["cited"]))
