"""Browser sign-in over plain HTTP: the session cookie and the OpenID Connect redirect routes,
served beside the Streamlit UI by `kura serve` (app/doors/http/server.py's extra routes).

The cookie `kura_session` holds the session token (the server keeps only its sha256); it is
HttpOnly (no script can read it), SameSite=Lax (sent on the provider's redirect back, not on
cross-site requests), and Secure when the request came over HTTPS. A Streamlit run cannot set
a cookie itself, so a password sign-in hands its fresh session to `/signin/complete` through a
one-time code (one use, 60 seconds) that the signed-in page fetches as an invisible same-origin
image (no page reload); later loads find the cookie in `st.context.cookies`, which is why a
reload or a second tab stays signed in.

Routes (all GET; each answers with a redirect, or 204 for `pixel=1`, or a short page that says
what went wrong):
    /signin/complete?code=…[&pixel=1]  set the cookie of a password sign-in
    /signin/oidc                       start "Sign in with <provider>": redirect to the provider
    /signin/oidc/callback              the provider's answer: check it, open a session, set the cookie
    /signout[?pixel=1]                 end the cookie's sessions (if still open) and clear the cookie
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from app.identity.accounts import OIDC, Accounts, LoginFailed, SessionExpired
from app.identity.oidc import OidcClient, OidcError

COOKIE = "kura_session"
HANDOFF_SECONDS = 60


class SignInHandoffs:
    """One-time codes that carry a session token from a Streamlit run to the cookie route."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._codes: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def issue(self, token: str) -> str:
        code = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            for old in [c for c, (_, t) in self._codes.items() if now - t > HANDOFF_SECONDS]:
                del self._codes[old]
            self._codes[code] = (token, now)
        return code

    def redeem(self, code: str) -> str | None:
        with self._lock:
            found = self._codes.pop(code, None)
        if found is None or self._clock() - found[1] > HANDOFF_SECONDS:
            return None
        return found[0]


HANDOFFS = SignInHandoffs()  # one server process, one set of codes


def pixel(url: str) -> str:
    """HTML for an invisible same-origin request to `url` (a kura route given `pixel=1`): how a
    Streamlit page makes the browser store or drop the HttpOnly cookie without a reload."""
    full = f"{url}{'&' if '?' in url else '?'}pixel=1"
    return f'<img src="{html.escape(full)}" alt="" width="1" height="1" style="display:none">'


def redirect_browser(url: str) -> None:
    """From a Streamlit run: send this tab's browser to `url` (a kura route). This is the
    message `st.login` uses; without a running script (tests) it does nothing."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    context = get_script_run_ctx()
    if context is None:
        return
    message = ForwardMsg()
    message.auth_redirect.url = url
    context.enqueue(message)


def set_session_cookie(response: Response, request: Request, token: str, max_age_s: int) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=max_age_s,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def _problem(message: str, status: int = 400) -> HTMLResponse:
    """A small page with the reason (escaped: it may quote a provider's text) and a way back."""
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>kura: sign-in failed</title></head>"
        f"<body><h1>Sign-in failed</h1><p id='reason'>{html.escape(message)}</p>"
        "<p><a href='/'>Back to the sign-in page</a></p></body></html>"
    )
    return HTMLResponse(body, status_code=status)


def _done(request: Request) -> Response:
    if request.query_params.get("pixel") == "1":
        return Response(status_code=204)
    return RedirectResponse("/", status_code=303)


def signin_routes(settings, accounts: Callable[[], Accounts]) -> list[Route]:  # noqa: ANN001
    """The routes for `settings` (KuraSettings). `accounts` returns the server's one Accounts
    (called per request, so the routes are built before the service starts)."""
    max_age_s = settings.session_absolute_minutes * 60

    async def complete(request: Request) -> Response:
        token = HANDOFFS.redeem(request.query_params.get("code", ""))
        if token is None:
            return _problem("this sign-in link is unknown, used or older than a minute; sign in again")
        try:
            await run_in_threadpool(accounts().user_for_session, token)
        except SessionExpired as exc:
            return _problem(str(exc))
        response = _done(request)
        set_session_cookie(response, request, token, max_age_s)
        return response

    async def signout(request: Request) -> Response:
        token = request.cookies.get(COOKIE)
        if token:  # normally already ended by the page; this also covers a direct visit
            await run_in_threadpool(accounts().sign_out, token)
        response = _done(request)
        secure = request.url.scheme == "https"
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=secure)
        return response

    return [
        Route("/signin/complete", complete, methods=["GET"]),
        *_oidc_routes(settings, accounts, max_age_s),
        Route("/signout", signout, methods=["GET"]),
    ]


def _oidc_routes(settings, accounts: Callable[[], Accounts], max_age_s: int) -> list[Route]:  # noqa: ANN001
    """Sign-in through the company's identity provider: start (redirect to it) and callback."""
    client = OidcClient.from_settings(settings)
    unconfigured = "sign-in with an identity provider is not configured (KURA_OIDC_ISSUER)"

    async def oidc_start(request: Request) -> Response:
        if client is None:
            return _problem(unconfigured, 404)
        redirect_uri = settings.oidc_redirect_url or str(request.url_for("oidc_callback"))
        try:
            url = await run_in_threadpool(client.begin, redirect_uri)
        except OidcError as exc:
            return _problem(str(exc), 502)
        return RedirectResponse(url, status_code=302)

    async def oidc_callback(request: Request) -> Response:
        if client is None:
            return _problem(unconfigured, 404)

        def finish() -> str:
            identity = client.finish(dict(request.query_params))
            store = accounts()
            user = store.sign_in_identity(identity.name, OIDC, identity.external_id, identity.groups)
            return store.open_session(user)

        try:
            token = await run_in_threadpool(finish)
        except (OidcError, LoginFailed, SessionExpired) as exc:
            return _problem(str(exc))
        response = RedirectResponse("/", status_code=303)
        set_session_cookie(response, request, token, max_age_s)
        return response

    return [
        Route("/signin/oidc", oidc_start, methods=["GET"], name="oidc_start"),
        Route("/signin/oidc/callback", oidc_callback, methods=["GET"], name="oidc_callback"),
    ]
