"""The auditor's workbench over HTTP (audit-scope keys): overview, who saw what, alerts and their
rules, a group's monthly report, one entry with its chain proof. Each route calls one method of
app/service/audit_analytics.py, which refuses (and audits) anyone but an auditor and audits the
view. `kura audit overview|who-saw|alerts|report|entry` go through these while a server runs.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from app.doors.http.api.auth import AuditCaller

router = APIRouter(tags=["audit"])
Day = Query(None, description="YYYY-MM-DD, local day in KURA_AUDIT_TIMEZONE, inclusive")


def _service(request: Request) -> Any:
    return request.app.state.get_service()


@router.get("/audit/overview")
def overview(request: Request, caller: AuditCaller, since: str | None = Day, until: str | None = Day) -> dict:
    found = _service(request).audit_overview(caller.user, since, until)
    return {**asdict(found), "nothing_share": found.nothing_share, "unsupported_share": found.unsupported_share}


@router.get("/audit/who-saw")
def who_saw(
    request: Request,
    caller: AuditCaller,
    document: str | None = Query(None, description="a document id, its start, or part of its path"),
    folder: str | None = Query(None, description="an ingested folder (its documents and subfolders')"),
    group: str | None = None,
    person: str | None = None,
    since: str | None = Day,
    until: str | None = Day,
    limit: int = Query(500, ge=1, le=5000),
) -> dict:
    found = _service(request).who_saw(caller.user, document, folder, group, person, since, until, limit)
    return asdict(found)


@router.get("/audit/alerts")
def alerts(request: Request, caller: AuditCaller, limit: int = Query(200, ge=1, le=5000)) -> dict:
    rules, raised = _service(request).audit_alerts(caller.user, limit)
    return {"rules": [r.as_dict() for r in rules], "alerts": raised}


class RuleChange(BaseModel):
    threshold: int = Field(ge=1)
    window_s: int = Field(ge=1)
    enabled: bool = True
    params: dict[str, Any] | None = None


@router.put("/audit/alerts/rules/{name}")
def set_rule(request: Request, caller: AuditCaller, name: str, body: RuleChange) -> dict:
    rule = _service(request).set_alert_rule(caller.user, name, body.threshold, body.window_s, body.enabled, body.params)
    return rule.as_dict()


@router.get("/audit/report")
def report(
    request: Request,
    caller: AuditCaller,
    group: str,
    month: str = Query(description="YYYY-MM"),
    format: Literal["csv", "html"] = "csv",
    lang: Literal["en", "ja"] = "en",
) -> Response:
    made = _service(request).audit_report(caller.user, group, month, format, lang)
    headers = {"Content-Disposition": f'attachment; filename="{made.filename}"'}
    headers.update({f"X-Kura-{k.title()}": str(v) for k, v in made.figures.items()})
    return Response(made.body, media_type=made.media_type, headers=headers)


@router.get("/audit/entries/{seq}")
def entry(request: Request, caller: AuditCaller, seq: int) -> dict:
    return asdict(_service(request).audit_entry(caller.user, seq))
