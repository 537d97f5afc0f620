"""Health: a liveness answer for anyone (no key, no detail), and the admin's counts and sizes."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from app.doors.http.api.auth import AdminCaller

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict:
    return {"status": "ok"}


@router.get("/health/details")
def health_details(request: Request, caller: AdminCaller) -> dict:
    return request.app.state.get_service().health(caller.user)


class BackupRequest(BaseModel):
    dest: str = Field(min_length=1, description="a new, empty folder on the server")
    audit_key: bool = Field(default=True, description="false: leave audit.key out (restore then asks for it)")


@router.post("/backup")
def backup(body: BackupRequest, request: Request, caller: AdminCaller) -> dict:
    """A consistent live backup written by the server (it owns the store); audited."""
    summary = request.app.state.get_service().backup(caller.user, Path(body.dest), audit_key=body.audit_key)
    return {
        "dest": body.dest,
        "files": summary.files,
        "chunks": summary.chunks,
        "bytes": summary.bytes,
        "audit_key": summary.audit_key,
    }
