"""The Streamlit pages, driven in-process by streamlit.testing.v1.AppTest against a real data
directory: real accounts (argon2), the real audit log, the real store and embedder for search."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.doors.http import runtime
from app.identity.accounts import Accounts
from app.platform.settings import KuraSettings
from app.service import KuraService

REPO = Path(__file__).resolve().parent.parent
HOME = str(REPO / "app" / "doors" / "ui" / "Home.py")
VIEWS = REPO / "app" / "doors" / "ui" / "views"
PASSWORDS = {"ann": "Tulip-garden-42", "boss": "Maple-harbor-77", "checker": "Granite-lantern-31"}
ADMIN_PAGES = ("upload", "documents", "users", "system", "jobs")


@pytest.fixture
def ui_data(data_dir: Path) -> Iterator[Path]:
    """A data dir with an employee, an admin and an auditor, and the one KuraService installed
    the way `kura serve`'s lifespan installs it; closed afterwards so the next test can open
    its own store."""
    accounts = Accounts(KuraSettings().users_path)
    accounts.add("ann", PASSWORDS["ann"], ["employee"], groups=["sales"])
    accounts.add("boss", PASSWORDS["boss"], ["admin", "employee"])
    accounts.add("checker", PASSWORDS["checker"], ["auditor"])
    accounts.close()
    service = KuraService(KuraSettings())
    runtime.install(service)
    yield data_dir
    installed = runtime.uninstall() or service  # a test may have replaced it
    for opened in {id(s): s for s in (service, installed)}.values():
        opened.close()


@pytest.fixture
def ui_service(ui_data: Path) -> KuraService:
    return runtime.current_service()


def signed_in(name: str, password: str | None = None) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=120).run()
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password or PASSWORDS[name])
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def page_paths(at: AppTest) -> set[str]:
    """The pages st.navigation registered for this session (AppTest knows them by path)."""
    known: set[str] = set()
    for name in ("ask", "audit", *ADMIN_PAGES):
        try:
            at.switch_page(str(VIEWS / f"{name}.py"))
            known.add(name)
        except ValueError:
            pass
    return known


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def test_employee_is_offered_only_the_ask_page(ui_data):
    at = signed_in("ann")
    assert titles(at) == ["Ask your documents"]
    assert page_paths(at) == {"ask"}


def test_admin_and_auditor_see_only_the_pages_of_their_roles(ui_data):
    assert page_paths(signed_in("boss")) == {"ask", *ADMIN_PAGES}
    at = signed_in("checker")
    assert page_paths(at) == {"audit"}
    assert titles(at) == ["Audit log"]  # the auditor's default page


@pytest.mark.parametrize("view", [*ADMIN_PAGES, "audit"])
def test_employee_opening_an_admin_or_auditor_page_directly_is_refused(ui_data, view):
    """Even if a page script were reached by path, the page itself checks the role."""
    accounts = Accounts(KuraSettings().users_path)
    token = accounts.open_session(accounts.get("ann"))
    at = AppTest.from_file(str(VIEWS / f"{view}.py"), default_timeout=60)
    at.session_state["kura_session_token"] = token
    at.run()
    assert not at.exception
    assert any("may not open this page" in e.value for e in at.error)
    assert titles(at) == [] and len(at.dataframe) == 0
    accounts.close()


def test_wrong_password_is_refused_and_lockout_is_explained(ui_data):
    at = signed_in("ann", "Wrong-password-1")
    assert [e.value for e in at.error] == ["Wrong user name or password."]
    assert titles(at) == ["Sign in"]
    for _ in range(4):
        at.text_input(key="login_password").input("Wrong-password-1")
        at.button[0].click().run()
    assert any("locked" in e.value and "until" in e.value for e in at.error)
    # Even the right password is refused while locked.
    at.text_input(key="login_password").input(PASSWORDS["ann"])
    at.button[0].click().run()
    assert any("locked" in e.value for e in at.error) and titles(at) == ["Sign in"]


def test_sign_out_ends_the_session_on_the_server(ui_data):
    at = signed_in("ann")
    token = at.session_state["kura_session_token"]
    at.sidebar.button(key="logout").click().run()
    assert titles(at) == ["Sign in"]
    from app.identity.accounts import SessionExpired

    accounts = Accounts(KuraSettings().users_path)
    with pytest.raises(SessionExpired):
        accounts.user_for_session(token)
    accounts.close()


def test_a_session_ended_elsewhere_returns_to_sign_in_with_a_message(ui_data):
    at = signed_in("ann")
    accounts = Accounts(KuraSettings().users_path)
    accounts.disable("ann")  # an admin disabled the account: its sessions end at once
    accounts.close()
    at.run()
    assert titles(at) == ["Sign in"]
    assert any("session ended" in w.value for w in at.warning)


def test_an_idle_session_is_signed_out_with_a_message(ui_data):
    at = signed_in("ann")
    token = at.session_state["kura_session_token"]
    # 31 minutes without activity, as the server records it (shared by every tab of the session).
    import sqlite3

    with sqlite3.connect(KuraSettings().users_path) as db:
        db.execute("UPDATE sessions SET last_seen = last_seen - 31 * 60")
    at.run()
    assert titles(at) == ["Sign in"]
    assert any("without activity" in w.value for w in at.warning)
    from app.identity.accounts import SessionExpired

    accounts = Accounts(KuraSettings().users_path)
    with pytest.raises(SessionExpired):
        accounts.user_for_session(token)  # closed on the server too, not just forgotten
    accounts.close()


def test_switching_the_language_shows_the_ui_in_japanese(ui_data):
    at = signed_in("ann")
    at.sidebar.selectbox(key="kura_lang").select("ja").run()
    assert titles(at) == ["文書に質問する"]
    assert "ログアウト" in [b.label for b in at.sidebar.button]


def test_japanese_is_the_default_when_settings_say_so(ui_data, monkeypatch):
    monkeypatch.setenv("KURA_UI_LANGUAGE", "ja")
    runtime.uninstall().close()  # the server reads its settings when it starts
    service = KuraService(KuraSettings())
    runtime.install(service)
    at = AppTest.from_file(HOME, default_timeout=60).run()
    assert titles(at) == ["ログイン"]


def test_admin_creates_a_user_who_must_change_the_password_first(ui_data):
    at = signed_in("boss")
    at.switch_page(str(VIEWS / "users.py")).run()
    at.text_input(key="new_name").input("dave")
    at.text_input(key="new_password").input("Cobalt-meadow-19")
    at.multiselect(key="new_roles").set_value(["employee"])
    at.text_input(key="new_groups").input("sales")
    button(at, "Create user").click().run()
    assert any("Created dave" in s.value for s in at.success), [e.value for e in at.error]
    accounts = Accounts(KuraSettings().users_path)
    assert accounts.get("dave").groups == ("sales",) and accounts.needs_password_change("dave")
    accounts.close()

    first = signed_in("dave", "Cobalt-meadow-19")
    assert titles(first) == ["Choose a new password"]


def test_a_weak_password_for_a_new_user_is_explained_not_a_traceback(ui_data):
    at = signed_in("boss")
    at.switch_page(str(VIEWS / "users.py")).run()
    at.text_input(key="new_name").input("eve")
    at.text_input(key="new_password").input("short")
    button(at, "Create user").click().run()
    assert not at.exception
    assert any("at least 12 characters" in e.value for e in at.error)


def test_auditor_filters_the_log_and_verifies_the_chain(ui_data):
    signed_in("ann")  # the login itself is audited
    at = signed_in("checker")
    assert "login" in at.dataframe[0].value["Action"].tolist()
    at.multiselect(key="audit_users").set_value(["ann"]).run()
    assert at.dataframe[0].value["User"].tolist() == ["ann"]  # the service filtered: a page, not the log
    assert any("of" in c.value for c in at.caption)
    at.button(key="audit_verify").click().run()
    assert any("intact" in s.value for s in at.success)


def test_auditor_sees_a_tampered_log_reported(ui_data):
    audit = KuraSettings().audit_path
    signed_in("ann")
    lines = audit.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["user"] = "mallory"
    lines[0] = json.dumps(first, ensure_ascii=False)
    audit.write_text("\n".join(lines) + "\n", encoding="utf-8")
    at = signed_in("checker")
    at.button(key="audit_verify").click().run()
    assert any("altered" in e.value for e in at.error)


def test_search_mode_lists_only_passages_the_employee_may_read(ui_data, embedder, copy_docs):
    """Real ingestion into the UI's own service (one store opener), then the search page."""
    from app.identity.users import User

    service = runtime.current_service()
    service.parts.embedder.set(embedder)
    admin = User("boss", frozenset({"admin", "employee"}))
    service.ingest(admin, copy_docs("en/scotus_transcript_p1.pdf", folder="public"), ["everyone"])
    service.ingest(
        admin, copy_docs("en/fbi_nics_background_checks_2015-11.pdf", folder="hr"), ["hr"]
    )

    at = signed_in("ann")  # groups: sales (+ everyone)
    at.radio(key="ask_mode").set_value("search").run()
    at.chat_input(key="search_input").set_value("background checks court").run()
    assert not at.exception
    # Labels are Markdown with every character from the document escaped: compare the text.
    labels = [e.label.replace("\\", "") for e in at.expander if "Filters" not in e.label]
    assert labels and all("scotus_transcript_p1.pdf" in label for label in labels)
    assert not any("fbi_nics" in label for label in labels)
    marked = [m.value for m in at.markdown if "<mark>" in m.value]
    assert marked  # the query's words are highlighted

    def searches() -> int:
        return sum(1 for e in service.audit.entries() if e["action"] == "search" and e["user"] == "ann")

    assert searches() == 1
    at.sidebar.selectbox(key="kura_lang").select("ja").run()  # a rerun shows, not searches again
    at.sidebar.selectbox(key="kura_lang").select("en").run()
    assert searches() == 1 and len([e for e in at.expander if "Filters" not in e.label]) == len(labels)

    at.multiselect(key="filter_types").set_value(["docx"]).run()
    assert any("No matching passages" in i.value for i in at.info)


