"""Admins: accounts, roles and groups. Every read and change goes through the service's People
use case (app/service/people.py), which checks the admin role and audits the change."""

from __future__ import annotations

import time

import streamlit as st

from app.doors.ui import session
from app.doors.ui.session import tr
from app.identity.users import ADMIN, ROLES, AccessDenied

admin = session.signed_in(ADMIN)
service = session.service()
try:  # the service checks the role: a non-admin's attempt is refused and audited
    infos = service.user_infos(admin)
except AccessDenied:
    session.refuse(ADMIN)


def group_list(text: str) -> list[str]:
    """'hr, managers' -> ['hr', 'managers']; the account store checks each name."""
    return [g.strip() for g in text.split(",") if g.strip()]


st.title(tr("users.title"))
st.dataframe(
    [
        {
            tr("users.col.name"): i.user.name,
            tr("users.col.source"): i.source.upper() if i.source != "local" else "local",
            tr("users.col.roles"): ", ".join(sorted(i.user.roles)),
            tr("users.col.groups"): ", ".join(i.user.groups),
            tr("users.col.synced"): ", ".join(i.synced_groups) if i.source != "local" else "",
            tr("users.col.extra"): ", ".join(i.extra_groups),
            tr("users.col.last_synced"): (
                time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(i.last_synced)) if i.last_synced else ""
            ),
            tr("users.col.status"): tr("users.disabled") if i.disabled else "",
        }
        for i in infos
    ],
    hide_index=True,
    width="stretch",
)

with st.expander(tr("users.add")):
    with st.form("add_user", clear_on_submit=True):
        name = st.text_input(tr("users.name"), key="new_name")
        password = st.text_input(tr("users.password"), type="password", key="new_password")
        roles = st.multiselect(
            tr("users.roles"), sorted(ROLES), default=["employee"], key="new_roles"
        )
        groups = st.text_input(tr("users.groups"), key="new_groups")
        must_change = st.checkbox(tr("users.must_change"), value=True, key="new_must_change")
        if st.form_submit_button(tr("users.create"), type="primary"):
            with session.shown_errors():
                service.add_user(
                    admin, name.strip(), password, roles, group_list(groups), must_change_password=must_change
                )
                st.success(tr("users.created", name=name.strip()))

if infos:
    st.subheader(tr("users.edit"))
    chosen = st.selectbox(tr("users.name"), [i.user.name for i in infos], key="edit_user")
    info = service.user_info(admin, chosen)
    target = info.user
    if info.source == "local":
        roles = st.multiselect(
            tr("users.roles"), sorted(ROLES), default=sorted(target.roles), key=f"roles_{chosen}"
        )
        groups = st.text_input(
            tr("users.groups"), value=", ".join(target.groups), key=f"groups_{chosen}"
        )
        if st.button(tr("users.save"), key="save_user"):
            with session.shown_errors():
                service.set_user_roles(admin, chosen, roles)
                service.set_user_groups(admin, chosen, group_list(groups))
                st.success(tr("users.saved"))
    else:  # a directory account: its roles and groups are the directory's; only an audited extra
        st.info(tr("users.directory_managed", name=chosen, source=info.source.upper()))
        extra = st.text_input(
            tr("users.extra_groups"), value=", ".join(info.extra_groups), key=f"extra_{chosen}"
        )
        if st.button(tr("users.save_extra"), key="save_extra"):
            with session.shown_errors():
                service.set_user_extra_groups(admin, chosen, group_list(extra))
                st.success(tr("users.saved"))
    col1, col2, col3 = st.columns(3)
    with col1:
        if st.button(tr("users.enable") if info.disabled else tr("users.disable"), key="toggle_user"):
            with session.shown_errors():
                service.set_user_disabled(admin, chosen, not info.disabled)
                st.rerun()
    with col2:
        if st.button(tr("users.unlock"), key="unlock_user"):
            with session.shown_errors():
                service.unlock_user(admin, chosen)
                st.success(tr("users.saved"))
    with col3:
        if info.source == "local":  # a directory account's password is the directory's
            new_password = st.text_input(tr("users.reset"), type="password", key=f"reset_{chosen}")
            if st.button(tr("users.reset"), key="reset_user") and new_password:
                with session.shown_errors():
                    service.reset_password(admin, chosen, new_password, must_change=True)
                    st.success(tr("users.saved"))
    with st.expander(tr("users.delete")):  # the account and, at once, its saved conversations (issue 26)
        sure = st.checkbox(tr("users.delete.confirm", name=chosen), key=f"delete_sure_{chosen}")
        if st.button(tr("users.delete"), key="delete_user", disabled=not sure):
            with session.shown_errors():
                count = service.delete_user(admin, chosen)
                st.toast(tr("users.deleted", name=chosen, n=count))
                st.rerun()
