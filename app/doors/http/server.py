"""The kura server: one process that holds the service and serves the browser UI (and, through
the extension point below, the HTTP API and sign-in routes) from one Streamlit `st.App`.

What this module fixes, wherever `kura serve` is started from:
- the one KuraService lives in the server's lifespan (app/doors/http/runtime.py holds it for the pages);
- kura's own Streamlit settings (`streamlit_options`), passed as run overrides, which win over
  any .streamlit/config.toml in the working directory or the user's home;
- security headers on every response, and websocket messages that no kura page needs
  (`clear_cache`, `set_run_on_save`, `load_git_info`) dropped before Streamlit sees them.

Extension point: another door (the HTTP API, sign-in routes) adds one line to `door_routes` or
`door_middleware` below; tests may also pass `extra_routes` / `extra_middleware` to build_app.
Route handlers reach the service with `app.doors.http.runtime.current_service()` at request time; they
run in this process, beside the UI, and get the security headers like every response.

Usage:
    serve(KuraSettings(), host="127.0.0.1", port=8501)   # blocks; what `kura serve` calls
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import streamlit as st
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnected

from app.doors.http import runtime
from app.doors.http.api import api_routes
from app.identity import operator_token as server_token
from app.platform.settings import KuraSettings

log = logging.getLogger(__name__)

HOME = Path(__file__).parent.parent / "ui" / "Home.py"

# Websocket messages Streamlit accepts from any client, signed in or not, that no kura page
# needs: clearing every cache for every user, turning on rerun-on-save, reading git details,
# and the developer "skills" operations that write files (Streamlit refuses them when headless;
# kura drops them before they get that far).
BLOCKED_BACK_MESSAGES = frozenset({"clear_cache", "set_run_on_save", "load_git_info"})
BLOCKED_BACKEND_OPERATIONS = frozenset({"install_skills", "dismiss_skills_nudge"})


def blocked(data: bytes) -> str | None:
    """The kind of a websocket BackMsg kura drops, or None to pass it to Streamlit (which closes
    the socket itself on a frame that does not parse)."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    back = BackMsg()
    try:
        back.ParseFromString(data)
    except Exception:
        return None
    kind = back.WhichOneof("type")
    if kind in BLOCKED_BACK_MESSAGES:
        return kind
    if kind == "backend_operation_request":
        payload = back.backend_operation_request.WhichOneof("payload")
        if payload in BLOCKED_BACKEND_OPERATIONS:
            return str(payload)
    return None


def streamlit_options(settings: KuraSettings, host: str, port: int) -> dict[str, Any]:
    """kura's Streamlit settings, applied as run overrides (they beat every config.toml)."""
    return {
        "server.address": host,
        "server.port": port,
        # Named, so Streamlit prints this URL instead of looking up the machine's public address
        # (an HTTP call to checkip.amazonaws.com when serving on 0.0.0.0, as the container does).
        "browser.serverAddress": "localhost" if host in ("0.0.0.0", "::", "") else host,
        "server.headless": True,
        "server.runOnSave": False,
        "server.allowRunOnSave": False,  # and no browser may turn it on
        "server.fileWatcherType": "none",
        "server.enableXsrfProtection": True,
        "server.enableCORS": True,
        "server.enableStaticServing": False,
        "server.enableAgentApi": False,
        "server.maxUploadSize": max(1, int(settings.max_file_mb)),
        "client.toolbarMode": "viewer",
        "client.showErrorDetails": "none",
        "browser.gatherUsageStats": False,
        "global.developmentMode": False,
    }


def _inline_script_hashes() -> list[str]:
    """CSP hashes of the inline scripts in Streamlit's own index.html (one line that sets
    `window.prerenderReady`), so the policy can forbid every other inline script."""
    index = Path(st.__file__).parent / "static" / "index.html"
    try:
        page = index.read_text(encoding="utf-8")
    except OSError:
        return []
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in scripts
    ]


def content_security_policy() -> str:
    """Everything from kura itself: no outside image, script, font, style or connection, so even
    Markdown that slipped through cannot make a reader's browser send data elsewhere."""
    scripts = " ".join(["'self'", *_inline_script_hashes()])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self' 'unsafe-inline'",  # Streamlit's CSS-in-JS writes <style> tags
            "img-src 'self' data:",
            "font-src 'self' data:",
            "media-src 'self'",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "frame-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def security_headers() -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", content_security_policy().encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    ]


