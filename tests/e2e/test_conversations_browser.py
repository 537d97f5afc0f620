"""Saved conversations in a real browser: a real `kura serve` (UI and API, the packaged models),
Playwright driving Debian's chromium. A person asks, reloads, finds the conversation in the
sidebar, reopens it in a fresh tab and asks a follow-up that only the earlier turn explains; a
hostile title and a hostile answer stay text; a second person's browser never sees it, not even
with its link; a browser set to Japanese gets the sign-in page in Japanese, and a person's own
choice of language follows them to their next sign-in."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.helpers import CHROMIUM, CHROMIUM_ARGS, kura_server, wait_idle

PASSWORD = "Maple-harbor-77"
SHOTS = REPO / "artifacts" / "screenshots" / "issue26"
FACILITIES = """# Facilities handbook

## Staff cafeteria
The staff cafeteria opens at 11:30 and closes at 14:00 on weekdays.
"""
# Plain text keeps every character, so the quoted answer carries the markup as it was written.
VISITORS = (
    "The visitor badge code is <img src=x onerror=alert(1)> ![pixel](http://127.0.0.1:9/p.png) :red[B-7] "
    "and it is shown at reception.\n"
)
HOSTILE_TITLE = ":red[boom] **loud** <img src=x onerror=alert(2)> ![t](http://127.0.0.1:9/t.png)"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed")


class World:
    def __init__(self, url: str, data: Path) -> None:
        self.url, self.data = url, data

    def audit(self) -> list[dict]:
        return [json.loads(line) for line in (self.data / "audit.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from app.identity.users import EMPLOYEE
    from app.platform.settings import KuraSettings
    from app.service import KuraService
    from app.service.conversation_store import SavedTurn

    root = tmp_path_factory.mktemp("e2e-conversations")
    data, docs = root / "kura-data", root / "docs"
    docs.mkdir()
    (docs / "facilities.md").write_text(FACILITIES)
    (docs / "visitors.txt").write_text(VISITORS)
    env = {**os.environ, "KURA_DATA_DIR": str(data), "PYTHONPATH": str(REPO)}
    ingest = subprocess.run([sys.executable, "-m", "app.doors.cli", "ingest", str(docs), "--groups", "everyone"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    service = KuraService(KuraSettings(data_dir=data))  # accounts only: no store is opened
    service.accounts.add("hana", PASSWORD, [EMPLOYEE], [])
    service.accounts.add("otto", PASSWORD, [EMPLOYEE], [])
    expired = SavedTurn("An expired question about parking", "-", "nothing", False, "-", (), None, None, (), "reader",
                        time.time() - 45 * 86400)
    service.conversation_store.add_turn(service.conversation_store.new_id(), "otto", expired)
    service.close()
    env = {"KURA_LLM_MAX_ANSWER_TOKENS": "24", "KURA_CONVERSATION_RETENTION_DAYS": "30"}
    with kura_server(data, env) as url:
        yield World(url, data)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def new_page(browser, url: str, locale: str = "en-US"):  # noqa: ANN001, ANN201
    """A separate browser (its own cookies), with the page's outside requests and dialogs recorded."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale=locale)
    page = context.new_page()
    page.set_default_timeout(180_000)
    page.outside, page.dialogs = [], []  # requests to anything but kura itself; alert() and friends

    def request(r) -> None:  # noqa: ANN001
        if not r.url.startswith((url, "data:", "blob:")):
            page.outside.append(r.url)

    page.on("request", request)
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    return page


def sign_in(page, url: str, name: str, signed_in_text: str = "Signed in as") -> None:  # noqa: ANN001
    page.goto(url)
    page.get_by_test_id("stTextInput").nth(0).locator("input").fill(name)
    page.locator("input[type=password]").fill(PASSWORD)
    page.get_by_test_id("stFormSubmitButton").click()
    page.get_by_text(f"{signed_in_text}").first.wait_for()
    wait_idle(page)


def ask(page, question: str) -> None:  # noqa: ANN001
    """Ask and wait until the answer has streamed (and so been saved)."""
    before = page.get_by_test_id("stChatMessage").count()
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    box.press("Enter")
    page.wait_for_function(
        "(n) => document.querySelectorAll('[data-testid=\"stChatMessage\"]').length >= n", arg=before + 2
    )
    wait_idle(page, 300_000)


def sidebar_button(page, title: str):  # noqa: ANN001, ANN201
    return page.get_by_test_id("stSidebar").get_by_role("button", name=title)


