"""The audit log for auditors: search, export (JSON Lines or CSV; the entry count is in the
`X-Kura-Entries` header) and verify the chain. `kura audit` goes through these while a server
runs (app/doors/cli/remote/usecases.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.doors.http.api.auth import AuditCaller

router = APIRouter(tags=["audit"])


@router.get("/audit")
def search_audit(
    request: Request,
    caller: AuditCaller,
    user: str | None = None,
    action: str | None = None,
    since: str | None = Query(None, description="ISO date or time, inclusive (UTC)"),
    until: str | None = Query(None, description="ISO date or time, exclusive (UTC)"),
    limit: int = Query(1000, ge=1, le=100000),
) -> dict:
    entries = request.app.state.get_service().search_audit(caller.user, user, action, since, until, limit)
    return {"entries": entries}


@router.get("/audit/export")
def export_audit(
    request: Request,
    caller: AuditCaller,
    format: Literal["jsonl", "csv"] = "jsonl",
    user: str | None = None,
    action: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Response:
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / f"audit.{format}"
        count = request.app.state.get_service().export_audit(caller.user, dest, format, user, action, since, until)
        body = dest.read_bytes()
    media = "text/csv" if format == "csv" else "application/x-ndjson"
    headers = {"Content-Disposition": f'attachment; filename="audit.{format}"', "X-Kura-Entries": str(count)}
    return Response(body, media_type=media, headers=headers)


@router.get("/audit/verify")
def verify_audit(request: Request, caller: AuditCaller) -> dict:
    problems = request.app.state.get_service().verify_audit(caller.user)
    return {"intact": not problems, "problems": [str(p) for p in problems]}
