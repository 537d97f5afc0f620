"""Every door is the same door: while a server owns the data directory, `kura users` and `kura
audit` reach the People and Auditing use cases through its API (the audit entries carry the
API's marks, the access log shows the calls); without one they run in-process. The new admin
endpoints refuse other keys (audited), and keys created over the API are never stronger or
longer-lived than the key that made them; no secret reaches a log.

The server is the real API (app/doors/http/api) on uvicorn on a loopback port over a real KuraService,
with the server.json a `kura serve` writes (app/identity/operator_token.py); no model is loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from app.doors.http.api import standalone_app
from app.identity import operator_token as server_token
from app.identity.users import ADMIN, AUDITOR, EMPLOYEE, local_operator
from app.platform.settings import KuraSettings
from app.service import KuraService
from tests.api_server import LogKeeper, LoopbackServer, kept_logs
from tests.conftest import REPO

PASSWORD = "Quiet-harbor-2024x"
OPERATOR_MARKS = {"via": "api", "api_key": "local-operator-token"}


@dataclass
class Shop:
    data: Path
    service: KuraService
    logs: LogKeeper
    url: str
    secrets: list[str]  # every password and key the tests send, to look for in logs

    def entries(self) -> list[dict]:
        return list(self.service.audit.entries())

    def key(self, owner: str, scope: str = "read", expires_days: float | None = None) -> str:
        _, key = self.service.create_api_key(local_operator(), scope, "test", expires_days, owner=owner)
        self.secrets.append(key)
        return key

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)

    def access_log(self) -> str:
        return "\n".join(line for line in self.logs.lines if line.startswith("uvicorn.access"))


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    data = tmp_path_factory.mktemp("served") / "data"
    settings = KuraSettings(data_dir=data)
    service = KuraService(settings)
    service.accounts.add("pub", PASSWORD, [EMPLOYEE], [])
    service.accounts.add("checker", PASSWORD, [AUDITOR], [])
    service.accounts.add("boss", PASSWORD, [EMPLOYEE, ADMIN], [])
    with kept_logs() as logs, LoopbackServer(standalone_app(settings, lambda: service)) as server:
        server_token.write(settings, server.url)  # what `kura serve` does once it listens
        try:
            yield Shop(data, service, logs, server.url, [PASSWORD])
        finally:
            server_token.remove(settings)
            service.close()


def _kura(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KURA_")}
    env.update(KURA_DATA_DIR=str(data), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "app.doors.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def _in_process(data: Path, monkeypatch: pytest.MonkeyPatch, *args: str):  # noqa: ANN202
    from app.doors.cli.main import app

    for name in [k for k in os.environ if k.startswith("KURA_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("KURA_DATA_DIR", str(data))
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner().invoke(app, list(args))


def test_kura_users_goes_through_the_running_server(shop: Shop) -> None:
    added = _kura(shop.data, "users", "add", "carol", "--password", PASSWORD, "--groups", "hr,finance")
    assert added.returncode == 0 and "added carol" in added.stdout, added.stdout + added.stderr
    listed = _kura(shop.data, "users", "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if " carol " in line)
    assert "finance, hr" in row and "must change password" in row and "local" in row
    disabled = _kura(shop.data, "users", "disable", "carol")
    assert disabled.returncode == 0 and "disabled carol" in disabled.stdout, disabled.stderr

    changes = [e for e in shop.entries() if e["action"] == "user_change" and e.get("target") == "carol"]
    assert [e["change"] for e in changes] == ["add", "disable"]
    for entry in changes:  # the server's service wrote them, for the operator's token
        assert entry["user"] == "local-operator" and OPERATOR_MARKS.items() <= entry.items(), entry
    calls = shop.access_log()
    assert '"POST /api/v1/users HTTP/1.1" 201' in calls and '"GET /api/v1/users HTTP/1.1" 200' in calls
    assert '"PUT /api/v1/users/carol/disabled HTTP/1.1" 200' in calls
    assert shop.service.accounts.is_disabled("carol")


def test_kura_audit_goes_through_the_running_server(shop: Shop) -> None:
    verified = _kura(shop.data, "audit", "verify")
    assert verified.returncode == 0 and "audit log intact" in verified.stdout, verified.stdout + verified.stderr
    assert OPERATOR_MARKS.items() <= [e for e in shop.entries() if e["action"] == "audit_verify"][-1].items()

    shop.service.audit.append(user="pub", role="employee", action="search", query='=HYPERLINK("x")')
    found = _kura(shop.data, "audit", "search", "--user", "pub", "--action", "search", "--json")
    assert found.returncode == 0, found.stderr
    entries = [json.loads(line) for line in found.stdout.splitlines()]
    assert entries and all(e["user"] == "pub" and e["action"] == "search" for e in entries)
    view = [e for e in shop.entries() if e["action"] == "audit_view"][-1]
    assert OPERATOR_MARKS.items() <= view.items() and view["filters"]["user"] == "pub"
    calls = shop.access_log()
    assert "GET /api/v1/audit/verify HTTP/1.1" in calls and "GET /api/v1/audit?user=pub&action=search" in calls


def test_refusals_through_the_server_read_like_the_local_ones(
    shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone = tmp_path / "alone"
    for data in (shop.data, alone):  # with the server, then on a data directory of its own
        assert _in_process(data, monkeypatch, "users", "add", "dup", "--password", PASSWORD).exit_code == 0
    for args, words in (
        (("users", "add", "dup", "--password", PASSWORD), "user 'dup' already exists"),
        (("users", "set-roles", "dup", "wizard"), "unknown roles ['wizard']"),
        (("users", "add-to-group", "nobody", "hr"), "no user 'nobody'"),
        (("users", "extra-groups", "dup", "hr"), "dup is a local account"),
        (("users", "set-password", "dup", "--password", "short"), "password"),
        (
            (
                "users",
                "sync",
            ),
            "no directory is configured",
        ),
    ):
        served, local = (_in_process(data, monkeypatch, *args) for data in (shop.data, alone))
        assert served.exit_code == local.exit_code == 2, (args, served.output, local.output)
        assert served.output == local.output and words in served.output, (served.output, local.output)
        assert len(served.output.strip().splitlines()) == 1 and "Traceback" not in served.output


def test_without_a_server_the_commands_run_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    for args, shown in (
        (("users", "add", "dan", "--password", PASSWORD, "--roles", "employee,auditor"), "added dan"),
        (("users", "add-to-group", "dan", "hr"), "dan is now in hr"),
        (
            (
                "users",
                "list",
            ),
            "auditor, employee",
        ),
        (("users", "disable", "dan"), "disabled dan"),
        (("audit", "verify"), "audit log intact"),
        (("audit", "search", "--action", "user_change"), "3 entries"),
    ):
        result = _in_process(data, monkeypatch, *args)
        assert result.exit_code == 0 and shown in result.output, (args, result.output)
    assert not (data / "server.json").exists()
    entries = [json.loads(line) for line in (data / "audit.jsonl").read_text().splitlines()]
    assert [e["action"] for e in entries][-2:] == ["audit_verify", "audit_view"]
    assert {e["user"] for e in entries} == {"local-operator"} and not any("via" in e for e in entries)


NEW_USER_ENDPOINTS = (
    ("GET", "/api/v1/users/pub", None),
    ("PUT", "/api/v1/users/pub/roles", {"roles": ["admin"]}),
    ("POST", "/api/v1/users/pub/groups/hr", None),
    ("DELETE", "/api/v1/users/pub/groups/hr", None),
    ("PUT", "/api/v1/users/pub/extra-groups", {"groups": ["hr"]}),
    ("POST", "/api/v1/users/pub/unlock", None),
    ("PUT", "/api/v1/users/pub/password", {"password": "Another-long-pass-77q"}),
    ("POST", "/api/v1/users/sync", None),
)


def test_new_users_endpoints_refuse_a_non_admin_key_and_audit_it(shop: Shop) -> None:
    for owner, scope in (("pub", "read"), ("checker", "audit"), ("boss", "read")):
        with shop.client(shop.key(owner, scope)) as http:
            for method, path, body in NEW_USER_ENDPOINTS:
                before = len(shop.entries())
                r = http.request(method, path, json=body)
                assert r.status_code == 403, (owner, path, r.text)
                assert r.json()["error"]["code"] == "forbidden" and "kura keys create" in r.json()["error"]["message"]
                denied = shop.entries()[before:]
                assert [e["action"] for e in denied] == ["denied"] and denied[0]["user"] == owner
    assert shop.service.accounts.get("pub").roles == frozenset({EMPLOYEE})  # nothing changed


def test_an_admin_key_drives_every_new_users_endpoint(shop: Shop) -> None:
    shop.service.accounts.add("erin", PASSWORD, [EMPLOYEE], [])
    with shop.client(shop.key("boss", "admin")) as http:
        assert http.get("/api/v1/users/erin").json()["source"] == "local"
        assert http.put("/api/v1/users/erin/roles", json={"roles": ["employee", "auditor"]}).json()["roles"] == [
            "auditor",
            "employee",
        ]
        assert http.post("/api/v1/users/erin/groups/hr").json()["groups"] == ["hr"]
        assert http.delete("/api/v1/users/erin/groups/hr").json()["groups"] == []
        assert http.post("/api/v1/users/erin/unlock").status_code == 200
        new_password = "Fresh-meadow-2025z"
        shop.secrets.append(new_password)
        r = http.put("/api/v1/users/erin/password", json={"password": new_password, "must_change": False})
        assert r.status_code == 200 and shop.service.accounts.authenticate("erin", new_password).name == "erin"
        for method, path, body, status in (
            ("GET", "/api/v1/users/nobody", None, 404),
            ("PUT", "/api/v1/users/erin/roles", {"roles": []}, 400),
            ("PUT", "/api/v1/users/erin/extra-groups", {"groups": ["hr"]}, 400),  # a local account
            ("PUT", "/api/v1/users/erin/password", {"password": "short"}, 400),
            ("POST", "/api/v1/users/sync", None, 400),  # no directory configured
            ("POST", "/api/v1/users", {"name": "erin", "password": PASSWORD}, 409),
        ):
            r = http.request(method, path, json=body)
            assert r.status_code == status, (path, r.text)
            assert set(r.json()["error"]) == {"code", "message", "type"}
    changes = [e for e in shop.entries() if e["action"] == "user_change" and e.get("target") == "erin"][1:]
    assert [e["change"] for e in changes] == [
        "set_roles",
        "add_to_group hr",
        "remove_from_group hr",
        "unlock",
        "set_password",
    ]
    assert all(e["user"] == "boss" and e["via"] == "api" for e in changes)


def test_keys_created_over_the_api_are_no_stronger_than_the_calling_key(shop: Shop) -> None:
    with shop.client(shop.key("boss", "read")) as http:
        before = len(shop.entries())
        r = http.post("/api/v1/keys", json={"scope": "admin", "name": "escalate"})
        assert r.status_code == 403 and "creates only 'read' keys" in r.text
        assert "kura keys create --scope admin" in r.json()["error"]["message"]
        assert [e["action"] for e in shop.entries()[before:]] == ["denied"]
        assert http.post("/api/v1/keys", json={"owner": "pub"}).status_code == 403  # another account: admin keys only
        made = http.post("/api/v1/keys", json={"name": "script"})
        assert made.status_code == 201 and made.json()["scope"] == "read" and made.json()["owner"] == "boss"
        key = made.json()["key"]
        shop.secrets.append(key)
    with shop.client(key) as http:  # the new key authenticates as its owner
        assert made.json()["id"] in {k["id"] for k in http.get("/api/v1/keys").json()}
    with shop.client(shop.key("boss", "admin")) as http:
        for_pub = http.post("/api/v1/keys", json={"owner": "pub", "name": "bot"})
        assert for_pub.status_code == 201 and for_pub.json()["owner"] == "pub"
        shop.secrets.append(for_pub.json()["key"])
        assert http.post("/api/v1/keys", json={"owner": "pub", "scope": "admin"}).status_code == 403  # not an admin
    with shop.client(shop.key("pub", "read", expires_days=1)) as http:
        assert "may not create a key that outlives it" in http.post("/api/v1/keys", json={}).text
        short = http.post("/api/v1/keys", json={"expires_days": 0.5})
        assert short.status_code == 201
        shop.secrets.append(short.json()["key"])
    created = [e for e in shop.entries() if e["action"] == "api_key_create" and e.get("via") == "api"]
    assert {e["key_id"] for e in created} >= {made.json()["id"], for_pub.json()["id"], short.json()["id"]}


def test_no_password_or_key_reaches_a_log_or_the_audit_log(shop: Shop) -> None:
    assert len(shop.secrets) > 5 and shop.logs.lines
    audit = shop.service.settings.audit_path.read_text(encoding="utf-8")
    logged = "\n".join(shop.logs.lines)
    for secret in shop.secrets:
        part = secret.split("_", 2)[2] if secret.startswith("kura_") else secret
        assert part not in audit and part not in logged, secret[:8]
