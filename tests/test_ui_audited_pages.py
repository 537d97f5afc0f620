"""The Users page and the auditor's export go through the service's use cases (AppTest against
the one real KuraService, real accounts, the real audit log): every change is audited under the
admin's name, a non-admin is refused by the service itself (audited), and nothing is exported
without an `audit_export` entry that counts it."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from app.doors.http import runtime
from app.identity.accounts import Accounts
from app.platform.settings import KuraSettings
from tests.test_ui_pages import VIEWS, button, signed_in, ui_data  # noqa: F401

pytestmark = pytest.mark.usefixtures("ui_data")  # one real service per test
USERS = str(VIEWS / "users.py")
AUDIT = str(VIEWS / "audit.py")


@pytest.fixture
def downloads(monkeypatch) -> dict[str, bytes]:
    """What the page hands to the browser for download, by file name (a spy on Streamlit's
    in-memory media store; the data still goes through it)."""
    offered: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def keep(self, path_or_data, mimetype, kind, filename=None):  # type: ignore[no-untyped-def]
        if filename and isinstance(path_or_data, bytes):
            offered[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    return offered


def entries(action: str) -> list[dict]:
    return [e for e in runtime.current_service().audit.entries() if e["action"] == action]


def test_every_change_on_the_users_page_is_made_by_the_service_and_audited():
    at = signed_in("boss")
    at.switch_page(USERS).run()
    at.text_input(key="new_name").input("dave")
    at.text_input(key="new_password").input("Cobalt-meadow-19")
    at.text_input(key="new_groups").input("sales, hr")
    button(at, "Create user").click().run()
    assert any("Created dave" in s.value for s in at.success), [e.value for e in at.error]

    at.selectbox(key="edit_user").set_value("ann").run()
    at.multiselect(key="roles_ann").set_value(["employee", "auditor"])
    at.text_input(key="groups_ann").input("sales, legal")
    at.button(key="save_user").click().run()
    at.button(key="unlock_user").click().run()
    at.text_input(key="reset_ann").input("Harbor-violet-58")
    at.button(key="reset_user").click().run()
    at.button(key="toggle_user").click().run()  # disable
    assert not at.exception and not at.error, [e.value for e in at.error]

    changes = [(e["user"], e["change"], e["target"]) for e in entries("user_change")]
    assert changes == [
        ("boss", "add", "dave"),
        ("boss", "set_roles", "ann"),
        ("boss", "set_groups", "ann"),
        ("boss", "unlock", "ann"),
        ("boss", "set_password", "ann"),
        ("boss", "disable", "ann"),
    ]
    accounts = Accounts(KuraSettings().users_path)
    ann = accounts.get("ann")
    assert ann.roles == {"employee", "auditor"} and ann.groups == ("legal", "sales")
    assert accounts.get("dave").groups == ("hr", "sales") and accounts.is_disabled("ann")
    accounts.close()
    status = at.dataframe[0].value.set_index("Name")["Status"]
    assert status["ann"] == "disabled" and status["dave"] == ""


def test_a_non_admin_opening_the_users_page_is_refused_by_the_service_and_audited():
    accounts = Accounts(KuraSettings().users_path)
    token = accounts.open_session(accounts.get("ann"))
    accounts.close()
    at = AppTest.from_file(USERS, default_timeout=60)
    at.session_state["kura_session_token"] = token
    at.run()
    assert not at.exception
    assert any("may not open this page" in e.value for e in at.error)
    assert not at.title and not at.dataframe
    [denied] = entries("denied")
    assert denied["user"] == "ann" and denied["attempted"] == "list users"


def test_the_auditors_export_is_written_by_the_service_and_counted_in_the_audit_log(downloads):
    signed_in("ann")
    signed_in("ann")  # two logins by ann
    at = signed_in("checker")
    at.switch_page(AUDIT).run()
    assert not at.download_button and not entries("audit_export")  # nothing offered up front

    at.multiselect(key="audit_users").set_value(["ann"]).run()
    at.radio(key="audit_fmt").set_value("jsonl").run()
    at.button(key="audit_prepare").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    [export] = entries("audit_export")
    assert export["user"] == "checker" and export["format"] == "jsonl"
    assert export["filters"] == {"user": "ann", "action": None, "since": None, "until": None}
    assert export["entries"] == len([e for e in runtime.current_service().audit.entries() if e["user"] == "ann"]) == 2
    assert any("2 entries exported" in s.value for s in at.success)
    [offered] = at.download_button
    assert offered.label == "Download JSON Lines"
    lines = [json.loads(line) for line in downloads["kura-audit.jsonl"].decode("utf-8").splitlines()]
    assert [(e["user"], e["action"]) for e in lines] == [("ann", "login"), ("ann", "login")]
    assert all("hash" in e for e in lines)  # exactly as stored, for the SIEM

    at.multiselect(key="audit_users").set_value([]).run()
    assert not at.download_button  # the bytes lived in that one run only
    at.radio(key="audit_fmt").set_value("csv").run()
    at.button(key="audit_prepare").click().run()
    csv_export = entries("audit_export")[-1]
    assert csv_export["format"] == "csv" and csv_export["filters"]["user"] is None
    assert csv_export["entries"] > export["entries"]  # everyone's entries up to the export itself

    later = datetime.now(UTC).date() + timedelta(days=2)  # a date the auditor chose is passed on
    at.date_input(key="audit_from").set_value(later).run()
    at.button(key="audit_prepare").click().run()
    dated = entries("audit_export")[-1]
    assert dated["filters"]["since"] == later.isoformat() and dated["entries"] == 0


def test_an_export_the_service_cannot_filter_like_the_page_is_not_offered():
    signed_in("ann")
    at = signed_in("checker")
    at.switch_page(AUDIT).run()
    at.multiselect(key="audit_actions").set_value(["login", "audit_view"]).run()
    assert at.button(key="audit_prepare").disabled
    assert any("at most one user and one action" in i.value for i in at.info)


def test_the_csv_export_keeps_spreadsheet_formulas_inert(downloads):
    runtime.current_service().audit.append(
        user="ann", role="employee", action="search", query='=HYPERLINK("http://x","y")'
    )
    at = signed_in("checker")
    at.switch_page(AUDIT).run()
    at.multiselect(key="audit_actions").set_value(["search"]).run()
    at.radio(key="audit_fmt").set_value("csv").run()
    at.button(key="audit_prepare").click().run()
    assert entries("audit_export")[-1]["entries"] == 1
    [row] = list(csv.DictReader(io.StringIO(downloads["kura-audit.csv"].decode("utf-8-sig"))))
    assert row["user"] == "ann" and row["query"] == "'=HYPERLINK(\"http://x\",\"y\")"
