"""Show an ingestion report on a page: the counts, every file's outcome, and what to do about failures."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.doors.ui.session import tr
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
    root = Path(report.root)
    st.dataframe(
        [
            {
                tr("ingest.col.file"): shown(r.path, root),
                tr("ingest.col.status"): tr(f"ingest.status.{r.status}") if r.status in _STATUSES else r.status,
                tr("ingest.col.chunks"): r.chunks,
                tr("ingest.col.pages"): r.pages,
            }
            for r in report.results
        ],
        hide_index=True,
        width="stretch",
    )
    if report.failures:
        st.warning(tr("ingest.failures"))
        st.dataframe(
            [
                {
                    tr("ingest.col.file"): shown(r.path, root),
                    tr("ingest.col.reason"): r.reason,
                    tr("ingest.col.hint"): r.hint,
                }
                for r in report.failures
            ],
            hide_index=True,
            width="stretch",
        )


_STATUSES = ("ingested", "linked", "unchanged", "removed", "failed")


def shown(path: str, root: Path) -> str:
    """A file as the admin knows it: relative to the folder that was ingested."""
    p = Path(path)
    return str(p.relative_to(root)) if p.is_relative_to(root) else p.name