def test_ask_reload_reopen_and_follow_up_and_nobody_else_sees_it(world: World, browser) -> None:  # noqa: ANN001
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = new_page(browser, world.url)
    sign_in(page, world.url, "hana")
    ask(page, "When does the staff cafeteria open?")
    assert "11:30" in page.get_by_test_id("stChatMessage").last.inner_text()
    sidebar_button(page, "When does the staff cafeteria open?").wait_for()

    page.reload()  # the cookie keeps her signed in; the URL (?c=) keeps the conversation open
    page.get_by_text("Signed in as hana").wait_for()
    wait_idle(page)
    sidebar_button(page, "When does the staff cafeteria open?").wait_for()
    page.get_by_text("opens at 11:30").first.wait_for()

    page.goto(world.url)  # a fresh tab with no conversation open: reopen it from the sidebar
    wait_idle(page)
    sidebar_button(page, "When does the staff cafeteria open?").click()
    page.get_by_text("opens at 11:30").first.wait_for()
    wait_idle(page)
    ask(page, "And when does it close?")  # only the saved first turn says what "it" is
    last = page.get_by_test_id("stChatMessage").last.inner_text()
    assert "14:00" in last, last
    assert page.get_by_test_id("stChatMessage").count() == 4
    page.screenshot(path=str(SHOTS / "reopened-and-continued.png"), full_page=True)
    conversation_id = page.url.split("c=")[1].split("&")[0]

    # Hostile text stays text: a title the person typed and an answer quoting a document.
    page.get_by_test_id("stExpander").filter(has_text="This conversation").click()
    title_box = page.get_by_label("Title")
    title_box.fill(HOSTILE_TITLE)
    title_box.press("Enter")
    page.get_by_role("button", name="Rename").click()
    wait_idle(page)
    sidebar_button(page, ":red[boom] **loud** <img src=x onerror=alert(2)>").wait_for()  # as typed
    ask(page, "What is the visitor badge code?")
    answer = page.get_by_test_id("stChatMessage").last
    answer.scroll_into_view_if_needed()
    shown = answer.inner_text()
    assert "<img src=x onerror=alert(1)> ![pixel](http://127.0.0.1:9/p.png) :red[B-7]" in shown.replace("\u2060", "")
    page.screenshot(path=str(SHOTS / "hostile-title-and-answer.png"), full_page=True)
    page.reload()  # the saved answer, reopened from the server, is as inert as the streamed one
    reopened = page.get_by_test_id("stChatMessage").nth(5)
    reopened.get_by_text("visitor badge code").first.wait_for()
    wait_idle(page)
    markup = "<img src=x onerror=alert(1)> ![pixel](http://127.0.0.1:9/p.png)"
    assert markup in reopened.inner_text().replace("\u2060", "")
    assert page.locator("img[src='x'], img[src*='127.0.0.1:9']").count() == 0
    assert not page.dialogs and not page.outside, (page.dialogs, page.outside)
    assert page.get_by_test_id("stSidebar").locator("strong").filter(has_text="loud").count() == 0

    other = new_page(browser, world.url)  # a second person, another browser
    sign_in(other, world.url, "otto")
    assert other.get_by_test_id("stSidebar").get_by_text("No saved conversations yet.").count() == 1
    other.goto(f"{world.url}/?c={conversation_id}")
    other.get_by_text("That conversation is not among yours").wait_for()
    wait_idle(other)
    content = other.content()
    assert "cafeteria" not in content and "11:30" not in content and "loud" not in content
    other.screenshot(path=str(SHOTS / "another-person.png"), full_page=True)
    denied = [e for e in world.audit() if e["action"] == "denied" and e.get("conversation") == conversation_id]
    assert [(e["user"], e["owner"]) for e in denied] == [("otto", "hana")]


def test_the_server_swept_the_expired_conversation_when_it_started(world: World) -> None:
    with sqlite3.connect(world.data / "conversations.sqlite3") as db:
        left = db.execute("SELECT title FROM conversations WHERE owner = 'otto'").fetchall()
    assert ("An expired question about parking",) not in left
    [swept] = [e for e in world.audit() if e["action"] == "conversation_delete" and e["user"] == "retention"]
    assert swept["expired"] == 1 and swept["retention_days"] == 30


def test_the_browser_language_first_then_the_persons_own_choice(world: World, browser) -> None:  # noqa: ANN001
    page = new_page(browser, world.url, locale="ja-JP")
    page.goto(world.url)
    page.get_by_role("heading", name="ログイン").wait_for()  # the browser asks for Japanese
    wait_idle(page)
    page.screenshot(path=str(SHOTS / "signin-japanese-browser.png"), full_page=True)
    sign_in(page, world.url, "otto", signed_in_text="otto")
    page.get_by_role("heading", name="文書に質問する").wait_for()
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").click()
    page.get_by_role("option", name="English").click()
    page.get_by_role("heading", name="Ask your documents").wait_for()
    with sqlite3.connect(world.data / "users.sqlite3") as db:  # kept with her account, not the browser
        assert db.execute("SELECT language FROM users WHERE name = 'otto'").fetchone() == ("en",)

    english_browser = new_page(browser, world.url, locale="en-US")
    sign_in(english_browser, world.url, "otto")
    english_browser.get_by_role("heading", name="Ask your documents").wait_for()
    japanese_again = new_page(browser, world.url, locale="ja-JP")
    sign_in(japanese_again, world.url, "otto", signed_in_text="otto")
    japanese_again.get_by_role("heading", name="Ask your documents").wait_for()  # her choice beats the browser's
