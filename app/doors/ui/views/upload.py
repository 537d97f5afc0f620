"""Admins: upload a folder (or files) into the data directory, choose who may read it, ingest.

Who may read is always an explicit choice (named groups, or "everyone" picked on purpose); an
upload that would change who reads documents already ingested waits for a confirmation that
names them; the pickers are emptied after every upload, so a file cannot ride along into the
next one; hidden and system files are skipped and listed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from app.doors.safe_text import text
from app.doors.ui import session
from app.doors.ui.ingest_report import show_report
from app.doors.ui.session import tr
from app.identity.users import ADMIN, EVERYONE, check_group_name
from app.service.uploads import (
    check_folder_name,
    group_changes,
    save_uploads,
    split_hidden,
    without_top_folder,
)
from ingest.pipeline import IngestProgress, IngestReport

user = session.require(ADMIN)
service = session.service()
ROUND = "upload_round"  # part of the pickers' keys: a new round is a fresh, empty picker
PENDING = "upload_pending"  # an upload waiting for the admin to confirm group changes


def ingest_with_progress(folder: Path, groups: tuple[str, ...]) -> IngestReport:
    bar = st.progress(0.0, text=tr("upload.loading"))

    def on_progress(event: IngestProgress) -> None:
        line = tr(
            "upload.progress",
            done=event.files_done,
            total=event.files_total,
            chunks=event.chunks,
            rate=event.rate_files_per_s,
            current=Path(event.current).name,
        )
        if event.eta_s is not None and event.files_done < event.files_total:
            line += tr("upload.eta", eta=event.eta_s)
        bar.progress(event.files_done / max(event.files_total, 1), text=line)

    with st.spinner(tr("upload.loading")):
        report = service.ingest(user, folder, groups, on_progress)
    bar.empty()
    return report


def chosen_groups(readers: str | None, typed: str) -> tuple[str, ...] | None:
    """The groups the admin chose, or None after saying what is missing."""
    if readers is None:
        st.error(tr("upload.choose_readers"))
        return None
    if readers == EVERYONE:
        return (EVERYONE,)
    names = sorted({check_group_name(n.strip()) for n in typed.split(",") if n.strip()})
    if not names:
        st.error(tr("upload.need_groups"))
        return None
    return tuple(names)


def ingested_files() -> list[Any]:
    return [f for d in service.documents(user) for f in service.document_files(user, d.doc_id)]


def run(pending: dict[str, Any]) -> None:
    """Save the files, apply a confirmed group change (audited as acl_change), ingest."""
    target = save_uploads(service.settings.data_dir / "uploads", pending["folder"], pending["files"])
    if any(not copy_of for *_, copy_of in pending["changes"]):
        # Files already in this folder get the new groups: through the service's own door, so
        # the change is audited as acl_change with the groups before and after. (A same-content
        # copy elsewhere keeps its groups; it was listed because the new copy widens who reads it.)
        service.set_acl(user, str(target), pending["groups"])
    st.session_state["last_report"] = ingest_with_progress(target, pending["groups"])
    st.session_state["last_skipped"] = pending["skipped"]
    st.session_state["last_saved"] = (len(pending["files"]), str(target))


def next_round() -> None:
    st.session_state[ROUND] = st.session_state.get(ROUND, 0) + 1
    st.session_state.pop(PENDING, None)


st.title(tr("upload.title"))
round_ = st.session_state.setdefault(ROUND, 0)
folder = st.text_input(tr("upload.folder"), value="documents", key="upload_folder")
READERS = {"groups": tr("upload.readers.groups"), EVERYONE: tr("upload.readers.everyone")}
readers = st.radio(
    tr("upload.readers"),
    list(READERS),
    index=None,  # no default: who may read is always a deliberate choice
    format_func=READERS.__getitem__,
    key=f"upload_readers_{round_}",
)
groups_text = st.text_input(
    tr("upload.groups"),
    value="",
    help=tr("upload.groups.help"),
    key=f"upload_groups_{round_}",
    disabled=readers != "groups",
)
directory = st.file_uploader(
    tr("upload.dir"), accept_multiple_files="directory", key=f"upload_dir_{round_}"
)
files = st.file_uploader(tr("upload.files"), accept_multiple_files=True, key=f"upload_files_{round_}")
# The uploader's own words ("Upload", "per file") are Streamlit's and stay English: say it here.
st.caption(tr("upload.hint", mb=int(service.settings.max_file_mb)))

if st.button(tr("upload.start"), type="primary", key="upload_start", disabled=PENDING in st.session_state):
    with session.shown_errors():
        chosen = [
            *zip(
                without_top_folder([f.name for f in directory or []]),
                (f.getvalue() for f in directory or []),
                strict=True,
            ),
            *((f.name, f.getvalue()) for f in files or []),
        ]
        groups = chosen_groups(readers, groups_text)
        if not chosen:
            st.warning(tr("upload.nothing"))
        elif groups is not None:
            kept, skipped = split_hidden(chosen)
            name = check_folder_name(folder)
            target = service.settings.data_dir / "uploads" / name
            changes = group_changes(target, kept, groups, ingested_files())
            pending = {
                "folder": name,
                "groups": groups,
                "files": kept,
                "skipped": skipped,
                "changes": [(c.name, c.current, c.new, c.same_content_as) for c in changes],
            }
            if not kept:
                st.warning(tr("upload.only_hidden", n=len(skipped)))
            elif changes:
                st.session_state[PENDING] = pending
            else:
                run(pending)
                next_round()
                st.rerun()

if PENDING in st.session_state:
    pending = st.session_state[PENDING]
    st.warning(tr("upload.relabel", n=len(pending["changes"]), folder=pending["folder"]))
    st.markdown(
        "\n".join(
            "- "
            + tr(
                "upload.change_line" if not copy else "upload.copy_line",
                file=name,
                now=", ".join(current),
                after=", ".join(new),
                upload=copy,
            )
            for name, current, new, copy in pending["changes"]
        )
    )
    yes, no, _ = st.columns([2, 1, 3])
    if yes.button(tr("upload.relabel.confirm"), type="primary", key="upload_confirm"):
        with session.shown_errors():
            run(pending)
            next_round()
            st.rerun()
    if no.button(tr("upload.relabel.cancel"), key="upload_cancel"):
        next_round()
        st.session_state["upload_cancelled"] = True
        st.rerun()

if st.session_state.pop("upload_cancelled", False):
    st.info(tr("upload.cancelled"))
if "last_saved" in st.session_state:
    n, where = st.session_state["last_saved"]
    st.info(tr("upload.saved", n=n, folder=Path(where).name))
if st.session_state.get("last_skipped"):
    skipped = st.session_state["last_skipped"]
    st.info(tr("upload.skipped", n=len(skipped)) + "\n\n" + "\n".join(f"- {text(s)}" for s in skipped))
if "last_report" in st.session_state:
    show_report(st.session_state["last_report"])
