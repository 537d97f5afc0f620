"""Admins: model status (which LLM and embedder, CPU or GPU and why), system health, the backup
schedule with the age of the newest good backup (red when older than twice the schedule), and a
backup taken by this process (it owns the embedded store, so `kura backup` cannot run beside it)."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from app.doors.ui import session
from app.doors.ui.session import tr
from app.identity.users import ADMIN
from app.service.backup import BACKUPS_DIR, CHECKSUMS

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
    cols[0].metric(tr("system.documents"), health["documents"])
    cols[1].metric(tr("system.chunks"), health["chunks"] if health["chunks"] is not None else "–")
    cols[2].metric(tr("system.store"), size(health["store_bytes"]))
    cols[3].metric(tr("system.disk_free"), size(health["disk_free_bytes"]))
    st.caption(
        tr(
            "system.details",
            data=health["data_dir"],
            files=health["files"],
            entries=health["audit_entries"],
        )
    )

st.subheader(tr("system.models"))
if st.button(tr("system.load_models"), key="load_models") or st.session_state.get("models_shown"):
    st.session_state["models_shown"] = True
    with session.shown_errors(), st.spinner(tr("ask.loading")):
        status = service.model_status(user)
        st.json(status)

def span(seconds: float) -> str:
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{seconds / length:.1f} {unit}"
    return f"{seconds:.0f} s"


def backup_schedule() -> None:
    """The schedule and the newest good backup: red when it is older than twice the schedule."""
    status = service.backup_status(user)
    if status.last_good is None or status.age_s is None:
        last = tr("system.backup_none")
    else:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(status.last_good))
        last = tr("system.backup_last", when=when, age=span(status.age_s))
    if status.every_s is None:
        st.info(f"{tr('system.backup_unscheduled')} {last}")
    elif status.overdue:
        st.error(f"{last} {tr('system.backup_overdue')}")
    else:
        st.success(last)
    if status.every_s is not None:
        st.caption(
            tr("system.backup_schedule", every=span(status.every_s), folder=str(status.folder), keep=status.keep)
        )
    if status.last_error:
        st.error(tr("system.backup_failed", reason=status.last_error))


st.subheader(tr("system.backup"))
with session.shown_errors():
    backup_schedule()
st.caption(tr("system.backup_help"))


def _new_dest() -> str:
    """<data_dir>/backups/<UTC time>, with a suffix if a backup already took that second."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder = service.settings.data_dir / BACKUPS_DIR / stamp
    n = 1
    while folder.exists():
        n += 1
        folder = folder.with_name(f"{stamp}-{n}")
    return str(folder)


# Set before the widget is drawn: a fresh timestamped folder on first view and after each backup.
if "backup_dest" not in st.session_state or st.session_state.pop("backup_next", False):
    st.session_state["backup_dest"] = _new_dest()
typed = st.text_input(tr("system.backup_dest"), key="backup_dest").strip()
without_key = st.checkbox(tr("system.backup_without_key"), key="backup_without_key")
if st.button(tr("system.backup_now"), key="backup_now"):
    dest = Path(typed).expanduser()
    st.session_state.pop("backup_result", None)
    if not typed or not dest.is_absolute():
        st.error(tr("system.backup_absolute", example=_new_dest()))
    elif dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        st.error(tr("system.backup_not_empty", path=dest))
    else:
        with session.shown_errors(), st.spinner(tr("system.backup_running")):
            summary = service.backup(user, dest, audit_key=not without_key)
            st.session_state["backup_result"] = tr(
                "system.backup_done",
                path=dest,
                files=summary.files,
                size=size(summary.bytes),
                chunks=summary.chunks,
                sums=dest / CHECKSUMS,
            )
            st.session_state["backup_next"] = True
        if st.session_state.get("backup_next"):
            st.rerun()  # redraw with the result and a new default folder for the next backup
if "backup_result" in st.session_state:
    st.success(st.session_state["backup_result"])
