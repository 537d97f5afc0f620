"""The sign-in page with company sign-in configured (Streamlit AppTest, real accounts and audit
log): the provider button, a directory outage explained while the local admin still gets in,
and the cookie handoff that keeps a reload signed in."""

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
from tests.sso_servers import free_port

HOME = str(Path(__file__).resolve().parent.parent / "app" / "doors" / "ui" / "Home.py")
ADMIN_PASSWORD = "Maple-harbor-77"


@pytest.fixture
def ui(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KuraService]:
    monkeypatch.setenv("KURA_LDAP_URL", f"ldap://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("KURA_LDAP_USER_BASE", "ou=people,dc=example,dc=com")
    monkeypatch.setenv("KURA_OIDC_ISSUER", "http://127.0.0.1:9/")
    monkeypatch.setenv("KURA_OIDC_CLIENT_ID", "kura")
    monkeypatch.setenv("KURA_OIDC_NAME", "Corp SSO")
    monkeypatch.setenv("KURA_DIRECTORY_GROUP_MAP", json.dumps({"HR": "hr"}))
    accounts = Accounts(KuraSettings().users_path)
    accounts.bootstrap_admin(ADMIN_PASSWORD)
    accounts.close()
    service = KuraService(KuraSettings())
    runtime.install(service)
    yield service
    runtime.uninstall()
    service.close()


def sign_in(name: str, password: str) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=60).run()
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def test_the_sign_in_page_offers_the_provider_next_to_the_password_form(ui: KuraService) -> None:
    at = AppTest.from_file(HOME, default_timeout=60).run()
    assert [b.label for b in at.button] == ["Sign in", "Sign in with Corp SSO"]


def test_a_directory_outage_is_explained_and_the_local_admin_still_signs_in(ui: KuraService) -> None:
    at = sign_in("alice", "Alice-ldap-password-1")
    assert [e.value for e in at.error] == [
        "The company directory cannot be reached, so directory accounts cannot sign in right now. "
        "Try again later; local accounts still work."
    ]
    at = sign_in("admin", ADMIN_PASSWORD)
    assert any("Signed in as" in m.value for m in at.sidebar.markdown)
    # The signed-in page has the browser fetch the session cookie once (app/doors/http/signin.py).
    pixels = [h.proto.body for h in at.get("html")]
    assert len(pixels) == 1 and "/signin/complete?code=" in pixels[0] and "pixel=1" in pixels[0]
    at.run()
    assert not at.get("html")
    failed = [json.loads(line) for line in ui.settings.audit_path.read_text().splitlines()]
    assert any(e.get("reason") == "directory_unavailable" for e in failed)
