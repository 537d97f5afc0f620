"""Personal API keys: every signed-in user's own keys (create, list, revoke); admins also see and
revoke everyone's. The service (app/service/people.py) checks each scope against the owner's
roles and audits every creation and revocation.

A new key is shown once, in the run that created it: it is never put in session state or a log,
so the next rerun no longer shows it (only its id, which is public, stays visible).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from app.doors.ui import session
from app.doors.ui.session import tr
from app.identity.keys import ADMIN_SCOPE, AUDIT_SCOPE, READ, ApiKeyRecord
from app.identity.users import ADMIN, AUDITOR

user = session.signed_in()
service = session.service()
is_admin = ADMIN in user.roles

# The scopes this account may hold: a key never carries more than its owner's roles.
SCOPES = {READ: tr("keys.scope.read")}
if is_admin:
    SCOPES[ADMIN_SCOPE] = tr("keys.scope.admin")
if AUDITOR in user.roles:
    SCOPES[AUDIT_SCOPE] = tr("keys.scope.audit")


def when(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch)) if epoch else ""


def state(record: ApiKeyRecord, now: float) -> str:
    if record.revoked is not None:
        return tr("keys.state.revoked", at=when(record.revoked))
    if not record.active(now):
        return tr("keys.state.expired")
    return tr("keys.state.active")


def show_table(area: DeltaGenerator, records: Sequence[ApiKeyRecord], with_owner: bool) -> None:
    """Dataframe cells are plain text: a key's name shows exactly as its owner typed it."""
    if not records:
        area.info(tr("keys.none"))
        return
    now = time.time()
    area.dataframe(
        [
            {
                tr("keys.col.id"): r.id,
                **({tr("keys.col.owner"): r.owner} if with_owner else {}),
                tr("keys.col.name"): r.name,
                tr("keys.col.scope"): r.scope,
                tr("keys.col.created"): when(r.created),
                tr("keys.col.expires"): when(r.expires) or tr("keys.never"),
                tr("keys.col.last_used"): when(r.last_used),
                tr("keys.col.state"): state(r, now),
            }
            for r in records
        ],
        hide_index=True,
        width="stretch",
    )


def revoke_picker(area: DeltaGenerator, records: Sequence[ApiKeyRecord], key: str) -> bool:
    """A choice of the active keys and a Revoke button; True when a key was revoked."""
    now = time.time()
    labels = {r.id: f"{r.id} · {r.owner} · {r.name}" for r in records if r.active(now)}
    if not labels:
        return False
    # Option labels are plain text (not Markdown), so the name needs no escaping here.
    chosen = area.selectbox(tr("keys.revoke_pick"), list(labels), format_func=labels.__getitem__, key=f"{key}_pick")
    if not area.button(tr("keys.revoke"), key=f"{key}_revoke"):
        return False
    with session.shown_errors():
        record = service.revoke_api_key(user, chosen)
        area.success(tr("keys.revoked", id=record.id, name=record.name, owner=record.owner))
        return True
    return False


def create_form() -> None:
    with st.form("create_key", clear_on_submit=True):
        name = st.text_input(tr("keys.name"), key="key_name", max_chars=100)
        scope = st.selectbox(tr("keys.scope"), list(SCOPES), format_func=SCOPES.__getitem__, key="key_scope")
        days = st.number_input(tr("keys.expires_days"), min_value=0, max_value=3650, value=90, step=1, key="key_days")
        submitted = st.form_submit_button(tr("keys.create"), type="primary")
    if not submitted:
        return
    with session.shown_errors():
        record, secret = service.create_api_key(user, scope, name.strip(), float(days) if days else None)
        st.success(tr("keys.created", id=record.id, name=record.name))
        st.warning(tr("keys.once"))
        st.code(secret, language=None)  # this run's page only; copy button included


st.title(tr("keys.title"))
st.caption(tr("keys.intro"))
st.subheader(tr("keys.new"))
create_form()

# Tables are filled last, so that a revocation made below shows in them in the same run.
st.subheader(tr("keys.yours"))
own_table, own_actions = st.empty(), st.container()
if is_admin:
    st.subheader(tr("keys.everyone"))
    all_table, all_actions = st.empty(), st.container()
own = service.list_api_keys(user)
everyone = service.list_api_keys(user, everyone=True) if is_admin else []
changed = revoke_picker(own_actions, own, "own_key")
if is_admin:
    changed = revoke_picker(all_actions, everyone, "any_key") or changed
if changed:
    own = service.list_api_keys(user)
    everyone = service.list_api_keys(user, everyone=True) if is_admin else []
show_table(own_table, own, with_owner=False)
if is_admin:
    show_table(all_table, everyone, with_owner=True)