class SecurityHeaders:
    """ASGI middleware: the security headers on every HTTP response (UI, health, API, auth)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = security_headers()
        self.names = {name for name, _ in self.headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in self.names]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BackMessageFilter:
    """ASGI middleware on Streamlit's websocket: drop the messages `blocked` names (see above),
    and log a browser that left mid-write as one line instead of Streamlit's traceback.
    The service no longer lives in a Streamlit cache, so `clear_cache` could not take kura down
    anyway; dropping it also keeps one client from emptying caches for everyone."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or not scope["path"].endswith("/_stcore/stream"):
            await self.app(scope, receive, send)
            return

        async def filtered_receive() -> Message:
            while True:
                message = await receive()
                data = message.get("bytes") if message["type"] == "websocket.receive" else None
                kind = blocked(data) if data else None
                if kind is None:
                    return message
                log.warning("dropped a %s message from a browser websocket", kind)

        try:
            await self.app(scope, filtered_receive, send)
        except WebSocketDisconnected:
            # A browser that goes away while Streamlit writes to it (a tab closed mid-run) makes
            # Streamlit's read loop take the dead socket for a text frame and close it again,
            # which raises. Its session is already cleaned up; one line, not a traceback.
            log.info("a browser websocket closed while kura was writing to it")


def service_lifespan(settings: KuraSettings) -> Callable[[Any], Any]:
    """The lifespan that builds the one KuraService when the server starts and closes it when
    the server stops."""

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[dict[str, Any]]:
        from app.service import KuraService

        service = KuraService(settings)
        runtime.install(service)
        service.start_writer()  # runs watched folders and resumes interrupted jobs (app/service/jobs.py)
        service.start_backup_schedule()  # KURA_BACKUP_EVERY; stops with the service (app/service/parts.py)
        service.start_alert_watch()  # the auditor's alert rules, checked every audit_alert_interval_s
        service.start_conversation_sweep()  # retention: now, then periodically (app/service/conversations.py)
        log.info("kura service ready", extra={"data_dir": str(settings.data_dir)})
        try:
            yield {"service": service}
        finally:
            server_token.remove(settings)  # before the store closes: no command may find a dead server
            runtime.uninstall()
            service.close()

    return lifespan


def door_routes(settings: KuraSettings) -> list[BaseRoute]:
    """The HTTP routes served beside the UI, before its catch-all page route. One line per door:
        routes.append(Mount("/api", api_app(settings)))      # the HTTP API
        routes.extend(sign_in_routes(settings))               # /auth/... (OIDC, cookies)
    Paths under /_stcore/, /media/, /component/ and /static/ belong to Streamlit."""
    from app.doors.http.signin import signin_routes

    routes: list[BaseRoute] = []
    routes.extend(signin_routes(settings, lambda: runtime.current_service().accounts))  # sign-in, cookie
    routes.extend(api_routes(settings, runtime.current_service))  # /api (REST, docs) and /v1 (OpenAI)
    return routes


def door_middleware(settings: KuraSettings) -> list[Middleware]:
    """Middleware for every request, inside the security headers (e.g. a sign-in cookie check)."""
    middleware: list[Middleware] = []
    return middleware


def build_app(
    settings: KuraSettings,
    extra_routes: Sequence[BaseRoute] = (),
    extra_middleware: Sequence[Middleware] = (),
) -> st.App:
    """The kura server as an ASGI app: the UI, `extra_routes`, then the doors'
    routes (door_routes), which take priority over the UI's catch-all page route, and middleware
    inside the security headers, so every response gets them."""
    return st.App(
        HOME,
        lifespan=service_lifespan(settings),
        routes=[*extra_routes, *door_routes(settings)],  # explicit extras first: a test may add /api/x
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(BackMessageFilter),
            *door_middleware(settings),
            *extra_middleware,
        ],
    )


def serve(
    settings: KuraSettings,
    host: str,
    port: int,
    extra_routes: Sequence[BaseRoute] = (),
    extra_middleware: Sequence[Middleware] = (),
) -> None:
    """Run the server in this process until it is stopped (SIGINT/SIGTERM): no child process."""
    app = build_app(settings, extra_routes, extra_middleware)
    # The local operator's token for `kura` commands on this machine (app/identity/operator_token.py).
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    server_token.write(settings, f"http://{local}:{port}")
    try:
        app.run(config=streamlit_options(settings, host, port))
    finally:
        server_token.remove(settings)
