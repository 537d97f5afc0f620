"""Company sign-in in a real browser: the real `kura serve`, a real OpenID provider
(oidc-provider on Node.js) and Debian's chromium driven by Playwright, all on 127.0.0.1.

A person signs in with the provider, reloads, opens a second tab and stays signed in; the
session cookie is HttpOnly and SameSite=Lax; after sign-out both tabs are signed out and the
old cookie is refused. A local admin's password sign-in gets the same cookie, and the Users
page says where each account comes from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.conftest import REPO
from tests.e2e.helpers import CHROMIUM, CHROMIUM_ARGS, kura_server, wait_idle
from tests.sso_servers import OidcProvider, free_port

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed")
BOSS_PASSWORD = "Maple-harbor-77"
PROVIDER_NAME = "Example SSO"
SHOTS = REPO / "artifacts" / "screenshots"


def shot(page, name: str) -> None:  # noqa: ANN001
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def kura(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`kura serve` configured for the provider; the provider, started next on the port kura
    was told, knows kura's callback URL (kura reads the provider only at the first sign-in)."""
    from app.identity.accounts import Accounts

    root = tmp_path_factory.mktemp("sso-e2e")
    data = root / "kura-data"
    data.mkdir()
    accounts = Accounts(data / "users.sqlite3")
    accounts.add("boss", BOSS_PASSWORD, ["admin", "employee"])
    accounts.close()
    provider_port = free_port()
    env = {
        "KURA_OIDC_ISSUER": f"http://127.0.0.1:{provider_port}",
        "KURA_OIDC_CLIENT_ID": "kura",
        "KURA_OIDC_NAME": PROVIDER_NAME,
        "KURA_DIRECTORY_GROUP_MAP": json.dumps({"HR": "hr"}),
        "KURA_DIRECTORY_ROLE_MAP": json.dumps({"staff": "employee"}),
    }
    with kura_server(data, env, log=root / "server.log") as url:
        kura_client = {
            "client_id": "kura",
            "token_endpoint_auth_method": "none",
            "redirect_uris": [f"{url}/signin/oidc/callback"],
        }
        provider = OidcProvider(
            root,
            [kura_client],
            {"alice": {"groups": ["HR", "staff"], "email": "alice@example.com"}},
            port=provider_port,
        )
        try:
            yield url
        finally:
            provider.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def session_cookie(context, url: str, present: bool = True, timeout_s: float = 20) -> dict | None:  # noqa: ANN001
    """kura's cookie as the browser holds it (Playwright sees HttpOnly cookies), once it is
    there (or gone, with present=False)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = next((c for c in context.cookies(url) if c["name"] == "kura_session"), None)
        if (found is not None) == present:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"kura_session cookie {'never set' if present else 'never cleared'}")
        time.sleep(0.1)


def signed_in(page, name: str) -> None:  # noqa: ANN001
    page.get_by_text(f"Signed in as {name}").wait_for()
    wait_idle(page)


def sign_in_page(page) -> None:  # noqa: ANN001
    page.get_by_label("User name").wait_for()
    wait_idle(page)


def sign_in_with_provider(page, kura: str, name: str) -> None:  # noqa: ANN001
    page.goto(kura)
    sign_in_page(page)
    page.get_by_role("button", name=f"Sign in with {PROVIDER_NAME}").click()
    # The provider's own pages: its login form, then its consent page (first time only).
    page.locator("input[name=login]").fill(name)
    page.locator("input[name=password]").fill("any password: the test provider accepts it")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()
    signed_in(page, name)


def test_provider_sign_in_survives_reload_and_a_second_tab_until_sign_out(kura: str, browser) -> None:  # noqa: ANN001
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        sign_in_with_provider(page, kura, "alice")
        shot(page, "sso-01-signed-in-with-provider")

        cookie = session_cookie(context, kura)
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
        assert cookie["secure"] is False  # plain http on loopback; over https it is Secure
        assert cookie["expires"] > time.time() + 7 * 3600  # the absolute limit, 8 h by default

        page.reload()
        signed_in(page, "alice")
        second = context.new_page()
        second.set_default_timeout(60_000)
        second.goto(kura)
        signed_in(second, "alice")

        page.get_by_role("button", name="Sign out").click()
        sign_in_page(page)
        session_cookie(context, kura, present=False)
        second.reload()
        sign_in_page(second)  # the other tab's session ended too

        replay = browser.new_context()  # someone who copied the old cookie
        replay.add_cookies([{**cookie, "expires": time.time() + 3600}])
        stolen = replay.new_page()
        stolen.goto(kura)
        sign_in_page(stolen)
        assert stolen.get_by_text("Signed in as").count() == 0
        replay.close()
    finally:
        context.close()


def test_password_sign_in_gets_the_cookie_and_users_page_shows_sources(kura: str, browser) -> None:  # noqa: ANN001
    first = browser.new_context()  # alice has signed in with the provider once
    sign_in_with_provider(first.new_page(), kura, "alice")
    first.close()
    context = browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(kura)
        sign_in_page(page)
        page.get_by_label("User name").fill("boss")
        page.get_by_label("Password", exact=True).fill(BOSS_PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        signed_in(page, "boss")
        cookie = session_cookie(context, kura)
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
        page.reload()
        signed_in(page, "boss")

        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Users").click()
        page.get_by_role("heading", name="Users and groups", exact=True).wait_for()
        wait_idle(page)
        page.get_by_test_id("stSelectbox").filter(has_text="User name").click()
        page.get_by_role("option", name="alice").click()
        page.get_by_text("alice is a OIDC account").wait_for()
        shot(page, "sso-02-users-page-directory-account")
    finally:
        context.close()
