"""Admins: every ingestion job, live (progress, ETA, current file), with cancel; and the watched
folders kura re-syncs on their interval (last run, next run, last report)."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from app.doors.ui import session
from app.doors.ui.session import tr
from app.identity.users import ADMIN, parse_groups
from ingest.jobs import Job, parse_interval

user = session.require(ADMIN)
service = session.service()


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else "–"


def _summary(job: Job) -> str:
    """Counts from a finished job's report, or the error; plain text (rendered as data)."""
    if job.error:
        return job.error[:200]
    results = job.report.get("results")
    if results is None:
        return ", ".join(f"{k} {v}" for k, v in job.report.items() if isinstance(v, int | float))
    counts: dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    chunks = sum(r.get("chunks", 0) for r in results)
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f" · {chunks} chunks"


@st.fragment(run_every=2)
def job_list() -> None:
    """Redrawn every 2 s: the writer updates each running job's progress in the queue."""
    with session.shown_errors():
        jobs = service.jobs(user, limit=100)
        if not jobs:
            st.info(tr("jobs.none"))
            return
        for job in jobs:
            p = job.progress
            if job.state == "running" and p.get("files_total"):
                text = tr(
                    "jobs.running",
                    id=job.id,
                    done=p["files_done"],
                    total=p["files_total"],
                    pages=p.get("pages", 0),
                    rate=p.get("chunks_per_s", 0.0),
                    current=Path(str(p.get("current", ""))).name,
                )
                if p.get("eta_s") is not None:
                    text += tr("jobs.eta", eta=p["eta_s"])
                st.progress(p["files_done"] / max(p["files_total"], 1), text=text)
        # st.dataframe shows every cell as data: a hostile file name stays text.
        st.dataframe(
            [
                {
                    tr("jobs.col.job"): j.id,
                    tr("jobs.col.kind"): j.kind,
                    tr("jobs.col.target"): j.target,
                    tr("jobs.col.by"): j.submitted_by,
                    tr("jobs.col.state"): j.shown_state,
                    tr("jobs.col.submitted"): _when(j.submitted_at),
                    tr("jobs.col.files"): f"{j.progress.get('files_done', '')}/{j.progress.get('files_total', '')}"
                    if j.progress
                    else "",
                    tr("jobs.col.chunks_per_s"): j.progress.get("chunks_per_s"),
                    tr("jobs.col.report"): _summary(j) if j.finished else "",
                }
                for j in jobs
            ],
            hide_index=True,
            width="stretch",
        )


st.title(tr("jobs.title"))
job_list()

with session.shown_errors():
    unfinished = [j for j in service.jobs(user, limit=500) if not j.finished]
    if unfinished:
        choice = st.selectbox(
            tr("jobs.cancel_which"),
            [j.id for j in unfinished],
            format_func=lambda i: next(f"{j.id} · {j.kind} · {j.target}" for j in unfinished if j.id == i),
            key="jobs_cancel_id",
        )
        if st.button(tr("jobs.cancel"), key="jobs_cancel"):
            service.cancel_job(user, int(choice))
            st.success(tr("jobs.cancelled", id=choice))

st.subheader(tr("jobs.watched"))
with session.shown_errors():
    watched = service.watched_folders(user)
    if not watched:
        st.info(tr("jobs.watched_none"))
    else:
        last_jobs = {w.last_job: service.job(user, w.last_job) for w in watched if w.last_job is not None}
        st.dataframe(
            [
                {
                    tr("jobs.col.folder"): w.path,
                    tr("jobs.col.groups"): ", ".join(w.groups),
                    tr("jobs.col.every"): f"{w.every_s:.0f} s",
                    tr("jobs.col.last_run"): _when(w.last_run),
                    tr("jobs.col.next_run"): _when(w.next_run),
                    tr("jobs.col.last_job"): w.last_job,
                    tr("jobs.col.last_report"): (
                        f"{last_jobs[w.last_job].shown_state}: {_summary(last_jobs[w.last_job])}"
                        if w.last_job in last_jobs
                        else ""
                    ),
                }
                for w in watched
            ],
            hide_index=True,
            width="stretch",
        )
        remove = st.selectbox(tr("jobs.watch_remove"), [w.path for w in watched], key="jobs_unwatch_path")
        if st.button(tr("jobs.watch_remove"), key="jobs_unwatch"):
            service.unwatch_folder(user, Path(remove))
            st.success(tr("jobs.watch_removed", path=remove))
            st.rerun()

with st.form("jobs_watch"):
    path = st.text_input(tr("jobs.watch_path"), key="jobs_watch_path")
    groups = st.text_input(tr("jobs.watch_groups"), key="jobs_watch_groups")  # required: no implicit everyone
    every = st.text_input(tr("jobs.watch_every"), value="15m", key="jobs_watch_every")
    submitted = st.form_submit_button(tr("jobs.watch_add"), type="primary")
if submitted:
    with session.shown_errors():
        added = service.watch_folder(user, Path(path), parse_groups(groups), parse_interval(every))
        st.success(tr("jobs.watch_added", path=added.path))
