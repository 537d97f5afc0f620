"""JSON errors for the HTTP API: every failure is `{"error": {"code", "message", "type"}}` with a
stable `code` and a message that says what to do (the OpenAI SDK reads the same shape).

Service exceptions map to statuses here, in one table, so no route decides a status itself.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.audit.log import AuditKeyMissing
from app.identity.accounts import ManagedByDirectory, PasswordPolicyError, UnknownUser, UserExists
from app.identity.directory import DirectoryUnavailable
from app.identity.keys import ApiKeyNotFound, InvalidApiKey
from app.identity.users import AccessDenied
from app.service.audit_analytics import EntryNotFound
from app.service.backup import BackupError
from app.service.conversation_store import ConversationNotFound
from app.service.jobs import DocumentNotFound, JobNotFound
from app.service.rules import TooLarge
from app.service.uploads import BadUpload
from ingest.errors import DiskFull
from models.queue import QueueFull


class ApiError(Exception):
    """An error a route raises on purpose: status, stable code, message for the caller."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "type": code}}
    return JSONResponse(body, status_code=status, headers=headers)


# exception type -> (status, code); the first match wins, so subclasses come first.
_MAPPED: list[tuple[type[BaseException], int, str]] = [
    (InvalidApiKey, 401, "invalid_api_key"),
    (AccessDenied, 403, "forbidden"),
    (DocumentNotFound, 404, "not_found"),
    (JobNotFound, 404, "not_found"),
    (ApiKeyNotFound, 404, "not_found"),
    (ConversationNotFound, 404, "not_found"),  # someone else's id reads exactly like a missing one
    (UnknownUser, 404, "not_found"),
    (EntryNotFound, 404, "not_found"),  # the auditor's workbench: no audit entry with that seq
    (UserExists, 409, "conflict"),
    (ManagedByDirectory, 409, "conflict"),  # a directory account's groups/roles/password are the directory's
    (DirectoryUnavailable, 503, "directory_unavailable"),
    (AuditKeyMissing, 503, "audit_key_missing"),  # fail closed: nothing is done that cannot be audited
    (QueueFull, 429, "busy"),
    (DiskFull, 507, "disk_full"),
    (BackupError, 409, "backup_refused"),
    (TooLarge, 413, "too_large"),  # the message names the field and its limit
    (PasswordPolicyError, 400, "bad_request"),
    (BadUpload, 400, "bad_request"),
    (FileNotFoundError, 400, "bad_request"),
    (ValueError, 400, "bad_request"),
]


def install(app: FastAPI) -> None:
    """Register the handlers that turn every expected failure into one JSON error shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error_response(
            400, "bad_request", f"{where or 'request'}: {first.get('msg', 'invalid')}; see /api/docs for the fields"
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = "no such endpoint; see /api/docs" if exc.status_code == 404 else str(exc.detail)
        return error_response(exc.status_code, code, message)

    for exc_type, status, code in _MAPPED:
        app.add_exception_handler(exc_type, _handler(status, code))


def _handler(status: int, code: str):  # noqa: ANN202
    async def handle(_: Request, exc: Exception) -> JSONResponse:
        headers = {"Retry-After": "30"} if status == 429 else None
        message = str(exc).strip("'\"") or code
        return error_response(status, code, message, headers)

    return handle
