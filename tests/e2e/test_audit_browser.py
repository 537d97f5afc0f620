"""Real browser, as an auditor (issue 27): one `kura serve` on 127.0.0.1 (Playwright, Debian
chromium). Two employees search the same words over the REST API (only one may read the HR
folder); one then sends a scripted burst of refused calls. The auditor opens the workbench:
the overview counts the searches, "who saw" the HR document names only the person who was
really shown it, the burst is an alert, and the downloaded monthly report's figures equal a
count made directly from the log file. Screenshots go to artifacts/screenshots/issue27/.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.e2e.helpers import CHROMIUM, CHROMIUM_ARGS, kura_server, wait_idle
from tests.test_audit_workbench import call_api, direct_counts, populate

PASSWORD = "Juniper-valley-62"
SHOTS = REPO / "artifacts" / "screenshots" / "issue27"
QUESTION = "How many weeks of parental leave?"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed")


@dataclass
class Office:
    url: str
    data: Path
    keys: dict[str, str]

    def entries(self) -> list[dict]:
        lines = (self.data / "audit.jsonl").read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def call(self, who: str, method: str, path: str, body: dict | None = None) -> httpx.Response:
        return call_api(self.url, self.keys[who], method, path, body)


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[Office]:
    from app.identity.users import local_operator
    from app.platform.settings import KuraSettings
    from app.service import KuraService

    root = tmp_path_factory.mktemp("e2e-audit")
    data = root / "data"
    service = KuraService(KuraSettings(data_dir=data), embedder=embedder)
    populate(service, root, PASSWORD)
    keys = {who: service.create_api_key(local_operator(), "read", "e2e", None, owner=who)[1] for who in ("hana", "sam")}
    service.close()  # the server owns the data directory from here on
    with kura_server(data, {"KURA_AUDIT_ALERT_INTERVAL_S": "2"}) as url:
        yield Office(url, data, keys)


@pytest.fixture
def page(office: Office):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
        pg = context.new_page()
        pg.set_default_timeout(120_000)
        yield pg
        browser.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def view(page, label: str) -> None:
    page.get_by_test_id("stButtonGroup").get_by_role("radio", name=label, exact=True).click()
    wait_idle(page)


def test_the_auditor_sees_who_saw_an_hr_document_an_alert_and_a_report_equal_to_the_log(office, page) -> None:
    for who in ("hana", "sam"):
        assert office.call(who, "POST", "/api/v1/search", {"query": QUESTION}).status_code == 200
    for _ in range(10):  # a scripted burst: an employee's key on an admin route, refused each time
        assert office.call("sam", "GET", "/api/v1/documents").status_code == 403
    entries = office.entries()
    [hana_search] = [e for e in entries if e["action"] == "search" and e["user"] == "hana"]
    [sam_search] = [e for e in entries if e["action"] == "search" and e["user"] == "sam"]
    hr_docs = {d for d, g in zip(hana_search["documents"], hana_search["doc_groups"], strict=True) if g == "hr"}
    assert hr_docs and not hr_docs & set(sam_search["documents"])  # sam's search could not show it

    page.goto(office.url)
    page.get_by_label("User name").fill("checker")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as checker").wait_for()
    wait_idle(page)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Audit workbench").click()
    page.get_by_role("heading", name="Audit workbench", exact=True).wait_for()
    wait_idle(page)
    searches = page.get_by_test_id("stMetric").filter(has_text="Searches")
    assert searches.get_by_test_id("stMetricValue").inner_text().strip() == "2"
    page.locator("[data-testid=stVegaLiteChart] canvas, [data-testid=stVegaLiteChart] svg").first.wait_for()
    shot(page, "01-overview")

    view(page, "Who saw what")
    target = page.get_by_label("Document (part of its path, or its id)")
    target.fill("parental-leave")
    target.press("Enter")
    people = page.get_by_test_id("stTable")
    people.filter(has_text="hana").wait_for()
    wait_idle(page)
    assert "sam" not in people.inner_text()  # only the person who was really shown it
    page.get_by_text("1 showings to 1 people").wait_for()
    shot(page, "02-who-saw-hr-document")

    view(page, "Alerts")
    page.get_by_text("sam was refused or denied 10 times").first.wait_for()
    wait_idle(page)
    shot(page, "03-alert-from-a-burst-of-refusals")

    view(page, "Reports")
    page.get_by_label("Group").fill("hr")
    page.get_by_label("Group").press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Prepare the report").click()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the CSV").click()
    body = Path(download.value.path()).read_text(encoding="utf-8-sig")
    figures = {r["name"]: int(r["value"]) for r in csv.DictReader(io.StringIO(body)) if r["section"] == "figure"}
    month = next(r["value"] for r in csv.DictReader(io.StringIO(body)) if r["name"] == "month")
    assert figures == direct_counts(office.entries(), "hr", month)
    assert figures["people"] == 1 and figures["documents"] == 1
    assert any(e["action"] == "audit_report" and e["user"] == "checker" for e in office.entries())
    shot(page, "04-report")

    # A who-saw row's link: the workbench shows that entry and proves its chain position.
    page.goto(f"{office.url}/workbench?seq={hana_search['seq']}")
    page.get_by_text(f"Entry #{hana_search['seq']}: hash made with the audit key: yes").wait_for()
    wait_idle(page)
    shot(page, "05-entry-with-chain-proof")
    page.get_by_role("button", name="Close the entry").click()
    page.get_by_text("hash made with the audit key").wait_for(state="detached")
    wait_idle(page)

    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").click()
    page.get_by_role("option", name="日本語").click()
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="監査ワークベンチ").click()
    page.get_by_role("heading", name="監査ワークベンチ", exact=True).wait_for()
    wait_idle(page)
    page.locator("[data-testid=stVegaLiteChart] canvas, [data-testid=stVegaLiteChart] svg").first.wait_for()
    shot(page, "06-overview-ja")
