"""Ingestion for admins: upload files, or name a folder on the server under KURA_INGEST_ROOTS;
both return a job to poll (GET /jobs/{id}: state, progress and the per-file report)."""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path, PurePosixPath
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import BaseModel, Field

from app.doors.http.api.auth import AdminCaller
from app.doors.http.api.errors import ApiError
from app.identity.users import parse_groups
from app.service.rules import readers
from ingest.jobs import Job

router = APIRouter(tags=["ingest"])
_UNSAFE = re.compile(r"[\x00-\x1f]")


class FolderIngest(BaseModel):
    folder: str = Field(min_length=1)
    groups: list[str] = Field(default_factory=list, description="who may read the documents (required)")


class JobOut(BaseModel):
    job_id: int
    kind: str
    state: str
    target: str
    submitted_by: str
    progress: dict
    report: dict
    error: str


def job_out(job: Job) -> JobOut:
    return JobOut(
        job_id=job.id,
        kind=job.kind,
        state=job.shown_state,
        target=job.target,
        submitted_by=job.submitted_by,
        progress=job.progress,
        report=job.report,
        error=job.error,
    )


def upload_path(area: Path, name: str) -> Path:
    """Where an uploaded file named `name` is written: always inside `area`, whatever the name
    says ('../../x' becomes area/x; hidden and empty parts are dropped)."""
    parts = [p.lstrip(".") for p in PurePosixPath(_UNSAFE.sub("", name).replace("\\", "/")).parts]
    parts = [p for p in parts if p and p != "/"]
    path = area.joinpath(*(parts or ["upload"]))
    if not path.resolve().is_relative_to(area.resolve()):  # a symlink or a name the rules above missed
        raise ApiError(400, "bad_upload_name", f"the file name {name!r} is not allowed; rename the file")
    return path


def allowed_folder(roots_setting: str, folder: str) -> Path:
    roots = [Path(r.strip()).expanduser().resolve() for r in roots_setting.split(",") if r.strip()]
    if not roots:
        raise ApiError(
            403, "ingest_roots_unset", "no server folder may be ingested over HTTP: an admin sets KURA_INGEST_ROOTS"
        )
    path = Path(folder).expanduser().resolve()
    if not any(path.is_relative_to(root) for root in roots):
        raise ApiError(
            403,
            "folder_not_allowed",
            f"{folder!r} is outside the folders an admin allows (KURA_INGEST_ROOTS); upload the files instead",
        )
    return path


@router.post("/ingest/folder", status_code=202, response_model=JobOut)
def ingest_folder(body: FolderIngest, request: Request, caller: AdminCaller) -> JobOut:
    service = request.app.state.get_service()
    # The operator at the server's shell may name any folder; keys only those under the roots.
    roots = service.settings.ingest_roots
    folder = Path(body.folder).resolve() if caller.operator else allowed_folder(roots, body.folder)
    return job_out(service.submit_ingest(caller.user, folder, parse_groups(",".join(body.groups))))


@router.post("/ingest/upload", status_code=202, response_model=JobOut)
def ingest_upload(
    request: Request,
    files: Annotated[list[UploadFile], File()],
    caller: AdminCaller,
    groups: Annotated[str, Form()] = "",
) -> JobOut:
    """Upload files (multipart `files`, `groups` comma-separated, required); 413 above KURA_MAX_FILE_MB."""
    service = request.app.state.get_service()
    chosen = readers(parse_groups(groups))  # refused before a byte is written
    limit = int(service.settings.max_file_mb * 1024 * 1024)
    area = service.settings.data_dir / "uploads" / f"api-{uuid.uuid4().hex[:12]}"
    area.mkdir(parents=True)
    try:
        for upload in files:
            path = upload_path(area, upload.filename or "upload")
            path.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            with path.open("wb") as out:
                while chunk := upload.file.read(1 << 20):
                    written += len(chunk)
                    if written > limit:
                        raise ApiError(
                            413,
                            "file_too_large",
                            f"{upload.filename!r} is larger than KURA_MAX_FILE_MB={service.settings.max_file_mb:g}; "
                            "split it or ask an admin to raise the limit",
                        )
                    out.write(chunk)
        return job_out(service.submit_ingest(caller.user, area, chosen))
    except BaseException:
        shutil.rmtree(area, ignore_errors=True)
        raise


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(request: Request, caller: AdminCaller) -> list[JobOut]:
    return [job_out(j) for j in request.app.state.get_service().jobs(caller.user, 200)]


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: int, request: Request, caller: AdminCaller) -> JobOut:
    return job_out(request.app.state.get_service().job(caller.user, job_id))


@router.delete("/jobs/{job_id}", response_model=JobOut)
def cancel_job(job_id: int, request: Request, caller: AdminCaller) -> JobOut:
    service = request.app.state.get_service()
    job = service.job(caller.user, job_id)
    if job.finished:
        raise ApiError(409, "job_finished", f"job {job_id} already ended ({job.state}); nothing to cancel")
    return job_out(service.cancel_job(caller.user, job_id))
