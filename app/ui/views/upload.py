"""Admins: upload a folder (or files) into the data directory, choose groups, watch ingestion."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.ui import session
from app.ui.ingest_report import show_report
from app.ui.session import tr
from app.ui.uploads import save_uploads, without_top_folder
from app.users import ADMIN, parse_groups
from ingest.pipeline import IngestProgress, IngestReport

user = session.require(ADMIN)
service = session.service()


def ingest_with_progress(folder: Path, groups: tuple[str, ...]) -> IngestReport:
    bar = st.progress(0.0, text=tr("upload.loading"))

    def on_progress(event: IngestProgress) -> None:
        text = tr(
            "upload.progress",
            done=event.files_done,
            total=event.files_total,
            chunks=event.chunks,
            rate=event.rate_files_per_s,
            current=Path(event.current).name,
        )
        if event.eta_s is not None and event.files_done < event.files_total:
            text += tr("upload.eta", eta=event.eta_s)
        bar.progress(event.files_done / max(event.files_total, 1), text=text)

    with st.spinner(tr("upload.loading")):
        report = service.ingest(user, folder, groups, on_progress)
    done = len(report.results)
    bar.progress(
        1.0,
        text=tr(
            "upload.progress",
            done=done,
            total=done,
            chunks=report.chunks,
            rate=done / report.seconds if report.seconds else 0.0,
            current="✓",
        ),
    )
    return report


st.title(tr("upload.title"))
folder = st.text_input(tr("upload.folder"), value="documents", key="upload_folder")
groups_text = st.text_input(
    tr("upload.groups"), value="", help=tr("upload.groups.help"), key="upload_groups"
)
directory = st.file_uploader(tr("upload.dir"), accept_multiple_files="directory", key="upload_dir")
files = st.file_uploader(tr("upload.files"), accept_multiple_files=True, key="upload_files")

if st.button(tr("upload.start"), type="primary", key="upload_start"):
    chosen = [*(directory or []), *(files or [])]
    if not chosen:
        st.warning(tr("upload.nothing"))
    else:
        with session.shown_errors():
            groups = parse_groups(groups_text)
            target = save_uploads(
                service.settings.data_dir / "uploads",
                folder,
                [
                    *zip(
                        without_top_folder([f.name for f in directory or []]),
                        (f.getvalue() for f in directory or []),
                        strict=True,
                    ),
                    *((f.name, f.getvalue()) for f in files or []),
                ],
            )
            st.info(tr("upload.saved", n=len(chosen), folder=target))
            st.session_state["last_report"] = ingest_with_progress(target, groups)

if "last_report" in st.session_state:
    show_report(st.session_state["last_report"])
