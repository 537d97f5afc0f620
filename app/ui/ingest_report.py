"""Show an ingestion report on a page: the counts, every file's outcome, and what to do about failures."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.ui.session import tr
from ingest.pipeline import IngestReport


def show_report(report: IngestReport) -> None:
    st.success(
        tr(
            "ingest.done",
            ingested=report.count("ingested"),
            unchanged=report.count("unchanged"),
            linked=report.count("linked"),
            removed=report.count("removed"),
            failed=len(report.failures),
            chunks=report.chunks,
            seconds=report.seconds,
        )
    )
    st.dataframe(
        [
            {"file": Path(r.path).name, "status": r.status, "chunks": r.chunks, "pages": r.pages}
            for r in report.results
        ],
        hide_index=True,
        width="stretch",
    )
    if report.failures:
        st.warning(tr("ingest.failures"))
        st.dataframe(
            [{"file": r.path, "reason": r.reason, "what to do": r.hint} for r in report.failures],
            hide_index=True,
            width="stretch",
        )
