"""kura's HTTP API: the REST API (`/api/v1`, OpenAPI description at `/api/docs`) and the
OpenAI-compatible endpoint (`/v1`). Thin routes, one module per use case; each calls a
KuraService method, which checks the role and writes the audit entry.

Usage (the server mounts these beside the UI; a test serves them alone):
    routes = api_routes(settings, get_service=lambda: service)
    app = Starlette(routes=routes)          # or build_app(settings, extra_routes=routes)
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount

from app.doors.http.api import (
    ask,
    audit,
    audit_analytics,
    conversations,
    documents,
    errors,
    health,
    ingest,
    keys,
    openai,
    search,
    users,
)
from app.doors.http.api.auth import BadKeyThrottle, RefuseKeyInQuery
from app.platform.settings import KuraSettings


def _new_app(settings: KuraSettings, get_service: Callable[[], Any], throttle: BadKeyThrottle, **kw: Any) -> FastAPI:
    app = FastAPI(**kw)
    app.state.get_service = get_service
    app.state.throttle = throttle
    errors.install(app)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:  # no CORS header at all unless an admin lists an origin
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key"],
        )
    app.add_middleware(RefuseKeyInQuery)
    return app


def rest_app(settings: KuraSettings, get_service: Callable[[], Any], throttle: BadKeyThrottle) -> FastAPI:
    """The REST API, to be mounted at /api (its routes are /v1/...)."""
    app = _new_app(
        settings,
        get_service,
        throttle,
        title="kura API",
        version="1",
        description="Search and ask your documents; admin and audit operations. Authenticate with a "
        "personal API key: `Authorization: Bearer <key>` (`kura keys create`).",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        servers=[{"url": "/api"}],
    )
    for module in (search, ask, documents, ingest, users, audit, audit_analytics, health, keys, conversations):
        app.include_router(module.router, prefix="/v1")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(_docs_page(app.openapi()))

    return app


def openai_app(settings: KuraSettings, get_service: Callable[[], Any], throttle: BadKeyThrottle) -> FastAPI:
    """The OpenAI-compatible API, to be mounted at /v1."""
    app = _new_app(
        settings,
        get_service,
        throttle,
        title="kura OpenAI-compatible API",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.include_router(openai.router)
    return app


def api_routes(settings: KuraSettings, get_service: Callable[[], Any]) -> list[BaseRoute]:
    """The mounts the server adds beside the UI: /api (REST, docs) and /v1 (OpenAI)."""
    throttle = BadKeyThrottle(settings.api_bad_key_limit, settings.api_bad_key_window_s)  # shared by both
    return [
        Mount("/api", app=rest_app(settings, get_service, throttle)),
        Mount("/v1", app=openai_app(settings, get_service, throttle)),
    ]


def standalone_app(settings: KuraSettings, get_service: Callable[[], Any]) -> Starlette:
    """The API alone (tests, benchmarks): the same mounts without the UI."""
    return Starlette(routes=api_routes(settings, get_service))


def _docs_page(spec: dict[str, Any]) -> str:
    """The OpenAPI description as one self-contained page (no CDN: kura runs offline)."""
    rows = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            summary = op.get("summary", "")
            detail = (op.get("description") or "").split("\n")[0]
            rows.append(
                f"<tr><td><code>{html.escape(method.upper())}</code></td><td><code>/api{html.escape(path)}</code>"
                f"</td><td>{html.escape(summary)}</td><td>{html.escape(detail)}</td></tr>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>kura API</title></head><body>"
        f"<h1>{html.escape(spec['info']['title'])} v{html.escape(spec['info']['version'])}</h1>"
        f"<p>{html.escape(spec['info'].get('description', ''))}</p>"
        "<p>Machine-readable description: <a href='/api/openapi.json'>/api/openapi.json</a>. "
        "OpenAI-compatible: <code>GET /v1/models</code>, <code>POST /v1/chat/completions</code> "
        "(citations in the extra field <code>reference</code>; system messages are ignored, said in "
        "<code>reference.notice</code>: kura's grounding prompt decides).</p>"
        "<table border='1' cellpadding='4'><tr><th>method</th><th>path</th><th>summary</th><th>what</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
