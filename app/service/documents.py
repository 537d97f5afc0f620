"""Documents and ingest jobs: what an admin does to the index. Every change (ingest, re-ingest,
ACL change, delete) is a job in the one queue (app/service/jobs.py), so one writer applies them in
order; the writer audits what each job did. Here: the role check, the request's audit entry
and the waiting.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from app.identity.users import ADMIN, User
from app.service.jobs import DocumentNotFound, report_from_dict
from app.service.parts import UseCase
from app.service.rules import readers
from ingest.errors import DiskFull
from ingest.jobs import Job, WatchedFolder
from ingest.manifest import DocumentRecord, FileRecord
from ingest.pipeline import IngestProgress, IngestReport


def _check_free_space(data_dir: Path, min_free_mb: float) -> None:
    free_mb = shutil.disk_usage(data_dir).free / 1e6
    if free_mb < min_free_mb:
        raise DiskFull(
            f"only {free_mb:.0f} MB free on the disk holding {data_dir} (kura needs {min_free_mb:.0f} MB to "
            "ingest safely): free space there or move KURA_DATA_DIR to a larger disk, then run the ingest again"
        )


class Documents(UseCase):
    def ingest(
        self,
        user: User,
        folder: Path,
        groups: Sequence[str],
        on_progress: Callable[[IngestProgress], None] | None = None,
    ) -> IngestReport:
        """Submit a folder sync as a job, then follow it to its end (calling `on_progress` from
        this thread). Raises JobCancelled if an admin cancels it meanwhile."""
        job = self.submit_ingest(user, folder, groups)
        return self.follow_ingest(user, job.id, on_progress)

    def follow_ingest(
        self, user: User, job_id: int, on_progress: Callable[[IngestProgress], None] | None = None
    ) -> IngestReport:
        """Wait for an ingest job to end (calling `on_progress` from this thread); its report."""
        user.require(ADMIN, "follow ingestion jobs")
        return report_from_dict(self.ingest_jobs.wait(job_id, on_progress).report)

    def submit_ingest(self, user: User, folder: Path, groups: Sequence[str]) -> Job:
        """Queue a folder sync; returns at once with the job (follow it with `job()`)."""
        self._denied(user, ADMIN, "ingest documents", folder=str(folder))
        _check_free_space(self.settings.data_dir, self.settings.min_free_mb)
        chosen = readers(groups)
        root = Path(folder).expanduser().resolve()
        if not root.exists():
            raise FileNotFoundError(f"{folder} does not exist")
        return self.ingest_jobs.submit(user, "ingest", {"folder": str(root), "groups": list(chosen)})

    def job(self, user: User, job_id: int) -> Job:
        user.require(ADMIN, "see ingestion jobs")
        job = self.ingest_jobs.queue.get(job_id)
        if job is None:
            from app.service.jobs import JobNotFound

            raise JobNotFound(f"no job {job_id}; list jobs with `kura jobs list`")
        return job

    def jobs(self, user: User, limit: int = 200) -> list[Job]:
        """Every job, newest first (an admin sees all of them)."""
        user.require(ADMIN, "see ingestion jobs")
        return self.ingest_jobs.queue.list(limit)

    def cancel_job(self, user: User, job_id: int) -> Job:
        self._denied(user, ADMIN, "cancel ingestion jobs", job=job_id)
        return self.ingest_jobs.cancel(user, job_id)

    def watch_folder(self, user: User, folder: Path, groups: Sequence[str], every_s: float) -> WatchedFolder:
        """Re-sync `folder` as a job every `every_s` seconds (adds, replaces and removes what changed)."""
        self._denied(user, ADMIN, "watch folders", folder=str(folder))
        root = Path(folder).expanduser().resolve()
        if not root.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder; give a folder that exists")
        chosen = readers(groups)
        watched = self.ingest_jobs.queue.watch(str(root), chosen, every_s, user.name)
        self.audit.append(
            user=user.name, role=ADMIN, action="folder_watch", folder=str(root), groups=list(chosen), every_s=every_s
        )
        self.ingest_jobs.wake()  # a writer in this process picks it up now, one elsewhere within 0.5 s
        return watched

    def unwatch_folder(self, user: User, folder: Path) -> None:
        self._denied(user, ADMIN, "watch folders", folder=str(folder))
        root = str(Path(folder).expanduser().resolve())
        if not self.ingest_jobs.queue.unwatch(root):
            raise FileNotFoundError(f"{folder} is not a watched folder; list them with `kura folders list`")
        self.audit.append(user=user.name, role=ADMIN, action="folder_unwatch", folder=root)

    def watched_folders(self, user: User) -> list[WatchedFolder]:
        user.require(ADMIN, "see watched folders")
        return self.ingest_jobs.queue.watched()

    def documents(self, user: User) -> list[DocumentRecord]:
        self._denied(user, ADMIN, "list all documents")
        return self.manifest.documents()

    def delete(self, user: User, doc_id: str) -> None:
        """A job like every other change to the index (the writer audits it)."""
        self._denied(user, ADMIN, "delete documents", documents=[doc_id])
        job = self.ingest_jobs.submit(user, "delete", {"doc_id": doc_id})
        self.ingest_jobs.wait(job.id)

    def document_files(self, user: User, doc_id: str) -> list[FileRecord]:
        """The paths that hold a document, each with its ACL groups and ingest time."""
        user.require(ADMIN, "list document paths")
        return self.manifest.files_of(doc_id)

    def set_document_groups(self, user: User, doc_id: str, groups: Sequence[str]) -> int:
        """Change which groups may read a document (every path of it), without re-embedding."""
        return self.set_acl(user, doc_id, groups)

    def reingest(
        self, user: User, doc_id: str, on_progress: Callable[[IngestProgress], None] | None = None
    ) -> list[IngestReport]:
        """Sync again every folder a document came from (picks up edits; unchanged files are skipped)."""
        self._denied(user, ADMIN, "re-ingest documents", documents=[doc_id])
        files = self.manifest.files_of(doc_id)
        if not files:
            raise DocumentNotFound(f"no document {doc_id}; list documents with `kura docs`")
        roots: dict[str, tuple[str, ...]] = {}
        for f in files:
            roots.setdefault(f.root, f.groups)
        # One job per folder, each queued behind whatever is running (app/service/jobs.py).
        return [self.ingest(user, Path(root), groups, on_progress) for root, groups in roots.items()]

    def set_acl(self, user: User, target: str, groups: Sequence[str]) -> int:
        """Change which groups may read a document id, an ingested file, or every file under a
        folder, without re-embedding (a payload update on every chunk). Returns files changed."""
        self._denied(user, ADMIN, "change document permissions", target=target)
        chosen = list(readers(groups))
        # A job, so it cannot interleave with a sync of the same files; the writer audits it.
        # A path is resolved here: the writer may run in another process, in another directory.
        path = str(Path(target).expanduser().resolve())
        job = self.ingest_jobs.submit(user, "acl", {"target": target, "path": path, "groups": chosen})
        return int(self.ingest_jobs.wait(job.id).report["changed"])
