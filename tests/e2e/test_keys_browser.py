"""Real-browser end to end for personal API keys: one `kura serve` on 127.0.0.1 serves both the
UI and the HTTP API. An employee creates a key on the API keys page (Playwright, Debian
chromium), calls /api/v1/search with it over HTTP, revokes it in the page, and the same call is
refused: every door is the same door, the same server, the same key table.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import REPO
from tests.e2e.helpers import CHROMIUM, CHROMIUM_ARGS, kura_server, wait_idle

PASSWORD = "Willow-canyon-58"
SHOTS = REPO / "artifacts" / "screenshots"
HOSTILE_NAME = "<img src=x onerror=alert(1)> [portal](http://203.0.113.9/login)"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from app.identity.accounts import Accounts

    data = tmp_path_factory.mktemp("e2e-keys") / "kura-data"
    data.mkdir()
    accounts = Accounts(data / "users.sqlite3")
    accounts.add("worker", PASSWORD, ["employee"], groups=["sales"])
    accounts.close()
    with kura_server(data, {}) as url:
        yield url


@pytest.fixture
def page(server: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = context.new_page()
        pg.set_default_timeout(60_000)
        yield pg
        browser.close()


def search(url: str, key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{url}/api/v1/search", json={"query": "annual leave"}, headers=headers, timeout=120)


def test_a_key_made_in_the_browser_works_on_the_api_until_it_is_revoked_there(server, page):
    page.goto(server)
    page.get_by_label("User name").fill("worker")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as worker").wait_for()
    wait_idle(page)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="API keys").click()
    page.get_by_role("heading", name="Personal API keys").wait_for()
    wait_idle(page)

    page.get_by_label("What the key is for (a name)").fill(HOSTILE_NAME)
    page.get_by_role("button", name="Create key").click()
    page.get_by_text("shown only this once").wait_for()
    wait_idle(page)
    key = page.get_by_test_id("stCode").inner_text().strip()
    assert key.startswith("kura_")
    # The hostile name is shown as the characters typed, never as an image or a link.
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("a[href*='203.0.113.9']").count() == 0
    assert "onerror=alert(1)" in page.get_by_test_id("stAlert").filter(has_text="Created key").inner_text()

    assert search(server, None).status_code == 401
    answered = search(server, key)
    assert answered.status_code == 200, answered.text
    assert answered.json()["passages"] == []  # nothing ingested: the call itself is the point

    page.reload()  # the key is shown once: a new run of the page no longer has it
    page.get_by_role("heading", name="Personal API keys").wait_for()
    wait_idle(page)
    assert page.get_by_test_id("stCode").count() == 0
    assert key not in page.content()
    SHOTS.mkdir(parents=True, exist_ok=True)  # taken once the key is no longer on the page
    page.screenshot(path=str(SHOTS / "20-api-keys-page.png"), full_page=True)

    page.get_by_role("button", name="Revoke key").click()
    page.get_by_text("Revoked key").wait_for()
    assert search(server, key).status_code == 401
