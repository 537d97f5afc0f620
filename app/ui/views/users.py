"""Admins: accounts, roles and groups (stored by app/accounts.py, every change audited)."""

from __future__ import annotations

import streamlit as st

from app.ui import session
from app.ui.session import tr
from app.users import ADMIN, ROLES

admin = session.require(ADMIN)
accounts = session.accounts()

st.title(tr("users.title"))
users = accounts.list()
st.dataframe(
    [
        {
            tr("users.col.name"): u.name,
            tr("users.col.roles"): ", ".join(sorted(u.roles)),
            tr("users.col.groups"): ", ".join(u.groups),
            tr("users.col.status"): tr("users.disabled") if accounts.is_disabled(u.name) else "",
        }
        for u in users
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
                accounts.add(
                    name.strip(),
                    password,
                    roles,
                    groups,
                    must_change_password=must_change,
                    by=admin.name,
                )
                st.success(tr("users.created", name=name.strip()))

if users:
    st.subheader(tr("users.edit"))
    chosen = st.selectbox(tr("users.name"), [u.name for u in users], key="edit_user")
    target = accounts.get(chosen)
    roles = st.multiselect(
        tr("users.roles"), sorted(ROLES), default=sorted(target.roles), key=f"roles_{chosen}"
    )
    groups = st.text_input(
        tr("users.groups"), value=", ".join(target.groups), key=f"groups_{chosen}"
    )
    if st.button(tr("users.save"), key="save_user"):
        with session.shown_errors():
            accounts.set_roles(chosen, roles, by=admin.name)
            accounts.set_groups(chosen, groups, by=admin.name)
            st.success(tr("users.saved"))
    col1, col2, col3 = st.columns(3)
    with col1:
        disabled = accounts.is_disabled(chosen)
        if st.button(tr("users.enable") if disabled else tr("users.disable"), key="toggle_user"):
            with session.shown_errors():
                (accounts.enable if disabled else accounts.disable)(chosen, by=admin.name)
                st.rerun()
    with col2:
        if st.button(tr("users.unlock"), key="unlock_user"):
            with session.shown_errors():
                accounts.unlock(chosen, by=admin.name)
                st.success(tr("users.saved"))
    with col3:
        new_password = st.text_input(tr("users.reset"), type="password", key=f"reset_{chosen}")
        if st.button(tr("users.reset"), key="reset_user") and new_password:
            with session.shown_errors():
                accounts.set_password(chosen, new_password, must_change=True, by=admin.name)
                st.success(tr("users.saved"))