def test_question_without_relevant_documents_is_answered_plainly(ui_data, embedder):
    service = runtime.current_service()
    service.parts.embedder.set(embedder)
    at = signed_in("ann")
    at.chat_input(key="ask_input").set_value("What is the parental leave policy?").run()
    assert not at.exception
    assert any("No relevant documents were found" in i.value for i in at.info)
    assert not any(e.label.startswith("[1]") for e in at.expander)  # no citations invented


def test_admin_regroups_a_document_and_the_employee_loses_it_at_once(ui_data, embedder, copy_docs):
    from app.identity.users import User

    service = runtime.current_service()
    service.parts.embedder.set(embedder)
    admin = User("boss", frozenset({"admin", "employee"}))
    service.ingest(admin, copy_docs("en/scotus_transcript_p1.pdf", folder="public"), ["everyone"])
    ann = User("ann", frozenset({"employee"}), ("sales",))
    assert service.search(ann, "supreme court petitioner warden")

    at = signed_in("boss")
    at.switch_page(str(VIEWS / "documents.py")).run()
    assert not at.exception and len(at.dataframe) >= 1
    doc_id = at.selectbox(key="doc_pick").value
    at.text_input(key=f"groups_{doc_id}").input("legal")
    at.button(key="save_groups").click().run()
    assert any("Groups changed on 1 paths" in s.value for s in at.success), [
        e.value for e in at.error
    ]
    assert service.search(ann, "supreme court petitioner warden") == []


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_every_page_of_every_role_renders_in_both_languages_without_an_error(ui_data, lang):
    """Tables, metrics and uploader labels follow the tab's language too (not only titles)."""
    roles = (("ann", ["ask"]), ("boss", ["upload", "documents", "users", "system"]), ("checker", ["audit"]))
    for name, pages in roles:
        at = AppTest.from_file(HOME, default_timeout=120).run()
        at.sidebar.selectbox(key="kura_lang").select(lang).run()
        at.text_input(key="login_name").input(name)
        at.text_input(key="login_password").input(PASSWORDS[name])
        at.button[0].click().run()
        for view in pages:
            at.switch_page(str(VIEWS / f"{view}.py")).run()
            assert not at.exception, (view, at.exception)
            assert not at.error, (view, [e.value for e in at.error])
            if lang == "ja":
                for frame in at.dataframe:
                    columns = [str(c) for c in frame.value.columns]
                    assert all(not c.isascii() or c in ("ID",) for c in columns), (view, columns)
                for metric in at.metric:
                    assert not metric.label.isascii(), (view, metric.label)
