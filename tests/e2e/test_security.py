"""Issue 17 with a real `kura serve`, Debian's chromium (Playwright) and a raw websocket client:
the UI is safe to open to every employee.

The server is started from a folder (and a HOME) whose .streamlit/config.toml asks for the
developer toolbar, full error details, run-on-save and no XSRF protection: kura's own settings
must win. Screenshots of every page for every role, in English and Japanese, go to
artifacts/screenshots/issue17/.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.helpers import CHROMIUM, CHROMIUM_ARGS, kura_server, wait_idle

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed")

SHOTS = REPO / "artifacts" / "screenshots" / "issue17"
PASSWORDS = {"boss": "Maple-harbor-77", "checker": "Granite-lantern-31", "worker": "Willow-canyon-58"}
OUTSIDE = "203.0.113.9"  # TEST-NET-3: an address that must never be contacted
HOSTILE_CONFIG = """
[client]
toolbarMode = "developer"
showErrorDetails = "full"
[server]
runOnSave = true
enableXsrfProtection = false
fileWatcherType = "auto"
maxUploadSize = 1
[browser]
gatherUsageStats = true
"""
PUBLIC = (
    "Travel policy.\n\nEmployees book train travel through the travel desk. "
    "Hotel nights are reimbursed up to 120 euros.\n"
)
HR_SECRET = (
    "Executive compensation, confidential.\n\n"
    "Confidential: the executive bonus pool is 12.5 billion yen for fiscal 2027.\n"
)
HOSTILE_NAME = ":red[Q3] bonus ![x](http=203.0.113.9).txt"
HOSTILE = f"""# Bonus <b>policy</b> :red[ALERT] :material/warning:

