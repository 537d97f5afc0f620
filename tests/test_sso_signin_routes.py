"""The sign-in routes over real HTTP requests (Starlette's test client) and a real OpenID
provider: the session cookie's flags, the one-time handoff of a password sign-in, the OIDC
redirect and callback, sign-out, and error pages that say what went wrong (escaped)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from app.doors.http.signin import COOKIE, HANDOFFS, signin_routes
from app.identity.accounts import Accounts, SessionExpired
from app.identity.group_map import GroupMap
from app.platform.settings import KuraSettings
from tests.sso_servers import OidcProvider, sign_in_at_provider

KURA = "http://127.0.0.1:8501"
CALLBACK = f"{KURA}/signin/oidc/callback"
PASSWORD = "Orchid-meadow-4821"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    clients = [{"client_id": "kura", "token_endpoint_auth_method": "none", "redirect_uris": [CALLBACK]}]
    accounts = {"alice": {"groups": ["HR", "staff"]}}
    server = OidcProvider(tmp_path_factory.mktemp("oidc"), clients, accounts)
    yield server
    server.stop()


@pytest.fixture
def accounts(tmp_path: Path) -> Iterator[Accounts]:
    store = Accounts(tmp_path / "users.sqlite3", group_map=GroupMap({"HR": "hr"}, {"staff": "employee"}))
    store.add("mika", PASSWORD, ["employee"])
    yield store
    store.close()


def client_for(accounts: Accounts, tmp_path: Path, provider: OidcProvider | None = None, base: str = KURA):
    settings = KuraSettings(
        data_dir=tmp_path,
        session_absolute_minutes=90,
        oidc_issuer=provider.issuer if provider else None,
        oidc_client_id="kura" if provider else None,
    )
    app = Starlette(routes=signin_routes(settings, lambda: accounts))
    return TestClient(app, base_url=base, follow_redirects=False)


def cookie_header(response) -> str:  # noqa: ANN001
    headers = [v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith(COOKIE)]
    assert len(headers) == 1, response.headers
    return headers[0]


def test_a_password_sign_in_becomes_an_httponly_samesite_cookie_once(accounts: Accounts, tmp_path: Path) -> None:
    token = accounts.open_session(accounts.authenticate("mika", PASSWORD))
    client = client_for(accounts, tmp_path)
    code = HANDOFFS.issue(token)
    response = client.get(f"/signin/complete?code={code}")
    assert response.status_code == 303 and response.headers["location"] == "/"
    header = cookie_header(response)
    flags = {part.strip().split("=")[0].lower() for part in header.split(";")}
    assert header.startswith(f"{COOKIE}={token};")
    assert {"httponly", "path", "max-age", "samesite"} <= flags and "secure" not in flags  # plain http
    assert "samesite=lax" in header.lower() and "max-age=5400" in header.lower()
    again = client.get(f"/signin/complete?code={code}")  # the code is used up
    assert again.status_code == 400 and "unknown, used" in again.text and "set-cookie" not in again.headers

    # What the signed-in page does: an invisible same-origin image, answered without a body.
    silent = client.get(f"/signin/complete?code={HANDOFFS.issue(token)}&pixel=1")
    assert silent.status_code == 204 and cookie_header(silent).startswith(f"{COOKIE}={token};")

    over_https = client_for(accounts, tmp_path, base="https://kura.example.test")
    secure = cookie_header(over_https.get(f"/signin/complete?code={HANDOFFS.issue(token)}"))
    assert "secure" in {part.strip().lower() for part in secure.split(";")}


def test_oidc_routes_sign_in_through_the_provider_and_set_the_cookie(
    accounts: Accounts, tmp_path: Path, provider: OidcProvider
) -> None:
    client = client_for(accounts, tmp_path, provider)
    start = client.get("/signin/oidc")
    assert start.status_code == 302
    authorize = start.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(provider.issuer) and query["redirect_uri"] == [CALLBACK]
    assert query["code_challenge_method"] == ["S256"]
    answer = sign_in_at_provider(authorize, "alice")
    done = client.get("/signin/oidc/callback?" + urlencode(answer))
    assert done.status_code == 303, done.text
    token = cookie_header(done).split(";")[0].split("=", 1)[1]
    user = accounts.user_for_session(token)
    assert (user.name, user.groups, user.roles) == ("alice", ("hr",), {"employee"})
    assert accounts.info("alice").source == "oidc"

    replay = client.get("/signin/oidc/callback?" + urlencode(answer))
    assert replay.status_code == 400 and "already used" in replay.text


def test_signout_clears_the_cookie_and_ends_the_users_sessions(accounts: Accounts, tmp_path: Path) -> None:
    token = accounts.open_session(accounts.authenticate("mika", PASSWORD))
    other_tab = accounts.open_session(accounts.get("mika"))
    client = client_for(accounts, tmp_path)
    client.cookies.set(COOKIE, token)
    response = client.get("/signout")
    assert response.status_code == 303
    assert 'max-age=0' in cookie_header(response).lower()
    for old in (token, other_tab):
        with pytest.raises(SessionExpired):
            accounts.user_for_session(old)


def test_error_pages_escape_what_the_provider_sent(accounts: Accounts, tmp_path: Path, provider: OidcProvider) -> None:
    client = client_for(accounts, tmp_path, provider)
    hostile = client.get("/signin/oidc/callback?" + urlencode({"error": "<script>alert(1)</script>"}))
    assert hostile.status_code == 400
    assert "<script>" not in hostile.text and "&lt;script&gt;" in hostile.text
    assert client_for(accounts, tmp_path).get("/signin/oidc").status_code == 404  # not configured
