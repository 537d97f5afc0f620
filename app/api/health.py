"""Health: a liveness answer for anyone (no key, no detail), and the admin's counts and sizes."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.api.auth import AdminCaller

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict:
    return {"status": "ok"}


@router.get("/health/details")
def health_details(request: Request, caller: AdminCaller) -> dict:
    return request.app.state.get_service().health(caller.user)
