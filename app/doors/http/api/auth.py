"""Who calls the HTTP API: a personal key in `Authorization: Bearer <key>` (or `X-API-Key`),
resolved by the service to its owner on every call. Also the two guards in front of every
route: a key in a query string is refused (and redacted before any access log sees the URL),
and a client that sent too many wrong keys waits.

Usage (in a route):
    def search(body: SearchRequest, caller: ReadCaller) -> ...:
        service(request).search(caller.user, body.query)
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from app.audit.log import CALL_FIELDS
from app.doors.http.api.errors import ApiError, error_response
from app.identity import operator_token as server_token
from app.identity.keys import ADMIN_SCOPE, AUDIT_SCOPE, READ, InvalidApiKey, looks_like_key
from app.identity.users import User, local_operator

_KEY_PARAMS = frozenset({"api_key", "apikey", "key", "token", "access_token", "x-api-key"})


@dataclass(frozen=True)
class Caller:
    user: User
    key_id: str
    scope: str
    operator: bool = False  # the local operator's server token (app/identity/operator_token.py)

    @property
    def may_act_as_admin(self) -> bool:
        """Whether this call may search all documents (an admin key, or the operator)."""
        return self.operator or self.scope == ADMIN_SCOPE


class BadKeyThrottle:
    """Counts wrong keys per client address; past `limit` within `window_s` the client gets 429
    (with Retry-After) until its oldest failure leaves the window."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str) -> deque[float]:
        now = self._clock()
        times = self._failures.setdefault(client, deque())
        while times and now - times[0] > self.window_s:
            times.popleft()
        return times

    def wait_s(self, client: str) -> float:
        """Seconds this client must wait before it may try a key again (0: it may now)."""
        with self._lock:
            times = self._recent(client)
            if len(times) < self.limit:
                return 0.0
            return max(1.0, self.window_s - (self._clock() - times[0]))

    def failed(self, client: str) -> None:
        with self._lock:
            self._recent(client).append(self._clock())


def _key_from(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or None


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def caller_with(scope: str) -> Callable[..., Any]:
    """A FastAPI dependency: the key's owner, checked now, for a call that needs `scope`.
    Async on purpose: the audit fields it sets must reach the route and its streamed body."""

    async def dependency(request: Request) -> Caller:
        throttle: BadKeyThrottle = request.app.state.throttle
        client = _client(request)
        wait = throttle.wait_s(client)
        if wait:
            raise ApiError(
                429,
                "too_many_bad_keys",
                f"too many wrong API keys from this address; wait {wait:.0f} s, then use a valid key",
                {"Retry-After": str(int(wait + 0.999))},
            )
        key = _key_from(request)
        if not key:
            raise ApiError(
                401,
                "missing_api_key",
                "send your API key as 'Authorization: Bearer <key>'; create one with `kura keys create`",
                {"WWW-Authenticate": "Bearer"},
            )
        if key.startswith(server_token.PREFIX):
            if server_token.is_operator_token(key):
                CALL_FIELDS.set({"via": "api", "api_key": "local-operator-token", "client": client})
                return Caller(local_operator(), "local-operator-token", scope, operator=True)
            throttle.failed(client)
            raise ApiError(401, "invalid_api_key", "this server token is stale: the server restarted; run again")
        service = request.app.state.get_service()
        try:
            user, record = await run_in_threadpool(service.api_caller, key, scope)
        except InvalidApiKey as exc:
            throttle.failed(client)
            raise ApiError(
                401,
                "invalid_api_key",
                f"{exc}; create a new key with `kura keys create` or ask an admin",
                {"WWW-Authenticate": "Bearer"},
            ) from None
        CALL_FIELDS.set({"via": "api", "api_key": record.id, "client": client})  # client: issue 27's new-address alert
        return Caller(user, record.id, record.scope)

    return dependency


read_caller = caller_with(READ)
admin_caller = caller_with(ADMIN_SCOPE)
audit_caller = caller_with(AUDIT_SCOPE)


class RefuseKeyInQuery:
    """ASGI middleware: a request with a key in its query string is answered 400, and the key
    is replaced in the URL first, so no access log or proxy log downstream records it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            if any(k.lower() in _KEY_PARAMS or looks_like_key(v) for k, v in pairs):
                redacted = [(k, "REDACTED" if k.lower() in _KEY_PARAMS or looks_like_key(v) else v) for k, v in pairs]
                scope["query_string"] = urlencode(redacted).encode("latin-1")  # the same dict the server logs
                response = error_response(
                    400,
                    "key_in_query",
                    "never put an API key in a URL (it ends up in logs); send it as 'Authorization: Bearer "
                    "<key>', and revoke this key with `kura keys revoke`",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


# Route parameters: `caller: ReadCaller` means "a key of read scope, its owner checked now".
ReadCaller = Annotated[Caller, Depends(read_caller)]
AdminCaller = Annotated[Caller, Depends(admin_caller)]
AuditCaller = Annotated[Caller, Depends(audit_caller)]
