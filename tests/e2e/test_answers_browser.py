"""Evidence first, on a real `kura serve` (one process: UI and API), a real browser (Playwright,
Debian chromium) and the unmodified `openai` SDK: the fact is quoted verbatim with its citation
on the page; the OpenAI door carries the citations as `url_citation` annotations, streamed and
not; the citation link opens the passage for a reader of its group and shows another reader
nothing, not even the file name; both views are audited."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.conftest import REPO
from tests.e2e.helpers import CHROMIUM, CHROMIUM_ARGS, kura_server, wait_idle

PASSWORD = "Maple-harbor-77"
QUESTION = "When does the staff cafeteria open?"
SHOTS = REPO / "artifacts" / "screenshots"
HANDBOOK = """# Facilities handbook (HR)

## Staff cafeteria
The staff cafeteria opens at 11:30 and closes at 14:00 on weekdays. It is on the second floor
of the east building.

## Parking
Staff park in the basement garage; visitors use the lot on Elm Street.
"""

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed")


def rendered(markdown: str) -> str:
    """What a Markdown renderer shows of kura's escaped text (document text is escaped: app/doors/safe_text.py)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace("\u2060", "")


class World:
    def __init__(self, url: str, data: Path, keys: dict[str, str]) -> None:
        self.url, self.data, self.keys = url, data, keys

    def audit(self) -> list[dict]:
        return [json.loads(line) for line in (self.data / "audit.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from app.identity.users import EMPLOYEE
    from app.platform.settings import KuraSettings
    from app.service import KuraService

    root = tmp_path_factory.mktemp("e2e-answers")
    data, docs = root / "kura-data", root / "hr-docs"
    docs.mkdir()
    (docs / "facilities.md").write_text(HANDBOOK)
    env = {"KURA_DATA_DIR": str(data), "PYTHONPATH": str(REPO)}
    ingest = subprocess.run(
        [sys.executable, "-m", "app.doors.cli", "ingest", str(docs), "--groups", "hr"],
        cwd=REPO, env={**__import__("os").environ, **env}, capture_output=True, text=True, timeout=600,
    )
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    service = KuraService(KuraSettings(data_dir=data))  # accounts and keys only: no store is opened
    service.accounts.add("hana", PASSWORD, [EMPLOYEE], ["hr"])
    service.accounts.add("otto", PASSWORD, [EMPLOYEE], ["sales"])
    from app.identity.users import local_operator

    keys = {n: service.create_api_key(local_operator(), "read", "e2e", owner=n)[1] for n in ("hana", "otto")}
    service.close()
    with kura_server(data, {"KURA_LLM_MAX_ANSWER_TOKENS": "32"}) as url:
        yield World(url, data, keys)


@pytest.fixture
def page(world: World):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = context.new_page()
        pg.set_default_timeout(120_000)
        yield pg
        browser.close()


def sign_in(page, url: str, name: str) -> None:
    page.goto(url)
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"Signed in as {name}").wait_for()
    wait_idle(page)


def test_the_fact_is_quoted_verbatim_with_its_citation_on_the_page(world: World, page) -> None:
    sign_in(page, world.url, "hana")
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(QUESTION)
    box.press("Enter")
    page.get_by_text("Your documents say:").wait_for()
    quote = page.get_by_test_id("stChatMessage").last.locator("blockquote").first
    quote.wait_for()
    assert "The staff cafeteria opens at 11:30 and closes at 14:00 on weekdays." in quote.inner_text()
    assert "[1]" in quote.inner_text()
    page.get_by_text("Sources").wait_for()
    wait_idle(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "answers-evidence-first.png"), full_page=True)
    assert str(world.data.parent) not in page.content()  # display paths only


def test_the_openai_sdk_reads_url_citations_streamed_and_not(world: World) -> None:
    sdk = openai.OpenAI(base_url=f"{world.url}/v1", api_key=world.keys["hana"], max_retries=0)
    reply = sdk.chat.completions.create(model="kura", messages=[{"role": "user", "content": QUESTION}])
    message = reply.choices[0].message
    shown = rendered(message.content)
    assert "11:30" in shown and shown.startswith("**Your documents say:**")
    [citation] = [a for a in message.annotations if a.type == "url_citation"]
    assert citation.url_citation.title.startswith("facilities.md")
    assert citation.url_citation.url.startswith(f"{world.url}/passage?chunk=")
    start, end = citation.url_citation.start_index, citation.url_citation.end_index
    assert message.content[start:end] == "[1]"
    assert reply.model_extra["reference"]["verdict"] == "answered"

    chunks = list(sdk.chat.completions.create(
        model="kura", messages=[{"role": "user", "content": QUESTION}], stream=True
    ))
    first = chunks[0].choices[0].delta
    assert "11:30" in rendered(first.content)
    streamed = first.model_extra["annotations"]
    assert [a["url_citation"]["url"] for a in streamed] == [citation.url_citation.url]
    assert chunks[-1].model_extra["reference"]["supported"] is True

    tasks = sdk.chat.completions.create(
        model="kura", messages=[{"role": "user", "content": "### Task:\nGenerate a concise title for the chat."}]
    )
    assert tasks.model == "kura-tasks" and not getattr(tasks.choices[0].message, "annotations", None)
    last = world.audit()[-1]
    assert last["action"] == "llm_task" and "query" not in last  # not filed as a question


def test_the_citation_link_opens_the_passage_only_for_a_reader_of_its_group(world: World, page) -> None:
    sdk = openai.OpenAI(base_url=f"{world.url}/v1", api_key=world.keys["hana"], max_retries=0)
    reply = sdk.chat.completions.create(model="kura", messages=[{"role": "user", "content": QUESTION}])
    link = reply.choices[0].message.annotations[0].url_citation.url
    chunk = link.rsplit("=", 1)[1]

    page.goto(link)  # signed out: the sign-in page (the passage page is not theirs yet), then the passage
    page.get_by_role("dialog").filter(has_text="Page not found").wait_for()
    page.keyboard.press("Escape")
    page.get_by_role("dialog").wait_for(state="detached")
    page.get_by_label("User name").fill("hana")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Cited passage").wait_for()
    page.get_by_text("opens at 11:30").wait_for()
    assert "facilities.md" in page.content()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("User name").wait_for()

    sign_in(page, world.url, "otto")
    page.goto(link)
    page.get_by_role("heading", name="Cited passage").wait_for()
    page.get_by_text("There is no passage to show here").wait_for()
    wait_idle(page)
    content = page.content()
    assert "11:30" not in content and "facilities" not in content

    views = [e for e in world.audit() if e["action"] == "passage_view" and e.get("chunks") == [chunk]]
    assert {(e["user"], e.get("outcome", "shown")) for e in views} >= {("hana", "shown"), ("otto", "refused")}
