"""Auditors: the audit log, a page at a time. Filters (people, actions, dates, words of the
question), chain verification, and export to CSV / JSON Lines (each written and audited by the
service). The page
asks the service for the newest matching entries (from the analytics index, read back from the
log by position), never the whole log; each distinct view is audited.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

import streamlit as st

from app.audit.log import read_export
from app.doors import safe_text
from app.doors.ui import session
from app.doors.ui.audit_view import to_csv
from app.doors.ui.session import tr
from app.identity.users import AUDITOR, AccessDenied

user = session.signed_in(AUDITOR)
service = session.service()
CHOICES, PAGE = "kura_audit_choices", "kura_audit_page"  # the filters' options; the last page shown
ROWS = 500


def load(key: tuple) -> object:
    """The page of entries for these filters: asked for (and audited) once per distinct filter."""
    held = st.session_state.get(PAGE)
    if held is None or held[0] != key:
        who, actions, since, until, text = key
        st.session_state[PAGE] = (key, service.browse_audit(user, who, actions, since, until, text, ROWS))
    return st.session_state[PAGE][1]


try:  # the service checks the role: anyone but an auditor is refused, and the refusal audited
    reload = st.session_state.pop("audit_reload_clicked", False)
    if CHOICES not in st.session_state or reload:
        st.session_state.pop(PAGE, None)
        first = load(((), (), None, None, ""))
        st.session_state[CHOICES] = (first.people, first.actions, first.first_day, first.last_day)
except AccessDenied:
    session.refuse(AUDITOR)
people, known_actions, first_day, last_day = st.session_state[CHOICES]

st.title(tr("audit.title"))
if st.button(tr("audit.reload"), key="audit_reload"):
    st.session_state["audit_reload_clicked"] = True
    st.rerun()

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
            st.success(tr("audit.intact.chain"))

low = date.fromisoformat(first_day) if first_day else None
high = date.fromisoformat(last_day) if last_day else None
c1, c2, c3, c4, c5 = st.columns([2, 2, 1, 1, 3])
users = c1.multiselect(tr("audit.user"), people, key="audit_users", placeholder=tr("ui.choose"))
actions = c2.multiselect(tr("audit.action"), known_actions, key="audit_actions", placeholder=tr("ui.choose"))
start = c3.date_input(tr("audit.from"), value=low, key="audit_from")
end = c4.date_input(tr("audit.to"), value=high, key="audit_to")
text = c5.text_input(tr("audit.text"), key="audit_text")
# Dates left at the log's first and last day mean "no limit" (the archive too, for an export).
since = start.isoformat() if start and start != low else None
until = end.isoformat() if end and end != high else None

detailed: list[dict] = []
names: dict[str, list] = {}
with session.shown_errors():
    view = load((tuple(users), tuple(actions), since, until, text.strip()))
    st.caption(tr("audit.count", n=min(view.total, ROWS), total=view.total))

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
        with st.spinner(), TemporaryDirectory(prefix="kura-audit-") as private:
            dest = Path(private) / f"kura-audit.{fmt}"
            count = service.export_audit(
                user, dest, fmt, who=next(iter(users), None), action=next(iter(actions), None), since=since,
                until=(end + timedelta(days=1)).isoformat() if until and end else None,
            )
            # CSV for spreadsheets: the page's columns, with formula-like cells escaped.
            data = to_csv(read_export(dest)) if fmt == "csv" else dest.read_bytes()
            e2.success(tr("audit.export.ready", n=count))
            e2.download_button(
                tr(f"audit.{fmt}"), data, f"kura-audit.{fmt}", "text/csv" if fmt == "csv" else "application/x-ndjson",
                key="audit_download", on_click="ignore",
            )

    shown = view.entries
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
