"""Admins: model status (which LLM and embedder, CPU or GPU and why) and system health."""

from __future__ import annotations

import streamlit as st

from app.ui import session
from app.ui.session import tr
from app.users import ADMIN

user = session.require(ADMIN)
service = session.service()


def size(n: int | None) -> str:
    if n is None:
        return "–"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


st.title(tr("system.title"))
st.subheader(tr("system.health"))
with session.shown_errors(), st.spinner():
    health = service.health(user)
    cols = st.columns(4)
    cols[0].metric("documents", health["documents"])
    cols[1].metric("chunks", health["chunks"] if health["chunks"] is not None else "–")
    cols[2].metric("store", size(health["store_bytes"]))
    cols[3].metric("disk free", size(health["disk_free_bytes"]))
    st.caption(
        f"data: {health['data_dir']} · files {health['files']} · "
        f"audit entries {health['audit_entries']}"
    )

st.subheader(tr("system.models"))
if st.button(tr("system.load_models"), key="load_models") or st.session_state.get("models_shown"):
    st.session_state["models_shown"] = True
    with session.shown_errors(), st.spinner(tr("ask.loading")):
        status = service.model_status(user)
        st.json(status)
