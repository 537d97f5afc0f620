"""Auditors: the workbench (issue 27). Overview of a period with charts, who saw what (a
document, a folder, a group or a person), alerts and their rules, a group's monthly report, and
the entry a row links to (`?seq=N`) with its chain proof.
Every figure comes from the service's auditor use case (app/service/audit_analytics.py), which
refuses anyone else (audited) and audits each view; the page keeps only the last result of
each view (a capped, small answer), never the log.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import streamlit as st

from app.doors import safe_text
from app.doors.ui import session
from app.doors.ui.audit_view import entry_link, recent_months
from app.doors.ui.session import tr
from app.identity.users import AUDITOR, AccessDenied

auditor = session.signed_in(AUDITOR)
service = session.service()
VIEWS = ("overview", "who_saw", "alerts", "reports")


def cached(view: str, key: tuple, load: Callable[[], Any]) -> Any:
    """The view's last result if asked with the same inputs, else a fresh (audited) one: a
    rerun (a click elsewhere) neither asks the service again nor adds an audit entry."""
    slot = f"kura_wb_{view}"
    held = st.session_state.get(slot)
    if held is None or held[0] != key:
        st.session_state[slot] = (key, load())
    return st.session_state[slot][1]


def period(view: str) -> tuple[str | None, str | None]:
    today = date.today()
    c1, c2 = st.columns(2)
    start = c1.date_input(tr("wb.from"), value=today - timedelta(days=30), key=f"wb_{view}_from")
    end = c2.date_input(tr("wb.to"), value=today, key=f"wb_{view}_to")
    return (start.isoformat() if start else None), (end.isoformat() if end else None)


def ranked(rows: list, name: str) -> None:
    if rows:
        st.bar_chart({name: {k: n for k, n in rows}}, horizontal=True, height=max(160, 28 * len(rows)))
    else:
        st.caption(tr("wb.none"))


def entry_view(seq: int) -> None:
    """The entry a row links to (`?seq=N`), as the log holds it, and whether its chain position holds."""
    proof = cached("entry", (seq,), lambda: service.audit_entry(auditor, seq))
    holds = proof.authentic and proof.linked and proof.next_linked is not False
    (st.success if holds else st.error)(
        tr("audit.entry.proof", seq=seq, authentic=tr(f"audit.yes.{proof.authentic}"),
           linked=tr(f"audit.yes.{proof.linked}"), next=tr(f"audit.yes.{proof.next_linked}"))
    )
    st.code(json.dumps(proof.entry, ensure_ascii=False, indent=1), language="json")
    if st.button(tr("wb.entry.close"), key="wb_entry_close"):
        del st.query_params["seq"]
        st.rerun()


def overview_view() -> None:
    since, until = period("overview")
    found = cached("overview", (since, until), lambda: service.audit_overview(auditor, since, until))
    totals = found.totals
    cols = st.columns(6)
    for col, (label, value) in zip(cols, (
        ("wb.m.questions", totals["questions"]), ("wb.m.searches", totals["searches"]),
        ("wb.m.refusals", totals["refused"] + totals["denied"]),
        ("wb.m.nothing", "–" if found.nothing_share is None else f"{found.nothing_share:.0%}"),
        ("wb.m.unsupported", "–" if found.unsupported_share is None else f"{found.unsupported_share:.0%}"),
        ("wb.m.feedback", f"{totals['helpful']} / {totals['unhelpful']}"),
    ), strict=True):
        col.metric(tr(label), value)
    st.subheader(tr("wb.per_day"))
    if found.days:
        st.bar_chart(
            {tr(f"wb.m.{k}"): {d["day"]: d[k] for d in found.days} for k in ("questions", "searches", "refused",
                                                                            "denied")},
            stack=False,
        )
    else:
        st.caption(tr("wb.none"))
    c1, c2, c3 = st.columns(3)
    for col, title, rows in ((c1, "wb.per_user", found.users), (c2, "wb.per_group", found.groups),
                             (c3, "wb.per_department", found.departments)):
        with col:
            st.markdown(f"**{tr(title)}**")
            ranked(rows, tr("wb.count"))
    st.subheader(tr("wb.busiest"))
    st.dataframe([{tr("wb.col.document"): found.names.get(d) or tr("audit.doc.gone"), tr("wb.col.id"): d[:12],
                   tr("wb.col.shown"): n} for d, n in found.documents], hide_index=True, width="stretch")


def who_saw_view() -> None:
    kinds = {"document": tr("wb.kind.document"), "folder": tr("wb.kind.folder"), "group": tr("wb.kind.group"),
             "person": tr("wb.kind.person")}
    c1, c2 = st.columns([1, 3])
    kind = c1.selectbox(tr("wb.kind"), list(kinds), format_func=kinds.__getitem__, key="wb_kind")
    target = c2.text_input(tr(f"wb.target.{kind}"), key="wb_target").strip()
    since, until = period("who_saw")
    if not target:
        st.info(tr("wb.who_saw.hint"))
        return
    found = cached("who_saw", (kind, target, since, until),
                   lambda: service.who_saw(auditor, **{kind: target}, since=since, until=until))
    st.caption(tr("wb.who_saw.count", n=found.total, shown=len(found.rows), people=len(found.people)))
    st.dataframe(
        [{tr("wb.col.entry"): entry_link(r.seq), tr("wb.col.time"): r.time, tr("wb.col.person"): r.user,
          tr("wb.col.action"): r.action, tr("wb.col.document"): found.names.get(r.doc_id) or r.doc_id[:12],
          tr("wb.col.groups"): r.groups, tr("wb.col.question"): r.query} for r in found.rows],
        hide_index=True, width="stretch", key="wb_who_saw_rows",
        column_config={tr("wb.col.entry"): st.column_config.LinkColumn(display_text=r"seq=(\d+)")},
    )
    st.subheader(tr("wb.people"))
    st.table([{tr("wb.col.person"): p, tr("wb.col.shown"): n} for p, n in found.people])  # a short list, as text
    if kind == "person":
        st.subheader(tr("wb.groups_seen"))
        ranked(found.groups, tr("wb.count"))
        st.subheader(tr("wb.documents_seen"))
        st.dataframe([{tr("wb.col.document"): found.names.get(d) or d[:12], tr("wb.col.shown"): n,
                       tr("wb.col.first"): first, tr("wb.col.last"): last} for d, n, first, last in found.documents],
                     hide_index=True, width="stretch")


def alerts_view() -> None:
    rules, raised = cached("alerts", (st.session_state.get("wb_alerts_round", 0),),
                           lambda: service.audit_alerts(auditor))
    if st.button(tr("wb.alerts.check"), key="wb_alerts_check"):
        st.session_state["wb_alerts_round"] = st.session_state.get("wb_alerts_round", 0) + 1
        st.rerun()
    st.caption(tr("wb.alerts.count", n=len(raised)))
    for alert in raised[:5]:  # the newest, in words (a name in them is escaped)
        rule = tr(f"wb.rule.{alert.get('rule')}")
        st.warning(f"{rule}: {safe_text.text(alert.get('message', ''))}")
    st.dataframe(
        [{tr("wb.col.entry"): entry_link(a["seq"]) if a.get("seq") else tr("wb.alerts.unrecorded"),
          tr("wb.col.time"): a.get("time"),
          tr("wb.col.rule"): tr(f"wb.rule.{a.get('rule')}"), tr("wb.col.subject"): a.get("subject"),
          tr("wb.col.count"): a.get("count"), tr("wb.col.alert"): a.get("message")} for a in raised],
        hide_index=True, width="stretch", key="wb_alert_rows",
        column_config={tr("wb.col.entry"): st.column_config.LinkColumn(display_text=r"seq=(\d+)")},
    )
    st.subheader(tr("wb.rules"))
    by_name = {r.name: r for r in rules}
    name = st.selectbox(tr("wb.rule"), list(by_name), format_func=lambda n: tr(f"wb.rule.{n}"), key="wb_rule")
    rule = by_name[name]
    c1, c2, c3 = st.columns(3)
    threshold = c1.number_input(tr("wb.threshold"), 1, 100_000, rule.threshold, key=f"wb_threshold_{name}")
    window = c2.number_input(tr("wb.window"), 1, 31 * 86400, rule.window_s, key=f"wb_window_{name}")
    enabled = c3.checkbox(tr("wb.enabled"), rule.enabled, key=f"wb_enabled_{name}")
    if st.button(tr("wb.rule.save"), key="wb_rule_save"):
        service.set_alert_rule(auditor, name, int(threshold), int(window), enabled, rule.params)
        st.session_state["wb_alerts_round"] = st.session_state.get("wb_alerts_round", 0) + 1
        st.success(tr("wb.rule.saved", rule=tr(f"wb.rule.{name}")))


def reports_view() -> None:
    c1, c2, c3 = st.columns([2, 2, 1])
    group = c1.text_input(tr("wb.report.group"), key="wb_report_group").strip()
    month = c2.selectbox(tr("wb.report.month"), recent_months(date.today(), 13), key="wb_report_month")
    fmt = c3.radio(tr("wb.report.format"), ["csv", "html"], key="wb_report_fmt", format_func=str.upper)
    if not st.button(tr("wb.report.prepare"), key="wb_report_prepare", disabled=not group):
        st.caption(tr("wb.report.hint"))
        return
    with st.spinner():
        # The bytes live in this run only, never in session state; producing them is audited.
        made = service.audit_report(auditor, group, month, fmt, session.lang())
    cols = st.columns(len(made.figures))
    for col, (key, value) in zip(cols, made.figures.items(), strict=True):
        col.metric(tr(f"wb.report.{key}"), value)
    st.download_button(tr(f"wb.report.download.{fmt}"), made.body, made.filename, made.media_type,
                       key="wb_report_download", on_click="ignore")


page = st.empty()  # cleared if the service refuses: a refused user sees the refusal only
try:  # the service checks the role: anyone but an auditor is refused, and the refusal audited
    with page.container():
        st.title(tr("wb.title"))
        if (seq := st.query_params.get("seq", "")).isdigit():
            entry_view(int(seq))
        chosen = st.segmented_control(tr("wb.view"), VIEWS, format_func=lambda v: tr(f"wb.view.{v}"),
                                      default="overview", key="wb_view") or "overview"
        {"overview": overview_view, "who_saw": who_saw_view, "alerts": alerts_view,
         "reports": reports_view}[chosen]()
except AccessDenied:
    page.empty()
    session.refuse(AUDITOR)
except (ValueError, LookupError) as exc:  # a bad date, group or month: the message says what to change
    st.error(safe_text.text(str(exc)))