The quarterly bonus policy pays ![leak](http://{OUTSIDE}/leak.png?q=secret) in March.
<img src="http://{OUTSIDE}/i.png"> <script>window.pwned=1</script> $x^2$ :blue-background[highlight]
Read [the portal](javascript:window.pwned=2) or <a href="http://{OUTSIDE}/">this page</a>.
"""
HOSTILE_QUESTION = (
    f"What does the quarterly bonus policy pay? ![q](http://{OUTSIDE}/q.png) :red[now] "
    "<b>bold</b> [x](javascript:window.pwned=3)"
)
HEADERS = ("content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    from app.identity.accounts import Accounts

    root = tmp_path_factory.mktemp("issue17")
    data = root / "kura-data"
    data.mkdir()
    accounts = Accounts(data / "users.sqlite3")
    accounts.add("boss", PASSWORDS["boss"], ["admin", "employee"])
    accounts.add("checker", PASSWORDS["checker"], ["auditor"])
    accounts.add("worker", PASSWORDS["worker"], ["employee"])
    accounts.close()
    elsewhere = root / "elsewhere"  # `kura serve` started from a folder that is not the repo
    for folder in (elsewhere / ".streamlit", root / "home" / ".streamlit"):
        folder.mkdir(parents=True)
        (folder / "config.toml").write_text(HOSTILE_CONFIG)
    env = {
        "HOME": str(root / "home"),
        "KURA_LLM_MAX_ANSWER_TOKENS": "24",
        "KURA_CONTEXT_PASSAGES": "2",
        "KURA_MAX_FILE_MB": "7",
    }
    log = root / "server.log"
    with kura_server(data, env, cwd=elsewhere, log=log) as url:
        yield url, data
    (SHOTS.parent.parent / "issue17-server.log").write_text(log.read_text())


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


OPEN: list[Recorder] = []  # pages still open, for a screenshot when a test fails


@pytest.fixture(autouse=True)
def shots_on_failure(request) -> Iterator[None]:
    OPEN.clear()
    yield
    if getattr(request.node, "failed_call", False):
        for n, rec in enumerate(OPEN):
            try:
                shot(rec.page, f"failed-{request.node.name}-{n}")
            except Exception:  # the page may be gone already
                pass


class Recorder:
    """A page and everything it asked the network for, and every console message."""

    def __init__(self, browser) -> None:
        OPEN.append(self)
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.page.set_default_timeout(90_000)
        self.requests: list[str] = []
        self.console: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.console.append(m.text))
        self.context.on("weberror", lambda e: self.console.append(str(e.error)))

    def outside(self, base: str) -> list[str]:
        return [u for u in self.requests if not u.startswith((base + "/", "data:", "blob:"))]


@pytest.fixture
def rec(browser) -> Iterator[Recorder]:
    recorder = Recorder(browser)
    yield recorder
    recorder.context.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page, url: str, name: str, lang: str = "en") -> None:
    page.goto(url)
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").wait_for()
    if lang == "ja":
        page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").click()
        page.get_by_role("option", name="日本語").click()
        page.get_by_role("heading", name="ログイン").wait_for()
    words = {"ja": ("ユーザー名", "パスワード", "ログイン"), "en": ("User name", "Password", "Sign in")}
    user, password, button = words[lang]
    page.get_by_label(user).fill(name)
    page.get_by_label(password, exact=True).fill(PASSWORDS[name])
    page.get_by_role("button", name=button).click()
    page.get_by_text(re.compile(f"(Signed in as|としてログイン中).*{name}|{name}.*(としてログイン中)")).wait_for()
    wait_idle(page)


def go(page, link: str, heading: str) -> None:
    """Open a page from the sidebar (a user with one page has no sidebar navigation)."""
    if page.get_by_test_id("stSidebarNav").count():
        page.get_by_test_id("stSidebarNav").get_by_role("link", name=link, exact=True).click()
    page.get_by_role("heading", name=heading, exact=True).first.wait_for()
    wait_idle(page)


def upload(page, folder: str, source: Path, readers: str, groups: str = "") -> None:
    """Fill the Upload page and press "Save and ingest" (the caller waits for the outcome)."""
    if not page.get_by_role("heading", name="Upload documents", exact=True).count():
        go(page, "Upload", "Upload documents")
    field = page.get_by_label("Folder name under the data directory")
    field.fill(folder)
    field.press("Enter")  # committed before anything else reruns the page
    wait_idle(page)
    assert field.input_value() == folder
    if readers == "everyone":
        page.get_by_text("Everyone with a kura account").click()
    elif readers == "groups":
        page.get_by_text("Only members of the groups below").click()
        wait_idle(page)
        page.get_by_role("textbox", name="Groups (comma-separated)").fill(groups)
    wait_idle(page)
    for attempt in range(3):  # a rerun still under way can replace the picker and drop the files
        page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(source))
        try:
            page.wait_for_function(
                "() => document.querySelectorAll('[data-testid=\"stFileChip\"]').length >= 1",
                polling=100,
                timeout=20_000,
            )
            break
        except Exception:
            if attempt == 2:
                raise
            wait_idle(page)
    wait_idle(page)
    # A rerun that was still under way can also drop the folder name or the readers' choice:
    # choose them again before saving, so the outcome the caller waits for is this upload's.
    if field.input_value() != folder:
        field.fill(folder)
        field.press("Enter")
        wait_idle(page)
    choice = {"everyone": "Everyone with a kura account", "groups": "Only members of the groups below"}.get(readers)
    if choice and not page.get_by_role("radio", name=choice).is_checked():
        page.get_by_text(choice).click()
        wait_idle(page)
        if readers == "groups":
            page.get_by_role("textbox", name="Groups (comma-separated)").fill(groups)
            wait_idle(page)
    page.get_by_role("button", name="Save and ingest").click()


def ingested(page) -> None:
    """Wait for the upload just started to finish: the page empties its pickers only after
    saving and ingesting (an earlier report may still be on screen until then)."""
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=\"stFileChip\"]').length === 0",
        timeout=300_000,
        polling=200,
    )
    wait_idle(page, 300_000)
    page.get_by_text("Ingestion finished").wait_for()


def folder_with(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for file, text in files.items():
        (folder / file).write_text(text, encoding="utf-8")
    return folder


def search(page, words: str) -> str:
    """Search mode on the Ask page; returns the main area's text."""
    go(page, "Ask", "Ask your documents")
    page.get_by_text("Search passages only").click()
    box = page.get_by_placeholder("Words to search for")
    box.wait_for()
    wait_idle(page)
    box.fill(words)
    box.press("Enter")
    found = page.get_by_text(re.compile(r"^\d+ passages$|^No matching passages")).first
    found.wait_for()
    count = re.match(r"\d+", found.inner_text())
    if count:  # the passages are drawn after their count: wait for the last one's header
        page.get_by_text(re.compile(rf"^\[{count.group()}\] ")).first.wait_for()
    wait_idle(page)
    return shown(page.get_by_test_id("stMainBlockContainer"))


def shown(locator) -> str:
    """What a reader sees (kura puts invisible word joiners in addresses so they are not links)."""
    return locator.inner_text().replace("\u2060", "")


def ask(page, question: str) -> None:
    go(page, "Ask", "Ask your documents")
    page.get_by_text("Answer with citations").click()
    box = page.get_by_placeholder("Ask a question about your documents")
    box.wait_for()
    wait_idle(page)
    box.fill(question)
    box.press("Enter")
    page.get_by_test_id("stChatMessage").first.wait_for()
    page.get_by_text(re.compile(r"^first token")).first.wait_for(timeout=300_000)
    wait_idle(page, 300_000)


def audit_entries(data: Path) -> list[dict]:
    return [json.loads(line) for line in (data / "audit.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def public_docs(server, browser, tmp_path_factory) -> None:
    """A travel policy everyone may read, uploaded by the admin through the browser."""
    url, _ = server
    rec = Recorder(browser)
    try:
        sign_in(rec.page, url, "boss")
        source = folder_with(tmp_path_factory.mktemp("pub"), "travel", {"travel.txt": PUBLIC})
        upload(rec.page, "travel", source, "everyone")
        ingested(rec.page)
    finally:
        rec.context.close()


# --- settings and headers ---------------------------------------------------------------------
def _stream_url(url: str) -> str:
    return url.replace("http://", "ws://") + "/_stcore/stream"


def test_kuras_streamlit_settings_win_over_a_config_file_where_serve_starts(server):
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.proto.NewSession_pb2 import Config
    from websockets.sync.client import connect

    url, _ = server
    with connect(_stream_url(url), max_size=None, open_timeout=30) as ws:
        hello = BackMsg()
        hello.rerun_script.SetInParent()
        ws.send(hello.SerializeToString())
        config = None
        deadline = time.monotonic() + 60
        while config is None and time.monotonic() < deadline:
            msg = ForwardMsg()
            msg.ParseFromString(ws.recv(timeout=30))
            if msg.WhichOneof("type") == "new_session":
                config = msg.new_session.config
    assert config is not None, "no new_session message"
    assert config.toolbar_mode == Config.ToolbarMode.VIEWER
    assert not config.allow_run_on_save and not config.gather_usage_stats
    with urllib.request.urlopen(f"{url}/_stcore/health") as response:
        assert "_streamlit_xsrf" in (response.headers.get("set-cookie") or "")  # XSRF protection on


PAGES = ("/", "/login", "/ask", "/upload", "/documents", "/users", "/system", "/audit", "/password")
# Every HTTP route kura serves; the API and sign-in routes added through app/doors/http/server.py's
# extension point belong in this list too.
ROUTES = ("/_stcore/health", "/_stcore/host-config", "/favicon.png", "/no-such-page", "/_stcore/no-such-route")
# app/doors/http/signin.py:
ROUTES += ("/signin/complete?code=unknown", "/signin/oidc", "/signin/oidc/callback", "/signout")


@pytest.mark.parametrize("path", PAGES + ROUTES)
def test_every_page_and_route_carries_the_security_headers(server, path: str):
    url, _ = server
    try:
        response = urllib.request.urlopen(url + path)
    except urllib.error.HTTPError as error:  # a 404 needs the headers too
        response = error
    headers = {k.lower(): v for k, v in response.headers.items()}
    for name in HEADERS:
        assert name in headers, (path, name)
    csp = headers["content-security-policy"]
    assert "img-src 'self' data:" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert re.search(r"script-src 'self'( 'sha256-[^']+')*;", csp), csp
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"


def test_a_static_asset_carries_the_headers_too(server, rec):
    url, _ = server
    rec.page.goto(url)
    rec.page.get_by_label("User name").wait_for()
    asset = next(u for u in rec.requests if "/static/js/" in u)
    with urllib.request.urlopen(asset) as response:
        assert response.headers.get("content-security-policy") and response.headers.get("x-content-type-options")
    assert rec.outside(url) == []
    # The viewer toolbar: no Deploy button, and the menu has no developer options.
    assert rec.page.get_by_text("Deploy", exact=True).count() == 0
    rec.page.get_by_test_id("stMainMenuButton").click()
    rec.page.get_by_test_id("stMainMenuPopover").wait_for()
    menu = rec.page.get_by_test_id("stMainMenuPopover").inner_text()
    assert "Clear cache" not in menu and "Developer" not in menu, menu
    rec.page.keyboard.press("Escape")


# --- upload: nothing is published by accident --------------------------------------------------
def test_hr_files_never_reach_the_employee_through_a_reused_picker_or_a_relabel(server, browser, public_docs, tmp_path):
    url, data = server
    admin = Recorder(browser)
    page = admin.page
    sign_in(page, url, "boss")
    hr = folder_with(tmp_path, "hr", {"compensation.txt": HR_SECRET, ".DS_Store": "junk", "Thumbs.db": "junk"})

    # No choice of readers: refused, nothing saved.
    upload(page, "hr", hr, readers="none")
    page.get_by_text("Choose who may read these documents first").wait_for()
    assert not (data / "uploads" / "hr").exists()

    # The HR folder for the hr group; hidden and system files are skipped and listed.
    page.get_by_text("Only members of the groups below").click()
    wait_idle(page)
    page.get_by_role("textbox", name="Groups (comma-separated)").fill("hr")
    page.get_by_role("button", name="Save and ingest").click()
    ingested(page)
    main = shown(page.get_by_test_id("stMainBlockContainer"))
    assert "Skipped 2 hidden or system files" in main and ".DS_Store" in main and "Thumbs.db" in main
    assert not (data / "uploads" / "hr" / ".DS_Store").exists()
    # Variant 1: the pickers are empty again, and who may read must be chosen again.
    assert page.get_by_test_id("stFileChip").count() == 0
    shot(page, "en-admin-upload-hr-done")

    # Variant 1 continued: the next upload, for everyone, carries only what is chosen now.
    public = folder_with(tmp_path, "notices", {"canteen.txt": "The canteen opens at 11:30 on weekdays.\n"})
    upload(page, "notices", public, "everyone")
    ingested(page)
    assert sorted(p.name for p in (data / "uploads" / "notices").iterdir()) == ["canteen.txt"]

    # Variant 2: into the existing HR folder, for everyone: a confirmation names the HR file.
    extra = folder_with(tmp_path, "hr-extra", {"holiday.txt": "Office closed on 29 December.\n"})
    upload(page, "hr", extra, "everyone")
    warning = page.get_by_text("This upload changes who may read 1 documents")
    warning.wait_for()
    wait_idle(page)  # the list of changes is drawn after the warning: under load, a moment later
    assert "compensation.txt" in shown(page.get_by_test_id("stMainBlockContainer"))
    shot(page, "en-admin-upload-relabel-confirmation")
    page.get_by_role("button", name="Cancel").click()
    page.get_by_text("Cancelled: nothing was saved").wait_for()
    assert not (data / "uploads" / "hr" / "holiday.txt").exists()

    # A confirmed change is audited as a permission change, with the groups before and after.
    drafts = folder_with(tmp_path, "drafts", {"draft.txt": "Draft: the new parking rules start in April.\n"})
    upload(page, "drafts", drafts, "groups", "managers")
    ingested(page)
    upload(page, "drafts", folder_with(tmp_path, "drafts2", {"final.txt": "Final parking rules.\n"}), "everyone")
    page.get_by_role("button", name="Yes, change who may read them and ingest").click()
    ingested(page)
    [change] = [e for e in audit_entries(data) if e["action"] == "acl_change"]
    assert change["previous"] == ["managers"] and change["groups"] == ["everyone"] and change["user"] == "boss"
    admin.context.close()

    employee = Recorder(browser)
    sign_in(employee.page, url, "worker")
    found = search(employee.page, "executive bonus pool confidential compensation")
    assert "compensation.txt" not in found and "12.5 billion" not in found
    shot(employee.page, "en-employee-search-no-hr")
    assert "canteen" in search(employee.page, "canteen opens weekdays").lower()
    employee.context.close()


# --- untrusted text is shown as text --------------------------------------------------------------
def _assert_no_markup_ran(rec: Recorder, url: str) -> None:
    page = rec.page
    assert page.evaluate("window.pwned") is None
    images = page.evaluate("[...document.images].map(i => i.src)")
    assert all(src.startswith((url, "data:")) for src in images), images
    links = page.evaluate("[...document.querySelectorAll('[data-testid=stMainBlockContainer] a')].map(a => a.href)")
    assert not [h for h in links if h.startswith("javascript:") or OUTSIDE in h], links
    assert rec.outside(url) == [], rec.outside(url)
    refused = [m for m in rec.console if "Content Security Policy" in m or "Refused to" in m]
    assert refused == [], refused  # nothing even tried to load from outside


def test_a_hostile_document_and_question_show_as_text_and_fetch_nothing_outside(server, browser, tmp_path):
    url, data = server
    admin = Recorder(browser)
    sign_in(admin.page, url, "boss")
    upload(admin.page, "notes", folder_with(tmp_path, "notes", {HOSTILE_NAME: HOSTILE}), "everyone")
    ingested(admin.page)
    admin.context.close()

    rec = Recorder(browser)
    sign_in(rec.page, url, "worker")
    found = search(rec.page, "quarterly bonus policy March")
    rec.page.get_by_test_id("stExpander").first.wait_for()
    shot(rec.page, "en-employee-search-hostile-document")
    assert ":red[ALERT]" in found and "<b>policy</b>" in found  # shown, not applied
    assert HOSTILE_NAME in found  # the file name as written
    assert f"![leak](http://{OUTSIDE}/leak.png?q=secret)" in found
    _assert_no_markup_ran(rec, url)

    ask(rec.page, HOSTILE_QUESTION)
    question = shown(rec.page.get_by_test_id("stChatMessage").first)
    assert HOSTILE_QUESTION in question.replace("\n", " ")
    shot(rec.page, "en-employee-ask-hostile-question")
    _assert_no_markup_ran(rec, url)
    rec.context.close()

    auditor = Recorder(browser)
    sign_in(auditor.page, url, "checker")
    label = auditor.page.get_by_test_id("stExpander").filter(has_text="worker · query").first
    label.wait_for()
    assert f"What does the quarterly bonus policy pay? ![q](http://{OUTSIDE}/q.png)" in shown(label)
    label.click()
    label.get_by_text(HOSTILE_NAME).first.wait_for()  # the document id resolved to its file
    shot(auditor.page, "en-auditor-hostile-question")
    _assert_no_markup_ran(auditor, url)
    auditor.context.close()


# --- nobody signed in can take kura down ---------------------------------------------------------
def _every_back_message() -> list[tuple[str, bytes]]:
    """One of each message type Streamlit's websocket accepts (every variant of the 'type'
    oneof, and every backend operation), as an unauthenticated client would send them."""
    from streamlit.proto.BackMsg_pb2 import BackendOperationRequest, BackMsg

    out = []
    for field in BackMsg.DESCRIPTOR.oneofs_by_name["type"].fields:
        if field.name == "backend_operation_request":
            for payload in BackendOperationRequest.DESCRIPTOR.oneofs_by_name["payload"].fields:
                msg = BackMsg()
                msg.backend_operation_request.request_id = payload.name
                getattr(msg.backend_operation_request, payload.name).SetInParent()
                out.append((f"{field.name}.{payload.name}", msg.SerializeToString()))
            continue
        msg = BackMsg()
        if field.type == field.TYPE_BOOL:
            setattr(msg, field.name, True)
        else:
            getattr(msg, field.name).SetInParent()
        out.append((field.name, msg.SerializeToString()))
    return out


def test_an_unauthenticated_websocket_client_cannot_take_kura_down(server, browser, public_docs):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    url, _ = server
    employee = Recorder(browser)
    sign_in(employee.page, url, "worker")
    assert "travel" in search(employee.page, "hotel nights reimbursed").lower()  # the store is open

    ui_files = {p for p in (REPO / "app").rglob("*") if "__pycache__" not in p.parts}
    sent = []
    for _round in range(2):  # twice: after a clear_cache, the next opener is where it broke
        with connect(_stream_url(url), max_size=None, open_timeout=30) as ws:
            for kind, data in _every_back_message():
                try:
                    ws.send(data)
                    sent.append(kind)
                    while True:  # drain whatever the server answers
                        ws.recv(timeout=0.5)
                except TimeoutError:
                    continue
                except ConnectionClosed:
                    break
    assert {"clear_cache", "set_run_on_save", "rerun_script", "load_git_info"} <= set(sent)
    now = {p for p in (REPO / "app").rglob("*") if "__pycache__" not in p.parts}
    assert now == ui_files  # no developer "skills" written into the app

    # The employee, still signed in, gets answers; and a fresh sign-in works too.
    ask(employee.page, "How much are hotel nights reimbursed?")
    employee.page.get_by_text("Sources").first.wait_for()
    main = shown(employee.page.get_by_test_id("stMainBlockContainer"))
    assert "holds the store" not in main and "travel.txt" in main
    shot(employee.page, "en-employee-answer-after-websocket-attack")
    employee.context.close()
    fresh = Recorder(browser)
    sign_in(fresh.page, url, "worker")
    assert "travel" in search(fresh.page, "train travel desk").lower()
    fresh.context.close()


# --- screenshots of every page, every role, both languages ---------------------------------------
ROLE_PAGES = {
    "worker": [("Ask", "質問する", "Ask your documents", "文書に質問する")],
    "boss": [
        ("Ask", "質問する", "Ask your documents", "文書に質問する"),
        ("Upload", "アップロード", "Upload documents", "文書のアップロード"),
        ("Documents", "文書", "Documents", "文書一覧"),
        ("Users", "ユーザー", "Users and groups", "ユーザーとグループ"),
        ("System", "システム", "System", "システム"),
    ],
    "checker": [("Audit log", "監査ログ", "Audit log", "監査ログ")],
}
ROLE_NAMES = {"worker": "employee", "boss": "admin", "checker": "auditor"}


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_screenshots_of_every_page_for_every_role(server, browser, public_docs, lang):
    url, _ = server
    signed_out = Recorder(browser)
    signed_out.page.goto(url)
    signed_out.page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").wait_for()
    if lang == "ja":
        signed_out.page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").click()
        signed_out.page.get_by_role("option", name="日本語").click()
        signed_out.page.get_by_role("heading", name="ログイン").wait_for()
    wait_idle(signed_out.page)
    shot(signed_out.page, f"{lang}-signed-out-login")
    signed_out.context.close()
    for name, pages in ROLE_PAGES.items():
        rec = Recorder(browser)
        sign_in(rec.page, url, name, lang)
        for link_en, link_ja, title_en, title_ja in pages:
            link, title = (link_ja, title_ja) if lang == "ja" else (link_en, title_en)
            go(rec.page, link, title)
            shot(rec.page, f"{lang}-{ROLE_NAMES[name]}-{link_en.lower().replace(' ', '-')}")
        assert rec.outside(url) == [], rec.outside(url)
        rec.context.close()
