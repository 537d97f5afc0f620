"""Ingestion as jobs: submit, follow, cancel, and the one writer that applies them in order.

Every change to the index (a folder sync from an upload, `kura ingest`, a re-ingest or a watched
folder; an ACL change; a delete) is a row in the durable queue (ingest/jobs.py) first. The
writer thread of the one process holding the writer lock takes them one at a time, so two
admins ingesting at once can no longer interleave their swaps. Readers (search, ask) never wait
for it beyond one store flush: the store and the manifest lock only around single steps.

Recovery: the process opens the index once (`KuraService.index` runs `recover()` there), before
its writer takes the first job. Jobs a killed writer left `running` are then requeued (a folder
sync is idempotent, so running it again resumes it: finished files are skipped as unchanged) or,
if a cancel was asked, closed as cancelled; either way with an audit entry naming the documents
the interrupted run made searchable.

Every job is audited: submitted, started, and finished / failed / cancelled with its counts and
the documents it made searchable.

Usage (KuraService does this; callers use `service.ingest`, `service.submit_ingest`, ...):
    jobs = IngestJobs(data_dir, audit, open_index=lambda: service.index)
    job = jobs.submit(admin, "ingest", {"folder": "/srv/hr", "groups": ["hr"]})
    report_dict = jobs.wait(job.id, on_progress=print).report
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.audit.log import AuditLog
from app.identity.users import ADMIN, User
from app.platform import metrics
from ingest import parse_pool
from ingest.errors import DiskFull
from ingest.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    JOBS_DB,
    QUEUED,
    RUNNING,
    Job,
    JobQueue,
    WatchedFolder,
    WriterLock,
)
from ingest.pipeline import (
    FileResult,
    Index,
    IngestProgress,
    IngestReport,
    SyncStopped,
    remove_path,
    set_groups,
    sync_folder,
)
from retrieval.store import StoreBusy

log = logging.getLogger(__name__)

_PROGRESS_EVERY_S = 0.25  # progress rows written at most this often (the last one always)
_IDLE_WAIT_S = 0.5  # how often an idle writer looks for due watched folders and cross-process jobs
_LOCK_RETRY_S = 2.0


class DocumentNotFound(LookupError):
    """No such document, file or passage among those the caller may read (one message for both,
    so the error does not reveal that a forbidden document exists)."""


class JobNotFound(LookupError):
    """No job with this id; list jobs with `kura jobs list`."""


class JobFailed(RuntimeError):
    """The job failed in another process; the message is its error."""


class JobCancelled(RuntimeError):
    """The job was cancelled; what it finished before the cancel stays in the index."""


class WriterStopped(RuntimeError):
    """This process stopped its writer (shutting down) before the job finished: it resumes at the
    next start."""


def is_disk_full(exc: BaseException) -> bool:
    return (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "No space left on device" in str(exc)


def report_to_dict(report: IngestReport) -> dict[str, Any]:
    return {
        "root": report.root,
        "results": [r.__dict__ for r in report.results],
        "seconds": report.seconds,
        "stage_s": dict(report.stage_s),
        "writer_wait_s": report.writer_wait_s,
    }


def report_from_dict(data: dict[str, Any]) -> IngestReport:
    report = IngestReport(root=str(data.get("root", "")))
    report.results = [FileResult(**r) for r in data.get("results", [])]
    report.seconds = float(data.get("seconds", 0.0))
    report.stage_s.update(data.get("stage_s", {}))
    report.writer_wait_s = float(data.get("writer_wait_s", 0.0))
    return report


def progress_to_dict(event: IngestProgress) -> dict[str, Any]:
    return {
        "files_done": event.files_done,
        "files_total": event.files_total,
        "chunks": event.chunks,
        "pages": event.pages,
        "current": event.current,
        "elapsed_s": round(event.elapsed_s, 3),
        "files_skipped": event.files_skipped,
        "chunks_per_s": round(event.rate_chunks_per_s, 2),
        "files_per_s": round(event.rate_files_per_s, 3),
        "eta_s": None if event.eta_s is None else round(event.eta_s, 1),
        "stage_s": {k: round(v, 3) for k, v in event.stage_s.items()},
    }


def progress_from_dict(data: dict[str, Any]) -> IngestProgress | None:
    if "files_total" not in data:
        return None
    return IngestProgress(
        data["files_done"],
        data["files_total"],
        data["chunks"],
        data["current"],
        data["elapsed_s"],
        pages=data.get("pages", 0),
        files_skipped=data.get("files_skipped", 0),
        stage_s=data.get("stage_s", {}),
    )


class IngestJobs:
    """The job queue of one data directory, and (in the process holding the writer lock) the
    one writer thread that applies the jobs."""

    def __init__(self, data_dir: Path, audit: AuditLog, open_index: Callable[[], Index], nice: int = 10) -> None:
        """`nice`: the writer thread (and the parse thread it starts, which inherits it) runs this
        much nicer than the readers: on a small machine a search competes with embedding for the
        same cores, and the person waiting for an answer should win. Idle cores stay ingestion's."""
        self.nice = nice
        self.queue = JobQueue(data_dir / JOBS_DB)
        self.lock = WriterLock(data_dir / "jobs.lock")
        self.audit = audit
        self._open_index = open_index
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._changed = threading.Condition()
        self._wake = threading.Event()
        self._errors: dict[int, BaseException] = {}  # exceptions of jobs this process ran
        self._progress: dict[int, dict[str, Any]] = {}
        self._cancelled_here: set[int] = set()  # cancels asked in this process: seen at once
        self._fatal: BaseException | None = None  # what stopped this process's writer, if anything

    # --- submitting and following ----------------------------------------------------------
    def submit(self, user: User, kind: str, params: dict[str, Any], watched: WatchedFolder | None = None) -> Job:
        """Queue a job (the caller has checked the role) and make sure a writer will run it."""
        job = self.queue.submit(kind, params, user.name, tuple(sorted(user.roles)), watched.id if watched else None)
        self.audit.append(
            user=user.name,
            role=ADMIN,
            action="job_submitted",
            job=job.id,
            kind=kind,
            **_audit_params(params),
            **({"watched_folder": watched.path} if watched else {}),
        )
        self.start()
        self._wake.set()
        return job

    def wait(self, job_id: int, on_progress: Callable[[IngestProgress], None] | None = None) -> Job:
        """Follow a job to its end, calling `on_progress` from the caller's thread (Streamlit and
        Rich need that). Raises the job's own error if it failed, JobCancelled if cancelled."""
        last: dict[str, Any] | None = None
        while True:
            job = self.queue.get(job_id)
            if job is None:
                raise JobNotFound(f"no job {job_id}; list jobs with `kura jobs list`")
            progress = self._progress.get(job_id) or job.progress
            if on_progress and progress and progress is not last and progress != last:
                event = progress_from_dict(progress)
                if event is not None:
                    on_progress(event)
                last = progress
            if job.finished:
                break
            if self._stop.is_set() and self.lock.held:
                raise WriterStopped(f"kura is shutting down; job {job_id} resumes at the next start")
            if self._fatal is not None:
                if is_disk_full(self._fatal):
                    raise DiskFull(
                        "the disk holding the data directory filled up during ingestion; nothing already "
                        f"searchable was lost. Free space there, then run kura again: job {job_id} resumes"
                    ) from self._fatal
                raise WriterStopped(
                    f"the ingest writer stopped ({self._fatal!r}); job {job_id} resumes at the next start"
                )
            with self._changed:
                self._changed.wait(timeout=0.2)
        if job.state == FAILED:
            error = self._errors.pop(job_id, None)
            if error is not None:
                raise error
            # Run by another process: the same type for the errors a caller handles, same message.
            typed = _TYPED_ERRORS.get(job.error_type)
            raise typed(job.error) if typed else JobFailed(f"job {job_id} failed: {job.error}")
        if job.state == CANCELLED:
            raise JobCancelled(
                f"job {job_id} was cancelled; the files it finished before the cancel are searchable, "
                "the rest untouched"
            )
        return job

    def cancel(self, user: User, job_id: int) -> Job:
        job = self.queue.get(job_id)
        if job is None:
            raise JobNotFound(f"no job {job_id}; list jobs with `kura jobs list`")
        if job.finished:
            raise ValueError(f"job {job_id} is already {job.state}; only queued or running jobs can be cancelled")
        job = self.queue.request_cancel(job_id) or job
        self._cancelled_here.add(job_id)
        self.audit.append(user=user.name, role=ADMIN, action="job_cancel", job=job_id, kind=job.kind, state=job.state)
        self._wake.set()
        return job

    # --- the writer ------------------------------------------------------------------------
    def start(self) -> None:
        """Start this process's writer thread (idempotent). It waits for the writer lock, so in a
        process beside a running server it simply never takes a job."""
        with self._start_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._fatal = None
            self._thread = threading.Thread(target=self._run, name="kura-ingest-writer", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Have this process's writer look at the queue and the watched folders now."""
        self._wake.set()

    def writing_here(self, timeout_s: float = 0.0) -> bool:
        """Whether this process's writer holds the lock and has opened the index."""
        return self._ready.wait(timeout_s)

    def stop(self, timeout_s: float = 120.0) -> None:
        """Stop the writer between two files; an unfinished job stays queued and resumes later."""
        self._stop.set()
        self._wake.set()
        with self._changed:
            self._changed.notify_all()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=timeout_s)
        self.lock.release()
        self._ready.clear()

    def close(self) -> None:
        self.stop()
        self.queue.close()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _run(self) -> None:
        try:  # Linux: PRIO_PROCESS with a thread id sets that one thread's nice value
            tid = threading.get_native_id()
            if self.nice > 0:
                os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + self.nice))
        except (OSError, AttributeError):
            log.info("could not lower the ingest writer's priority; searches share the CPU equally")
        try:
            self._write()
        except BaseException as exc:  # the queue itself cannot be written (a full disk) or a bug
            log.exception("the ingest writer stopped")
            self._fatal = exc
            self.lock.release()  # another process (the next start) takes over and resumes
            self._notify()

    def _write(self) -> None:
        while not self._stop.is_set() and not self.lock.acquire():
            self._stop.wait(_LOCK_RETRY_S)  # another process writes; take over if it goes away
        index: Index | None = None
        while not self._stop.is_set():
            if index is None:
                # The store and the models are opened at the first piece of work, not before: an
                # idle server with nothing to sync loads nothing.
                if not (self.queue.unfinished() or self.queue.due_folders(time.time())):
                    self._wake.wait(_IDLE_WAIT_S)
                    self._wake.clear()
                    continue
                # The parse process imports its parsers meanwhile (ingest/parse_pool.py): the
                # first big sync need not wait for it.
                parse_pool.warm_up()
                index = self._open()
                if index is None:
                    continue
            self._submit_due_folders()
            job = self.queue.next_queued()
            if job is None:
                self._wake.wait(_IDLE_WAIT_S)
                self._wake.clear()
                continue
            try:
                self._execute(job, index)
            except WriterStopped:
                break
            finally:
                self._progress.pop(job.id, None)
                self._notify()

    def _open(self) -> Index | None:
        try:
            index = self._open_index()  # the process's one recover() runs here (or earlier, in a reader)
        except StoreBusy as exc:
            log.warning("ingest writer waits for the store: %s", exc)
            self._stop.wait(_LOCK_RETRY_S)
            return None
        self._settle_interrupted(index)
        self._ready.set()
        return index

    def _settle_interrupted(self, index: Index) -> None:
        """Jobs a killed writer left running: audit what they made searchable, then resume them
        (or close them, if a cancel had been asked)."""
        for job in self.queue.unfinished():
            if job.state != RUNNING:
                continue
            documents = _documents_since(index, job)
            self.audit.append(
                user=job.submitted_by,
                role=ADMIN,
                action="job_interrupted",
                job=job.id,
                kind=job.kind,
                **_audit_params(job.params),
                documents=documents,
                searchable=len(documents),
                then="cancelled" if job.cancel_requested else "resumed",
            )
            if job.cancel_requested:
                self.queue.finish(job.id, CANCELLED, {"interrupted": True, "documents": documents})
            else:
                self.queue.requeue(job.id)

    def _submit_due_folders(self) -> None:
        now = time.time()
        due = self.queue.due_folders(now)
        if not due:
            return
        busy = {j.watched_id for j in self.queue.unfinished() if j.watched_id is not None}
        for folder in due:
            if folder.id in busy:  # still syncing from the last time: no pile-up
                continue
            owner = User(folder.added_by, frozenset({ADMIN}))
            job = self.submit(owner, "ingest", {"folder": folder.path, "groups": list(folder.groups)}, watched=folder)
            self.queue.mark_run(folder.id, job.id, now + folder.every_s)

    def _should_stop(self, job_id: int) -> Callable[[], bool]:
        """Asked between files: the process is stopping, or someone asked to cancel (checked in the
        queue at most every 0.2 s: a cancel may come from another process)."""
        checked = [0.0, False]

        def should_stop() -> bool:
            if self._stop.is_set() or job_id in self._cancelled_here:
                return True
            now = time.monotonic()
            if now - checked[0] > 0.2:
                checked[0], checked[1] = now, self.queue.cancel_requested(job_id)
            return bool(checked[1])

        return should_stop

    def _execute(self, job: Job, index: Index) -> None:
        if job.cancel_requested:  # cancelled while queued: never started
            self.queue.finish(job.id, CANCELLED, {})
            self.audit.append(
                user=job.submitted_by, role=ADMIN, action="job_cancelled", job=job.id, kind=job.kind, started=False
            )
            return
        job = self.queue.start(job.id)
        self.audit.append(
            user=job.submitted_by,
            role=ADMIN,
            action="job_started",
            job=job.id,
            kind=job.kind,
            attempt=job.attempts,
            writer_pid=os.getpid(),
            **_audit_params(job.params),
        )
        try:
            if job.kind == "ingest":
                self._ingest(job, index)
            elif job.kind == "acl":
                self._acl(job, index)
            elif job.kind == "delete":
                self._delete(job, index)
            else:
                raise ValueError(f"unknown job kind {job.kind!r}")
        except WriterStopped:
            raise
        except Exception as exc:
            if is_disk_full(exc):
                exc = DiskFull(
                    f"the disk filled up during job {job.id}; nothing already searchable was lost. "
                    "Free space in the data directory, then run the same ingest again to continue"
                )
            log.warning("job %d (%s) failed: %s", job.id, job.kind, exc)
            self._errors[job.id] = exc
            self.queue.finish(job.id, FAILED, {}, error=str(exc), error_type=type(exc).__name__)
            self.audit.append(
                user=job.submitted_by,
                role=ADMIN,
                action="job_failed",
                job=job.id,
                kind=job.kind,
                error=type(exc).__name__,
                reason=str(exc),
                documents=_documents_since(index, job) if job.kind == "ingest" else [],
            )

    def _ingest(self, job: Job, index: Index) -> None:
        folder, groups = Path(job.params["folder"]), list(job.params["groups"])
        written = [0.0]

        def on_progress(event: IngestProgress) -> None:
            data = progress_to_dict(event)
            self._progress[job.id] = data
            now = time.monotonic()
            if now - written[0] >= _PROGRESS_EVERY_S or event.files_done >= event.files_total:
                written[0] = now
                self.queue.set_progress(job.id, data)
            self._notify()

        state = DONE
        try:
            with metrics.IN_FLIGHT.track_inprogress():
                report = sync_folder(folder, groups, index, on_progress, should_stop=self._should_stop(job.id))
        except SyncStopped as stopped:
            if self._stop.is_set():  # shutting down, not cancelled: resume at the next start
                self._audit_ingest(job, index, stopped.report, "interrupted")
                self.queue.requeue(job.id)
                raise WriterStopped(f"job {job.id} stops with the writer") from None
            report, state = stopped.report, CANCELLED
        metrics.record_ingest(report)
        log.info(
            "ingest",
            extra={
                "user": job.submitted_by,
                "folder": str(folder),
                "files": len(report.results),
                "chunks": report.chunks,
                "failed": len(report.failures),
            },
        )
        self._audit_ingest(job, index, report, "done" if state == DONE else "cancelled")
        self.queue.finish(job.id, state, report_to_dict(report))

    def _audit_ingest(self, job: Job, index: Index, report: IngestReport, outcome: str) -> None:
        documents = sorted(
            {
                record.doc_id
                for r in report.results
                if r.status in ("ingested", "linked")
                for record in [index.manifest.file(r.path)]
                if record is not None
            }
        )
        self.audit.append(
            user=job.submitted_by,
            role=ADMIN,
            action="ingest",
            job=job.id,
            outcome=outcome,
            folder=job.params["folder"],
            groups=list(job.params["groups"]),
            ingested=report.count("ingested"),
            linked=report.count("linked"),
            unchanged=report.count("unchanged"),
            failed=len(report.failures),
            removed=report.count("removed"),
            chunks=report.chunks,
            documents=documents,
        )

    def _acl(self, job: Job, index: Index) -> None:
        target, chosen = job.params["target"], list(job.params["groups"])
        manifest = index.manifest
        if manifest.document(target) is not None:
            files = manifest.files_of(target)
        else:
            path = job.params.get("path") or str(Path(target).expanduser().resolve())
            files = [f for f in manifest.all_files() if f.path == path or f.path.startswith(path.rstrip("/") + "/")]
        request = {"user": job.submitted_by, "role": ADMIN, "action": "acl_change", "job": job.id}
        request.update(target=target, groups=chosen)
        if not files:
            self.audit.append(**request, outcome="not_found")
            raise DocumentNotFound(
                f"nothing ingested at {target!r}: give a document id (`kura docs`) or a path that was ingested"
            )
        changed = set_groups(index, [f.path for f in files], chosen)
        self.audit.append(
            **request,
            previous=sorted({g for f in files for g in f.groups}),
            files=[f.path for f in files],
            documents=sorted({f.doc_id for f in files}),
            outcome="changed",
        )
        self.queue.finish(job.id, DONE, {"changed": changed, "files": [f.path for f in files]})

    def _delete(self, job: Job, index: Index) -> None:
        doc_id = job.params["doc_id"]
        files = index.manifest.files_of(doc_id)
        if not files and index.manifest.document(doc_id) is None:
            if job.attempts > 1:  # a resumed delete that had finished before the kill
                self.queue.finish(job.id, DONE, {"removed": []})
                return
            self.audit.append(
                user=job.submitted_by, role=ADMIN, action="delete", job=job.id, documents=[doc_id], outcome="not_found"
            )
            raise DocumentNotFound(f"no document {doc_id}; list documents with `kura docs`")
        for record in files:
            remove_path(index, record.path)
        self.audit.append(user=job.submitted_by, role=ADMIN, action="delete", job=job.id, documents=[doc_id])
        self.queue.finish(job.id, DONE, {"removed": [f.path for f in files]})


_TYPED_ERRORS: dict[str, type[Exception]] = {
    "DocumentNotFound": DocumentNotFound,
    "FileNotFoundError": FileNotFoundError,
    "DiskFull": DiskFull,
    "ValueError": ValueError,
}


def _audit_params(params: dict[str, Any]) -> dict[str, Any]:
    """The job's parameters as audit fields (folder, target, groups, doc_id)."""
    return {k: v for k, v in params.items() if k in ("folder", "target", "groups", "doc_id")}


def _documents_since(index: Index, job: Job) -> list[str]:
    """Documents under the job's folder recorded since the job (last) started: what it made
    searchable before it stopped."""
    folder = job.params.get("folder")
    if not folder or job.started_at is None:
        return []
    root = str(Path(folder).resolve())
    started = job.started_at
    return sorted({f.doc_id for f in index.manifest.files_under(root) if f.ingested_at >= started})


__all__ = [
    "CANCELLED",
    "DONE",
    "FAILED",
    "QUEUED",
    "RUNNING",
    "DocumentNotFound",
    "IngestJobs",
    "JobCancelled",
    "JobFailed",
    "JobNotFound",
    "WriterStopped",
]
