"""The API keys page (app/doors/ui/views/keys.py), driven in-process by AppTest against the one real
KuraService on a temporary data directory: a key made in the page really authenticates through
the service's `api_caller`, is shown once, and revocation (own keys; an admin: anyone's) works."""

from __future__ import annotations

import logging

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from app.doors import safe_text
from app.doors.http import runtime
from app.identity.keys import ApiKeyNotFound, InvalidApiKey
from app.identity.users import AccessDenied, User
from tests.test_ui_pages import HOME, PASSWORDS, VIEWS, button, signed_in, ui_data  # noqa: F401

pytestmark = pytest.mark.usefixtures("ui_data")  # one real service per test
KEYS = str(VIEWS / "keys.py")
HOSTILE_NAME = "<img src=x onerror=alert(1)> [portal](http://203.0.113.9/login) **bold**"
ANN = User("ann", frozenset({"employee"}), ("sales",))


def keys_page(name: str) -> AppTest:
    at = signed_in(name)
    at.switch_page(KEYS).run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Personal API keys"]
    return at


def create_key(at: AppTest, name: str, scope: str = "read", days: int = 90) -> str:
    at.text_input(key="key_name").input(name)
    at.selectbox(key="key_scope").set_value(scope)
    at.number_input(key="key_days").set_value(days)
    button(at, "Create key").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    [code] = at.code
    return code.value


def audit_entries(action: str) -> list[dict]:
    return [e for e in runtime.current_service().audit.entries() if e["action"] == action]


def rendered(markdown: str) -> str:
    return MarkdownIt("commonmark", {"html": True}).render(markdown).replace(safe_text.WORD_JOINER, "")


def test_a_key_created_on_the_page_acts_as_its_owner_and_is_shown_only_once(caplog):
    caplog.set_level(logging.DEBUG)
    at = keys_page("ann")
    key = create_key(at, HOSTILE_NAME, days=30)
    assert key.startswith("kura_")
    assert any("shown only this once" in w.value for w in at.warning)

    owner, record = runtime.current_service().api_caller(key, "read")
    assert owner.name == "ann" and owner.groups == ("sales",) and record.scope == "read"
    assert record.expires is not None and 29.9 < (record.expires - record.created) / 86400 < 30.1
    [created] = audit_entries("api_key_create")
    assert created["user"] == "ann" and created["key_id"] == record.id and created["owner"] == "ann"

    # The hostile name is data: raw in the table, escaped in the message, never markup.
    assert list(at.dataframe[0].value["Name"]) == [HOSTILE_NAME]
    success = " ".join(s.value for s in at.success)
    assert "<img" not in rendered(success) and "href" not in rendered(success)
    assert "onerror" in success.replace("\\", "")  # shown as typed

    # Kept nowhere: not in session state, not in the audit log or any log line; gone on rerun.
    assert all(key not in repr(at.session_state[k]) for k in at.session_state)
    assert key not in runtime.current_service().settings.audit_path.read_text(encoding="utf-8")
    assert not any(key in r.getMessage() for r in caplog.records)
    at.run()
    assert not at.code and not any(key in m.value for m in at.markdown)
    assert list(at.dataframe[0].value["ID"]) == [record.id]  # the id stays visible, the key does not


def test_an_employee_is_offered_only_read_keys_and_the_service_refuses_an_admin_key():
    at = keys_page("ann")
    assert at.selectbox(key="key_scope").options == ["read: search and ask"]
    with pytest.raises(AccessDenied):
        runtime.current_service().create_api_key(ANN, "admin", "sneaky")
    [denied] = audit_entries("denied")
    assert denied["user"] == "ann" and denied["attempted"] == "create API key" and denied["scope"] == "admin"
    assert runtime.current_service().list_api_keys(ANN) == []
    # An admin may hold an admin key, an auditor an audit key, each only through its own role.
    admin_scopes = keys_page("boss").selectbox(key="key_scope").options
    assert [o.split(":")[0] for o in admin_scopes] == ["read", "admin"]
    assert [o.split(":")[0] for o in keys_page("checker").selectbox(key="key_scope").options] == ["read", "audit"]


def test_the_owner_revokes_a_key_and_it_stops_working_at_once():
    at = keys_page("ann")
    key = create_key(at, "laptop script")
    key_id = runtime.current_service().api_caller(key, "read")[1].id
    at.run()
    assert at.selectbox(key="own_key_pick").value == key_id
    assert not [s for s in at.selectbox if s.key == "any_key_pick"]  # an employee manages only its own
    at.button(key="own_key_revoke").click().run()
    assert not at.exception and any("Revoked key" in s.value for s in at.success)
    with pytest.raises(InvalidApiKey):
        runtime.current_service().api_caller(key, "read")
    assert list(at.dataframe[0].value["State"])[0].startswith("revoked")
    [revoke] = audit_entries("api_key_revoke")
    assert revoke["user"] == "ann" and revoke["key_id"] == key_id and revoke["owner"] == "ann"


def test_an_admin_sees_every_key_and_revokes_another_users_key():
    service = runtime.current_service()
    record, key = service.create_api_key(ANN, "read", "ann's bot")
    with pytest.raises(ApiKeyNotFound):  # another employee cannot, even knowing the id
        service.revoke_api_key(User("mallory", frozenset({"employee"})), record.id)

    at = keys_page("boss")
    assert any("No keys yet" in i.value for i in at.info)  # boss's own: none
    [everyone] = [f.value for f in at.dataframe if "Owner" in f.value.columns]
    assert list(everyone["Owner"]) == ["ann"] and list(everyone["ID"]) == [record.id]
    at.selectbox(key="any_key_pick").set_value(record.id)
    at.button(key="any_key_revoke").click().run()
    assert not at.exception and any("of ann" in s.value for s in at.success)
    with pytest.raises(InvalidApiKey):
        service.api_caller(key, "read")
    revokes = [e for e in audit_entries("api_key_revoke") if "outcome" not in e]
    assert [(e["user"], e["owner"]) for e in revokes] == [("boss", "ann")]


@pytest.mark.parametrize("name", ["ann", "boss", "checker"])
def test_the_keys_page_speaks_japanese_for_every_role(name):
    at = AppTest.from_file(HOME, default_timeout=120).run()
    at.sidebar.selectbox(key="kura_lang").select("ja").run()
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(PASSWORDS[name])
    at.button[0].click().run()
    at.switch_page(KEYS).run()
    assert not at.exception and not at.error
    assert [t.value for t in at.title] == ["個人用APIキー"]
    create_key_ja = next(b for b in at.button if b.label == "キーを作成")
    at.text_input(key="key_name").input("スクリプト")
    create_key_ja.click().run()
    assert not at.error and len(at.code) == 1
    for frame in at.dataframe:
        assert all(not str(c).isascii() or c == "ID" for c in frame.value.columns)
